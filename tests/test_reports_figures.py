"""The dashboard's building blocks from what_counts: trends bucketed by local day/week/month (on SQLite and
PostgreSQL alike), the test-data view, the newest comments masked, and the masking itself."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from engine.reporting import what_counts as wc
from engine.reporting.masking import mask_contacts
from tests import reports_support
from tests.reports_support import NEW_YORK, QuarterBuilder, ReportStack, local

report_config_dir = reports_support.report_config_dir
report_stack = reports_support.report_stack


def ny(*parts: int) -> Any:
    return local(NEW_YORK, 2026, *parts)


@pytest.fixture
def around_the_fall_back(report_stack: ReportStack) -> ReportStack:
    """Kiosk sessions and an email answer around 1 November 2026 (New York falls back from EDT to EST)."""
    b = QuarterBuilder(report_stack.rt)
    b.kiosk("rpt-mixed", "NYC-01", {"satisfaction": 5, "trust": 4}, ny(10, 31, 23, 59))  # EDT, Saturday
    b.kiosk("rpt-mixed", "NYC-01", {"satisfaction": 4, "trust": 2}, ny(11, 1, 0, 30))  # EDT, Sunday
    b.kiosk("rpt-mixed", "NYC-01", {"satisfaction": 1}, ny(11, 1, 23, 30))  # EST, Sunday
    b.kiosk("rpt-mixed", "NYC-01", {"satisfaction": 2}, ny(11, 2, 0, 10))  # EST, Monday
    b.kiosk("rpt-mixed", "NYC-01", {"satisfaction": 1, "trust": 1}, ny(11, 2, 9, 0), spam=True)
    b.kiosk("rpt-mixed", "NYC-01", {"satisfaction": 1, "trust": 1}, ny(11, 2, 9, 5), test=True)
    # A transaction counts on the day it was completed, whenever it was answered.
    b.report("rpt-mixed", "E1", ny(11, 2, 23, 50), email=True)
    b.answer_invitation("rpt-mixed", "E1", {"satisfaction": 3, "comments": "mail me: a.b@example.org"},
                        ny(11, 3, 0, 20))  # fmt: skip
    return report_stack


def points(trend: dict[str, list[wc.TrendPoint]], tag: str) -> list[tuple[date, int, float | None]]:
    return [(p.day, p.n, p.mean) for p in trend[tag]]


def test_daily_buckets_are_local_days(around_the_fall_back: ReportStack) -> None:
    rt = around_the_fall_back.rt
    with rt.sessions() as session:
        trend = wc.trend(rt, session, "rpt-mixed", date(2026, 10, 31), date(2026, 11, 4), "day")
    assert points(trend, "satisfaction") == [
        (date(2026, 10, 31), 1, 5.0),
        (date(2026, 11, 1), 2, 2.5),  # 00:30 EDT and 23:30 EST: one 25-hour day
        (date(2026, 11, 2), 2, 2.5),  # 00:10 EST (2) and E1 completed at 23:50 (3); not the spam, not the test
        (date(2026, 11, 3), 0, None),
    ]
    assert points(trend, "trust") == [
        (date(2026, 10, 31), 1, 4.0),
        (date(2026, 11, 1), 1, 2.0),
        (date(2026, 11, 2), 0, None),
        (date(2026, 11, 3), 0, None),
    ]
    assert trend["trust"][0].agree_share == 1.0


def test_weekly_and_monthly_buckets(around_the_fall_back: ReportStack) -> None:
    rt = around_the_fall_back.rt
    with rt.sessions() as session:
        weekly = wc.trend(rt, session, "rpt-mixed", date(2026, 10, 26), date(2026, 11, 9), "week")
        monthly = wc.trend(rt, session, "rpt-mixed", date(2026, 10, 1), date(2026, 12, 1), "month")
        with_test = wc.trend(rt, session, "rpt-mixed", date(2026, 10, 1), date(2026, 12, 1), "month",
                             include_test=True)  # fmt: skip
    # ISO weeks start on Monday: 26 October holds Saturday 31 and Sunday 1 November.
    assert points(weekly, "satisfaction") == [(date(2026, 10, 26), 3, 10 / 3), (date(2026, 11, 2), 2, 2.5)]
    assert [(d, n) for d, n, _ in points(monthly, "satisfaction")] == [(date(2026, 10, 1), 1), (date(2026, 11, 1), 4)]
    assert [(d, n) for d, n, _ in points(with_test, "satisfaction")] == [(date(2026, 10, 1), 1), (date(2026, 11, 1), 5)]


def test_bucket_starts() -> None:
    assert wc.bucket_starts(date(2026, 11, 4), date(2026, 11, 18), "week") == [date(2026, 11, 2), date(2026, 11, 9),
                                                                               date(2026, 11, 16)]  # fmt: skip
    assert wc.bucket_starts(date(2026, 11, 15), date(2027, 2, 1), "month") == [date(2026, 11, 1), date(2026, 12, 1),
                                                                               date(2027, 1, 1)]  # fmt: skip
    with pytest.raises(ValueError):
        wc.bucket_starts(date(2026, 11, 1), date(2026, 12, 1), "year")


def test_volumes_ratings_and_comments_of_an_arbitrary_period(around_the_fall_back: ReportStack) -> None:
    rt = around_the_fall_back.rt
    sid = rt.service_ids["rpt-mixed"]
    with rt.sessions() as session:
        scope = wc.scope_for(rt, [sid], (date(2026, 11, 1), date(2026, 11, 3)))
        by_channel = wc.volumes(rt, session, scope, by=("channel",))
        by_office = wc.volumes(rt, session, scope, by=("office",))
        ratings = wc.ratings(session, scope, by=())
        comments = wc.comments(session, scope)
        with_test = wc.comments(session, wc.scope_for(rt, [sid], (date(2026, 11, 1), date(2026, 11, 3)), True))
    kiosk = by_channel[wc.Key(sid, "kiosk")]
    assert (kiosk.customers, kiosk.opportunities, kiosk.respondents) == (3, 3, 3)
    email = by_channel[wc.Key(sid, "email")]
    assert (email.customers, email.opportunities, email.respondents, email.response_rate) == (1, 1, 1, 1.0)
    assert by_office[wc.Key(sid, None, rt.office_ids["NYC-01"])].customers == 3
    assert by_office[wc.Key(sid, None, None)].customers == 1  # E1 has no office
    assert ratings[wc.Key(sid)]["satisfaction"].counts == {4: 1, 1: 1, 2: 1, 3: 1}
    assert [c.text for c in comments] == ["mail me: [email]"] == [c.text for c in with_test]
    assert comments[0].channel == "email" and wc.a11_channel(comments[0].channel) == "email"


def test_an_unknown_service_or_grouping_is_refused(report_stack: ReportStack) -> None:
    rt = report_stack.rt
    with pytest.raises(KeyError):
        wc.scope_for(rt, ["nope"], (date(2026, 11, 1), date(2026, 11, 2)))
    with rt.sessions() as session, pytest.raises(ValueError):
        wc.volumes(rt, session, wc.scope_for(rt, None, (date(2026, 11, 1), date(2026, 11, 2))), by=("colour",))


@pytest.mark.parametrize(
    "text, masked",
    [
        ("Call me at (202) 555-0123 please", "Call me at [phone] please"),
        ("+1 202 555 0124 or 202.555.0125", "[phone] or [phone]"),
        ("my cell is 2025550126.", "my cell is [phone]."),
        ("jo.doe+x@example.gov wrote", "[email] wrote"),
        ("write to jane (at) example.com", "write to [email]"),
        ("Both: a@b.co and 555-0199", "Both: [email] and [phone]"),
        ("Call 202-555-0123x45 or 555-0188 ext. 12", "Call [phone] or [phone]"),  # with the extension
        ("I waited 45 minutes on 3/4 at window 12", "I waited 45 minutes on 3/4 at window 12"),
        # An area code before a slash is how many write a number; a date's slashes stay dates.
        ("call 202/555-0123 or +1 (202)/555 0124", "call [phone] or [phone]"),
        ("I came on 11/12/2026, again 3/14/26 and 2026/11/30", "I came on 11/12/2026, again 3/14/26 and 2026/11/30"),
        ("I looked at travel.state.gov first", "I looked at travel.state.gov first"),
        # Internationalized and full-width addresses (intake takes pat@exämple.com as a contact), phone digits too.
        ("IDN mail pat@例え.jp or josé@exämple.com", "IDN mail [email] or [email]"),
        ("ｐａｔ＠ｅｘａｍｐｌｅ．ｃｏｍ or 202 555 0199", "[email] or [phone]"),
        ("メール: taro@例え。日本 まで", "メール: [email] まで"),
        ("write to jane [AT] example.com", "write to [email]"),
        ("電話 ２０２５５５０１９９ です", "電話 [phone] です"),
        ("We met at 10.30 at the office", "We met at 10.30 at the office"),
        ("", ""),
    ],
)
def test_masking(text: str, masked: str) -> None:
    assert mask_contacts(text) == masked


def test_csv_lines_stream_in_chunks() -> None:
    from engine.reporting.formats import csv_lines

    chunks = list(csv_lines(["a", "b"], ([n, None] for n in range(5)), batch=2))
    assert chunks == ["a,b\r\n0,\r\n1,\r\n", "2,\r\n3,\r\n", "4,\r\n"]
    assert list(csv_lines(["a"], [], batch=2)) == ["a\r\n"]


def test_report_queries_get_room_on_postgresql(report_stack: ReportStack) -> None:
    from sqlalchemy import text

    rt = report_stack.rt
    with rt.sessions() as session:
        wc.tune_for_reports(session)
        if session.get_bind().dialect.name == "postgresql":
            assert session.execute(text("SHOW work_mem")).scalar_one() == wc.REPORT_WORK_MEM
            assert session.execute(text("SHOW jit")).scalar_one() == "off"
            session.rollback()  # SET LOCAL ends with the transaction
            assert session.execute(text("SHOW work_mem")).scalar_one() != wc.REPORT_WORK_MEM


def test_console_data_counts_only_in_the_test_view(report_stack: ReportStack) -> None:
    """The console channel (the demo's) is test data: a transaction sent and answered there counts nowhere in A-11
    figures, even when its system of record did not flag it as a test; the test-data view shows it."""
    rt = report_stack.rt
    b = QuarterBuilder(rt)
    result = b.report("rpt-console", "C1", ny(11, 2, 12, 0), email=True)
    assert result["decision"] == "scheduled" and result["channel"] == "console"
    b.answer_invitation("rpt-console", "C1", {"satisfaction": 4, "comments": "fine"}, ny(11, 2, 12, 30),
                        channel="console")  # fmt: skip
    period = (date(2026, 11, 1), date(2026, 11, 3))
    with rt.sessions() as session:
        counted = wc.scope_for(rt, ["rpt-console"], period)
        shown = wc.scope_for(rt, ["rpt-console"], period, include_test=True)
        assert wc.volumes(rt, session, counted, by=()) == {}
        assert wc.comments(session, counted) == []
        assert wc.funnel(rt, session, counted) == {}
        volume = wc.volumes(rt, session, shown, by=())[wc.Key(rt.service_ids["rpt-console"])]
        assert (volume.customers, volume.opportunities, volume.respondents) == (1, 1, 1)
        assert [c.text for c in wc.comments(session, shown)] == ["fine"]
    key = report_stack.key(["rpt-console"])
    doc = report_stack.client.get("/api/v1/reports/a11?fiscal_year=2027&quarter=1", headers=key).get_json()
    assert doc["rows"] == []  # the console channel has no A-11 name: no row, nothing counted
    text = report_stack.client.get("/api/v1/reports/a11/responses?fiscal_year=2027&quarter=1", headers=key)
    assert text.get_data(as_text=True).count("\r\n") == 1  # the header alone
