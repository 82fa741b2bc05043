"""Services, offices and flow versions: the configured catalogue, mirrored in the store for joins and audits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base, utcnow


class Service(Base):
    """A configured public offering; synced from ``config/services.yaml`` at start-up."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    agency: Mapped[str] = mapped_column(String(300))
    service_type: Mapped[str] = mapped_column(String(100))
    service_stage: Mapped[str | None] = mapped_column(String(100))
    flow_id: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    # Random per-service salt of the sampling hash, made once when the service first appears and kept for audit.
    sampling_salt: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class Office(Base):
    """An office code transactions are coded with (A-11 280.7: "sorted for action by office location")."""

    __tablename__ = "offices"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    timezone: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)


class FlowVersion(Base):
    """A published flow version and the hash of its content: once a response uses it, it may not change."""

    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("flow_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    flow_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    # The version's definition as published (the flow file's data), so answers given on it can be validated
    # after a newer version replaced it (a kiosk that was offline syncs answers to the version it showed).
    definition: Mapped[dict[str, Any] | None]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
