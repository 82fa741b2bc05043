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

        for body in bodies[: args.warmup]:
            call(body)
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
    result: dict[str, Any] = {
        "engine": str(engine.__file__),
        "requests_per_run": args.requests,
        "runs": runs,
        "cpu_ms_median": round(statistics.median(r["cpu_ms"] for r in runs), 3) if runs else None,
        "wall_ms_median": round(statistics.median(r["wall_ms"] for r in runs), 3) if runs else None,
    }
    if profile_top:
        result["profile_top"] = profile_top
        print(profile_top)
    path = common.write_result("single_inprocess", result)
    print(f"engine {result['engine']}: CPU {result['cpu_ms_median']} ms, wall {result['wall_ms_median']} ms a "
          f"request (median of {len(runs)} runs of {args.requests}); {path.relative_to(common.ROOT)}")  # fmt: skip


if __name__ == "__main__":
    main()
