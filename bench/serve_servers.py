"""Which WSGI server for ``survey-engine serve``: the candidates measured the same way, on SQLite, jobs in-process.

    .venv/bin/python bench/serve_servers.py [--servers waitress,cheroot,gunicorn] [--batches 10] [--rate 200]
                                            [--duration 20]

Each candidate runs what ``serve`` runs — the runtime on a fresh SQLite database (migrated), the Flask app, the
APScheduler jobs started in the same process (dispatch every second) — behind a different server:

* ``waitress`` — ``waitress.create_server(app, threads=8)`` (what ``serve`` uses; ``engine/webapp/server.py``);
* ``cheroot`` — ``cheroot.wsgi.Server(app, numthreads=8)`` (``pip install cheroot`` to measure it);
* ``werkzeug`` — ``run_simple(threaded=True)``, what ``serve`` ran before (a reference, not a candidate);
* ``gunicorn`` — gunicorn embedded (``BaseApplication``), 1 worker of class ``gthread`` with 8 threads, the app and
  the scheduler built inside that worker (a master process beside it: two processes, one with the jobs).

Two measurements per candidate: **intake** — ``--warmup`` + ``--batches`` batches of 1,000 (10 % replays, phone +
email + one service-level indicator each) posted one after the other over one keep-alive connection (``tx/s``);
then **single API** — ``bench/single_api.py``'s open-loop generator at ``--rate`` for ``--duration`` s (+3 s
warm-up), one transaction a request (p50 / p99 from the scheduled send time). Peak RSS of the process that serves.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import common

THREADS = 8


def child(name: str, port: int, jobs: bool = True) -> None:
    """Run ``serve``'s process with the server ``name`` (this script with ``--child``)."""
    from engine.app import create_app
    from engine.commands.common import _runtime
    from engine.scheduler import start_background

    if name == "gunicorn":
        from gunicorn.app.base import BaseApplication

        class Embedded(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                for key, value in {"bind": f"127.0.0.1:{port}", "workers": 1, "worker_class": "gthread",
                                   "threads": THREADS}.items():  # fmt: skip
                    self.cfg.set(key, value)

            def load(self) -> Any:  # in the worker, after the fork: the runtime, the app and the jobs
                rt = _runtime(migrate_database=True)
                start_background(rt)
                return create_app(runtime=rt)

        Embedded().run()
        return
    rt = _runtime(migrate_database=True)
    app = create_app(runtime=rt)
    if jobs:
        start_background(rt)
    if name == "waitress":
        from engine.webapp.server import serve_waitress

        serve_waitress(app, "127.0.0.1", port, threads=THREADS)
    elif name == "werkzeug":  # the former `serve` (development server): the "before" reference only
        from werkzeug.serving import run_simple

        from engine.common.logs import AccessLog

        run_simple("127.0.0.1", port, AccessLog(app), threaded=True, use_reloader=False)
    elif name == "cheroot":
        from cheroot.wsgi import Server

        from engine.common.logs import AccessLog

        server = Server(("127.0.0.1", port), AccessLog(app), numthreads=THREADS)
        try:
            server.start()
        finally:
            server.stop()
    else:
        raise SystemExit(f"unknown server {name!r}")


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench_serve_{name}_"))
    source = common.Items(seed=19, service_levels=1)
    batches = [source.batch(1000, 0.10) for _ in range(args.warmup + args.batches)]
    out: dict[str, Any] = {"server": name}
    try:
        with common.database("sqlite", f"serve_{name}") as url:
            key = common.api_key_for(url)
            port = common.free_port()
            env = common.env_for(url, str(workdir / "instance"))
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--port", str(port)]
            cmd += [] if args.jobs else ["--no-jobs"]
            with common.server_process(cmd, env, port, workdir / "server.log") as process:
                posted = common.post_batches(port, key, batches, args.warmup)
                seconds = sum(posted["times"])
                out["intake"] = {
                    "tx_per_s": round(args.batches * 1000 / seconds, 1),
                    "batch_ms_p50": round(common.percentile(sorted(posted["times"]), 50) * 1000, 1),
                    "decisions": posted["decisions"],
                }
                gen = subprocess.run(
                    [sys.executable, str(common.BENCH / "single_api.py"), "--generate", "--target",
                     f"http://127.0.0.1:{port}/api/v1/transactions", "--key", key, "--rate", str(args.rate),
                     "--duration", str(args.duration), "--warmup", "3", "--timeout", "10"],
                    cwd=common.ROOT, capture_output=True, text=True, check=True,
                )  # fmt: skip
                load = json.loads(gen.stdout.strip().splitlines()[-1])
                out["single_api"] = {k: load[k] for k in ("offered_rate", "achieved_rate", "errors", "latency_ms")}
                pids = [process.pid, *common.children_of(process.pid)]
                out["peak_rss_mb"] = {str(p): round((common.vm_kb(p) or 0) / 1024, 1) for p in pids}
            log = (workdir / "server.log").read_text(errors="replace")
            out["development_warning"] = "development server" in log.lower()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="waitress,cheroot,gunicorn")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--no-jobs", dest="jobs", action="store_false", help="diagnostic: no scheduler in the process")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.port, args.jobs)
        return
    runs = []
    for name in args.servers.split(","):
        print(f"[{name}] load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
        runs.append(measure(name, args))
    print(
        f"\n{'server':<10} {'intake tx/s':>12} {'batch p50 ms':>13} {'API ok/s':>9} {'p50 ms':>8} {'p99 ms':>8}  RSS MB"
    )
    for r in runs:
        lat = r["single_api"]["latency_ms"]
        print(
            f"{r['server']:<10} {r['intake']['tx_per_s']:>12} {r['intake']['batch_ms_p50']:>13} "
            f"{r['single_api']['achieved_rate']:>9} {lat['p50']!s:>8} {lat['p99']!s:>8}  {r['peak_rss_mb']}"
        )
    path = common.write_result("serve_servers", {"params": vars(args), "runs": runs})
    print(f"\nresult: {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
