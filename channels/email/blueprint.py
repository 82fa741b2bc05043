"""The email channel's blueprint: the unsubscribe pages (``/u/<token>``) and SendGrid's event webhook.

Routes are attached by :mod:`channels.email.unsubscribe` and :mod:`channels.email.events`; import
:mod:`channels.email.routes` to get the blueprint with both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint

bp = Blueprint("email", __name__, template_folder=str(Path(__file__).resolve().parent / "templates"))


@bp.after_request
def private_pages(response: Any) -> Any:
    # The token is in the address: no referrer leaks it, nothing is cached.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    return response
