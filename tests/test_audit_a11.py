"""An A-11 fidelity audit: small quarters built by hand through the real engine, each figure computed by hand under
the policy and SPEC §6, and compared with every output that shows it (the §6.1 file, the dashboard page, /data).

Quarters are FY2026 Q4 (July-September 2026, America/New_York), on SQLite and PostgreSQL, through intake, the
dispatcher, the survey sessions, the report API, the dashboard with a signed-in account and the public pages.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests import reports_support
from tests.dashboard_support import make_account, rows_by_first_cell, sign_in
from tests.reports_support import NEW_YORK, QuarterBuilder, ReportStack, local
from tests.test_atk_dash import _switched_flows
from tests.test_submissions import Q4, SUBMISSIONS

report_config_dir = reports_support.report_config_dir
report_stack = reports_support.report_stack


def _file(stack: ReportStack, service: str) -> list[dict[str, str]]:
    """File the quarter of ``service`` through the API; the §6.1 CSV rows that were filed."""
    key = stack.key([service])
    filed = stack.client.post(SUBMISSIONS, headers=key, json={"fiscal_year": 2026, "quarter": 4, "service": service})
    assert filed.status_code == 201, filed.get_data(as_text=True)
    body = stack.client.get(f"{SUBMISSIONS}/{filed.get_json()['id']}?format=csv", headers=key)
    assert body.status_code == 200
    return list(csv.DictReader(io.StringIO(body.get_data(as_text=True))))


def _dashboard(stack: ReportStack, service: str) -> str:
    """The dashboard page of ``service`` for FY2026 Q4 (monthly trend), as its program manager sees it."""
    make_account(stack.rt, "pm@example.gov", (service,))
    client = stack.app.test_client()
    assert sign_in(client, "pm@example.gov").status_code == 302
    page = client.get(f"/dashboard/services/{service}?{Q4}&bucket=month")
    assert page.status_code == 200
    return str(page.text)


def test_the_dashboard_rounds_its_means_as_the_filed_file_and_the_public_page_do(report_stack: ReportStack) -> None:
    """Eight respondents: satisfaction 5,5,5,5,5,5,5,2 (37 / 8 = 4.625) and trust 5,5,5,5,2,1,1,1 (25 / 8 = 3.125).
    The A-11 file and /data round half up (4.63, 3.13); the dashboard's ratings and trend tables showed the float's
    own rounding (4.62, 3.12) beside the file they download and the "what moved" figures of the same page."""
    stack = report_stack
    b = QuarterBuilder(stack.rt)
    for n, (satisfaction, trust) in enumerate(zip((5, 5, 5, 5, 5, 5, 5, 2), (5, 5, 5, 5, 2, 1, 1, 1), strict=True)):
        b.report("rpt-mixed", f"M{n}", local(NEW_YORK, 2026, 7, 10, 9, n), email=True)
        b.answer_invitation("rpt-mixed", f"M{n}", {"satisfaction": satisfaction, "trust": trust},
                            local(NEW_YORK, 2026, 7, 10, 12, n))  # fmt: skip
    (email,) = [r for r in _file(stack, "rpt-mixed") if r["channel"] == "email"]
    assert (email["volume_of_respondents"], email["satisfaction_mean"], email["trust_mean"]) == ("8", "4.63", "3.13")

    public = rows_by_first_cell(stack.client.get("/data/rpt-mixed").text, "table-ratings")
    assert (public["Satisfaction"][6], public["Trust"][6]) == ("4.63", "3.13")
    page = _dashboard(stack, "rpt-mixed")
    ratings = rows_by_first_cell(page, "table-ratings")  # points 1-5, answers, mean, share agreeing
    assert (ratings["Satisfaction"][5:7], ratings["Trust"][5:7]) == (["8", "4.63"], ["8", "3.13"])
    # The month of July: satisfaction agree, mean, answers; trust agree, mean, answers.
    july = rows_by_first_cell(page, "table-trend")["2026-07"]
    assert (july[1], july[2], july[4], july[5]) == ("4.63", "8", "3.13", "8")


def test_a_quarter_asked_on_both_scales_shows_the_mean_of_its_five_point_answers_on_the_dashboard(
    database_url: str, flows_dir: Path, tmp_path: Path
) -> None:
    """Trust asked on a 5-point scale in July (a 3), then as thumbs after the service switched to a11-drivers in
    August (a thumbs up). The A-11 file has a row per survey: the 5-point row's mean 3.00, the thumbs row none; /data
    and the "what moved" figures show 3.00. The dashboard's mean took the thumbs up as a 5 on the scale: 4.00 for
    the quarter, and 5.00 for August, a month with no 5-point answer at all."""
    with _switched_flows(database_url, flows_dir, tmp_path, "a11-standard", "a11-drivers") as (before, after):
        b = QuarterBuilder(before.rt)
        b.report("sv-switch", "S1", local(NEW_YORK, 2026, 7, 10, 10, 0), email=True)
        b.answer_invitation("sv-switch", "S1", {"satisfaction": 2, "trust": 3}, local(NEW_YORK, 2026, 7, 10, 10, 30))
        b = QuarterBuilder(after.rt)
        b.report("sv-switch", "D1", local(NEW_YORK, 2026, 8, 10, 10, 0), email=True)
        b.answer_invitation("sv-switch", "D1", {"trust": 5, "went_well": ("ease",)},
                            local(NEW_YORK, 2026, 8, 10, 10, 30))  # fmt: skip
        filed = _file(after, "sv-switch")
        assert sorted((r["survey_type"], r["trust_n"], r["trust_mean"]) for r in filed if r["trust_n"] != "0") == [
            ("likert_scale", "1", "3.00"), ("thumbs_up_down", "1", "")]  # fmt: skip

        public = rows_by_first_cell(after.client.get("/data/sv-switch").text, "table-ratings")
        page = _dashboard(after, "sv-switch")
        ratings = rows_by_first_cell(page, "table-ratings")
        # Points 1-5, answers, mean, share agreeing: the thumbs up is an answer that agrees, not a 5 on the scale.
        assert ratings["Trust"] == public["Trust"] == ["0", "0", "1", "0", "1", "2", "3.00", "50.0\u00a0%"]
        trend = rows_by_first_cell(page, "table-trend")
        # Satisfaction agree, mean, answers; trust agree, mean, answers.
        assert trend["2026-07"][3:] == ["0.0\u00a0%", "3.00", "1"]
        assert trend["2026-08"][3:] == ["100.0\u00a0%", "—", "1"]


def test_a_filed_response_rate_shows_on_data_as_on_the_dashboard(report_stack: ReportStack) -> None:
    """19 customers invited by email, 4 answered: the file's response_rate is 0.2105 (4/19 = 0.210526…). The dashboard
    shows 21.1 %; /data showed 21.0 %: it rounded the file's 4-place share again (21.05, half to even), where the
    share is 21.05…% and the file's own rounding is half up."""
    stack = report_stack
    b = QuarterBuilder(stack.rt)
    for n in range(19):
        b.report("rpt-mixed", f"R{n}", local(NEW_YORK, 2026, 8, 3, 9, n), email=True)
        if n < 4:
            b.answer_invitation(
                "rpt-mixed", f"R{n}", {"satisfaction": 4, "trust": 4}, local(NEW_YORK, 2026, 8, 3, 12, n)
            )
    (email,) = [r for r in _file(stack, "rpt-mixed") if r["channel"] == "email"]
    assert (email["volume_of_customers_provided_survey_opportunity"], email["volume_of_respondents"],
            email["response_rate"]) == ("19", "4", "0.2105")  # fmt: skip
    public = stack.client.get("/data/rpt-mixed").text
    dashboard = _dashboard(stack, "rpt-mixed")
    # Customers, opportunities, respondents, response rate.
    assert rows_by_first_cell(dashboard, "table-channel")["Email"][:4] == ["19", "19", "4", "21.1\u00a0%"]
    assert rows_by_first_cell(public, "table-channel")["Email"] == ["19", "19", "4", "21.1\u00a0%"]
