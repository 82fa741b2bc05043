"""The A-11 files of one fixture quarter built through the real engine, every cell computed by hand below.

FY2026 Q4 = 2026-07-01 .. 2026-09-30 in each service's time zone. ``rpt-mixed`` (New York, a11-standard, channels
sms then email, post-call IVR numbers, a kiosk) and ``rpt-thumbs`` (Chicago, a11-drivers: thumbs trust and
positive/negative drivers). Test, spam and out-of-quarter data are fed too and must count nowhere.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from engine.reporting import a11, formats, what_counts
from engine.reporting.fiscal import FiscalQuarter
from tests import reports_support
from tests.reports_support import CHICAGO, NEW_YORK, QuarterBuilder, ReportStack, local

# The fixtures these tests take (pytest finds them by name in the module).
report_config_dir = reports_support.report_config_dir
report_stack = reports_support.report_stack

Q4 = FiscalQuarter(2026, 4)
STANDARD_TITLE = "Customer Experience Survey"
DRIVERS_TITLE = "Customer Feedback"
FULL = {"satisfaction": 5, "trust": 4, "effectiveness": 4, "ease": 3, "efficiency": 5, "transparency": 2,
        "employee": 5, "comments": "Call me at (202) 555-0123 please"}  # fmt: skip
EMAIL_FULL = {"satisfaction": 4, "trust": 5, "effectiveness": 5, "ease": 4, "efficiency": 4, "transparency": 4,
              "employee": 3, "comments": "Write to jo.doe@example.com"}  # fmt: skip


def build_quarter(stack: ReportStack) -> dict[str, uuid.UUID]:
    """The fixture quarter; returns the ids of the responses the §6.2 file must hold."""
    b = QuarterBuilder(stack.rt)
    ids: dict[str, uuid.UUID] = {}
    ny = lambda *p: local(NEW_YORK, 2026, *p)  # noqa: E731
    ct = lambda *p: local(CHICAGO, 2026, *p)  # noqa: E731
    # rpt-mixed, SMS: answered in full; answered in part; sent then reported undelivered (no opportunity).
    b.report("rpt-mixed", "M1", ny(8, 3, 15, 0), phone=True, office="NYC-01", sli={"wait_seconds": 100})
    ids["M1"] = b.answer_invitation("rpt-mixed", "M1", FULL, ny(8, 3, 15, 30), channel="sms")
    b.report("rpt-mixed", "M2", ny(8, 4, 15, 0), phone=True, office="HNL-01", sli={"wait_seconds": 300})
    ids["M2"] = b.answer_invitation("rpt-mixed", "M2", {"satisfaction": 2}, ny(8, 4, 15, 20), channel="sms",
                                    complete=False)  # fmt: skip
    b.report("rpt-mixed", "M3", ny(8, 5, 15, 0), phone=True, office="NYC-01")
    b.fail("rpt-mixed", "M3", ny(8, 5, 15, 10))
    # Email: answered on the web page from the email (counts as email); opened and left without an answer.
    b.report("rpt-mixed", "M4", ny(8, 6, 15, 0), email=True, office="NYC-01", sli={"wait_seconds": 50})
    ids["M4"] = b.answer_invitation("rpt-mixed", "M4", EMAIL_FULL, ny(8, 6, 16, 0))
    b.report("rpt-mixed", "M5", ny(8, 7, 15, 0), email=True)
    b.answer_invitation("rpt-mixed", "M5", {}, ny(8, 7, 15, 30), complete=False)
    # No usable contact: no_channel, counted in the service's first channel (sms).
    assert b.report("rpt-mixed", "M6", ny(8, 8, 15, 0), sli={"wait_seconds": 41})["decision"] == "no_channel"
    # Post-call IVR: answered; heard the first question and hung up; hung up during the notice.
    for ext, day, office in (("M7", 10, "NYC-01"), ("M8", 11, "NYC-01"), ("M9", 12, None)):
        b.report("rpt-mixed", ext, ny(8, day, 15, 0), office=office, source="ivr", send=False)
    ids["M7"] = b.post_call("rpt-mixed", "M7", "questions", {"satisfaction": 3}, ny(8, 10, 15, 5))
    b.post_call("rpt-mixed", "M8", "questions", {}, ny(8, 11, 15, 5))
    b.post_call("rpt-mixed", "M9", "notice", {}, ny(8, 12, 15, 5))
    # Kiosk: one session; one flagged as spam; one in the quarter before.
    ids["K1"] = b.kiosk("rpt-mixed", "NYC-01", {"satisfaction": 5, "trust": 5}, ny(9, 1, 10, 0))
    b.kiosk("rpt-mixed", "NYC-01", {"satisfaction": 1, "trust": 1}, ny(9, 1, 10, 5), spam=True)
    b.kiosk("rpt-mixed", "NYC-01", {"satisfaction": 1, "trust": 1}, ny(6, 30, 23, 30))
    # Test data, answered: counts nowhere.
    b.report("rpt-mixed", "X1", ny(8, 13, 15, 0), email=True, test=True, sli={"wait_seconds": 9999})
    b.answer_invitation("rpt-mixed", "X1", {"satisfaction": 1, "trust": 1}, ny(8, 13, 15, 30))
    # The quarter's edge in New York: 23:59 on 30 September is Q4; midnight on 1 October is FY2027 Q1.
    b.report("rpt-mixed", "B1", ny(9, 30, 23, 59), email=True)
    b.report("rpt-mixed", "B2", local(NEW_YORK, 2026, 10, 1, 0, 0), email=True)
    b.answer_invitation("rpt-mixed", "B2", {"satisfaction": 1, "trust": 1}, local(NEW_YORK, 2026, 10, 1, 0, 30))

    # rpt-thumbs (Chicago): up with two positives; down with one negative and a comment; up only; no answer.
    b.report("rpt-thumbs", "U1", ct(7, 15, 12, 0), email=True)
    ids["U1"] = b.answer_invitation("rpt-thumbs", "U1", {"trust": 5, "went_well": ("effectiveness", "employee")},
                                    ct(7, 15, 12, 30))  # fmt: skip
    b.report("rpt-thumbs", "U2", ct(7, 16, 12, 0), email=True)
    ids["U2"] = b.answer_invitation("rpt-thumbs", "U2", {"trust": 1, "could_be_better": ("ease",),
                                    "comments": "555-0100 is not mine, 202 555 0101 is"}, ct(7, 16, 12, 30))  # fmt: skip
    b.report("rpt-thumbs", "U3", ct(7, 17, 12, 0), email=True)
    ids["U3"] = b.answer_invitation("rpt-thumbs", "U3", {"trust": 5}, ct(7, 17, 12, 30), complete=False)
    b.report("rpt-thumbs", "U4", ct(7, 18, 12, 0), email=True)
    return ids


def empty_tags(*tags: str) -> dict[str, Any]:
    return {f"{t}_{s}": None for t in tags for s in a11.POINT_SUFFIXES}


def zero_tags(*tags: str) -> dict[str, Any]:
    return {**{f"{t}_{p}": 0 for t in tags for p in "12345"}, **{f"{t}_n": 0 for t in tags},
            **{f"{t}_mean": None for t in tags}, **{f"{t}_agree_pct": None for t in tags}}  # fmt: skip


def one(tag: str, point: int) -> dict[str, Any]:
    """A tag answered once, at ``point``."""
    cells: dict[str, Any] = {f"{tag}_{p}": 0 for p in "12345"}
    cells[f"{tag}_{point}"] = 1
    return {**cells, f"{tag}_n": 1, f"{tag}_mean": f"{point}.00", f"{tag}_agree_pct": "1.0000" if point >= 4 else
            "0.0000"}  # fmt: skip


NO_DRIVERS = {f"{side}_{d}": None for side in ("positive", "negative") for d in what_counts.DRIVERS}
TAGS = what_counts.RATING_TAGS
TAIL = {"bureau": None, "service_provider": None, "reflection": None}


def mixed_row(channel: str, **cells: Any) -> dict[str, Any]:
    return {
        "fiscal_year": "2026", "quarter": "4", "agency": "Department of State", "service_slug": "rpt-mixed",
        "service_name": "Passport Renewal", "service_type": "administrative", "service_stage": "renewal",
        "channel": channel, "transaction_point": "post_interaction", "survey_title": STANDARD_TITLE,
        "survey_type": "likert_scale", "omb_control_number": "1090-0011",
        "trust_question_text": "This interaction increased my trust in Passport Renewal.",
        **zero_tags(*TAGS), **NO_DRIVERS, "sli_wait_seconds_mean": None, **TAIL, **cells,
    }  # fmt: skip


def expected_q4() -> list[dict[str, Any]]:
    """Every cell of the §6.1 file for FY2026 Q4, as the CSV shows it (None: an empty cell)."""
    phone = mixed_row(
        "automated_phone",
        volume_of_customers=3,  # M7, M8, M9 (post-call callers)
        volume_of_customers_provided_survey_opportunity=2,  # M7, M8 heard the first question; M9 did not
        volume_of_respondents=1,  # M7
        response_rate="0.5000",
        **one("satisfaction", 3),
    )
    phone["satisfaction_agree_pct"] = "0.0000"
    sms = mixed_row(
        "sms_text_messages",
        volume_of_customers=4,  # M1, M2, M3, and M6 (no channel: the service's first)
        volume_of_customers_provided_survey_opportunity=2,  # M1, M2 (M3 reported undelivered)
        volume_of_respondents=2,
        response_rate="1.0000",
        **one("trust", 4), **one("effectiveness", 4), **one("ease", 3), **one("efficiency", 5),
        **one("transparency", 2), **one("employee", 5),
        satisfaction_1=0, satisfaction_2=1, satisfaction_3=0, satisfaction_4=0, satisfaction_5=1, satisfaction_n=2,
        satisfaction_mean="3.50", satisfaction_agree_pct="0.5000",
        sli_wait_seconds_mean="147.00",  # (100 + 300 + 41) / 3: M3 has no indicator
    )  # fmt: skip
    email = mixed_row(
        "email",
        volume_of_customers=3,  # M4, M5, B1 (23:59 on 30 September); not X1 (test), not B2 (next quarter)
        volume_of_customers_provided_survey_opportunity=3,
        volume_of_respondents=1,  # M4 (M5 opened the page and answered nothing)
        response_rate="0.3333",
        **one("satisfaction", 4), **one("trust", 5), **one("effectiveness", 5), **one("ease", 4),
        **one("efficiency", 4), **one("transparency", 4), **one("employee", 3),
        sli_wait_seconds_mean="50.00",
    )  # fmt: skip
    kiosk = mixed_row(
        "self_service_kiosk",
        volume_of_customers=1,  # K1; not the spam session, not the one on 30 June
        volume_of_customers_provided_survey_opportunity=1,
        volume_of_respondents=1,
        response_rate="1.0000",
        **one("satisfaction", 5), **one("trust", 5),
    )  # fmt: skip
    thumbs = {
        "fiscal_year": "2026", "quarter": "4", "agency": "Social Security Administration",
        "service_slug": "rpt-thumbs", "service_name": "Benefits Contact Center", "service_type": "benefits",
        "service_stage": None, "channel": "email", "transaction_point": "post_interaction",
        "survey_title": DRIVERS_TITLE, "survey_type": "thumbs_up_down", "omb_control_number": "1090-0012",
        "trust_question_text": "This interaction increased my trust in Benefits Contact Center.",
        "volume_of_customers": 4, "volume_of_customers_provided_survey_opportunity": 4, "volume_of_respondents": 3,
        "response_rate": "0.7500",
        **empty_tags(*TAGS),
        "trust_1": 1, "trust_5": 2, "trust_n": 3, "trust_agree_pct": "0.6667",
        "positive_effectiveness": 1, "positive_ease": 0, "positive_efficiency": 0, "positive_transparency": 0,
        "positive_humanity": 0, "positive_employee": 1, "positive_other": 0,
        "negative_effectiveness": 0, "negative_ease": 1, "negative_efficiency": 0, "negative_transparency": 0,
        "negative_humanity": 0, "negative_employee": 0, "negative_other": 0,
        "sli_wait_seconds_mean": None, **TAIL,
    }  # fmt: skip
    rows = [phone, sms, email, kiosk, thumbs]
    return [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


@pytest.fixture
def quarter(report_stack: ReportStack) -> tuple[ReportStack, dict[str, uuid.UUID], dict[str, str]]:
    ids = build_quarter(report_stack)
    return report_stack, ids, report_stack.key(["rpt-mixed", "rpt-thumbs"])


def test_every_cell_of_the_quarter(quarter: Any) -> None:
    stack, _, key = quarter
    answer = stack.client.get("/api/v1/reports/a11?fiscal_year=2026&quarter=4&format=csv", headers=key)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    header, rows = read_csv(answer.get_data(as_text=True))
    assert header == a11.columns(False, ["wait_seconds"])
    assert header[:7] == ["fiscal_year", "quarter", "agency", "service_slug", "service_name", "service_type",
                          "service_stage"]  # fmt: skip
    expected = expected_q4()
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert set(got) == set(want), set(got) ^ set(want)
        wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
        assert not wrong, (want["channel"], wrong)


def test_csv_json_and_xlsx_agree(quarter: Any) -> None:
    stack, _, key = quarter
    base = "/api/v1/reports/a11?fiscal_year=2026&quarter=4"
    _, csv_rows = read_csv(stack.client.get(base + "&format=csv", headers=key).get_data(as_text=True))
    doc = stack.client.get(base, headers=key).get_json()  # JSON is the default
    assert doc["fiscal_year"] == 2026 and doc["quarter"] == 4
    xlsx = stack.client.get(base + "&format=xlsx", headers=key)
    assert xlsx.headers["Content-Type"] == formats.XLSX_MEDIA_TYPE
    assert "attachment" in xlsx.headers["Content-Disposition"]
    xlsx_header, xlsx_rows = formats.read_xlsx(xlsx.get_data())
    assert xlsx_header == list(csv_rows[0])
    assert len(doc["rows"]) == len(xlsx_rows) == len(csv_rows) == 5
    for text_row, json_row, sheet_row in zip(csv_rows, doc["rows"], xlsx_rows, strict=True):
        assert list(json_row) == list(text_row)
        for (column, text), sheet_value in zip(text_row.items(), sheet_row, strict=True):
            value = json_row[column]
            if text == "":
                assert value is None and sheet_value is None, column
            elif isinstance(value, str):
                assert value == text == sheet_value, column
            else:
                assert not isinstance(sheet_value, str), (column, sheet_value)  # typed cells
                assert Decimal(text) == Decimal(str(value)) == Decimal(str(sheet_value)), column
    # Integers stay integers, means and shares are numbers in JSON.
    sms = doc["rows"][1]
    assert sms["volume_of_customers"] == 4 and sms["satisfaction_mean"] == 3.5 and sms["response_rate"] == 1.0


def test_the_response_level_file(quarter: Any) -> None:
    stack, ids, key = quarter
    answer = stack.client.get("/api/v1/reports/a11/responses?fiscal_year=2026&quarter=4", headers=key)
    assert answer.status_code == 200
    assert answer.is_streamed
    text = answer.get_data(as_text=True)
    lines = text.split("\r\n")
    assert lines[0] == (
        "external_id,question_1,positive_effectiveness,positive_ease,positive_efficiency,positive_transparency,"
        "positive_humanity,positive_employee,positive_other,negative_effectiveness,negative_ease,negative_efficiency,"
        "negative_transparency,negative_humanity,negative_employee,negative_other,question_4"
    )
    none = [""] * 7
    expected = [
        [str(ids["M1"]), "4", *none, *none, "Call me at [phone] please"],
        [str(ids["M2"]), "", *none, *none, ""],
        [str(ids["M4"]), "5", *none, *none, "Write to [email]"],
        [str(ids["M7"]), "", *none, *none, ""],
        [str(ids["K1"]), "5", *none, *none, ""],
        [str(ids["U1"]), "1", "1", "0", "0", "0", "0", "1", "0", *none, ""],
        [str(ids["U2"]), "0", *none, "0", "1", "0", "0", "0", "0", "0", "[phone] is not mine, [phone] is"],
        [str(ids["U3"]), "1", "0", "0", "0", "0", "0", "0", "0", *none, ""],
    ]
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1:] == expected
    # No contact data anywhere: the free text is masked, and no other column carries text (a UUID may hold "555").
    assert all("555" not in row[-1] and "@" not in row[-1] for row in rows[1:]) and "@" not in text


def test_cli_writes_the_api_bytes(quarter: Any, tmp_path: Any) -> None:
    stack, _, key = quarter
    services = ["--service", "rpt-mixed", "--service", "rpt-thumbs"]
    api = stack.client.get("/api/v1/reports/a11?fiscal_year=2026&quarter=4&format=csv", headers=key).get_data()
    cli = stack.cli("report", "a11", "--fiscal-year", "2026", "--quarter", "4", *services, "--format", "csv")
    assert cli.returncode == 0, cli.stderr.decode()
    assert cli.stdout == api
    # Read the streamed body whole first: on SQLite an open read holds the database until it ends.
    api_responses = stack.client.get("/api/v1/reports/a11/responses?fiscal_year=2026&quarter=4", headers=key).get_data()
    out = tmp_path / "responses.csv"
    cli = stack.cli("report", "responses", "--fiscal-year", "2026", "--quarter", "4", *services, "--output",
                    str(out))  # fmt: skip
    assert cli.returncode == 0, cli.stderr.decode()
    assert out.read_bytes() == api_responses
    by_office = stack.client.get("/api/v1/reports/a11?fiscal_year=2026&quarter=4&format=json&by=office", headers=key)
    cli = stack.cli("report", "a11", "--fiscal-year", "2026", "--quarter", "4", *services, "--by", "office",
                    "--format", "json")  # fmt: skip
    assert json.loads(cli.stdout) == by_office.get_json()


def test_by_office(quarter: Any) -> None:
    stack, _, key = quarter
    doc = stack.client.get("/api/v1/reports/a11?fiscal_year=2026&quarter=4&by=office&service=rpt-mixed",
                           headers=key).get_json()  # fmt: skip
    rows = [(r["channel"], r["office"], r["volume_of_customers"], r["volume_of_customers_provided_survey_opportunity"],
             r["volume_of_respondents"]) for r in doc["rows"]]  # fmt: skip
    assert rows == [
        ("automated_phone", "NYC-01", 2, 2, 1),
        ("automated_phone", None, 1, 0, 0),
        ("sms_text_messages", "HNL-01", 1, 1, 1),
        ("sms_text_messages", "NYC-01", 2, 1, 1),
        ("sms_text_messages", None, 1, 0, 0),
        ("email", "NYC-01", 1, 1, 1),
        ("email", None, 2, 2, 0),
        ("self_service_kiosk", "NYC-01", 1, 1, 1),
    ]
    assert list(doc["rows"][0])[7] == "office"
    nyc_sms = doc["rows"][3]
    assert nyc_sms["sli_wait_seconds_mean"] == 100.0 and nyc_sms["satisfaction_5"] == 1


def test_next_quarter_holds_the_midnight_transaction(quarter: Any) -> None:
    stack, _, key = quarter
    doc = stack.client.get("/api/v1/reports/a11?fiscal_year=2027&quarter=1&service=rpt-mixed", headers=key).get_json()
    email = next(r for r in doc["rows"] if r["channel"] == "email")
    assert (email["volume_of_customers"], email["volume_of_respondents"], email["satisfaction_1"]) == (1, 1, 1)
    assert sum(r["volume_of_customers"] for r in doc["rows"]) == 1


def test_what_counts_figures_match_the_file(quarter: Any) -> None:
    stack, _, _ = quarter
    rt = stack.rt
    with rt.sessions() as session:
        scope = what_counts.scope_for(rt, ["rpt-mixed"], Q4)
        funnel = what_counts.funnel(rt, session, scope)[what_counts.Key(rt.service_ids["rpt-mixed"])]
        # Delivered: M1 and M4, answered (the stand-ins confirm no delivery); completed: M1 and M4.
        assert funnel == what_counts.Funnel(transactions=10, sampled=10, sent=6, delivered=2, started=4, completed=2,
                                            kiosk_sessions=1)  # fmt: skip
        total = what_counts.volumes(rt, session, scope, by=())[what_counts.Key(rt.service_ids["rpt-mixed"])]
        assert (total.customers, total.opportunities, total.respondents) == (11, 8, 5)
        with_test = what_counts.volumes(rt, session, what_counts.scope_for(rt, ["rpt-mixed"], Q4, include_test=True),
                                        by=())[what_counts.Key(rt.service_ids["rpt-mixed"])]  # fmt: skip
        assert (with_test.customers, with_test.opportunities, with_test.respondents) == (12, 9, 6)  # X1; never spam
        comments = what_counts.comments(session, scope)
        assert [c.text for c in comments] == ["Write to [email]", "Call me at [phone] please"]


def test_keys_see_only_their_services(quarter: Any) -> None:
    stack, _, _ = quarter
    url = "/api/v1/reports/a11?fiscal_year=2026&quarter=4"
    intake_only = stack.key(["rpt-mixed"], ("intake",))
    assert stack.client.get(url, headers=intake_only).status_code == 403
    assert stack.client.get(url.replace("a11?", "a11/responses?"), headers=intake_only).status_code == 403
    other = stack.key(["rpt-other"])
    for path in (url, url.replace("a11?", "a11/responses?")):
        denied = stack.client.get(path + "&service=rpt-mixed", headers=other)
        assert denied.status_code == 403 and denied.mimetype == "application/problem+json"
    # Without service= a key gets its own services only.
    doc = stack.client.get(url, headers=other).get_json()
    assert {r["service_slug"] for r in doc["rows"]} == {"rpt-other"}
    assert all(r["volume_of_customers"] == 0 for r in doc["rows"])
    assert stack.client.get(url).status_code == 401


@pytest.mark.parametrize(
    "query, fields",
    [
        ("quarter=4", {"fiscal_year"}),
        ("fiscal_year=2026&quarter=5", {"quarter"}),
        ("fiscal_year=26x&quarter=1", {"fiscal_year"}),
        ("fiscal_year=2026&quarter=1&format=pdf", {"format"}),
        ("fiscal_year=2026&quarter=1&by=channel", {"by"}),
        ("fiscal_year=2026&quarter=1&service=nope", {"service"}),
        ("fiscal_year=2026&quarter=1&colour=red", {"colour"}),
        ("fiscal_year=2026&quarter=1&quarter=2", {"quarter"}),
    ],
)
def test_bad_parameters_are_400(report_stack: ReportStack, query: str, fields: set[str]) -> None:
    key = report_stack.key(["rpt-mixed"])
    answer = report_stack.client.get(f"/api/v1/reports/a11?{query}", headers=key)
    assert answer.status_code == 400 and answer.mimetype == "application/problem+json"
    assert {e["field"] for e in answer.get_json()["errors"]} == fields


def test_responses_file_takes_csv_only(report_stack: ReportStack) -> None:
    key = report_stack.key(["rpt-mixed"])
    answer = report_stack.client.get("/api/v1/reports/a11/responses?fiscal_year=2026&quarter=4&format=xlsx",
                                     headers=key)  # fmt: skip
    assert answer.status_code == 400
    by = report_stack.client.get("/api/v1/reports/a11/responses?fiscal_year=2026&quarter=4&by=office", headers=key)
    assert by.status_code == 400


def test_an_empty_quarter_has_every_configured_row(report_stack: ReportStack) -> None:
    key = report_stack.key(["rpt-mixed", "rpt-thumbs"])
    text = report_stack.client.get("/api/v1/reports/a11?fiscal_year=2030&quarter=2&format=csv",
                                   headers=key).get_data(as_text=True)  # fmt: skip
    header, rows = read_csv(text)
    assert header == a11.columns(False, [])  # no indicator found: no sli column
    assert [(r["service_slug"], r["channel"]) for r in rows] == [
        ("rpt-mixed", "automated_phone"),  # ivr_numbers
        ("rpt-mixed", "sms_text_messages"),
        ("rpt-mixed", "email"),
        ("rpt-thumbs", "email"),
    ]
    assert all(r["volume_of_customers"] == "0" and r["response_rate"] == "" for r in rows)


def test_cli_xlsx_and_json_match_the_api(quarter: Any, tmp_path: Any) -> None:
    stack, _, key = quarter
    target = tmp_path / "q4.xlsx"
    cli = stack.cli("report", "a11", "--fiscal-year", "2026", "--quarter", "4", "--service", "rpt-thumbs",
                    "--format", "xlsx", "--output", str(target))  # fmt: skip
    assert cli.returncode == 0, cli.stderr.decode()
    api = stack.client.get("/api/v1/reports/a11?fiscal_year=2026&quarter=4&service=rpt-thumbs&format=xlsx", headers=key)
    assert formats.read_xlsx(target.read_bytes()) == formats.read_xlsx(api.get_data())
    header, rows = formats.read_xlsx(target.read_bytes())
    row = dict(zip(header, rows[0], strict=True))
    assert row["survey_type"] == "thumbs_up_down" and row["trust_agree_pct"] == 0.6667 and row["trust_mean"] is None
    nowhere = str(tmp_path / "no-such-folder" / "q4.csv")  # a file that cannot be opened: one line, not a traceback
    for command in ("a11", "responses"):
        failed = stack.cli("report", command, "--fiscal-year", "2026", "--quarter", "4", "--output", nowhere)
        assert failed.returncode == 1 and b"Traceback" not in failed.stderr
        assert failed.stderr.decode().startswith(f"Error: cannot write {nowhere}:")
    cli = stack.cli("report", "a11", "--fiscal-year", "2026", "--quarter", "4", "--service", "rpt-thumbs",
                    "--format", "json")  # fmt: skip
    assert (
        json.loads(cli.stdout)
        == stack.client.get("/api/v1/reports/a11?fiscal_year=2026&quarter=4&service=rpt-thumbs", headers=key).get_json()
    )


def test_cli_refuses_bad_options(report_stack: ReportStack) -> None:
    unknown = report_stack.cli("report", "a11", "--fiscal-year", "2026", "--quarter", "4", "--service", "nope")
    assert unknown.returncode == 2 and b"unknown services: nope" in unknown.stderr
    quarter = report_stack.cli("report", "responses", "--fiscal-year", "2026", "--quarter", "5")
    assert quarter.returncode == 2 and b"--quarter" in quarter.stderr
