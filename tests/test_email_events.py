"""SendGrid's signed event webhook: verified with a real P-256 key pair, each event applied once.

Batches are signed the way SendGrid signs them (ECDSA-SHA256 over ``timestamp + payload``, base64 DER) with a
key pair made for the session; its public key is the configured ``SENDGRID_WEBHOOK_PUBLIC_KEY``. Invitations
are sent for real first (through the SDK to the stand-in), so events find them by the ``invitation_id`` the
channel put in each personalization's ``custom_args``.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from engine.api.auth import create_api_key
from engine.reporting.fiscal import fiscal_quarter
from engine.store.db import unit_of_work
from tests import email_support
from tests.email_support import (
    EmailStack,
    WebhookSigner,
    sendgrid_event,
)
from tests.helpers import MeteredBody, counts

# The fixtures these tests take (pytest finds them by name in the module).
email_config_dir = email_support.email_config_dir
email_stack = email_support.email_stack
mail_stand_in = email_support.mail_stand_in
webhook_signer = email_support.webhook_signer
_shared_mail_stand_in = email_support._shared_mail_stand_in


@pytest.fixture
def stack(email_stack, mail_stand_in) -> EmailStack:
    built: EmailStack = email_stack(mail_stand_in.base_url)
    return built


def sent(stack: EmailStack, external_id: str, email: str) -> uuid.UUID:
    invitation_id = stack.schedule(external_id, email)
    stack.dispatch()
    invitation = stack.invitation(invitation_id)
    assert invitation.state.value == "sent" and invitation.provider_id == str(invitation_id)
    return invitation_id


def snapshot(stack: EmailStack, invitation_id: uuid.UUID) -> tuple[Any, ...]:
    invitation = stack.invitation(invitation_id)
    return (invitation.state, invitation.reason, len(stack.events()),
            [(s.channel, s.reason) for s in stack.suppressions()])  # fmt: skip


def accepted(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    found: dict[str, Any] = response.get_json()
    return found


def test_a_signed_hard_bounce_fails_the_invitation_and_suppresses_the_address(stack):
    invitation_id = sent(stack, "HB-1", "bounces@example.com")
    bounce = sendgrid_event(invitation_id, "bounce", type="bounce", status="5.1.1",
                            reason="550 5.1.1 <bounces@example.com>: user unknown")  # fmt: skip
    answer = accepted(stack.post_events([bounce]))
    assert answer == {"received": 1, "applied": 1, "not_applied": 0, "ignored": 0}
    invitation = stack.invitation(invitation_id)
    assert invitation.state.value == "failed"
    assert "bounces@example.com" not in (invitation.reason or "")  # no address in the plain-text history
    (suppression,) = stack.suppressions()
    assert (suppression.channel, suppression.reason.value, suppression.contact_kind.value) == (
        "email",
        "bounce",
        "email",
    )
    assert suppression.contact_hash == invitation.contact_hash
    # The next transaction with that email is not emailed; console (a test channel) stands aside for any
    # suppression, so no channel is left; a bounce is not an opt-out: no_channel (SPEC §2 rule 5).
    again = stack.report("HB-2", "bounces@example.com")
    assert again["decision"] == "no_channel" and again["invitation"] is None
    other = stack.report("HB-3", "someone-else@example.com")
    assert other["decision"] == "scheduled" and other["invitation"]["channel"] == "email"


def test_the_same_batch_twice_changes_nothing_the_second_time(stack):
    first = sent(stack, "DUP-1", "dup1@example.com")
    second = sent(stack, "DUP-2", "dup2@example.com")
    batch = [sendgrid_event(first, "processed"), sendgrid_event(first, "delivered"),
             sendgrid_event(second, "dropped", reason="Bounced Address"), sendgrid_event(first, "open")]  # fmt: skip
    assert accepted(stack.post_events(batch))["applied"] == 4
    before = (snapshot(stack, first), snapshot(stack, second))
    assert before[0][0].value == "delivered" and before[1][0].value == "failed"
    again = accepted(stack.post_events(batch))
    assert again == {"received": 4, "applied": 0, "not_applied": 4, "ignored": 0}
    assert (snapshot(stack, first), snapshot(stack, second)) == before
    assert len(stack.suppressions()) == 1


@pytest.mark.parametrize("attack", ["unsigned", "forged", "stale", "future", "tampered", "garbage-signature"])
def test_unsigned_forged_stale_or_tampered_batches_are_refused(stack, attack):
    invitation_id = sent(stack, "ATK-1", "attack@example.com")
    before = snapshot(stack, invitation_id)
    events = [sendgrid_event(invitation_id, "bounce", type="bounce")]
    if attack == "unsigned":
        response = stack.post_events(events, signed=False)
    elif attack == "forged":
        response = stack.post_events(events, signer=WebhookSigner())  # a key SendGrid never had
    elif attack == "stale":
        response = stack.post_events(events, timestamp=str(int(time.time()) - 301))
    elif attack == "future":
        response = stack.post_events(events, timestamp=str(int(time.time()) + 301))
    elif attack == "tampered":
        response = stack.post_events(events, body=json.dumps(events).replace('"bounce"', '"bounce" '))
    else:
        response = stack.client.post("/channels/email/events", data=json.dumps(events), headers={
            "Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Signature": "not base64 at all!",
            "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time()))})  # fmt: skip
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json" and "Nothing was changed" in response.get_json()["detail"]
    assert snapshot(stack, invitation_id) == before


def test_a_stale_but_otherwise_valid_signature_is_refused_even_when_replayed_exactly(stack):
    invitation_id = sent(stack, "RP-1", "replay@example.com")
    events = [sendgrid_event(invitation_id, "delivered")]
    payload, stamp = json.dumps(events), str(int(time.time()) - 600)
    headers = {"Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
               "X-Twilio-Email-Event-Webhook-Signature": stack.signer.sign(payload, stamp)}  # fmt: skip
    assert stack.client.post("/channels/email/events", data=payload, headers=headers).status_code == 403
    assert stack.invitation(invitation_id).state.value == "sent"


def test_open_and_click_are_recorded_as_events_and_count_nothing(stack):
    invitation_id = sent(stack, "OC-1", "opens@example.com")
    accepted(stack.post_events([sendgrid_event(invitation_id, "open"),
                                sendgrid_event(invitation_id, "click", url="https://example.gov")]))  # fmt: skip
    invitation = stack.invitation(invitation_id)
    assert invitation.state.value == "sent" and stack.suppressions() == []
    recorded = [(e.event, e.state) for e in stack.events(invitation_id) if e.event.startswith("sendgrid:")]
    assert recorded == [("sendgrid:open", None), ("sendgrid:click", None)]


def test_unknown_events_and_events_of_others_are_logged_and_accepted(stack, caplog):
    invitation_id = sent(stack, "UK-1", "unknown@example.com")
    before = snapshot(stack, invitation_id)
    batch: list[Any] = [
        sendgrid_event(invitation_id, "something_new_from_sendgrid"),
        {**sendgrid_event(invitation_id, "delivered"), "invitation_id": None},  # another sender on the account
        sendgrid_event(uuid.uuid4(), "delivered"),  # names no invitation of ours
        sendgrid_event("not-a-uuid", "delivered"),
        "not an event",
    ]
    answer = accepted(stack.post_events(batch))
    assert answer == {"received": 5, "applied": 0, "not_applied": 1, "ignored": 4}
    assert snapshot(stack, invitation_id) == before
    assert "sendgrid event of an unknown kind accepted" in caplog.text


def test_delivered_moves_forward_and_a_late_processed_does_not_move_it_back(stack):
    invitation_id = sent(stack, "DL-1", "delivered@example.com")
    accepted(stack.post_events([sendgrid_event(invitation_id, "delivered")]))
    assert stack.invitation(invitation_id).state.value == "delivered"
    accepted(stack.post_events([sendgrid_event(invitation_id, "processed"), sendgrid_event(invitation_id, "deferred")]))
    assert stack.invitation(invitation_id).state.value == "delivered"


def opportunities(stack: EmailStack) -> int:
    """The §6.1 opportunities of the email row this quarter, read through the reports API."""
    with unit_of_work(stack.rt.sessions) as session:
        key = create_api_key(session, f"reader-{uuid.uuid4().hex[:6]}", ("email-first",), ("reports",))
    # The quarter of the transactions' completed_at (five minutes ago, in the services' time zone).
    quarter = fiscal_quarter(datetime.now(UTC) - timedelta(minutes=5), ZoneInfo("UTC"))
    answer = stack.client.get(f"/api/v1/reports/a11?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}"
                              "&service=email-first", headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert answer.status_code == 200, answer.get_data(as_text=True)
    (row,) = [r for r in answer.get_json()["rows"] if r["channel"] == "email"]
    found: int = row["volume_of_customers_provided_survey_opportunity"]
    return found


def test_a_bounce_after_delivered_fails_the_invitation_and_takes_it_out_of_the_opportunities(stack):
    # An asynchronous bounce: the receiving server took the message ("delivered"), then bounced it. SPEC §6: "a
    # later bounce or undelivered report takes one out".
    kept = sent(stack, "AB-0", "kept@example.com")
    invitation_id = sent(stack, "AB-1", "async-bounce@example.com")
    accepted(stack.post_events([sendgrid_event(kept, "delivered"), sendgrid_event(invitation_id, "delivered")]))
    assert stack.invitation(invitation_id).state.value == "delivered"
    assert opportunities(stack) == 2
    bounce = sendgrid_event(invitation_id, "bounce", type="bounce", status="5.1.1", reason="550 5.1.1 mailbox gone")
    assert accepted(stack.post_events([bounce]))["applied"] == 1
    invitation = stack.invitation(invitation_id)
    assert invitation.state.value == "failed" and "550 5.1.1 mailbox gone" in (invitation.reason or "")
    assert [(s.channel, s.reason.value) for s in stack.suppressions()] == [("email", "bounce")]
    assert opportunities(stack) == 1
    # The other order (the bounce's event reaches us first): the late "delivered" is recorded, the state stays.
    other = sent(stack, "AB-2", "bounce-first@example.com")
    accepted(stack.post_events([sendgrid_event(other, "bounce", type="bounce", reason="550 no such user")]))
    accepted(stack.post_events([sendgrid_event(other, "delivered")]))
    assert stack.invitation(other).state.value == "failed"
    assert [e.event for e in stack.events(other)][-2:] == ["sendgrid:bounce", "sendgrid:delivered"]
    assert opportunities(stack) == 1


def test_a_blocked_bounce_fails_the_invitation_but_keeps_the_address(stack):
    invitation_id = sent(stack, "BL-1", "blocked@example.com")
    accepted(stack.post_events([sendgrid_event(invitation_id, "bounce", type="blocked",
                                               reason="IP address temporarily blocked")]))  # fmt: skip
    assert stack.invitation(invitation_id).state.value == "failed"
    assert stack.suppressions() == []
    assert stack.report("BL-2", "blocked@example.com")["decision"] == "scheduled"


@pytest.mark.parametrize(
    ("event", "fields", "reason", "state"),
    [
        ("spamreport", {}, "complaint", "sent"),
        ("unsubscribe", {}, "opted_out", "sent"),
        ("group_unsubscribe", {"asm_group_id": 1}, "opted_out", "sent"),
        ("dropped", {"reason": "Bounced Address"}, "bounce", "failed"),
        ("dropped", {"reason": "Unsubscribed Address"}, "opted_out", "failed"),
        ("dropped", {"reason": "Spam Reporting Address"}, "complaint", "failed"),
    ],
)
def test_events_that_suppress_the_address(stack, event, fields, reason, state):
    invitation_id = sent(stack, "SU-1", "suppress@example.com")
    accepted(stack.post_events([sendgrid_event(invitation_id, event, **fields)]))
    assert stack.invitation(invitation_id).state.value == state
    assert [(s.channel, s.reason.value) for s in stack.suppressions()] == [("email", reason)]
    expected = "opted_out" if reason == "opted_out" else "no_channel"  # SPEC §2 rule 5
    assert stack.report("SU-2", "suppress@example.com")["decision"] == expected


def test_events_settle_an_invitation_left_unknown_by_a_timeout(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url, timeout=0.5)
    invitation_id = stack.schedule("TU-1", "timeout@example.com")
    mail_stand_in.script.append("hang")
    stack.dispatch()
    assert stack.invitation(invitation_id).state.value == "unknown"
    accepted(stack.post_events([sendgrid_event(invitation_id, "processed")]))
    invitation = stack.invitation(invitation_id)
    assert invitation.state.value == "sent" and invitation.sent_at is not None
    accepted(stack.post_events([sendgrid_event(invitation_id, "delivered")]))
    assert stack.invitation(invitation_id).state.value == "delivered"
    assert len(mail_stand_in.mail_sends()) == 1  # settled by its events, never resent


def test_without_a_verification_key_every_batch_is_refused(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url, SENDGRID_WEBHOOK_PUBLIC_KEY="")
    invitation_id = sent(stack, "NK-1", "nokey@example.com")
    response = stack.post_events([sendgrid_event(invitation_id, "bounce")])
    assert response.status_code == 403 and "SENDGRID_WEBHOOK_PUBLIC_KEY" in response.get_json()["detail"]
    assert stack.invitation(invitation_id).state.value == "sent"


def test_a_signed_body_that_is_not_an_event_array_is_a_400(stack):
    for body in ("{not json", json.dumps({"event": "delivered"}), "[" * 5000 + "]" * 5000):  # the last: 5,000 deep
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                   "X-Twilio-Email-Event-Webhook-Signature": stack.signer.sign(body, stamp)}  # fmt: skip
        response = stack.client.post("/channels/email/events", data=body, headers=headers)
        assert response.status_code == 400 and response.mimetype == "application/problem+json"


def test_a_signed_batch_that_json_refuses_is_answered_as_every_json_endpoint_answers_it(stack):
    """Malformed JSON, JSON nested too deep and an object naming a key twice get the same 400 problem as from the
    API (``malformed-json``, ``too-deep``, ``duplicate-key`` naming the key and where), not one generic "not JSON"
    answer; still a 400, which SendGrid takes as refused (never a 5xx, which it would post again). Nothing changes."""
    invitation_id = sent(stack, "DK-1", "dupkey@example.com")
    before = snapshot(stack, invitation_id)
    event = json.dumps(sendgrid_event(invitation_id, "bounce", type="bounce"))
    duplicate = "[" + event.replace('"event": "bounce"', '"event": "delivered", "event": "bounce"') + "]"
    assert duplicate.count('"event": ') == 2
    bodies = {"malformed-json": "[{not json", "too-deep": "[" * 5000 + "]" * 5000, "duplicate-key": duplicate}
    for kind, body in bodies.items():
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                   "X-Twilio-Email-Event-Webhook-Signature": stack.signer.sign(body, stamp)}  # fmt: skip
        answer = stack.client.post("/channels/email/events", data=body, headers=headers)
        api = stack.client.post("/api/v1/transactions", data=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {stack.api_key}"})  # fmt: skip
        assert (api.status_code, api.get_json()["type"].rsplit("/", 1)[-1]) == (400, kind), api.get_json()
        assert answer.status_code == 400 and answer.mimetype == "application/problem+json", kind
        assert answer.get_json() == api.get_json(), kind
    assert "'event'" in answer.get_json()["detail"] and "(at [0].event)" in answer.get_json()["detail"]
    assert snapshot(stack, invitation_id) == before


def test_the_webhook_and_the_unsubscribe_routes_are_guarded(stack):
    marks = {rule.rule: getattr(stack.app.view_functions[rule.endpoint], "access", None)
             for rule in stack.app.url_map.iter_rules() if rule.endpoint.startswith("email.")}  # fmt: skip
    assert marks == {"/channels/email/events": "sendgrid signed event webhook",
                     "/u/<token>": "unsubscribe link token (128 random bits, stored hashed)"}  # fmt: skip


# -- media type and size, checked before the signature and before the body is read --------------------------------

SENDGRID_CONTENT_TYPE = "application/json;charset=utf-8"  # as a post captured from SendGrid carries it
BATCH_LIMIT = 2 * 1024 * 1024  # the route's MAX_BATCH_BYTES: over 2.5 times SendGrid's largest batch (768 KB)


def signed_headers(stack: EmailStack, payload: str, content_type: str = SENDGRID_CONTENT_TYPE) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"Content-Type": content_type, "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            "X-Twilio-Email-Event-Webhook-Signature": stack.signer.sign(payload, stamp)}  # fmt: skip


def post_metered(stack: EmailStack, payload: str, headers: dict[str, str], chunked: bool = False) -> tuple[Any, Any]:
    """POST ``payload`` as the WSGI server hands it over (``wsgi.input_terminated``, as gunicorn and waitress set
    it): with its ``Content-Length``, or chunked (no length); the answer, and how many bytes the app read."""
    body = MeteredBody(payload.encode())
    environ: dict[str, Any] = {"wsgi.input": body, "wsgi.input_terminated": True}
    if chunked:
        headers = {**headers, "Transfer-Encoding": "chunked"}
    else:
        environ["CONTENT_LENGTH"] = str(len(body.data))
    return stack.client.post("/channels/email/events", headers=headers, environ_overrides=environ), body


def padded(events: list[dict[str, Any]], size: int) -> str:
    """``events`` followed by events naming no invitation of ours (skipped), to at least ``size`` bytes of JSON."""
    filler = sendgrid_event("not-an-invitation", "deferred", response="421 try again later " + "x" * 980)
    count = size // len(json.dumps({**filler, "sg_event_id": "pad-0"})) + 1
    payload = json.dumps(events + [{**filler, "sg_event_id": f"pad-{n}"} for n in range(count)])
    assert len(payload) >= size
    return payload


def test_a_signed_batch_with_sendgrid_s_content_type_is_accepted_past_its_largest_batch_size(stack):
    """What SendGrid posts still goes through: ``application/json;charset=utf-8`` (the media type is compared
    without its parameters) and a batch past the 768 KB at which SendGrid sends one."""
    invitation_id = sent(stack, "SZ-1", "largest@example.com")
    payload = padded([sendgrid_event(invitation_id, "delivered")], 800 * 1024)
    answer = accepted(stack.client.post("/channels/email/events", data=payload, headers=signed_headers(stack, payload)))
    assert answer["applied"] == 1 and answer["received"] > 600
    assert stack.invitation(invitation_id).state.value == "delivered"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_batch_of_another_media_type_is_a_415_unread_and_unverified(stack, caplog, content_type):
    """Correctly signed, so only the media type refuses it: 415 before a byte is read (a form is not parsed by the
    before-request check either), no row changes, and neither the body nor its signature is logged."""
    invitation_id = sent(stack, "MT-1", "mediatype@example.com")
    events = json.dumps([sendgrid_event(invitation_id, "bounce", type="bounce", sg_event_id="marker-mt-1")])
    payload = events if content_type == "text/plain" else urlencode({"events": events})
    headers = signed_headers(stack, payload, content_type)
    before = counts(stack.rt)
    response, body = post_metered(stack, payload, headers)
    assert response.status_code == 415 and response.mimetype == "application/problem+json"
    assert "application/json" in response.get_json()["detail"]
    assert body.read_bytes == 0
    assert counts(stack.rt) == before and stack.invitation(invitation_id).state.value == "sent"
    signature = headers["X-Twilio-Email-Event-Webhook-Signature"]
    assert "marker-mt-1" not in caplog.text and signature not in caplog.text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_batch_over_the_limit_is_a_413_read_no_further_than_the_limit(stack, caplog, chunked):
    """Correctly signed JSON events, 2.5 MiB: 413 by its ``Content-Length`` before a byte is read; chunked, after
    reading one byte past the 2 MiB limit. No row changes, nothing of it is logged."""
    invitation_id = sent(stack, "OS-1", "oversize@example.com")
    bounce = sendgrid_event(invitation_id, "bounce", type="bounce", sg_event_id="marker-os-1")
    payload = padded([bounce], BATCH_LIMIT + BATCH_LIMIT // 4)
    headers = signed_headers(stack, payload)
    before = counts(stack.rt)
    response, body = post_metered(stack, payload, headers, chunked=chunked)
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == f"The body is larger than {BATCH_LIMIT} bytes; send smaller batches."
    assert body.read_bytes == (BATCH_LIMIT + 1 if chunked else 0)
    assert counts(stack.rt) == before and stack.invitation(invitation_id).state.value == "sent"
    signature = headers["X-Twilio-Email-Event-Webhook-Signature"]
    assert "marker-os-1" not in caplog.text and signature not in caplog.text


# -- under attack: a timestamp no float holds, a bounce text of 100,000 characters -----------------------------


@pytest.mark.parametrize("stamp", ["1" + "0" * 400, "-" + "9" * 400, "1" * 4000])
def test_a_timestamp_too_large_for_a_float_is_a_403_not_a_500(stack, stamp):
    """An integer of hundreds of digits parses, but subtracting it from the clock overflowed (a 500 to anyone,
    before the signature was looked at)."""
    invitation_id = stack.schedule("TS-1", "ts@example.com")
    before = counts(stack.rt)
    events = [sendgrid_event(invitation_id, "bounce", type="bounce")]
    payload = json.dumps(events)
    headers = {"Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
               "X-Twilio-Email-Event-Webhook-Signature": stack.signer.sign(payload, stamp)}  # fmt: skip
    response = stack.client.post("/channels/email/events", data=payload, headers=headers)
    assert response.status_code == 403, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert "5 minutes" in response.get_json()["detail"]
    assert counts(stack.rt) == before


def test_a_long_bounce_reason_is_applied_in_linear_time_with_its_address_masked(stack):
    """A bounce's reason and response are the receiving mail server's words (anyone's, for a survey sent to their
    domain). Masking addresses in them scanned a run of characters without an "@" once per starting position:
    100,000 such characters held the webhook (and its database transaction) for some 16 seconds, 2 MiB for hours."""

    invitation_id = stack.schedule("LONG-REASON-1", "long-reason@example.com")
    stack.dispatch()
    reason = "550 5.1.1 <long-reason@example.com> " + "x" * 100_000
    bounce = sendgrid_event(invitation_id, "bounce", type="bounce", reason=reason, response="y" * 100_000)
    started = time.monotonic()
    response = stack.post_events([bounce])
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["applied"] == 1
    assert elapsed < 10, f"{elapsed:.1f} s"  # a guard against quadratic time (~30 s before), not a target
    failed = stack.invitation(invitation_id)
    assert failed.state.value == "failed"
    assert failed.reason.startswith("sendgrid bounce; type: bounce; reason: 550 5.1.1 <[address]> xxx")
    assert "long-reason@" not in failed.reason
