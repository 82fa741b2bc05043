"""The A-11 report endpoints (SPEC §6.3): the §6.1 quarterly collection and the §6.2 response-level file."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")
