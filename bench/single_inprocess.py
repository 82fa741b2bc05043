"""CPU a single-transaction request costs inside the app, with no server: ``POST /api/v1/transactions`` called
straight through the Flask app's WSGI callable, on PostgreSQL, one request after the other.

    .venv/bin/python bench/single_inprocess.py [--requests 3000] [--warmup 300] [--repeat 3] [--profile]

What the gunicorn benchmark (``single_api.py``) cannot separate: of a worker's CPU per request, how much is the
app (Flask, the key check, JSON, validation, decisions, SQLAlchemy, psycopg) and how much the server. The same
bodies as ``single_api.py`` (one fresh transaction each, a phone and an email), a real API key, a fresh migrated
database. Reported: process CPU time and wall time per request (median of ``--repeat`` runs), and with
``--profile`` the top of a cProfile by own time (cProfile roughly doubles the CPU; its shares, not its times).
Run it from another checkout's venv to compare two commits: ``/other/.venv/bin/python bench/single_inprocess.py``
measures the engine that venv imports with these scripts.

``--lean`` is an experiment for a decision, not a path of the product: it also measures, on the same bodies and
database, the same intake (``Intake.submit`` in a ``unit_of_work``, the same key cache and JSON parser) called from
a bare WSGI callable with no Flask request machinery and no after-request hooks (no security headers, no access
log line, no error pages), alternating with the real app run by run. The difference is what a second, Flask-free
intake endpoint could save at most; it still uses the ORM session.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from typing import Any

import common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--lean", action="store_true", help="also measure intake behind a bare WSGI callable")
    args = parser.parse_args()

    import os

    import engine

    with common.database("postgresql", "single_inprocess") as url:
        key = common.api_key_for(url)
        os.environ.update(common.env_for(url))
        from engine.app import create_app

        app = create_app()
        source = common.Items(seed=3)
        total = args.warmup + args.requests * args.repeat
        bodies = [json.dumps(source.fresh()).encode() for _ in range(total)]

        def call(body: bytes) -> None:
            environ = {
                "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/transactions", "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
                "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
                "wsgi.errors": sys.stderr, "HTTP_AUTHORIZATION": f"Bearer {key}", "REMOTE_ADDR": "127.0.0.1",
            }  # fmt: skip
            status: list[str] = []
            chunks = app.wsgi_app(environ, lambda s, h, e=None: status.append(s))  # type: ignore[arg-type]
            b"".join(chunks)
            getattr(chunks, "close", lambda: None)()
            if not status or not status[0].startswith("200"):
                raise SystemExit(f"unexpected answer {status}")

        lean = _lean_app(app, key) if args.lean else None
        if lean is not None:
            bodies += [json.dumps(source.fresh()).encode() for _ in range(args.warmup + args.requests * args.repeat)]
            lean_bodies = bodies[total:]

        for body in bodies[: args.warmup]:
            call(body)
        lean_runs: list[dict[str, float]] = []
        if lean is not None:
            for body in lean_bodies[: args.warmup]:
                lean(body)
        runs: list[dict[str, float]] = []
        profile_top = ""
        for n in range(args.repeat):
            chunk = bodies[args.warmup + n * args.requests : args.warmup + (n + 1) * args.requests]
            profiler = cProfile.Profile() if args.profile and n == args.repeat - 1 else None
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            for body in chunk:
                call(body)
            if profiler:
                profiler.disable()
                buffer = io.StringIO()
                pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(25)
                profile_top = buffer.getvalue()
            else:
                runs.append({
                    "cpu_ms": 1000 * (time.process_time() - cpu) / len(chunk),
                    "wall_ms": 1000 * (time.perf_counter() - wall) / len(chunk),
                })  # fmt: skip
            if lean is not None:
                chunk = lean_bodies[args.warmup + n * args.requests : args.warmup + (n + 1) * args.requests]
                cpu, wall = time.process_time(), time.perf_counter()
                for body in chunk:
                    lean(body)
                lean_runs.append({
                    "cpu_ms": 1000 * (time.process_time() - cpu) / len(chunk),
                    "wall_ms": 1000 * (time.perf_counter() - wall) / len(chunk),
                })  # fmt: skip
    result: dict[str, Any] = {
        "engine": str(engine.__file__),
        "requests_per_run": args.requests,
        "runs": runs,
        "cpu_ms_median": round(statistics.median(r["cpu_ms"] for r in runs), 3) if runs else None,
        "wall_ms_median": round(statistics.median(r["wall_ms"] for r in runs), 3) if runs else None,
    }
    if lean_runs:
        result["lean_runs"] = lean_runs
        result["lean_cpu_ms_median"] = round(statistics.median(r["cpu_ms"] for r in lean_runs), 3)
        result["lean_wall_ms_median"] = round(statistics.median(r["wall_ms"] for r in lean_runs), 3)
        print(f"bare WSGI callable, same intake: CPU {result['lean_cpu_ms_median']} ms, wall "
              f"{result['lean_wall_ms_median']} ms a request (median of {len(lean_runs)} runs)")  # fmt: skip
    if profile_top:
        result["profile_top"] = profile_top
        print(profile_top)
    path = common.write_result("single_inprocess", result)
    print(f"engine {result['engine']}: CPU {result['cpu_ms_median']} ms, wall {result['wall_ms_median']} ms a "
          f"request (median of {len(runs)} runs of {args.requests}); {path.relative_to(common.ROOT)}")  # fmt: skip


def _lean_app(app: Any, key: str) -> Any:
    """The experiment of ``--lean``: one transaction in, its decision out, with nothing of Flask around it."""
    from engine.api.auth import VerifiedKeys, _lookup
    from engine.common.crypto import token_hash
    from engine.intake.submit import Intake
    from engine.store.db import unit_of_work
    from engine.webapp.support import parse_json

    rt = app.extensions["survey_engine"]
    keys = VerifiedKeys(rt.settings.api_key_cache_seconds)
    intake = Intake(rt)

    def call(body: bytes) -> None:
        data = parse_json(body)
        key_hash = token_hash(key)
        caller = keys.get(key_hash)
        if caller is None:
            with rt.sessions() as session:
                caller = _lookup(session, key_hash)
            keys.put(key_hash, caller)
        with unit_of_work(rt.sessions, one_write=True) as session:
            (item,) = intake.submit(session, [data], set(caller.services))
        out = json.dumps(item).encode()
        if item["decision"] != "scheduled" or not out:
            raise SystemExit(f"unexpected answer {item}")

    return call


if __name__ == "__main__":
    main()
