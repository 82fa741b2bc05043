"""The SMS channel against Twilio's published contract (Prism) and Twilio's error replies (the error stub).

Dispatch hands a scheduled invitation to ``SmsChannel``; the real ``twilio`` SDK posts a Message create to Prism,
which refuses any request that breaks the contract. The stub answers what the contract does not describe: a 429,
a 500, a 400 with Twilio error code 21610, a request that hangs.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import requests
from sqlalchemy import select

from engine.store.models import DeliveryEvent, InvitationState
from tests import sms_support, twilio_support
from tests.sms_support import SmsStack, created, sendable_now
from tests.twilio_support import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, TwilioErrorStub, twilio_error

# The fixtures these tests take (pytest finds them by name in the module).
sms_config_dir = sms_support.sms_config_dir
sms_stack = sms_support.sms_stack
twilio_prism = twilio_support.twilio_prism
twilio_stub = twilio_support.twilio_stub

PHONE = "+12025550123"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def _form(stub: TwilioErrorStub, index: int = 0) -> dict[str, str]:
    method, path, body = stub.requests[index]
    assert method == "POST" and path == MESSAGES_PATH
    return {k: v[0] for k, v in parse_qs(body).items()}


def _events(stack: SmsStack, invitation_id) -> list[str]:
    with stack.rt.sessions() as session:
        return list(session.execute(select(DeliveryEvent.event).where(DeliveryEvent.invitation_id == invitation_id)
                                    .order_by(DeliveryEvent.id)).scalars())  # fmt: skip


def test_conversational_invitation_is_sent_through_the_contract(sms_stack, twilio_prism):
    stack = sms_stack(twilio_prism)
    inv_id = stack.schedule("C-1", PHONE)
    stats = stack.dispatch()
    assert stats.handed == 1 and stats.outcomes == {"sent": 1}, stats
    invitation = stack.invitation(inv_id)
    assert invitation.state is InvitationState.SENT
    assert invitation.provider_id and invitation.provider_id.startswith("SM")  # Prism's sid, from the contract
    assert _events(stack, inv_id) == ["sending", "sent"]


def test_link_mode_invitation_is_sent_through_the_contract(sms_stack, twilio_prism):
    stack = sms_stack(twilio_prism)
    inv_id = stack.schedule("C-2", PHONE, service="sms-link")
    assert stack.dispatch().outcomes == {"sent": 1}
    assert stack.invitation(inv_id).state is InvitationState.SENT


def test_prism_refuses_a_request_that_breaks_the_contract(twilio_prism):
    """Prism is strict: what passes above passed a real check."""
    url = twilio_prism + MESSAGES_PATH
    without_to = requests.post(
        url, data={"From": FROM_NUMBER, "Body": "hi"}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=10
    )
    assert 400 <= without_to.status_code < 500, without_to.text
    unsigned = requests.post(url, data={"To": PHONE, "From": FROM_NUMBER, "Body": "hi"}, timeout=10)
    assert unsigned.status_code == 401


def test_first_text_says_who_why_how_long_omb_and_stop_then_asks_the_first_question(sms_stack, twilio_stub):
    stack = sms_stack(twilio_stub.base_url)
    twilio_stub.script.append(created("SMfirst0000000000000000000000000001"))
    inv_id = stack.schedule("C-3", PHONE)
    stack.dispatch()
    form = _form(twilio_stub)
    assert form["To"] == PHONE and form["From"] == FROM_NUMBER
    assert form["StatusCallback"] == "https://surveys.example.gov/channels/sms/status"
    body = form["Body"]
    assert body.startswith("Department of State asks how your Passport Renewal went, to help improve it. ")
    assert "Voluntary, about 2 minutes." in body and "OMB 1090-0011" in body and "Reply STOP to opt out." in body
    assert body.endswith(
        "I am satisfied with the service I received from Passport Renewal. "
        "Reply 1 (strongly disagree) to 5 (strongly agree)."
    )
    assert "/s/" not in body  # conversational: no link
    invitation = stack.invitation(inv_id)
    assert invitation.state is InvitationState.SENT and invitation.provider_id == "SMfirst0000000000000000000000000001"


def test_a_messaging_service_sends_instead_of_a_from_number(sms_stack, twilio_stub):
    stack = sms_stack(twilio_stub.base_url, TWILIO_MESSAGING_SERVICE_SID="MG" + "0" * 32)
    twilio_stub.script.append(created())
    stack.schedule("C-11", PHONE)
    assert stack.dispatch().outcomes == {"sent": 1}
    form = _form(twilio_stub)
    assert form["MessagingServiceSid"] == "MG" + "0" * 32 and "From" not in form


def test_link_mode_sends_one_text_with_the_survey_link(sms_stack, twilio_stub):
    stack = sms_stack(twilio_stub.base_url)
    twilio_stub.script.append(created())
    stack.schedule("C-4", PHONE, service="sms-link")
    stack.dispatch()
    body = _form(twilio_stub)["Body"]
    assert "OMB 1090-0011" in body and "Reply STOP to opt out." in body
    assert "https://surveys.example.gov/s/" in body
    assert "Reply 1 (strongly disagree)" not in body  # no question: the page asks them


def test_spanish_first_text_is_the_translated_flow_wording(sms_stack, twilio_stub):
    stack = sms_stack(twilio_stub.base_url)
    twilio_stub.script.append(created())
    stack.schedule("C-5", PHONE, service="sms-drivers", language="es")
    stack.dispatch()
    body = _form(twilio_stub)["Body"]
    assert "quiere saber cómo le fue con" in body and "aproximadamente 1 minuto." in body
    assert "OMB 1090-0012" in body and "ALTO" in body
    assert "Esta interacción aumentó mi confianza en" in body and "Responda SÍ" in body


@pytest.mark.parametrize("reply", [twilio_error(429, 20429, "Too Many Requests"), (500, {"code": 20500})])
def test_429_and_5xx_go_back_to_the_queue_with_backoff(sms_stack, twilio_stub, reply):
    stack = sms_stack(twilio_stub.base_url)
    inv_id = stack.schedule("C-6", PHONE)
    twilio_stub.script.extend([reply, created("SMretried000000000000000000000000001")])
    now = sendable_now()
    assert stack.dispatch(now).outcomes == {"retry": 1}
    invitation = stack.invitation(inv_id)
    assert invitation.state is InvitationState.SCHEDULED and invitation.send_at > now
    assert invitation.attempts == 1 and invitation.provider_id is None
    assert stack.dispatch(now).claimed == 0  # the backoff holds
    assert len(twilio_stub.requests) == 1
    # Nothing is lost: at the next attempt it goes out once.
    assert stack.dispatch(invitation.send_at + timedelta(seconds=1)).outcomes == {"sent": 1}
    invitation = stack.invitation(inv_id)
    assert invitation.state is InvitationState.SENT and invitation.attempts == 2
    assert invitation.provider_id == "SMretried000000000000000000000000001"
    assert len(twilio_stub.requests) == 2


def test_21610_fails_and_suppresses_the_phone_for_texts(sms_stack, twilio_stub):
    stack = sms_stack(twilio_stub.base_url)
    inv_id = stack.schedule("C-7", PHONE)
    twilio_stub.script.append(twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"))
    assert stack.dispatch().outcomes == {"failed": 1}
    invitation = stack.invitation(inv_id)
    assert invitation.state is InvitationState.FAILED and "21610" in (invitation.reason or "")
    rows = stack.suppressions()
    assert ("sms", "opted_out") in {(r.channel, r.reason.value) for r in rows}
    # Never retried, and the next transaction for that phone is decided opted_out.
    stack.dispatch(sendable_now() + timedelta(hours=1))
    assert len(twilio_stub.requests) == 1
    assert stack.report("C-7b", PHONE)["decision"] == "opted_out"


def test_21610_also_suppresses_outbound_calls(sms_stack, twilio_stub):
    stack = sms_stack(twilio_stub.base_url)
    stack.schedule("C-8", PHONE)
    twilio_stub.script.append(twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"))
    stack.dispatch()
    assert {r.channel for r in stack.suppressions()} == {"sms", "ivr"}


def test_a_request_that_hangs_is_unknown_and_never_resent(sms_stack, twilio_stub):
    stack = sms_stack(twilio_stub.base_url, timeout=1.0)
    inv_id = stack.schedule("C-9", PHONE)
    twilio_stub.script.append("hang")
    assert stack.dispatch().outcomes == {"unknown": 1}
    invitation = stack.invitation(inv_id)
    assert invitation.state is InvitationState.UNKNOWN and "timed out" in (invitation.reason or "")
    stack.dispatch(sendable_now() + timedelta(hours=1))
    assert len(twilio_stub.requests) == 1


def test_without_twilio_settings_nothing_crashes_and_the_invitation_fails(sms_stack):
    stack = sms_stack(None)
    inv_id = stack.schedule("C-10", PHONE)
    assert stack.dispatch().outcomes == {"failed": 1}
    invitation = stack.invitation(inv_id)
    assert invitation.state is InvitationState.FAILED and invitation.reason == "twilio not configured"
