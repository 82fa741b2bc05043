"""Dispatch through the real store: claims, the re-check at send, outcomes, retries, recovery and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from engine.channels import Outcome
from engine.delivery.dispatch import Dispatcher, expire_overdue, reap_lost_sends
from engine.delivery.retention import erase_unneeded_contacts
from engine.store.models import Contact, DeliveryEvent, Invitation, InvitationState, Suppression
from tests.helpers import post, tx

LATER = timedelta(minutes=20)


def _invitation(runtime, invitation_id):
    with runtime.sessions() as session:
        return session.get(Invitation, invitation_id)


def _schedule(client, auth, external_id, **fields):
    result = post(client, tx(external_id, **fields), auth).get_json()
    assert result["decision"] == "scheduled", result
    import uuid

    return uuid.UUID(result["invitation"]["id"])


def _daytime_now():
    """A moment when it is daytime in New York (quiet hours 21:00-08:00 do not apply)."""
    now = datetime.now(UTC)
    local_hour = now.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).hour
    if 8 <= local_hour < 20:
        return now
    return now + timedelta(hours=(13 - local_hour) % 24)


def test_console_channel_prints_masked_recipient_and_marks_delivered(client, auth, runtime, capsys):
    inv_id = _schedule(client, auth, "D-1", contact={"email": "pat.doe@example.com"})
    dispatcher = Dispatcher(runtime)
    assert dispatcher.run_once().claimed == 0  # the send delay has not passed
    stats = dispatcher.run_once(datetime.now(UTC) + LATER)
    assert stats.claimed == 1 and stats.handed == 1
    out = capsys.readouterr().out
    assert str(inv_id) in out and "p•••@example.com" in out
    assert "pat.doe@example.com" not in out
    assert "Department of State" in out and "1090-0011" in out  # the flow's wording, filled in
    inv = _invitation(runtime, inv_id)
    assert inv.state is InvitationState.DELIVERED and inv.attempts == 1 and inv.sent_at is not None
    assert inv.expires_at == inv.sent_at + timedelta(hours=48)
    with runtime.sessions() as session:
        events = session.execute(select(DeliveryEvent.event).where(DeliveryEvent.invitation_id == inv_id)
                                 .order_by(DeliveryEvent.id)).scalars().all()  # fmt: skip
    assert events == ["sending", "delivered"]
    # Nothing is handed over twice.
    assert dispatcher.run_once(datetime.now(UTC) + LATER).claimed == 0


def test_recheck_at_send_cancels_an_invitation_whose_contact_opted_out(client, auth, runtime, stub_channel):
    inv_id = _schedule(client, auth, "D-2", service="texting", contact={"phone": "+12025550181"}, consent={"sms": True})
    response = client.post("/api/v1/opt-outs", json={"phone": "+12025550181", "channel": "sms"}, headers=auth)
    assert response.status_code == 201
    Dispatcher(runtime).drain(_daytime_now())
    inv = _invitation(runtime, inv_id)
    assert inv.state is InvitationState.CANCELLED and inv.reason == "opted_out"
    assert stub_channel.handed == []


def test_recheck_at_send_cancels_inside_quiet_hours(client, auth, runtime, stub_channel):
    inv_id = _schedule(client, auth, "D-3", service="texting", contact={"phone": "+12025550182"}, consent={"sms": True})
    inv = _invitation(runtime, inv_id)
    night = datetime.combine(inv.send_at.astimezone(runtime.catalog.services["texting"].timezone).date()
                             + timedelta(days=1), datetime.min.time().replace(hour=23),
                             tzinfo=runtime.catalog.services["texting"].timezone)  # fmt: skip
    night = min(night, inv.send_by - timedelta(minutes=1))
    Dispatcher(runtime).drain(night)
    inv = _invitation(runtime, inv_id)
    if inv.state is InvitationState.CANCELLED:
        assert inv.reason == "quiet_hours"
        assert stub_channel.handed == []
    else:  # the window closed before that night: then it was not quiet when sent
        assert inv.state is InvitationState.SENT


def test_transient_failure_is_retried_with_backoff_then_sent(client, auth, runtime, stub_channel):
    inv_id = _schedule(client, auth, "D-4", service="texting", contact={"phone": "+12025550183"}, consent={"sms": True})
    stub_channel.script.extend([Outcome.RETRY])
    now = _daytime_now()
    Dispatcher(runtime).drain(now)
    inv = _invitation(runtime, inv_id)
    assert inv.state is InvitationState.SCHEDULED and inv.attempts == 1
    assert inv.send_at >= now + timedelta(seconds=30) and inv.claimed_by is None
    assert Dispatcher(runtime).run_once(now + timedelta(seconds=5)).claimed == 0  # backoff respected
    Dispatcher(runtime).drain(inv.send_at)
    inv = _invitation(runtime, inv_id)
    assert inv.state is InvitationState.SENT and inv.attempts == 2
    assert len(stub_channel.handed) == 2


def test_retries_never_go_past_the_window(client, auth, runtime, stub_channel):
    inv_id = _schedule(client, auth, "D-5", service="texting", contact={"phone": "+12025550184"}, consent={"sms": True})
    inv = _invitation(runtime, inv_id)
    stub_channel.script.extend([Outcome.RETRY])
    Dispatcher(runtime).drain(inv.send_by - timedelta(seconds=10))
    inv = _invitation(runtime, inv_id)
    assert inv.state in (InvitationState.EXPIRED, InvitationState.CANCELLED)
    if inv.state is InvitationState.EXPIRED:
        assert inv.reason.startswith("retries_exhausted")


def test_permanent_failure_fails_and_suppresses(client, auth, runtime, stub_channel):
    inv_id = _schedule(client, auth, "D-6", service="texting", contact={"phone": "+12025550185"}, consent={"sms": True})
    stub_channel.script.extend([Outcome.FAILED])
    Dispatcher(runtime).drain(_daytime_now())
    inv = _invitation(runtime, inv_id)
    assert inv.state is InvitationState.FAILED
    with runtime.sessions() as session:
        row = session.execute(select(Suppression)).scalar_one()
    assert row.channel == "quiet-stub" and row.reason.value == "carrier_block"
    again = post(client, tx("D-6b", service="texting", contact={"phone": "+12025550185"}, consent={"sms": True}),
                 auth).get_json()  # fmt: skip
    # The stand-in is suppressed for that phone and the console channel is stopped by any suppression; a carrier
    # block is not an opt-out, so no channel is left: no_channel (SPEC §2 rule 5).
    assert again["decision"] == "no_channel" and again["channel"] is None


def test_unknown_outcome_is_never_resent(client, auth, runtime, stub_channel):
    inv_id = _schedule(client, auth, "D-7", service="texting", contact={"phone": "+12025550186"}, consent={"sms": True})
    stub_channel.raise_next = True
    now = _daytime_now()
    Dispatcher(runtime).drain(now)
    inv = _invitation(runtime, inv_id)
    assert inv.state is InvitationState.UNKNOWN
    Dispatcher(runtime).drain(now + timedelta(hours=1))
    assert len(stub_channel.handed) == 1


def test_a_claim_whose_lease_ran_out_before_sending_returns_to_the_queue(client, auth, runtime, stub_channel):
    inv_id = _schedule(client, auth, "D-8", service="texting", contact={"phone": "+12025550187"}, consent={"sms": True})
    now = _daytime_now()
    first = Dispatcher(runtime, worker="first", lease=timedelta(seconds=30))
    assert first.claim(now) == [inv_id]
    # The first worker stalls; its lease runs out; a second worker claims and sends.
    second = Dispatcher(runtime, worker="second", lease=timedelta(seconds=30))
    later = now + timedelta(seconds=31)
    assert second.claim(later) == [inv_id]
    from engine.delivery.dispatch import DispatchStats

    assert first.prepare([inv_id], now + timedelta(seconds=32), DispatchStats()) == []  # no longer its claim
    ready = second.prepare([inv_id], later, DispatchStats())
    second.send(ready, DispatchStats())
    assert _invitation(runtime, inv_id).state is InvitationState.SENT
    assert len(stub_channel.handed) == 1


def test_a_send_caught_in_sending_becomes_unknown(client, auth, runtime, stub_channel):
    inv_id = _schedule(client, auth, "D-9", service="texting", contact={"phone": "+12025550188"}, consent={"sms": True})
    now = _daytime_now()
    dispatcher = Dispatcher(runtime, lease=timedelta(seconds=30))
    from engine.delivery.dispatch import DispatchStats

    ready = dispatcher.prepare(dispatcher.claim(now), now, DispatchStats())
    assert len(ready) == 1
    assert _invitation(runtime, inv_id).state is InvitationState.SENDING  # committed before any provider call
    # The worker dies here. Before the lease runs out nothing happens; after, the row is unknown, never resent.
    assert reap_lost_sends(runtime, now + timedelta(seconds=10)) == 0
    assert reap_lost_sends(runtime, now + timedelta(seconds=61)) == 1
    inv = _invitation(runtime, inv_id)
    assert inv.state is InvitationState.UNKNOWN and inv.reason == "worker_lost_during_send"
    Dispatcher(runtime).drain(now + timedelta(minutes=5))
    assert stub_channel.handed == []


def test_overdue_invitations_expire_and_retention_erases_contact_data(client, auth, runtime):
    inv_id = _schedule(client, auth, "D-10", contact={"email": "keep@example.com", "phone": "+12025550189"})
    inv = _invitation(runtime, inv_id)
    assert erase_unneeded_contacts(runtime) == 0  # still needed
    assert expire_overdue(runtime, inv.send_by + timedelta(seconds=1)) == 1
    inv = _invitation(runtime, inv_id)
    assert inv.state is InvitationState.EXPIRED and inv.reason == "window_passed"
    assert erase_unneeded_contacts(runtime) == 1
    with runtime.sessions() as session:
        contact = session.execute(select(Contact)).scalar_one()
    assert contact.email_encrypted is None and contact.phone_encrypted is None and contact.erased_at is not None
    assert contact.email_hash == runtime.cipher.lookup_hash("email", "keep@example.com")
    # The hashes keep opt-outs working after erasure.
    client.post("/api/v1/opt-outs", json={"email": "keep@example.com"}, headers=auth)
    assert post(client, tx("D-11", contact={"email": "keep@example.com"}), auth).get_json()["decision"] == "opted_out"


def test_delivered_invitation_keeps_contact_until_it_can_no_longer_be_answered(client, auth, runtime):
    inv_id = _schedule(client, auth, "D-12", contact={"email": "answer@example.com"})
    now = datetime.now(UTC) + LATER
    Dispatcher(runtime).drain(now)
    inv = _invitation(runtime, inv_id)
    assert inv.state is InvitationState.DELIVERED
    assert erase_unneeded_contacts(runtime, now) == 0
    assert erase_unneeded_contacts(runtime, inv.expires_at + timedelta(seconds=1)) == 1


def test_sampled_out_transactions_keep_no_clear_contact_data(client, auth, runtime):
    results = post(client, {"transactions": [tx(f"E-{n}", service="half-sampled", contact={"email": f"e{n}@example.com"})
                                             for n in range(30)]}, auth).get_json()["results"]  # fmt: skip
    out = sum(r["decision"] == "sampled_out" for r in results)
    assert out > 0
    with runtime.sessions() as session:
        contacts = session.execute(select(Contact)).scalars().all()
    assert sum(c.email_encrypted is None for c in contacts) == out
