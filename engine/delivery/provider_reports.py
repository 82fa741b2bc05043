"""Delivery reports from providers (status callbacks, event webhooks), applied once through one state table.

A channel maps its provider's status words to ours and calls :func:`apply_status`; this module finds the invitation
a report names and hands the report to the lifecycle (engine/delivery/lifecycle.py: recorded once by the provider's
event id, never moving an invitation backwards), and records the suppression a report calls for (an undelivered
text, a hard bounce).

A report can arrive before dispatch has committed the provider id it names (a provider reports within
milliseconds of accepting a message). Such a report is held in ``early_reports`` (once by its event key) and
:func:`settle_held` applies it when the id lands: dispatch calls it after it records provider ids, and a webhook
after it held a report (whichever commits second sees the other's row, so none is dropped), and each report is
applied once (the delivery event's unique key). A held report no invitation ever claims is purged after
:data:`HOLD_FOR`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.delivery import lifecycle
from engine.delivery.suppressions import suppress_hash, suppression_kind
from engine.store.db import unit_of_work, utcnow
from engine.store.models import EarlyReport, Invitation, InvitationState, SuppressionReason

# How long a report naming no invitation of ours is kept for dispatch to claim it (then it is someone else's).
HOLD_FOR = timedelta(days=7)


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
    """Apply one delivery report; False when it was already applied, or names no invitation of ours yet (then it
    is held for :func:`settle_held`: the caller runs that after its commit)."""
    now = now or utcnow()
    invitation = session.execute(
        select(Invitation).where(Invitation.provider_id == report.provider_id).with_for_update()
    ).scalar_one_or_none()
    if invitation is None:
        _hold(session, report, now)
        return False
    if not lifecycle.report(session, invitation, report.state, word=report.event, key=report.event_key,
                            detail=report.detail, now=now):  # fmt: skip
        return False
    kind = suppression_kind(invitation.channel)
    if report.suppress is not None and invitation.contact_hash and kind is not None:
        channels = list(report.suppress_channels or (invitation.channel,))
        suppress_hash(session, invitation.contact_hash, kind, channels, report.suppress,
                      f"{invitation.channel}:delivery-report", report.detail, now)  # fmt: skip
    return True


def _hold(session: Session, report: Report, now: datetime) -> None:
    """Keep a report whose provider id no invitation holds yet (a retried one is kept once); drop the held
    reports older than :data:`HOLD_FOR` (no invitation of ours claimed them)."""
    session.execute(delete(EarlyReport).where(EarlyReport.received_at < now - HOLD_FOR))
    try:
        with session.begin_nested():
            fields = {f.name: getattr(report, f.name) for f in dataclasses.fields(Report)}
            session.add(EarlyReport(**fields | {"suppress_channels": list(report.suppress_channels)}, received_at=now))
            session.flush()
    except IntegrityError:
        return


def settle_held(sessions: sessionmaker[Session], provider_ids: Collection[str]) -> int:
    """Apply, in arrival order, the held reports of those ``provider_ids`` an invitation now holds, and delete
    them. In a transaction of its own (run it after the commit
    that recorded the ids, or that held a report). The number applied."""
    ids = sorted({p for p in provider_ids if p})
    if not ids:
        return 0
    applied = 0
    with unit_of_work(sessions) as session:
        held = (
            session.execute(
                select(EarlyReport)
                .where(EarlyReport.provider_id.in_(ids))
                .order_by(EarlyReport.id)
                .with_for_update(skip_locked=True)  # another settle is applying them: it has them
            )
            .scalars()
            .all()
        )
        if not held:
            return 0
        claimed = set(session.execute(select(Invitation.provider_id).where(Invitation.provider_id.in_(ids))).scalars())
        for row in held:
            if row.provider_id not in claimed:
                continue
            fields = {f.name: getattr(row, f.name) for f in dataclasses.fields(Report)}
            report = Report(**fields | {"suppress_channels": tuple(row.suppress_channels)})
            applied += apply_status(session, report, row.received_at)
            session.execute(delete(EarlyReport).where(EarlyReport.id == row.id))
    return applied
