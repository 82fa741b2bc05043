"""Provider webhooks holding text no database keeps (SPEC §2 rule 11, issue 15 item 2), on SQLite and
PostgreSQL: a NUL in a signed Twilio form field is a 422 naming the field and changes nothing (a form body is
UTF-8: it cannot carry an unpaired surrogate); a SendGrid event (JSON) holding either is skipped and the rest of its batch applied. Never a 500 (a provider
retries a 500 for days)."""

from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import func, select

from engine.store.models import DeliveryEvent, EarlyReport, Suppression, WebhookReceipt
from tests import email_support, ivr_support, sms_support
from tests.email_support import sendgrid_event
from tests.ivr_support import CLOSED_PORT_URL
from tests.twilio_support import ACCOUNT_SID, FROM_NUMBER, signed_post

sms_config_dir = sms_support.sms_config_dir
sms_stack = sms_support.sms_stack
ivr = ivr_support.ivr_stack
email_config_dir = email_support.email_config_dir
email_stack = email_support.email_stack
mail_stand_in = email_support.mail_stand_in
webhook_signer = email_support.webhook_signer
_shared_mail_stand_in = email_support._shared_mail_stand_in


def _count(rt, model) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_sms_webhooks_refuse_unstorable_text_naming_the_field(sms_stack):
    stack = sms_stack(CLOSED_PORT_URL)
    cases = [
        ("/channels/sms/inbound", {"Body": "5\x00"}, "Body"),
        ("/channels/sms/inbound", {"MessageSid": "SM\x00x"}, "MessageSid"),
        ("/channels/sms/status", {"MessageSid": "SM\x00x", "MessageStatus": "delivered"}, "MessageSid"),
        ("/channels/sms/status", {"MessageStatus": "delivered\x00"}, "MessageStatus"),
    ]
    for path, change, field in cases:
        form = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": ACCOUNT_SID, "From": "+12025550123",
                "To": FROM_NUMBER, "Body": "5", "NumMedia": "0", "MessageStatus": "sent", **change}  # fmt: skip
        reply = signed_post(stack.client, path, form)
        assert reply.status_code == 422, (path, change, reply.status_code)
        assert reply.mimetype == "application/problem+json"
        assert [e["field"] for e in reply.get_json()["errors"]] == [field]
    assert _count(stack.rt, WebhookReceipt) == 0 and _count(stack.rt, EarlyReport) == 0


def test_an_ivr_status_callback_with_unstorable_text_is_refused(ivr):
    form = {"AccountSid": ACCOUNT_SID, "CallSid": f"CA{uuid.uuid4().hex}", "CallStatus": "completed",
            "AnsweredBy": "human\x00"}  # fmt: skip
    reply = signed_post(ivr.client, "/channels/ivr/status", form)
    assert reply.status_code == 422 and reply.get_json()["errors"][0]["field"] == "AnsweredBy"
    assert _count(ivr.rt, EarlyReport) == 0 and _count(ivr.rt, DeliveryEvent) == 0


def test_a_sendgrid_event_with_unstorable_text_is_skipped_the_rest_applied(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    invitation_id = stack.schedule("UNSTORABLE-1", "someone@example.com")
    stack.dispatch()
    poisoned = sendgrid_event(invitation_id, "delivered", sg_event_id="id\x00x")
    noisy = sendgrid_event(invitation_id, "deferred", reason="try \ud800 later")  # its detail is dropped, not stored
    good = sendgrid_event(invitation_id, "delivered")
    reply = stack.post_events([poisoned, noisy, good])
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json()["ignored"] == 1
    assert stack.invitation(invitation_id).state.value == "delivered"


def test_a_sendgrid_event_holding_a_non_finite_number_is_skipped_the_rest_applied(email_stack, mail_stand_in):
    """NaN, Infinity and 1e309 (parsed as infinity) are not JSON SendGrid sends (RFC 8259 has no such numbers): the
    event holding one is skipped, as one holding unstorable text is; nothing non-finite reaches the store."""
    stack = email_stack(mail_stand_in.base_url)
    invitation_id = stack.schedule("NONFINITE-1", "someone@example.com")
    stack.dispatch()
    events = [
        sendgrid_event(invitation_id, "deferred", attempt="HUGE"),
        sendgrid_event(invitation_id, "deferred", attempt=float("nan")),
        sendgrid_event(invitation_id, "bounce", type="bounce", tls=float("-inf")),
        sendgrid_event(invitation_id, "delivered", nested={"n": [1, 2.5]}),
    ]
    payload = json.dumps(events).replace('"HUGE"', "1e309")  # json.dumps writes NaN and -Infinity as such
    assert "1e309" in payload and "NaN" in payload and "-Infinity" in payload
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
               "X-Twilio-Email-Event-Webhook-Signature": stack.signer.sign(payload, stamp)}  # fmt: skip
    reply = stack.client.post("/channels/email/events", data=payload, headers=headers)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json() == {"received": 4, "applied": 1, "not_applied": 0, "ignored": 3}
    assert stack.invitation(invitation_id).state.value == "delivered"  # the bounce holding -Infinity was skipped
    with stack.rt.sessions() as session:
        details = [d or "" for d in session.execute(select(DeliveryEvent.detail)).scalars()]
    assert not [d for d in details if "inf" in d or "nan" in d], details
    assert _count(stack.rt, Suppression) == 0 and _count(stack.rt, EarlyReport) == 0
