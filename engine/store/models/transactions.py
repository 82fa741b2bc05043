"""Transactions as reported by systems of record, their service-level indicators, and their contact data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base, str_enum
from engine.store.models.enums import Decision


class Transaction(Base):
    """One completed interaction of one customer with a service, and the decision taken on it."""

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("service_id", "external_id"),
        Index("ix_transactions_service_completed", "service_id", "completed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    completed_at: Mapped[datetime]
    received_at: Mapped[datetime]
    touchpoint: Mapped[str | None] = mapped_column(String(16))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), index=True)
    language: Mapped[str | None] = mapped_column(String(35))
    consent_sms: Mapped[bool] = mapped_column(default=False)
    consent_voice: Mapped[bool] = mapped_column(default=False)
    test: Mapped[bool] = mapped_column(default=False)
    decision: Mapped[Decision] = mapped_column(str_enum(Decision))
    # Machine-readable detail of the decision (which rule, which channel was skipped and why).
    reason: Mapped[str | None] = mapped_column(String(200))
    # The channel the transaction is attributed to (SPEC §2 rule 5), sampled out or not.
    channel: Mapped[str | None] = mapped_column(String(32))
    # Where the transaction came from: the intake API, a post-call IVR hand-off, ...
    source: Mapped[str] = mapped_column(String(32), default="api")
    attributes: Mapped[dict[str, Any] | None]
    # The survey (flow version and PRA block) it was decided under: ``surveys.id`` (no foreign key, see there).
    survey_id: Mapped[int | None] = mapped_column(Integer)


class ServiceLevel(Base):
    """One numeric service-level indicator of a transaction (A-11 280.7, e.g. wait time), averaged in reports."""

    __tablename__ = "service_levels"

    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transactions.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class Contact(Base):
    """How to reach a transaction's customer: encrypted values and keyed lookup hashes.

    Retention erases the encrypted values once no invitation of the transaction can be answered any more; the
    hashes stay so that cooldowns and opt-outs keep working.
    """

    __tablename__ = "contacts"

    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transactions.id", ondelete="CASCADE"), primary_key=True
    )
    phone_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    email_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    timezone: Mapped[str | None] = mapped_column(String(64))
    erased_at: Mapped[datetime | None]
