"""The A-11 figures of SMS conversations, through the real stack: transactions reported through the API, the first
text sent through the real Twilio SDK (to the error stub), replies and status callbacks posted to the signed
webhooks, and the §6.1 file read from the report API.

A customer who replied to the survey text was given the opportunity (the reply proves the text arrived), so a
delivery report that comes later and says "undelivered" (carriers send them late and wrong) does not take the
opportunity back: respondents are always among the opportunities (SPEC §6).
"""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from engine.api.auth import create_api_key
from engine.reporting.fiscal import fiscal_quarter
from engine.store.db import unit_of_work, utcnow
from engine.store.models import DeliveryEvent, InvitationState
from tests import sms_support
from tests.sms_support import SmsStack, created
from tests.twilio_support import TwilioErrorStub

# The fixtures these tests take (pytest finds them by name in the module).
sms_config_dir = sms_support.sms_config_dir
sms_stack = sms_support.sms_stack
shared_twilio_stub = sms_support.shared_twilio_stub

PHONE = "+12025550123"
OTHER_PHONE = "+12025550188"


@pytest.fixture
def twilio_stub(shared_twilio_stub: TwilioErrorStub) -> TwilioErrorStub:
    shared_twilio_stub.script.clear()
    shared_twilio_stub.requests.clear()
    return shared_twilio_stub


@pytest.fixture
def stack(sms_stack: Any, twilio_stub: TwilioErrorStub) -> SmsStack:
    built: SmsStack = sms_stack(twilio_stub.base_url)
    return built


def send(stack: SmsStack, stub: TwilioErrorStub, external_id: str, phone: str) -> tuple[uuid.UUID, str]:
    """Report a transaction through the API and let dispatch text it; (invitation id, Twilio's sid)."""
    sid = f"SM{uuid.uuid4().hex}"
    stub.script.append(created(sid, phone))
    invitation_id = stack.schedule(external_id, phone)
    assert stack.dispatch().outcomes == {"sent": 1}
    return invitation_id, sid


def sms_row(stack: SmsStack) -> dict[str, str]:
    """The SMS row of the current quarter's §6.1 file of ``sms-first`` (a UTC service), from the report API."""
    with unit_of_work(stack.rt.sessions) as session:
        key = create_api_key(session, f"rpt-{uuid.uuid4().hex[:6]}", ["sms-first"], ["reports"])
    quarter = fiscal_quarter(utcnow(), stack.rt.catalog.services["sms-first"].timezone)
    query = f"fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}&service=sms-first&format=csv"
    answer = stack.client.get(f"/api/v1/reports/a11?{query}", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    (row,) = [r for r in csv.DictReader(io.StringIO(answer.get_data(as_text=True)))
              if r["channel"] == "sms_text_messages"]  # fmt: skip
    return row


def test_a_customer_who_replied_keeps_the_opportunity_after_a_late_undelivered_report(
    stack: SmsStack, twilio_stub: TwilioErrorStub
) -> None:
    # Answered the first question, then stopped; the carrier then reports the invitation text undelivered.
    replied, replied_sid = send(stack, twilio_stub, "R-1", PHONE)
    assert stack.reply(PHONE, "4", sid=f"SM{uuid.uuid4().hex}") is not None
    assert stack.status(replied_sid, "undelivered", "30003").status_code == 200
    # Never replied, and reported undelivered: no opportunity.
    _, silent_sid = send(stack, twilio_stub, "R-2", OTHER_PHONE)
    assert stack.status(silent_sid, "undelivered", "30003").status_code == 200

    row = sms_row(stack)
    assert (
        row["volume_of_customers"],
        row["volume_of_customers_provided_survey_opportunity"],
        row["volume_of_respondents"],
        row["response_rate"],
    ) == ("2", "1", "1", "1.0000")
    assert (row["satisfaction_4"], row["satisfaction_n"], row["satisfaction_mean"]) == ("1", "1", "4.00")
    # The reply marked the text delivered; the later report changed nothing.
    assert stack.invitation(replied).state is InvitationState.DELIVERED


def test_a_reply_to_a_link_text_already_delivered_keeps_the_opportunity_after_a_later_failure_report(
    stack: SmsStack, twilio_stub: TwilioErrorStub
) -> None:
    """``sms_mode: link``: the text was reported delivered, the customer texted back (the page asks the questions,
    so no survey begins), and then the carrier reports a failure. The reply showed the text arrived: it is
    recorded once, whatever the invitation's state, and the failure report takes nothing back."""
    sid = f"SM{uuid.uuid4().hex}"
    twilio_stub.script.append(created(sid, PHONE))
    invitation = stack.schedule("L-1", PHONE, service="sms-link")
    assert stack.dispatch().outcomes == {"sent": 1}
    assert stack.status(sid, "delivered").status_code == 200
    for _ in range(2):
        assert stack.reply(PHONE, "thanks, will do", sid=f"SM{uuid.uuid4().hex}") is not None
    assert stack.status(sid, "undelivered", "30003").status_code == 200
    assert stack.invitation(invitation).state is InvitationState.DELIVERED
    with stack.rt.sessions() as session:
        events = session.execute(select(DeliveryEvent.event).where(DeliveryEvent.invitation_id == invitation)).all()
    assert [e for (e,) in events if e == "reply_received"] == ["reply_received"]
