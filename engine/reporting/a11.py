"""The §6.1 quarterly collection: one row per service × channel × survey used (optionally × office), every
column in spec order.

Which rows: for each service in scope, every channel it is configured with (``channels`` in services.yaml), plus
``automated_phone`` when it lists ``ivr_numbers`` (post-call surveys), ``self_service_kiosk`` when a kiosk device
was ever enrolled for it, plus any channel that holds data in the quarter; the console channel has no A-11 name
and never appears. With ``by_office`` a channel has one row per office that holds data for it (a row with an
empty office for data coded with none), and one row with an empty office when it holds no data at all.
Rows are ordered by service slug, then channel (automated_phone, sms_text_messages, email, self_service_kiosk,
website), then survey (in the order the surveys were first used), then office code.

The survey: each transaction, invitation and response records the survey it was decided, sent or answered under
(``engine.catalog.surveys``: a flow version and the effective PRA block). A channel's data is split by it, so a quarter in
which a service changed flow or control number has one row per channel and survey, each described by its own
flow version (``survey_title``, ``survey_type``, ``trust_question_text`` as asked, the rating and driver columns
it fills) and PRA block (``omb_control_number``), never by today's configuration. A channel without data in the
quarter takes the survey the service's data in that quarter used last (today's when the quarter holds none), so a
past quarter re-runs to the same bytes after the configuration changed. Rows stored before surveys were recorded
(no survey id) are described by the service's survey today.

Cells: counts are integers; means are Decimals with 2 places and fractions Decimals with 4 places (rounded half
up from exact integer sums, so SQLite and PostgreSQL give the same digits); ``None`` is an empty cell. A rating
tag the survey's flow does not ask leaves its cells empty; a thumbs question fills ``_1``, ``_5``, ``_n`` and
``_agree_pct`` only; driver cells are empty for a side the flow has no choose-all question for. The
``sli_<name>_mean`` columns are the names of the service-level indicators found on the report's counted
transactions (every row of the report, so one file has one header), sorted; a stored value that is not finite or
lies beyond ±10^12 is left out of its mean (``what_counts.reportable``). ``bureau``, ``service_provider`` (from the
service config) and ``reflection`` (the quarter's text written on the dashboard) come last.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.i18n import translate
from engine.reporting import what_counts as wc
from engine.reporting.fiscal import FiscalQuarter
from engine.runtime import Runtime
from engine.store.models import FlowVersion, KioskDevice, Office, Reflection, Survey
from engine.surveys.flows import Flow, parse_flow

BASE_COLUMNS = (
    "fiscal_year",
    "quarter",
    "agency",
    "service_slug",
    "service_name",
    "service_type",
    "service_stage",
)
CHANNEL_COLUMNS = (
    "channel",
    "transaction_point",
    "survey_title",
    "survey_type",
    "omb_control_number",
    "trust_question_text",
    "volume_of_customers",
    "volume_of_customers_provided_survey_opportunity",
    "volume_of_respondents",
    "response_rate",
)
POINT_SUFFIXES = ("1", "2", "3", "4", "5", "n", "mean", "agree_pct")
THUMBS_SUFFIXES = ("1", "5", "n", "agree_pct")
TAIL_COLUMNS = ("bureau", "service_provider", "reflection")
MEAN_PLACES = Decimal("0.01")
SHARE_PLACES = Decimal("0.0001")
Cell = int | Decimal | str | None


def mean_cell(total: int | float | Decimal, n: int) -> Decimal | None:
    """``total / n`` rounded half up to 2 places (None when n = 0)."""
    if not n:
        return None
    return (Decimal(total) / Decimal(n)).quantize(MEAN_PLACES, rounding=ROUND_HALF_UP)


def share_cell(part: int, whole: int) -> Decimal | None:
    """``part / whole`` as a fraction rounded half up to 4 places (None when whole = 0)."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(SHARE_PLACES, rounding=ROUND_HALF_UP)


def exact_share(part: int, whole: int) -> Decimal | None:
    """``part / whole`` unrounded (28 significant digits; None when whole = 0), for a page to round once."""
    if not whole:
        return None
    return Decimal(part) / Decimal(whole)


def percent_cell(share: float | Decimal, places: int) -> Decimal:
    """A share as a percentage rounded half up to ``places`` decimals, as the file rounds its cells, and rounded once:
    from the share itself (a float through its shortest repr, exact for every share that is a tie), never from a share
    already rounded to the file's 4 places (4/19 is 0.2105 in the file: 21.0 % from that, 21.1 % from 4/19)."""
    exact = Decimal(repr(share)) if isinstance(share, float) else Decimal(share)
    return (exact * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def rating_columns() -> list[str]:
    return [f"{tag}_{suffix}" for tag in wc.RATING_TAGS for suffix in POINT_SUFFIXES]


def driver_columns() -> list[str]:
    return [f"{side}_{driver}" for side in ("positive", "negative") for driver in wc.DRIVERS]


def columns(by_office: bool, sli_names: Iterable[str]) -> list[str]:
    """The §6.1 header, in spec order."""
    return [
        *BASE_COLUMNS,
        *(("office",) if by_office else ()),
        *CHANNEL_COLUMNS,
        *rating_columns(),
        *driver_columns(),
        *(f"sli_{name}_mean" for name in sorted(sli_names)),
        *TAIL_COLUMNS,
    ]


@dataclass
class Collection:
    """A §6.1 file: its quarter, header and rows (``{column: cell}``, every column present in every row)."""

    fiscal_year: int
    quarter: int
    columns: list[str]
    rows: list[dict[str, Cell]] = field(default_factory=list)


def survey_type(flow: Flow) -> str | None:
    trust = next((q for q in flow.questions if q.a11 == "trust"), None)
    if trust is None:
        return None
    return "thumbs_up_down" if trust.type == "thumbs" else "likert_scale"


def trust_question_text(flow: Flow, service_name: str) -> str | None:
    trust = next((q for q in flow.questions if q.a11 == "trust"), None)
    if trust is None:
        return None
    return translate("en", trust.text, service=service_name)


def _row_channels(rt: Runtime, session: Session, slug: str, data_channels: set[str]) -> list[str]:
    """The A-11 channels a service has rows for (see the module docstring)."""
    service = rt.catalog.services[slug]
    engine_channels = set(service.channels) | data_channels
    if service.ivr_numbers:
        engine_channels.add("ivr")
    kiosk = session.execute(
        select(KioskDevice.id).where(KioskDevice.service_id == rt.service_ids[slug]).limit(1)
    ).first()
    if kiosk is not None:
        engine_channels.add("kiosk")
    names = {wc.a11_channel(c) for c in engine_channels} - {None}
    return [c for c in wc.A11_CHANNEL_ORDER if c in names]


@dataclass(frozen=True)
class SurveyUsed:
    """What the survey columns of a row show: the flow version used and its PRA block's control number."""

    flow: Flow
    omb_control_number: str


def surveys_used(session: Session, ids: Iterable[int]) -> dict[int, SurveyUsed]:
    """The recorded surveys ``ids``: each one's flow version (as published) and control number."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = (
        select(Survey.id, Survey.omb_control_number, FlowVersion.flow_id, FlowVersion.version, FlowVersion.definition)
        .join(FlowVersion, FlowVersion.id == Survey.flow_version_id)
        .where(Survey.id.in_(wanted))
    )
    out = {}
    for sid, omb, flow_id, version, definition in session.execute(query):
        if definition is not None:
            out[sid] = SurveyUsed(parse_flow(definition, f"{flow_id} v{version} (published)"), omb)
    return out


def reflections(session: Session, quarter: FiscalQuarter, service_ids: Iterable[int]) -> dict[int, str]:
    """The reflection text of each service for ``quarter`` (a service without one is left out)."""
    query = select(Reflection.service_id, Reflection.text).where(
        Reflection.fiscal_year == quarter.fiscal_year,
        Reflection.quarter == quarter.quarter,
        Reflection.service_id.in_(list(service_ids)),
    )
    return {int(sid): text for sid, text in session.execute(query)}


def collection(
    rt: Runtime,
    session: Session,
    quarter: FiscalQuarter,
    services: Iterable[str | int] | None = None,
    by_office: bool = False,
) -> Collection:
    """The §6.1 rows of ``quarter`` for ``services`` (slugs or ids; None: every configured service)."""
    scope = wc.scope_for(rt, services, quarter, include_test=False)
    by = ("channel", "office", "survey") if by_office else ("channel", "survey")
    wc.tune_for_reports(session)
    figures = wc.figures(rt, session, scope, by)
    volumes, ratings, drivers, slis = figures.volumes, figures.ratings, figures.drivers, figures.service_levels
    sli_names = sorted({name for per in slis.values() for name in per})
    office_codes = dict(session.execute(select(Office.id, Office.code)).tuples().all())
    header = columns(by_office, sli_names)
    out = Collection(quarter.fiscal_year, quarter.quarter, header)
    today = {sid: rt.survey_ids.get(slug) for slug, sid in rt.service_ids.items()}
    texts = reflections(session, quarter, scope.service_ids)

    # Group the data keys by (service, A-11 channel, survey, office): two engine channels never share an A-11 name
    # today, but summing keeps it right if they ever do. Data stored without a survey id counts under today's.
    keys_by_row: dict[tuple[int, str, int | None, int | None], list[wc.Key]] = {}
    for key in {*volumes, *ratings, *drivers, *slis}:
        label = wc.a11_channel(key.channel)
        if label is not None:
            survey = key.survey_id if key.survey_id is not None else today.get(key.service_id)
            keys_by_row.setdefault((key.service_id, label, survey, key.office_id), []).append(key)
    described = surveys_used(session, [s for (_, _, s, _) in keys_by_row if s is not None] +
                             [s for s in today.values() if s is not None])  # fmt: skip

    for slug in wc.resolve_services(rt, services):
        service = rt.catalog.services[slug]
        sid = rt.service_ids[slug]
        used = sorted({s for (k, _, s, _) in keys_by_row if k == sid and s is not None})
        fallback = used[-1] if used else today.get(sid)
        data_channels = {k.channel for k in {*volumes, *ratings} if k.service_id == sid and k.channel}
        for label in _row_channels(rt, session, slug, data_channels):
            found = sorted({s for (k, ch, s, _) in keys_by_row if k == sid and ch == label and s is not None})
            surveys: list[int | None] = list(found) if found else [fallback]
            for survey in surveys:
                used_survey = described.get(survey) if survey is not None else None
                flow = used_survey.flow if used_survey else rt.catalog.flow_of(service)
                omb = used_survey.omb_control_number if used_survey else rt.catalog.pra_of(service).omb_control_number
                offices = sorted(
                    {o for (k, ch, s, o) in keys_by_row if k == sid and ch == label and s == survey},
                    key=lambda o: (o is None, office_codes.get(o, "") if o is not None else ""),
                )
                for office in offices if by_office and offices else [None]:
                    keys = keys_by_row.get((sid, label, survey, office), [])
                    row = _row(rt, flow, slug, label, keys, volumes, ratings, drivers, slis, sli_names, quarter)
                    row["omb_control_number"] = omb
                    row["reflection"] = texts.get(sid)
                    if by_office:
                        row["office"] = office_codes.get(office) if office is not None else None
                    out.rows.append({column: row.get(column) for column in header})
    return out


def _row(
    rt: Runtime,
    flow: Flow,
    slug: str,
    label: str,
    keys: list[wc.Key],
    volumes: dict[wc.Key, wc.Volumes],
    ratings: dict[wc.Key, dict[str, wc.Rating]],
    drivers: dict[wc.Key, dict[tuple[str, str], int]],
    slis: dict[wc.Key, dict[str, tuple[float, int]]],
    sli_names: list[str],
    quarter: FiscalQuarter,
) -> dict[str, Cell]:
    service = rt.catalog.services[slug]
    volume = wc.Volumes()
    for key in keys:
        v = volumes.get(key)
        if v is not None:
            volume.customers += v.customers
            volume.opportunities += v.opportunities
            volume.respondents += v.respondents
    row: dict[str, Cell] = {
        "fiscal_year": quarter.fiscal_year,
        "quarter": quarter.quarter,
        "agency": service.agency,
        "service_slug": slug,
        "service_name": service.name,
        "service_type": service.service_type,
        "service_stage": service.service_stage,
        "channel": label,
        "transaction_point": service.transaction_point,
        "survey_title": flow.title,
        "survey_type": survey_type(flow),
        "trust_question_text": trust_question_text(flow, service.name),
        "volume_of_customers": volume.customers,
        "volume_of_customers_provided_survey_opportunity": volume.opportunities,
        "volume_of_respondents": volume.respondents,
        "response_rate": share_cell(volume.respondents, volume.opportunities),
        "bureau": service.bureau,
        "service_provider": service.service_provider,
    }
    asked = {q.a11: q for q in flow.questions if q.is_rating}
    for tag in wc.RATING_TAGS:
        question = asked.get(tag)
        if question is None:
            continue
        counts: dict[int, int] = {}
        for key in keys:
            rating = ratings.get(key, {}).get(tag)
            if rating is not None:
                for point, n in rating.counts.items():
                    counts[point] = counts.get(point, 0) + n
        r = wc.Rating(counts)
        cells: dict[str, Cell] = {str(p): counts.get(p, 0) for p in (1, 2, 3, 4, 5)}
        cells.update(n=r.n, mean=mean_cell(r.total, r.n), agree_pct=share_cell(r.agree, r.n))
        shown = THUMBS_SUFFIXES if question.type == "thumbs" else POINT_SUFFIXES
        for suffix in shown:
            row[f"{tag}_{suffix}"] = cells[suffix]
    tags = {q.a11 for q in flow.questions if q.type == "choose_all" or q.type == "choose_one"}
    sides = {side for tag, side in wc.DRIVER_SIDES.items() if tag in tags}
    for side in sides:
        for driver in wc.DRIVERS:
            row[f"{side}_{driver}"] = sum(drivers.get(key, {}).get((side, driver), 0) for key in keys)
    for name in sli_names:
        total, n = 0.0, 0
        for key in keys:
            s, c = slis.get(key, {}).get(name, (0.0, 0))
            total += s
            n += c
        row[f"sli_{name}_mean"] = mean_cell(Decimal(repr(total)) if n else 0, n)
    return row


def json_value(cell: Cell) -> Any:
    """A cell as a JSON value: numbers stay numbers, an empty cell is null."""
    if isinstance(cell, Decimal):
        return float(cell)
    return cell
