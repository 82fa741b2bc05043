"""Paced sending (SPEC §2 rules 1, 4, 10 and §7 ``send_rate``): the rate held by several dispatchers through the
real store, slots checked against the window and quiet hours, unsent claims released, ``drain`` waiting."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine.channels import Outgoing, SendResult, load_channels
from engine.common.errors import ConfigError
from engine.delivery.dispatch import Dispatcher
from engine.delivery.pacing import DEFAULT_SENDER, rate_of, sender_of
from engine.settings import load_settings
from engine.store.db import unit_of_work, utcnow
from engine.store.models import Invitation, InvitationState, SendPacing
from tests.helpers import post, tx
from tests.stand_ins import ScriptedChannel

NEW_YORK = ZoneInfo("America/New_York")
STUB = "quiet-stub"


class TimedChannel(ScriptedChannel):
    """The scripted texting stand-in, noting the wall-clock moment each invitation was handed to it."""

    def __init__(self, settings: object = None) -> None:
        super().__init__(settings)
        self.moments: list[float] = []
        self.lock = threading.Lock()

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        with self.lock:
            self.moments.extend(time.monotonic() for _ in batch)
            return super().send(batch)


@pytest.fixture
def stub_channel() -> TimedChannel:
    return TimedChannel()


def paced(runtime, rate: float):
    """``runtime`` with the stand-in channel paced at ``rate`` a second (as SURVEY_ENGINE_SEND_RATE_QUIET_STUB)."""
    runtime.settings = replace(runtime.settings, send_rates={**runtime.settings.send_rates, STUB: rate})
    return runtime


def _daytime(after: datetime) -> datetime:
    """The first 13:00 in New York after ``after`` (no quiet hours then)."""
    local = after.astimezone(NEW_YORK)
    noon = local.replace(hour=13, minute=0, second=0, microsecond=0)
    return (noon if noon > local else noon + timedelta(days=1)).astimezone(UTC)


def _schedule(client, auth, external_id: str, phone: str, completed_at: datetime | None = None) -> uuid.UUID:
    fields = {"contact": {"phone": phone}, "consent": {"sms": True}}
    if completed_at is not None:
        fields["completed_at"] = completed_at.isoformat()
    answer = post(client, tx(external_id, service="texting", **fields), auth).get_json()
    assert answer["decision"] == "scheduled", answer
    return uuid.UUID(answer["invitation"]["id"])


def _invitation(runtime, invitation_id: uuid.UUID) -> Invitation:
    with runtime.sessions() as session:
        found = session.get(Invitation, invitation_id)
        assert found is not None
        return found


def _sender_busy_until(runtime, moment: datetime) -> None:
    """Another worker has taken this sender's slots up to ``moment`` (the row every dispatcher locks)."""
    with unit_of_work(runtime.sessions) as session:
        session.merge(SendPacing(channel=STUB, sender=DEFAULT_SENDER, next_free_at=moment, updated_at=utcnow()))


PACED_BY_DEFAULT = {"sms": 1.0, "ivr": 1.0, "email": 100.0, "console": None, "kiosk": None}


def test_send_rates_come_from_the_environment_over_each_channels_default(tmp_path):
    base = {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance")}
    plain = load_settings(base)
    assert plain.send_rates == {}
    channels = load_channels(plain)
    # Each channel states its default (a long code's text a second, Twilio's call a second, 100 emails a second);
    # the console and the kiosk are never paced.
    assert {name: rate_of(channels.get(name), plain) for name in PACED_BY_DEFAULT} == PACED_BY_DEFAULT
    rates = load_settings({**base, "SURVEY_ENGINE_SEND_RATE_SMS": "3", "SURVEY_ENGINE_SEND_RATE_QUIET_STUB": "2.5"})
    assert rates.send_rates == {"sms": 3.0, "quiet-stub": 2.5}
    assert rate_of(channels.get("sms"), rates) == 3.0 and rate_of(channels.get("ivr"), rates) == 1.0
    assert rate_of(ScriptedChannel(), plain) is None and rate_of(ScriptedChannel(), rates) == 2.5
    for bad in ("0", "-1", "fast", "inf", "nan"):
        with pytest.raises(ConfigError, match="SURVEY_ENGINE_SEND_RATE_SMS"):
            load_settings({**base, "SURVEY_ENGINE_SEND_RATE_SMS": bad})


def test_the_sender_is_the_messaging_service_else_the_number_else_the_from_address(tmp_path):
    base = {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance")}
    both = load_settings({**base, "TWILIO_MESSAGING_SERVICE_SID": "MG123", "TWILIO_FROM_NUMBER": "+12025550100"})
    number = load_settings({**base, "TWILIO_FROM_NUMBER": "+12025550100"})
    mail = load_settings({**base, "SENDGRID_FROM_EMAIL": "surveys@agency.gov"})
    channels = load_channels(both)
    sms, ivr, email = channels.get("sms"), channels.get("ivr"), channels.get("email")
    assert sender_of(sms, both) == "MG123"
    assert sender_of(sms, number) == "+12025550100"
    assert sender_of(ivr, both) == "+12025550100"  # calls leave from the number
    assert sender_of(email, mail) == "surveys@agency.gov"
    assert sender_of(sms, mail) == sender_of(email, both) == sender_of(ScriptedChannel(), both) == DEFAULT_SENDER


def test_several_dispatchers_together_never_exceed_the_rate(client, auth, runtime, stub_channel):
    rate, total = 20.0, 60
    paced(runtime, rate)
    ids = {_schedule(client, auth, f"P-{i}", f"+1202555{i:04d}") for i in range(total)}
    at = _daytime(utcnow())  # pinned for the rules; slots are on the wall clock
    deadline = time.monotonic() + 60
    errors: list[BaseException] = []

    def work(dispatcher: Dispatcher) -> None:
        try:
            while len(stub_channel.handed) < total and time.monotonic() < deadline:
                dispatcher.drain(at)
                time.sleep(0.02)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # Small claims, so that every worker holds some of the queue and takes slots from the shared row.
    workers = [threading.Thread(target=work, args=(Dispatcher(runtime, batch=8),)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors
    handed = [item.invitation_id for item in stub_channel.handed]
    assert sorted(handed) == sorted(ids)  # every one sent, none twice
    moments = sorted(stub_channel.moments)
    # Generous bounds (a correctness test, not a benchmark; unpaced, all 60 go within a fraction of a second): in
    # any one-second window, at most rate × 1 s, plus the two handed over in one call (rate × 0.1 s) and slack for
    # a thread that meets its slot a little late on a busy machine.
    busiest = max(sum(1 for m in moments[i:] if m < start + 1.0) for i, start in enumerate(moments))
    assert busiest <= rate + 2 + 3, (busiest, moments)
    assert moments[-1] - moments[0] >= 2.0  # 60 at 20/s: about 3 s
    with runtime.sessions() as session:
        states = session.execute(select(Invitation.state).where(Invitation.id.in_(ids))).scalars().all()
    assert set(states) == {InvitationState.SENT}


def test_a_slot_past_the_window_is_not_used_the_invitation_expires(client, auth, runtime, stub_channel):
    paced(runtime, 10.0)
    send_by = _daytime(utcnow() + timedelta(hours=1))
    late = _schedule(client, auth, "W-1", "+12025550901", completed_at=send_by - timedelta(hours=48))
    on_time = _schedule(client, auth, "W-2", "+12025550902")
    assert _invitation(runtime, late).send_by == send_by
    _sender_busy_until(runtime, utcnow() + timedelta(milliseconds=500))  # the next slot is half a second away
    stats = Dispatcher(runtime).run_once(send_by - timedelta(milliseconds=200))
    assert stats.claimed == 2 and stats.handed == 1 and stats.released == 0
    assert [item.invitation_id for item in stub_channel.handed] == [on_time]
    expired = _invitation(runtime, late)
    assert expired.state is InvitationState.EXPIRED and expired.reason == "window_passed"
    assert expired.attempts == 0 and expired.sent_at is None


def test_a_slot_in_quiet_hours_is_not_used(client, auth, runtime, stub_channel):
    paced(runtime, 10.0)
    nine_pm = (_daytime(utcnow() + timedelta(hours=1)).astimezone(NEW_YORK).replace(hour=21)).astimezone(UTC)
    inv = _schedule(client, auth, "Q-1", "+12025550903", completed_at=nine_pm - timedelta(hours=40))
    _sender_busy_until(runtime, utcnow() + timedelta(milliseconds=500))
    stats = Dispatcher(runtime).run_once(nine_pm - timedelta(milliseconds=200))  # 20:59:59.8, the slot at 21:00:00.3
    assert stats.claimed == 1 and stats.handed == 0
    assert stub_channel.handed == []
    cancelled = _invitation(runtime, inv)
    assert cancelled.state is InvitationState.CANCELLED and cancelled.reason == "quiet_hours"


def test_a_claim_without_a_slot_goes_back_to_the_queue_unsent(client, auth, runtime, stub_channel):
    paced(runtime, 1.0)
    inv = _schedule(client, auth, "R-1", "+12025550904")
    _sender_busy_until(runtime, utcnow() + timedelta(seconds=30))
    stats = Dispatcher(runtime).run_once(_daytime(utcnow()))
    assert stats.claimed == 1 and stats.released == 1 and stats.handed == 0
    assert stats.wait == pytest.approx(29, abs=1)
    released = _invitation(runtime, inv)
    assert released.state is InvitationState.SCHEDULED and released.claimed_by is None
    assert released.lease_until is None and released.attempts == 0
    assert stub_channel.handed == []


def test_drain_waits_for_the_next_slot_instead_of_spinning(client, auth, runtime, stub_channel):
    paced(runtime, 1.0)
    inv = _schedule(client, auth, "S-1", "+12025550905")
    _sender_busy_until(runtime, utcnow() + timedelta(milliseconds=1600))
    started = time.monotonic()
    # Five rounds are enough only if drain sleeps until a slot opens; spinning would spend them in milliseconds.
    stats = Dispatcher(runtime).drain(_daytime(utcnow()), max_rounds=5)
    assert stats.handed == 1 and [item.invitation_id for item in stub_channel.handed] == [inv]
    assert time.monotonic() - started >= 1.5
