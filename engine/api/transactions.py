"""``/api/v1/transactions``: intake of one or a batch of transactions, and a transaction's history."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from engine.api.auth import require_scope
from engine.common.errors import FieldError
from engine.intake.lookup import transaction_status
from engine.intake.submit import MAX_BATCH, Intake
from engine.intake.validation import shown
from engine.store.db import unit_of_work
from engine.store.models import Scope
from engine.webapp.problems import Problem
from engine.webapp.support import json_body, runtime

bp = Blueprint("transactions", __name__, url_prefix="/api/v1")


@bp.post("/transactions")
@require_scope(Scope.INTAKE)
def post_transactions() -> Any:
    body = json_body()
    if not isinstance(body, dict):
        raise Problem(400, 'The body must be a JSON object: one transaction, or {"transactions": [...]}.')
    caller = g.caller
    rt = runtime()
    if "transactions" in body:
        unknown = [shown(k) for k in sorted(set(body) - {"transactions"})]  # echoed safely: escaped, cut
        if unknown:
            raise Problem(400, f"Unknown top-level fields: {', '.join(unknown)}.", kind="unknown-field",
                          errors=[FieldError(k, "unknown field") for k in unknown])  # fmt: skip
        items = body["transactions"]
        if not isinstance(items, list) or not items:
            raise Problem(400, "'transactions' must be a non-empty list.", kind="invalid-batch",
                          errors=[FieldError("transactions", "must be a non-empty list")])  # fmt: skip
        if len(items) > MAX_BATCH:
            raise Problem(413, f"A batch holds at most {MAX_BATCH} transactions; this one has {len(items)}.",
                          kind="batch-too-large", errors=[FieldError("transactions", f"at most {MAX_BATCH} items")])  # fmt: skip
        with unit_of_work(rt.sessions) as session:
            results = Intake(rt).submit(session, items, set(caller.services))
        for index, item in enumerate(results):
            for error in item.get("errors", ()):
                error["field"] = f"transactions[{index}]" + (f".{error['field']}" if error["field"] else "")
        return jsonify({"results": results})

    slug = body.get("service")
    if isinstance(slug, str) and slug in rt.catalog.services and not caller.may_use(slug):
        raise Problem(403, f"This API key may not submit transactions for {slug!r}.", kind="service-out-of-reach")
    # Intake writes one transaction with one statement; a prompt's one-time link is a second write.
    with unit_of_work(rt.sessions, one_write=body.get("prompt") is not True) as session:
        (item,) = Intake(rt).submit(session, [body], set(caller.services))
    if item["decision"] == "invalid":
        errors = [FieldError(e["field"], e["message"]) for e in item["errors"]]
        raise Problem(422, "The transaction is invalid; each error names its field.", kind="invalid-transaction",
                      errors=errors, extra={"id": item["id"], "decision": "invalid"})  # fmt: skip
    return jsonify(item)


@bp.get("/transactions/<service>/<path:external_id>")
@require_scope(Scope.INTAKE, Scope.REPORTS)
def get_transaction(service: str, external_id: str) -> Any:
    rt = runtime()
    if service not in rt.catalog.services and service not in rt.service_ids:
        raise Problem(404, f"There is no service {service!r}.", kind="unknown-service")
    if not g.caller.may_use(service):
        raise Problem(403, f"This API key may not read transactions of {service!r}.", kind="service-out-of-reach")
    with rt.sessions() as session:
        status = transaction_status(session, service, external_id)
    if status is None:
        raise Problem(404, f"No transaction {external_id!r} was reported for {service!r}.", kind="not-found")
    return jsonify(status)
