"""The figures of one service's dashboard page, all read from the one definition of what counts.

Nothing here decides what counts: every number comes from :mod:`engine.reporting.what_counts` (the funnel,
volumes, ratings, drivers, the trend and the masked comments) over a :class:`~engine.reporting.what_counts.Scope`
of one service and one fiscal quarter, so the page and the A-11 file never disagree. This module only shapes the
results for the page: labels, order, and the service-level totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from engine.channels import installed_channels, short_label_of
from engine.common.i18n import N_
from engine.reporting import a11
from engine.reporting import what_counts as wc
from engine.reporting.fiscal import FiscalQuarter, fiscal_quarter
from engine.runtime import Runtime

TAGS = ("satisfaction", "trust")
THUMBS_TYPES = ("thumbs", "yes_no")  # rating types answered at 1 and 5 alone, with no mean
# How the page names the engine's own channel names (each installed channel states its own ``label`` and
# ``short_label``; the A-11 name is shown beside it).
ENGINE_CHANNEL_NAMES = {"web": (N_("Website"), N_("Website"))}
DRIVER_NAMES = {
    "effectiveness": N_("Effectiveness"),
    "ease": N_("Ease"),
    "efficiency": N_("Efficiency"),
    "transparency": N_("Transparency"),
    "humanity": N_("Humanity"),
    "employee": N_("Employee"),
    "other": N_("Other"),
}
NO_OFFICE = N_("No office coded")
NO_OFFICE_SHORT = N_("None")
RATING_NAMES = {
    "satisfaction": N_("Satisfaction"),
    "trust": N_("Trust"),
    "effectiveness": N_("Effectiveness"),
    "ease": N_("Ease"),
    "efficiency": N_("Efficiency"),
    "transparency": N_("Transparency"),
    "employee": N_("Employee"),
}


@dataclass(frozen=True)
class GroupRow:
    """One channel or office: its volumes and its satisfaction and trust answers."""

    key: str
    label: str
    short: str  # the label on the chart
    volumes: wc.Volumes
    ratings: dict[str, wc.Rating]

    def rating(self, tag: str) -> wc.Rating:
        return self.ratings.get(tag) or wc.Rating({})


@dataclass(frozen=True)
class CommentView:
    answered_at: datetime  # in the service's time zone
    channel: str
    office: str
    text: str  # masked


@dataclass
class ServiceFigures:
    slug: str
    quarter: FiscalQuarter
    include_test: bool
    bucket: str
    funnel: wc.Funnel
    totals: wc.Volumes
    ratings: dict[str, wc.Rating]
    trend: dict[str, list[wc.TrendPoint]]
    drivers: list[tuple[str, int, int]]  # (driver, positive, negative) in the A-11 order
    by_channel: list[GroupRow]
    by_office: list[GroupRow]
    comments: list[CommentView]
    thumbs: set[str] = field(default_factory=set)  # tags asked as thumbs up/down alone (no mean)
    scaled: dict[str, wc.Rating] = field(default_factory=dict)  # per tag, the answers on a 5-point scale (the mean's)
    driver_choices: bool = True  # the flow asks drivers as choices (else as 5-point questions, in ``ratings``)
    asked: set[str] = field(default_factory=lambda: set(TAGS))  # the rating tags the flow asks

    def rating(self, tag: str) -> wc.Rating:
        return self.ratings.get(tag) or wc.Rating({})

    @property
    def rating_rows(self) -> list[tuple[str, wc.Rating]]:
        """The rating tags the flow asks as a rating, and any other that holds answers, in the A-11 order."""
        return [(t, self.rating(t)) for t in wc.RATING_TAGS if t in self.asked or self.rating(t).n]

    def mean_of(self, tag: str) -> tuple[int, int]:
        """(sum of the points, count of the answers) of the tag's answers on a 5-point scale: what its mean is of."""
        found = self.scaled.get(tag) if tag in TAGS else self.ratings.get(tag)
        return (found.total, found.n) if found else (0, 0)

    def shows(self, tag: str) -> bool:
        return tag in self.asked or bool(self.rating(tag).n)

    @property
    def funnel_steps(self) -> list[tuple[str, int]]:
        f = self.funnel
        return [
            (N_("Transactions"), f.transactions),
            (N_("Sampled"), f.sampled),
            (N_("Sent"), f.sent),
            (N_("Delivered"), f.delivered),
            (N_("Started"), f.started),
            (N_("Completed"), f.completed),
        ]


def current_quarter(rt: Runtime, slug: str, now: datetime) -> FiscalQuarter:
    return fiscal_quarter(now, rt.catalog.services[slug].timezone)


def thumbs_tags(rt: Runtime, slug: str) -> set[str]:
    flow = rt.catalog.flows.get(rt.catalog.services[slug].flow)
    if flow is None:
        return set()
    return {q.a11 for q in flow.questions if q.a11 in TAGS and q.type in THUMBS_TYPES}


@dataclass(frozen=True)
class Scales:
    """How the scope's satisfaction and trust answers were asked (see :func:`quarter_scales`)."""

    thumbs: set[str]  # the tags answered as thumbs up/down alone: no mean, no points 2-4
    thumbs_surveys: dict[str, set[int | None]]  # per tag, the surveys that asked it as thumbs up/down
    scaled: dict[str, wc.Rating]  # per tag, the answers on a 5-point scale


def quarter_scales(rt: Runtime, session: Session, scope: wc.Scope, slug: str) -> Scales:
    """How the scope's satisfaction and trust answers were asked, as the survey each response recorded says (the §6.1
    file reads them so too), not as today's flow alone says: after the service switched flows, a past quarter keeps
    its points and its mean. A tag answered under no recorded survey (no answer yet; rows stored before surveys were
    recorded) follows today's flow; one answered both ways is shown with every point. Its mean is of its answers on
    a 5-point scale alone: a thumbs up is filed at 5 with no mean, never as a 5 of the scale (the §6.1 file's rows,
    /data and the filing's "what moved" figures average the 5-point rows alone)."""
    today = thumbs_tags(rt, slug)
    by_survey = wc.ratings(session, scope, by=("survey",), tags=TAGS)
    used = a11.surveys_used(session, [k.survey_id for k in by_survey if k.survey_id is not None])

    def as_thumbs(tag: str, survey_id: int | None) -> bool:
        survey = used.get(survey_id) if survey_id is not None else None
        if survey is None:
            return tag in today
        return any(q.a11 == tag and q.type in THUMBS_TYPES for q in survey.flow.questions)

    thumbs: set[str] = set()
    surveys: dict[str, set[int | None]] = {tag: set() for tag in TAGS}
    scaled: dict[str, wc.Rating] = {}
    for tag in TAGS:
        asked_as: set[bool] = set()
        for key, per_tag in by_survey.items():
            rating = per_tag.get(tag)
            if rating is None or not rating.n:
                continue
            asked_as.add(thumbs_here := as_thumbs(tag, key.survey_id))
            if thumbs_here:
                surveys[tag].add(key.survey_id)
                continue
            merged = scaled.setdefault(tag, wc.Rating({}))
            for point, count in rating.counts.items():
                merged.counts[point] = merged.counts.get(point, 0) + count
        if asked_as == {True} or (not asked_as and tag in today):
            thumbs.add(tag)
    return Scales(thumbs, surveys, scaled)


def channel_label(code: str) -> tuple[str, str]:
    """(label, chart label) of an engine channel name, as the channel states them (msgids, translated on the
    page); the name itself for a channel not installed."""
    found = installed_channels().get(code)
    if found is not None:
        return found.label, short_label_of(found)
    return ENGINE_CHANNEL_NAMES.get(code, (code, code))


def a11_channel_label(a11_name: str) -> tuple[str, str]:
    """(label, chart label) of an A-11 channel name (a row of a filed §6.1 file), as the installed channel that
    reports under it states them; the name itself where none does."""
    for channel in installed_channels().values():
        if channel.a11_channel == a11_name:
            return channel.label, short_label_of(channel)
    return a11_name, a11_name


def office_label(rt: Runtime, office_id: int | None) -> tuple[str, str]:
    """(code, "code · name") of an office id; ("", the no-office label) for None."""
    if office_id is None:
        return "", NO_OFFICE
    for code, id_ in rt.office_ids.items():
        if id_ == office_id:
            office = rt.catalog.offices.get(code)
            return code, f"{code} · {office.name}" if office else code
    return str(office_id), str(office_id)


def asked_tags(rt: Runtime, slug: str) -> set[str]:
    flow = rt.catalog.flows.get(rt.catalog.services[slug].flow)
    if flow is None:
        return set(TAGS)
    return {q.a11 for q in flow.questions if q.is_rating and q.a11 in wc.RATING_TAGS}


def driver_choices(rt: Runtime, slug: str) -> bool:
    flow = rt.catalog.flows.get(rt.catalog.services[slug].flow)
    return flow is None or any(q.a11 in wc.DRIVER_SIDES for q in flow.questions)


def _groups(
    rt: Runtime, session: Session, scope: wc.Scope, dimension: str
) -> list[GroupRow]:  # fmt: skip
    vols = wc.volumes(rt, session, scope, by=(dimension,))
    rates = wc.ratings(session, scope, by=(dimension,), tags=wc.RATING_TAGS if dimension == "channel" else TAGS)
    keys = sorted(set(vols) | set(rates), key=lambda k: (str(k.channel), k.office_id or 0))
    rows = []
    for key in keys:
        if dimension == "channel":
            code = key.channel or ""
            label, short = channel_label(code)
        else:
            code, label = office_label(rt, key.office_id)
            short = code or NO_OFFICE_SHORT
        rows.append(GroupRow(code, label, short, vols.get(key) or wc.Volumes(), rates.get(key) or {}))
    if dimension == "office":
        rows.sort(key=lambda r: (r.key == "", -r.volumes.respondents, r.key))
    return rows


def _service_totals(by_channel: list[GroupRow]) -> tuple[wc.Volumes, dict[str, wc.Rating]]:
    """The service's volumes and ratings: the sums of its channel groups, which partition every counted row (a
    customer, an opportunity, a respondent and an answer each count under exactly one channel)."""
    totals = wc.Volumes()
    ratings: dict[str, wc.Rating] = {}
    for row in by_channel:
        totals.customers += row.volumes.customers
        totals.opportunities += row.volumes.opportunities
        totals.respondents += row.volumes.respondents
        for tag, rating in row.ratings.items():
            merged = ratings.setdefault(tag, wc.Rating({}))
            for point, count in rating.counts.items():
                merged.counts[point] = merged.counts.get(point, 0) + count
    return totals, ratings


def service_figures(
    rt: Runtime, session: Session, slug: str, quarter: FiscalQuarter, bucket: str = "week",
    include_test: bool = False, comments: int = 20,
) -> ServiceFigures:  # fmt: skip
    """Every figure of the page of ``slug`` for ``quarter``; ``include_test``: the labelled test-data view."""
    scope = wc.scope_for(rt, [slug], quarter, include_test)
    sid = rt.service_ids[slug]
    key = wc.Key(sid)
    funnel = wc.funnel(rt, session, scope).get(key) or wc.Funnel()
    by_channel = _groups(rt, session, scope, "channel")
    totals, ratings = _service_totals(by_channel)
    scales = quarter_scales(rt, session, scope, slug)
    trend = wc.trend(rt, session, slug, quarter.first_day, quarter.end_day, bucket, TAGS, include_test,
                     scales.thumbs_surveys)  # fmt: skip
    chosen = wc.drivers(session, scope, by=()).get(key) or {}
    drivers = [(d, chosen.get(("positive", d), 0), chosen.get(("negative", d), 0)) for d in wc.DRIVERS]
    zone = rt.catalog.services[slug].timezone
    views = []
    for c in wc.comments(session, scope, limit=comments):
        views.append(CommentView(c.answered_at.astimezone(zone), channel_label(c.channel)[0],
                                 office_label(rt, c.office_id)[1], c.text))  # fmt: skip
    return ServiceFigures(
        slug=slug, quarter=quarter, include_test=include_test, bucket=bucket, funnel=funnel, totals=totals,
        ratings=ratings, trend=trend, drivers=drivers, by_channel=by_channel,
        by_office=_groups(rt, session, scope, "office"), comments=views,
        thumbs=scales.thumbs, scaled=scales.scaled,
        # Chosen drivers are shown whenever the quarter holds some: a survey used before a switch of flows asked them.
        driver_choices=driver_choices(rt, slug) or any(p or n for _, p, n in drivers), asked=asked_tags(rt, slug),
    )  # fmt: skip


def test_transactions(rt: Runtime, session: Session, slug: str, quarter: FiscalQuarter) -> int:
    """Transactions of the quarter once test and console data are let in (the hint towards the test view)."""
    scope = wc.scope_for(rt, [slug], quarter, include_test=True)
    found = wc.funnel(rt, session, scope).get(wc.Key(rt.service_ids[slug]))
    return found.transactions if found else 0


def quarter_choices(current: FiscalQuarter, selected: FiscalQuarter, count: int = 8) -> list[FiscalQuarter]:
    """The current quarter and the ones before it (and the selected one if older), newest first."""
    quarters = [current]
    while len(quarters) < count:
        quarters.append(quarters[-1].previous())
    if selected not in quarters:
        quarters.append(selected)
    return sorted(set(quarters), reverse=True)


def bucket_label(day: date, bucket: str) -> str:
    """A bucket's short label on the chart's axis, in the page's language ("Oct 5", "Oct 2026")."""
    from flask_babel import format_date

    return str(format_date(day, format="MMM y" if bucket == "month" else "MMM d"))
