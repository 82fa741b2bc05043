"""Link tokens: random bearer secrets bound to one invitation (survey or unsubscribe), stored only as SHA-256."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base, utcnow


class SurveyToken(Base):
    """One link to one invitation's survey (a reminder gets its own); revocable on its own."""

    __tablename__ = "survey_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # What the link does: open the survey (``survey``) or unsubscribe the address (``unsubscribe``).
    purpose: Mapped[str] = mapped_column(String(16), default="survey")
    invitation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invitations.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
