"""``/api/v1/transactions``: intake of one or a batch of transactions, and a transaction's history."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from sqlalchemy import select

from engine.api.auth import require_scope
from engine.api.problems import Problem
from engine.common.errors import FieldError
from engine.intake.submit import MAX_BATCH, Intake, invitation_view, iso
from engine.store.db import unit_of_work
from engine.store.models import DeliveryEvent, Invitation, Office, Scope, Service, Transaction
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
        unknown = sorted(set(body) - {"transactions"})
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
    with unit_of_work(rt.sessions) as session:
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
        row = session.execute(
            select(Transaction, Office.code)
            .join(Service, Service.id == Transaction.service_id)
            .outerjoin(Office, Office.id == Transaction.office_id)
            .where(Service.slug == service, Transaction.external_id == external_id)
        ).one_or_none()
        if row is None:
            raise Problem(404, f"No transaction {external_id!r} was reported for {service!r}.", kind="not-found")
        tx, office = row
        invitation = session.execute(
            select(Invitation).where(Invitation.transaction_id == tx.id).order_by(Invitation.created_at)
        ).scalar_one_or_none()
        detail: dict[str, Any] | None = None
        if invitation is not None:
            events = session.execute(
                select(DeliveryEvent).where(DeliveryEvent.invitation_id == invitation.id).order_by(DeliveryEvent.id)
            ).scalars()
            detail = invitation_view(
                {
                    "id": invitation.id,
                    "channel": invitation.channel,
                    "state": invitation.state,
                    "send_at": invitation.send_at,
                    "expires_at": invitation.expires_at,
                }
            )
            assert detail is not None
            detail.update(
                sent_at=iso(invitation.sent_at),
                attempts=invitation.attempts,
                provider_id=invitation.provider_id,
                reason=invitation.reason,
                events=[
                    {"at": iso(e.at), "event": e.event, "state": e.state.value if e.state else None, "detail": e.detail}
                    for e in events
                ],
            )
    return jsonify(
        {
            "id": tx.external_id,
            "service": service,
            "completed_at": iso(tx.completed_at),
            "received_at": iso(tx.received_at),
            "touchpoint": tx.touchpoint,
            "office": office,
            "language": tx.language,
            "test": tx.test,
            "decision": tx.decision.value,
            "reason": tx.reason,
            "channel": tx.channel,
            "invitation": detail,
        }
    )
