"""Responses and answers: one response per invitation, post-call IVR session or kiosk session."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.db import Base, utcnow


class Response(Base):
    """One customer's answers to one flow version; partial until ``completed_at`` is set."""

    __tablename__ = "responses"
    __table_args__ = (Index("ix_responses_service_started", "service_id", "started_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("transactions.id"), index=True)
    invitation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invitations.id"), unique=True)
    kiosk_device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("kiosk_devices.id"), index=True)
    # The kiosk's own id of the session: a retried sync stores it once.
    client_uuid: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    flow_version_id: Mapped[int] = mapped_column(ForeignKey("flow_versions.id"))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"))
    # The channel that started the response (a web page reached from an email counts as email).
    channel: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(35))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    test: Mapped[bool] = mapped_column(default=False)
    suspected_spam: Mapped[bool] = mapped_column(default=False)
    # The provider's id of the session (an IVR call's CallSid): one response per call.
    provider_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Where a conversation stands (SMS, IVR): the question awaiting an answer, re-prompts used, questions skipped.
    state: Mapped[dict[str, Any] | None]
    # The survey (flow version and PRA block) it was answered under: ``surveys.id`` (no foreign key, see there).
    survey_id: Mapped[int | None] = mapped_column(Integer)


class Answer(Base):
    """One question's value within a response, with the question's A-11 tag."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("response_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"))
    question_id: Mapped[str] = mapped_column(String(64))
    a11_tag: Mapped[str] = mapped_column(String(32), index=True)
    # A rating, always 1 = worst … 5 = best (thumbs: 1 down, 5 up; yes/no: 1 no, 5 yes).
    value: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnswerChoice(Base):
    """One chosen option of a choose-all or choose-one answer, with the A-11 driver it stands for."""

    __tablename__ = "answer_choices"

    answer_id: Mapped[int] = mapped_column(ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True)
    choice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    driver: Mapped[str | None] = mapped_column(String(32))
