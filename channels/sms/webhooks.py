"""The SMS webhooks Twilio calls (SPEC §4): ``POST /channels/sms/inbound`` and ``POST /channels/sms/status``.

Both are checked against ``X-Twilio-Signature`` (403 and no change otherwise) and answer TwiML. A field that
cannot be stored (NUL, a ``MessageSid`` not shaped like Twilio's, a status word longer than the event columns) is a
422 naming it, and changes nothing.

* inbound — a customer's text, applied once by its ``MessageSid``: the receipt is claimed first, in the same
  database transaction as the turn, and stores the TwiML answered, so a retried request gets the same TwiML and
  changes nothing (SPEC §2 rule 10).
* status — Twilio's delivery report for a message we sent, applied once per ``MessageSid`` and status through
  :func:`engine.delivery.provider_reports.apply_status`; an unknown status word changes nothing, and a report on a message whose sid
  dispatch has not recorded yet is held and applied when the sid lands.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from twilio.twiml.messaging_response import MessagingResponse

from channels.sms.conversation import Conversation
from channels.twilio_api import (
    MESSAGE_SID,
    SUPPRESSING_CODES,
    Check,
    field_errors,
    refused,
    status_word_problem,
    twilio_signed,
)
from engine.common.errors import FieldError
from engine.delivery.provider_reports import Report, apply_status, settle_held
from engine.intake.validation import normalize_phone
from engine.store.db import unit_of_work
from engine.store.models import InvitationState
from engine.surveys.conversations import keep_reply, remember, seen
from engine.webapp.problems import problem_response
from engine.webapp.support import runtime

bp = Blueprint("sms", __name__, url_prefix="/channels/sms")
RECEIPT_PREFIX = "sms:"
EVENT_PREFIX = "status:"
SIDS: dict[str, Check] = {"MessageSid": MESSAGE_SID.problem, "SmsSid": MESSAGE_SID.problem}
MAX_BODY = 1600  # Twilio's longest message (10 segments); anything longer is cut, never refused

# Twilio's MessageStatus values and the invitation state each one reports.
STATUS_STATES: dict[str, InvitationState] = {
    "queued": InvitationState.SENT,
    "accepted": InvitationState.SENT,
    "scheduled": InvitationState.SENT,
    "sending": InvitationState.SENT,
    "sent": InvitationState.SENT,
    "delivered": InvitationState.DELIVERED,
    "read": InvitationState.DELIVERED,
    "undelivered": InvitationState.FAILED,
    "failed": InvitationState.FAILED,
    "canceled": InvitationState.FAILED,
}


def unstorable(text: tuple[str, ...], checks: dict[str, Check]) -> Response | None:
    """422 naming each form field that cannot be stored (see :func:`channels.twilio_api.field_errors`), else None."""
    errors = field_errors(request.form, text, checks)
    return refused(errors) if errors else None


def twiml(text: str | None) -> str:
    reply = MessagingResponse()
    if text:
        reply.message(text)
    return str(reply)


def xml(body: str) -> Response:
    return Response(body, status=200, mimetype="text/xml")


@bp.post("/inbound")
@twilio_signed
def inbound() -> Any:
    refused = unstorable(("From", "Body"), SIDS)
    if refused is not None:
        return refused
    sid = (request.form.get("MessageSid") or request.form.get("SmsSid") or "").strip()
    if not sid:
        return problem_response(400, "MessageSid is missing: this is not a Twilio incoming-message request.")
    key = RECEIPT_PREFIX + sid
    rt = runtime()
    with unit_of_work(rt.sessions) as session:
        if not remember(session, key, "sms", None):  # applied already, or being applied right now (then waited for)
            receipt = seen(session, key)
            return xml((receipt.reply if receipt else None) or twiml(None))
        try:
            phone = normalize_phone(request.form.get("From", ""), "From")
        except FieldError:
            answer = twiml(None)  # a short code or a sender we cannot reach back: nothing to say
        else:
            body = (request.form.get("Body") or "")[:MAX_BODY]
            answer = twiml(Conversation(rt, session, phone).answer(body).text)
        keep_reply(session, key, answer)
    return xml(answer)


@bp.post("/status")
@twilio_signed
def status() -> Any:
    refused = unstorable(("ErrorCode",), STATUS_CHECKS)
    if refused is not None:
        return refused
    sid = (request.form.get("MessageSid") or request.form.get("SmsSid") or "").strip()
    word = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").strip().lower()
    state = STATUS_STATES.get(word)
    if not sid or state is None:
        return xml(twiml(None))  # not a report we act on (an inbound message's status, a new word)
    code = _error_code(request.form.get("ErrorCode"))
    reason, channels = SUPPRESSING_CODES.get(code, (None, ())) if state is InvitationState.FAILED else (None, ())
    detail = f"twilio {word}" + (f" code {code}" if code else "")
    report = Report(provider_id=sid, event_key=f"{sid}:{word}", event=f"{EVENT_PREFIX}{word}", state=state,
                    detail=detail, suppress=reason, suppress_channels=channels)  # fmt: skip
    rt = runtime()
    with unit_of_work(rt.sessions) as session:
        applied = apply_status(session, report)
    if not applied:  # held (dispatch has not recorded this sid yet) or a repeat: if the sid landed meanwhile, apply
        settle_held(rt.sessions, [sid])
    return xml(twiml(None))


def _status_word(raw: str) -> str | None:
    return status_word_problem(raw.lower(), EVENT_PREFIX)


STATUS_CHECKS: dict[str, Check] = SIDS | {"MessageStatus": _status_word, "SmsStatus": _status_word}


def _error_code(raw: str | None) -> int:
    try:
        return int(raw or 0)
    except ValueError:
        return 0
