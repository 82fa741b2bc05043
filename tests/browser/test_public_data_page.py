"""The public data pages in Chromium, not signed in: the charts render with their tables, axe finds nothing serious
(English and Spanish), the page reads at 320 px wide without sideways scrolling, and the CSV link downloads the
submitted file (SPEC §6.3)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests import reports_support
from tests.browser.conftest import axe_violations
from tests.reports_support import CHICAGO, NEW_YORK, QuarterBuilder, ReportStack, local

report_config_dir = reports_support.report_config_dir
report_stack = reports_support.report_stack


@pytest.fixture(params=["postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """One backend is enough in the browser (both are checked in tests/test_public_data.py)."""
    from tests.conftest import prepared_database

    return prepared_database(request.getfixturevalue("pg_database"))


@pytest.fixture
def app(report_stack: ReportStack) -> Any:
    """The live server serves the reporting stack (its services, the SMS and email stand-ins)."""
    return report_stack.app


@pytest.fixture
def filed(report_stack: ReportStack) -> dict[str, str]:
    """Two submitted quarters of rpt-mixed and one of rpt-thumbs (drivers); the headers of the key that filed them."""
    stack = report_stack
    b = QuarterBuilder(stack.rt)
    answers = [(2026, 8, 5, 4), (2026, 8, 4, 5), (2026, 8, 2, 3), (2026, 11, 5, 5), (2026, 11, 3, 4)]
    for i, (year, month, satisfaction, trust) in enumerate(answers):
        b.report("rpt-mixed", f"P{i}", local(NEW_YORK, year, month, 3 + i, 15, 0), email=True)
        b.answer_invitation("rpt-mixed", f"P{i}", {"satisfaction": satisfaction, "trust": trust},
                            local(NEW_YORK, year, month, 3 + i, 15, 30))  # fmt: skip
    b.report("rpt-thumbs", "U1", local(CHICAGO, 2026, 7, 15, 12, 0), email=True)
    b.answer_invitation("rpt-thumbs", "U1", {"trust": 5, "went_well": ("effectiveness", "employee")},
                        local(CHICAGO, 2026, 7, 15, 12, 30))  # fmt: skip
    key = stack.key(["rpt-mixed", "rpt-thumbs"])
    for service, year, quarter in (("rpt-mixed", 2026, 4), ("rpt-mixed", 2027, 1), ("rpt-thumbs", 2026, 4)):
        answer = stack.client.post("/api/v1/reports/a11/submissions",
                                   json={"fiscal_year": year, "quarter": quarter, "service": service}, headers=key)  # fmt: skip
        assert answer.status_code == 201
    return key


@pytest.fixture
def narrow(browser: Any) -> Iterator[Any]:
    """The narrowest phone (320 CSS px; WCAG 1.4.10 reflow). The CSP is bypassed only so that axe can be injected."""
    context = browser.new_context(viewport={"width": 320, "height": 640}, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def laptop(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


def _fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_a_visitor_reads_the_charts_and_downloads_the_submitted_file(laptop: Any, live_server: str,
                                                                     filed: dict[str, str]) -> None:  # fmt: skip
    laptop.goto(f"{live_server}/")
    laptop.get_by_role("link", name="Public data").click()
    laptop.wait_for_url("**/data")
    assert axe_violations(laptop) == []
    laptop.get_by_role("link", name="Passport Renewal").click()
    laptop.wait_for_url("**/data/rpt-mixed")
    assert laptop.locator("h1").inner_text() == "Passport Renewal FY2027 Q1"
    for chart in ("chart-ratings", "chart-channel", "chart-quarters"):
        svg = laptop.locator(f"svg#{chart}")
        assert svg.is_visible() and svg.get_attribute("role") == "img"
        assert svg.bounding_box()["width"] > 350
    assert laptop.locator("#chart-ratings text.value").first.text_content() == "50\u00a0%"  # satisfaction: 5 and 3
    assert laptop.get_by_role("table", name="Every submitted quarter, newest first").is_visible()
    assert laptop.locator("#chart-quarters path.line").count() == 2  # satisfaction and trust over two quarters
    assert axe_violations(laptop) == []
    assert _fits(laptop)

    with laptop.expect_download() as info:
        laptop.get_by_role("link", name="Download the submitted A-11 file").click()
    download = info.value
    assert download.suggested_filename == "a11-rpt-mixed-fy2027-q1.csv"
    with open(download.path(), "rb") as f:
        downloaded = f.read()
    request = urllib.request.Request(f"{live_server}/api/v1/reports/a11/submissions?fiscal_year=2027&quarter=1",
                                     headers=filed)  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        (submission,) = json.loads(answer.read())["submissions"]
    request = urllib.request.Request(f"{live_server}/api/v1/reports/a11/submissions/{submission['id']}?format=csv",
                                     headers=filed)  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert downloaded == answer.read()

    laptop.goto(f"{live_server}/data/rpt-thumbs")
    assert laptop.locator("svg#chart-drivers").is_visible()
    assert axe_violations(laptop) == []


def test_the_page_reads_at_320_px_in_english_and_spanish(narrow: Any, live_server: str, filed: dict[str, str]) -> None:
    for url, heading in ((f"{live_server}/data/rpt-mixed", "Passport Renewal"),
                         (f"{live_server}/data/rpt-mixed?lang=es", "Renovación de pasaporte"),
                         (f"{live_server}/data/rpt-thumbs", "Benefits Contact Center"),
                         (f"{live_server}/data?lang=es", "Datos de experiencia del cliente"),
                         (f"{live_server}/data/rpt-other", "Other Service")):  # fmt: skip
        narrow.goto(url)
        assert narrow.locator("h1").inner_text().startswith(heading), url
        assert _fits(narrow), url
        assert axe_violations(narrow) == [], url
        for svg in narrow.locator("svg.chart").all():
            box = svg.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 321, url
    narrow.goto(f"{live_server}/data/rpt-mixed?lang=es")
    assert narrow.locator("html").get_attribute("lang") == "es"
    assert "Tasa de respuesta por canal" in narrow.locator("#channel-h").inner_text()
