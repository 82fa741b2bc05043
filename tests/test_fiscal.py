"""The federal fiscal calendar: every quarter's edges, the year turn, DST days, zones without DST, bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.reporting.fiscal import FiscalQuarter, day_bounds, fiscal_quarter, fiscal_quarter_of_date, fiscal_year

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
HONOLULU = ZoneInfo("Pacific/Honolulu")
ZONES = [NY, LA, HONOLULU, ZoneInfo("UTC"), ZoneInfo("America/Chicago"), ZoneInfo("Pacific/Guam")]
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    "last, first, before, after",
    [
        # (the last day of a quarter, the first day of the next, their quarters)
        (date(2026, 9, 30), date(2026, 10, 1), FiscalQuarter(2026, 4), FiscalQuarter(2027, 1)),
        (date(2026, 12, 31), date(2027, 1, 1), FiscalQuarter(2027, 1), FiscalQuarter(2027, 2)),  # the year turn
        (date(2027, 3, 31), date(2027, 4, 1), FiscalQuarter(2027, 2), FiscalQuarter(2027, 3)),
        (date(2027, 6, 30), date(2027, 7, 1), FiscalQuarter(2027, 3), FiscalQuarter(2027, 4)),
        (date(2027, 9, 30), date(2027, 10, 1), FiscalQuarter(2027, 4), FiscalQuarter(2028, 1)),
    ],
)
@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_every_quarter_edge(last: date, first: date, before: FiscalQuarter, after: FiscalQuarter,
                            zone: ZoneInfo) -> None:  # fmt: skip
    midnight = datetime(first.year, first.month, first.day, tzinfo=zone)
    assert fiscal_quarter(midnight - TICK, zone) == before
    assert fiscal_quarter(midnight, zone) == after
    assert fiscal_quarter_of_date(last) == before and fiscal_quarter_of_date(first) == after
    start, end = after.bounds(zone)
    assert start == midnight.astimezone(UTC) and start.tzinfo is UTC
    assert before.bounds(zone)[1] == start
    assert end == after.next().bounds(zone)[0]


def test_fy2027_q1_is_october_to_december_2026() -> None:
    q = FiscalQuarter(2027, 1)
    assert (q.first_day, q.end_day) == (date(2026, 10, 1), date(2027, 1, 1))
    assert [FiscalQuarter(2027, n).first_day for n in (2, 3, 4)] == [date(2027, 1, 1), date(2027, 4, 1),
                                                                     date(2027, 7, 1)]  # fmt: skip
    assert str(q) == "FY2027 Q1"
    assert q.previous() == FiscalQuarter(2026, 4) and FiscalQuarter(2026, 4).next() == q


def test_the_same_instant_falls_in_different_quarters_by_zone() -> None:
    # 04:30 UTC on 1 October 2026: already October in New York (00:30 EDT), still September in Los Angeles.
    moment = datetime(2026, 10, 1, 4, 30, tzinfo=UTC)
    assert fiscal_quarter(moment, NY) == FiscalQuarter(2027, 1)
    assert fiscal_quarter(moment, LA) == FiscalQuarter(2026, 4)
    assert fiscal_quarter(moment, HONOLULU) == FiscalQuarter(2026, 4)
    assert fiscal_year(moment, ZoneInfo("UTC")) == 2027


def test_bounds_in_utc_follow_daylight_saving_time() -> None:
    # Q1 starts on EDT (UTC-4), Q2 and its end on EST (UTC-5): the quarter is 92 days and one hour long.
    start, end = FiscalQuarter(2027, 1).bounds(NY)
    assert start == datetime(2026, 10, 1, 4, tzinfo=UTC)
    assert end == datetime(2027, 1, 1, 5, tzinfo=UTC)
    assert end - start == timedelta(days=92, hours=1)
    # Q3 starts after the March change (EDT again): Q2 is one hour short.
    q2_start, q2_end = FiscalQuarter(2027, 2).bounds(NY)
    assert q2_end == datetime(2027, 4, 1, 4, tzinfo=UTC)
    assert q2_end - q2_start == timedelta(days=90) - timedelta(hours=1)
    # Honolulu keeps no DST: always UTC-10.
    assert FiscalQuarter(2027, 3).bounds(HONOLULU)[0] == datetime(2027, 4, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "local, expected",
    [
        # The spring-forward day (8 March 2026: 02:00 → 03:00) and the fall-back day (1 November 2026: 02:00 → 01:00).
        (datetime(2026, 3, 8, 1, 59, tzinfo=NY), FiscalQuarter(2026, 2)),
        (datetime(2026, 3, 8, 3, 0, tzinfo=NY), FiscalQuarter(2026, 2)),
        (datetime(2026, 11, 1, 1, 30, tzinfo=NY), FiscalQuarter(2027, 1)),
        (datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NY), FiscalQuarter(2027, 1)),
    ],
)
def test_dst_days(local: datetime, expected: FiscalQuarter) -> None:
    assert fiscal_quarter(local, NY) == expected
    assert fiscal_quarter(local.astimezone(UTC), NY) == expected


def test_day_bounds_of_a_dst_day_are_23_and_25_hours() -> None:
    start, end = day_bounds(date(2026, 3, 8), date(2026, 3, 9), NY)
    assert end - start == timedelta(hours=23)
    start, end = day_bounds(date(2026, 11, 1), date(2026, 11, 2), NY)
    assert end - start == timedelta(hours=25)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        fiscal_quarter(datetime(2026, 10, 1), NY)
    with pytest.raises(ValueError, match="1-4"):
        FiscalQuarter(2027, 5)
    with pytest.raises(ValueError, match="1-4"):
        FiscalQuarter(2027, 0)
    with pytest.raises(ValueError, match="ends after"):
        day_bounds(date(2026, 10, 2), date(2026, 10, 1), NY)


@given(
    moment=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
    zone=st.sampled_from(ZONES),
)
def test_a_moment_lies_inside_its_quarter_bounds(moment: datetime, zone: ZoneInfo) -> None:
    quarter = fiscal_quarter(moment, zone)
    start, end = quarter.bounds(zone)
    assert start <= moment < end
    local_day = moment.astimezone(zone).date()
    assert quarter.first_day <= local_day < quarter.end_day
    assert quarter.fiscal_year == local_day.year + (1 if local_day.month >= 10 else 0)
