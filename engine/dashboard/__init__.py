"""The program managers' dashboard at ``/dashboard`` (SPEC §6.3): accounts and sign-in (``accounts``, ``signin``),
the figures of a service page (``figures``, from ``engine.reporting``), SVG charts (``charts``) and the views.

May import: ``engine.reporting``, ``engine.catalog``, ``engine.surveys``, ``engine.store``, ``engine.common``,
``engine.webapp`` and the wiring (``engine.runtime``, ``engine.settings``, ``engine.channels``). Nothing imports it
but ``engine.app``, the CLI and ``engine.publicdata`` (its charts).
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")

from engine.dashboard import views  # noqa: E402,F401  (registers the routes on bp)
