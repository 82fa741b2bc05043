"""Delivery reports that arrived before dispatch recorded their provider id: held until the id lands, then applied."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base, str_enum, utcnow
from engine.store.models.enums import InvitationState, SuppressionReason


class EarlyReport(Base):
    """A status callback or email event naming a provider id no invitation holds yet (the provider answered the
    send and reported on it before dispatch committed the id). :func:`engine.delivery.provider_reports.settle_held` applies it once
    the id lands, and deletes it; one the engine never claims is purged after :data:`engine.delivery.provider_reports.HOLD_FOR`."""

    __tablename__ = "early_reports"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    provider_id: Mapped[str] = mapped_column(String(200), index=True)
    # The report's own key (e.g. "<MessageSid>:<status>", SendGrid's sg_event_id): a retried callback is held once.
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    event: Mapped[str] = mapped_column(String(32))
    state: Mapped[InvitationState | None] = mapped_column(str_enum(InvitationState))
    detail: Mapped[str | None] = mapped_column(Text)
    suppress: Mapped[SuppressionReason | None] = mapped_column(str_enum(SuppressionReason))
    suppress_channels: Mapped[list[str]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
