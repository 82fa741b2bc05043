"""The start page ``GET /`` (SPEC §8: "``GET /`` says where things are"): the dashboard, the API and its document,
the probes, the kiosk and how customers reach their surveys, in the visitor's language. It names no service and
holds nothing private.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template

from engine.common.i18n import available_languages
from engine.webapp.request_checks import page_language
from engine.webapp.support import public

bp = Blueprint("home", __name__)


@bp.get("/")
@public("the start page: links to the other public and signed-in pages, nothing private")
def home() -> Any:
    g.language = language = page_language()
    others = [lang for lang in available_languages() if lang != language]
    return render_template("home.html", language=language, other_languages=others)
