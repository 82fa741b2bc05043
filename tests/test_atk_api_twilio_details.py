"""Signed Twilio reports whose words do not fit an invitation's ``reason`` (200 characters), on SQLite and PostgreSQL.

A status callback that fails an invitation stores its detail (``twilio undelivered code …``, ``call busy, answered
by …, error …``) as the invitation's reason. Twilio's error codes are five digits and its ``AnsweredBy`` a short
word, but nothing bounded them: a 300-digit ``ErrorCode`` or a long ``AnsweredBy`` was a 500 on PostgreSQL (value
too long for character varying(200)), the failure lost, and SQLite kept a reason longer than its column (SPEC §2
rule 11: whatever a provider sends, never a 500). The report is applied, its detail cut to the column.
"""

from __future__ import annotations

import uuid
from typing import Any

from engine.delivery.dispatch import Dispatcher
from engine.store.models import InvitationState
from tests import ivr_support, sms_support
from tests.helpers import ago
from tests.sms_support import created
from tests.twilio_support import signed_post, twilio_prism

sms_config_dir = sms_support.sms_config_dir
sms_stack = sms_support.sms_stack
shared_twilio_stub = sms_support.shared_twilio_stub
ivr_prism = ivr_support.ivr_prism_stack
twilio_prism = twilio_prism

CALLER = "+12025550177"


def test_an_sms_failure_with_an_overlong_error_code_fails_the_invitation(sms_stack, shared_twilio_stub):
    shared_twilio_stub.script.clear()
    stack = sms_stack(shared_twilio_stub.base_url)
    sid = f"SM{uuid.uuid4().hex}"
    shared_twilio_stub.script.append(created(sid))
    invitation_id = stack.schedule("LONG-CODE-1", "+12025550123")
    stack.dispatch()
    assert stack.invitation(invitation_id).provider_id == sid
    reply = stack.status(sid, "undelivered", error_code="3" * 300)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    failed = stack.invitation(invitation_id)
    assert failed.state is InvitationState.FAILED
    assert failed.reason is not None and failed.reason.startswith("twilio undelivered code 333")
    assert len(failed.reason) <= 200


def _dispatch_a_call(stack: Any, external_id: str) -> Any:
    reported = stack.report({"id": external_id, "service": "ivr-outbound", "completed_at": ago(minutes=5),
                             "contact": {"phone": CALLER}, "consent": {"voice": True}})  # fmt: skip
    assert reported["decision"] == "scheduled" and reported["invitation"]["channel"] == "ivr"
    # Outside quiet hours in the service's zone (America/New_York): 18:00 UTC is daytime there all year.
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    now = now.replace(hour=18) if now.hour < 18 else now
    assert Dispatcher(stack.rt).drain(now).handed == 1
    return stack.invitation(reported["invitation"]["id"])


def test_an_ivr_status_callback_with_an_overlong_answered_by_fails_the_invitation(ivr_prism):
    invitation = _dispatch_a_call(ivr_prism, "LONG-BUSY-1")
    status = {"CallSid": invitation.provider_id, "CallStatus": "busy", "AnsweredBy": "unknown" + "x" * 300,
              "ErrorCode": "4" * 50}  # fmt: skip
    reply = signed_post(ivr_prism.client, "/channels/ivr/status", status)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    failed = ivr_prism.invitation(invitation.id)
    assert failed.state is InvitationState.FAILED
    assert failed.reason is not None and failed.reason.startswith("call busy, answered by unknownxxx")
    assert len(failed.reason) <= 200


def test_an_outbound_call_answered_by_a_machine_with_an_overlong_word_is_still_recorded(ivr_prism):
    invitation = _dispatch_a_call(ivr_prism, "LONG-MACHINE-1")
    call = ivr_prism.call(sid=invitation.provider_id, called=CALLER, direction="outbound-api",
                          AnsweredBy="machine_end_other" + "y" * 300)  # fmt: skip
    call.dial(f"/channels/ivr/voice?invitation={invitation.id}")
    assert call.engine_hung_up and call.heard == []  # hung up on the machine, not an apology to it
    machine = ivr_prism.invitation(invitation.id)
    assert machine.state is InvitationState.FAILED
    assert machine.reason is not None and machine.reason.startswith("answered by machine_end_other")
    assert len(machine.reason) <= 200
