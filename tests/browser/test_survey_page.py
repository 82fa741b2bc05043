"""A person answers the web survey in Chromium: phone viewport, JavaScript on and off, Spanish, axe-core."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.delivery.dispatch import Dispatcher
from engine.store.models import Answer, Response
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
    summary.wait_for(state="visible")  # the answer page has loaded (is_visible alone does not wait)
    page.wait_for_function("document.activeElement && document.activeElement.id === 'error-summary'")
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


def _answers_with_choices(runtime):
    from engine.store.models import AnswerChoice

    with runtime.sessions() as session:
        rows = session.execute(select(Answer)).scalars().all()
        choices = session.execute(select(AnswerChoice)).scalars().all()
    by_answer = {}
    for c in choices:
        by_answer.setdefault(c.answer_id, set()).add((c.choice_id, c.driver))
    return {a.question_id: (a.a11_tag, a.value, by_answer.get(a.id, set())) for a in rows}


def test_spanish(phone, live_server, survey_path, runtime):
    page = phone
    page.goto(live_server + survey_path("BR-ES", language="es"))
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.get_by_text("Estoy satisfecho(a) con el servicio").is_visible()
    page.locator("#q-satisfaction").get_by_role("radio", name="Muy de acuerdo", exact=True).check()
    assert axe_violations(page) == []
    page.get_by_role("button").last.click()
    page.wait_for_selector("text=Gracias")
    assert page.locator("html").get_attribute("lang") == "es"
    responses, answers = _stored(runtime)
    assert responses[0].language == "es" and answers == {"satisfaction": ("satisfaction", 5, None)}


def test_the_language_switch(phone, live_server, survey_path):
    page = phone
    page.goto(live_server + survey_path("BR-SW", language="es"))
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_text("I am satisfied with the service").is_visible()


def test_thumbs_up_shows_what_went_well_only(phone, live_server, survey_path, runtime):
    page = phone
    page.goto(live_server + survey_path("BR-D1", service="drivers-web"))
    assert not page.locator("#q-went_well").is_visible() and not page.locator("#q-could_be_better").is_visible()
    page.locator("#q-trust").get_by_role("radio", name="Thumbs up", exact=True).check()
    assert page.locator("#q-went_well").is_visible() and not page.locator("#q-could_be_better").is_visible()
    page.locator("#q-went_well").get_by_role("checkbox", name="My need was addressed").check()
    page.locator("#q-went_well").get_by_role("checkbox", name="Something else").check()
    assert axe_violations(page) == []
    page.get_by_role("button", name=re.compile("Submit")).click()
    page.wait_for_selector("text=Thank you")
    assert _answers_with_choices(runtime) == {
        "trust": ("trust", 5, set()),
        "went_well": ("drivers_positive", None, {("effectiveness", "effectiveness"), ("other", "other")}),
    }


def test_without_javascript_only_the_branch_that_applies_is_kept(phone_no_js, live_server, survey_path, runtime):
    page = phone_no_js
    page.goto(live_server + survey_path("BR-D2", service="drivers-web"))
    assert page.locator("#q-went_well").is_visible() and page.locator("#q-could_be_better").is_visible()
    page.locator("#q-trust").get_by_role("radio", name="Thumbs down", exact=True).check()
    page.locator("#q-went_well").get_by_role("checkbox", name="It was easy").check()  # does not apply: dropped
    page.locator("#q-could_be_better").get_by_role("checkbox", name="Speed").check()
    page.get_by_role("button", name=re.compile("Submit")).click()
    page.wait_for_selector("text=Thank you")
    assert _answers_with_choices(runtime) == {
        "trust": ("trust", 1, set()),
        "could_be_better": ("drivers_negative", None, {("efficiency", "efficiency")}),
    }
