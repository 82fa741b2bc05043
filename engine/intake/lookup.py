"""One reported transaction as the API tells it back: its decision, and its invitation with the delivery history.

``GET /api/v1/transactions/<service>/<id>`` (:mod:`engine.api.transactions`) parses, authorizes and serializes;
what is read, and how it reads, is here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.intake.facts import invitation_view, iso
from engine.store.models import DeliveryEvent, Invitation, Office, Service, Transaction


def transaction_status(session: Session, service: str, external_id: str) -> dict[str, Any] | None:
    """The transaction ``external_id`` of ``service`` (a slug) with its invitation and that invitation's delivery
    events in order, as JSON values; None when no such transaction was reported."""
    row = session.execute(
        select(Transaction, Office.code)
        .join(Service, Service.id == Transaction.service_id)
        .outerjoin(Office, Office.id == Transaction.office_id)
        .where(Service.slug == service, Transaction.external_id == external_id)
    ).one_or_none()
    if row is None:
        return None
    tx, office = row
    invitation = session.execute(
        select(Invitation).where(Invitation.transaction_id == tx.id).order_by(Invitation.created_at)
    ).scalar_one_or_none()
    return {
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
        "invitation": _invitation_detail(session, invitation) if invitation is not None else None,
    }


def _invitation_detail(session: Session, invitation: Invitation) -> dict[str, Any]:
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
    return detail
