"""Property tests of the decision rules of SPEC §2 (``engine.intake.rules``): pure functions, no database.

Sampling (rule 2), quiet hours and the 48-hour window (rules 1 and 4), channel choice (rule 5), the contact cooldown
(rule 3), the retry backoff (rule 10), and that a replay never changes a decision (rules 2 and 10) — the last one
also through the HTTP API on both databases.

Quiet hours are checked against a brute-force reference: every minute from the moment on, is it allowed? (Quiet
hours start and end on whole minutes and every zone here is a whole number of minutes from UTC, so "allowed" only
changes on a whole UTC minute.) Configurations near a DST change (quiet hours starting or ending in the hour a
change skips or repeats) are drawn on purpose, and the examples at the end pin the ones that once broke it.
"""

from __future__ import annotations

import copy
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from engine.catalog.services import QuietHours, ServiceConfig
from engine.intake import rules
from engine.store.models.enums import ContactKind
from tests.helpers import post

ZONES = [
    "America/New_York",
    "Pacific/Honolulu",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Europe/London",
    "America/St_Johns",
    "UTC",
]
MINUTE = timedelta(minutes=1)
BASE = datetime(2025, 6, 1, tzinfo=UTC)
NY = ZoneInfo("America/New_York")
USUAL_QUIET = QuietHours(time(21, 0), time(8, 0))


# -- helpers ----------------------------------------------------------------------------------------------------


@cache
def transitions(zone_name: str) -> tuple[datetime, ...]:
    """The UTC instants (to the minute) in 2025-2027 at which ``zone_name`` changes its UTC offset."""
    zone = ZoneInfo(zone_name)
    found = []
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    while moment < datetime(2028, 1, 1, tzinfo=UTC):
        moment += timedelta(hours=1)
        now_offset = moment.astimezone(zone).utcoffset()
        if now_offset != offset:
            change = moment - timedelta(hours=1)
            while change.astimezone(zone).utcoffset() == offset:
                change += MINUTE
            found.append(change)
            offset = now_offset
    return tuple(found)


def test_the_zone_list_has_the_dst_changes_the_properties_rely_on():
    # 2026-03-08 and 2026-11-01 in New York, half-hour shifts on Lord Howe, none in Kathmandu or Honolulu.
    ny = {t.astimezone(NY).date() for t in transitions("America/New_York")}
    assert {date(2026, 3, 8), date(2026, 11, 1)} <= ny
    assert datetime(2026, 3, 8, 7, 0, tzinfo=UTC) in transitions("America/New_York")
    assert datetime(2026, 10, 3, 15, 30, tzinfo=UTC) in transitions("Australia/Lord_Howe")  # 02:00 LHST
    spring, autumn = datetime(2026, 3, 8, 7, 0, tzinfo=UTC), datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    assert changed_wall_clock(spring, NY) == (datetime(2026, 3, 8, 2, 0), datetime(2026, 3, 8, 3, 0))
    assert changed_wall_clock(autumn, NY) == (datetime(2026, 11, 1, 1, 0), datetime(2026, 11, 1, 2, 0))
    assert transitions("Asia/Kathmandu") == transitions("Pacific/Honolulu") == transitions("UTC") == ()


def quiet_at(moment: datetime, quiet: QuietHours, zone: ZoneInfo) -> bool:
    """The reference: the wall-clock time of the real instant (``moment`` is never in ``zone`` itself here)."""
    return quiet.contains(moment.astimezone(zone).time())


def ceil_minute(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + MINUTE


def first_allowed(moment: datetime, quiet: QuietHours, zone: ZoneInfo, until: datetime) -> datetime | None:
    """The first instant at or after ``moment`` (and not after ``until``) outside quiet hours, found minute by minute."""
    if not quiet_at(moment, quiet, zone):
        return moment if moment <= until else None
    candidate = ceil_minute(moment)
    while candidate <= until:
        if not quiet_at(candidate, quiet, zone):
            return candidate
        candidate += MINUTE
    return None


def changed_wall_clock(change: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local wall-clock stretch a change of offset skips (spring forward) or repeats (fall back)."""
    before = (change - MINUTE).astimezone(zone).replace(tzinfo=None) + MINUTE  # 02:00 in New York, both ways
    after = change.astimezone(zone).replace(tzinfo=None)  # 03:00 EDT in spring, 01:00 EST in autumn
    low, high = sorted((before, after))
    return low, high


def make_service(
    window: timedelta = timedelta(hours=48),
    send_delay: timedelta = timedelta(0),
    quiet: QuietHours = USUAL_QUIET,
    zone: str = "America/New_York",
) -> ServiceConfig:
    return ServiceConfig(
        slug="svc",
        name="Service",
        agency="Agency",
        service_type="regulatory",
        flow="a11-standard",
        channels=("console",),
        timezone=ZoneInfo(zone),
        send_delay=send_delay,
        window=window,
        quiet_hours=quiet,
    )


# -- strategies -------------------------------------------------------------------------------------------------

# Any minute of the day, and often one of the small hours when clocks change (00:00-03:59).
clock_times = st.builds(time, st.one_of(st.integers(0, 23), st.integers(0, 3)), st.integers(0, 59))
quiet_hours = st.one_of(
    st.sampled_from(
        [
            QuietHours(time(21, 0), time(8, 0)),
            QuietHours(time(22, 0), time(7, 0)),
            QuietHours(time(1, 0), time(5, 0)),
            QuietHours(time(0, 0), time(0, 0)),
            QuietHours(time(0, 1), time(0, 0)),
        ]
    ),
    st.builds(QuietHours, clock_times, clock_times),
)
# Fixed offsets as integrators send them (``-05:00``), and UTC: the engine never hands the rules a ZoneInfo moment.
offsets = st.one_of(st.just(UTC), st.integers(-12 * 4, 14 * 4).map(lambda q: timezone(timedelta(minutes=15 * q))))


@st.composite
def zone_and_moment(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A zone and a moment: often within three days of one of the zone's DST changes, otherwise any time in 2025-27."""
    name = draw(st.sampled_from(ZONES))
    changes = transitions(name)
    if changes and draw(st.booleans()):
        anchor = draw(st.sampled_from(changes))
        # Anywhere in the three days around the change, often in the night before it, or the hours just before.
        seconds = st.one_of(
            st.integers(-72 * 3600, 72 * 3600), st.integers(-30 * 3600, 2 * 3600), st.integers(-6 * 3600, 0)
        )
        moment = anchor + timedelta(seconds=draw(seconds))
    else:
        moment = BASE + timedelta(seconds=draw(st.integers(0, 2 * 365 * 86400)))
    # Whole seconds mostly, sometimes microseconds: the engine's clock has them.
    moment += timedelta(microseconds=draw(st.sampled_from([0, 0, 0, 1, 999_999])))
    return ZoneInfo(name), moment.astimezone(draw(offsets))


@st.composite
def send_scenarios(draw: st.DrawFn) -> tuple[datetime, datetime, ServiceConfig, ZoneInfo, bool]:
    zone, now = draw(zone_and_moment())
    # Often the usual case, a full 48 h window and a transaction that just completed, so the window is still open.
    window = timedelta(minutes=draw(st.one_of(st.just(48 * 60), st.integers(1, 48 * 60))))
    send_delay = timedelta(seconds=draw(st.integers(0, int(window.total_seconds()) - 1)))
    age = draw(st.one_of(st.integers(-300, 3600), st.integers(-300, 48 * 3600)))
    completed_at = (now - timedelta(seconds=age)).astimezone(draw(offsets))
    service = make_service(window=window, send_delay=send_delay, quiet=draw(quiet_hours))
    return completed_at, now, service, zone, draw(st.booleans())


# -- sampling (SPEC §2 rule 2) ----------------------------------------------------------------------------------

SAMPLE_IDS = [f"T-{n}" for n in range(100_000)]


# derandomize: a 3-sigma bound fails by chance 0.3 % of the time; a fixed seed keeps the suite deterministic
# while the examples (salt, rate, service) are still chosen by Hypothesis.
@settings(max_examples=5, deadline=None, derandomize=True)
@given(
    service=st.sampled_from(["passport-renewal", "benefits-contact-center", "s"]),
    salt=st.text(min_size=1, max_size=40),
    rate=st.floats(min_value=0.01, max_value=1.0, exclude_min=True),
)
@example(service="passport-renewal", salt="salt", rate=0.1)
@example(service="passport-renewal", salt="salt", rate=1.0)
def test_the_realised_sample_share_is_within_three_sigma_of_the_rate(service, salt, rate):
    n = len(SAMPLE_IDS)
    sampled = sum(rules.sampled_in(service, external_id, salt, rate) for external_id in SAMPLE_IDS)
    sigma = math.sqrt(n * rate * (1 - rate))
    assert abs(sampled - n * rate) <= 3 * sigma, (sampled, n * rate, sigma)


@given(service=st.text(min_size=1), external_id=st.text(min_size=1), salt=st.text(), rate=st.floats(0.0, 1.0))
def test_sampling_is_a_pure_function_of_service_id_and_salt(service, external_id, salt, rate):
    point = rules.sampling_point(service, external_id, salt)
    assert 0.0 <= point < 1.0
    assert rules.sampling_point(service, external_id, salt) == point
    assert rules.sampled_in(service, external_id, salt, rate) == rules.sampled_in(service, external_id, salt, rate)
    assert rules.sampled_in(service, external_id, salt, rate) == (point < rate)


@given(external_id=st.text(min_size=1), salt=st.text(), low=st.floats(0.0, 1.0), high=st.floats(0.0, 1.0))
def test_raising_the_rate_only_adds_transactions(external_id, salt, low, high):
    low, high = sorted((low, high))
    if rules.sampled_in("svc", external_id, salt, low):
        assert rules.sampled_in("svc", external_id, salt, high)
    assert rules.sampled_in("svc", external_id, salt, 1.0)  # a rate of 1 samples everyone


@given(salt=st.text(max_size=20), other=st.text(max_size=20))
def test_another_salt_or_service_changes_some_answers(salt, other):
    assume(salt != other)
    ids = [f"T-{n}" for n in range(200)]
    first = [rules.sampled_in("svc", i, salt, 0.5) for i in ids]
    assert first != [rules.sampled_in("svc", i, other, 0.5) for i in ids]
    assert first != [rules.sampled_in("other-svc", i, salt, 0.5) for i in ids]
    assert 0 < sum(first) < len(ids)


# -- quiet hours and the window (SPEC §2 rules 1 and 4) -----------------------------------------------------------


def longest_wait(quiet: QuietHours) -> timedelta:
    """Quiet hours are under a day and a fall-back day has 25 hours; an allowed stretch shorter than an hour can
    fall wholly into the hour a spring-forward skips, and then it comes only the next day."""
    allowed = (datetime.combine(date.min, quiet.start) - datetime.combine(date.min, quiet.end)) % timedelta(days=1)
    return timedelta(hours=49) if allowed < timedelta(hours=1) else timedelta(hours=25)


@settings(max_examples=300, deadline=None)
@given(zone_and_moment(), quiet_hours)
@example((NY, datetime(2026, 3, 8, 6, 30, tzinfo=UTC)), QuietHours(time(21, 0), time(8, 0)))  # spring forward
@example((NY, datetime(2026, 11, 1, 6, 30, tzinfo=UTC)), QuietHours(time(21, 0), time(8, 0)))  # 2nd 01:30, EST
@example((NY, datetime(2026, 11, 1, 5, 30, tzinfo=UTC)), QuietHours(time(0, 30), time(3, 0)))  # 1st 01:30, EDT
@example((ZoneInfo("Asia/Kathmandu"), datetime(2026, 1, 1, 15, 14, 30, tzinfo=UTC)), QuietHours(time(21), time(8)))
@example((NY, datetime(2025, 3, 9, 4, 0, tzinfo=UTC)), QuietHours(time(2, 1), time(2, 0)))  # 02:00 never comes
def test_next_allowed_is_the_first_minute_outside_quiet_hours(zm, quiet):
    zone, moment = zm
    horizon = moment + timedelta(hours=50)
    got = rules.next_allowed(moment, quiet, zone)
    assert got >= moment
    assert got - moment <= longest_wait(quiet)
    assert not quiet_at(got, quiet, zone), got.astimezone(zone)
    assert got == first_allowed(moment, quiet, zone, horizon), (got.astimezone(zone), moment.astimezone(zone))


@settings(max_examples=300, deadline=None)
@given(zone_and_moment(), quiet_hours)
def test_next_allowed_never_goes_back_nor_past_a_day_whatever_the_quiet_hours(zm, quiet):
    zone, moment = zm
    got = rules.next_allowed(moment, quiet, zone)
    assert moment <= got <= moment + longest_wait(quiet)
    if not quiet_at(moment, quiet, zone):
        assert got == moment


def test_next_allowed_examples():
    quiet = QuietHours(time(21, 0), time(8, 0))
    at = datetime(2026, 6, 1, 3, 30, tzinfo=UTC)  # 23:30 EDT
    assert rules.next_allowed(at, quiet, NY) == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # 08:00 EDT
    at = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)  # 05:30 EDT, same day
    assert rules.next_allowed(at, quiet, NY) == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    at = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)  # 12:00 EDT, allowed
    assert rules.next_allowed(at, quiet, NY) == at
    honolulu = ZoneInfo("Pacific/Honolulu")
    at = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)  # 23:30 HST
    assert rules.next_allowed(at, quiet, honolulu) == datetime(2026, 6, 1, 18, 0, tzinfo=UTC)  # 08:00 HST
    afternoon = QuietHours(time(13, 0), time(14, 0))  # does not wrap midnight
    at = datetime(2026, 6, 1, 17, 15, tzinfo=UTC)  # 13:15 EDT
    assert rules.next_allowed(at, afternoon, NY) == datetime(2026, 6, 1, 18, 0, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(send_scenarios())
@example((datetime(2026, 3, 8, 4, 0, tzinfo=UTC), datetime(2026, 3, 8, 4, 1, tzinfo=UTC), make_service(), NY, True))
@example((datetime(2026, 11, 1, 4, 0, tzinfo=UTC), datetime(2026, 11, 1, 4, 1, tzinfo=UTC), make_service(), NY, True))
def test_planned_send_time_keeps_to_the_window_the_delay_and_quiet_hours(scenario):
    completed_at, now, service, zone, respects = scenario
    earliest = max(now, completed_at + service.send_delay)
    deadline = completed_at + service.window
    got = rules.planned_send_time(completed_at, now, service, zone, respects)
    if got is not None:
        assert got <= deadline  # (a) never sent late
        assert got >= earliest  # (b) never before the send delay, never in the past
    if not respects:
        assert got == (earliest if earliest <= deadline else None)
    elif got is None:
        # Expired only when there is no time: the earliest moment is itself quiet, or after the deadline.
        assert earliest > deadline or quiet_at(earliest, service.quiet_hours, zone)
    elif not quiet_at(earliest, service.quiet_hours, zone):
        assert got == earliest


@settings(max_examples=300, deadline=None)
@given(send_scenarios())
def test_planned_send_time_is_the_first_allowed_minute_in_the_window(scenario):
    completed_at, now, service, zone, _ = scenario
    earliest = max(now, completed_at + service.send_delay)
    deadline = completed_at + service.window
    got = rules.planned_send_time(completed_at, now, service, zone, True)
    expected = first_allowed(earliest, service.quiet_hours, zone, deadline)
    if got is not None:
        assert not quiet_at(got, service.quiet_hours, zone)  # (c) never inside quiet hours
    # None exactly when no allowed minute exists between the earliest moment and the deadline.
    assert got == expected, (got, expected)


def test_planned_send_time_examples():
    service = make_service(send_delay=timedelta(minutes=15))
    completed = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)  # 10:00 EDT
    assert rules.planned_send_time(completed, completed, service, NY, True) == completed + timedelta(minutes=15)
    late = datetime(2026, 6, 2, 2, 0, tzinfo=UTC)  # 22:00 EDT: quiet until 08:00
    assert rules.planned_send_time(completed, late, service, NY, True) == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
    assert rules.planned_send_time(completed, late, service, NY, False) == late
    short = make_service(window=timedelta(hours=2))
    assert rules.planned_send_time(late - timedelta(hours=1), late, short, NY, True) is None  # 08:00 is too late
    assert rules.planned_send_time(completed, completed + timedelta(hours=48), service, NY, False) is not None
    assert rules.planned_send_time(completed, completed + timedelta(hours=48, seconds=1), service, NY, False) is None


def test_the_window_and_the_future_tolerance():
    service = make_service(window=timedelta(hours=24))
    completed = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert rules.window_deadline(completed, service) == completed + timedelta(hours=24)
    assert not rules.window_passed(completed, service, completed + timedelta(hours=23, minutes=59))
    assert rules.window_passed(completed, service, completed + timedelta(hours=24))
    assert not rules.in_future(completed + timedelta(minutes=5), completed)
    assert rules.in_future(completed + timedelta(minutes=5, seconds=1), completed)


def test_the_customer_zone_comes_first_then_the_office_then_the_service():
    a, b, c = ZoneInfo("Pacific/Honolulu"), ZoneInfo("Europe/London"), NY
    assert rules.customer_zone(a, b, c) is a
    assert rules.customer_zone(None, b, c) is b
    assert rules.customer_zone(None, None, c) is c


@given(zone_and_moment())
def test_the_cap_day_is_the_service_zone_day_that_contains_the_send_time(zm):
    zone, moment = zm
    service = make_service(zone=zone.key)
    day = rules.cap_day(moment, service)
    start, end = rules.day_bounds(day, zone)
    assert start <= moment < end
    assert timedelta(hours=23) <= end - start <= timedelta(hours=25)


# -- channel choice (SPEC §2 rule 5) ------------------------------------------------------------------------------

CHANNEL_NAMES = ["sms", "ivr", "email", "console", "kiosk"]
KINDS = [ContactKind.PHONE, ContactKind.EMAIL]
HASHES = {ContactKind.PHONE: "hash-of-phone", ContactKind.EMAIL: "hash-of-email"}


@st.composite
def channel_options(draw: st.DrawFn) -> list[rules.ChannelOption]:
    names = draw(st.lists(st.sampled_from(CHANNEL_NAMES), unique=True, max_size=5))
    options = []
    for name in names:
        kinds = tuple(draw(st.lists(st.sampled_from(KINDS), unique=True, min_size=1, max_size=2)))
        consent = draw(st.sampled_from([None, "sms", "voice"]))
        blocked_by = draw(st.one_of(st.none(), st.lists(st.sampled_from(CHANNEL_NAMES), unique=True).map(tuple)))
        options.append(rules.ChannelOption(name, kinds, consent, blocked_by))
    return options


contact_hashes = st.lists(st.sampled_from(KINDS), unique=True).map(lambda ks: {k: HASHES[k] for k in ks})
consents = st.dictionaries(st.sampled_from(["sms", "voice"]), st.booleans())
suppressions = st.dictionaries(
    st.sampled_from([*HASHES.values(), "hash-of-someone-else"]), st.sets(st.sampled_from(CHANNEL_NAMES))
)


def blocked(option: rules.ChannelOption, contact_hash: str, suppressed: dict[str, set[str]]) -> bool:
    """Suppressed on the channel itself, on a channel that stops it, or (``suppressed_by`` None) on any channel."""
    on = suppressed.get(contact_hash, set())
    if option.suppressed_by is None:
        return bool(on)
    return bool(on & {option.name, *option.suppressed_by})


def consented(option: rules.ChannelOption, given_consents: dict[str, bool]) -> bool:
    return option.consent is None or given_consents.get(option.consent, False)


@settings(max_examples=500)
@given(channel_options(), contact_hashes, consents, suppressions)
def test_the_first_usable_channel_in_preference_order_wins(options, hashes, given_consents, suppressed):
    choice = rules.choose_channel(options, hashes, given_consents, suppressed)
    # (option, kind) pairs looked at before the choice was made: all of them when nothing was found.
    looked_at: list[tuple[rules.ChannelOption, ContactKind]] = []
    for option in options:
        for kind in option.contact_kinds:
            if choice.found and option.name == choice.channel and kind == choice.contact_kind:
                break
            looked_at.append((option, kind))
        else:
            continue
        break
    if choice.found:
        option = next(o for o in options if o.name == choice.channel)
        assert consented(option, given_consents)
        assert choice.contact_kind in option.contact_kinds
        assert choice.contact_hash == hashes[choice.contact_kind]
        assert not blocked(option, choice.contact_hash, suppressed)
    # Nothing looked at before could have been used.
    for option, kind in looked_at:
        usable = consented(option, given_consents) and kind in hashes and not blocked(option, hashes[kind], suppressed)
        assert not usable, (option, kind)
    # Nothing found means every option was looked at (above) and none was usable.
    if not choice.found:
        assert choice.contact_kind is None and choice.contact_hash is None
    skipped = any(
        consented(option, given_consents) and kind in hashes and blocked(option, hashes[kind], suppressed)
        for option, kind in looked_at
    )
    assert choice.skipped_for_opt_out == skipped


def test_channel_choice_examples():
    sms = rules.ChannelOption("sms", (ContactKind.PHONE,), "sms", ("sms",))
    ivr = rules.ChannelOption("ivr", (ContactKind.PHONE,), "voice", ("sms", "ivr"))
    email = rules.ChannelOption("email", (ContactKind.EMAIL,), None, ("email",))
    console = rules.ChannelOption("console", (ContactKind.EMAIL, ContactKind.PHONE), None, None)
    both = dict(HASHES)
    yes = {"sms": True, "voice": True}
    # No SMS consent: email next.
    assert rules.choose_channel([sms, email], both, {"sms": False}, {}).channel == "email"
    # Opted out of SMS: email, and the skip is recorded.
    choice = rules.choose_channel([sms, email], both, yes, {HASHES[ContactKind.PHONE]: {"sms"}})
    assert (choice.channel, choice.contact_kind, choice.skipped_for_opt_out) == ("email", ContactKind.EMAIL, True)
    # An SMS opt-out also stops outbound calls to that phone.
    choice = rules.choose_channel(
        [ivr], {ContactKind.PHONE: HASHES[ContactKind.PHONE]}, yes, {HASHES[ContactKind.PHONE]: {"sms"}}
    )
    assert (choice.channel, choice.skipped_for_opt_out) == (None, True)
    # A suppression on the channel itself stops it, whatever else it is stopped by.
    choice = rules.choose_channel([ivr, email], both, yes, {HASHES[ContactKind.PHONE]: {"ivr"}})
    assert (choice.channel, choice.skipped_for_opt_out) == ("email", True)
    # An email bounce does not stop texts.
    assert rules.choose_channel([sms], both, yes, {HASHES[ContactKind.EMAIL]: {"email"}}).channel == "sms"
    # No contact at all: no channel, not an opt-out.
    assert rules.choose_channel([sms, email], {}, yes, {}) == rules.ChannelChoice(None)
    # Console takes the email first, the phone when the email is suppressed anywhere.
    choice = rules.choose_channel([console], both, {}, {HASHES[ContactKind.EMAIL]: {"email"}})
    assert (choice.contact_kind, choice.skipped_for_opt_out) == (ContactKind.PHONE, True)


# -- replays never change a decision (SPEC §2 rules 2 and 10) --------------------------------------------------


@given(channel_options(), contact_hashes, consents, suppressions)
def test_channel_choice_is_pure(options, hashes, given_consents, suppressed):
    before = copy.deepcopy((options, hashes, given_consents, suppressed))
    first = rules.choose_channel(options, hashes, given_consents, suppressed)
    assert (options, hashes, given_consents, suppressed) == before  # the inputs are not changed
    assert rules.choose_channel(*copy.deepcopy(before)) == first


# -- cooldown and retries (SPEC §2 rules 3 and 10) ---------------------------------------------------------------

send_times = st.lists(st.integers(-90 * 86400, 30 * 86400).map(lambda s: BASE + timedelta(seconds=s)), max_size=6)


@given(send_times, st.integers(-5, 90), st.integers(0, 90))
def test_cooldown_is_any_invitation_since_the_cooldown_began(times, days, more_days):
    now = BASE
    result = rules.in_cooldown(times, now, days)
    if days <= 0:
        assert result is False
    else:
        assert result == any(t >= now - timedelta(days=days) for t in times)
    if result:
        # A longer cooldown, or one more invitation, keeps the contact in cooldown.
        assert rules.in_cooldown(times, now, days + more_days)
        assert rules.in_cooldown([*times, BASE - timedelta(days=400)], now, days)
    assert rules.in_cooldown([*times, now], now, max(days, 1))  # one scheduled now always counts


def test_cooldown_boundaries():
    now = BASE
    assert not rules.in_cooldown([], now, 30)
    assert rules.in_cooldown([now - timedelta(days=30)], now, 30)
    assert rules.in_cooldown([now - timedelta(days=29, hours=23)], now, 30)
    assert not rules.in_cooldown([now - timedelta(days=30, seconds=1)], now, 30)
    assert rules.in_cooldown([now + timedelta(hours=3)], now, 30)  # scheduled for later today
    assert not rules.in_cooldown([now], now, 0)  # a cooldown of 0 days is off


@given(st.integers(-5, 900), st.integers(0, 50))  # far past MAX_ATTEMPTS: capped below
def test_retry_delay_grows_and_is_capped_at_an_hour(attempts, more):
    delay = rules.retry_delay(attempts)
    assert timedelta(seconds=30) <= delay <= timedelta(hours=1)
    assert rules.retry_delay(attempts + more) >= delay


def test_retry_delay_examples():
    assert [rules.retry_delay(n).total_seconds() for n in range(0, 9)] == [30, 30, 60, 120, 240, 480, 960, 1920, 3600]
    assert rules.retry_delay(40) == timedelta(hours=1)


def test_retry_delay_is_capped_for_any_number_of_attempts():
    assert rules.retry_delay(2000) == timedelta(hours=1)


# -- the same transaction submitted twice, through the API, on both databases --------------------------------------

PHONES = ["+12025550101", "+12025550102", "+18085550103"]
EMAILS = ["a@example.com", "b@example.org"]
OFFICES = ["NYC-01", "HNL-01", "NOZONE"]
SERVICES = ["passport-renewal", "half-sampled", "capped", "texting", "expired-pra", "other-agency"]


@st.composite
def transactions(draw: st.DrawFn) -> dict:
    """A transaction as an integrator sends it: any offset, mostly inside the window, mostly with a contact."""
    offset = draw(offsets)
    age = timedelta(seconds=draw(st.one_of(st.integers(-240, 3 * 3600), st.integers(-240, 50 * 3600))))
    body: dict = {
        "id": f"P-{uuid.uuid4()}",
        # The everyday services more often than the one with an expired PRA approval.
        "service": draw(st.sampled_from([*SERVICES, "passport-renewal", "texting", "half-sampled"])),
        "completed_at": (datetime.now(UTC) - age).astimezone(offset).isoformat(),
    }
    contact = {}
    for key, strategy in {
        "phone": st.sampled_from(PHONES),
        "email": st.sampled_from(EMAILS),
        "timezone": st.sampled_from(ZONES),
    }.items():
        if draw(st.integers(0, 3)):  # three times in four
            contact[key] = draw(strategy)
    optional = {
        "office": st.sampled_from(OFFICES),
        "language": st.sampled_from(["en", "es", "es-US", "fr"]),
        "touchpoint": st.sampled_from(["phone", "in_person", "web"]),
        "test": st.booleans(),
        "consent": st.fixed_dictionaries({}, optional={"sms": st.booleans(), "voice": st.booleans()}),
        "contact": st.just(contact),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()) or (key == "contact" and contact):
            body[key] = draw(strategy)
    return body


def instants(result: dict) -> dict:
    """The result with its timestamps as instants (the same moment may be written with another offset)."""
    out = copy.deepcopy(result)
    invitation = out.get("invitation")
    if invitation:
        for key in ("send_at", "expires_at"):
            invitation[key] = datetime.fromisoformat(invitation[key].replace("Z", "+00:00"))
    return out


def without_duplicate(result: dict) -> dict:
    return {key: value for key, value in instants(result).items() if key != "duplicate"}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25, deadline=None)
@given(body=transactions())
def test_a_replayed_transaction_gets_the_first_decision(client, auth, body):
    first = post(client, body, auth)
    assert first.status_code in (200, 422), first.get_json()
    again = post(client, body, auth)
    assert again.status_code == first.status_code
    first_result, again_result = first.get_json(), again.get_json()
    event(f"decision: {first_result.get('decision')}")
    if first_result.get("decision") == "invalid":
        assert again_result == first_result  # nothing was stored, so nothing is a replay
        return
    assert first_result["duplicate"] is False
    assert again_result["duplicate"] is True
    assert without_duplicate(again_result) == without_duplicate(first_result)


def test_a_replay_writes_the_first_decisions_timestamps_the_same_way(client, auth):
    completed = (datetime.now(UTC) - timedelta(minutes=5)).astimezone(timezone(timedelta(hours=-5)))
    body = {"id": f"P-{uuid.uuid4()}", "service": "passport-renewal", "completed_at": completed.isoformat(),
            "contact": {"email": "z@example.com"}}  # fmt: skip
    first = post(client, body, auth).get_json()
    again = post(client, body, auth).get_json()
    assert first["decision"] == "scheduled"
    assert again["invitation"] == first["invitation"]


# -- known DST bugs of next_allowed (engine/intake/rules.py) -------------------------------------------------------------

GAP_CASES = [
    # zone, quiet hours ending inside the spring-forward gap, a quiet moment before the gap, the first allowed minute
    (NY, QuietHours(time(21, 0), time(2, 30)), datetime(2026, 3, 8, 6, 0, tzinfo=UTC), datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
    (ZoneInfo("Europe/London"), QuietHours(time(22, 0), time(1, 30)), datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
     datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
    (ZoneInfo("Australia/Lord_Howe"), QuietHours(time(22, 0), time(2, 15)), datetime(2026, 10, 3, 15, 0, tzinfo=UTC),
     datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),
]  # fmt: skip


@pytest.mark.parametrize(("zone", "quiet", "moment", "expected"), GAP_CASES)
def test_gap_cases_are_what_they_claim(zone, quiet, moment, expected):
    assert quiet_at(moment, quiet, zone)
    assert first_allowed(moment, quiet, zone, moment + timedelta(hours=26)) == expected


@pytest.mark.parametrize(("zone", "quiet", "moment", "expected"), GAP_CASES)
def test_next_allowed_is_the_first_allowed_minute_when_quiet_hours_end_in_a_dst_gap(zone, quiet, moment, expected):
    assert rules.next_allowed(moment, quiet, zone) == expected


def test_next_allowed_never_returns_a_quiet_moment_when_the_allowed_stretch_falls_in_a_dst_gap():
    quiet = QuietHours(time(3, 0), time(2, 30))  # only 02:30-03:00 allowed; that half hour does not exist on 8 March
    moment = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 00:00 EST
    got = rules.next_allowed(moment, quiet, NY)
    assert not quiet_at(got, quiet, NY), got.astimezone(NY)


def test_planned_send_time_does_not_expire_an_invitation_it_could_send_after_a_dst_gap():
    service = make_service(window=timedelta(hours=1), quiet=QuietHours(time(21, 0), time(2, 30)))
    completed = datetime(2026, 3, 8, 6, 15, tzinfo=UTC)  # 01:15 EST; deadline 03:15 EDT; allowed from 03:00 EDT
    got = rules.planned_send_time(completed, completed, service, NY, True)
    assert got == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


FALL_BACK_CASES = [
    # quiet hours, a quiet moment in the first 01:xx (EDT), the first allowed minute: 01:00 EST comes next
    (QuietHours(time(1, 30), time(1, 0)), datetime(2026, 11, 1, 5, 40, tzinfo=UTC), datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),
    (QuietHours(time(1, 1), time(2, 0)), datetime(2025, 11, 2, 5, 59, 59, tzinfo=UTC), datetime(2025, 11, 2, 6, 0, tzinfo=UTC)),
]  # fmt: skip


@pytest.mark.parametrize(("quiet", "moment", "expected"), FALL_BACK_CASES)
def test_next_allowed_uses_the_repeated_hour_after_a_fall_back(quiet, moment, expected):
    assert rules.next_allowed(moment, quiet, NY) == expected


@pytest.mark.parametrize(("quiet", "moment", "expected"), FALL_BACK_CASES)
def test_fall_back_cases_are_what_they_claim(quiet, moment, expected):
    assert quiet_at(moment, quiet, NY)
    assert not quiet_at(expected, quiet, NY)
    assert first_allowed(moment, quiet, NY, moment + timedelta(hours=26)) == expected


def test_the_dst_gap_examples_are_what_they_claim():
    """The premises of the two single-case tests above, checked against the minute-by-minute reference."""
    gap_only = QuietHours(time(3, 0), time(2, 30))
    moment = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert first_allowed(moment, gap_only, NY, moment + timedelta(hours=26)) == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)
    quiet = QuietHours(time(21, 0), time(2, 30))
    completed = datetime(2026, 3, 8, 6, 15, tzinfo=UTC)
    assert first_allowed(completed, quiet, NY, completed + timedelta(hours=1)) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
