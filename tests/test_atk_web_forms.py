"""The one-screen survey forms (``/s/<token>`` and ``/f/<service>``) against what browsers and careless visitors
actually send, through the real stack on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine.delivery.dispatch import Dispatcher
from engine.store.models import Answer
from tests.helpers import post, tx
from tests.test_website import (  # noqa: F401  (settings and website_config_dir: the website services' fixtures)
    hidden_fields,
    settings,
    website_config_dir,
)

LINK = re.compile(r"https://surveys\.example\.gov/s/([A-Za-z0-9_-]+)")
# What a person types in the comment box, 2,000 characters as the textarea's maxlength="2000" counts them (a line
# break is one character), and the same text as the browser sends it: every line break as CR LF (HTML's form
# submission newline normalization).
TYPED = "\n".join(["x" * 99] * 20) + "y"
SENT = TYPED.replace("\n", "\r\n")


@pytest.fixture
def survey_path(client: Any, auth: dict[str, str], runtime: Any, capsys: Any) -> str:
    post(client, tx("ATK-FORMS", contact={"email": "atk-forms@example.com"}), auth)
    Dispatcher(runtime).drain(datetime.now(UTC) + timedelta(minutes=20))
    match = LINK.search(capsys.readouterr().out)
    assert match
    return f"/s/{match.group(1)}"


def _comments(runtime: Any) -> list[str | None]:
    with runtime.sessions() as session:
        return list(session.execute(select(Answer.text).where(Answer.question_id == "comments")).scalars())


def test_a_comment_as_long_as_the_box_allows_with_line_breaks_is_taken_on_the_survey_page(client, survey_path,
                                                                                          runtime):  # fmt: skip
    assert len(TYPED) == 2000 and len(SENT) > 2000
    page = client.get(survey_path)
    assert 'maxlength="2000"' in page.text
    form = hidden_fields(page.text) | {"q-trust": "4", "q-comments": SENT}
    answer = client.post(survey_path, data=form)
    assert answer.status_code == 200, re.findall(r"Please[^<]*", answer.text)
    assert _comments(runtime) == [TYPED]


def test_a_comment_as_long_as_the_box_allows_with_line_breaks_is_taken_on_the_feedback_page(client, runtime):
    page = client.get("/f/web-feedback", environ_base={"REMOTE_ADDR": "192.0.2.61"})
    assert 'maxlength="2000"' in page.text
    form = hidden_fields(page.text) | {"q-satisfaction": "4", "q-comments": SENT}
    answer = client.post("/f/web-feedback", data=form, environ_base={"REMOTE_ADDR": "192.0.2.61"})
    assert answer.status_code == 200, re.findall(r"Please[^<]*", answer.text)
    assert _comments(runtime) == [TYPED]


def test_a_comment_longer_than_the_box_allows_is_still_refused(client, survey_path, runtime):
    form = hidden_fields(client.get(survey_path).text) | {"q-trust": "4", "q-comments": SENT + "z"}
    answer = client.post(survey_path, data=form)
    assert answer.status_code == 422 and "under 2,000 characters" in answer.text
    assert _comments(runtime) == []
