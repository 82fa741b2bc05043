"""A person reads the invitation email in Chromium, taps a rating, and answers on the web survey.

The email is the one really sent: an invitation dispatched through the channel to the stand-in, its HTML part
filled with that recipient's substitutions as SendGrid would fill them, and the public origin pointed at the live
server. Opened with ``page.set_content`` (a mail client's reading pane), it must pass axe-core in light and dark
mode; the "4" rating link opens the survey with 4 selected and stores nothing until the form is submitted.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from channels.email.message import personalize
from engine.store.models import Answer, Invitation, Response
from tests import email_support
from tests.browser.conftest import axe_violations
from tests.email_support import (
    PUBLIC_URL,
    EmailStack,
    MailStandIn,
)

# The fixtures these tests take (pytest finds them by name in the module).
email_config_dir = email_support.email_config_dir
email_stack = email_support.email_stack
mail_stand_in = email_support.mail_stand_in
webhook_signer = email_support.webhook_signer
_shared_mail_stand_in = email_support._shared_mail_stand_in

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def stack(email_stack, mail_stand_in) -> EmailStack:
    built: EmailStack = email_stack(mail_stand_in.base_url)
    return built


@pytest.fixture
def app(stack: EmailStack) -> Any:
    """The live server (tests/browser/conftest.py) serves the email stack's app."""
    return stack.app


def received_email(stack: EmailStack, stand_in: MailStandIn, live_server: str, external_id: str,
                   **fields: Any) -> tuple[uuid.UUID, str]:  # fmt: skip
    """Dispatch one invitation; the HTML its recipient gets, with links pointing at the live server."""
    invitation_id = stack.schedule(external_id, f"{external_id.lower()}@example.com", **fields)
    stack.dispatch()
    seen = stand_in.mail_sends()[-1]
    (p,) = seen.personalizations
    assert p["custom_args"]["invitation_id"] == str(invitation_id)
    html = next(c["value"] for c in seen.json()["content"] if c["type"] == "text/html")
    return invitation_id, personalize(html, p["substitutions"]).replace(PUBLIC_URL, live_server)


def stored(stack: EmailStack) -> tuple[list[Response], list[Answer]]:
    with stack.rt.sessions() as session:
        return list(session.execute(select(Response)).scalars()), list(session.execute(select(Answer)).scalars())


def state(stack: EmailStack, invitation_id: uuid.UUID) -> str:
    with stack.rt.sessions() as session:
        return session.execute(select(Invitation.state).where(Invitation.id == invitation_id)).scalar_one().value


def test_tap_4_in_the_email_then_submit_on_the_survey(phone, live_server, stack, mail_stand_in):
    invitation_id, html = received_email(stack, mail_stand_in, live_server, "EB-1")
    page = phone
    page.set_content(html)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Paperwork Reduction Act statement").is_visible()
    assert axe_violations(page) == []
    page.emulate_media(color_scheme="dark")
    assert page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor") == "rgb(27, 27, 27)"
    assert axe_violations(page) == []  # contrast holds in dark mode too
    page.emulate_media(color_scheme="light")
    page.get_by_role("link", name="4 – Agree").click()
    page.wait_for_url(re.compile(r"/s/[A-Za-z0-9_-]+\?q=satisfaction&a=4$"))
    assert page.locator("#q-satisfaction-4").is_checked()
    assert stored(stack) == ([], [])  # following the link records nothing (mail scanners follow links)
    page.get_by_role("button", name=re.compile("Submit")).click()
    page.wait_for_selector("text=Thank you")
    responses, answers = stored(stack)
    assert len(responses) == 1 and responses[0].channel == "email" and responses[0].completed_at is not None
    assert [(a.question_id, a.a11_tag, a.value) for a in answers] == [("satisfaction", "satisfaction", 4)]
    assert state(stack, invitation_id) == "answered"


def test_without_javascript(phone_no_js, live_server, stack, mail_stand_in):
    _, html = received_email(stack, mail_stand_in, live_server, "EB-2")
    page = phone_no_js
    page.set_content(html)
    page.get_by_role("link", name="4 – Agree").click()
    page.wait_for_url(re.compile(r"\?q=satisfaction&a=4$"))
    assert page.locator("#q-satisfaction-4").is_checked()
    assert stored(stack) == ([], [])
    page.get_by_role("button", name=re.compile("Submit")).click()
    page.wait_for_selector("text=Thank you")
    responses, answers = stored(stack)
    assert [r.channel for r in responses] == ["email"]
    assert [(a.question_id, a.a11_tag, a.value) for a in answers] == [("satisfaction", "satisfaction", 4)]


def test_the_spanish_email_opens_the_spanish_survey(phone, live_server, stack, mail_stand_in):
    _, html = received_email(stack, mail_stand_in, live_server, "EB-ES", language="es")
    page = phone
    page.set_content(html)
    assert page.locator("html").get_attribute("lang") == "es"
    assert axe_violations(page) == []
    page.get_by_role("link", name="5 – Muy de acuerdo").click()
    page.wait_for_url(re.compile(r"\?q=satisfaction&a=5$"))
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("#q-satisfaction-5").is_checked()
