"""Operations: ``/healthz`` (the process is up), ``/readyz`` (database reachable, migrations current), OpenAPI."""

from __future__ import annotations

import copy
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, jsonify
from sqlalchemy import text

from engine.store import migrate
from engine.webapp.problems import problem_response
from engine.webapp.support import public, runtime

bp = Blueprint("ops", __name__)
OPENAPI = Path(__file__).resolve().parent / "openapi.yaml"


@cache
def openapi_document() -> dict[str, Any]:
    with OPENAPI.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
        return document


def served_document() -> dict[str, Any]:
    """The document with this deployment's services and offices as ``enum``s: as strict as the code."""
    rt = runtime()
    services = tuple(sorted(set(rt.catalog.services) | set(rt.service_ids)))
    return _with_catalog(services, tuple(sorted(rt.catalog.offices)))


@lru_cache(maxsize=8)
def _with_catalog(services: tuple[str, ...], offices: tuple[str, ...]) -> dict[str, Any]:
    document = copy.deepcopy(openapi_document())
    schemas = document["components"]["schemas"]
    if services:
        schemas["ServiceSlug"]["enum"] = list(services)
    if offices:
        schemas["Transaction"]["properties"]["office"]["enum"] = [*offices, None]  # null: left out
    return document


@bp.get("/healthz")
@public("liveness probe for load balancers; says nothing about data")
def healthz() -> Any:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@public("readiness probe for load balancers; says only whether the database is usable")
def readyz() -> Any:
    rt = runtime()
    try:
        with rt.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return problem_response(503, "The database cannot be reached.", kind="database-unreachable")
    if not migrate.is_current(rt.engine):
        return problem_response(503, "The database schema is not current: run `survey-engine db upgrade`.",
                                kind="migrations-pending")  # fmt: skip
    return jsonify({"status": "ready", "database": "ok", "migrations": "current"})


@bp.get("/api/v1/openapi.json")
@public("the published API contract")
def openapi() -> Any:
    return jsonify(served_document())
