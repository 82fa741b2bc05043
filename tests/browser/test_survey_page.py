"""A person answers the web survey in Chromium: phone viewport, JavaScript on and off, Spanish, axe-core."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.dispatch import Dispatcher
from engine.models import Answer, Response
from tests.browser.conftest import axe_violations
from tests.helpers import post, tx

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
LINK = re.compile(r"https://surveys\.example\.gov(/s/[A-Za-z0-9_-]+)")


@pytest.fixture
def survey_path(client, auth, runtime, capsys):
    def make(external_id: str, **fields):
        post(client, tx(external_id, contact={"email": f"{external_id.lower()}@example.com"}, **fields), auth)
        Dispatcher(runtime).drain(datetime.now(UTC) + timedelta(minutes=20))
        match = LINK.search(capsys.readouterr().out)
        assert match
        return match.group(1)

    return make


def _stored(runtime):
    with runtime.sessions() as session:
        responses = session.execute(select(Response)).scalars().all()
        answers = {a.question_id: (a.a11_tag, a.value, a.text) for a in session.execute(select(Answer)).scalars()}
    return responses, answers


def test_answer_on_a_phone_and_see_the_thank_you(phone, live_server, survey_path, runtime):
    page = phone
    page.goto(live_server + survey_path("BR-1"))
    assert page.locator("h1").first.is_visible()
    assert page.get_by_role("heading", name="Paperwork Reduction Act statement").is_visible()
    page.locator("#q-satisfaction").get_by_role("radio", name="Strongly agree", exact=True).check()
    page.locator("#q-trust").get_by_role("radio", name="Agree", exact=True).check()
    page.get_by_label(re.compile("anything else", re.I)).fill("The clerk explained everything.")
    assert axe_violations(page) == []
    page.get_by_role("button", name=re.compile("Submit")).click()
    page.wait_for_selector("text=Thank you")
    assert axe_violations(page) == []
    responses, answers = _stored(runtime)
    assert len(responses) == 1 and responses[0].completed_at is not None
    assert answers["satisfaction"] == ("satisfaction", 5, None)
    assert answers["trust"] == ("trust", 4, None)
    assert answers["comments"][0] == "free_text"


def test_without_javascript(phone_no_js, live_server, survey_path, runtime):
    page = phone_no_js
    page.goto(live_server + survey_path("BR-2"))
    page.locator("#q-satisfaction").get_by_role("radio", name="Disagree", exact=True).check()
    page.get_by_role("button", name=re.compile("Submit")).click()
    page.wait_for_selector("text=Thank you")
    _, answers = _stored(runtime)
    assert answers == {"satisfaction": ("satisfaction", 2, None)}


def test_errors_are_announced_and_focusable(phone, live_server, survey_path, runtime):
    page = phone
    page.goto(live_server + survey_path("BR-3"))
    page.evaluate("document.querySelector('#q-satisfaction-5').value = '9'")
    page.locator("#q-satisfaction").get_by_role("radio", name="Strongly agree", exact=True).check()
    page.get_by_role("button", name=re.compile("Submit")).click()
    summary = page.get_by_role("alert")
    assert summary.is_visible()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert axe_violations(page) == []
    assert _stored(runtime)[1] == {}


def test_a_rating_link_preselects_without_recording(phone, live_server, survey_path, runtime):
    page = phone
    page.goto(live_server + survey_path("BR-4") + "?q=satisfaction&a=4")
    assert page.locator("#q-satisfaction-4").is_checked()
    assert _stored(runtime) == ([], {})
    page.get_by_role("button", name=re.compile("Submit")).click()
    page.wait_for_selector("text=Thank you")
    assert _stored(runtime)[1] == {"satisfaction": ("satisfaction", 4, None)}
