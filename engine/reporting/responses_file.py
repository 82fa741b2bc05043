"""The §6.2 response-level file: one row per respondent in Touchpoints' 17 upload columns, streamed.

The respondents are :func:`engine.reporting.what_counts.respondents` (so this file and the §6.1 counts agree);
one grouped query folds each response's answers into its row, read in batches (``yield_per``, a server-side
cursor on PostgreSQL) so memory stays flat however many rows a quarter holds. No contact data is read: the
free text is masked (:mod:`engine.reporting.masking`) and ``external_id`` is the response's UUID.

Cells: ``question_1`` the trust rating (1-5; a thumbs question 0 down / 1 up); a driver column is ``1`` chosen,
``0`` offered and not chosen, empty when not asked — a side counts as offered when the respondent answered its
question, or when the flow shows it on that channel after the respondent's rating (``show_if``: the trust or the
satisfaction rating, whichever the flow's driver questions follow); a flow
whose drivers are 5-point questions has no driver choices and leaves every driver column empty. The flow is the
version the response was answered on (its recorded survey, ``engine.catalog.surveys``; today's flow of the service for a
response stored before surveys were recorded). Rows come in the order (service slug, start of the response,
response id), the same on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from engine.reporting import what_counts as wc
from engine.reporting.a11 import surveys_used
from engine.reporting.fiscal import FiscalQuarter
from engine.reporting.masking import mask_contacts
from engine.runtime import Runtime
from engine.store.models import Answer, AnswerChoice, Service
from engine.surveys.flows import Flow

COLUMNS = (
    "external_id",
    "question_1",
    *(f"positive_{d}" for d in wc.DRIVERS),
    *(f"negative_{d}" for d in wc.DRIVERS),
    "question_4",
)
BATCH = 2000
# The ratings a driver question may be shown after (``flows validate``: the trust or the satisfaction rating).
SHOWN_AFTER = ("trust", "satisfaction")


def _side_of(tag: Any) -> Any:
    return case(wc.DRIVER_SIDES, value=tag, else_=None)


def _query(scope: wc.Scope) -> Any:
    resp = wc.respondents(scope)
    side = _side_of(Answer.a11_tag)
    chosen = [
        func.max(case((and_(side == s, AnswerChoice.driver == d), 1), else_=0)).label(f"{s}_{d}")
        for s in ("positive", "negative")
        for d in wc.DRIVERS
    ]
    answered = [func.max(case((side == s, 1), else_=0)).label(f"answered_{s}") for s in ("positive", "negative")]
    return (
        select(
            resp.c.response_id,
            resp.c.service_id,
            resp.c.channel,
            resp.c.survey_id,
            *(func.max(case((Answer.a11_tag == tag, Answer.value))).label(tag) for tag in SHOWN_AFTER),
            func.max(case((Answer.a11_tag == "free_text", Answer.text))).label("free_text"),
            *answered,
            *chosen,
        )
        .select_from(resp)
        .join(Service, Service.id == resp.c.service_id)
        .join(Answer, Answer.response_id == resp.c.response_id)
        .outerjoin(AnswerChoice, AnswerChoice.answer_id == Answer.id)
        .group_by(
            resp.c.response_id, resp.c.service_id, resp.c.channel, resp.c.survey_id, Service.slug, resp.c.started_at
        )
        .order_by(Service.slug, resp.c.started_at, resp.c.response_id)
    )


def _offered(flow: Flow, channel: str, rated: dict[str, int | None], side: str) -> bool:
    """Whether the flow shows a driver question of ``side`` on ``channel`` after these ratings (by A-11 tag)."""
    tags = [tag for tag, s in wc.DRIVER_SIDES.items() if s == side]
    ratings = {q.id: rated.get(q.a11) for q in flow.questions if q.a11 in SHOWN_AFTER and q.is_rating}
    return any(q.a11 in tags and q.choices and flow.applies(q, channel, ratings) for q in flow.questions)


def _sides(flow: Flow) -> set[str]:
    return {wc.DRIVER_SIDES[q.a11] for q in flow.questions if q.a11 in wc.DRIVER_SIDES and q.choices}


def rows(rt: Runtime, session: Session, quarter: FiscalQuarter,
         services: Iterable[str | int] | None = None) -> Iterator[list[Any]]:  # fmt: skip
    """The §6.2 rows of ``quarter`` (no header), in batches from the database."""
    scope = wc.scope_for(rt, services, quarter, include_test=False)
    by_id = {id_: slug for slug, id_ in rt.service_ids.items()}
    today = {sid: rt.catalog.flow_of(rt.catalog.services[by_id[sid]]) for sid in scope.service_ids}
    described: dict[int, Flow] = {}
    shapes: dict[tuple[int, int | None], tuple[Flow, bool, set[str]]] = {}

    def shape(sid: int, survey: int | None) -> tuple[Flow, bool, set[str]]:
        """The flow a response was answered on, whether its trust question is thumbs, and its driver sides."""
        if (sid, survey) not in shapes:
            if survey is not None and survey not in described:
                found = surveys_used(session, [survey]).get(survey)
                if found is not None:
                    described[survey] = found.flow
            flow = described.get(survey, today[sid]) if survey is not None else today[sid]
            thumbs = any(q.a11 == "trust" and q.type == "thumbs" for q in flow.questions)
            shapes[(sid, survey)] = (flow, thumbs, _sides(flow))
        return shapes[(sid, survey)]

    result = session.execute(_query(scope), execution_options={"yield_per": BATCH})
    for row in result:
        m = row._mapping
        sid = int(m["service_id"])
        flow, thumbs, sides = shape(sid, m["survey_id"])
        trust = m["trust"]
        rated = {tag: None if m[tag] is None else int(m[tag]) for tag in SHOWN_AFTER}
        question_1: Any = None
        if trust is not None:
            question_1 = (1 if int(trust) == 5 else 0) if thumbs else int(trust)
        cells: list[Any] = [str(m["response_id"]), question_1]
        for side in ("positive", "negative"):
            offered = side in sides and (bool(m[f"answered_{side}"]) or _offered(flow, m["channel"], rated, side))
            for driver in wc.DRIVERS:
                cells.append(int(m[f"{side}_{driver}"]) if offered else None)
        cells.append(mask_contacts(m["free_text"]) if m["free_text"] else None)
        yield cells
