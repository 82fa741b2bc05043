"""The one reminder (``reminder_after``): unanswered, inside the answer window, never twice, never after an opt-out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine.delivery.reminders import send_reminders
from engine.store.db import unit_of_work
from engine.store.models import DeliveryEvent, Invitation
from engine.surveys.sessions import Given, SurveySessions
from tests import email_support

# The fixtures these tests take (pytest finds them by name in the module).
email_config_dir = email_support.email_config_dir
email_stack = email_support.email_stack
mail_stand_in = email_support.mail_stand_in
webhook_signer = email_support.webhook_signer
_shared_mail_stand_in = email_support._shared_mail_stand_in


def _sent(stack, external_id, email):
    invitation_id = stack.schedule(external_id, email, service="email-reminded")
    stack.dispatch()
    with stack.rt.sessions() as session:
        inv = session.get(Invitation, invitation_id)
    assert inv.sent_at is not None
    return inv


def test_one_reminder_after_the_delay_and_never_twice(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    inv = _sent(stack, "REM-1", "rem1@example.com")
    sent_requests = len(mail_stand_in.requests)
    assert send_reminders(stack.rt, inv.sent_at + timedelta(hours=23)) == 0
    assert send_reminders(stack.rt, inv.sent_at + timedelta(hours=24, minutes=1)) == 1
    assert len(mail_stand_in.requests) == sent_requests + 1
    reminder = mail_stand_in.requests[-1].json()
    assert "Reminder" in reminder["subject"] or "Reminder" in str(reminder["personalizations"][0].get("subject", ""))
    assert send_reminders(stack.rt, inv.sent_at + timedelta(hours=30)) == 0
    with stack.rt.sessions() as session:
        events = session.execute(select(DeliveryEvent.event).where(DeliveryEvent.invitation_id == inv.id)).scalars()
        assert "reminder_sent" in set(events)


def test_no_reminder_after_an_opt_out_a_started_response_or_the_window(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    opted = _sent(stack, "REM-2", "rem2@example.com")
    started = _sent(stack, "REM-3", "rem3@example.com")
    late = _sent(stack, "REM-4", "rem4@example.com")
    response = stack.client.post("/api/v1/opt-outs", json={"email": "rem2@example.com"},
                                 headers={"Authorization": f"Bearer {stack.api_key}"})  # fmt: skip
    assert response.status_code == 201
    sessions = SurveySessions(stack.rt)
    with unit_of_work(stack.rt.sessions) as session:
        invitation = session.get(Invitation, started.id)
        answer = sessions.start_for_invitation(session, invitation, "en")
        sessions.record(session, answer, sessions.flow_of(answer).question("trust"), Given(value=4))
    requests_before = len(mail_stand_in.requests)
    assert send_reminders(stack.rt, late.expires_at + timedelta(minutes=1)) == 0  # the answer window has closed
    assert send_reminders(stack.rt, opted.sent_at + timedelta(hours=25)) == 1  # only REM-4 is still due
    assert len(mail_stand_in.requests) == requests_before + 1
    assert {p["to"][0]["email"] for p in mail_stand_in.requests[-1].json()["personalizations"]} == {"rem4@example.com"}
