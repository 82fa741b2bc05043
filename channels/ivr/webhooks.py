"""The IVR's webhooks (SPEC §4), all signed by Twilio and answered with TwiML (``text/xml``).

* ``POST /channels/ivr/voice`` — where a call enters: a post-call hand-off or the outbound call the channel placed
  (:mod:`channels.ivr.handoff`); answered with the language menu or the PRA notice, or a polite goodbye.
* ``POST /channels/ivr/language``, ``/notice``, ``/gather`` — the ``<Gather>`` callbacks of one call
  (``?response=<id>&step=<n>``), applied once by (CallSid, step): a retried request gets the TwiML the first one
  got and changes nothing (:func:`engine.surveys.conversations.seen` / ``remember``).
* ``POST /channels/ivr/status[?invitation=<id>]`` — call status callbacks of outbound calls, applied once through
  :func:`engine.delivery.provider_reports.apply_status` by (CallSid, CallStatus); the invitation in the URL lets a call whose
  create request timed out (``unknown``) be settled by its own callbacks. A status word not in :data:`CALL_STATES`
  changes nothing (as on the SMS status webhook).

Each webhook follows the same steps: signature (``twilio_signed``), fields, the receipt (claimed before any work, so
a concurrent retry waits and then replays), the work, one commit. A caller never hears an application error: any
failure is logged, rolled back, and answered with a spoken apology and a hang-up. A call whose service was taken out
of services.yaml (an outbound call answered, or a call in progress, after the deploy) is no failure: nothing is
stored, a warning is logged, and the caller hears the polite "not available" goodbye.

Fields are checked before anything is stored (SPEC §2 rule 11; NUL anywhere in a form is refused before any view
runs, engine/webapp/request_checks.py): a ``CallSid`` must have Twilio's shape (so every key built from it fits its
column), a ``CallStatus`` must fit the event columns, a ``step`` must be a whole number. A status callback that fails
is a 422 naming the field. A call webhook that fails is refused the way a call naming nothing of ours is: nothing is stored, a warning names the field, and Twilio
gets the polite "not available" TwiML with a 200, since any 4xx would make Twilio play its own "application error"
to whoever is on the line (and the request is Twilio's own, signed, so retrying it would change nothing).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, g, request
from flask import Response as HttpResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.ivr import calls, handoff, twiml
from channels.twilio_api import CALL_SID, Check, field_errors, refused, status_word_problem, twilio_signed
from engine.common.limits import MAX_NUMBER, whole_number
from engine.common.logs import log
from engine.delivery.provider_reports import Report, apply_status, settle_held
from engine.store.db import unit_of_work, utcnow
from engine.store.models import InvitationState, Response
from engine.surveys.conversations import keep_reply, remember, seen
from engine.webapp.support import runtime

logger = logging.getLogger("survey_engine.ivr")
bp = Blueprint("ivr", __name__, url_prefix="/channels/ivr")
CHANNEL = "ivr"
ENTRY_STEP = "voice"
EVENT_PREFIX = "call_"  # a status callback's delivery event: "call_" + CallStatus
# Fields that reach the store: the CallSid (receipt keys, the response's and invitation's provider id, the report's
# key) on every webhook; on the status callback also CallStatus (the event's name and key), AnsweredBy and
# ErrorCode (the event's detail, a Text column).
CALL_CHECKS: dict[str, Check] = {"CallSid": CALL_SID.problem}
STATUS_TEXT = ("AnsweredBy", "ErrorCode")
STATUS_CHECKS: dict[str, Check] = {
    **CALL_CHECKS,
    "CallStatus": lambda word: status_word_problem(word.lower(), EVENT_PREFIX),
}

# Call statuses (Twilio) → the invitation state they settle; the rest are recorded as events only.
CALL_STATES: dict[str, InvitationState | None] = {
    "queued": None,
    "initiated": None,
    "ringing": None,
    "in-progress": None,
    "completed": InvitationState.DELIVERED,
    "busy": InvitationState.FAILED,
    "no-answer": InvitationState.FAILED,
    "failed": InvitationState.FAILED,
    "canceled": InvitationState.FAILED,
}


def _twiml(body: str) -> HttpResponse:
    return HttpResponse(body, mimetype="text/xml")


def spoken_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A failure is logged and the caller hears an apology, never Twilio's "application error"."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(*args, **kwargs)
        except calls.ServiceGone as exc:  # a deploy took the call's service out: rolled back, not a failure
            log(logger, "ivr call ended: its service is no longer configured", logging.WARNING, path=request.path,
                detail=str(exc))  # fmt: skip
            return _twiml(calls.goodbye(calls.UNAVAILABLE, g.get("ivr_language", "en")))
        except Exception:
            logger.exception("ivr webhook failed", extra={"path": request.path})
            return _twiml(calls.goodbye(calls.SOMETHING_WRONG, g.get("ivr_language", "en")))

    return guarded


def _unusable() -> HttpResponse | None:
    """The polite refusal of a call webhook holding a field that cannot be stored (see the module docstring)."""
    errors = field_errors(request.form, (), CALL_CHECKS)
    if not errors:
        return None
    log(logger, "ivr webhook refused: a field cannot be stored", logging.WARNING, path=request.path,
        errors=[e.as_dict() for e in errors])  # fmt: skip
    return _twiml(calls.goodbye(calls.UNAVAILABLE, "en"))


def _claim(session: Session, key: str) -> str | None:
    """Claim the receipt of ``key`` before any work; the stored answer if the request was already applied."""
    if remember(session, key, CHANNEL, None, utcnow()):
        return None
    receipt = seen(session, key)  # applied already, or by another request that committed first
    return receipt.reply if receipt is not None and receipt.reply is not None else twiml.hang_up()


def _keep(session: Session, key: str, reply: str) -> str:
    keep_reply(session, key, reply)
    return reply


@bp.post("/voice")
@twilio_signed
@spoken_errors
def voice() -> HttpResponse:
    """A call enters: find its hand-off, decide whether to survey, start the response, say the first prompt."""
    rt = runtime()
    if (refusal := _unusable()) is not None:
        return refusal
    form = request.form.to_dict(flat=True)
    call_sid = form.get("CallSid", "").strip()
    if not call_sid:
        return _twiml(calls.goodbye(calls.UNAVAILABLE, "en"))
    now = utcnow()
    key = f"{call_sid}:{ENTRY_STEP}"
    with unit_of_work(rt.sessions) as session:
        replay = _claim(session, key)
        if replay is not None:
            return _twiml(replay)
        found = handoff.read_handoff(rt.catalog.services, request.args.to_dict(flat=True), form)
        entry = handoff.enter(session, rt, found, form, now)
        g.ivr_language = entry.language
        if entry.outcome == "survey" and entry.response is not None:
            reply = calls.Call(rt, session, entry.response, now).begin(entry.choose_language)
        elif entry.outcome == "machine":
            reply = twiml.hang_up()
        elif entry.outcome == "declined":
            reply = calls.goodbye(calls.THANKS_FOR_CALLING, entry.language)
        else:
            reply = calls.goodbye(calls.UNAVAILABLE, entry.language)
        _keep(session, key, reply)
    return _twiml(reply)


def _turn(phase: str, handle: Callable[[calls.Call, dict[str, str]], str]) -> HttpResponse:
    """One ``<Gather>`` callback: the call's response (locked), the receipt, then ``handle`` if the call is where
    the prompt left it (else the current prompt is said again)."""
    rt = runtime()
    if (refusal := _unusable()) is not None:
        return refusal
    form = request.form.to_dict(flat=True)
    call_sid = form.get("CallSid", "").strip()
    step = whole_number(request.args.get("step", ""), 0, MAX_NUMBER)  # the prompt's step, as Call.url wrote it
    try:
        response_id = uuid.UUID(request.args.get("response", ""))
    except ValueError:
        response_id = None
    if response_id is None or step is None:
        return _twiml(calls.goodbye(calls.UNAVAILABLE, "en"))
    now = utcnow()
    with unit_of_work(rt.sessions) as session:
        response = session.execute(
            select(Response).where(Response.id == response_id).with_for_update()
        ).scalar_one_or_none()
        if response is None or not call_sid or response.provider_ref != call_sid:
            return _twiml(calls.goodbye(calls.UNAVAILABLE, "en"))
        g.ivr_language = response.language
        key = f"{call_sid}:{step}"
        replay = _claim(session, key)
        if replay is not None:
            return _twiml(replay)
        call = calls.Call(rt, session, response, now)
        reply = handle(call, form) if call.step == step and call.phase == phase else call.current()
        _keep(session, key, reply)
    return _twiml(reply)


@bp.post("/language")
@twilio_signed
@spoken_errors
def language() -> HttpResponse:
    return _turn(calls.LANGUAGE, lambda call, form: call.on_language(form.get("Digits", "")))


@bp.post("/notice")
@twilio_signed
@spoken_errors
def notice() -> HttpResponse:
    return _turn(calls.NOTICE, lambda call, form: call.on_notice(form.get("Digits", "")))


@bp.post("/gather")
@twilio_signed
@spoken_errors
def gather() -> HttpResponse:
    return _turn(
        calls.QUESTIONS, lambda call, form: call.on_answer(form.get("Digits", ""), form.get("SpeechResult", ""))
    )


@bp.post("/status")
@twilio_signed
def status() -> HttpResponse:
    """A call status callback of an outbound call: settles its invitation once per (CallSid, CallStatus)."""
    form = request.form
    errors = field_errors(form, STATUS_TEXT, STATUS_CHECKS)
    if errors:
        return refused(errors)
    call_sid, call_status = form.get("CallSid", "").strip(), form.get("CallStatus", "").strip().lower()
    if call_sid and call_status in CALL_STATES:  # a word Twilio may add later is not ours to record (as for SMS)
        state = CALL_STATES.get(call_status)
        answered_by = form.get("AnsweredBy", "")
        detail = f"call {call_status}" + (f", answered by {answered_by}" if answered_by else "")
        if call_status == "completed" and handoff.answered_by_machine(answered_by):
            state = InvitationState.FAILED
        if form.get("ErrorCode"):
            detail += f", error {form.get('ErrorCode')}"
        report = Report(provider_id=call_sid, event_key=f"{call_sid}:{call_status}", event=EVENT_PREFIX + call_status,
                        state=state, detail=detail)  # fmt: skip
        rt = runtime()
        with unit_of_work(rt.sessions) as session:
            if request.args.get("invitation"):
                handoff.invitation_of_call(session, request.args.get("invitation"), call_sid)  # settles an unknown
            applied = apply_status(session, report, utcnow())
        if not applied:  # held until the CallSid lands (or a repeat): apply what is held if it landed meanwhile
            settle_held(rt.sessions, [call_sid])
    return _twiml(twiml.empty())
