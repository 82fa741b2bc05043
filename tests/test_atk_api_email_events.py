"""SendGrid's event webhook under attack (SPEC §2 rule 11, §4): whatever arrives, a 4xx that changes nothing.

Through the real app and database on SQLite and PostgreSQL, with batches signed as SendGrid signs them.
"""

from __future__ import annotations

import json

import pytest

from tests import email_support
from tests.email_support import EmailStack, sendgrid_event
from tests.helpers import counts

email_config_dir = email_support.email_config_dir
email_stack = email_support.email_stack
mail_stand_in = email_support.mail_stand_in
webhook_signer = email_support.webhook_signer
_shared_mail_stand_in = email_support._shared_mail_stand_in


@pytest.fixture
def stack(email_stack, mail_stand_in) -> EmailStack:
    built: EmailStack = email_stack(mail_stand_in.base_url)
    return built


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
    import time

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
