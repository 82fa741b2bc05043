"""The WSGI servers: waitress for ``survey-engine serve`` (web and scheduled jobs in one process), and the access
log every request of ``serve`` and ``web`` goes through (one function, :func:`access_line`).

Why waitress (``bench/README.md``, "serve: the WSGI server"): it serves from threads inside the one process, so
the APScheduler jobs run beside the requests as SQLite needs (one writer process), it is pure Python (installs
everywhere ``pip`` does, no compiler), and in every measured series it was first or second on intake and answered
at least as many single-transaction requests in time as cheroot or embedded gunicorn.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wsgi import ClosingIterator

from engine.logs import log

ACCESS = logging.getLogger("survey_engine.access")
# Path segments that may be secrets (survey tokens, magic links, device credentials): 20+ URL-safe characters with
# a digit among them, or 32+ of any kind (a slug such as ``passport-renewal`` stays readable).
_TOKENISH = re.compile(r"(?=[^/]*[0-9])[A-Za-z0-9_\-.~%]{20,}|[A-Za-z0-9_\-.~%]{32,}")
SERVE_THREADS = 8


def mask_path(path: str) -> str:
    """The path with every token-like segment replaced by ``***`` (no query string: it is never logged)."""
    return "/".join("***" if _TOKENISH.fullmatch(part) else part for part in path.split("/"))


def access_line(method: str, path: str, status: int, seconds: float, length: int | None) -> None:
    """Log one request as a JSON line (logger ``survey_engine.access``, INFO): the single place every server's
    access log goes through, so masking or shaping it is done here once."""
    log(ACCESS, "request", method=method, path=mask_path(path), status=status, ms=round(seconds * 1000, 1),
        bytes=length)  # fmt: skip


AccessSink = Callable[[str, str, int, float, "int | None"], None]


class AccessLog:
    """WSGI middleware: calls ``sink`` once per request when its body is closed (streamed answers included)."""

    def __init__(self, app: Any, sink: AccessSink | None = None) -> None:
        self.app = app
        self.sink = sink

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not ACCESS.isEnabledFor(logging.INFO) and self.sink is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"] = status
            seen["headers"] = headers
            return start_response(status, headers, exc_info)

        def done() -> None:
            length = next((v for k, v in seen.get("headers", ()) if k.lower() == "content-length"), None)
            status = str(seen.get("status", "500"))
            (self.sink or access_line)(
                environ.get("REQUEST_METHOD", ""),
                environ.get("PATH_INFO", ""),
                int(status.split(" ", 1)[0]) if status[:3].isdigit() else 500,
                time.perf_counter() - started,
                int(length) if length and length.isdigit() else None,
            )

        return ClosingIterator(self.app(environ, capture), [done])


def web_app() -> Any:
    """The app for gunicorn in ``survey-engine web``: ``create_app()`` behind the access log."""
    from engine.app import create_app

    return AccessLog(create_app())


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
