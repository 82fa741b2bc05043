"""The program managers' dashboard at ``/dashboard`` (SPEC §6.3): sign-in, per-service charts and tables."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")

from engine.dashboard import views  # noqa: E402,F401  (registers the routes on bp)
