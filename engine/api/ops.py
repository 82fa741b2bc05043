"""Operations: ``/healthz`` (the process is up), ``/readyz`` (database reachable, migrations current; else 503 with
``Retry-After``), OpenAPI."""

from __future__ import annotations

import copy
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, jsonify
from sqlalchemy import text

from engine.delivery.suppressions import addressed_channels
from engine.store import migrate
from engine.webapp.problems import problem_response
from engine.webapp.request_checks import RETRY_AFTER_SECONDS
from engine.webapp.support import public, runtime

bp = Blueprint("ops", __name__)
OPENAPI = Path(__file__).resolve().parent / "openapi.yaml"
# Not ready is a 503 with ``Retry-After``, as every other 503 of the engine (engine.webapp.request_checks).
RETRY = {"Retry-After": str(RETRY_AFTER_SECONDS)}


@cache
def openapi_document() -> dict[str, Any]:
    with OPENAPI.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
        return document


def served_document() -> dict[str, Any]:
    """The document with this deployment's services and offices, and the installed channels a contact can be
    suppressed on, as ``enum``s: as strict as the code."""
    rt = runtime()
    services = tuple(sorted(set(rt.catalog.services) | set(rt.service_ids)))
    # What the opt-out API accepts (engine/api/opt_outs.py): every installed channel that reaches people at an
    # address (its ``suppresses_by``), a channel package's as well as the shipped sms, ivr and email.
    addressed = tuple(sorted((name, kind.value) for name, kind in addressed_channels().items()))
    return _with_catalog(services, tuple(sorted(rt.catalog.offices)), addressed)


@lru_cache(maxsize=8)
def _with_catalog(
    services: tuple[str, ...], offices: tuple[str, ...], addressed: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    document = copy.deepcopy(openapi_document())
    schemas = document["components"]["schemas"]
    if services:
        schemas["ServiceSlug"]["enum"] = list(services)
    if offices:
        schemas["Transaction"]["properties"]["office"]["enum"] = [*offices, None]  # null: left out
    if addressed:
        schemas["SuppressionChannel"]["enum"] = [name for name, _ in addressed]
        for request in ("OptOutRequest", "OptOutRestoreRequest"):
            # One branch per contact kind (``required: [phone]``, ``[email]``): the channels that kind is reached on.
            for branch in schemas[request]["oneOf"]:
                (kind,) = branch["required"]
                names = [name for name, reached_by in addressed if reached_by == kind]
                branch["properties"]["channel"] = {"enum": names} if names else False
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
        return problem_response(503, "The database cannot be reached.", kind="database-unreachable",
                                headers=RETRY)  # fmt: skip
    if not migrate.is_current(rt.engine):
        return problem_response(503, "The database schema is not current: run `survey-engine db upgrade`.",
                                kind="migrations-pending", headers=RETRY)  # fmt: skip
    return jsonify({"status": "ready", "database": "ok", "migrations": "current"})


@bp.get("/api/v1/openapi.json")
@public("the published API contract")
def openapi() -> Any:
    return jsonify(served_document())
