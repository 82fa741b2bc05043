"""Delivery reports from providers (status callbacks, event webhooks), applied once through one state table.

A channel maps its provider's status words to ours and calls :func:`apply_status`; this module keeps the allowed
moves of SPEC §3's states, ignores a report already applied (by the provider's event id) or one that would move
an invitation backwards, and records the suppression a report calls for (an undelivered text, a hard bounce).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.db import utcnow
from engine.models import ContactKind, DeliveryEvent, Invitation, InvitationState, SuppressionReason
from engine.suppressions import ADDRESSED_CHANNELS, suppress_hash

S = InvitationState
# Which reported state may follow which (a report never moves an invitation backwards; a late "sent" after
# "delivered" changes nothing; "unknown" is settled by any report).
ALLOWED: dict[InvitationState, set[InvitationState]] = {
    S.SENDING: {S.SENT, S.DELIVERED, S.FAILED},
    S.UNKNOWN: {S.SENT, S.DELIVERED, S.FAILED},
    S.SENT: {S.DELIVERED, S.FAILED},
    S.DELIVERED: set(),
    S.ANSWERED: set(),
}


@dataclass(frozen=True)
class Report:
    provider_id: str
    # Unique per provider event (e.g. "<MessageSid>:<MessageStatus>", SendGrid's sg_event_id): applied once.
    event_key: str
    event: str
    state: InvitationState | None = None
    detail: str | None = None
    suppress: SuppressionReason | None = None
    suppress_channels: tuple[str, ...] = ()


def apply_status(session: Session, report: Report, now: datetime | None = None) -> bool:
    """Apply one delivery report; False when it was already applied or names no invitation of ours."""
    now = now or utcnow()
    invitation = session.execute(
        select(Invitation).where(Invitation.provider_id == report.provider_id).with_for_update()
    ).scalar_one_or_none()
    if invitation is None:
        return False
    try:
        with session.begin_nested():
            session.add(
                DeliveryEvent(
                    invitation_id=invitation.id,
                    at=now,
                    event=report.event,
                    state=report.state,
                    detail=report.detail,
                    provider_event_id=report.event_key,
                )
            )
            session.flush()
    except IntegrityError:
        return False
    if report.state is not None and report.state in ALLOWED.get(invitation.state, set()):
        invitation.state = report.state
        invitation.updated_at = now
        if report.state is S.FAILED:
            invitation.reason = report.detail or report.event
        if invitation.sent_at is None and report.state in (S.SENT, S.DELIVERED):
            invitation.sent_at = now
    if report.suppress is not None and invitation.contact_hash:
        channels = list(report.suppress_channels or (invitation.channel,))
        kind = ADDRESSED_CHANNELS.get(invitation.channel, ContactKind.PHONE)
        suppress_hash(session, invitation.contact_hash, kind, channels, report.suppress,
                      f"{invitation.channel}:delivery-report", report.detail, now)  # fmt: skip
    return True
