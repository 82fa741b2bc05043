"""Public data (SPEC §6.3, A-11 280.7): ``GET /data`` and ``GET /data/<service>`` show each service's submitted
quarters to anyone, without sign-in, and ``GET /data/<service>/<fy>-q<n>.csv`` gives the submitted §6.1 CSV.

This package owns those pages: what they show is read from the filed submissions only (the §6.1 JSON and CSV
frozen by ``engine.reporting.submissions``), never recomputed from live data, so nothing appears that was not
submitted. They show figures only: no respondent's free text, no contact data, not who filed a quarter.

May import: ``engine.reporting``, ``engine.dashboard.charts``, ``engine.common``, ``engine.store``, ``engine.catalog``
and ``engine.webapp``; nothing imports it but ``engine.app``.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("publicdata", __name__)

from engine.publicdata import views  # noqa: E402,F401  (registers the routes on bp)
