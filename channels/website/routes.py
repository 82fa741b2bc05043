"""The website channel's pages: the anonymous feedback survey ``/f/<service>`` and its button ``button.js``.

* ``GET /f/<service>``: the service's flow as one anonymous screen (no invitation, no contact) in the visitor's
  language (``?lang=``, else the browser's), with the PRA block; it works without JavaScript. ``?from=<URL>``
  names the page the visitor came from; it is recorded (scheme, host and path only) when its origin is one of the
  service's ``website.origins``, else ignored (the visitor still gets the survey). Without ``from``, the
  browser's ``Referer`` is read the same way. ``?embed=1`` is the page as the button's dialog shows it.
* ``POST /f/<service>``: one response per page load. The form carries a signed, short-lived token (a random nonce
  and the time it was shown, HMAC'd with the secret key); the nonce becomes the key of the ``website_forms`` row,
  so a second POST of the same form is refused (409). A honeypot field (hidden from people and from assistive
  technology) and a minimum fill time (``website.min_fill_seconds``) hold off robots; a per-address (an IPv6
  visitor's /64: ``engine.common.network.visitor_network``) and a per-service hourly limit
  (``website.max_per_address_per_hour``, ``max_per_hour``), counted in the database so
  that they hold across processes, answer 429 with ``Retry-After``. No CAPTCHA. Answers go through the one
  survey-session engine (start, record, complete) as a response on channel ``website`` with no transaction.

  The limits hold under a burst too. A count and the insert that follows it are one step per service: the POST
  locks the service's ``services`` row (``SELECT ... FOR NO KEY UPDATE``) before counting, in the transaction that
  stores the form and its response, so the feedback POSTs of one service take their turn (across processes and
  threads) from the count to the commit. Without it, under PostgreSQL's READ COMMITTED, forms sent at the same
  moment each counted the hour before any other had committed, and all were taken. ``NO KEY`` keeps the foreign
  key checks of other writers (intake's transactions and invitations, other responses of the service) from waiting
  on it; only this page's POSTs (and a catalog sync updating the row) queue behind it. The lock ends with the
  POST's transaction, which was already this short: the count, the insert, the response and its answers. On SQLite
  every transaction already begins ``BEGIN IMMEDIATE`` (``engine.store.db``), so the count and the insert were
  serialized there anyway; SQLAlchemy leaves the ``FOR ...`` clause out on that backend.
  Once the PRA approval that stands for the service has expired (rule 9), ``GET`` and ``POST`` answer 410 with a
  page saying the survey is closed: no form under a lapsed control number, and nothing stored.
* ``GET /f/<service>/button.js``: a dependency-free script, no cookies, no tracking, that adds a "Feedback" button
  to pages of the allowed origins and opens the survey in a modal dialog (:file:`static/button.js`). Browsers keep
  it an hour, never past the end of the approval's last day. Once the approval expired it is still a 200 script
  (the agency's pages keep their snippet, with no console error) that adds no button, sent ``no-cache`` so the
  button is back at the next page view once the approval is renewed.

The survey page may be framed only by the service's allowed origins (CSP ``frame-ancestors``); the app's
``X-Frame-Options: DENY`` is taken off these pages, since it cannot name origins (CSP supersedes it anyway).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import unicodedata
from datetime import datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, g, render_template, request, send_from_directory
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from engine.catalog.services import ServiceConfig, WebsiteConfig
from engine.common.crypto import same_secret
from engine.common.i18n import N_, available_languages, best_language, translate
from engine.common.limits import text_problem, whole_number
from engine.common.network import visitor_network
from engine.store.db import unit_of_work, utcnow
from engine.store.models import Service, WebsiteForm
from engine.surveys.flows import Flow
from engine.surveys.sessions import SurveySessions
from engine.surveys.web_survey import STALE_FORM, check_form, page_context, question_views
from engine.webapp.support import checks_own_form, public, runtime

CHANNEL = "website"
HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
ASSETS = {"embed.js": "text/javascript", "website.css": "text/css"}
# How long a shown form may be sent (a person may leave the tab open a while).
FORM_MAX_AGE = 2 * 3600
# How long a browser keeps button.js (at most until the PRA approval's last day ends).
BUTTON_MAX_AGE = 3600
HOUR = timedelta(hours=1)
HONEYPOT = "leave_empty"
MAX_PAGE_URL = 500
DEFAULT_PORTS = {"http": 80, "https": 443}
GUARD = "held off abuse by a signed one-time form token, honeypot, minimum fill time and per-address/per-service rate limits"
TOO_FAST = N_("Please take a moment to read the questions, then send your answers again.")
BUTTON = N_("Feedback")
DIALOG_TITLE = N_("Tell us how we did")
CLOSE = N_("Close")

bp = Blueprint("website", __name__, template_folder=str(HERE / "templates"))


def _frame_ancestors(service: ServiceConfig | None) -> str:
    origins = service.website.origins if service is not None and service.website is not None else ()
    return " ".join(origins) or "'none'"


def _service_of_request() -> ServiceConfig | None:
    slug = (request.view_args or {}).get("service")
    return _service(slug) if isinstance(slug, str) else None


@bp.after_request
def website_headers(response: Any) -> Any:
    if request.endpoint == "website.feedback":
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; frame-ancestors {_frame_ancestors(_service_of_request())}; "
            "form-action 'self'; base-uri 'none'"
        )
    return response


@bp.after_app_request
def framing(response: Any) -> Any:
    # The app's after_request sets X-Frame-Options: DENY on every page; CSP frame-ancestors says who may frame
    # the feedback page (modern browsers let it override X-Frame-Options, which cannot name origins).
    if request.endpoint == "website.feedback" and "frame-ancestors 'none'" not in response.headers.get(
        "Content-Security-Policy", ""
    ):
        response.headers.pop("X-Frame-Options", None)
    return response


def _service(slug: str) -> ServiceConfig | None:
    """The service whose feedback page this is, when it offers the website channel."""
    service = runtime().catalog.services.get(slug)
    if service is None or CHANNEL not in service.channels:
        return None
    return service


def _limits(service: ServiceConfig) -> WebsiteConfig:
    return service.website or WebsiteConfig(origins=())


# -- the signed form token --------------------------------------------------------------------------------------


def _signature(slug: str, nonce: str, issued: int) -> str:
    key = runtime().settings.secret_key.encode()
    return hmac.new(key, f"website-form:{slug}:{nonce}:{issued}".encode(), hashlib.sha256).hexdigest()


def new_form(slug: str) -> dict[str, Any]:
    """The hidden fields of one page load: a fresh nonce, the time shown, and their signature."""
    nonce = secrets.token_urlsafe(24)
    issued = int(time.time())
    return {"nonce": nonce, "issued": issued, "csrf_token": _signature(slug, nonce, issued)}


def _posted_form(slug: str) -> tuple[dict[str, Any] | None, str]:
    """The posted token's fields when genuine and fresh, with ``""``; else None and why (``expired``/``forged``)."""
    nonce = request.form.get("nonce", "")
    issued = whole_number(request.form.get("issued", ""), 0, 2**63 - 1)
    given = request.form.get("csrf_token", "")
    if issued is None or not given or not nonce or len(nonce) > 64 or text_problem(nonce):
        return None, "forged"
    if not same_secret(given, _signature(slug, nonce, issued)):
        return None, "forged"
    if not 0 <= time.time() - issued <= FORM_MAX_AGE:
        return None, "expired"
    return {"nonce": nonce, "issued": issued, "csrf_token": given}, ""


# -- where the visitor came from --------------------------------------------------------------------------------


def page_url(service: ServiceConfig, raw: str | None) -> str | None:
    """``raw`` as scheme://host[:port]/path when its origin is one of the service's, else None."""
    if not raw or service.website is None or len(raw) > 4000 or text_problem(raw):
        return None
    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    # A browser's origin never names the scheme's default port (https://x:443 is https://x).
    shown_port = port is not None and port != DEFAULT_PORTS[parts.scheme]
    origin = f"{parts.scheme}://{parts.hostname}" + (f":{port}" if shown_port else "")
    if origin.lower() not in service.website.origins:
        return None
    return (origin.lower() + _visible(parts.path or "/"))[:MAX_PAGE_URL]


def _visible(path: str) -> str:
    """``path`` with every invisible character percent-encoded, as a browser's address bar would show it: controls,
    format characters (bidi overrides, which would turn the page's address around on the dashboard and in the
    export) and separators. Letters of any script stay as they are."""
    return "".join(quote(ch, safe="") if unicodedata.category(ch)[0] in "CZ" else ch for ch in path)


# -- the page -----------------------------------------------------------------------------------------------------


def _language(flow: Flow) -> str:
    return best_language(flow.languages, request.values.get("lang"), request.accept_languages.best_match(
        list(flow.languages)))  # fmt: skip


def _context(service: ServiceConfig, flow: Flow, language: str) -> dict[str, Any]:
    return page_context(service, flow, language) | {"embed": request.values.get("embed") == "1", "slug": service.slug}


def _render(template: str, status: int, headers: dict[str, str] | None = None, **context: Any) -> Response:
    context.setdefault("language", g.get("language", "en"))
    response = Response(render_template(template, **context), status=status, mimetype="text/html")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _form_page(ctx: dict[str, Any], status: int, form: dict[str, Any], views: list[Any], came_from: str | None,
               notice: str | None = None) -> Response:  # fmt: skip
    summary = [(v.id, v.error) for v in views if v.error]
    # The page in another language keeps the page the visitor came from, and the dialog's layout.
    keep = {"from": came_from} if came_from else {}
    keep |= {"embed": "1"} if ctx["embed"] else {}
    return _render("website/form.html", status, questions=views, form=form, came_from=came_from or "",
                   errors=summary, notice=notice, honeypot=HONEYPOT, language_query=keep, **ctx)  # fmt: skip


@bp.route("/f/<service>", methods=["GET", "POST"])
@public("the anonymous feedback survey of the agency's site; " + GUARD)
@checks_own_form
def feedback(service: str) -> Any:
    rt = runtime()
    offered = available_languages()
    g.language = best_language(offered, request.values.get("lang"), request.accept_languages.best_match(offered))
    config = _service(service)
    if config is None:
        return _render("website/not_listed.html", 404)
    sessions = SurveySessions(rt)
    flow = rt.catalog.flow_of(config)
    g.language = language = _language(flow)
    ctx = _context(config, flow, language)
    if rt.catalog.pra_of(config).lapsed_at(utcnow(), config.timezone):
        # No valid OMB control number, no collection (SPEC §2 rule 9): no form, and a form loaded before stores nothing.
        return _render("website/closed.html", 410, **ctx)

    if request.method != "POST":  # GET, and HEAD (a link checker's) which is a GET without the body
        came_from = page_url(config, request.args.get("from")) or page_url(config, request.referrer)
        views = question_views(sessions, flow, ctx["service_name"], language, {}, {})
        return _form_page(ctx, 200, new_form(config.slug), views, came_from)

    came_from = page_url(config, request.form.get("from"))
    form, why = _posted_form(config.slug)
    if why == "expired":  # nothing stored; what was typed comes back under a fresh form
        checked = check_form(sessions, flow, request.form.to_dict(flat=False))
        views = question_views(sessions, flow, ctx["service_name"], language, checked.posted, {})
        return _form_page(ctx, 400, new_form(config.slug), views, came_from, notice=translate(language, STALE_FORM))
    if form is None:
        return _render("website/expired_form.html", 400, reason=why, came_from=came_from or "", **ctx)
    if request.form.get(HONEYPOT):
        return _render("website/refused.html", 400, **ctx)

    checked = check_form(sessions, flow, request.form.to_dict(flat=False))
    if checked.errors:
        views = question_views(sessions, flow, ctx["service_name"], language, checked.posted, checked.errors)
        return _form_page(ctx, 422, form, views, came_from)
    limits = _limits(config)
    if time.time() - form["issued"] < limits.min_fill_seconds:
        views = question_views(sessions, flow, ctx["service_name"], language, checked.posted, {})
        return _form_page(ctx, 422, form, views, came_from, notice=translate(language, TOO_FAST))

    now = utcnow()
    service_id = rt.service_ids[config.slug]
    address = rt.cipher.lookup_hash("website-address", visitor_network(request.remote_addr or ""))
    with unit_of_work(rt.sessions) as session:
        if session.get(WebsiteForm, form["nonce"]) is not None:
            return _render("website/received.html", 409, **ctx)
        # One count-and-insert at a time per service (see the module's docstring); released at the commit.
        session.execute(select(Service.id).where(Service.id == service_id).with_for_update(key_share=True))
        since = now - HOUR
        for where, most in (
            ((WebsiteForm.address_hash == address, WebsiteForm.service_id == service_id),
             limits.max_per_address_per_hour),
            ((WebsiteForm.service_id == service_id,), limits.max_per_hour),
        ):  # fmt: skip
            count, oldest = session.execute(
                select(func.count(), func.min(WebsiteForm.received_at)).where(*where, WebsiteForm.received_at > since)
            ).one()
            if count >= most:
                wait = max(60, int((oldest + HOUR - now).total_seconds()) + 1)
                return _render("website/too_many.html", 429, headers={"Retry-After": str(wait)}, **ctx)
        try:
            with session.begin_nested():
                row = WebsiteForm(nonce=form["nonce"], service_id=service_id, address_hash=address,
                                  page_url=came_from, received_at=now)  # fmt: skip
                session.add(row)
                session.flush()
        except IntegrityError:  # the same page load was sent twice at once: the first stands
            return _render("website/received.html", 409, **ctx)
        response = sessions.start_session(session, config.slug, CHANNEL, language, started_at=now)
        checked.record(sessions, session, response, flow, now)
        sessions.complete(session, response, now)
        row.response_id = response.id
    return _render("website/thanks.html", 200, **ctx)


@bp.get("/f/<service>/button.js")
@public("a script any page of the service's allowed origins loads; it holds no secret and sets no cookie")
def button(service: str) -> Any:
    config = _service(service)
    if config is None or config.website is None:
        return Response("// no website feedback button is configured for this service\n", status=404,
                        mimetype="text/javascript")  # fmt: skip
    rt = runtime()
    flow = rt.catalog.flow_of(config)
    pra = rt.catalog.pra_of(config)
    now = utcnow().astimezone(config.timezone)
    if pra.lapsed_at(now, config.timezone):
        # The survey is closed (rule 9): no button opening a 410 page, yet still a script, so the agency's pages
        # that keep the snippet have no console error; not cached, so the button is back once the approval is renewed.
        response = Response("// this service's survey is closed (its PRA approval expired): no feedback button\n",
                            mimetype="text/javascript")  # fmt: skip
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        return response
    words = {
        lang: {
            "button": translate(lang, BUTTON),
            "title": translate(lang, DIALOG_TITLE),
            "close": translate(lang, CLOSE),
        }
        for lang in flow.languages
    }
    settings = {"origins": list(config.website.origins), "languages": list(flow.languages), "words": words}
    script = (STATIC / "button.js").read_text(encoding="utf-8")
    script = script.replace("/*SETTINGS*/null", json.dumps(settings, ensure_ascii=True).replace("</", "<\\/"))
    response = Response(script, mimetype="text/javascript")
    # Kept an hour, never past the approval's last day: no browser keeps a button for a survey that has closed.
    closes = datetime.combine(pra.expiration_date + timedelta(days=1), dt_time(0), tzinfo=config.timezone)
    left = max(0, min(BUTTON_MAX_AGE, int((closes - now).total_seconds())))
    response.headers["Cache-Control"] = f"public, max-age={left}"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@bp.get("/f/assets/<name>")
@public("the feedback page's own script and style sheet")
def asset(name: str) -> Any:
    if name not in ASSETS:
        return Response("not found", status=404, mimetype="text/plain")
    response = send_from_directory(STATIC, name, mimetype=ASSETS[name], max_age=3600)
    return response
