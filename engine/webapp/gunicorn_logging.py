"""gunicorn's logging for the ``web`` role: the same JSON lines as ``serve``, tokens masked (SPEC §2 rule 12).

``survey-engine web`` passes ``--logger-class engine.webapp.gunicorn_logging.JsonLogger``; run by hand, gunicorn reads the
same from this module as its configuration: ``gunicorn -c python:engine.webapp.gunicorn_logging wsgi:app``. The access
log is one ``request`` line per request built by ``engine.common.logs`` (the path masked) and, like gunicorn's own
messages, goes to standard error.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from gunicorn import glogging

from engine.common.logs import JsonFormatter, access_fields, access_record, mask_text

# gunicorn settings, when this module is given as its configuration (-c python:engine.webapp.gunicorn_logging).
logger_class = "engine.webapp.gunicorn_logging.JsonLogger"
accesslog = "-"
errorlog = "-"


class JsonLogger(glogging.Logger):
    """gunicorn's logger, writing JSON lines (engine.common.logs.JsonFormatter) and the engine's access line."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter()
        if cfg.accesslog == "-":  # standard error, like every other log line of the engine
            for handler in list(self.access_log.handlers):
                self.access_log.removeHandler(handler)
            handler = logging.StreamHandler(sys.stderr)
            handler._gunicorn = True  # type: ignore[attr-defined]
            self.access_log.addHandler(handler)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log.handlers:
            return
        try:
            status = int(str(resp.status).split(" ", 1)[0])
        except ValueError:
            status = 0
        fields = access_fields(
            str(environ.get("REQUEST_METHOD", req.method)),
            str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", req.path or "")),
            str(environ.get("QUERY_STRING", "")),
            status,
            int(getattr(resp, "sent", 0) or 0),
            request_time.total_seconds(),
            environ.get("REMOTE_ADDR"),
        )
        try:
            self.access_log.handle(access_record(fields))
        except Exception as exc:  # never let a log line fail a request
            self.error(mask_text(f"access log failed: {exc}"))
