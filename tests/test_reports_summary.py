"""The summaries the reports read never disagree with the raw rows, on SQLite and PostgreSQL: ``response_tallies``
(kept by triggers on ``answers``, ``responses`` and ``transactions``), ``invitation_tallies`` and
``service_level_tallies`` (kept by triggers on ``invitations``, ``service_levels`` and ``transactions``) hold what
the raw rows say, and every figure read from them equals the same figure computed from the raw rows: after a
quarter fed through the engine, and after later changes (answers changed or deleted, a response deleted, flagged
spam or moving on in its IVR call, an invitation sent late or failed by a bounce, a transaction's office, test
flag or service-level indicator changed, an indicator deleted)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update

from engine.reporting import what_counts as wc
from engine.reporting.fiscal import FiscalQuarter
from engine.store.db import unit_of_work
from engine.store.models import Answer, Invitation, Response, ResponseTally, ServiceLevel, Transaction
from engine.store.models.reporting import TALLIED_TAGS, InvitationTally, ServiceLevelTally
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


RESPONSE_KEYS = ("service_id", "channel", "office_id", "period_service_id", "moment", "has_transaction", "invited",
                 "heard", "left_out", "test", "survey_id")  # fmt: skip
TX_KEYS = ("service_id", "moment", "office_id", "channel", "left_out", "test", "survey_id")


def tx_keys(tx: Transaction) -> tuple[Any, ...]:
    test = tx.test or tx.channel in wc.TEST_CHANNELS
    return (tx.service_id, tx.completed_at, tx.office_id, tx.channel, tx.decision.value == "invalid", test,
            tx.survey_id)  # fmt: skip


def raw_copies(session: Any) -> tuple[dict[Any, Any], dict[Any, Any], dict[Any, Any]]:
    """What the copied keys should be, computed in Python from the raw rows: per response, per sent invitation,
    per service-level indicator."""
    responses = {}
    for r in session.scalars(select(Response)):
        tx = session.get(Transaction, r.transaction_id) if r.transaction_id else None
        phase = (r.state or {}).get("ivr_phase")
        responses[r.id] = (
            r.service_id, r.channel, r.office_id, tx.service_id if tx else r.service_id,
            tx.completed_at if tx else r.started_at, tx is not None, r.invitation_id is not None,
            phase in wc.IVR_HEARD_PHASES, r.suspected_spam or (tx is not None and tx.decision.value == "invalid"),
            r.test or bool(tx and tx.test) or r.channel in wc.TEST_CHANNELS, r.survey_id,
        )  # fmt: skip
    invitations = {}
    for i in session.scalars(select(Invitation).where(Invitation.sent_at.is_not(None))):
        *keys, test, survey = tx_keys(session.get(Transaction, i.transaction_id))
        test = test or i.test or i.channel in wc.TEST_CHANNELS
        invitations[i.id] = (i.transaction_id, *keys, test, survey, i.state.value != "failed")
    levels = {}
    for sl in session.scalars(select(ServiceLevel)):
        levels[(sl.transaction_id, sl.name)] = (sl.value, *tx_keys(session.get(Transaction, sl.transaction_id)))
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
                    assert wc._response_pass(session, scope, by) == wc.response_pass_from_rows(session, scope, by)
                    tx_pass = wc._transaction_pass(rt, session, scope, by)
                    assert tx_pass == wc.transaction_pass_from_rows(rt, session, scope, by)
                    slis = wc.service_level_sums(rt, session, scope, by)
                    assert slis == wc.service_level_sums_from_rows(rt, session, scope, by)
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
