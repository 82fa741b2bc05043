"""The dashboard's figures: a quarter built through the real engine, read off the page, checked against the
numbers computed by hand and against the A-11 file (JSON and CSV) of the same quarter."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.api.auth import create_api_key
from engine.reporting import what_counts as wc
from engine.reporting.fiscal import fiscal_quarter
from engine.store.db import unit_of_work, utcnow
from tests import dashboard_support
from tests.dashboard_support import EXPECTED, TEST_ANSWER, build_quarter, make_account, rows_by_first_cell, sign_in

dash_config_dir = dashboard_support.dash_config_dir
dash_settings = dashboard_support.dash_settings
dash_runtime = dashboard_support.dash_runtime
dash_app = dashboard_support.dash_app
dash_client = dashboard_support.dash_client

CHANNEL_LABELS = {"Email": "email"}


def _pct1(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}\u00a0%"


@pytest.fixture
def quarter_built(dash_runtime, dash_client):
    build_quarter(dash_runtime)
    make_account(dash_runtime, "pm@example.gov", ("dash-email", "dash-drivers"))
    assert sign_in(dash_client, "pm@example.gov").status_code == 302
    with unit_of_work(dash_runtime.sessions) as session:
        key = create_api_key(session, "reader", ("dash-email", "dash-drivers"), ("reports",))
    quarter = fiscal_quarter(utcnow() - timedelta(minutes=10), ZoneInfo("America/New_York"))
    return quarter, {"Authorization": f"Bearer {key}"}


def _a11(client, auth, quarter, service, fmt="json"):
    answer = client.get(f"/api/v1/reports/a11?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}"
                        f"&service={service}&format={fmt}", headers=auth)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer


def test_the_page_shows_the_figures_computed_by_hand(dash_client, quarter_built):
    quarter, _ = quarter_built
    page = dash_client.get(
        f"/dashboard/services/dash-email?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}"
    )
    assert page.status_code == 200
    html = page.text
    want = EXPECTED["dash-email"]
    funnel = rows_by_first_cell(html, "table-funnel")
    assert {step: int(cells[0].replace(",", "")) for step, cells in funnel.items()} == want["funnel"]
    assert f'id="response-rate">{want["response_rate"]}<' in html
    ratings = rows_by_first_cell(html, "table-ratings")
    # satisfaction 5, 4, 2, 5: one 2, one 4, two 5s; trust 4, 4, 1, 3: one 1, one 3, two 4s
    assert ratings["Satisfaction"] == ["0", "1", "0", "1", "2", "4", "4.00", "75.0\u00a0%"]
    assert ratings["Trust"] == ["1", "0", "1", "2", "0", "4", "3.00", "50.0\u00a0%"]
    assert ratings["Effectiveness"] == ["0", "0", "0", "2", "0", "2", "4.00", "100.0\u00a0%"]
    assert ratings["Ease"] == ["0", "0", "0", "0", "0", "0", "—", "—"]  # asked by the flow, never answered
    assert "table-drivers" not in html and "as a 5-point question" in html  # a11-standard asks no driver choices
    offices = rows_by_first_cell(html, "table-office")
    for code, (customers, opportunities, respondents) in want["offices"].items():
        label = next(label for label in offices if label.startswith(code))
        assert [int(c) for c in offices[label][:3]] == [customers, opportunities, respondents], code
    comments = [c.strip() for c in html.split('id="comments"')[1].split("</ol>")[0].split("<p>")[1:]]
    texts = [c.split("</p>")[0] for c in comments if "</p></blockquote>" in c]
    assert texts == want["comments"]
    assert "202" not in "".join(texts) and "pat@example.com" not in html
    assert TEST_ANSWER[2] not in html and "Test data</span>" not in html


def test_the_page_agrees_with_the_a11_file(dash_client, quarter_built):
    quarter, auth = quarter_built
    for slug in ("dash-email", "dash-drivers"):
        rows = _a11(dash_client, auth, quarter, slug).get_json()["rows"]
        html = dash_client.get(f"/dashboard/services/{slug}?fiscal_year={quarter.fiscal_year}"
                               f"&quarter={quarter.quarter}").text  # fmt: skip
        channels = rows_by_first_cell(html, "table-channel")
        for label, cells in channels.items():
            row = next(r for r in rows if r["channel"] == wc.a11_channel(CHANNEL_LABELS[label]))
            assert [int(c) for c in cells[:3]] == [row["volume_of_customers"],
                                                   row["volume_of_customers_provided_survey_opportunity"],
                                                   row["volume_of_respondents"]]  # fmt: skip
            assert cells[3] == _pct1(row["response_rate"])
        assert len(channels) == len(rows) == 1
        (row,) = rows
        want = EXPECTED[slug]
        assert (row["volume_of_customers"], row["volume_of_customers_provided_survey_opportunity"],
                row["volume_of_respondents"]) == (want["customers"], want["opportunities"], want["respondents"])  # fmt: skip
        ratings = rows_by_first_cell(html, "table-ratings")
        for tag in wc.RATING_TAGS:
            if not row[f"{tag}_n"]:  # no answers: no row, or a row of zeros for a tag the flow asks
                assert tag.capitalize() not in ratings or ratings[tag.capitalize()][5] == "0"
                continue
            cells = ratings[tag.capitalize()]
            assert int(cells[5]) == (row[f"{tag}_n"] or 0)
            assert cells[7] == _pct1(row[f"{tag}_agree_pct"])
            for point in (1, 5):
                assert int(cells[point - 1]) == (row[f"{tag}_{point}"] or 0)
            if row.get(f"{tag}_mean") is not None:
                assert cells[6] == f"{row[f'{tag}_mean']:.2f}"
        drivers = rows_by_first_cell(html, "table-drivers") if "table-drivers" in html else {}
        for name, (positive, negative) in drivers.items():
            driver = name.lower()
            assert int(positive) == (row[f"positive_{driver}"] or 0), (slug, name)
            assert int(negative) == (row[f"negative_{driver}"] or 0), (slug, name)
        if slug == "dash-drivers":
            assert "Satisfaction" not in ratings  # a11-drivers asks no satisfaction question
        if "drivers" in want:
            assert {k: (int(p), int(n)) for k, (p, n) in drivers.items() if k in want["drivers"]} == want["drivers"]
            assert ratings["Trust"][:5] == ["1", "—", "—", "—", "2"] and ratings["Trust"][6] == "—"


def test_the_office_breakdown_agrees_with_the_a11_file_by_office(dash_client, quarter_built):
    quarter, auth = quarter_built
    answer = dash_client.get(f"/api/v1/reports/a11?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}"
                             "&service=dash-email&by=office&format=json", headers=auth)  # fmt: skip
    rows = {row["office"]: row for row in answer.get_json()["rows"]}
    html = dash_client.get(f"/dashboard/services/dash-email?fiscal_year={quarter.fiscal_year}"
                           f"&quarter={quarter.quarter}").text  # fmt: skip
    offices = rows_by_first_cell(html, "table-office")
    assert {label.split(" ")[0] for label in offices} == set(rows) == {"NYC-01", "HNL-01"}
    for label, cells in offices.items():
        row = rows[label.split(" ")[0]]
        assert [int(c) for c in cells[:3]] == [row["volume_of_customers"],
                                               row["volume_of_customers_provided_survey_opportunity"],
                                               row["volume_of_respondents"]]  # fmt: skip
        assert cells[4] == _pct1(row["satisfaction_agree_pct"]) and int(cells[5]) == row["satisfaction_n"]
        assert cells[6] == _pct1(row["trust_agree_pct"]) and int(cells[7]) == row["trust_n"]


def test_the_download_is_exactly_the_bytes_of_the_report_api(dash_client, quarter_built):
    quarter, auth = quarter_built
    api = _a11(dash_client, auth, quarter, "dash-email", "csv")
    page = dash_client.get(
        f"/dashboard/services/dash-email?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}"
    )
    url = f"/dashboard/services/dash-email/a11.csv?fiscal_year={quarter.fiscal_year}&amp;quarter={quarter.quarter}"
    assert f'href="{url}"' in page.text
    download = dash_client.get(url.replace("&amp;", "&"))
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.data == api.data and b"email" in download.data


def test_the_test_data_view_is_labelled_and_the_counted_view_never_includes_it(dash_client, quarter_built):
    quarter, _ = quarter_built
    base = f"/dashboard/services/dash-email?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}"
    counted = dash_client.get(base).text
    shown = dash_client.get(base + "&data=test").text
    assert "You are looking at test data." in shown and "Test data</span>" in shown
    funnel = rows_by_first_cell(shown, "table-funnel")
    assert funnel["Transactions"][0] == "8" and rows_by_first_cell(counted, "table-funnel")["Transactions"][0] == "6"
    assert TEST_ANSWER[2] in shown and TEST_ANSWER[2] not in counted


@pytest.mark.parametrize("bucket", ["day", "week", "month"])
def test_the_trend_counts_every_answer_once_whatever_the_bucket(dash_client, quarter_built, bucket):
    quarter, _ = quarter_built
    html = dash_client.get(f"/dashboard/services/dash-email?fiscal_year={quarter.fiscal_year}"
                           f"&quarter={quarter.quarter}&bucket={bucket}").text  # fmt: skip
    rows = rows_by_first_cell(html, "table-trend")
    # columns: satisfaction agree, mean, n, trust agree, mean, n (the second header row is skipped by its label)
    data = {k: v for k, v in rows.items() if k[:1].isdigit()}
    assert sum(int(v[2]) for v in data.values()) == 4 and sum(int(v[5]) for v in data.values()) == 4
    assert 1 <= len(data) <= 2  # only periods with answers are listed (all four came within minutes)
    assert '<svg class="chart" id="chart-trend" role="img"' in html


def test_a_quarter_with_only_test_data_points_to_the_test_view(dash_runtime, dash_client):
    from tests.dashboard_support import _intake, _tx

    _intake(dash_runtime, "dash-other", [_tx("dash-other", n, "NYC-01", test=True) for n in range(3)])
    make_account(dash_runtime, "pm@example.gov", ("dash-other",))
    assert sign_in(dash_client, "pm@example.gov").status_code == 302
    page = dash_client.get("/dashboard/services/dash-other").text
    assert "No counted transactions this quarter yet. Test transactions: 3." in page
    assert rows_by_first_cell(page, "table-funnel")["Transactions"][0] == "0"
    assert 'data=test">See the test data</a>' in page
    shown = dash_client.get("/dashboard/services/dash-other?data=test").text
    assert rows_by_first_cell(shown, "table-funnel")["Transactions"][0] == "3"
