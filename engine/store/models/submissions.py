"""Filed quarters and the reflections written for them (SPEC §6 "Submissions"; A-11 280.11).

A ``submissions`` row freezes a service's quarter: the §6.1 CSV, JSON and XLSX and the §6.2 CSV exactly as they
were served at that moment, with who filed them and when. Rows are never changed or deleted; a later submission
of the same quarter supersedes the earlier one (the newest ``submitted_at`` is the filed one), both kept.
``reflections`` holds the team's text per service and quarter, written on the dashboard; it is reported in the
§6.1 ``reflection`` column and stays editable (a submission keeps the text as it was when filed).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base, utcnow


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_quarter", "service_id", "fiscal_year", "quarter", "submitted_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    fiscal_year: Mapped[int] = mapped_column(Integer)
    quarter: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The OS user or --by (CLI), the API key's name, or the account's email (dashboard).
    submitted_by: Mapped[str] = mapped_column(String(320))
    # The filed files are loaded only when one is read (deferred): listing the filings (the dashboard's filing state,
    # the API's list) reads none of them, and serving one file reads that file alone. The response-level file holds
    # a row per respondent (megabytes for a busy quarter), and a service piles one up at every filing.
    collection_csv: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    collection_json: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    collection_xlsx: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    # gzip-compressed from 2026-12-05 on (earlier rows: plain): engine.reporting.submissions.served reads either.
    responses_csv: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class Reflection(Base):
    __tablename__ = "reflections"

    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    quarter: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(320))
