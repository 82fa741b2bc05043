"""Report summaries kept by the database itself: one tally row per response, maintained by triggers on ``answers``.

``response_tallies`` holds, per response, how many answers it has and the rating (1-5) of each A-11 rating tag,
so that the quarterly collection reads one narrow row per response instead of every answer. Triggers made by
migration 0003 (PostgreSQL and SQLite alike) update it on every insert into and delete from ``answers``,
whatever writes them (the survey sessions, a kiosk sync, a bulk COPY); ``tests/test_reports_summary.py`` proves
it never disagrees with the raw rows.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Integer, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base

# The rating tags tallied, in §6.1 order (one column each).
TALLIED_TAGS = ("satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency", "employee")


class ResponseTally(Base):
    __tablename__ = "response_tallies"

    response_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True)
    answers: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    trust: Mapped[int | None] = mapped_column(SmallInteger)
    effectiveness: Mapped[int | None] = mapped_column(SmallInteger)
    ease: Mapped[int | None] = mapped_column(SmallInteger)
    efficiency: Mapped[int | None] = mapped_column(SmallInteger)
    transparency: Mapped[int | None] = mapped_column(SmallInteger)
    employee: Mapped[int | None] = mapped_column(SmallInteger)
