"""The decision rules of SPEC §2, each a small pure function (no database, no clock of its own).

Intake and dispatch gather the facts (suppressions, recent invitations, counts) with a few set-based queries and
then ask these functions; the property tests in ``tests/test_rules_properties.py`` check them directly.
:func:`decide` is intake's whole decision chain for one transaction, in the order of SPEC §2 rule 6.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from engine.catalog.services import QuietHours, ServiceConfig
from engine.store.models.enums import ContactKind, Decision

# The channel of an end-of-engagement prompt (SPEC §4 'website'): its survey link is handed over in the intake
# result, never sent. The engine never imports a channel, so the name stands here.
PROMPT_CHANNEL = "website"

if TYPE_CHECKING:
    from engine.intake.validation import Candidate
    from engine.surveys.flows import Pra

FUTURE_TOLERANCE = timedelta(minutes=5)


def window_deadline(completed_at: datetime, service: ServiceConfig) -> datetime:
    """The last moment an invitation may be sent (A-11 280.7: within 48 hours)."""
    return completed_at + service.window


def window_passed(completed_at: datetime, service: ServiceConfig, now: datetime) -> bool:
    return now >= window_deadline(completed_at, service)


def in_future(completed_at: datetime, now: datetime) -> bool:
    """A ``completed_at`` more than five minutes ahead of our clock is invalid."""
    return completed_at > now + FUTURE_TOLERANCE


def sampling_point(service_slug: str, external_id: str, salt: str) -> float:
    """Where a transaction falls in [0, 1): a hash of (service, transaction id, salt), the same on every replay."""
    digest = hashlib.sha256(f"{service_slug}\x1f{external_id}\x1f{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def sampled_in(service_slug: str, external_id: str, salt: str, rate: float) -> bool:
    return sampling_point(service_slug, external_id, salt) < rate


def customer_zone(contact_zone: ZoneInfo | None, office_zone: ZoneInfo | None, service_zone: ZoneInfo) -> ZoneInfo:
    """Quiet hours are kept in the customer's time zone, else the office's, else the service's."""
    return contact_zone or office_zone or service_zone


def in_quiet_hours(moment: datetime, quiet: QuietHours, zone: ZoneInfo) -> bool:
    return quiet.contains(moment.astimezone(zone).time())


def next_allowed(moment: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    """The first moment at or after ``moment`` outside quiet hours in ``zone`` (a whole minute when moved).

    Usually that is the wall-clock end of quiet hours. When the zone's offset changes in between (a DST night),
    wall-clock arithmetic is not to be trusted: the minutes are then walked in UTC (up to two days: an allowed
    stretch shorter than the hour a spring-forward skips may only come the next day).
    """
    if not in_quiet_hours(moment, quiet, zone):
        return moment
    local = moment.astimezone(zone)
    end_day: date = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        end_day += timedelta(days=1)
    candidate = datetime.combine(end_day, quiet.end, tzinfo=zone).astimezone(UTC)
    if candidate.astimezone(zone).utcoffset() == local.utcoffset() and candidate > moment:
        return candidate.astimezone(moment.tzinfo)
    minute = timedelta(minutes=1)
    step = moment.astimezone(UTC).replace(second=0, microsecond=0)
    if step < moment:
        step += minute
    for _ in range(50 * 60):
        if not in_quiet_hours(step, quiet, zone):
            return step.astimezone(moment.tzinfo)
        step += minute
    raise ValueError(f"quiet hours {quiet} leave no allowed minute in a day")


def planned_send_time(
    completed_at: datetime,
    now: datetime,
    service: ServiceConfig,
    zone: ZoneInfo,
    respects_quiet_hours: bool,
) -> datetime | None:
    """When to send: the send delay after completion (not before now), out of quiet hours; None if past the window."""
    moment = max(now, completed_at + service.send_delay)
    if respects_quiet_hours:
        moment = next_allowed(moment, service.quiet_hours, zone)
    return moment if moment <= window_deadline(completed_at, service) else None


def retry_delay(attempts: int, base_seconds: float = 30.0, ceiling_seconds: float = 3600.0) -> timedelta:
    """Exponential backoff after a failure that surely sent nothing: 30 s, 60 s, 2 min, … at most an hour."""
    return timedelta(seconds=min(ceiling_seconds, base_seconds * 2 ** min(32, max(0, attempts - 1))))


@dataclass(frozen=True)
class ChannelOption:
    """What channel choice needs to know of one channel (from the registry)."""

    name: str
    contact_kinds: tuple[ContactKind, ...]
    consent: str | None
    suppressed_by: tuple[str, ...] | None

    @property
    def blocking(self) -> set[str]:
        """The suppression channels that stop this one: its own name and those it names."""
        return {self.name, *(self.suppressed_by or ())}


@dataclass(frozen=True)
class ChannelChoice:
    channel: str | None
    contact_kind: ContactKind | None = None
    contact_hash: str | None = None
    # Why the first preferred channel was not taken: "opted_out", "no_contact", "no_consent".
    skipped_for_opt_out: bool = False

    @property
    def found(self) -> bool:
        return self.channel is not None


def choose_channel(
    preferences: Sequence[ChannelOption],
    contact_hashes: Mapping[ContactKind, str],
    consents: Mapping[str, bool],
    suppressed: Mapping[str, set[str]],
    opted_out: Mapping[str, set[str]] | None = None,
) -> ChannelChoice:
    """The first preferred channel the transaction can use (SPEC §2 rule 5).

    ``suppressed`` maps a contact hash to the channels it is suppressed on; ``opted_out`` to those among them
    where the reason is an opt-out (a bounce or a carrier block makes ``no_channel``, not ``opted_out``). Without
    ``opted_out`` every suppression counts as an opt-out.
    """
    skipped_for_opt_out = False
    for option in preferences:
        if option.consent is not None and not consents.get(option.consent, False):
            continue
        for kind in option.contact_kinds:
            contact_hash = contact_hashes.get(kind)
            if contact_hash is None:
                continue
            blocked_on = suppressed.get(contact_hash, set())
            blocking = blocked_on if option.suppressed_by is None else blocked_on & option.blocking
            if blocking:
                opt_outs = blocking if opted_out is None else blocking & opted_out.get(contact_hash, set())
                skipped_for_opt_out = skipped_for_opt_out or bool(opt_outs)
                continue
            return ChannelChoice(option.name, kind, contact_hash, skipped_for_opt_out)
    return ChannelChoice(None, skipped_for_opt_out=skipped_for_opt_out)


def in_cooldown(recent_send_times: Sequence[datetime], now: datetime, cooldown_days: int) -> bool:
    """Whether an invitation to the same contact was scheduled or sent within the cooldown (SPEC §2 rule 3)."""
    if cooldown_days <= 0:
        return False
    since = now - timedelta(days=cooldown_days)
    return any(moment >= since for moment in recent_send_times)


def cap_day(send_at: datetime, service: ServiceConfig) -> date:
    """The calendar day, in the service's time zone, that a scheduled invitation counts against."""
    return send_at.astimezone(service.timezone).date()


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start, end


# -- the decision of one transaction (SPEC §2 rule 6) --------------------------------------------------------------


class Facts(Protocol):
    """What the decision of a new transaction needs to know beyond the transaction: gathered for a whole batch by
    :mod:`engine.intake.facts` (set-based queries), kept up to date as the batch's invitations are planned."""

    @property
    def suppressed(self) -> Mapping[str, set[str]]: ...  # contact hash → channels it is suppressed on
    @property
    def opted_out(self) -> Mapping[str, set[str]]: ...  # … those among them where the reason is an opt-out
    @property
    def recent(self) -> Mapping[str, Sequence[datetime]]: ...  # contact hash → when it was last asked (cooldown)

    def channel_options(self, service: ServiceConfig) -> Sequence[ChannelOption]: ...
    def sampling_salt(self, service: ServiceConfig) -> str: ...
    def pra_of(self, service: ServiceConfig) -> Pra: ...
    def respects_quiet_hours(self, channel: str) -> bool: ...
    def invitations_on(self, service: ServiceConfig, day: date) -> int: ...


@dataclass(frozen=True)
class Outcome:
    """A transaction's decision; when ``scheduled``, its invitation's times (``send_at`` None: quiet hours leave
    no moment inside the window, and the invitation is stored expired)."""

    decision: Decision
    choice: ChannelChoice
    reason: str | None = None
    send_at: datetime | None = None
    deadline: datetime | None = None
    cap_day: date | None = None


def decide(c: Candidate, hashes: Mapping[ContactKind, str], facts: Facts, now: datetime) -> Outcome:
    """The decision of one new transaction, in the order of SPEC §2 rule 6: window, PRA approval, sampling,
    channel (suppressions, consent, contact), cooldown, daily cap; else scheduled out of quiet hours."""
    service = c.service
    consents = {"sms": c.consent_sms, "voice": c.consent_voice}
    choice = choose_channel(facts.channel_options(service), hashes, consents, facts.suppressed, facts.opted_out)
    if c.prompt:  # an end-of-engagement prompt: the link is shown at once by the agency's application
        choice = ChannelChoice(PROMPT_CHANNEL, None, next(iter(hashes.values()), None))
    if window_passed(c.completed_at, service, now):
        return Outcome(Decision.WINDOW_PASSED, choice)
    if (pra := facts.pra_of(service)).lapsed_at(now, service.timezone):
        return Outcome(Decision.PRA_EXPIRED, choice, f"{pra.omb_control_number} approval expired {pra.expiration_date}")
    if not sampled_in(service.slug, c.external_id, facts.sampling_salt(service), service.sample_rate):
        return Outcome(Decision.SAMPLED_OUT, choice)
    if choice.channel is None:
        return Outcome(Decision.OPTED_OUT if choice.skipped_for_opt_out else Decision.NO_CHANNEL, choice)
    if any(in_cooldown(facts.recent.get(h, ()), now, service.contact_cooldown_days) for h in hashes.values()):
        return Outcome(Decision.COOLDOWN, choice)
    zone = customer_zone(c.timezone, c.office.timezone if c.office else None, service.timezone)
    send_at = (
        now
        if c.prompt
        else planned_send_time(c.completed_at, now, service, zone, facts.respects_quiet_hours(choice.channel))
    )
    day = cap_day(send_at or now, service)
    if service.daily_cap is not None and facts.invitations_on(service, day) >= service.daily_cap:
        return Outcome(Decision.CAP_REACHED, choice)
    reason = None if send_at else "quiet_hours_past_window"
    return Outcome(Decision.SCHEDULED, choice, reason, send_at, window_deadline(c.completed_at, service), day)
