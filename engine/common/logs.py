"""Structured logs: one JSON object a line, with the event name and its fields; never contact data, never a token.

Every role logs through :class:`JsonFormatter` (``serve``, ``web`` under gunicorn via
``engine.webapp.gunicorn_logging``, ``worker``, the CLI). The access log of every role is one ``request`` line per request
written by :func:`log_access` — from the WSGI middleware :class:`AccessLog` (``serve``, or any other WSGI server) or
from gunicorn's logger class — with the path masked by :func:`mask_path`: survey links ``/s/<token>``, unsubscribe
links ``/u/<token>``, kiosk enrollment codes ``/kiosk/enroll/<code>``, set-password links
``/dashboard/set-password/<token>`` (whatever the shape of the path: doubled slashes, dot segments, percent-encoded
slashes), API keys, and query values that carry secrets (SPEC §2 rule 12). The formatter
masks the same things in any message text too (a framework's "Exception on /s/<token>" line, a server's bad
request line).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

MASK = "[masked]"
# The longest path (with its query) an access line shows; the rest is counted, not written.
MAX_LOGGED_PATH = 2048
# A separator between path segments, in whatever shape a client sent it: repeated slashes (``/s//<token>``, which
# no route answers but a client or proxy may still send), ``.`` segments, percent-encoded slashes and dots (a raw
# request line in a server's message). A ``..`` segment is no token: the search goes on past it (``/s/../s/<token>``).
_SLASH = r"(?:/|%2[Ff])"
_DOT = r"(?:\.|%2[Ee])"
_SEPARATOR = rf"{_SLASH}+(?:{_DOT}{_SLASH}+)*"
_NOT_DOTS = rf"(?!{_DOT}{{1,2}}(?:{_SLASH}|[?#\s]|$))"
# A path segment after one of these is a bearer secret (in any letter case: masking a 404's path costs nothing).
_SECRET_SEGMENT = re.compile(
    rf"({_SLASH}(?:s|u|kiosk{_SEPARATOR}enroll|set-password){_SEPARATOR}){_NOT_DOTS}[^/?#\s\"']+", re.IGNORECASE
)
# The same segment in a request's path, which is one field and never prose: everything up to the next separator is
# the secret, whitespace and quotes a sloppy client left around a copied token included (``/s/%20<token>`` is a 404
# whose token is still good).
_SECRET_PATH_SEGMENT = re.compile(
    rf"({_SLASH}(?:s|u|kiosk{_SEPARATOR}enroll|set-password){_SEPARATOR}){_NOT_DOTS}[^/?#]+", re.IGNORECASE
)
# An API key (engine/api/auth.py: "se_" and 43 url-safe characters) wherever it appears.
_API_KEY = re.compile(r"\bse_[A-Za-z0-9_-]{16,}")
# Query parameters whose value is a secret or contact data, whatever it looks like.
_SECRET_PARAM = re.compile(r"token|key|code|secret|pass|sig|auth|credential|session|email|phone|cookie", re.I)
# A value that looks like a random token (long, url-safe, letters and digits mixed).
_TOKEN_LIKE = re.compile(r"(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_.~-]{20,}")


def mask_text(text: str) -> str:
    """``text`` with every token-bearing path segment and API key masked."""
    if "/" not in text and "se_" not in text and "%2" not in text:
        return text
    return _API_KEY.sub("se_" + MASK, _SECRET_SEGMENT.sub(lambda m: m.group(1) + MASK, text))


def mask_path(path: str, query: str = "") -> str:
    """A request's path (and query string) as it may be logged: tokens, codes, keys and contact data masked."""
    masked = mask_text(_SECRET_PATH_SEGMENT.sub(lambda m: m.group(1) + MASK, path))
    if "?" in masked and not query:
        masked, query = masked.split("?", 1)
    if not query:
        return masked
    pairs = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if value and (_SECRET_PARAM.search(name) or _TOKEN_LIKE.fullmatch(value) or "@" in value):
            value = MASK
        else:
            value = mask_text(value)
        pairs.append(f"{quote(mask_text(name), safe='[]/')}={quote(value, safe='[]/:,')}")
    return masked + "?" + "&".join(pairs)


_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": mask_text(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = mask_text(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = mask_text(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = mask_text(record.exc_text)
        if record.stack_info:
            entry["stack"] = mask_text(record.stack_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(getattr(h, "_survey_engine", False) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._survey_engine = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # Python's warnings become JSON lines too, not bare text on stderr
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The Twilio SDK logs each request's form fields (the recipient's number) at INFO: never let it.
    logging.getLogger("twilio").setLevel(logging.WARNING)


def log(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, event, extra=fields)


# -- the access log -------------------------------------------------------------------------------------------------

access_logger = logging.getLogger("survey_engine.access")


def access_fields(
    method: str, path: str, query: str, status: int, size: int, seconds: float, client: str | None
) -> dict[str, Any]:
    """The fields of one access-log line, its path masked (:func:`mask_path`) and then cut to
    :data:`MAX_LOGGED_PATH` characters (a server may take a request line of 100 KB: one request, one short line)."""
    logged = mask_path(path, query)
    if len(logged) > MAX_LOGGED_PATH:
        logged = f"{logged[:MAX_LOGGED_PATH]}...[{len(logged) - MAX_LOGGED_PATH} more characters]"
    return {
        "method": method,
        "path": logged,
        "status": status,
        "bytes": size,
        "duration_ms": round(seconds * 1000, 1),
        "client": client,
    }


def access_record(fields: dict[str, Any]) -> logging.LogRecord:
    """The ``request`` record of the access log (the same whatever server wrote it)."""
    return access_logger.makeRecord(access_logger.name, logging.INFO, __file__, 0, "request", (), None, extra=fields)


def log_access(method: str, path: str, query: str, status: int, size: int, seconds: float, client: str | None) -> None:
    """One access-log line: the same JSON whatever server ran the request."""
    if access_logger.isEnabledFor(logging.INFO):
        access_logger.handle(access_record(access_fields(method, path, query, status, size, seconds, client)))


def _status_code(status: str) -> int:
    try:
        return int(status.split(" ", 1)[0])
    except ValueError:
        return 0


class AccessLog:
    """WSGI middleware: one :func:`log_access` line per request, written when its response is finished."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        seen: dict[str, str] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"] = status
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        def done(size: int) -> None:
            log_access(environ.get("REQUEST_METHOD", "-"), environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
                       environ.get("QUERY_STRING", ""), _status_code(seen.get("status", "500")), size,
                       time.perf_counter() - started, environ.get("REMOTE_ADDR"))  # fmt: skip

        try:
            body = self.app(environ, capture)
        except BaseException:
            seen.setdefault("status", "500")
            done(0)
            raise
        return _Counted(body, done)


class _Counted:
    """A response body that counts its bytes and reports when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self.body = body
        self.done = done
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.size += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done(self.size)
