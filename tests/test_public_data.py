"""Public data (SPEC §6.3): ``/data`` and ``/data/<service>`` show exactly the submitted quarters, to a visitor who is
not signed in, in English and Spanish, with the submitted §6.1 CSV; nothing live that was not filed, no free text,
no contact data, not who filed.

A small quarter (FY2026 Q4 = July to September 2026) is built through the real engine on SQLite and PostgreSQL and
filed through the report API, as an agency's system files it; more answers arrive after the filing, some in the
same quarter and some in FY2027 Q1, which nobody submits.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import reports_support
from tests.dashboard_support import rows_by_first_cell, table
from tests.reports_support import CHICAGO, NEW_YORK, QuarterBuilder, ReportStack, local

# The fixtures these tests take (pytest finds them by name in the module).
report_config_dir = reports_support.report_config_dir
report_stack = reports_support.report_stack

SUBMISSIONS = "/api/v1/reports/a11/submissions"
COMMENTS = ("Call me at (202) 555-0123 please", "Write to jo.doe@example.com", "555-0100 is not mine",
            "Late and private: 202-555-0177")  # fmt: skip
NBSP_PCT = "\u00a0%"


def _submit(stack: ReportStack, key: dict[str, str], service: str, year: int = 2026, quarter: int = 4) -> str:
    answer = stack.client.post(SUBMISSIONS, json={"fiscal_year": year, "quarter": quarter, "service": service},
                               headers=key)  # fmt: skip
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return str(answer.get_json()["id"])


def _filed_csv(stack: ReportStack, key: dict[str, str], submission: str) -> bytes:
    answer = stack.client.get(f"{SUBMISSIONS}/{submission}?format=csv", headers=key)
    assert answer.status_code == 200
    return bytes(answer.get_data())


@pytest.fixture
def filed(report_stack: ReportStack) -> tuple[ReportStack, dict[str, Any]]:
    """rpt-mixed filed twice (the second supersedes) and rpt-thumbs filed once; then more data nobody filed."""
    stack = report_stack
    key = stack.key(["rpt-mixed", "rpt-thumbs", "rpt-other"])
    b = QuarterBuilder(stack.rt)
    ny = lambda *p: local(NEW_YORK, 2026, *p)  # noqa: E731
    ct = lambda *p: local(CHICAGO, 2026, *p)  # noqa: E731
    # rpt-mixed: an SMS answered in full, an email answered in full, an email opened and left.
    b.report("rpt-mixed", "M1", ny(8, 3, 15, 0), phone=True)
    b.answer_invitation("rpt-mixed", "M1", {"satisfaction": 5, "trust": 4, "comments": COMMENTS[0]}, ny(8, 3, 15, 30),
                        channel="sms")  # fmt: skip
    b.report("rpt-mixed", "M2", ny(8, 4, 15, 0), email=True)
    b.answer_invitation("rpt-mixed", "M2", {"satisfaction": 4, "trust": 5, "comments": COMMENTS[1]}, ny(8, 4, 16, 0))
    b.report("rpt-mixed", "M3", ny(8, 5, 15, 0), email=True)
    b.answer_invitation("rpt-mixed", "M3", {}, ny(8, 5, 15, 30), complete=False)
    first = _submit(stack, key, "rpt-mixed")
    # A late email answer in the quarter, then filed again: the second filing stands.
    b.report("rpt-mixed", "M4", ny(9, 2, 15, 0), email=True)
    b.answer_invitation("rpt-mixed", "M4", {"satisfaction": 1, "trust": 2}, ny(9, 2, 15, 30))
    second = _submit(stack, key, "rpt-mixed")
    # rpt-thumbs: thumbs trust with drivers, one comment with a phone number.
    b.report("rpt-thumbs", "U1", ct(7, 15, 12, 0), email=True)
    b.answer_invitation("rpt-thumbs", "U1", {"trust": 5, "went_well": ("effectiveness", "employee")}, ct(7, 15, 12, 30))
    b.report("rpt-thumbs", "U2", ct(7, 16, 12, 0), email=True)
    b.answer_invitation("rpt-thumbs", "U2", {"trust": 1, "could_be_better": ("ease",), "comments": COMMENTS[2]},
                        ct(7, 16, 12, 30))  # fmt: skip
    thumbs = _submit(stack, key, "rpt-thumbs")
    # Never filed: another answer in FY2026 Q4 (the live figures move), and a quarter nobody submitted.
    b.report("rpt-mixed", "M5", ny(9, 20, 15, 0), email=True)
    b.answer_invitation("rpt-mixed", "M5", {"satisfaction": 2, "trust": 3, "comments": COMMENTS[3]}, ny(9, 20, 15, 30))
    b.report("rpt-mixed", "N1", local(NEW_YORK, 2026, 10, 15, 9, 0), email=True)
    b.answer_invitation("rpt-mixed", "N1", {"satisfaction": 3, "trust": 3}, local(NEW_YORK, 2026, 10, 15, 9, 30))
    return stack, {"key": key, "first": first, "second": second, "thumbs": thumbs}


def _private_strings(stack: ReportStack) -> list[str]:
    """Whatever a response or a filing carries that must never be public."""
    return [*COMMENTS, "555-01", "example.com", "@", "+1202555", "api-key:", "Late and private"]


def test_the_service_page_shows_the_standing_submission_and_nothing_else(filed: Any) -> None:
    stack, ids = filed
    live = stack.client.get("/api/v1/reports/a11?fiscal_year=2026&quarter=4&service=rpt-mixed&format=json",
                            headers=ids["key"]).get_json()  # fmt: skip
    assert sum(r["satisfaction_n"] for r in live["rows"]) == 4  # the live quarter has M5, filed nowhere

    page = stack.client.get("/data/rpt-mixed")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Passport Renewal" in html and "FY2026 Q4" in html and "Department of State" in html
    assert "FY2027" not in html  # the quarter nobody submitted
    # The second filing's figures: M1 (SMS), M2, M3 (opened, no answer) and M4 (email); not M5, not N1.
    ratings = rows_by_first_cell(html, "table-ratings")
    assert ratings["Satisfaction"] == ["1", "0", "0", "1", "1", "3", "3.33", "66.7" + NBSP_PCT]
    assert ratings["Trust"] == ["0", "1", "0", "1", "1", "3", "3.67", "66.7" + NBSP_PCT]
    assert set(ratings) == {"Satisfaction", "Trust"}  # the other questions were not answered
    channels = rows_by_first_cell(html, "table-channel")
    assert channels == {
        "Automated phone (IVR)": ["0", "0", "0", "—"],  # filed: the service has post-call IVR numbers
        "Text messages (SMS)": ["1", "1", "1", "100.0" + NBSP_PCT],
        "Email": ["3", "3", "2", "66.7" + NBSP_PCT],
    }
    assert "chart-drivers" not in html  # a11-standard asks its drivers as 5-point questions: none filed
    for chart in ("chart-ratings", "chart-channel"):
        assert f'<svg class="chart" id="{chart}" role="img"' in html
    assert '<text x="' in html and ">67" + NBSP_PCT + "<" in html  # the chart prints its values
    summary = table(html, "table-quarters")
    assert summary[1][:6] == ["FY2026 Q4", "4", "3", "75.0" + NBSP_PCT, "66.7" + NBSP_PCT, "66.7" + NBSP_PCT]
    assert len(summary) == 2
    assert 'href="/data/rpt-mixed/2026-q4.csv"' in html
    for private in _private_strings(stack):
        assert private not in html, private
    # No sign-in, and the page is sent like every other HTML page.
    assert page.headers["Content-Security-Policy"] and page.headers["X-Frame-Options"] == "DENY"
    assert "Set-Cookie" not in page.headers


def test_drivers_and_a_thumbs_question_show_as_filed(filed: Any) -> None:
    stack, _ = filed
    html = stack.client.get("/data/rpt-thumbs").get_data(as_text=True)
    assert rows_by_first_cell(html, "table-ratings") == {
        "Trust": ["1", "—", "—", "—", "1", "2", "—", "50.0" + NBSP_PCT]
    }
    drivers = rows_by_first_cell(html, "table-drivers")
    assert drivers["Effectiveness"] == ["1", "0"] and drivers["Employee"] == ["1", "0"]
    assert drivers["Ease"] == ["0", "1"] and drivers["Humanity"] == ["0", "0"]
    assert '<svg class="chart" id="chart-drivers" role="img"' in html
    for private in _private_strings(stack):
        assert private not in html, private


def test_the_csv_is_the_submitted_file_byte_for_byte(filed: Any) -> None:
    stack, ids = filed
    answer = stack.client.get("/data/rpt-mixed/2026-q4.csv")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="a11-rpt-mixed-fy2026-q4.csv"'
    body = answer.get_data()
    assert body == _filed_csv(stack, ids["key"], ids["second"])
    assert body != _filed_csv(stack, ids["key"], ids["first"])  # the superseded filing is not offered
    live = stack.client.get("/api/v1/reports/a11?fiscal_year=2026&quarter=4&service=rpt-mixed&format=csv",
                            headers=ids["key"]).get_data()  # fmt: skip
    assert body != live  # M5 arrived after the filing
    text = body.decode("utf-8")
    for private in _private_strings(stack):
        assert private not in text, private
    thumbs = stack.client.get("/data/rpt-thumbs/2026-q4.csv").get_data()
    assert thumbs == _filed_csv(stack, ids["key"], ids["thumbs"])


def test_the_csv_keeps_a_filed_formula_neutralized(report_stack: ReportStack) -> None:
    """The reflection is filed in the CSV as written; a formula in it stays neutralized in the public copy."""
    stack = report_stack
    from engine.reporting import submissions
    from engine.reporting.fiscal import FiscalQuarter
    from engine.store.db import unit_of_work

    QuarterBuilder(stack.rt).report("rpt-other", "O1", local(NEW_YORK, 2026, 8, 3, 15, 0), email=True)
    with unit_of_work(stack.rt.sessions) as session:
        submissions.save_reflection(stack.rt, session, FiscalQuarter(2026, 4), "rpt-other", "=HYPERLINK(1)", "pm")
    _submit(stack, stack.key(["rpt-other"]), "rpt-other")
    body = stack.client.get("/data/rpt-other/2026-q4.csv").get_data(as_text=True)
    assert "'=HYPERLINK(1)" in body and ",=HYPERLINK" not in body
    assert "HYPERLINK" not in stack.client.get("/data/rpt-other").get_data(as_text=True)  # no free text on the page


def test_quarters_and_services_that_were_not_submitted_are_not_there(filed: Any) -> None:
    stack, _ = filed
    for url in ("/data/rpt-mixed/2027-q1.csv", "/data/rpt-mixed/2026-q3.csv", "/data/rpt-other/2026-q4.csv",
                "/data/rpt-mixed/2026-q9.csv", "/data/rpt-mixed/99999999999999999999-q4.csv",
                "/data/rpt-mixed/1999-q4.csv", "/data/nope/2026-q4.csv", "/data/nope", "/data/rpt-mixed/x.csv"):  # fmt: skip
        answer = stack.client.get(url)
        assert answer.status_code == 404, url
        assert answer.mimetype == "text/html", url
    missing = stack.client.get("/data/nope").get_data(as_text=True)
    assert "Page not found" in missing and 'href="/data"' in missing
    assert "Passport Renewal has not submitted that quarter." in stack.client.get(
        "/data/rpt-mixed/2027-q1.csv").get_data(as_text=True)  # fmt: skip
    other = stack.client.get("/data/rpt-other")
    assert other.status_code == 200
    html = other.get_data(as_text=True)
    assert "No quarter of this service has been submitted yet." in html
    assert "<table" not in html and "<svg" not in html
    assert stack.client.get("/data/rpt-mixed\x00").status_code == 422


def test_the_list_names_each_service_with_its_submitted_quarters(report_stack: ReportStack) -> None:
    stack = report_stack
    empty = stack.client.get("/data")
    assert empty.status_code == 200
    assert 'id="nothing-submitted"' in empty.get_data(as_text=True)
    assert "No quarter has been submitted yet." in empty.get_data(as_text=True)
    b = QuarterBuilder(stack.rt)
    b.report("rpt-mixed", "A1", local(NEW_YORK, 2026, 8, 3, 15, 0), email=True)
    b.answer_invitation("rpt-mixed", "A1", {"satisfaction": 5}, local(NEW_YORK, 2026, 8, 3, 15, 30))
    b.report("rpt-mixed", "A2", local(NEW_YORK, 2026, 11, 3, 15, 0), email=True)
    b.answer_invitation("rpt-mixed", "A2", {"satisfaction": 4}, local(NEW_YORK, 2026, 11, 3, 15, 30))
    key = stack.key(["rpt-mixed"])
    _submit(stack, key, "rpt-mixed", 2026, 4)
    _submit(stack, key, "rpt-mixed", 2027, 1)
    _submit(stack, key, "rpt-mixed", 2027, 1)  # filed twice: listed once
    html = stack.client.get("/data").get_data(as_text=True)
    assert 'id="nothing-submitted"' not in html
    assert 'href="/data/rpt-mixed"' in html and 'href="/data/rpt-other"' in html
    assert "Submitted quarters: FY2027 Q1, FY2026 Q4" in " ".join(html.split())
    assert html.count("No quarter submitted yet.") == len(stack.rt.catalog.services) - 1
    # The service page: the newest quarter first, both listed, and the trend over quarters drawn.
    page = stack.client.get("/data/rpt-mixed").get_data(as_text=True)
    assert '<span class="period">FY2027 Q1</span>' in page
    assert [row[0] for row in table(page, "table-quarters")[1:]] == ["FY2027 Q1", "FY2026 Q4"]
    assert '<svg class="chart" id="chart-quarters" role="img"' in page
    assert "/data/rpt-mixed/2026-q4.csv" in page and "/data/rpt-mixed/2027-q1.csv" in page


def test_the_pages_speak_spanish(filed: Any) -> None:
    stack, _ = filed
    for page in (stack.client.get("/data/rpt-mixed", headers={"Accept-Language": "es-MX,es;q=0.9"}),
                 stack.client.get("/data/rpt-mixed?lang=es")):  # fmt: skip
        html = page.get_data(as_text=True)
        assert '<html lang="es">' in html
        assert "Datos públicos" in html and "AF2026 T4" in html and "Tasa de respuesta" in html
        assert "Satisfacción" in rows_by_first_cell(html, "table-ratings")
        assert 'hreflang="en"' in html  # the switch back to English
    index = stack.client.get("/data", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Datos de experiencia del cliente" in index
    assert "Trimestres presentados: AF2026 T4" in " ".join(index.split())
    english = stack.client.get("/data/rpt-mixed?lang=en", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="en">' in english and "Public data" in english
    missing = stack.client.get("/data/nope?lang=es")
    assert missing.status_code == 404 and "Página no encontrada" in missing.get_data(as_text=True)


def test_the_start_page_links_to_the_public_data(report_stack: ReportStack) -> None:
    html = report_stack.client.get("/").get_data(as_text=True)
    assert 'href="/data"' in html


def test_the_filed_json_and_the_page_agree(filed: Any) -> None:
    """The page's volumes are the filed file's: every channel row's cells summed, as the page shows them."""
    stack, ids = filed
    rows = json.loads(stack.client.get(f"{SUBMISSIONS}/{ids['second']}?format=json", headers=ids["key"]).get_data())
    html = stack.client.get("/data/rpt-mixed").get_data(as_text=True)
    shown = rows_by_first_cell(html, "table-channel")
    names = {"automated_phone": "Automated phone (IVR)", "sms_text_messages": "Text messages (SMS)", "email": "Email"}
    assert len(rows["rows"]) == len(shown) == 3
    for row in rows["rows"]:
        cells = shown[names[row["channel"]]]
        assert cells[:3] == [str(row["volume_of_customers"]),
                             str(row["volume_of_customers_provided_survey_opportunity"]),
                             str(row["volume_of_respondents"])]  # fmt: skip
        rate = row["response_rate"]
        assert cells[3] == ("—" if rate is None else f"{rate * 100:.1f}" + NBSP_PCT)


def test_odd_quarters_slugs_and_methods_get_a_precise_4xx(filed: Any) -> None:
    stack, _ = filed
    for url in ("/data/rpt-mixed/0-q4.csv", "/data/rpt-mixed/99999-q4.csv", "/data/rpt-mixed/-1-q4.csv",
                "/data/rpt-mixed/2026-q5.csv", "/data/rpt-mixed/2026-q0.csv", "/data/rpt-mixed/2026-q-1.csv",
                "/data/rpt-mixed/2026-q4.CSV", "/data/rpt-mixed/2026-Q4.csv", "/data/rpt-mixed/2026-q4.csv/",
                "/data/rpt%2Fmixed", "/data/..%2F..%2Fetc", "/data/%E2%80%AE", "/data/" + "a" * 3000, "/data/"):  # fmt: skip
        assert stack.client.get(url).status_code == 404, url
    assert stack.client.get("/data/%ED%A0%80").status_code in (404, 422)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for url in ("/data", "/data/rpt-mixed", "/data/rpt-mixed/2026-q4.csv"):
            assert stack.client.open(url, method=method).status_code == 405, (method, url)
    head = stack.client.head("/data/rpt-mixed/2026-q4.csv")
    got = stack.client.get("/data/rpt-mixed/2026-q4.csv")
    assert head.status_code == got.status_code == 200 and head.data == b""
    assert head.headers["Content-Disposition"] == got.headers["Content-Disposition"]
    assert stack.client.head("/data").status_code == 200
