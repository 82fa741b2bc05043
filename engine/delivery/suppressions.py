"""Suppressing and restoring contacts (SPEC §2 rule 3): opt-outs, bounces and carrier blocks, per channel.

A suppression is kept by the keyed hash of the address, never the address. Which channels reach people at an
address, and of which kind, each channel states itself (``Channel.suppresses_by``: a phone for ``sms`` and
``ivr``, an email for ``email``); a channel that addresses nobody (the kiosk, the console) is not one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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
    """:func:`suppress` by the contact's keyed hash. Safe in many transactions at once: one suppression in force per
    contact and channel (the partial unique index ``uq_suppressions_active``); an opt-out that meets one recorded
    meanwhile by another transaction (on PostgreSQL it waits for that one's commit) is answered as a repeated one."""
    now = now or utcnow()
    found = _active(session, contact_hash, kind, channels)
    # In one order everywhere, so that two transactions inserting for the same contact never wait on each other.
    for channel in sorted(set(channels) - set(found)):
        for _ in range(3):
            if _insert(session, contact_hash, kind, channel, reason, source, note, now):
                break
            # Another transaction recorded it first (committed by now): that one is in force.
            if existing := _active(session, contact_hash, kind, [channel]).get(channel):
                found[channel] = existing
                break
        else:  # recorded and restored meanwhile, three times over: let the caller's transaction fail and be retried
            raise RuntimeError(f"suppression of {kind.value}:{contact_hash[:12]} on {channel} kept changing")
    out = []
    for channel in channels:
        if channel in found:
            existing = found[channel]
            out.append(Recorded(channel, existing.reason.value, existing.created_at, False))
        else:
            out.append(Recorded(channel, reason.value, now, True))
    return out


def _active(session: Session, contact_hash: str, kind: ContactKind, channels: list[str]) -> dict[str, Suppression]:
    """The suppressions in force of a contact on ``channels``, by channel."""
    rows = session.execute(
        select(Suppression)
        .where(
            Suppression.contact_hash == contact_hash,
            Suppression.contact_kind == kind,
            Suppression.channel.in_(channels),
            Suppression.restored_at.is_(None),
        )
        .execution_options(populate_existing=True)
    ).scalars()
    return {s.channel: s for s in rows}


def _insert(
    session: Session,
    contact_hash: str,
    kind: ContactKind,
    channel: str,
    reason: SuppressionReason,
    source: str,
    note: str | None,
    now: datetime,
) -> bool:
    """Insert a suppression in force unless one is (``ON CONFLICT DO NOTHING`` on ``uq_suppressions_active``);
    whether it was inserted."""
    upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        upsert(Suppression)
        .values(
            contact_hash=contact_hash,
            contact_kind=kind,
            channel=channel,
            reason=reason,
            source=source,
            note=note,
            created_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=[Suppression.contact_hash, Suppression.contact_kind, Suppression.channel],
            index_where=Suppression.restored_at.is_(None),
        )
        .returning(Suppression.id)
    )
    return session.execute(statement).scalar_one_or_none() is not None


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
