"""Filing a quarter in Chromium: write the reflection, press "Submit", see the quarter submitted with who and when,
and what moved after a new answer; axe finds nothing serious on the filing section (SPEC §6 "Submissions")."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests import dashboard_support
from tests.browser.conftest import axe_violations
from tests.browser.test_dashboard import _sign_in, app, built, database_url, laptop

# The fixtures these tests take (pytest finds them by name in the module).
__all__ = ["app", "built", "database_url", "laptop"]
dash_config_dir = dashboard_support.dash_config_dir
dash_settings = dashboard_support.dash_settings
dash_runtime = dashboard_support.dash_runtime
dash_app = dashboard_support.dash_app


def test_write_the_reflection_submit_and_see_the_quarter_filed(laptop: Any, live_server: str, built: Any) -> None:
    quarter, key = built
    _sign_in(laptop, live_server)
    assert "Draft" in laptop.locator("#filing-state").inner_text()
    laptop.get_by_label("Reflection: what the team learned and did this quarter").fill("We answered faster.")
    laptop.get_by_role("button", name="Save the reflection").click()
    laptop.wait_for_url("**#filing-h")
    assert laptop.get_by_label("Reflection: what the team learned and did this quarter").input_value() == (
        "We answered faster.")  # fmt: skip
    laptop.get_by_role("button", name="Submit").click()
    laptop.wait_for_url("**#filing-h")
    state = laptop.locator("#filing-state").inner_text()
    assert "Submitted" in state and "pm@example.gov" in state
    assert "Nothing has moved" in laptop.locator("table.moved caption").inner_text()
    assert axe_violations(laptop) == []

    url = (f"{live_server}/api/v1/reports/a11/submissions?fiscal_year={quarter.fiscal_year}"
           f"&quarter={quarter.quarter}")  # fmt: skip
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        (filed,) = json.loads(answer.read())["submissions"]
    assert filed["submitted_by"] == "pm@example.gov" and filed["service"] == "dash-email"
    request = urllib.request.Request(f"{live_server}/api/v1/reports/a11/submissions/{filed['id']}?format=json",
                                     headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert {r["reflection"] for r in json.loads(answer.read())["rows"]} == {"We answered faster."}
