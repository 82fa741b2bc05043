"""Webhook receipts: each provider request applied once, with the answer it got (for a retried request)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base, utcnow


class WebhookReceipt(Base):
    """A provider request already handled: an SMS by its MessageSid, an IVR step by CallSid and step."""

    __tablename__ = "webhook_receipts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The body answered the first time, so that a retry gets the same answer and changes nothing.
    reply: Mapped[str | None] = mapped_column(Text)
