"""THE one definition of what counts (SPEC §6): composable SQL building blocks and the aggregates built on them.

Every report (the §6.1 file, the §6.2 file, the dashboard) reads these functions, so they never disagree.
Everything is computed in the database (``GROUP BY`` through SQLAlchemy); Python only shapes the few result rows.

The rules, as implemented:

- **Period.** A transaction belongs to the period of its ``completed_at`` in its service's time zone; a response
  to its transaction's; a response without a transaction (a kiosk session) to its ``started_at`` (the kiosk
  starts a session with its first answer). A :class:`Scope` holds each service's period as UTC instants
  [start, end), worked out by :mod:`engine.reporting.fiscal` in the service's zone.
- **What is left out.** Test data (``test`` on the transaction, invitation or response), console-channel data
  and transactions decided ``invalid`` count nowhere; ``include_test=True`` (the dashboard's labelled "test data"
  view) lets test and console data in. Spam-flagged responses count nowhere, ever.
- **Channel of a transaction** (``customers``): the channel of the response that started without an invitation
  (a post-call IVR survey), else its invitation's channel, else the channel rule 5 chose for it, else the channel
  that made it (``transactions.source`` naming a channel: a post-call hand-off's caller who was not surveyed),
  else the service's first configured channel. Intake stores the rule-5 channel in ``transactions.channel`` for every
  transaction, sampled out or not, and makes at most one invitation per transaction, on that same channel
  (dispatch never switches), so ``transactions.channel`` is both the invitation's and the would-be channel.
- **Channel of a response**: ``responses.channel``, the channel that started it (a web page opened from an email
  link is stored as ``email``). Engine names map to the A-11 vocabulary with :func:`a11_channel`.
- **Customers**: counted transactions, plus responses that have no transaction (kiosk sessions).
  **Opportunities**: invitations with a ``sent_at`` whose state is not ``failed`` (a later bounce or undelivered
  report makes it failed and takes it out); post-call IVR responses whose caller heard the first question (the
  call reached the ``questions`` phase, or an answer exists); kiosk sessions.
  **Respondents**: counted responses with at least one answer.

Performance: the §6.1 figures (:func:`figures`) read summaries kept by triggers (:mod:`engine.store.models.reporting`),
one narrow table per figure, joining nothing big: customers from one scan of the counted transactions;
opportunities from ``invitation_tallies``; post-call and kiosk customers and opportunities, respondents and
ratings from ``response_tallies``; service-level sums from ``service_level_tallies``; plus the drivers. Each
summary copies the keys the rules above read (period moment, service, channel, office, left-out and test flags);
a transaction's channel still comes from its post-call survey at query time (:func:`post_calls`, a few rows by
index). The constants of the rules (``TEST_CHANNELS``, ``IVR_HEARD_PHASES``, ``LEFT_OUT_DECISION``,
``FAILED_STATES``) are defined once, in :mod:`engine.store.models.reporting`: the filters here read them, and the
triggers' SQL is generated from them (:mod:`engine.store.report_triggers`). ``tests/test_reports_summary.py``
computes every figure again from the raw rows (its oracle) and proves them equal, before and after later changes.

Groups are :class:`Key` tuples ``(service_id, channel, office_id, survey_id)``: ``channel``, ``office_id`` and
``survey_id`` are ``None`` when the caller did not ask to split by them (``by`` holds any of ``"channel"``,
``"office"``, ``"survey"``; ``()`` is per service). Channels are engine names (``sms``, ``ivr`` ...), offices
``offices.id`` (``None``: no office coded), surveys ``surveys.id`` (the survey recorded with the transaction: for
customers, opportunities and service levels the transaction's, for responses the response's; ``None``: stored
before surveys were recorded).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    distinct,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Subquery

from engine.channels import A11_VOCABULARY, installed_channels
from engine.common.limits import MAX_NUMBER
from engine.reporting.fiscal import FiscalQuarter, day_bounds, local_midnight
from engine.runtime import Runtime
from engine.store.models import (
    Answer,
    AnswerChoice,
    Decision,
    Invitation,
    InvitationState,
    Response,
    ResponseTally,
    Transaction,
)
from engine.store.models.reporting import (
    FAILED_STATES,
    IVR_HEARD_PHASES,
    LEFT_OUT_DECISION,
    TALLIED_TAGS,
    TEST_CHANNELS,
    InvitationTally,
    ServiceLevelTally,
)

# Engine channel names → the A-11 channel vocabulary (SPEC §6.1): each installed channel states its own
# (``Channel.a11_channel``); these are the engine's own names besides. ``web``: a survey from the agency's own site.
ENGINE_A11_CHANNELS = {"web": "website"}
# Report order of the A-11 channels.
A11_CHANNEL_ORDER = A11_VOCABULARY
RATING_TAGS = ("satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency", "employee")
DRIVERS = ("effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other")
# Driver question tags → the side they count on (an "improve" question counts as negative, SPEC §6.1).
DRIVER_SIDES = {"drivers_positive": "positive", "drivers_negative": "negative", "drivers_improve": "negative"}
DIMENSIONS = ("channel", "office", "survey")


def a11_channel(channel: str | None) -> str | None:
    """The A-11 name of an engine channel (``sms`` → ``sms_text_messages``), as the channel states it; None for a
    channel A-11 has no name for (``console``) or one not installed."""
    found = installed_channels().get(channel or "")
    if found is not None:
        return found.a11_channel
    return ENGINE_A11_CHANNELS.get(channel or "")


def tune_for_reports(session: Session) -> None:
    """On PostgreSQL, give this transaction's report queries room: hash joins of millions of rows in memory
    rather than spilled to disk (``work_mem``), and no JIT compilation (it costs more than it saves on queries of
    a few seconds). ``SET LOCAL`` ends with the transaction; nothing changes on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
        session.execute(text("SET LOCAL jit = off"))


REPORT_WORK_MEM = "128MB"


# -- the scope: which services, which period ------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One service's period as UTC instants [start, end)."""

    service_id: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Scope:
    """What a report covers: each service's window, and whether test/console data is let in (spam never is)."""

    windows: tuple[Window, ...]
    include_test: bool = False

    @property
    def service_ids(self) -> list[int]:
        return sorted({w.service_id for w in self.windows})

    def moment_in(self, service_column: Any, moment: Any) -> ColumnElement[bool]:
        """``moment`` inside its service's window (services sharing bounds are tested together)."""
        groups: dict[tuple[datetime, datetime], list[int]] = {}
        for w in self.windows:
            groups.setdefault((w.start, w.end), []).append(w.service_id)
        if not groups:
            return false()
        return or_(*(and_(service_column.in_(ids), moment >= start, moment < end)
                     for (start, end), ids in sorted(groups.items())))  # fmt: skip


Period = FiscalQuarter | tuple[date, date]


def resolve_services(rt: Runtime, services: Iterable[str | int] | None) -> list[str]:
    """Service slugs from slugs or ids (None: every configured service); an unknown one raises KeyError."""
    by_id = {id_: slug for slug, id_ in rt.service_ids.items()}
    if services is None:
        return sorted(rt.catalog.services)
    slugs = []
    for s in services:
        slug = by_id.get(s) if isinstance(s, int) else s
        if slug is None or slug not in rt.catalog.services or slug not in rt.service_ids:
            raise KeyError(f"unknown service: {s}")
        slugs.append(slug)
    return sorted(set(slugs))


def period_bounds(period: Period, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A fiscal quarter, or local calendar days [first, end), as UTC instants in ``zone``."""
    if isinstance(period, FiscalQuarter):
        return period.bounds(zone)
    first, end = period
    return day_bounds(first, end, zone)


def scope_for(rt: Runtime, services: Iterable[str | int] | None, period: Period, include_test: bool = False) -> Scope:
    """The scope of ``services`` (slugs or ids; None: all) over ``period`` in each service's own time zone."""
    windows = []
    for slug in resolve_services(rt, services):
        start, end = period_bounds(period, rt.catalog.services[slug].timezone)
        windows.append(Window(rt.service_ids[slug], start, end))
    return Scope(tuple(windows), include_test)


def first_channels(rt: Runtime, scope: Scope) -> dict[int, str]:
    by_id = {id_: slug for slug, id_ in rt.service_ids.items()}
    return {sid: rt.catalog.services[by_id[sid]].channels[0] for sid in scope.service_ids}


# -- the building blocks: counted rows as subqueries ----------------------------------------------------------


def _not_test(include_test: bool, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return true() if include_test else and_(*conditions)


def post_calls() -> Subquery:
    """The channel of a post-call survey of each transaction that has one (a response with a transaction and no
    invitation, not spam): few rows, found by ``ix_responses_post_call``; joined, not looked up per transaction."""
    return (
        select(Response.transaction_id.label("transaction_id"), func.min(Response.channel).label("channel"))
        .where(Response.invitation_id.is_(None), Response.transaction_id.is_not(None),
               Response.suspected_spam.is_(False))
        .group_by(Response.transaction_id)
        .subquery("post_calls")
    )  # fmt: skip


def transaction_channel(
    rt: Runtime, scope: Scope, post_call: Any, stored: Any, service: Any, source: Any = None
) -> ColumnElement[Any]:
    """A transaction's channel: its post-call survey's, else the one stored at intake, else the channel that made it
    (``source``: a post-call hand-off reports its caller's transaction with the channel's name, and a caller it did
    not survey was a customer on the phone all the same, SPEC §2 rule 5), else the service's first."""
    firsts = first_channels(rt, scope)
    first = case(firsts, value=service, else_=None) if firsts else literal(None)
    makers = sorted(name for name, channel in rt.channels.channels.items() if not channel.test_only)
    made_by = case((source.in_(makers), source), else_=None) if source is not None and makers else literal(None)
    return func.coalesce(post_call, stored, made_by, first)


def counted_transactions(rt: Runtime, scope: Scope) -> Subquery:
    """Counted transactions: ``transaction_id, service_id, channel, office_id, moment``."""
    tx = Transaction
    calls = post_calls()
    # Intake stores the invitation's channel in ``transactions.channel`` (the same rule-5 choice; dispatch never
    # switches channels), so no join to the invitations is needed for it, nor for test data: an invitation is
    # test data exactly when its transaction is or its channel is test-only (console).
    channel = transaction_channel(rt, scope, calls.c.channel, tx.channel, tx.service_id, tx.source)
    query = (
        select(
            tx.id.label("transaction_id"),
            tx.service_id.label("service_id"),
            channel.label("channel"),
            tx.office_id.label("office_id"),
            tx.completed_at.label("moment"),
            tx.decision.label("decision"),
            tx.survey_id.label("survey_id"),
        )
        .outerjoin(calls, calls.c.transaction_id == tx.id)
        .where(
            scope.moment_in(tx.service_id, tx.completed_at),
            tx.decision != LEFT_OUT_DECISION,
            _not_test(
                scope.include_test,
                tx.test.is_(False),
                or_(tx.channel.is_(None), tx.channel.not_in(TEST_CHANNELS)),
            ),
        )
    )
    return query.subquery("counted_transactions")


def counted_invitations(scope: Scope) -> Subquery:
    """Counted invitations (all states): ``invitation_id, transaction_id, service_id, channel, office_id, state,
    sent_at, moment`` (the moment of its transaction)."""
    tx = Transaction
    query = (
        select(
            Invitation.id.label("invitation_id"),
            Invitation.transaction_id.label("transaction_id"),
            Invitation.service_id.label("service_id"),
            Invitation.channel.label("channel"),
            tx.office_id.label("office_id"),
            Invitation.state.label("state"),
            Invitation.sent_at.label("sent_at"),
            tx.completed_at.label("moment"),
            tx.survey_id.label("survey_id"),
        )
        .join(tx, tx.id == Invitation.transaction_id)
        .where(
            scope.moment_in(tx.service_id, tx.completed_at),
            tx.decision != LEFT_OUT_DECISION,
            _not_test(
                scope.include_test,
                Invitation.test.is_(False),
                tx.test.is_(False),
                Invitation.channel.not_in(TEST_CHANNELS),
            ),
        )
    )
    return query.subquery("counted_invitations")


def sent_not_failed(inv: Subquery) -> ColumnElement[bool]:
    """An invitation that is an opportunity: sent, and not reported failed since."""
    return and_(inv.c.sent_at.is_not(None), inv.c.state.not_in(FAILED_STATES))


def counted_responses(scope: Scope) -> Subquery:
    """Counted responses (answered or not): ``response_id, service_id, channel, office_id, moment, transaction_id,
    invitation_id, kiosk_device_id, started_at, completed_at, heard_first`` (a post-call caller who heard the first
    question), ``answers`` (how many) and the rating of each tallied tag (``satisfaction`` … ``employee``).

    The answer count and ratings come from ``response_tallies`` (kept by triggers on ``answers``; see
    :mod:`engine.store.models.reporting`): one narrow row per response instead of every answer.
    """
    tx = Transaction
    r = Response
    t = ResponseTally
    moment = func.coalesce(tx.completed_at, r.started_at)
    answers = func.coalesce(t.answers, 0)
    heard = case(
        (r.invitation_id.is_not(None), false()),
        else_=or_(r.state["ivr_phase"].as_string().in_(IVR_HEARD_PHASES), answers > 0),
    )
    query = (
        select(
            r.id.label("response_id"),
            r.service_id.label("service_id"),
            r.channel.label("channel"),
            r.office_id.label("office_id"),
            moment.label("moment"),
            r.transaction_id.label("transaction_id"),
            r.invitation_id.label("invitation_id"),
            r.kiosk_device_id.label("kiosk_device_id"),
            r.started_at.label("started_at"),
            r.completed_at.label("completed_at"),
            heard.label("heard_first"),
            answers.label("answers"),
            r.survey_id.label("survey_id"),
            *(getattr(t, tag).label(tag) for tag in TALLIED_TAGS),
        )
        .outerjoin(tx, tx.id == r.transaction_id)
        .outerjoin(t, t.response_id == r.id)
        .where(
            r.suspected_spam.is_(False),
            or_(
                and_(r.transaction_id.is_not(None), scope.moment_in(tx.service_id, tx.completed_at)),
                and_(r.transaction_id.is_(None), scope.moment_in(r.service_id, r.started_at)),
            ),
            or_(tx.id.is_(None), tx.decision != LEFT_OUT_DECISION),
            _not_test(
                scope.include_test,
                r.test.is_(False),
                or_(tx.id.is_(None), tx.test.is_(False)),
                r.channel.not_in(TEST_CHANNELS),
            ),
        )
    )
    return query.subquery("counted_responses")


def respondents(scope: Scope) -> Subquery:
    """Counted responses with at least one answer (the same columns as :func:`counted_responses`)."""
    resp = counted_responses(scope)
    return select(*resp.c).where(resp.c.answers > 0).subquery("respondents")


# -- grouping ---------------------------------------------------------------------------------------------------


class Key(NamedTuple):
    """A group of a report: a service, and the channel (engine name), office id and survey id when split by them
    (the survey: ``surveys.id`` recorded with the row, None for rows stored before surveys were recorded)."""

    service_id: int
    channel: str | None = None
    office_id: int | None = None
    survey_id: int | None = None


def _check_by(by: Sequence[str]) -> tuple[str, ...]:
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)}: choose among {', '.join(DIMENSIONS)}")
    return tuple(by)


def _group_columns(sub: Subquery, by: Sequence[str]) -> list[Any]:
    by = _check_by(by)
    return [
        sub.c.service_id,
        sub.c.channel if "channel" in by else literal(None).label("g_channel"),
        sub.c.office_id if "office" in by else literal(None).label("g_office"),
        sub.c.survey_id if "survey" in by else literal(None).label("g_survey"),
    ]


def _key(row: Sequence[Any]) -> Key:
    return Key(int(row[0]), row[1], row[2], row[3])


def _grouped_counts(session: Session, sub: Subquery, by: Sequence[str], *where: Any) -> dict[Key, int]:
    cols = _group_columns(sub, by)
    query = select(*cols, func.count()).select_from(sub).where(*where).group_by(*cols)
    return {_key(row): int(row[4]) for row in session.execute(query)}


# -- the aggregates ---------------------------------------------------------------------------------------------


@dataclass
class Volumes:
    customers: int = 0
    opportunities: int = 0
    respondents: int = 0

    @property
    def response_rate(self) -> float | None:
        """Respondents / opportunities; None when there was no opportunity."""
        return self.respondents / self.opportunities if self.opportunities else None


def volumes(rt: Runtime, session: Session, scope: Scope, by: Sequence[str] = ("channel",)) -> dict[Key, Volumes]:
    """Customers, opportunities and respondents per group (SPEC §6)."""
    out = _transaction_pass(rt, session, scope, by)
    for key, (v, _) in _response_pass(session, scope, by).items():
        total = out.setdefault(key, Volumes())
        total.customers += v.customers
        total.opportunities += v.opportunities
        total.respondents += v.respondents
    return out


def _transaction_pass(rt: Runtime, session: Session, scope: Scope, by: Sequence[str]) -> dict[Key, Volumes]:
    """Customers (one scan of the counted transactions) and invitations that are opportunities (one scan of the
    counted invitation tallies, kept by triggers; see :mod:`engine.store.models.reporting`)."""
    tx = counted_transactions(rt, scope)
    out = {key: Volumes(n, 0, 0) for key, n in _grouped_counts(session, tx, by).items()}
    inv = counted_invitation_tallies(rt, scope)
    for key, n in _grouped_counts(session, inv, by, inv.c.opportunity.is_(True)).items():
        out.setdefault(key, Volumes()).opportunities += n
    return out


def _counted_copies(
    rt: Runtime, scope: Scope, t: Any, leading: Sequence[Any], trailing: Sequence[Any], name: str
) -> Subquery:
    """Rows of a per-transaction copy table (``invitation_tallies``, ``service_level_tallies``) whose transaction
    counts in ``scope``: in its period, not ``invalid``, not test data. ``channel`` (the transaction's) stands
    between the ``leading`` and the ``trailing`` columns."""
    calls = post_calls()
    channel = transaction_channel(rt, scope, calls.c.channel, t.channel, t.service_id)
    query = (
        select(*leading, channel.label("channel"), *trailing)
        .outerjoin(calls, calls.c.transaction_id == t.transaction_id)
        .where(
            scope.moment_in(t.service_id, t.moment),
            t.left_out.is_(False),
            _not_test(scope.include_test, t.test.is_(False)),
        )
    )
    return query.subquery(name)


def counted_invitation_tallies(rt: Runtime, scope: Scope) -> Subquery:
    """The tallies of the sent invitations of the counted transactions, not test data: ``invitation_id,
    service_id, channel`` (the transaction's), ``office_id, opportunity`` (not failed since)."""
    t = InvitationTally
    return _counted_copies(rt, scope, t, (t.invitation_id, t.service_id), (t.office_id, t.opportunity, t.survey_id),
                           "counted_invitation_tallies")  # fmt: skip


def counted_service_level_tallies(rt: Runtime, scope: Scope) -> Subquery:
    """The tallies of the service-level indicators of the counted transactions: ``service_id, channel, office_id,
    name, value``."""
    t = ServiceLevelTally
    return _counted_copies(rt, scope, t, (t.service_id,), (t.office_id, t.name, t.value, t.survey_id),
                           "counted_service_level_tallies")  # fmt: skip


POINTS = (1, 2, 3, 4, 5)


def counted_tallies(scope: Scope) -> Subquery:
    """The tally rows of the counted responses (answered or not), read from ``response_tallies`` alone (its copied
    keys, kept by triggers; see :mod:`engine.store.models.reporting`): ``response_id, service_id, channel, office_id,
    moment, has_transaction, invited, heard, answers`` and the rating of each tallied tag. The same responses as
    :func:`counted_responses` (``tests/test_reports_summary.py`` proves it), without joining anything."""
    t = ResponseTally
    query = select(
        t.response_id, t.service_id, t.channel, t.office_id, t.moment, t.has_transaction, t.invited, t.heard,
        t.answers, t.survey_id, *(getattr(t, tag) for tag in TALLIED_TAGS),
    ).where(
        t.left_out.is_(False),
        scope.moment_in(t.period_service_id, t.moment),
        _not_test(scope.include_test, t.test.is_(False)),
    )  # fmt: skip
    return query.subquery("counted_tallies")


def _response_pass(
    session: Session, scope: Scope, by: Sequence[str], tags: Sequence[str] = RATING_TAGS
) -> dict[Key, tuple[Volumes, dict[str, Rating]]]:
    """One scan of the counted tallies: kiosk customers, post-call and kiosk opportunities, respondents, and the
    count of ratings at each point of each tag."""
    resp = counted_tallies(scope)
    no_tx = resp.c.has_transaction.is_(False)
    opportunity = and_(resp.c.invited.is_(False), or_(no_tx, resp.c.heard.is_(True), resp.c.answers > 0))
    return _response_sums(session, resp, by, tags, no_tx, opportunity)


def _response_sums(
    session: Session,
    resp: Subquery,
    by: Sequence[str],
    tags: Sequence[str],
    no_tx: ColumnElement[bool],
    opportunity: ColumnElement[bool],
) -> dict[Key, tuple[Volumes, dict[str, Rating]]]:
    cols = _group_columns(resp, by)
    points = [(tag, point) for tag in tags for point in POINTS]
    query = (
        select(
            *cols,
            func.count().filter(no_tx),
            func.count().filter(opportunity),
            func.count().filter(resp.c.answers > 0),
            *(func.count().filter(resp.c[tag] == point) for tag, point in points),
        )
        .select_from(resp)
        .group_by(*cols)
    )
    out: dict[Key, tuple[Volumes, dict[str, Rating]]] = {}
    for row in session.execute(query):
        per_tag: dict[str, Rating] = {}
        for (tag, point), n in zip(points, row[7:], strict=True):
            if n:
                per_tag.setdefault(tag, Rating({})).counts[point] = int(n)
        out[_key(row)] = (Volumes(int(row[4] or 0), int(row[5] or 0), int(row[6] or 0)), per_tag)
    return out


@dataclass
class Rating:
    """The answers of one rating tag in one group: the count at each point 1-5."""

    counts: dict[int, int]

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @property
    def total(self) -> int:
        return sum(point * c for point, c in self.counts.items())

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def agree(self) -> int:
        return self.counts.get(4, 0) + self.counts.get(5, 0)

    @property
    def agree_share(self) -> float | None:
        return self.agree / self.n if self.n else None


def ratings(
    session: Session, scope: Scope, by: Sequence[str] = ("channel",), tags: Sequence[str] = RATING_TAGS
) -> dict[Key, dict[str, Rating]]:
    """Per group and rating tag, the count of answers at each point (1 = worst … 5 = best; thumbs: 1 and 5).

    Read from the tallies (``tests/test_reports_summary.py`` proves them equal to the raw answers); a tag that is
    not tallied raises ValueError.
    """
    untallied = [t for t in tags if t not in TALLIED_TAGS]
    if untallied:
        raise ValueError(f"not a tallied rating tag: {', '.join(untallied)}")
    return {key: per_tag for key, (_, per_tag) in _response_pass(session, scope, by, tags).items() if per_tag}


@dataclass
class Figures:
    """Everything the §6.1 file needs, per group, from three passes over the store."""

    volumes: dict[Key, Volumes]
    ratings: dict[Key, dict[str, Rating]]
    drivers: dict[Key, dict[tuple[str, str], int]]
    service_levels: dict[Key, dict[str, tuple[float, int]]]


def figures(rt: Runtime, session: Session, scope: Scope, by: Sequence[str] = ("channel",)) -> Figures:
    """Volumes, ratings, drivers and service-level sums per group: what :func:`volumes`, :func:`ratings`,
    :func:`drivers` and :func:`service_level_sums` give, with one pass over the responses for the first two."""
    out = _transaction_pass(rt, session, scope, by)
    per_response = _response_pass(session, scope, by)
    ratings: dict[Key, dict[str, Rating]] = {}
    for key, (v, per_tag) in per_response.items():
        total = out.setdefault(key, Volumes())
        total.customers += v.customers
        total.opportunities += v.opportunities
        total.respondents += v.respondents
        if per_tag:
            ratings[key] = per_tag
    return Figures(out, ratings, drivers(session, scope, by), service_level_sums(rt, session, scope, by))


def drivers(session: Session, scope: Scope, by: Sequence[str] = ("channel",)) -> dict[Key, dict[tuple[str, str], int]]:
    """Per group, respondents who chose each driver: ``{("positive" | "negative", driver): count}``."""
    resp = counted_responses(scope)
    cols = _group_columns(resp, by)
    side = case(DRIVER_SIDES, value=Answer.a11_tag)
    query = (
        select(*cols, side, AnswerChoice.driver, func.count(distinct(resp.c.response_id)))
        .select_from(resp)
        .join(Answer, Answer.response_id == resp.c.response_id)
        .join(AnswerChoice, AnswerChoice.answer_id == Answer.id)
        .where(Answer.a11_tag.in_(list(DRIVER_SIDES)), AnswerChoice.driver.is_not(None))
        .group_by(*cols, side, AnswerChoice.driver)
    )
    out: dict[Key, dict[tuple[str, str], int]] = {}
    for row in session.execute(query):
        out.setdefault(_key(row), {})[(row[4], row[5])] = int(row[6])
    return out


def driver_questions_answered(
    session: Session, scope: Scope, by: Sequence[str] = ("channel",)
) -> dict[Key, dict[str, int]]:
    """Per group, respondents who answered a driver question of each side (they were offered every choice)."""
    resp = counted_responses(scope)
    cols = _group_columns(resp, by)
    side = case(DRIVER_SIDES, value=Answer.a11_tag)
    query = (
        select(*cols, side, func.count(distinct(resp.c.response_id)))
        .select_from(resp)
        .join(Answer, Answer.response_id == resp.c.response_id)
        .where(Answer.a11_tag.in_(list(DRIVER_SIDES)))
        .group_by(*cols, side)
    )
    out: dict[Key, dict[str, int]] = {}
    for row in session.execute(query):
        out.setdefault(_key(row), {})[row[4]] = int(row[5])
    return out


def reportable(value: Any) -> ColumnElement[bool]:
    """A stored service-level value that enters a mean: finite and within ±10^12 (SPEC §2 rule 11).

    Intake refuses anything else, but a value stored before (or written by other means) must never make a report
    fail: ``NaN``, ``±Infinity`` and out-of-range values are left out of the mean and of its count. (On PostgreSQL
    ``NaN`` sorts above every number and ``±Infinity`` beyond the bounds; on SQLite ``NaN`` is stored as NULL.)
    """
    return and_(value.is_not(None), value >= -float(MAX_NUMBER), value <= float(MAX_NUMBER))


def service_level_sums(
    rt: Runtime, session: Session, scope: Scope, by: Sequence[str] = ("channel",)
) -> dict[Key, dict[str, tuple[float, int]]]:
    """Per group and service-level indicator, (sum, count) over the group's counted transactions (one scan of the
    service-level tallies; ``tests/test_reports_summary.py`` proves them equal to the same sums of the raw rows)."""
    sl = counted_service_level_tallies(rt, scope)
    cols = _group_columns(sl, by)
    query = (
        select(*cols, sl.c.name, func.sum(sl.c.value), func.count())
        .where(reportable(sl.c.value))
        .group_by(*cols, sl.c.name)
    )
    out: dict[Key, dict[str, tuple[float, int]]] = {}
    for row in session.execute(query):
        out.setdefault(_key(row), {})[row[4]] = (float(row[5]), int(row[6]))
    return out


@dataclass
class Funnel:
    """The delivery funnel of a service: transactions → sampled → sent → delivered → started → completed.

    ``sampled``: transactions past the sampling step (decided opted_out, no_channel, cooldown, cap_reached or
    scheduled); ``sent``: invitations handed to a provider; ``delivered``: invitations confirmed delivered (or
    answered); ``started`` / ``completed``: responses to transactions (invited or post-call) with at least one answer
    / completed. Kiosk sessions have no transaction and are counted apart (``kiosk_sessions``).
    """

    transactions: int = 0
    sampled: int = 0
    sent: int = 0
    delivered: int = 0
    started: int = 0
    completed: int = 0
    kiosk_sessions: int = 0


SAMPLED_DECISIONS = (Decision.OPTED_OUT, Decision.NO_CHANNEL, Decision.COOLDOWN, Decision.CAP_REACHED,
                     Decision.SCHEDULED)  # fmt: skip
DELIVERED_STATES = (InvitationState.DELIVERED.value, InvitationState.ANSWERED.value)


def funnel(rt: Runtime, session: Session, scope: Scope, by: Sequence[str] = ()) -> dict[Key, Funnel]:
    """The delivery funnel per group (default: per service)."""
    out: dict[Key, Funnel] = {}
    tx = counted_transactions(rt, scope)
    inv = counted_invitations(scope)
    answered = respondents(scope)
    parts = (
        ("transactions", _grouped_counts(session, tx, by)),
        ("sampled", _grouped_counts(session, tx, by, tx.c.decision.in_([d.value for d in SAMPLED_DECISIONS]))),
        ("sent", _grouped_counts(session, inv, by, inv.c.sent_at.is_not(None))),
        ("delivered", _grouped_counts(session, inv, by, inv.c.state.in_(DELIVERED_STATES))),
        ("started", _grouped_counts(session, answered, by, answered.c.transaction_id.is_not(None))),
        (
            "completed",
            _grouped_counts(
                session, answered, by, answered.c.transaction_id.is_not(None), answered.c.completed_at.is_not(None)
            ),
        ),
        ("kiosk_sessions", _grouped_counts(session, answered, by, answered.c.transaction_id.is_(None))),
    )
    for field, counts in parts:
        for key, n in counts.items():
            f = out.setdefault(key, Funnel())
            setattr(f, field, getattr(f, field) + n)
    return out


# -- over time --------------------------------------------------------------------------------------------------

BUCKETS = ("day", "week", "month")


def bucket_starts(first: date, end: date, bucket: str) -> list[date]:
    """The local first days of the buckets that cover [first, end): days, ISO weeks (Monday) or months."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    if bucket == "day":
        start = first
    elif bucket == "week":
        start = first - timedelta(days=first.weekday())
    else:
        start = first.replace(day=1)
    starts = []
    day = start
    while day < end:
        starts.append(day)
        if bucket == "day":
            day += timedelta(days=1)
        elif bucket == "week":
            day += timedelta(days=7)
        else:
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return starts


def _bucket_index(moment: Any, edges: Sequence[datetime]) -> ColumnElement[Any]:
    """The index of the bucket ``moment`` falls in, given the UTC instants that end each bucket (portable SQL)."""
    return case(*((moment < edge, literal(i)) for i, edge in enumerate(edges)), else_=literal(len(edges)))


@dataclass
class TrendPoint:
    """One bucket of one tag: its first local day, the count of answers, the share that agrees, and the mean of the
    answers given on a 5-point scale (None without one: a thumbs up is no 5 on a scale, see :func:`trend`).

    ``mean_of`` is (sum of the points, count of the answers) behind the mean, whole numbers: a page rounds the mean
    from them as the §6.1 file rounds its means (half up), not from the float (3.125 would show as 3.12)."""

    day: date
    n: int
    mean: float | None
    agree_share: float | None
    mean_of: tuple[int, int] = (0, 0)


def trend(
    rt: Runtime,
    session: Session,
    service: str | int,
    first: date,
    end: date,
    bucket: str = "day",
    tags: Sequence[str] = ("satisfaction", "trust"),
    include_test: bool = False,
    thumbs: Mapping[str, Collection[int | None]] | None = None,
) -> dict[str, list[TrendPoint]]:
    """Per tag, one point per day / ISO week / month of [first, end) in the service's time zone (empty buckets
    included, with n = 0), from the counted responses of that service.

    Buckets at the edges are cut to [first, end): a week bucket that starts before ``first`` only holds answers
    from ``first`` on. ``thumbs``: per tag, the surveys (``surveys.id``; None: responses stored before surveys were
    recorded) that asked it as thumbs up/down: their answers count in ``n`` and the share agreeing, never in the
    mean, as the §6.1 file has them (a thumbs row files its 1s and 5s with no mean).
    """
    (slug,) = resolve_services(rt, [service])
    zone = rt.catalog.services[slug].timezone
    starts = bucket_starts(first, end, bucket)
    scope = scope_for(rt, [slug], (first, end), include_test)
    edges = [local_midnight(s, zone) for s in starts[1:]] + [local_midnight(end, zone)]
    resp = counted_responses(scope)
    index = _bucket_index(resp.c.moment, edges).label("bucket")
    query = (
        select(index, Answer.a11_tag, resp.c.survey_id, Answer.value, func.count())
        .select_from(resp)
        .join(Answer, Answer.response_id == resp.c.response_id)
        .where(Answer.a11_tag.in_(tags), Answer.value.is_not(None))
        .group_by(index, Answer.a11_tag, resp.c.survey_id, Answer.value)
    )
    thumbs = thumbs or {}
    counts: dict[tuple[str, int], Rating] = {}
    scaled: dict[tuple[str, int], Rating] = {}
    for i, tag, survey, value, n in session.execute(query):
        into = [counts] if survey in thumbs.get(tag, ()) else [counts, scaled]
        for found in into:
            rating = found.setdefault((tag, int(i)), Rating({}))
            rating.counts[int(value)] = rating.counts.get(int(value), 0) + int(n)
    out: dict[str, list[TrendPoint]] = {}
    for tag in tags:
        points = []
        for i, day in enumerate(starts):
            r, s = counts.get((tag, i), Rating({})), scaled.get((tag, i), Rating({}))
            points.append(TrendPoint(day, r.n, s.mean, r.agree_share, (s.total, s.n)))
        out[tag] = points
    return out


# -- comments ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comment:
    response_id: str
    service_id: int
    channel: str
    office_id: int | None
    answered_at: datetime
    text: str  # masked


def comments(session: Session, scope: Scope, limit: int = 20) -> list[Comment]:
    """The newest free-text answers of the scope, phone numbers and email addresses masked."""
    from engine.reporting.masking import mask_contacts

    resp = counted_responses(scope)
    query = (
        select(resp.c.response_id, resp.c.service_id, resp.c.channel, resp.c.office_id, Answer.answered_at, Answer.text)
        .select_from(resp)
        .join(Answer, Answer.response_id == resp.c.response_id)
        .where(Answer.a11_tag == "free_text", Answer.text.is_not(None), Answer.text != "")
        .order_by(Answer.answered_at.desc(), Answer.id.desc())
        .limit(limit)
    )
    return [
        Comment(str(rid), int(sid), channel, office_id, at, mask_contacts(text or ""))
        for rid, sid, channel, office_id, at, text in session.execute(query)
    ]


def query_of(sub: Subquery) -> Select[Any]:
    """A plain ``SELECT *`` of a building block, to inspect or count it."""
    return select(sub)
