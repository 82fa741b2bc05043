"""Suppressions (opt-outs, bounces, carrier blocks) per contact hash and channel, and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base, str_enum, utcnow
from engine.store.models.enums import ContactKind, SuppressionReason


class Suppression(Base):
    """A contact that must not be asked on one channel. Restoring keeps the row and records who and why."""

    __tablename__ = "suppressions"
    __table_args__ = (
        Index("ix_suppressions_lookup", "contact_hash", "channel"),
        # At most one suppression in force per contact and channel (migration 0011_one_active_suppression): opt-outs
        # of one address arriving at once record one, the others find it (engine/delivery/suppressions.py).
        Index(
            "uq_suppressions_active",
            "contact_hash",
            "contact_kind",
            "channel",
            unique=True,
            postgresql_where=text("restored_at IS NULL"),
            sqlite_where=text("restored_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_hash: Mapped[str] = mapped_column(String(64))
    contact_kind: Mapped[ContactKind] = mapped_column(str_enum(ContactKind))
    channel: Mapped[str] = mapped_column(String(32))
    reason: Mapped[SuppressionReason] = mapped_column(str_enum(SuppressionReason))
    # Who recorded it: "api-key:<key name>", "sms:inbound", "email:event", ...
    source: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    restored_at: Mapped[datetime | None]
    restored_by: Mapped[str | None] = mapped_column(String(128))
    restore_reason: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    """Who did what that an auditor may ask about: restores, key creation, device enrolment and revocation."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(320))
    detail: Mapped[dict[str, Any] | None]
