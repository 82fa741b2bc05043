"""What the web survey page ``/s/<token>`` shows, and a posted form taken through the session engine.

The page's view (:mod:`engine.surveys.web_page`) keeps the HTTP side: the request's language wishes, the form's
anti-forgery token, rendering. Here, with no request in sight: :func:`open_survey` finds the invitation behind a
link and says which page stands (not found, already answered, closed: the answer window ended, or the PRA approval
that stands for the service expired) or that the survey is open;
:func:`form_page` is the form as first shown (a rating link may pre-select one answer; nothing is recorded);
:func:`take_form` checks a posted form, question by question and with the flow's branching, and either shows it
again with each error by its question or records the answers and completes the response.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.catalog.services import ServiceConfig
from engine.common.i18n import N_, available_languages, best_language, translate
from engine.common.limits import text_problem, whole_number
from engine.runtime import Runtime
from engine.store.db import utcnow
from engine.store.models import Invitation, Response, Transaction
from engine.surveys.flows import Flow
from engine.surveys.messages import duration, pra_of, use_of_answers
from engine.surveys.sessions import Given, InvalidAnswer, SurveyClosed, SurveySessions, check_answer, parse_form
from engine.surveys.tokens import invitation_for

UNSTORABLE = N_("This answer holds a character we cannot store. Please remove it and send again.")
NOTHING_ANSWERED = N_("Please answer at least one question before you send your answers.")
# A genuine form posted after its anti-forgery token's time ran out: nothing is recorded, and the form comes back
# with what was typed in it, under a fresh token (a customer who left the page open must not type it all again).
STALE_FORM = N_(
    "This page was open for a long time, so your answers have not been sent yet. Please check them and send them again."
)
# How long, from the effective PRA block's burden minutes (SPEC §2 rule 9).
HOW_LONG = N_("This survey is voluntary and takes about {duration}.")

# The Accept-Language header's choice among offered languages (werkzeug's ``LanguageAccept.best_match``).
BestMatch = Callable[[Sequence[str]], str | None]


@dataclass(frozen=True)
class Page:
    """A page to show: its template, status and what it says (``language`` among it)."""

    template: str
    status: int
    context: dict[str, Any]

    @property
    def language(self) -> str:
        return str(self.context["language"])


@dataclass
class OpenSurvey:
    """An invitation whose survey may still be answered, in the page's language."""

    sessions: SurveySessions
    invitation: Invitation
    flow: Flow
    language: str
    context: dict[str, Any]


@dataclass
class QuestionView:
    id: str
    kind: str  # rating | choose_all | choose_one | text
    text: str
    options: list[tuple[str, str]] = field(default_factory=list)
    selected: set[str] = field(default_factory=set)
    value: str = ""
    condition: str | None = None
    condition_on: str | None = None
    condition_rating: str | None = None
    positive_values: list[str] = field(default_factory=list)
    error: str | None = None
    required: bool = False

    @property
    def described_by(self) -> str:
        ids = [f"q-{self.id}-condition"] if self.condition else []
        return " ".join([*ids, f"q-{self.id}-error"] if self.error else ids)


def page_language(asked: str | None, best_match: BestMatch) -> str:
    """The language of a page shown before the survey is known (the link not found): any offered catalog."""
    offered = available_languages()
    return best_language(offered, asked, best_match(offered))


def open_survey(
    rt: Runtime, session: Session, token: str, asked: str | None, best_match: BestMatch, posting: bool
) -> Page | OpenSurvey:
    """The survey behind ``token``, or the page that stands instead (not found, already answered, closed).

    ``posting``: the invitation is locked first, so that posts of one survey are taken one at a time (PostgreSQL):
    the same form sent twice at once is recorded once, and the later post waits, then finds the survey answered and
    gets the 409 page that a second post gets afterwards, storing nothing.
    """
    invitation = invitation_for(session, token, lock=posting)
    if invitation is None:
        return Page("survey/not_found.html", 404, {"language": page_language(asked, best_match)})
    sessions = SurveySessions(rt)
    service = rt.catalog.services.get(sessions.service_slug(invitation.service_id))
    if service is None:  # the service left the configuration: its survey can no longer be answered
        return Page("survey/closed.html", 410, {"language": page_language(asked, best_match)})
    flow = rt.catalog.flow_of(service)
    tx_language = session.execute(
        select(Transaction.language).where(Transaction.id == invitation.transaction_id)
    ).scalar_one_or_none()
    # The one asked for on the page, else the transaction's, else the browser's.
    accepted = best_match(list(flow.languages))
    language = best_language(flow.languages, asked, tx_language, accepted, invitation.language)
    context = _context(rt, sessions, invitation, flow, language)
    response = sessions.response_for_invitation(session, invitation)
    if response is not None and response.completed_at is not None:
        return Page("survey/received.html", 409 if posting else 200, context)
    try:
        sessions.open_for_invitation(session, invitation)
    except SurveyClosed:
        return Page("survey/closed.html", 410, context)
    if pra_of(service, flow).lapsed_at(utcnow(), service.timezone):
        return Page("survey/closed.html", 410, context)  # no answer under a lapsed OMB control number (rule 9)
    return OpenSurvey(sessions, invitation, flow, language, context)


def form_page(survey: OpenSurvey, wanted_q: str | None, wanted_a: str | None) -> Page:
    """The form as first shown; a rating link's ``q``/``a`` pre-select that answer (nothing is recorded)."""
    flow = survey.flow
    answers: dict[str, list[str]] = {}
    if wanted_q and wanted_a:
        try:
            question = flow.question(wanted_q)
            if question.is_rating and question.asked_on("web") and whole_number(wanted_a, 1, 5) in question.points:
                answers[wanted_q] = [wanted_a]
        except KeyError:
            pass
    views = _views(survey, answers, {})
    return Page("survey/form.html", 200, {**survey.context, "questions": views, "errors": []})


@dataclass(frozen=True)
class CheckedForm:
    """A posted one-screen survey form, read through the session engine's checks."""

    # What to show again (``q-<question>`` values; a value no database can store is left out).
    posted: dict[str, list[str]]
    given: dict[str, Given]
    # Each asked question's problem; an empty form's first question says that nothing was answered.
    errors: dict[str, str]
    # The questions the answers make applicable (``show_if``): only theirs are recorded.
    applicable: set[str]

    def record(self, sessions: SurveySessions, session: Session, response: Response, flow: Flow, now: datetime) -> None:
        """Record the given answers of the applicable questions on ``response``, in the flow's order."""
        for question in flow.questions:
            if question.id in self.applicable and question.id in self.given:
                sessions.record(session, response, question, self.given[question.id], now)


def check_form(sessions: SurveySessions, flow: Flow, form: Mapping[str, Sequence[str]]) -> CheckedForm:
    """Read a posted form (``q-<question>`` → its values) for the web questions of ``flow`` (the web survey page
    and the website channel's feedback page take the same form)."""
    # A browser sends every line break of a text box as CR LF, while the box's maxlength counted it as one character:
    # read them back as typed, or a comment the box allowed would be refused as too long (and stored with CRs).
    posted = {
        q.id: [_typed_line_breaks(v) for v in form.get(f"q-{q.id}", ())] for q in flow.questions if q.asked_on("web")
    }
    given: dict[str, Given] = {}
    errors: dict[str, str] = {}
    for q in flow.questions:
        if not q.asked_on("web"):
            continue
        if any(text_problem(value) for value in posted.get(q.id, [])):
            errors[q.id] = UNSTORABLE
            posted[q.id] = []
            continue
        try:
            given[q.id] = check_answer(q, parse_form(q, posted.get(q.id, [])))
        except InvalidAnswer as exc:
            errors[q.id] = exc.message
    ratings = {qid: answer.value for qid, answer in given.items()}
    asked = sessions.questions_for(flow, "web", ratings)
    applicable = {q.id for q in asked}
    errors = {k: v for k, v in errors.items() if k in applicable}
    if not errors and asked and all(given.get(q.id, Given()).empty for q in asked):
        errors[asked[0].id] = NOTHING_ANSWERED  # an empty form stores nothing and keeps the survey open
    return CheckedForm(posted, given, errors, applicable)


def _typed_line_breaks(value: str) -> str:
    """A posted text value with its line breaks as the person typed them (HTML sends each as CR LF)."""
    return value.replace("\r\n", "\n").replace("\r", "\n")


def take_form(session: Session, survey: OpenSurvey, form: Mapping[str, Sequence[str]]) -> Page:
    """A posted form (``q-<question>`` → its values): shown again with its errors (422), or recorded (thanks);
    a second submission that raced this one stands, and this one stores nothing (409)."""
    sessions, flow = survey.sessions, survey.flow
    checked = check_form(sessions, flow, form)
    if checked.errors:
        views = _views(survey, checked.posted, checked.errors)
        summary = [(v.id, v.error) for v in views if v.error]
        return Page("survey/form.html", 422, {**survey.context, "questions": views, "errors": summary})
    try:
        with session.begin_nested():
            response = sessions.start_for_invitation(session, survey.invitation, survey.language)
            now = utcnow()
            checked.record(sessions, session, response, flow, now)
            sessions.complete(session, response, now)
    except IntegrityError:  # a second submission raced this one: it stands, this stores nothing
        return Page("survey/received.html", 409, survey.context)
    return Page("survey/thanks.html", 200, survey.context)


def stale_form(survey: OpenSurvey, form: Mapping[str, Sequence[str]]) -> Page:
    """A genuine form posted too late to be taken (its anti-forgery token's time ran out): recorded nothing, shown
    again with its answers (the values no database can keep left out) and :data:`STALE_FORM` (400)."""
    checked = check_form(survey.sessions, survey.flow, form)
    views = _views(survey, checked.posted, {})
    notice = translate(survey.language, STALE_FORM)
    return Page("survey/form.html", 400, {**survey.context, "questions": views, "errors": [], "notice": notice})


def _views(survey: OpenSurvey, answers: dict[str, list[str]], errors: dict[str, str]) -> list[QuestionView]:
    return question_views(
        survey.sessions, survey.flow, survey.context["service_name"], survey.language, answers, errors
    )


def question_views(
    sessions: SurveySessions,
    flow: Flow,
    service_name: str,
    language: str,
    answers: dict[str, list[str]],
    errors: dict[str, str],
) -> list[QuestionView]:
    """The web page's questions of ``flow`` in ``language``, with what was answered and each answer's problem (the
    one-screen form of the web survey and of the website channel's feedback page)."""
    views = []
    for q in flow.questions:
        if not q.asked_on("web"):
            continue
        kind = "rating" if q.is_rating else (q.type if q.type in ("choose_all", "choose_one") else "text")
        view = QuestionView(
            id=q.id,
            kind=kind,
            text=sessions.wording(flow, q, "web", language, service_name),
            options=sessions.labels(flow, q, language) if kind != "text" else [],
            selected=set(answers.get(q.id, [])),
            value=(answers.get(q.id) or [""])[0] if kind == "text" else "",
            error=translate(language, errors[q.id]) if q.id in errors else None,
            required=q.required,
        )
        if q.show_if:
            parent = flow.question(q.show_if["question"])
            positive = q.show_if.get("rating") == "positive"
            view.condition = translate(
                language, N_("Answer this if your answer above was positive.") if positive
                else N_("Answer this if your answer above was negative.")
            )  # fmt: skip
            view.condition_on = parent.id
            view.condition_rating = "positive" if positive else "negative"
            view.positive_values = [str(p) for p in parent.points if flow.is_positive(parent, p)]
        views.append(view)
    return views


def page_context(service: ServiceConfig, flow: Flow, language: str) -> dict[str, Any]:
    """What a survey page of ``service`` says in ``language``, the web survey's (``/s/<token>``) and the website's
    (``/f/<service>``): the names, the flow's title, intro and thanks, the PRA block and the language switch. Dates
    are written in the page's language, whatever the request's locale."""
    service_name = translate(language, service.name)
    pra = pra_of(service, flow)  # the agency's own clearance, else the flow's (SPEC §2 rule 9)
    return {
        "service": service,
        "service_name": service_name,
        "agency": translate(language, service.agency),
        "title": translate(language, flow.title),
        "intro": translate(language, flow_message(flow, "intro"), service=service_name),
        "thanks": translate(language, flow_message(flow, "thanks"), service=service_name),
        "pra": pra,
        "pra_burden": translate(language, pra.burden_statement),
        "pra_expires": format_date(pra.expiration_date, format="long", locale=_locale(language)),
        "how_long": translate(language, HOW_LONG, duration=duration(language, pra.burden_minutes)),
        "use_of_answers": use_of_answers(flow, "web", language, service),
        "other_languages": [lang for lang in flow.languages if lang != language],
        "language": language,
    }


def _locale(language: str) -> str:
    return language.replace("-", "_")


def _context(
    rt: Runtime, sessions: SurveySessions, invitation: Invitation, flow: Flow, language: str
) -> dict[str, Any]:
    service = rt.catalog.services[sessions.service_slug(invitation.service_id)]
    # The day the answer window ends in the service's time zone (the one its customers and offices keep), not the
    # UTC day: a window ending at 23:30 in New York ends on the next day in UTC.
    closes_at = format_date(invitation.expires_at.astimezone(service.timezone), format="long", locale=_locale(language))
    return page_context(service, flow, language) | {"closes_at": closes_at}


def flow_message(flow: Flow, name: str) -> str:
    """A flow's message template ``name`` (its default wording), or nothing."""
    try:
        return str(flow.message(name).get("default", "")).strip()
    except KeyError:
        return ""
