"""The website channel's answered page loads: one row per feedback form accepted from ``/f/<service>``.

The row's primary key is the form token's nonce, so a page load gives one response at most (a second POST of the
same form collides). The per-address and per-service rate limits count these rows, so they hold across every
process that shares the database (the embedded default has no Redis). The address is kept only as a keyed hash,
and only for a day (``address_hash`` is cleared after that); the page the visitor came from is kept without its
query or fragment.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base, utcnow

# How long the sender's address hash is kept (the rate limits need an hour); the retention job clears it after.
ADDRESS_KEPT = timedelta(days=1)


class WebsiteForm(Base):
    __tablename__ = "website_forms"
    __table_args__ = (
        Index("ix_website_forms_service_at", "service_id", "received_at"),
        Index("ix_website_forms_address_at", "address_hash", "received_at"),
    )

    # The signed form token's random nonce (one per page load).
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    response_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), unique=True)
    # Keyed hash of the sender's IP address (rate limit); cleared once older than a day.
    address_hash: Mapped[str | None] = mapped_column(String(64))
    # The page of an allowed origin the visitor came from (``?from=``): scheme, host and path only.
    page_url: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
