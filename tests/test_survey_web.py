"""The web survey page through the real stack: link from the console message, pre-select, submit once, expiry."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import threading
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from babel.dates import format_date
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from engine.app import create_app
from engine.common.crypto import token_hash
from engine.delivery.dispatch import Dispatcher
from engine.runtime import build_runtime
from engine.store.models import Answer, Invitation, InvitationState, Response, SurveyToken
from tests.conftest import TESTS
from tests.helpers import post, tx, write_config

LINK = re.compile(r"https://surveys\.example\.gov/s/([A-Za-z0-9_-]+)")


@pytest.fixture
def link(client, auth, runtime, capsys):
    """Report a transaction, let dispatch send it on the console, and return the survey path from the message."""

    def make(external_id: str = "WEB-1", **fields):
        post(client, tx(external_id, contact={"email": f"{external_id.lower()}@example.com"}, **fields), auth)
        Dispatcher(runtime).drain(datetime.now(UTC) + timedelta(minutes=20))
        match = LINK.search(capsys.readouterr().out)
        assert match, "the console message carries no survey link"
        return f"/s/{match.group(1)}"

    return make


def _form(html: str) -> dict[str, str]:
    return {name: value for name, value in re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', html)}


def _answers(runtime):
    with runtime.sessions() as session:
        return {a.question_id: (a.a11_tag, a.value, a.text) for a in session.execute(select(Answer)).scalars()}


def test_token_is_128_bits_stored_hashed(link, runtime):
    path = link()
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 22
    with runtime.sessions() as session:
        stored = session.execute(select(SurveyToken.token_hash)).scalars().all()
    assert token not in stored and len(stored) == 1 and len(stored[0]) == 64


def test_answering_the_survey_stores_each_answer_with_its_a11_tag(client, link, runtime):
    path = link()
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    html = page.get_data(as_text=True)
    assert "1090-0011" in html and "Paperwork Reduction Act" in html  # the PRA block
    assert 'lang="en"' in html
    form = _form(html)
    form.update({"q-satisfaction": "5", "q-trust": "4", "q-ease": "2", "q-comments": "Quick and clear."})
    done = client.post(path, data=form)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "Thank you" in done.get_data(as_text=True)
    assert _answers(runtime) == {
        "satisfaction": ("satisfaction", 5, None),
        "trust": ("trust", 4, None),
        "ease": ("ease", 2, None),
        "comments": ("free_text", None, "Quick and clear."),
    }
    with runtime.sessions() as session:
        response = session.execute(select(Response)).scalar_one()
        assert response.completed_at is not None and response.channel == "console" and response.language == "en"
        assert session.get(Invitation, response.invitation_id).state is InvitationState.ANSWERED
    # A second submission is told it was received and stores nothing twice.
    again = client.post(path, data=form)
    assert again.status_code == 409 and "already" in again.get_data(as_text=True)
    assert len(_answers(runtime)) == 4
    assert client.get(path).status_code == 200


def test_a_rating_link_preselects_and_records_nothing(client, link, runtime):
    path = link()
    page = client.get(f"{path}?q=satisfaction&a=4")
    html = page.get_data(as_text=True)
    assert re.search(r'id="q-satisfaction-4"\s+name="q-satisfaction" value="4" checked', html)
    with runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(Response)).scalar_one() == 0
    assert "checked" not in client.get(f"{path}?q=satisfaction&a=9").get_data(as_text=True)


def test_bad_answers_are_refused_with_an_error_summary_and_nothing_stored(client, link, runtime):
    path = link()
    form = _form(client.get(path).get_data(as_text=True))
    form.update({"q-satisfaction": "7", "q-trust": "x"})
    response = client.post(path, data=form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert (
        'role="alert"' in html
        and 'href="#q-satisfaction"' in html
        and 'aria-describedby="q-satisfaction-error"' in html
    )
    assert _answers(runtime) == {}


def test_a_forged_or_stale_form_is_refused(client, link, runtime):
    path = link()
    form = _form(client.get(path).get_data(as_text=True))
    forged = {**form, "csrf_token": "0" * 64, "q-satisfaction": "5"}
    assert client.post(path, data=forged).status_code == 400
    stale = {**form, "issued": str(int(form["issued"]) - 7 * 3600), "q-satisfaction": "5"}
    assert client.post(path, data=stale).status_code == 400
    assert _answers(runtime) == {}


def test_a_form_left_open_too_long_comes_back_with_what_was_typed(client, link, runtime):
    """A genuine form posted after its token's 6 hours: nothing recorded, the same answers shown again under a fresh
    token (the link is still open, so the customer sends them with one more tap instead of typing them again)."""
    path = link()
    token = path.rsplit("/", 1)[1]
    form = _form(client.get(path).get_data(as_text=True))
    issued = int(form["issued"]) - 6 * 3600 - 60
    signed = hmac.new(runtime.settings.secret_key.encode(), f"survey-form:{token_hash(token)}:{issued}".encode(),
                      hashlib.sha256).hexdigest()  # fmt: skip
    typed = {"q-satisfaction": "4", "q-comments": "Kept\r\nacross lines <b>"}
    back = client.post(path, data={**form, "issued": str(issued), "csrf_token": signed, **typed})
    html = back.get_data(as_text=True)
    assert back.status_code == 400 and "open for a long time" in html
    assert re.search(r'name="q-satisfaction" value="4" checked', html)
    assert "Kept\nacross lines &lt;b&gt;</textarea>" in html
    assert _answers(runtime) == {}
    fresh = _form(html)
    assert int(fresh["issued"]) > issued and fresh["csrf_token"] != signed
    assert client.post(path, data={**fresh, **typed}).status_code == 200
    assert _answers(runtime)["satisfaction"][1] == 4 and _answers(runtime)["comments"][2] == "Kept\nacross lines <b>"


def test_expired_link_is_410_and_unknown_is_404(client, link, runtime):
    path = link()
    with runtime.sessions() as session, session.begin():
        inv = session.execute(select(Invitation)).scalar_one()
        inv.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    page = client.get(path)
    assert page.status_code == 410 and "closed" in page.get_data(as_text=True)
    assert client.get("/s/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert client.get("/s/short").status_code == 404


def test_open_until_is_the_day_in_the_service_s_time_zone(client, link, runtime):
    """A window ending at 23:30 in New York (passport-renewal's zone) ends on the next day in UTC: the page says the
    New York day, in the page's language."""
    path = link()
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    with runtime.sessions() as session, session.begin():
        inv = session.execute(select(Invitation)).scalar_one()
        inv.expires_at = datetime.combine(day, time(23, 30), tzinfo=ZoneInfo("America/New_York"))
    next_day = day + timedelta(days=1)
    assert inv.expires_at.astimezone(UTC).date() == next_day
    html = client.get(path).get_data(as_text=True)
    assert f"open until {format_date(day, format='long', locale='en')}." in html, html
    assert format_date(next_day, format="long", locale="en") not in html
    spanish = client.get(f"{path}?lang=es").get_data(as_text=True)
    assert format_date(day, format="long", locale="es") in spanish
    assert format_date(next_day, format="long", locale="es") not in spanish


def test_spanish_page(client, link, runtime):
    path = link("WEB-ES", language="es")
    html = client.get(path).get_data(as_text=True)
    assert 'lang="es"' in html
    assert "Estoy satisfecho" in html or "satisfech" in html
    english = client.get(f"{path}?lang=en").get_data(as_text=True)
    assert 'lang="en"' in english


def test_the_browser_language_is_used_when_the_transaction_names_none(client, link):
    path = link("WEB-AL")
    html = client.get(path, headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert 'lang="es"' in html and "Muy de acuerdo" in html
    assert 'lang="en"' in client.get(path, headers={"Accept-Language": "fr-FR"}).get_data(as_text=True)


def test_a_revoked_link_opens_nothing(client, link, runtime):
    from engine.store.db import unit_of_work
    from engine.surveys import tokens

    path = link("WEB-RV")
    assert client.get(path).status_code == 200
    with unit_of_work(runtime.sessions) as session:
        invitation = session.execute(select(Invitation)).scalar_one()
        assert tokens.revoke_all(session, invitation.id) == 1
    assert client.get(path).status_code == 404


def _posted_at_once(app, path: str, forms: list[dict[str, str]]) -> list[tuple[int, str]]:
    """Each form posted to ``path`` by its own thread and client, all released at the same moment: each answer."""
    start = threading.Barrier(len(forms))
    answers: dict[int, tuple[int, str]] = {}

    def send(n: int) -> None:
        client = app.test_client()
        start.wait()
        page = client.post(path, data=forms[n])
        answers[n] = (page.status_code, page.get_data(as_text=True))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(forms))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return [answers[n] for n in range(len(forms))]


def test_the_same_form_posted_at_once_is_recorded_once_and_the_others_are_told_409(app, link, runtime):
    """The same form sent several times at once (a double click, a retrying proxy): one post is recorded and thanked;
    every other one gets what a second post gets afterwards (409, "already answered") and stores nothing, not even
    an answer the first post left empty. Several rounds, since each is a race (on PostgreSQL without the invitation's
    row lock, most runs show two or more thanks within a few rounds)."""
    for round_ in range(16):
        path = link(f"WEB-RACE-{round_}")
        form = _form(app.test_client().get(path).get_data(as_text=True))
        # Each post its own comment; the odd ones also rate ease, so a loser could add an answer to the winner's.
        forms = [
            {**form, "q-satisfaction": "5", "q-trust": "4", "q-comments": f"race-{round_}-{n}"}
            | ({"q-ease": "3"} if n % 2 else {})
            for n in range(10)
        ]
        answers = _posted_at_once(app, path, forms)
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200] + [409] * (len(forms) - 1), f"round {round_}: {statuses}"
        winner = next(n for n, (status, _) in enumerate(answers) if status == 200)
        assert "Thank you" in answers[winner][1]
        assert all("already" in html for status, html in answers if status == 409)
        with runtime.sessions() as session:
            # One response for the round's invitation, completed, holding the winner's answers and nobody else's.
            holders = session.execute(
                select(Answer.response_id).where(Answer.text.like(f"race-{round_}-%")).distinct()
            ).scalars().all()  # fmt: skip
            assert len(holders) == 1, f"round {round_}"
            response = session.get(Response, holders[0])
            assert response.completed_at is not None
            assert session.get(Invitation, response.invitation_id).state is InvitationState.ANSWERED
            answered = session.execute(select(Answer).where(Answer.response_id == response.id)).scalars()
            stored = {a.question_id: a.text or a.value for a in answered}
        expected = {"satisfaction": 5, "trust": 4, "comments": f"race-{round_}-{winner}"}
        assert stored == (expected | {"ease": 3} if winner % 2 else expected), f"round {round_}"


def test_a_question_answered_twice_in_one_form_is_a_422_naming_it_and_nothing_is_stored(client, link, runtime):
    """``q-satisfaction=5&q-satisfaction=1`` (no browser sends a radio or a text box twice) is ambiguous: the form is
    shown again with the question named, rather than the first value being recorded unseen."""
    path = link()
    form = _form(client.get(path).get_data(as_text=True))
    for doubled in ([("q-satisfaction", "5"), ("q-satisfaction", "1")], [("q-satisfaction", "5"), ("q-satisfaction", "5")],
                    [("q-trust", "4"), ("q-comments", "Fine."), ("q-comments", "Awful.")]):  # fmt: skip
        answer = client.post(path, data=MultiDict([*form.items(), *doubled]))
        assert answer.status_code == 422, doubled
        html = answer.get_data(as_text=True)
        assert f'href="#{doubled[-1][0]}"' in html and "Please give one answer to this question." in html, doubled
        assert _answers(runtime) == {}
    done = client.post(path, data=MultiDict([*form.items(), ("q-satisfaction", "5"), ("q-comments", "Fine.")]))
    assert done.status_code == 200 and _answers(runtime)["satisfaction"] == ("satisfaction", 5, None)


def test_a_link_whose_service_left_the_configuration_is_a_closed_page_not_a_500(client, link, runtime, settings,
                                                                                 tmp_path):  # fmt: skip
    """The agency takes a service out of ``services.yaml`` while links to its survey are still in mailboxes: opening
    or posting one is the 410 "survey has closed" page (it can no longer be answered), never a 500."""
    path = link()
    form = _form(client.get(path).get_data(as_text=True))
    services = yaml.safe_load((TESTS / "config" / "services.yaml").read_text())["services"]
    del services["passport-renewal"]
    offices = yaml.safe_load((TESTS / "config" / "offices.yaml").read_text())["offices"]
    after = dataclasses.replace(settings, config_dir=write_config(tmp_path / "after", services, offices))
    later = build_runtime(after, channels=runtime.channels)
    try:
        later.sync_catalog()
        app = create_app(runtime=later)
        app.testing = True
        visitor = app.test_client()
        for answer in (visitor.get(path), visitor.post(path, data={**form, "q-satisfaction": "5"})):
            assert answer.status_code == 410, answer.status_code
            assert "This survey has closed" in answer.get_data(as_text=True)
    finally:
        later.engine.dispose()
    assert _answers(runtime) == {}
