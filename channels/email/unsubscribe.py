"""One-click unsubscribe (RFC 8058): ``GET /u/<token>`` asks, ``POST /u/<token>`` unsubscribes at once.

The token (128 random bits, stored only as its SHA-256, purpose ``unsubscribe``) is the only credential: there is
no sign-in and no CSRF token, because mail clients post ``List-Unsubscribe=One-Click`` with nothing else. A GET
never changes anything (mail scanners follow links): it shows a page with a button that posts back here. The
address is never decrypted: the invitation's keyed contact hash is suppressed on ``email`` (reason
``opted_out``), which also works long after the answer window closed and the contact data was erased.

A one-click POST is answered 200 with an empty body; the page's button gets a short confirmation page. An unknown
or revoked token: 404.
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, render_template, request
from sqlalchemy import select

from channels.email.blueprint import bp
from engine.catalog.services import ServiceConfig
from engine.common.i18n import available_languages, best_language, translate
from engine.delivery.suppressions import suppress_hash, suppressed_channels
from engine.store.db import unit_of_work, utcnow
from engine.store.models import ContactKind, DeliveryEvent, Invitation, Service, SuppressionReason
from engine.surveys.tokens import UNSUBSCRIBE, invitation_for
from engine.webapp.support import guarded_by, runtime

GUARD = "unsubscribe link token (128 random bits, stored hashed)"
SOURCE = "email:unsubscribe"


def _one_click() -> bool:
    return request.form.get("List-Unsubscribe", "").strip().lower() == "one-click"


def _service(invitation: Invitation) -> ServiceConfig | None:
    rt = runtime()
    with rt.sessions() as session:
        slug = session.execute(select(Service.slug).where(Service.id == invitation.service_id)).scalar_one_or_none()
    return rt.catalog.services.get(slug) if slug else None


def _page(template: str, status: int, invitation: Invitation | None, token: str, **extra: Any) -> tuple[str, int]:
    offered = available_languages()
    language = best_language(
        offered,
        request.args.get("lang"),
        invitation.language if invitation is not None else None,
        request.accept_languages.best_match(offered),
    )
    g.language = language
    service = _service(invitation) if invitation is not None else None
    context: dict[str, Any] = {
        "language": language,
        "token": token,
        "service": service,
        "service_name": translate(language, service.name) if service else "",
        "agency": translate(language, service.agency) if service else "",
        "other_languages": [lang for lang in offered if lang != language] if template.endswith("confirm.html") else [],
        **extra,
    }
    return render_template(template, **context), status


@bp.get("/u/<token>")
@guarded_by(GUARD)
def confirm(token: str) -> Any:
    rt = runtime()
    with rt.sessions() as session:
        invitation = invitation_for(session, token, purpose=UNSUBSCRIBE)
        already = bool(
            invitation is not None
            and invitation.contact_hash
            and "email" in suppressed_channels(session, invitation.contact_hash)
        )
    if invitation is None:
        return _page("email_unsubscribe/not_found.html", 404, None, token)
    if already:
        return _page("email_unsubscribe/done.html", 200, invitation, token, already=True)
    return _page("email_unsubscribe/confirm.html", 200, invitation, token)


@bp.post("/u/<token>")
@guarded_by(GUARD)
def unsubscribe(token: str) -> Any:
    one_click = _one_click()
    rt = runtime()
    now = utcnow()
    with unit_of_work(rt.sessions) as session:
        # Locked (PostgreSQL), so that posts of one link are taken one at a time: a mail provider's one-click post and
        # its retry sent together record one suppression, as a second post afterwards does.
        invitation = invitation_for(session, token, purpose=UNSUBSCRIBE, lock=True)
        if invitation is not None and invitation.contact_hash:
            how = "List-Unsubscribe one-click" if one_click else "unsubscribe page"
            recorded = suppress_hash(session, invitation.contact_hash, ContactKind.EMAIL, ["email"],
                                     SuppressionReason.OPTED_OUT, SOURCE, how, now)  # fmt: skip
            if any(r.new for r in recorded):
                session.add(DeliveryEvent(invitation_id=invitation.id, at=now, event="email:unsubscribed", state=None,
                                          detail=how))  # fmt: skip
    if invitation is None:
        if one_click:
            return Response("", status=404, mimetype="text/plain")
        return _page("email_unsubscribe/not_found.html", 404, None, token)
    if one_click:
        return Response("", status=200, mimetype="text/plain")
    return _page("email_unsubscribe/done.html", 200, invitation, token, already=False)
