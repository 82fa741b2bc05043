"""The surveys actually used: a flow version with the PRA block that stood for it (SPEC §6.1, issue 16 item 3).

A service asks its flow's questions under its effective PRA block (its own clearance, else the flow's). Each
distinct pair is one ``surveys`` row, made once when a runtime first uses it (``engine.catalog.surveys``); every
transaction, invitation and response records the id of the survey it was decided, sent or answered under, so a
quarter reports the survey that was used, never today's configuration. ``survey_id`` columns carry no foreign key
(a check per intake row would cost the benchmarked intake a look-up; the rows here are never deleted).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base, utcnow


class Survey(Base):
    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A hash of everything below: one row per distinct survey, whichever process makes it first.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    flow_version_id: Mapped[int] = mapped_column(ForeignKey("flow_versions.id"))
    omb_control_number: Mapped[str] = mapped_column(String(32))
    expiration_date: Mapped[date]
    burden_minutes: Mapped[int] = mapped_column(Integer)
    burden_statement: Mapped[str] = mapped_column(Text)
    first_used_at: Mapped[datetime] = mapped_column(default=utcnow)
