"""The dashboard in Chromium: sign in on a laptop and on a phone, read a chart's table, download the A-11 file and
compare it with the report API's bytes, axe finds nothing serious, and everything works without JavaScript."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.api.auth import create_api_key
from engine.reporting.fiscal import fiscal_quarter
from engine.store.db import unit_of_work, utcnow
from tests import dashboard_support
from tests.browser.conftest import axe_violations
from tests.dashboard_support import EXPECTED, PASSWORD, build_quarter, make_account

dash_config_dir = dashboard_support.dash_config_dir
dash_settings = dashboard_support.dash_settings
dash_runtime = dashboard_support.dash_runtime
dash_app = dashboard_support.dash_app


@pytest.fixture
def app(dash_app: Any) -> Any:
    """The live server serves the dashboard's own stack (its services, the email stand-in)."""
    return dash_app


@pytest.fixture(params=["postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """One backend is enough in the browser (the figures are checked on both in tests/test_dashboard_figures.py)."""
    from tests.conftest import prepared_database

    return prepared_database(request.getfixturevalue("pg_database"))


@pytest.fixture
def laptop(browser: Any) -> Iterator[Any]:
    """A laptop window (the CSP is bypassed only so that axe can be injected, as the phone fixture does)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def built(dash_runtime: Any) -> Any:
    build_quarter(dash_runtime)
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    with unit_of_work(dash_runtime.sessions) as session:
        key = create_api_key(session, "reader", ("dash-email",), ("reports",))
    return fiscal_quarter(utcnow() - timedelta(minutes=10), ZoneInfo("America/New_York")), key


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/dashboard/")
    assert "/dashboard/sign-in" in page.url
    assert axe_violations(page) == []
    page.get_by_label("Email address").fill("pm@example.gov")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/services/dash-email")


def _fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def _funnel(page: Any) -> dict[str, int]:
    rows = page.locator("#table-funnel tbody tr")
    return {
        rows.nth(i).locator("th").inner_text().strip(): int(
            rows.nth(i).locator("td").first.inner_text().replace(",", "")
        )
        for i in range(rows.count())
    }


def test_sign_in_read_the_charts_and_download_the_file_on_a_laptop(laptop: Any, live_server: str, built: Any) -> None:
    quarter, key = built
    _sign_in(laptop, live_server)
    assert laptop.locator("h1").inner_text().startswith("Passport Renewal")
    for chart in ("chart-funnel", "chart-trend", "chart-channel", "chart-office"):
        svg = laptop.locator(f"svg#{chart}")
        assert svg.is_visible() and svg.get_attribute("role") == "img"
        assert svg.bounding_box()["width"] > 350
    assert _funnel(laptop) == EXPECTED["dash-email"]["funnel"]
    assert laptop.locator("#chart-funnel text.value").first.text_content() == "6"
    assert laptop.get_by_role("table", name="Delivery funnel").is_visible()
    assert axe_violations(laptop) == []
    assert _fits(laptop)

    with laptop.expect_download() as info:
        laptop.get_by_role("link", name="Download the A-11 file").click()
    download = info.value
    assert download.suggested_filename == f"a11-dash-email-fy{quarter.fiscal_year}-q{quarter.quarter}.csv"
    with open(download.path(), "rb") as f:
        downloaded = f.read()
    request = urllib.request.Request(
        f"{live_server}/api/v1/reports/a11?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}"
        "&service=dash-email&format=csv",
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert downloaded == answer.read()
    assert downloaded.count(b"\r\n") == 2  # the header and the email row

    laptop.get_by_label("Trend by").select_option("month")
    laptop.get_by_label("Test data").check()
    laptop.get_by_role("button", name="Show").click()
    laptop.wait_for_url("**data=test**")
    assert "You are looking at test data." in laptop.locator(".test-banner").inner_text()
    assert _funnel(laptop)["Transactions"] == 8
    assert axe_violations(laptop) == []

    laptop.get_by_role("button", name="Sign out").click()
    laptop.wait_for_url("**/dashboard/sign-in?signed_out=1")
    laptop.goto(f"{live_server}/dashboard/services/dash-email")
    assert "/dashboard/sign-in" in laptop.url


def test_the_dashboard_on_a_phone(phone: Any, live_server: str, built: Any) -> None:
    _sign_in(phone, live_server)
    assert _fits(phone), "the page scrolls sideways on a phone"
    chart = phone.locator("svg#chart-trend")
    assert chart.is_visible() and chart.bounding_box()["width"] <= 390
    table = phone.locator("#table-trend")
    table.scroll_into_view_if_needed()
    assert table.is_visible()
    assert phone.get_by_role("link", name="Download the A-11 file").is_visible()
    assert axe_violations(phone) == []


def test_the_dashboard_works_without_javascript(phone_no_js: Any, live_server: str, built: Any) -> None:
    page = phone_no_js
    page.goto(f"{live_server}/dashboard/sign-in")
    page.get_by_label("Email address").fill("pm@example.gov")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/services/dash-email")
    assert _funnel(page)["Completed"] == 4
