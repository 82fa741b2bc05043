"""Suppressing and restoring contacts (SPEC §2 rule 3): opt-outs, bounces and carrier blocks, per channel.

A suppression is kept by the keyed hash of the address, never the address. Which channels reach people at an
address, and of which kind, each channel states itself (``Channel.suppresses_by``: a phone for ``sms`` and
``ivr``, an email for ``email``); a channel that addresses nobody (the kiosk, the console) is not one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.channels import installed_channels
from engine.common.crypto import ContactCipher
from engine.store.db import utcnow
from engine.store.models import AuditEntry, ContactKind, Suppression, SuppressionReason


def addressed_channels() -> dict[str, ContactKind]:
    """The installed channels that reach people at an address, each with the contact kind it suppresses by."""
    return {name: cls.suppresses_by for name, cls in installed_channels().items() if cls.suppresses_by is not None}


def channels_for(kind: ContactKind) -> list[str]:
    """The channels an opt-out of a ``kind`` address covers (a phone: ``sms`` and ``ivr``)."""
    return [name for name, k in addressed_channels().items() if k is kind]


def suppression_kind(channel: str) -> ContactKind | None:
    """The contact kind a suppression on ``channel`` is kept against; None for a channel that addresses nobody."""
    return addressed_channels().get(channel)


@dataclass(frozen=True)
class Recorded:
    channel: str
    reason: str
    created_at: datetime
    new: bool


def suppress(
    session: Session,
    cipher: ContactCipher,
    kind: ContactKind,
    address: str,
    channels: list[str],
    reason: SuppressionReason,
    source: str,
    note: str | None = None,
    now: datetime | None = None,
) -> list[Recorded]:
    """Record a suppression of ``address`` on each of ``channels``; one already in force is kept as it is."""
    return suppress_hash(session, cipher.lookup_hash(kind.value, address), kind, channels, reason, source, note, now)


def suppress_hash(
    session: Session,
    contact_hash: str,
    kind: ContactKind,
    channels: list[str],
    reason: SuppressionReason,
    source: str,
    note: str | None = None,
    now: datetime | None = None,
) -> list[Recorded]:
    now = now or utcnow()
    active = {
        s.channel: s
        for s in session.execute(
            select(Suppression).where(
                Suppression.contact_hash == contact_hash,
                Suppression.channel.in_(channels),
                Suppression.restored_at.is_(None),
            )
        ).scalars()
    }
    out = []
    for channel in channels:
        if channel in active:
            existing = active[channel]
            out.append(Recorded(channel, existing.reason.value, existing.created_at, False))
            continue
        row = Suppression(
            contact_hash=contact_hash,
            contact_kind=kind,
            channel=channel,
            reason=reason,
            source=source,
            note=note,
            created_at=now,
        )
        session.add(row)
        out.append(Recorded(channel, reason.value, now, True))
    session.flush()
    return out


def restore(
    session: Session,
    cipher: ContactCipher,
    kind: ContactKind,
    address: str,
    channels: list[str],
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> int:
    """Lift the suppressions of ``address`` on ``channels``; audited with who and why."""
    now = now or utcnow()
    contact_hash = cipher.lookup_hash(kind.value, address)
    rows = (
        session.execute(
            select(Suppression).where(
                Suppression.contact_hash == contact_hash,
                Suppression.channel.in_(channels),
                Suppression.restored_at.is_(None),
            )
        )
        .scalars()
        .all()
    )
    for row in rows:
        row.restored_at = now
        row.restored_by = actor
        row.restore_reason = reason
    if rows:
        session.add(
            AuditEntry(
                at=now,
                actor=actor,
                action="suppression.restore",
                subject=f"{kind.value}:{contact_hash[:12]}",
                detail={"channels": sorted(r.channel for r in rows), "reason": reason, "ids": [r.id for r in rows]},
            )
        )
    return len(rows)


def suppressed_channels(session: Session, contact_hash: str) -> set[str]:
    return set(
        session.execute(
            select(Suppression.channel).where(
                Suppression.contact_hash == contact_hash, Suppression.restored_at.is_(None)
            )
        ).scalars()
    )
