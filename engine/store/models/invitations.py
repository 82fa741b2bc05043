"""Invitations (the decision to ask, on one channel, at one time) and their delivery history."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base, str_enum, utcnow
from engine.store.models.enums import InvitationState


class Invitation(Base):
    """SPEC §3 states: scheduled → sending → sent → delivered → answered, or failed/unknown/expired/cancelled."""

    __tablename__ = "invitations"
    __table_args__ = (
        Index("ix_invitations_due", "state", "send_at"),
        Index("ix_invitations_contact", "contact_hash", "send_at"),
        Index("ix_invitations_service_day", "service_id", "send_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    transaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transactions.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    channel: Mapped[str] = mapped_column(String(32))
    state: Mapped[InvitationState] = mapped_column(str_enum(InvitationState))
    # Keyed hash of the address this invitation goes to (cooldown across services).
    contact_hash: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(35))
    test: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When it is due (moved on by quiet hours and by retry backoff).
    send_at: Mapped[datetime]
    # The last moment it may still be sent: completed_at + the service's window (at most 48 h).
    send_by: Mapped[datetime]
    # Answers are taken until then: planned as send_at + answer_window, fixed at the actual send.
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # When the one reminder (``reminder_after``) was handed over; set, durably, before the provider is called.
    reminded_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(100), index=True)
    # Why it was cancelled, failed, expired or left unknown.
    reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The survey (flow version and PRA block) it was sent under: ``surveys.id`` (no foreign key, see there).
    survey_id: Mapped[int | None] = mapped_column(Integer)


class DeliveryEvent(Base):
    """One step of an invitation's delivery: claimed, handed to the provider, a status callback, an error."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    invitation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invitations.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    event: Mapped[str] = mapped_column(String(32))
    state: Mapped[InvitationState | None] = mapped_column(str_enum(InvitationState))
    detail: Mapped[str | None] = mapped_column(Text)
    # The provider's own id of this event (a status callback's sid + status, SendGrid's sg_event_id): applied once.
    provider_event_id: Mapped[str | None] = mapped_column(String(200), unique=True)
