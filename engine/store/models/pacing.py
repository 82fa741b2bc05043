"""Send pacing: one row per (channel, sender) holding the next moment that sender may send (engine/delivery/pacing.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base


class SendPacing(Base):
    """The budget of one sender (a Twilio number or Messaging Service, an email From address) on one channel.

    Every dispatcher takes its send slots from here under a row lock (``SELECT ... FOR UPDATE``), so all the worker
    processes sharing a PostgreSQL database together never send faster than the channel's ``send_rate``."""

    __tablename__ = "send_pacing"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    sender: Mapped[str] = mapped_column(String(200), primary_key=True)
    next_free_at: Mapped[datetime]
    updated_at: Mapped[datetime]
