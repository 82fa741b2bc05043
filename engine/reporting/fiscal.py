"""The federal fiscal calendar: the fiscal year and quarter of a moment in a time zone, and a quarter's bounds.

The federal fiscal year starts on 1 October: FY2027 Q1 is 2026-10-01 .. 2026-12-31, Q2 January-March 2027,
Q3 April-June, Q4 July-September 2027. A-11 reports place a transaction in the quarter of its ``completed_at`` *in
the service's time zone* (SPEC §6), so every function here takes the zone; the bounds come back as UTC instants,
start included and end excluded, ready for ``WHERE completed_at >= start AND completed_at < end``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, order=True)
class FiscalQuarter:
    """One federal fiscal quarter, e.g. ``FiscalQuarter(2027, 1)`` = October-December 2026."""

    fiscal_year: int
    quarter: int

    def __post_init__(self) -> None:
        if self.quarter not in (1, 2, 3, 4):
            raise ValueError(f"a fiscal quarter is 1-4, not {self.quarter}")
        if not 1901 <= self.fiscal_year <= 9998:
            raise ValueError(f"fiscal year {self.fiscal_year} is out of range")

    @property
    def first_day(self) -> date:
        """The quarter's first calendar day (Q1 starts on 1 October of the previous calendar year)."""
        month = (self.quarter - 1) * 3 + 10
        year = self.fiscal_year - 1
        if month > 12:
            month -= 12
            year += 1
        return date(year, month, 1)

    @property
    def end_day(self) -> date:
        """The first calendar day after the quarter (excluded)."""
        return self.next().first_day

    def next(self) -> FiscalQuarter:
        return FiscalQuarter(self.fiscal_year + 1, 1) if self.quarter == 4 else FiscalQuarter(self.fiscal_year,
                                                                                            self.quarter + 1)  # fmt: skip

    def previous(self) -> FiscalQuarter:
        return FiscalQuarter(self.fiscal_year - 1, 4) if self.quarter == 1 else FiscalQuarter(self.fiscal_year,
                                                                                            self.quarter - 1)  # fmt: skip

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The quarter as UTC instants [start, end): local midnight of its first day to that of the next quarter's."""
        return day_bounds(self.first_day, self.end_day, zone)

    def __str__(self) -> str:
        return f"FY{self.fiscal_year} Q{self.quarter}"


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` starts in ``zone`` (midnight is never skipped in US zones; if a zone
    skipped it, the first instant of that day)."""
    local = datetime.combine(day, time(0), tzinfo=zone)
    # A gap at midnight would put the wall time past the real start: round-trip to find the first existing instant.
    utc = local.astimezone(UTC)
    if utc.astimezone(zone).date() != day:  # pragma: no cover - no US zone skips midnight
        utc = (local + timedelta(hours=1)).astimezone(UTC)
    return utc


def day_bounds(first: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Local calendar days [first, end) in ``zone`` as UTC instants [start, end)."""
    if end <= first:
        raise ValueError("a period ends after it starts")
    return local_midnight(first, zone), local_midnight(end, zone)


def fiscal_quarter_of_date(day: date) -> FiscalQuarter:
    """The fiscal quarter a calendar day falls in."""
    if day.month >= 10:
        return FiscalQuarter(day.year + 1, 1)
    return FiscalQuarter(day.year, (day.month - 1) // 3 + 2)


def fiscal_quarter(moment: datetime, zone: ZoneInfo) -> FiscalQuarter:
    """The fiscal quarter of an aware ``moment`` as seen in ``zone``."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no place in the fiscal calendar; give a time zone")
    return fiscal_quarter_of_date(moment.astimezone(zone).date())


def fiscal_year(moment: datetime, zone: ZoneInfo) -> int:
    return fiscal_quarter(moment, zone).fiscal_year
