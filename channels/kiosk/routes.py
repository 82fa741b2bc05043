"""The kiosk channel's blueprint: enrollment, the page and what it runs offline, and the sync endpoint.

* ``GET /kiosk/enroll/<code>`` uses nothing up (a chat app's link preview or a mail scanner may fetch it): it shows
  a page with an "Enroll this device" button, or the page saying why the link cannot be used. The button POSTs to
  the same address with a CSRF token bound to the code and to a SameSite=Strict cookie the GET set (a cross-site
  form cannot send it); that POST consumes the one-time code, sets the device credential cookie (``__Host-``
  prefix: Secure, Path=/, no Domain; HttpOnly; SameSite=Strict) and answers 303 to ``/kiosk``, so no secret
  stays in the address. A second use gets a page saying the link was used.
* ``GET /kiosk`` (the page shell), ``/kiosk/flow.json`` (the flow version and its words), ``/kiosk/sw.js`` (the
  service worker, allowed the ``/kiosk`` scope by ``Service-Worker-Allowed``) and ``/kiosk/assets/<name>``: all
  need the credential. Without one: 401 and a page saying how to enroll; a revoked device: 401 and a page that
  says so. Once the PRA approval of the service's survey expired, ``flow.json`` is a 503 (the page says it cannot
  show the survey and asks again later).
* ``POST /api/v1/kiosk/responses``: a batch of queued sessions (:mod:`engine.kiosk.devices`); refusals are problem+json.
  The cookie is SameSite=Strict and the body must be JSON (a cross-site form cannot send either).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request, send_from_directory

from channels.kiosk.texts import kiosk_document
from engine.common.crypto import token_hash
from engine.common.errors import ValidationFailed
from engine.common.i18n import available_languages, best_language, language_name
from engine.kiosk import devices as registry
from engine.store.db import unit_of_work, utcnow
from engine.store.models import KioskDevice
from engine.surveys.flow_store import published_flow
from engine.surveys.messages import pra_of
from engine.webapp.problems import Problem
from engine.webapp.support import guarded_by, json_body, runtime

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
ASSETS = {"kiosk.js": "text/javascript", "kiosk.css": "text/css"}
COOKIE = "__Host-survey-kiosk"
# The enrollment page's anti-forgery cookie (random, SameSite=Strict): the form's token is bound to it and the code.
ENROLL_COOKIE = "__Host-survey-kiosk-enroll"
ENROLL_FORM_AGE = int(timedelta(hours=1).total_seconds())
# Browsers keep a cookie at most 400 days; the page renews it on every load.
COOKIE_MAX_AGE = int(timedelta(days=400).total_seconds())
GUARD = "kiosk device credential (HttpOnly SameSite=Strict cookie; 256 random bits, stored hashed)"

bp = Blueprint("kiosk", __name__, template_folder=str(HERE / "templates"))


@bp.after_request
def kiosk_headers(response: Any) -> Any:
    if request.path.startswith("/kiosk"):
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        # The page and its files are fetched fresh when online (the service worker keeps its own copy).
        response.headers.setdefault("Cache-Control", "no-cache, private")
    return response


def _page_language() -> str:
    offered = available_languages()
    g.language = best_language(offered, request.args.get("lang"), request.accept_languages.best_match(offered))
    return str(g.language)


def _refusal(template: str, status: int, **context: Any) -> Response:
    language = context.pop("language", None) or _page_language()
    g.language = language
    response = Response(render_template(template, language=language, **context), status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _device(api: bool) -> KioskDevice:
    """The device holding the request's credential (its last contact updated), or a refusal."""
    rt = runtime()
    with unit_of_work(rt.sessions) as session:
        try:
            device = registry.authenticate(session, request.cookies.get(COOKIE))
        except registry.DeviceRefused as exc:
            if api:
                detail = (
                    "This kiosk was revoked; it can no longer submit responses. Enroll the tablet again."
                    if exc.revoked
                    else "No enrolled kiosk credential was sent. Enroll the tablet with `survey-engine kiosk register`."
                )
                raise Problem(401, detail, kind="kiosk-revoked" if exc.revoked else "kiosk-not-enrolled") from None
            raise _Refused(exc.revoked) from None
        session.flush()
        session.expunge(device)
    return device


class _Refused(Exception):
    def __init__(self, revoked: bool) -> None:
        self.revoked = revoked


@bp.errorhandler(_Refused)
def refused(exc: _Refused) -> Response:
    if exc.revoked:
        return _refusal("kiosk/revoked.html", 401)
    return _refusal("kiosk/not_enrolled.html", 401)


ENROLL_GUARD = "one-time enrollment code (192 random bits, stored hashed, valid 24 hours)"


def _enroll_token(code: str, nonce: str) -> str:
    key = runtime().settings.secret_key.encode()
    return hmac.new(key, f"kiosk-enroll:{token_hash(code)}:{nonce}".encode(), hashlib.sha256).hexdigest()


def _enroll_refused(reason: str) -> Response:
    return _refusal("kiosk/enroll_refused.html", 404 if reason == "unknown" else 410, reason=reason)


@bp.get("/kiosk/enroll/<code>")
@guarded_by(ENROLL_GUARD)
def enroll_page(code: str) -> Any:
    """The confirm page: nothing is used up until a person taps the button."""
    rt = runtime()
    with rt.sessions() as session:
        try:
            device = registry.enrollable(session, code)
        except registry.EnrollmentRefused as exc:
            return _enroll_refused(exc.reason)
        name = device.name
    nonce = request.cookies.get(ENROLL_COOKIE) or secrets.token_urlsafe(24)
    response = _refusal("kiosk/enroll.html", 200, device_name=name, csrf_token=_enroll_token(code, nonce))
    response.set_cookie(ENROLL_COOKIE, nonce, max_age=ENROLL_FORM_AGE, path="/", secure=True, httponly=True,
                        samesite="Strict")  # fmt: skip
    return response


@bp.post("/kiosk/enroll/<code>")
@guarded_by(ENROLL_GUARD)
def enroll(code: str) -> Any:
    nonce = request.cookies.get(ENROLL_COOKIE, "")
    given = request.form.get("csrf_token", "")
    if not nonce or not given or not hmac.compare_digest(given.encode(), _enroll_token(code, nonce).encode()):
        # A forged or stale form: nothing is used up; the page's own link starts again.
        return _refusal("kiosk/enroll_forbidden.html", 403, link=request.path)
    rt = runtime()
    try:
        with unit_of_work(rt.sessions) as session:
            _, credential = registry.enroll(session, code)
    except registry.EnrollmentRefused as exc:
        return _enroll_refused(exc.reason)
    response = redirect("/kiosk", code=303)
    response.set_cookie(COOKIE, credential, max_age=COOKIE_MAX_AGE, path="/", secure=True, httponly=True,
                        samesite="Strict")  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response


def _renew(response: Response) -> Response:
    credential = request.cookies.get(COOKIE)
    if credential:
        response.set_cookie(COOKIE, credential, max_age=COOKIE_MAX_AGE, path="/", secure=True, httponly=True,
                            samesite="Strict")  # fmt: skip
    return response


@bp.get("/kiosk")
@guarded_by(GUARD)
def page() -> Any:
    device = _device(api=False)
    language = device.languages[0] if device.languages else "en"
    g.language = language
    html = render_template("kiosk/page.html", language=language, device=device)
    return _renew(Response(html, mimetype="text/html"))


@bp.get("/kiosk/flow.json")
@guarded_by(GUARD)
def flow_json() -> Any:
    device = _device(api=False)
    rt = runtime()
    try:
        service_slug, _ = registry.device_context(rt, device)
    except registry.ServiceGone as exc:
        return Response(str(exc), status=503, mimetype="text/plain", headers={"Retry-After": "300"})
    service = rt.catalog.services[service_slug]
    flow = rt.catalog.flow_of(service)
    with rt.sessions() as session:  # the version as published (what answers will be checked against)
        published = published_flow(session, flow.id, flow.version)
    if published is not None:
        flow = published[1]
    if pra_of(service, flow).lapsed_at(utcnow(), service.timezone):
        # No valid OMB control number, no survey (SPEC §2 rule 9): the page says it cannot show one, and asks again.
        return Response("the PRA approval of this kiosk's survey has expired; nothing is asked until it is renewed",
                        status=503, mimetype="text/plain", headers={"Retry-After": "3600"})  # fmt: skip
    names = {lang: language_name(lang) for lang in device.languages}
    return jsonify(kiosk_document(flow, service, device, names))


@bp.get("/kiosk/sw.js")
@guarded_by(GUARD)
def service_worker() -> Any:
    _device(api=False)
    response = send_from_directory(STATIC, "sw.js", mimetype="text/javascript", max_age=0)
    # The worker lives under /kiosk/ but must control the page /kiosk itself.
    response.headers["Service-Worker-Allowed"] = "/kiosk"
    response.headers["Cache-Control"] = "no-cache, private"
    return response


@bp.get("/kiosk/assets/<name>")
@guarded_by(GUARD)
def asset(name: str) -> Any:
    _device(api=False)
    if name not in ASSETS:
        return Response("not found", status=404, mimetype="text/plain")
    response = send_from_directory(STATIC, name, mimetype=ASSETS[name], max_age=0)
    response.headers["Cache-Control"] = "no-cache, private"
    return response


@bp.post("/api/v1/kiosk/responses")
@guarded_by(GUARD)
def responses() -> Any:
    device = _device(api=True)
    body = json_body(max_bytes=registry.MAX_BODY_BYTES)
    try:
        batch = registry.parse_batch(body)
    except ValidationFailed as exc:
        raise Problem(422, "The batch is malformed; nothing was stored. Fix the fields named in errors.",
                      kind="invalid-batch", errors=exc.errors) from None  # fmt: skip
    rt = runtime()
    now = utcnow()
    with unit_of_work(rt.sessions) as session:
        attached = session.get(KioskDevice, device.id)
        assert attached is not None
        if attached.revoked_at is not None:  # revoked between the check and now
            raise Problem(401, "This kiosk was revoked; it can no longer submit responses.", kind="kiosk-revoked")
        attached.last_seen_at = now
        try:
            results = registry.store_batch(session, rt, attached, batch, now)
        except registry.ServiceGone as exc:  # the sessions stay queued on the device until it is configured again
            raise Problem(503, f"{exc}; nothing was stored, keep the sessions and retry later.",
                          kind="kiosk-service-gone", headers={"Retry-After": "300"}) from None  # fmt: skip
    # Each result names the session by the id as the device sent it (one UUID may be spelled in upper case, in braces,
    # as a URN): a device matches results to its queue by that text. The batch parsed whole, so the order is the body's.
    sent = [item["client_uuid"] for item in body["sessions"]]
    return jsonify({"results": [r.as_dict() | {"client_uuid": given} for r, given in zip(results, sent, strict=True)]})
