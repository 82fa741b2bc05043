"""The one survey-session engine every channel uses: start, next question, validate, record, complete.

A channel only translates between its medium and these calls: the web page posts form values, the SMS channel
a reply text, the IVR a keypad digit or speech, the kiosk a tap. Each answer is recorded the moment it arrives (a
partial response counts); branching follows the flow's ``show_if``; nothing is taken after the invitation expires.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, object_session

from engine.catalog.surveys import survey_for_version
from engine.common.i18n import N_, translate
from engine.common.limits import MAX_NUMBER, whole_number
from engine.delivery import lifecycle
from engine.runtime import Runtime
from engine.store.db import insert_unless_present, utcnow
from engine.store.models import (
    ANSWERABLE_STATES,
    Answer,
    AnswerChoice,
    FlowVersion,
    Invitation,
    InvitationState,
    Response,
    Transaction,
)
from engine.surveys.flows import Flow, Question, parse_flow

MAX_TEXT = 2000

# Built once. An answer inserted unless the response already has one for that question (the unique constraint).
_INSERT_ANSWER = insert_unless_present(
    Answer.__table__,
    ("response_id", "question_id", "a11_tag", "value", "text", "answered_at"),
    conflict=("response_id", "question_id"),
    returning="id",
)
_RESPONSE_OF_INVITATION = select(Response).where(Response.invitation_id == bindparam("invitation_id"))
# Which questions a response has answered, with their ratings (what ``next_question`` needs of its progress).
_RATINGS = select(Answer.question_id, Answer.value).where(Answer.response_id == bindparam("response_id"))


class SurveyClosed(Exception):
    """The invitation can no longer be answered (expired, cancelled, never sent)."""


class InvalidAnswer(ValueError):
    """An answer the question cannot take; ``message`` is an engine string (translated by the caller)."""

    def __init__(self, question_id: str, message: str) -> None:
        super().__init__(f"{question_id}: {message}")
        self.question_id = question_id
        self.message = message


@dataclass(frozen=True)
class Given:
    """One answer in engine terms: a rating (1 = worst … 5 = best), chosen options, or text."""

    value: int | None = None
    choices: tuple[str, ...] = ()
    text: str | None = None

    @property
    def empty(self) -> bool:
        return self.value is None and not self.choices and not (self.text and self.text.strip())


@dataclass
class Progress:
    response: Response
    answers: dict[str, Given] = field(default_factory=dict)

    def ratings(self) -> dict[str, int | None]:
        return {qid: g.value for qid, g in self.answers.items()}


def check_answer(question: Question, given: Given) -> Given:
    """Validate ``given`` against ``question``; return it normalized or raise :class:`InvalidAnswer`."""
    if given.empty:
        if question.required:
            raise InvalidAnswer(question.id, N_("Please answer this question."))
        return Given()
    if question.is_rating:
        if given.value not in question.points or given.choices or given.text:
            raise InvalidAnswer(question.id, N_("Please choose one of the answers offered."))
        return Given(value=given.value)
    if question.type in ("choose_all", "choose_one"):
        ids = {c.id for c in question.choices}
        chosen = tuple(dict.fromkeys(given.choices))
        if given.value is not None or given.text or not chosen or not set(chosen) <= ids:
            raise InvalidAnswer(question.id, N_("Please choose from the answers offered."))
        if question.type == "choose_one" and len(chosen) != 1:
            raise InvalidAnswer(question.id, N_("Please choose one answer."))
        return Given(choices=chosen)
    text = (given.text or "").strip()
    if given.value is not None or given.choices:
        raise InvalidAnswer(question.id, N_("Please answer in words."))
    if len(text) > MAX_TEXT:
        raise InvalidAnswer(question.id, N_("Please keep your answer under 2,000 characters."))
    return Given(text=text)


_SPLIT = re.compile(r"[\s,;]+")


def parse_form(question: Question, values: Sequence[str]) -> Given:
    """A web or kiosk form's values for one question (radio value, checkbox ids, text) in engine terms.

    Only a choose-all question takes several values; any other named twice (``q-x=5&q-x=1``, which no browser sends
    for a radio or a text box) is ambiguous and refused, never read as its first value."""
    values = [v for v in values if v is not None]
    if len(values) > 1 and question.type != "choose_all":
        raise InvalidAnswer(question.id, N_("Please give one answer to this question."))
    if question.is_rating:
        raw = values[0].strip() if values else ""
        if not raw:
            return Given()
        value = whole_number(raw, 0, MAX_NUMBER)
        if value is None:
            raise InvalidAnswer(question.id, N_("Please choose one of the answers offered."))
        return Given(value=value)
    if question.type in ("choose_all", "choose_one"):
        return Given(choices=tuple(v for v in values if v))
    return Given(text=values[0] if values else None)


class SurveySessions:
    """Responses for one runtime. Callers commit (one unit of work per request or message)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._published: dict[int, Flow] = {}  # older published versions read back, by id

    # -- starting -------------------------------------------------------------------------------------------

    def open_for_invitation(self, session: Session, invitation: Invitation, now: datetime | None = None) -> None:
        now = now or utcnow()
        if invitation.state not in ANSWERABLE_STATES or now >= invitation.expires_at:
            raise SurveyClosed(f"invitation {invitation.id} is {invitation.state.value}, answers closed")

    def response_for_invitation(self, session: Session, invitation: Invitation) -> Response | None:
        return session.execute(_RESPONSE_OF_INVITATION, {"invitation_id": invitation.id}).scalar_one_or_none()

    def start_for_invitation(
        self, session: Session, invitation: Invitation, language: str, channel: str | None = None,
        now: datetime | None = None,
    ) -> Response:  # fmt: skip
        """The invitation's response, started now if it has none (one response per invitation)."""
        now = now or utcnow()
        self.open_for_invitation(session, invitation, now)
        existing = self.response_for_invitation(session, invitation)
        if existing is not None:
            return existing
        tx = session.get(Transaction, invitation.transaction_id)
        assert tx is not None
        service = self.service_slug(invitation.service_id)
        flow = self.rt.catalog.flow_of(self.rt.catalog.services[service])
        response = Response(
            id=uuid.uuid4(),
            service_id=invitation.service_id,
            transaction_id=tx.id,
            invitation_id=invitation.id,
            flow_version_id=self.rt.flow_version_ids[flow.id],
            survey_id=self.rt.survey_ids.get(service),
            office_id=tx.office_id,
            channel=channel or invitation.channel,
            language=language,
            started_at=now,
            test=invitation.test or tx.test,
        )
        session.add(response)
        session.flush()
        return response

    def start_session(
        self,
        session: Session,
        service_slug: str,
        channel: str,
        language: str,
        *,
        transaction_id: uuid.UUID | None = None,
        kiosk_device_id: uuid.UUID | None = None,
        office_id: int | None = None,
        client_uuid: uuid.UUID | None = None,
        provider_ref: str | None = None,
        started_at: datetime | None = None,
        test: bool = False,
        flow_version_id: int | None = None,
    ) -> Response:
        """A response with no invitation: a post-call IVR survey (one per call) or a kiosk session (one per UUID).

        Starting it again with the same ``provider_ref`` or ``client_uuid`` returns the first one. A kiosk that
        answered on an older published flow version passes that version's id (``flow_version_id``); by default
        the service's current version is used.
        """
        for column, value in ((Response.provider_ref, provider_ref), (Response.client_uuid, client_uuid)):
            if value is not None:
                existing = session.execute(select(Response).where(column == value)).scalar_one_or_none()
                if existing is not None:
                    return existing
        flow = self.rt.catalog.flow_of(self.rt.catalog.services[service_slug])
        survey_id: int | None = self.rt.survey_ids.get(service_slug)
        if flow_version_id is not None and flow_version_id != self.rt.flow_version_ids[flow.id]:
            survey_id = survey_for_version(session, self.rt.catalog.services[service_slug], flow_version_id)
        response = Response(
            id=uuid.uuid4(),
            service_id=self.rt.service_ids[service_slug],
            transaction_id=transaction_id,
            kiosk_device_id=kiosk_device_id,
            client_uuid=client_uuid,
            provider_ref=provider_ref,
            flow_version_id=flow_version_id or self.rt.flow_version_ids[flow.id],
            survey_id=survey_id,
            office_id=office_id,
            channel=channel,
            language=language,
            started_at=started_at or utcnow(),
            test=test,
        )
        session.add(response)
        session.flush()
        return response

    def service_slug(self, service_id: int) -> str:
        for slug, id_ in self.rt.service_ids.items():
            if id_ == service_id:
                return slug
        raise KeyError(service_id)

    def flow_of(self, response: Response) -> Flow:
        """The flow version ``response`` was started on, which the rest of it is asked and read on: the service's
        flow today, or the version a conversation began on before the service's flow changed (a deploy while a
        customer is mid-survey), or an older published version a kiosk answered."""
        today = self.rt.catalog.flow_of(self.rt.catalog.services[self.service_slug(response.service_id)])
        version_id = response.flow_version_id
        if version_id is None or version_id == self.rt.flow_version_ids.get(today.id):
            return today
        for flow_id, current in self.rt.flow_version_ids.items():
            if current == version_id and flow_id in self.rt.catalog.flows:
                return self.rt.catalog.flows[flow_id]
        if version_id not in self._published:
            session = object_session(response)
            row = session.get(FlowVersion, version_id) if session is not None else None
            if row is None or row.definition is None:
                return today
            self._published[version_id] = parse_flow(row.definition, f"{row.flow_id} v{row.version} (published)")
        return self._published[version_id]

    # -- progress -------------------------------------------------------------------------------------------

    def progress(self, session: Session, response: Response) -> Progress:
        progress = Progress(response)
        answers = session.execute(select(Answer).where(Answer.response_id == response.id)).scalars().all()
        choices: dict[int, list[str]] = {}
        if answers:
            for answer_id, choice_id in session.execute(
                select(AnswerChoice.answer_id, AnswerChoice.choice_id).where(
                    AnswerChoice.answer_id.in_([a.id for a in answers])
                )
            ):
                choices.setdefault(answer_id, []).append(choice_id)
        for a in answers:
            progress.answers[a.question_id] = Given(a.value, tuple(sorted(choices.get(a.id, []))), a.text)
        return progress

    def questions_for(self, flow: Flow, channel: str, ratings: dict[str, int | None]) -> list[Question]:
        """The questions asked on ``channel`` given the ratings so far (branches resolved)."""
        return [q for q in flow.questions if flow.applies(q, channel, ratings)]

    def next_question(
        self, session: Session, response: Response, channel: str, skipped: Sequence[str] = ()
    ) -> Question | None:
        flow = self.flow_of(response)
        with session.no_autoflush:  # what is pending (the response's state) is flushed once, at commit
            ratings: dict[str, int | None] = dict(
                session.execute(_RATINGS, {"response_id": response.id}).tuples().all()
            )
        for question in self.questions_for(flow, channel, ratings):
            if question.id not in ratings and question.id not in skipped:
                return question
        return None

    # -- recording ------------------------------------------------------------------------------------------

    def record(
        self, session: Session, response: Response, question: Question, given: Given, now: datetime | None = None
    ) -> Answer | None:
        """Store one answer at once (an empty optional answer stores nothing). A repeat keeps the first."""
        given = check_answer(question, given)
        if given.empty:
            return None
        answered_at = now or utcnow()
        if session.new:  # a response started in this transaction is written before its answers
            session.flush()
        # One statement, no savepoint: a repeat (or the same answer arriving twice at once) inserts nothing.
        new_id = session.connection().execute(
            _INSERT_ANSWER,
            {"response_id": response.id, "question_id": question.id, "a11_tag": question.a11, "value": given.value,
             "text": given.text, "answered_at": answered_at},
        ).scalar()  # fmt: skip
        if new_id is None:  # a repeat keeps the first
            return session.execute(
                select(Answer).where(Answer.response_id == response.id, Answer.question_id == question.id)
            ).scalar_one()
        answer = Answer(id=new_id, response_id=response.id, question_id=question.id, a11_tag=question.a11,
                        value=given.value, text=given.text, answered_at=answered_at)  # fmt: skip
        drivers = {c.id: c.driver for c in question.choices}
        for choice_id in given.choices:
            session.add(AnswerChoice(answer_id=answer.id, choice_id=choice_id, driver=drivers.get(choice_id)))
        return answer

    def complete(self, session: Session, response: Response, now: datetime | None = None) -> None:
        now = now or utcnow()
        if response.completed_at is None:
            response.completed_at = now
        if response.invitation_id is not None:
            invitation = session.get(Invitation, response.invitation_id)
            if invitation is not None:
                lifecycle.move(session, invitation, InvitationState.ANSWERED, lifecycle.Event.ANSWERED, now=now)

    # -- wording --------------------------------------------------------------------------------------------

    def wording(self, flow: Flow, question: Question, channel: str, language: str, service_name: str) -> str:
        return translate(language, question.text_for(channel), service=translate(language, service_name))

    def labels(self, flow: Flow, question: Question, language: str) -> list[tuple[str, str]]:
        """(value, label) for each answer a question offers, translated."""
        if question.is_rating:
            labels = flow.scale_labels(question)
            return [(str(p), translate(language, labels.get(p, str(p)))) for p in question.points]
        return [(c.id, translate(language, c.label)) for c in question.choices]
