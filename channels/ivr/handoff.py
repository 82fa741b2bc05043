"""Who is on the line: the hand-off that brought a call to ``/channels/ivr/voice`` and the response it starts.

SPEC §4 names three post-call hand-offs and one outbound call:

* ``redirect`` — a ``<Redirect>`` from the contact center's own Twilio flow to
  ``/channels/ivr/voice?service=<slug>&transaction=<id>[&office=<code>][&language=<tag>]``;
* ``sip`` — a SIP transfer carrying ``X-Survey-Service`` and ``X-Transaction-Id`` (Twilio passes them as
  ``SipHeader_X-…`` form fields; ``X-Office`` and ``X-Language`` are read the same way when present);
* ``number`` — a call to one of the service's ``ivr_numbers``: the caller ID is matched to that service's transaction
  reported in the last 15 minutes, else a new transaction is made from the call (``call-<CallSid>``);
* ``outbound`` — ``?invitation=<id>``: the call the channel placed; an answering machine ends it.

A post-call transaction not yet reported is created through intake (``source="ivr"``), so sampling and every other
rule apply: only a caller whose transaction is ``scheduled`` (or ``no_channel``: the call itself is the channel) is
surveyed, and that survey cancels the transaction's invitations still waiting to be sent. The survey still
counts for the cooldown of every service (SPEC §2 rule 3): intake's cooldown looks at post-call responses as at
invitations, by the transaction's phone (the caller ID when the call made the transaction).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.ivr.calls import configured_service
from engine.catalog.services import ServiceConfig
from engine.common.errors import FieldError
from engine.common.i18n import best_language
from engine.common.logs import log
from engine.delivery.provider_reports import Report, apply_status
from engine.intake.submit import Intake, iso
from engine.intake.validation import language_tag, normalize_phone
from engine.runtime import Runtime
from engine.store.models import Contact, Decision, Invitation, InvitationState, Response, Transaction
from engine.surveys.conversations import cancel_pending
from engine.surveys.flows import Flow
from engine.surveys.sessions import SurveyClosed, SurveySessions

logger = logging.getLogger("survey_engine.ivr")
CHANNEL = "ivr"
POST_CALL_MATCH_WINDOW = timedelta(minutes=15)
# Decisions under which a caller on the line is surveyed (``no_channel``: no channel to invite them later, but the
# call itself is one). Sampled out, opted out, cooldown, cap reached, window passed, PRA expired: a thank-you only.
SURVEYED_DECISIONS = (Decision.SCHEDULED, Decision.NO_CHANNEL)
# An invitation in one of these states may have reached the customer already: the post-call survey is not asked.
REACHED_STATES = (
    InvitationState.SENDING,
    InvitationState.SENT,
    InvitationState.DELIVERED,
    InvitationState.ANSWERED,
    InvitationState.UNKNOWN,
)
SIP_PREFIX = "SipHeader_"


@dataclass(frozen=True)
class Handoff:
    how: str  # redirect | sip | number | outbound
    slug: str | None = None
    external_id: str | None = None
    office: str | None = None
    language: str | None = None
    invitation: str | None = None


@dataclass
class Entry:
    """What the entry webhook found: a survey to run, or why not (each ends the call politely)."""

    outcome: str  # survey | declined | machine | unavailable
    language: str = "en"
    response: Response | None = None
    choose_language: bool = False


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _e164(value: str | None) -> str | None:
    """A caller or called number in E.164 (a SIP URI's user part too), or None ("anonymous", "+266696687"…)."""
    value = (value or "").strip()
    if value.lower().startswith(("sip:", "sips:")):
        value = value.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    try:
        return normalize_phone(value) if value else None
    except FieldError:
        return None


def read_handoff(services: Mapping[str, ServiceConfig], args: Mapping[str, str], form: Mapping[str, str]) -> Handoff:
    """Which hand-off brought this call (see the module docstring); ``how`` is ``none`` when nothing matches."""
    if _clean(args.get("invitation")):
        return Handoff("outbound", invitation=_clean(args.get("invitation")))
    if _clean(args.get("service")) or _clean(args.get("transaction")):
        return Handoff("redirect", _clean(args.get("service")), _clean(args.get("transaction")),
                       _clean(args.get("office")), _clean(args.get("language")))  # fmt: skip
    sip = {key[len(SIP_PREFIX) :].lower(): value for key, value in form.items() if key.startswith(SIP_PREFIX)}
    if _clean(sip.get("x-survey-service")) or _clean(sip.get("x-transaction-id")):
        return Handoff("sip", _clean(sip.get("x-survey-service")), _clean(sip.get("x-transaction-id")),
                       _clean(sip.get("x-office")), _clean(sip.get("x-language")))  # fmt: skip
    called = _e164(form.get("To"))
    if called:
        for slug, service in services.items():
            if called in {_e164(n) for n in service.ivr_numbers}:
                return Handoff("number", slug)
    return Handoff("none")


def enter(session: Session, rt: Runtime, handoff: Handoff, form: Mapping[str, str], now: datetime) -> Entry:
    """Resolve the hand-off to a response to run (created now), or the reason the call ends."""
    if handoff.how == "outbound":
        return _outbound(session, rt, handoff.invitation or "", form, now)
    service = rt.catalog.services.get(handoff.slug or "")
    if service is None or (handoff.how in ("redirect", "sip") and not handoff.external_id):
        log(logger, "ivr hand-off names no known service or transaction", logging.WARNING, how=handoff.how,
            service=handoff.slug)  # fmt: skip
        return Entry("unavailable")
    return _post_call(session, rt, service, handoff, form, now)


# -- post-call --------------------------------------------------------------------------------------------------


def recent_transaction(
    session: Session, rt: Runtime, service: ServiceConfig, phone: str, now: datetime
) -> Transaction | None:
    """The service's newest transaction for this phone reported in the last 15 minutes, if any."""
    return session.execute(
        select(Transaction)
        .join(Contact, Contact.transaction_id == Transaction.id)
        .where(
            Transaction.service_id == rt.service_ids[service.slug],
            Contact.phone_hash == rt.cipher.lookup_hash("phone", phone),
            Transaction.received_at >= now - POST_CALL_MATCH_WINDOW,
        )
        .order_by(Transaction.received_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def _report(
    session: Session, rt: Runtime, service: ServiceConfig, handoff: Handoff, phone: str | None, call_sid: str,
    now: datetime,
) -> Transaction | None:  # fmt: skip
    """Intake of the call's transaction (a replay of one already reported returns its first decision)."""
    external_id = handoff.external_id or f"call-{call_sid}"
    item: dict[str, object] = {"id": external_id, "service": service.slug, "completed_at": iso(now),
                               "touchpoint": "phone"}  # fmt: skip
    if handoff.office:
        item["office"] = handoff.office
    if language_tag(handoff.language):
        item["language"] = handoff.language
    if phone:
        item["contact"] = {"phone": phone}
    (result,) = Intake(rt).submit(session, [item], None, now, source=CHANNEL)
    if result["decision"] == Decision.INVALID.value:
        log(logger, "ivr hand-off transaction refused by intake", logging.WARNING, service=service.slug,
            transaction=external_id, errors=result.get("errors"))  # fmt: skip
        return None
    return session.execute(
        select(Transaction).where(
            Transaction.service_id == rt.service_ids[service.slug], Transaction.external_id == external_id
        )
    ).scalar_one_or_none()


def _surveyable(session: Session, tx: Transaction) -> bool:
    if tx.decision not in SURVEYED_DECISIONS:
        return False
    reached = session.execute(
        select(Invitation.id)
        .where(Invitation.transaction_id == tx.id, Invitation.state.in_([s.value for s in REACHED_STATES]))
        .limit(1)
    ).first()
    answered = session.execute(
        select(Response.id).where(Response.transaction_id == tx.id, Response.channel == CHANNEL).limit(1)
    ).first()
    return reached is None and answered is None


def _offered(flow: Flow, language: str | None) -> bool:
    return bool(language) and str(language).split("-")[0].lower() in flow.languages


def _post_call(
    session: Session, rt: Runtime, service: ServiceConfig, handoff: Handoff, form: Mapping[str, str], now: datetime
) -> Entry:
    call_sid = form.get("CallSid", "")
    flow = rt.catalog.flow_of(service)
    existing = response_of_call(session, call_sid)
    if existing is not None:
        return Entry("survey", existing.language, existing)
    phone = _e164(form.get("From"))
    tx = recent_transaction(session, rt, service, phone, now) if handoff.how == "number" and phone else None
    if tx is None:
        tx = _report(session, rt, service, handoff, phone, call_sid, now)
    wanted = handoff.language if _offered(flow, handoff.language) else tx.language if tx else None
    language = best_language(flow.languages, wanted, service.default_language)
    if tx is None:
        return Entry("unavailable", language)
    if not _surveyable(session, tx):
        log(logger, "post-call caller not surveyed", service=service.slug, decision=str(tx.decision),
            how=handoff.how)  # fmt: skip
        return Entry("declined", language)
    cancel_pending(session, tx.id, "post_call_survey", now)
    response = SurveySessions(rt).start_session(
        session, service.slug, CHANNEL, language, transaction_id=tx.id, office_id=tx.office_id,
        provider_ref=call_sid, started_at=now, test=tx.test,
    )  # fmt: skip
    return Entry("survey", language, response, choose_language=len(flow.languages) > 1 and not _offered(flow, wanted))


def response_of_call(session: Session, call_sid: str) -> Response | None:
    if not call_sid:
        return None
    return session.execute(select(Response).where(Response.provider_ref == call_sid)).scalar_one_or_none()


# -- outbound ---------------------------------------------------------------------------------------------------


def answered_by_machine(answered_by: str | None) -> bool:
    """Twilio's answering-machine detection: ``machine_start``, ``machine_end_*`` or ``fax`` (``human``, ``unknown``
    are taken as a person)."""
    value = (answered_by or "").lower()
    return value.startswith("machine") or value == "fax"


def invitation_of_call(session: Session, invitation_ref: str | None, call_sid: str) -> Invitation | None:
    """The outbound invitation a call of ours names in its URL (``?invitation=<id>``), or None.

    The call proves it went out: an invitation still ``sending`` (the dispatcher has not recorded the provider's
    answer yet) or ``unknown`` (the provider call timed out after the request went out) adopts the CallSid, so
    this request and the call's status callbacks settle it (SPEC §2 rule 10).
    """
    try:
        invitation = session.get(Invitation, uuid.UUID(invitation_ref or ""), with_for_update=True)
    except ValueError:
        return None
    if invitation is None or invitation.channel != CHANNEL or not call_sid:
        return None
    if invitation.provider_id is None and invitation.state in (InvitationState.SENDING, InvitationState.UNKNOWN):
        invitation.provider_id = call_sid
        session.flush()
    return invitation if invitation.provider_id == call_sid else None


def _outbound(session: Session, rt: Runtime, invitation_ref: str, form: Mapping[str, str], now: datetime) -> Entry:
    call_sid = form.get("CallSid", "")
    invitation = invitation_of_call(session, invitation_ref, call_sid)
    if invitation is None:
        log(logger, "outbound ivr call names no invitation of ours", logging.WARNING, invitation=invitation_ref)
        return Entry("unavailable")
    sessions = SurveySessions(rt)
    service = configured_service(rt, invitation.service_id)
    if service is None:  # taken out of services.yaml after the call was placed: no survey, a polite goodbye, in the
        # language the invitation was made in (its flow, and so the languages it offers, went with the service)
        log(logger, "outbound ivr call for a service no longer configured", logging.WARNING,
            invitation=invitation_ref)  # fmt: skip
        return Entry("unavailable", invitation.language or "en")
    flow = rt.catalog.flow_of(service)
    answered_by = form.get("AnsweredBy") or "unknown"
    machine = answered_by_machine(answered_by)
    # Answered: by a person the call is delivered; by a machine it reached nobody (no survey opportunity).
    apply_status(session, Report(provider_id=call_sid, event_key=f"{call_sid}:answered", event="call_answered",
                                 state=InvitationState.FAILED if machine else InvitationState.DELIVERED,
                                 detail=f"answered by {answered_by}"), now)  # fmt: skip
    if machine:
        return Entry("machine")
    tx = session.get(Transaction, invitation.transaction_id)
    reported = tx.language if tx is not None else None
    language = best_language(flow.languages, reported, invitation.language, service.default_language)
    try:
        response = sessions.start_for_invitation(session, invitation, language, channel=CHANNEL, now=now)
    except SurveyClosed:
        return Entry("unavailable", language)
    if response.provider_ref is None:
        response.provider_ref = call_sid
    choose = len(flow.languages) > 1 and not _offered(flow, reported)
    return Entry("survey", response.language, response, choose_language=choose)
