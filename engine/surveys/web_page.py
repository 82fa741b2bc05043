"""The web survey page ``/s/<token>`` (SPEC §4 'web'): one screen, no JavaScript needed, WCAG 2.1 AA.

Reached from an email or an SMS link. ``GET`` shows the survey (a rating link ``?q=<question>&a=<value>``
pre-selects an answer and records nothing: mail scanners follow links); only a ``POST`` records. The link's
token is the bearer secret; the form also carries an HMAC of it and of the time it was shown (stateless CSRF
protection that works with cookies blocked). Every page sends ``Referrer-Policy: no-referrer``.

The view is HTTP only (language wishes, the anti-forgery token, rendering); what the page shows and how a posted
form is taken through the session engine is :mod:`engine.surveys.web_survey`'s.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from flask import Blueprint, g, render_template, request

from engine.common.crypto import same_secret, token_hash
from engine.common.limits import whole_number
from engine.store.db import unit_of_work
from engine.surveys import web_survey
from engine.webapp.support import checks_own_form, guarded_by, runtime

bp = Blueprint("survey", __name__)
CSRF_MAX_AGE = 6 * 3600


@bp.after_request
def no_referrer(response: Any) -> Any:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
    return response


def _csrf(token: str, issued: int) -> str:
    key = runtime().settings.secret_key.encode()
    return hmac.new(key, f"survey-form:{token_hash(token)}:{issued}".encode(), hashlib.sha256).hexdigest()


def _csrf_state(token: str) -> str:
    """The posted form's anti-forgery token: ``ok``, ``stale`` (genuine, but shown more than
    :data:`CSRF_MAX_AGE` ago) or ``forged``."""
    issued = whole_number(request.form.get("issued", ""), 0, 2**63 - 1)  # 5,000 digits: int() would raise
    given = request.form.get("csrf_token", "")
    if issued is None or not given or not same_secret(given, _csrf(token, issued)):
        return "forged"
    return "ok" if 0 <= time.time() - issued <= CSRF_MAX_AGE else "stale"


def _render(page: web_survey.Page, token: str) -> tuple[str, int]:
    g.language = page.language
    context = dict(page.context)
    if page.template == "survey/form.html":  # a fresh anti-forgery token with every form shown
        issued = int(time.time())
        context.update(token=token, issued=issued, csrf_token=_csrf(token, issued))
    return render_template(page.template, **context), page.status


@bp.route("/s/<token>", methods=["GET", "POST"])
@guarded_by("survey link token (128 random bits, stored hashed)")
@checks_own_form
def survey(token: str) -> Any:
    rt = runtime()
    asked, best_match = request.values.get("lang"), request.accept_languages.best_match
    g.language = web_survey.page_language(asked, best_match)
    with unit_of_work(rt.sessions) as session:
        opened = web_survey.open_survey(rt, session, token, asked, best_match, request.method == "POST")
        if isinstance(opened, web_survey.Page):
            return _render(opened, token)
        g.language = opened.language
        if request.method != "POST":  # GET, or HEAD (a link checker's): the page, never a form check
            return _render(web_survey.form_page(opened, request.args.get("q"), request.args.get("a")), token)
        state = _csrf_state(token)
        if state == "forged":
            return _render(web_survey.Page("survey/expired_form.html", 400, {**opened.context, "token": token}), token)
        form = {key: request.form.getlist(key) for key in request.form}
        if state == "stale":  # nothing recorded; the answers come back under a fresh token
            return _render(web_survey.stale_form(opened, form), token)
        return _render(web_survey.take_form(session, opened, form), token)
