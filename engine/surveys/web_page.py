"""The web survey page ``/s/<token>`` (SPEC §4 'web'): one screen, no JavaScript needed, WCAG 2.1 AA.

Reached from an email or an SMS link. ``GET`` shows the survey (a rating link ``?q=<question>&a=<value>``
pre-selects an answer and records nothing: mail scanners follow links); only a ``POST`` records. The link's
token is the bearer secret; the form also carries an HMAC of it and of the time it was shown (stateless CSRF
protection that works with cookies blocked). Every page sends ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, g, render_template, request
from flask_babel import format_date
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.common.crypto import same_secret, token_hash
from engine.common.i18n import N_, best_language, translate
from engine.common.limits import text_problem, whole_number
from engine.store.db import unit_of_work, utcnow
from engine.store.models import Invitation, Transaction
from engine.surveys.flows import Flow
from engine.surveys.messages import duration, pra_of, use_of_answers
from engine.surveys.sessions import Given, InvalidAnswer, SurveyClosed, SurveySessions, check_answer, parse_form
from engine.surveys.tokens import invitation_for
from engine.webapp.support import checks_own_form, guarded_by, runtime

bp = Blueprint("survey", __name__)
CSRF_MAX_AGE = 6 * 3600
UNSTORABLE = N_("This answer holds a character we cannot store. Please remove it and send again.")
NOTHING_ANSWERED = N_("Please answer at least one question before you send your answers.")
# How long, from the effective PRA block's burden minutes (SPEC §2 rule 9).
HOW_LONG = N_("This survey is voluntary and takes about {duration}.")


@bp.after_request
def no_referrer(response: Any) -> Any:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
    return response


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


def _csrf(token: str, issued: int) -> str:
    key = runtime().settings.secret_key.encode()
    return hmac.new(key, f"survey-form:{token_hash(token)}:{issued}".encode(), hashlib.sha256).hexdigest()


def _csrf_ok(token: str) -> bool:
    issued = whole_number(request.form.get("issued", ""), 0, 2**63 - 1)  # 5,000 digits: int() would raise
    given = request.form.get("csrf_token", "")
    if issued is None or not given:
        return False
    if not 0 <= time.time() - issued <= CSRF_MAX_AGE:
        return False
    return same_secret(given, _csrf(token, issued))


def _page(template: str, status: int, **context: Any) -> tuple[str, int]:
    context.setdefault("language", g.get("language", "en"))
    return render_template(template, **context), status


def _language(flow: Flow, invitation: Invitation, transaction_language: str | None) -> str:
    """The page's language: the one asked for on the page, else the transaction's, else the browser's."""
    requested = request.values.get("lang")
    accepted = request.accept_languages.best_match(list(flow.languages))
    return best_language(flow.languages, requested, transaction_language, accepted, invitation.language)


def _views(
    sessions: SurveySessions, flow: Flow, service_name: str, language: str, answers: dict[str, list[str]],
    errors: dict[str, str],
) -> list[QuestionView]:  # fmt: skip
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


def _context(invitation: Invitation, flow: Flow, language: str) -> dict[str, Any]:
    rt = runtime()
    service = rt.catalog.services[SurveySessions(rt).service_slug(invitation.service_id)]
    service_name = translate(language, service.name)
    other_languages = [lang for lang in flow.languages if lang != language]
    pra = pra_of(service, flow)  # the agency's own clearance, else the flow's (SPEC §2 rule 9)
    return {
        "service": service,
        "service_name": service_name,
        "agency": translate(language, service.agency),
        "title": translate(language, flow.title),
        "intro": translate(language, _message(flow, "intro"), service=service_name),
        "thanks": translate(language, _message(flow, "thanks"), service=service_name),
        "pra": pra,
        "pra_burden": translate(language, pra.burden_statement),
        "pra_expires": format_date(pra.expiration_date, format="long"),
        "how_long": translate(language, HOW_LONG, duration=duration(language, pra.burden_minutes)),
        "use_of_answers": use_of_answers(flow, "web", language, service),
        "closes_at": format_date(invitation.expires_at.astimezone(service.timezone), format="long"),
        "other_languages": other_languages,
        "language": language,
    }


def _message(flow: Flow, name: str) -> str:
    try:
        return str(flow.message(name).get("default", "")).strip()
    except KeyError:
        return ""


@bp.route("/s/<token>", methods=["GET", "POST"])
@guarded_by("survey link token (128 random bits, stored hashed)")
@checks_own_form
def survey(token: str) -> Any:
    rt = runtime()
    sessions = SurveySessions(rt)
    g.language = best_language(
        ("en", "es"), request.values.get("lang"), request.accept_languages.best_match(["en", "es"])
    )
    with unit_of_work(rt.sessions) as session:
        invitation = invitation_for(session, token)
        if invitation is None:
            return _page("survey/not_found.html", 404)
        service_slug = sessions.service_slug(invitation.service_id)
        flow = rt.catalog.flow_of(rt.catalog.services[service_slug])
        tx_language = session.execute(
            select(Transaction.language).where(Transaction.id == invitation.transaction_id)
        ).scalar_one_or_none()
        g.language = language = _language(flow, invitation, tx_language)
        ctx = _context(invitation, flow, language)
        response = sessions.response_for_invitation(session, invitation)
        if response is not None and response.completed_at is not None:
            return _page("survey/received.html", 409 if request.method == "POST" else 200, **ctx)
        try:
            sessions.open_for_invitation(session, invitation)
        except SurveyClosed:
            return _page("survey/closed.html", 410, **ctx)

        if request.method == "GET":
            answers: dict[str, list[str]] = {}
            wanted_q, wanted_a = request.args.get("q"), request.args.get("a")
            if wanted_q and wanted_a:
                try:
                    question = flow.question(wanted_q)
                    if (
                        question.is_rating
                        and question.asked_on("web")
                        and whole_number(wanted_a, 1, 5) in question.points
                    ):
                        answers[wanted_q] = [wanted_a]  # pre-selected only: nothing is recorded until it is posted
                except KeyError:
                    pass
            issued = int(time.time())
            views = _views(sessions, flow, ctx["service_name"], language, answers, {})
            return _page("survey/form.html", 200, questions=views, token=token, issued=issued,
                         csrf_token=_csrf(token, issued), errors=[], **ctx)  # fmt: skip

        if not _csrf_ok(token):
            return _page("survey/expired_form.html", 400, token=token, **ctx)
        posted = {x.id: request.form.getlist(f"q-{x.id}") for x in flow.questions if x.asked_on("web")}
        given: dict[str, Given] = {}
        errors: dict[str, str] = {}
        for question in flow.questions:
            if not question.asked_on("web"):
                continue
            q = question
            if any(text_problem(value) for value in posted.get(q.id, [])):
                errors[q.id] = UNSTORABLE
                posted[q.id] = []
                continue
            try:
                given[q.id] = check_answer(q, parse_form(q, posted.get(q.id, [])))
            except InvalidAnswer as exc:
                errors[q.id] = exc.message
        ratings = {qid: g_.value for qid, g_ in given.items()}
        asked = sessions.questions_for(flow, "web", ratings)
        applicable = {q.id for q in asked}
        if errors.keys() - applicable:
            errors = {k: v for k, v in errors.items() if k in applicable}
        if not errors and asked and all(given.get(q.id, Given()).empty for q in asked):
            errors[asked[0].id] = NOTHING_ANSWERED  # an empty form stores nothing and keeps the survey open
        if errors:
            issued = int(time.time())
            views = _views(sessions, flow, ctx["service_name"], language, posted, errors)
            summary = [(v.id, v.error) for v in views if v.error]
            return _page("survey/form.html", 422, questions=views, token=token, issued=issued,
                         csrf_token=_csrf(token, issued), errors=summary, **ctx)  # fmt: skip
        try:
            with session.begin_nested():
                response = sessions.start_for_invitation(session, invitation, language)
                now = utcnow()
                for question in flow.questions:
                    if question.id in applicable and question.id in given:
                        sessions.record(session, response, question, given[question.id], now)
                sessions.complete(session, response, now)
        except IntegrityError:  # a second submission raced this one: it stands, this stores nothing
            return _page("survey/received.html", 409, **ctx)
        return _page("survey/thanks.html", 200, **ctx)
