"""Intake's decision chain (``engine.intake.rules.decide``): the order of SPEC §2 rule 6, on one screen, pure.

The facts are plain data here (the ``Facts`` protocol the store module fills for a batch): each test makes one
more rule apply and checks that the earlier rule still wins, then that the chain ends in a scheduled invitation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.catalog.services import QuietHours, ServiceConfig
from engine.intake import rules
from engine.intake.validation import Candidate
from engine.store.models import ContactKind, Decision
from engine.surveys.flows import Pra

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 11:00 in New York: outside quiet hours
SERVICE = ServiceConfig(
    slug="svc", name="Service", agency="Agency", service_type="regulatory", flow="a11-standard",
    channels=("email",), timezone=ZoneInfo("America/New_York"), send_delay=timedelta(minutes=15),
    window=timedelta(hours=48), quiet_hours=QuietHours(time(21, 0), time(8, 0)), sample_rate=1.0,
    contact_cooldown_days=30, daily_cap=2,
)  # fmt: skip
EMAIL = rules.ChannelOption("email", (ContactKind.EMAIL,), None, None)
HASH = "hash-of-the-email"


@dataclass
class Facts:
    suppressed: dict[str, set[str]] = field(default_factory=dict)
    opted_out: dict[str, set[str]] = field(default_factory=dict)
    recent: dict[str, list[datetime]] = field(default_factory=dict)
    expires: date = date(2028, 6, 30)
    counted: int = 0

    def channel_options(self, service: ServiceConfig) -> list[rules.ChannelOption]:
        return [EMAIL]

    def sampling_salt(self, service: ServiceConfig) -> str:
        return "salt"

    def pra_of(self, service: ServiceConfig) -> Pra:
        return Pra("1090-0011", self.expires, "About 2 minutes.")

    def respects_quiet_hours(self, channel: str) -> bool:
        return True

    def invitations_on(self, service: ServiceConfig, day: date) -> int:
        return self.counted


def candidate(ago: timedelta = timedelta(hours=1), service: ServiceConfig = SERVICE) -> Candidate:
    return Candidate(external_id="T-1", service=service, completed_at=NOW - ago, email="a@example.com")


def decide(facts: Facts, c: Candidate | None = None, hashes: dict[ContactKind, str] | None = None) -> rules.Outcome:
    return rules.decide(c or candidate(), {ContactKind.EMAIL: HASH} if hashes is None else hashes, facts, NOW)


def test_a_transaction_that_passes_every_rule_is_scheduled_after_the_delay():
    outcome = decide(Facts())
    assert outcome.decision is Decision.SCHEDULED and outcome.reason is None
    assert outcome.choice.channel == "email" and outcome.choice.contact_hash == HASH
    assert outcome.send_at == NOW  # completed an hour ago: the 15-minute delay has passed
    assert outcome.deadline == NOW + timedelta(hours=47) and outcome.cap_day == date(2026, 3, 10)


def test_each_rule_in_the_order_of_rule_6():
    everything = Facts(
        suppressed={HASH: {"email"}}, opted_out={HASH: {"email"}}, recent={HASH: [NOW - timedelta(days=1)]},
        expires=date(2026, 1, 31), counted=2,
    )  # fmt: skip
    assert decide(everything, candidate(ago=timedelta(hours=49))).decision is Decision.WINDOW_PASSED
    expired = decide(everything)
    assert expired.decision is Decision.PRA_EXPIRED and expired.reason == "1090-0011 approval expired 2026-01-31"
    sampled_out = replace(SERVICE, sample_rate=0.0)
    assert decide(everything, candidate(service=sampled_out)).decision is Decision.PRA_EXPIRED
    valid = replace(everything, expires=date(2028, 6, 30))
    assert decide(valid, candidate(service=sampled_out)).decision is Decision.SAMPLED_OUT
    assert decide(valid).decision is Decision.OPTED_OUT
    assert decide(replace(valid, opted_out={})).decision is Decision.NO_CHANNEL  # a bounce, not an opt-out
    assert decide(valid, hashes={}).decision is Decision.NO_CHANNEL
    assert decide(replace(valid, suppressed={}, opted_out={})).decision is Decision.COOLDOWN
    assert decide(replace(valid, suppressed={}, opted_out={}, recent={})).decision is Decision.CAP_REACHED
    assert decide(replace(valid, suppressed={}, opted_out={}, recent={}, counted=1)).decision is Decision.SCHEDULED


def test_no_moment_left_in_the_window_schedules_an_expired_invitation():
    # A 10-minute window and a 15-minute send delay: the window closes before the invitation may go.
    short = replace(SERVICE, window=timedelta(minutes=10))
    outcome = decide(Facts(), candidate(ago=timedelta(minutes=1), service=short))
    assert outcome.decision is Decision.SCHEDULED and outcome.send_at is None
    assert outcome.reason == "quiet_hours_past_window"
