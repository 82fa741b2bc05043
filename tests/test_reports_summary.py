"""The summary the reports read (``response_tallies``, kept by triggers on ``answers``) never disagrees with the
raw rows: after a quarter fed through the engine, after answers are deleted or changed, after a response is
deleted, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, delete, func, select, update

from engine.db import unit_of_work
from engine.fiscal import FiscalQuarter
from engine.models import Answer, Response, ResponseTally
from engine.models.reporting import TALLIED_TAGS
from engine.reporting import what_counts as wc
from tests import reports_support
from tests.reports_support import ReportStack
from tests.test_reports_a11 import build_quarter

report_config_dir = reports_support.report_config_dir
report_stack = reports_support.report_stack


def raw_tallies(session: Any) -> dict[Any, tuple[Any, ...]]:
    """What the tallies should hold, computed from the answers."""
    maxima = [func.max(case((Answer.a11_tag == tag, Answer.value))) for tag in TALLIED_TAGS]
    query = select(Answer.response_id, func.count(), *maxima).group_by(Answer.response_id)
    return {row[0]: tuple(row[1:]) for row in session.execute(query)}


def kept_tallies(session: Any) -> dict[Any, tuple[Any, ...]]:
    columns = [getattr(ResponseTally, tag) for tag in TALLIED_TAGS]
    query = select(ResponseTally.response_id, ResponseTally.answers, *columns).where(ResponseTally.answers > 0)
    return {row[0]: tuple(row[1:]) for row in session.execute(query)}


def assert_agree(stack: ReportStack) -> None:
    rt = stack.rt
    with rt.sessions() as session:
        raw = raw_tallies(session)
        assert raw, "the scenario has answers"
        assert kept_tallies(session) == raw
        for quarter in (FiscalQuarter(2026, 4), FiscalQuarter(2027, 1)):
            for by in ((), ("channel",), ("office",), ("channel", "office")):
                scope = wc.scope_for(rt, None, quarter)
                assert wc.ratings(session, scope, by) == wc.ratings_from_answers(session, scope, by)
            # Respondents read from the tallies = counted responses with an answer row.
            resp = wc.counted_responses(scope)
            with_answers = (
                select(func.count())
                .select_from(resp)
                .where(select(Answer.id).where(Answer.response_id == resp.c.response_id).exists())
            )
            tallied = select(func.count()).select_from(wc.respondents(scope))
            assert session.execute(tallied).scalar_one() == session.execute(with_answers).scalar_one()


def test_the_tallies_match_the_answers(report_stack: ReportStack) -> None:
    ids = build_quarter(report_stack)
    assert_agree(report_stack)
    rt = report_stack.rt
    with unit_of_work(rt.sessions) as session:
        # An answer changed, an answer taken away, a whole response deleted (its answers cascade).
        session.execute(
            update(Answer).where(Answer.response_id == ids["M1"], Answer.a11_tag == "trust").values(value=1)
        )
        session.execute(delete(Answer).where(Answer.response_id == ids["M4"], Answer.a11_tag == "satisfaction"))
        session.execute(delete(Answer).where(Answer.response_id == ids["M7"]))
        session.execute(delete(Response).where(Response.id == ids["K1"]))
    assert_agree(report_stack)
    with rt.sessions() as session:
        m7 = session.get(ResponseTally, ids["M7"])
        assert m7 is not None and m7.answers == 0  # no longer a respondent
        assert session.get(ResponseTally, ids["K1"]) is None
        assert session.get(ResponseTally, ids["M1"]).trust == 1  # type: ignore[union-attr]
