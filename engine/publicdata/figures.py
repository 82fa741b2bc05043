"""The figures of one filed quarter, read from the §6.1 JSON as it was submitted (never from live data).

A submission's rows (one per channel and survey) are summed into the service's quarter: volumes, the answers at
each point of each rating question, driver counts and the rows of each A-11 channel. Shares and means are
recomputed from those summed counts: means with the report's own rounding (``a11.mean_cell``), so a channel filed
in one row shows exactly the cells of its row; shares unrounded, each shown as a percentage rounded half up once
(``a11.percent_cell``), as the dashboard shows it, never the file's 4-place share rounded again. Only counts are
read: no text column of the file (titles, the reflection) reaches the public pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from engine.reporting import a11
from engine.reporting import what_counts as wc
from engine.runtime import Runtime
from engine.store.models import Submission

POINTS = (1, 2, 3, 4, 5)


def _count(row: dict[str, Any], column: str) -> int:
    value = row.get(column)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class Volumes:
    customers: int = 0
    opportunities: int = 0
    respondents: int = 0

    @property
    def response_rate(self) -> Decimal | None:
        """Unrounded: a page rounds it once (``a11.percent_cell``), not the file's 4-place cell again."""
        return a11.exact_share(self.respondents, self.opportunities)

    def plus(self, row: dict[str, Any]) -> Volumes:
        return Volumes(
            self.customers + _count(row, "volume_of_customers"),
            self.opportunities + _count(row, "volume_of_customers_provided_survey_opportunity"),
            self.respondents + _count(row, "volume_of_respondents"),
        )


@dataclass(frozen=True)
class Rating:
    """One rating question over the quarter: the answers at each point (a thumbs question: 1 down, 5 up)."""

    tag: str
    counts: dict[int, int]
    thumbs: bool
    # The sum of the points and the count of the answers filed on a 5-point scale (the rows with a mean): a thumbs
    # row's 1s and 5s are no points of a scale, so a quarter that asked both has the mean of its 5-point answers.
    scaled: tuple[int, int] = (0, 0)

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @property
    def mean(self) -> Decimal | None:
        return None if self.thumbs else a11.mean_cell(*self.scaled)

    @property
    def agree(self) -> Decimal | None:
        """Unrounded, as :attr:`Volumes.response_rate`."""
        return a11.exact_share(self.counts[4] + self.counts[5], self.n)


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    volumes: Volumes


@dataclass(frozen=True)
class QuarterFigures:
    fiscal_year: int
    quarter: int
    submitted_at: datetime
    volumes: Volumes
    ratings: list[Rating]  # the questions answered at least once, in the §6.1 order
    drivers: list[tuple[str, int, int]]  # (driver, positive, negative); empty when the survey asks none
    channels: list[ChannelRow]

    def rating(self, tag: str) -> Rating | None:
        return next((r for r in self.ratings if r.tag == tag), None)


def standing(rt: Runtime, session: Session, service: str, *files: str) -> list[Submission]:
    """The service's filed quarters, newest quarter first: the standing (newest) submission of each, as
    ``submissions.submitted_quarters`` chooses them, loading only the ``files`` columns asked for (a submission
    also holds the response-level file, which can be large and is never shown here)."""
    keys = (Submission.id, Submission.fiscal_year, Submission.quarter, Submission.submitted_at)
    query = (
        select(Submission)
        .options(load_only(*keys))
        .where(Submission.service_id == rt.service_ids[service])
        .order_by(Submission.fiscal_year.desc(), Submission.quarter.desc(), Submission.submitted_at.desc())
    )
    out: dict[tuple[int, int], Submission] = {}
    for row in session.execute(query).scalars():
        out.setdefault((row.fiscal_year, row.quarter), row)
    if files and out:
        wanted = [getattr(Submission, f) for f in files]
        loaded = select(Submission).options(load_only(Submission.id, *wanted))
        session.execute(loaded.where(Submission.id.in_([s.id for s in out.values()]))).scalars().all()
    return list(out.values())


def filed_quarters(session: Session) -> dict[int, list[tuple[int, int]]]:
    """Each service id's filed quarters ``(fiscal_year, quarter)``, newest first (no file is read)."""
    query = (
        select(Submission.service_id, Submission.fiscal_year, Submission.quarter)
        .distinct()
        .order_by(Submission.service_id, Submission.fiscal_year.desc(), Submission.quarter.desc())
    )
    out: dict[int, list[tuple[int, int]]] = {}
    for service_id, year, quarter in session.execute(query):
        out.setdefault(service_id, []).append((year, quarter))
    return out


def filed_rows(submission: Submission) -> list[dict[str, Any]]:
    """The rows of the §6.1 JSON as it was submitted."""
    rows: list[dict[str, Any]] = json.loads(submission.collection_json.decode("utf-8"))["rows"]
    return rows


def quarter_figures(submission: Submission) -> QuarterFigures:
    """The service's figures of the submitted quarter, summed over the filed rows."""
    rows = filed_rows(submission)
    total = Volumes()
    by_channel: dict[str, Volumes] = {}
    for row in rows:
        total = total.plus(row)
        channel = str(row.get("channel") or "")
        by_channel[channel] = by_channel.get(channel, Volumes()).plus(row)
    ratings = []
    for tag in wc.RATING_TAGS:
        counts = {p: sum(_count(r, f"{tag}_{p}") for r in rows) for p in POINTS}
        if sum(counts.values()) == 0:
            continue
        # A thumbs question files its answers at 1 and 5 without a mean.
        thumbs = all(r.get(f"{tag}_mean") is None for r in rows if _count(r, f"{tag}_n"))
        scaled = [r for r in rows if r.get(f"{tag}_mean") is not None]
        points = sum(p * _count(r, f"{tag}_{p}") for r in scaled for p in POINTS)
        ratings.append(Rating(tag, counts, thumbs, (points, sum(_count(r, f"{tag}_n") for r in scaled))))
    asked = any(r.get(f"{side}_{d}") is not None for r in rows for side in ("positive", "negative") for d in wc.DRIVERS)
    drivers = (
        [(d, sum(_count(r, f"positive_{d}") for r in rows), sum(_count(r, f"negative_{d}") for r in rows))
         for d in wc.DRIVERS]
        if asked else []
    )  # fmt: skip
    order = {c: i for i, c in enumerate(wc.A11_CHANNEL_ORDER)}
    channels = [ChannelRow(c, v) for c, v in sorted(by_channel.items(), key=lambda cv: (order.get(cv[0], 99), cv[0]))]
    return QuarterFigures(submission.fiscal_year, submission.quarter, submission.submitted_at, total, ratings,
                          drivers, channels)  # fmt: skip
