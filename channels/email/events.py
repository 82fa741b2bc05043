"""SendGrid's event webhook (``POST /channels/email/events``): delivery reports, applied once each.

A batch is accepted only with a valid signature over a fresh timestamp (:mod:`channels.email.signature`); an
unsigned, forged or stale batch gets 403 and changes nothing. Each event names its invitation by the
personalization's ``custom_args`` (``invitation_id``, at the top level of the event) — the channel stored that id
as the invitation's ``provider_id`` — and is applied through :func:`engine.delivery.provider_reports.apply_status` keyed by
``sg_event_id``, so a batch SendGrid posts again changes nothing the second time.

| event | invitation | suppression (email) |
| --- | --- | --- |
| processed | sent (settles one left unknown by a timeout) | — |
| delivered | delivered | — |
| deferred, open, click, group_resubscribe | recorded only | — |
| bounce (``type: bounce``) | failed | bounce |
| bounce (``type: blocked``: a soft refusal, the address is fine) | failed | — |
| dropped | failed | by its reason: unsubscribed → opted_out, spam report → complaint, else bounce |
| spamreport | recorded | complaint |
| unsubscribe, group_unsubscribe | recorded | opted_out |

An event of another kind, or one that names no invitation of ours, is logged and accepted (never a 5xx: SendGrid
would post the whole batch again). So is an event holding a number that is not finite (``NaN``, ``Infinity``, or
``1e309``, which parses as infinity): standard JSON has no such numbers (RFC 8259 §6) and SendGrid's own numbers are
timestamps and small counts, so such an event is not SendGrid's; it is skipped, as an event holding text no store
keeps is, and the rest of its batch applied (refusing the batch would drop its good events with it). Nothing
non-finite is stored (SPEC §2 rule 11).

Before the signature is looked at or a byte of the body read, the request is held to every JSON endpoint's checks
(:func:`engine.webapp.support.check_json_request`): a media type other than JSON is a 415, a body over
``MAX_BATCH_BYTES`` a 413 (by its ``Content-Length``; a chunked body is read one byte past the limit, no further).
A refusal writes nothing and logs neither the body nor its signature.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from flask import jsonify, request

from channels.email.blueprint import bp
from channels.email.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, EventVerifier
from engine.common.limits import text_problem
from engine.delivery.provider_reports import Report, apply_status, settle_held
from engine.store.db import unit_of_work
from engine.store.models import InvitationState, SuppressionReason
from engine.webapp.problems import problem_response
from engine.webapp.support import (
    check_json_request,
    checks_own_form,
    guarded_by,
    parse_json,
    read_json_request,
    runtime,
)

logger = logging.getLogger("survey_engine.channels.email")
S = InvitationState
# An address: a run of characters that may stand in one, an "@", another run. The look-behind lets a match start only
# where a run starts (the only place a leftmost match can start anyway): without it, a long run with no "@" after
# it was scanned again from each of its characters, quadratic in a bounce text the receiving server writes.
EMAIL_ADDRESS = re.compile(r"(?<![^\s<>\"'@])[^\s<>\"'@]+@[^\s<>\"'@]+")
SUPPRESSES = ("email",)
# SendGrid posts a batch "every 30 seconds or when the batch size reaches 768 kilobytes - whichever occurs first"
# (SendGrid's docs, Getting Started with the Event Webhook > Data Storage; sendgrid/docs,
# content/docs/for-developers/tracking-events/getting-started-event-webhook.md). The event that reaches 768 KB
# rides in the batch, so a batch can end a little past it: 2 MiB is over 2.5 times SendGrid's largest batch, and a
# quarter of the app-wide MAX_CONTENT_LENGTH. Its media type: the docs show `Content-Type: application/json`
# (Troubleshooting: the curl that posts what the webhook posts); a post captured from SendGrid (User-Agent
# "SendGrid Event API") carries `application/json;charset=utf-8`. The check compares the media type without its
# parameters, as every JSON endpoint does: both pass.
MAX_BATCH_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Meaning:
    state: InvitationState | None = None
    suppress: SuppressionReason | None = None


SIMPLE: dict[str, Meaning] = {
    "processed": Meaning(S.SENT),
    "delivered": Meaning(S.DELIVERED),
    "deferred": Meaning(),
    "open": Meaning(),
    "click": Meaning(),
    "group_resubscribe": Meaning(),  # lifting a suppression needs an admin and a reason (SPEC §2 rule 3)
    "spamreport": Meaning(None, SuppressionReason.COMPLAINT),
    "unsubscribe": Meaning(None, SuppressionReason.OPTED_OUT),
    "group_unsubscribe": Meaning(None, SuppressionReason.OPTED_OUT),
}


def meaning(event: dict[str, Any]) -> Meaning | None:
    """What one SendGrid event says about its invitation and address (None: an event we do not know)."""
    name = str(event.get("event") or "")
    if name == "bounce":
        if str(event.get("type") or "").lower() == "blocked":
            return Meaning(S.FAILED)
        return Meaning(S.FAILED, SuppressionReason.BOUNCE)
    if name == "dropped":
        reason = str(event.get("reason") or "").lower()
        if "unsubscribe" in reason:
            return Meaning(S.FAILED, SuppressionReason.OPTED_OUT)
        if "spam" in reason:
            return Meaning(S.FAILED, SuppressionReason.COMPLAINT)
        return Meaning(S.FAILED, SuppressionReason.BOUNCE)
    return SIMPLE.get(name)


def _invitation_id(event: dict[str, Any]) -> str | None:
    raw = event.get("invitation_id")
    if raw is None and isinstance(event.get("custom_args"), dict):
        raw = event["custom_args"].get("invitation_id")
    try:
        return str(uuid.UUID(str(raw))) if raw is not None else None
    except ValueError:
        return None


def _event_key(event: dict[str, Any]) -> str:
    sg_event_id = str(event.get("sg_event_id") or "")
    if sg_event_id:
        return f"sendgrid:{sg_event_id}"[:200]
    digest = hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()
    return f"sendgrid:sha256:{digest}"


def _detail(event: dict[str, Any]) -> str:
    """What the event says, without the address (bounce texts often quote it)."""
    parts = [f"sendgrid {event.get('event')}"]
    for key in ("type", "status", "reason", "response", "bounce_classification", "attempt"):
        if event.get(key):
            parts.append(f"{key}: {event[key]}")
    return EMAIL_ADDRESS.sub("[address]", "; ".join(str(p) for p in parts))[:200]


def non_finite(event: dict[str, Any]) -> bool:
    """Whether a number anywhere in ``event`` is NaN or infinite (walked without recursion)."""
    stack: list[Any] = [event]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def report_for(event: dict[str, Any]) -> Report | None:
    if non_finite(event):  # not an event SendGrid sends (see the module docstring)
        return None
    known = meaning(event)
    invitation_id = _invitation_id(event)
    if known is None or invitation_id is None:
        return None
    key, detail = _event_key(event), _detail(event)
    if text_problem(key):  # no store keeps it (NUL, an unpaired surrogate): not an event SendGrid sends
        return None
    return Report(
        provider_id=invitation_id,
        event_key=key,
        event=f"sendgrid:{event.get('event')}"[:32],
        state=known.state,
        detail=None if detail is None or text_problem(detail) else detail,
        suppress=known.suppress,
        suppress_channels=SUPPRESSES if known.suppress else (),
    )


def _log_ignored(event: Any) -> None:
    if not isinstance(event, dict):
        logger.warning("sendgrid event batch held a non-object; skipped", extra={"kind": type(event).__name__})
    elif non_finite(event):
        logger.warning(
            "sendgrid event holding a non-finite number skipped", extra={"event": str(event.get("event"))[:40]}
        )
    elif meaning(event) is None:
        logger.warning("sendgrid event of an unknown kind accepted and skipped",
                       extra={"event": str(event.get("event"))[:40]})  # fmt: skip
    else:  # another sender on the same SendGrid account, or a message sent before custom args were set
        logger.info("sendgrid event names no invitation; skipped", extra={"event": str(event.get("event"))[:40]})


def _verifier() -> EventVerifier | None:
    channels = runtime().channels
    verifier = getattr(channels.get("email"), "events", None) if "email" in channels else None
    return verifier if isinstance(verifier, EventVerifier) else None


@bp.post("/channels/email/events")
@guarded_by("sendgrid signed event webhook")
@checks_own_form  # takes no form: one is refused (415) unread, not parsed by the before-request check
def events() -> Any:
    check_json_request(MAX_BATCH_BYTES)
    verifier = _verifier()
    if verifier is None:
        return problem_response(403, "The email channel is not set up to verify SendGrid events; nothing changed.")
    payload = read_json_request(MAX_BATCH_BYTES)
    check = verifier.check(payload, request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER))
    if not check.ok:
        logger.warning("sendgrid event batch refused", extra={"reason": check.reason})
        return problem_response(403, f"Refused: {check.reason}. Nothing was changed.")
    # Rule 11's limits, answered as every JSON endpoint answers them: a 400 problem ``malformed-json``, ``too-deep``
    # (never a RecursionError) or ``duplicate-key`` (naming the key and where). SendGrid looks at the status only; a
    # 400 is a refusal, never a 5xx that would have it post the batch again.
    batch = parse_json(payload)
    if not isinstance(batch, list):
        return problem_response(400, "The body is not a JSON array of events.")
    applied = repeated = ignored = 0
    held: set[str] = set()
    rt = runtime()
    with unit_of_work(rt.sessions) as session:
        for event in batch:
            report = report_for(event) if isinstance(event, dict) else None
            if report is None:
                ignored += 1
                _log_ignored(event)
                continue
            if apply_status(session, report):
                applied += 1
            else:
                repeated += 1  # applied before, or names no invitation of ours yet (held until dispatch records it)
                held.add(report.provider_id)
    settle_held(rt.sessions, held)
    return jsonify(received=len(batch), applied=applied, not_applied=repeated, ignored=ignored)
