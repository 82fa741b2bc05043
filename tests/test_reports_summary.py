"""The summaries the reports read never disagree with the raw rows, on SQLite and PostgreSQL: ``response_tallies``
(kept by triggers on ``answers``, ``responses`` and ``transactions``), ``invitation_tallies`` and
``service_level_tallies`` (kept by triggers on ``invitations``, ``service_levels`` and ``transactions``) hold what
the raw rows say, and every figure read from them equals the same figure computed from the raw rows: after a
quarter fed through the engine, and after later changes (answers changed or deleted, a response deleted, flagged
spam or moving on in its IVR call, an invitation sent late or failed by a bounce, a transaction's office, test
flag or service-level indicator changed, an indicator deleted). The figures from the raw rows are the oracle in
``tests/reports_support.py``; the copies from the raw rows are computed here in Python, from the same constants of
what counts the triggers are generated from: triggers generated from other constants copy what those constants say.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from engine.reporting import what_counts as wc
from engine.reporting.fiscal import FiscalQuarter
from engine.store import report_triggers
from engine.store.db import unit_of_work
from engine.store.models import Answer, Invitation, Response, ResponseTally, ServiceLevel, Transaction
from engine.store.models.reporting import TALLIED_TAGS, InvitationTally, ServiceLevelTally
from engine.store.report_triggers import RULES, Rules
from tests import reports_support
from tests.reports_support import (
    ReportStack,
    database_triggers,
    ratings_from_answers,
    response_pass_from_rows,
    service_level_sums_from_rows,
    transaction_pass_from_rows,
)
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


RESPONSE_KEYS = ("service_id", "channel", "office_id", "period_service_id", "moment", "has_transaction", "invited",
                 "heard", "left_out", "test", "survey_id")  # fmt: skip
TX_KEYS = ("service_id", "moment", "office_id", "channel", "left_out", "test", "survey_id")


def tx_keys(tx: Transaction, rules: Rules) -> tuple[Any, ...]:
    test = tx.test or tx.channel in rules.test_channels
    return (tx.service_id, tx.completed_at, tx.office_id, tx.channel, tx.decision == rules.left_out_decision, test,
            tx.survey_id)  # fmt: skip


def raw_copies(session: Any, rules: Rules = RULES) -> tuple[dict[Any, Any], dict[Any, Any], dict[Any, Any]]:
    """What the copied keys should be, computed in Python from the raw rows under ``rules`` (by default the
    constants of what counts): per response, per sent invitation, per service-level indicator."""
    responses = {}
    for r in session.scalars(select(Response)):
        tx = session.get(Transaction, r.transaction_id) if r.transaction_id else None
        phase = (r.state or {}).get("ivr_phase")
        left_out = r.suspected_spam or (tx is not None and tx.decision == rules.left_out_decision)
        responses[r.id] = (
            r.service_id, r.channel, r.office_id, tx.service_id if tx else r.service_id,
            tx.completed_at if tx else r.started_at, tx is not None, r.invitation_id is not None,
            phase in rules.heard_phases, left_out,
            r.test or bool(tx and tx.test) or r.channel in rules.test_channels, r.survey_id,
        )  # fmt: skip
    invitations = {}
    for i in session.scalars(select(Invitation).where(Invitation.sent_at.is_not(None))):
        *keys, test, survey = tx_keys(session.get(Transaction, i.transaction_id), rules)
        test = test or i.test or i.channel in rules.test_channels
        invitations[i.id] = (i.transaction_id, *keys, test, survey, i.state.value not in rules.failed_states)
    levels = {}
    for sl in session.scalars(select(ServiceLevel)):
        levels[(sl.transaction_id, sl.name)] = (sl.value, *tx_keys(session.get(Transaction, sl.transaction_id), rules))
    return responses, invitations, levels


def kept_copies(session: Any) -> tuple[dict[Any, Any], dict[Any, Any], dict[Any, Any]]:
    t, i, sl = ResponseTally, InvitationTally, ServiceLevelTally
    responses = {row[0]: tuple(row[1:]) for row in
                 session.execute(select(t.response_id, *(getattr(t, k) for k in RESPONSE_KEYS)))}  # fmt: skip
    invitations = {row[0]: tuple(row[1:]) for row in session.execute(
        select(i.invitation_id, i.transaction_id, *(getattr(i, k) for k in TX_KEYS), i.opportunity))}  # fmt: skip
    levels = {(row[0], row[1]): tuple(row[2:]) for row in session.execute(
        select(sl.transaction_id, sl.name, sl.value, *(getattr(sl, k) for k in TX_KEYS)))}  # fmt: skip
    return responses, invitations, levels


def assert_agree(stack: ReportStack) -> None:
    rt = stack.rt
    with rt.sessions() as session:
        raw = raw_tallies(session)
        assert raw, "the scenario has answers"
        assert kept_tallies(session) == raw
        responses, invitations, levels = raw_copies(session)
        assert responses and invitations and levels, "the scenario has responses, sent invitations, indicators"
        assert all(r[-1] is not None for r in responses.values()), "every response records its survey"
        assert kept_copies(session) == (responses, invitations, levels)
        for quarter in (FiscalQuarter(2026, 4), FiscalQuarter(2027, 1)):
            for include_test in (False, True):
                scope = wc.scope_for(rt, None, quarter, include_test)
                for by in (
                    (),
                    ("channel",),
                    ("office",),
                    ("channel", "office"),
                    ("channel", "survey"),
                    ("channel", "office", "survey"),
                ):
                    assert wc._response_pass(session, scope, by) == response_pass_from_rows(session, scope, by)
                    tx_pass = wc._transaction_pass(rt, session, scope, by)
                    assert tx_pass == transaction_pass_from_rows(rt, session, scope, by)
                    slis = wc.service_level_sums(rt, session, scope, by)
                    assert slis == service_level_sums_from_rows(rt, session, scope, by)
        for quarter in (FiscalQuarter(2026, 4), FiscalQuarter(2027, 1)):
            for by in (
                (),
                ("channel",),
                ("office",),
                ("channel", "office"),
                ("channel", "survey"),
                ("channel", "office", "survey"),
            ):
                scope = wc.scope_for(rt, None, quarter)
                assert wc.ratings(session, scope, by) == ratings_from_answers(session, scope, by)
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
    with unit_of_work(rt.sessions) as session:
        # A bounce fails an answered invitation; a response is flagged spam; a post-call caller moves on to the
        # questions; an unsent invitation is sent late; a transaction moves office, another becomes test data, an
        # indicator is corrected and another deleted.
        m1 = session.get(Response, ids["M1"])
        session.execute(update(Invitation).where(Invitation.id == m1.invitation_id).values(state="failed"))
        session.execute(update(Response).where(Response.id == ids["M4"]).values(suspected_spam=True))
        heard_not = session.scalars(select(Response).where(Response.invitation_id.is_(None),
                                                           Response.transaction_id.is_not(None))).all()  # fmt: skip
        for r in heard_not:
            r.state = {**(r.state or {}), "ivr_phase": "done"}
        unsent = session.scalars(select(Invitation).where(Invitation.sent_at.is_(None))).first()
        if unsent is not None:
            unsent.sent_at = datetime.now(UTC)
            unsent.state = "sent"  # type: ignore[assignment]
        m2 = session.get(Response, ids["M2"])
        session.execute(update(Transaction).where(Transaction.id == m2.transaction_id).values(office_id=None))
        u1 = session.get(Response, ids["U1"])
        session.execute(update(Transaction).where(Transaction.id == u1.transaction_id).values(test=True))
        session.execute(update(ServiceLevel).where(ServiceLevel.transaction_id == m2.transaction_id).values(value=7))
        m4 = session.get(Response, ids["M4"])
        session.execute(delete(ServiceLevel).where(ServiceLevel.transaction_id == m4.transaction_id))
    assert_agree(report_stack)
    with rt.sessions() as session:
        assert session.get(ResponseTally, ids["M4"]).left_out  # type: ignore[union-attr]
        m1 = session.get(Response, ids["M1"])
        assert not session.get(InvitationTally, m1.invitation_id).opportunity  # type: ignore[union-attr]
        assert session.get(ResponseTally, ids["U1"]).test  # type: ignore[union-attr]
    with rt.sessions() as session:
        m7 = session.get(ResponseTally, ids["M7"])
        assert m7 is not None and m7.answers == 0  # no longer a respondent
        assert session.get(ResponseTally, ids["K1"]) is None
        assert session.get(ResponseTally, ids["M1"]).trust == 1  # type: ignore[union-attr]


def test_triggers_generated_from_other_constants_copy_what_those_say(report_stack: ReportStack) -> None:
    """The triggers follow the constants they are generated from: rebuilt (inside a transaction rolled back at the
    end) from rules under which email is a test channel, a caller who only heard the notice has heard the first
    question and a sent invitation is not an opportunity, every copy they refresh says so, where the current rules
    say otherwise."""
    build_quarter(report_stack)
    rules = Rules(test_channels=("console", "email"), heard_phases=("notice", "questions", "done"),
                  failed_states=("failed", "sent"))  # fmt: skip
    engine = report_stack.rt.engine
    dialect = engine.dialect.name
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            triggers = database_triggers(connection)
            session = Session(bind=connection)
            now = raw_copies(session)
            assert kept_copies(session) == now, "the current triggers follow the current rules"
            other = raw_copies(session, rules)
            # What the other rules change in this quarter: (channel, heard, test) of the responses and the
            # opportunities among the sent invitations.
            changed = [(k[1], k[7], k[9]) for k in other[0].values() if k not in now[0].values()]
            assert ("email", False, True) in changed and ("ivr", True, False) in changed
            assert [i[-1] for i in other[1].values()].count(True) < [i[-1] for i in now[1].values()].count(True)
            for statement in (*report_triggers.drop_copy_triggers(dialect),
                              *report_triggers.copy_triggers(dialect, rules=rules)):  # fmt: skip
                connection.exec_driver_sql(statement)
            # Changes that fire every copy trigger, each undone: the rows end as they were.
            for delta in (1, -1):
                session.execute(update(Response).values(test=~Response.test))
                session.execute(update(Transaction).values(test=~Transaction.test))
                session.execute(update(ServiceLevel).values(value=ServiceLevel.value + delta))
            session.expire_all()
            assert raw_copies(session, rules) == other
            assert kept_copies(session) == other
            session.close()
        finally:
            transaction.rollback()
    with engine.connect() as connection:
        assert database_triggers(connection) == triggers, "rolled back: the current triggers again"
    with report_stack.rt.sessions() as session:
        assert kept_copies(session) == raw_copies(session)
