"""Report summaries kept by the database itself: one tally row per response, maintained by triggers.

``response_tallies`` holds, per response, how many answers it has and the rating (1-5) of each A-11 rating tag
(kept by triggers on ``answers``, migration 0003), and a copy of what decides whether, when and where the response
counts (kept by triggers on ``responses`` and ``transactions``, migration 0004): its service, channel and office,
the moment that decides its period (its transaction's ``completed_at``, else its ``started_at``) and the service
whose period that is, whether it has a transaction or an invitation, whether a post-call caller heard the first
question, and whether it is left out (spam, or an ``invalid`` transaction) or test data (test response or
transaction, console channel). The quarterly collection then reads one narrow row per response and joins nothing.
The triggers work on PostgreSQL and SQLite alike, whatever writes the rows (the survey sessions, a kiosk sync, a
bulk COPY); ``tests/test_reports_summary.py`` proves the tallies never disagree with the raw rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, SmallInteger, String, and_
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base
from engine.store.models.responses import Response

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
    # Copies of the response and its transaction (migration 0004): what decides whether, when and where it counts.
    service_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(32))
    office_id: Mapped[int | None] = mapped_column(Integer)
    period_service_id: Mapped[int | None] = mapped_column(Integer)
    moment: Mapped[datetime | None]
    has_transaction: Mapped[bool | None]
    invited: Mapped[bool | None]
    heard: Mapped[bool | None]
    left_out: Mapped[bool | None]
    test: Mapped[bool | None]
    # The survey the response was answered under (migration 0007_surveys_used).
    survey_id: Mapped[int | None] = mapped_column(Integer)


class InvitationTally(Base):
    """A sent invitation (an invitation gets its row when ``sent_at`` is first set) with a copy of what decides
    whether, when and where it counts as an opportunity: its transaction's service, moment, office and channel,
    whether the transaction is ``invalid`` (``left_out``), whether either is test data, and whether it is an
    opportunity now (sent and not failed since). Kept by triggers on ``invitations`` and ``transactions``."""

    __tablename__ = "invitation_tallies"

    invitation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invitations.id", ondelete="CASCADE"), primary_key=True)
    transaction_id: Mapped[uuid.UUID] = mapped_column()
    service_id: Mapped[int] = mapped_column(Integer)
    moment: Mapped[datetime]
    office_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(32))
    left_out: Mapped[bool]
    test: Mapped[bool]
    opportunity: Mapped[bool]
    # The transaction's survey (migration 0007_surveys_used).
    survey_id: Mapped[int | None] = mapped_column(Integer)


class ServiceLevelTally(Base):
    """A service-level indicator with a copy of its transaction's service, moment, office and channel, whether the
    transaction is ``invalid`` (``left_out``) or test data. Kept by triggers on ``service_levels`` and
    ``transactions``."""

    __tablename__ = "service_level_tallies"

    transaction_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    service_id: Mapped[int] = mapped_column(Integer)
    moment: Mapped[datetime]
    office_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(32))
    left_out: Mapped[bool]
    test: Mapped[bool]
    # The transaction's survey (migration 0007_surveys_used).
    survey_id: Mapped[int | None] = mapped_column(Integer)


# Post-call surveys (a response with a transaction and no invitation) are few: the reports find them by this index
# (it decides a transaction's channel) instead of reading every response.
POST_CALL_INDEX = Index(
    "ix_responses_post_call",
    Response.transaction_id,
    postgresql_where=and_(Response.invitation_id.is_(None), Response.transaction_id.is_not(None)),
    sqlite_where=and_(Response.invitation_id.is_(None), Response.transaction_id.is_not(None)),
)
