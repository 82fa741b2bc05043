"""The WSGI server of ``survey-engine serve``: waitress, web and scheduled jobs in one process, its requests logged
by ``engine.common.logs.AccessLog`` (the same masked JSON line gunicorn writes for ``web``).

Why waitress (``bench/README.md``, "serve: the WSGI server"): it serves from threads inside the one process, so
the APScheduler jobs run beside the requests as SQLite needs (one writer process), it is pure Python (installs
everywhere ``pip`` does, no compiler), and in every measured series it was first or second on intake and answered
at least as many single-transaction requests in time as cheroot or embedded gunicorn.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from engine.common.logs import AccessLog

SERVE_THREADS = 8


def serve_waitress(app: Any, host: str, port: int, threads: int = SERVE_THREADS) -> None:
    """Serve ``app`` with waitress in this process until SIGINT or SIGTERM (its threads answer requests; the
    caller's scheduler keeps running beside them)."""
    from waitress import create_server

    server = create_server(AccessLog(app), host=host, port=port, threads=threads, ident="survey-engine",
                           clear_untrusted_proxy_headers=True)  # fmt: skip

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    server.run()  # returns on KeyboardInterrupt or SystemExit (SIGTERM), its threads stopped
    sys.stdout.flush()
