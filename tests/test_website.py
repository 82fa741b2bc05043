"""The website channel through the real stack: the feedback page /f/<service>, its form token, honeypot, fill time
and rate limits, framing by allowed origins only, button.js, and answers counted under ``website``."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select

from engine.catalog.services import parse_website
from engine.common.errors import ConfigError
from engine.reporting.fiscal import fiscal_quarter
from engine.settings import Settings, load_settings
from engine.store.db import unit_of_work, utcnow
from engine.store.models import Answer, Response, WebsiteForm
from tests.conftest import ENCRYPTION, SECRET, TESTS
from tests.helpers import FAST_SENDING

ORIGIN = "https://www.example.gov"
WEBSITE_SERVICES: dict[str, Any] = {
    "web-feedback": {
        "name": "Passport Information",
        "agency": "Department of State",
        "service_type": "informational",
        "flow": "a11-standard",
        "channels": ["console", "website"],
        "contact_cooldown_days": 30,
        "timezone": "America/New_York",
        "website": {"origins": [ORIGIN, "http://127.0.0.1:8765"], "max_per_address_per_hour": 3,
                    "max_per_hour": 5, "min_fill_seconds": 0},
    },
    "web-burst": {
        "name": "Burst Test Service",
        "agency": "Test Agency",
        "service_type": "informational",
        "flow": "a11-standard",
        "channels": ["website"],
        "timezone": "America/New_York",
        "website": {"origins": [ORIGIN], "max_per_hour": 3, "min_fill_seconds": 0},
    },
    "web-slow": {
        "name": "Slow Form Service",
        "agency": "Test Agency",
        "service_type": "benefits",
        "flow": "a11-standard",
        "channels": ["website"],
        "timezone": "America/New_York",
        "website": {"origins": [ORIGIN], "min_fill_seconds": 30},
    },
    "no-website": {
        "name": "No Website",
        "agency": "Test Agency",
        "service_type": "benefits",
        "flow": "a11-standard",
        "channels": ["console"],
        "timezone": "America/New_York",
    },
}  # fmt: skip


@pytest.fixture(scope="session")
def website_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suite's own config plus the website services."""
    target = tmp_path_factory.mktemp("website-config")
    services = yaml.safe_load((TESTS / "config" / "services.yaml").read_text())["services"]
    services.update(WEBSITE_SERVICES)
    (target / "services.yaml").write_text(yaml.safe_dump({"services": services}, sort_keys=False))
    (target / "offices.yaml").write_text((TESTS / "config" / "offices.yaml").read_text())
    return target


@pytest.fixture
def settings(database_url: str, flows_dir: Path, tmp_path: Path, website_config_dir: Path) -> Settings:
    return load_settings(
        {
            "SURVEY_ENGINE_DATABASE_URL": database_url,
            "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
            "SURVEY_ENGINE_CONFIG_DIR": str(website_config_dir),
            "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
            "SURVEY_ENGINE_SECRET_KEY": SECRET,
            "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
            "SURVEY_ENGINE_PUBLIC_URL": "https://surveys.example.gov",
            "SURVEY_ENGINE_LOG_LEVEL": "INFO",
            **FAST_SENDING,
        }
    )


def hidden_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', html))


def answered(client: Any, path: str = "/f/web-feedback", address: str = "198.51.100.7", **answers: str) -> Any:
    """Load the page, answer it, send it: the POST's response."""
    page = client.get(path, environ_base={"REMOTE_ADDR": address})
    assert page.status_code == 200, page.text
    form = hidden_fields(page.text)
    form.update(answers or {"q-satisfaction": "5", "q-trust": "4"})
    return client.post(path.split("?")[0], data=form, environ_base={"REMOTE_ADDR": address})


def stored(runtime: Any) -> list[tuple[str, str | None, dict[str, int | None]]]:
    with runtime.sessions() as session:
        rows = session.execute(select(Response, WebsiteForm.page_url).join(
            WebsiteForm, WebsiteForm.response_id == Response.id)).all()  # fmt: skip
        out = []
        for response, page_url in rows:
            values = dict(
                session.execute(select(Answer.question_id, Answer.value).where(Answer.response_id == response.id))
                .tuples()
                .all()
            )
            assert response.transaction_id is None and response.invitation_id is None
            assert response.completed_at is not None
            out.append((response.channel, page_url, values))
        return out


# -- the page -----------------------------------------------------------------------------------------------------


def test_the_page_is_an_anonymous_survey_with_the_pra_block_that_records_the_page_of_an_allowed_origin(client, runtime):
    page = client.get(f"/f/web-feedback?from={ORIGIN}/passports/renew?name=Ann%20Lee#top")
    assert page.status_code == 200
    html = page.text
    assert 'lang="en"' in html and "Paperwork Reduction Act" in html and "OMB control number" in html
    assert 'name="q-satisfaction"' in html and "email" not in hidden_fields(html)
    # Query and fragment are dropped: they may hold personal data.
    assert hidden_fields(html)["from"] == f"{ORIGIN}/passports/renew"
    form = hidden_fields(html)
    form.update({"q-satisfaction": "4", "q-trust": "5"})
    done = client.post("/f/web-feedback", data=form)
    assert done.status_code == 200 and "Thank you" in done.text
    assert stored(runtime) == [("website", f"{ORIGIN}/passports/renew", {"satisfaction": 4, "trust": 5})]


def test_a_page_of_another_origin_is_not_recorded_but_the_visitor_still_gets_the_survey(client, runtime):
    page = client.get("/f/web-feedback?from=https://evil.example.com/phish")
    assert page.status_code == 200 and "from" not in hidden_fields(page.text)
    form = hidden_fields(page.text) | {"q-satisfaction": "3", "from": "https://evil.example.com/x"}
    assert client.post("/f/web-feedback", data=form).status_code == 200
    assert stored(runtime) == [("website", None, {"satisfaction": 3})]


def test_the_referer_stands_in_for_from_when_the_link_has_none(client, runtime):
    page = client.get("/f/web-feedback", headers={"Referer": f"{ORIGIN}/contact"})
    assert hidden_fields(page.text)["from"] == f"{ORIGIN}/contact"


def test_the_page_speaks_the_visitors_language(client):
    assert 'lang="es"' in client.get("/f/web-feedback?lang=es").text
    page = client.get("/f/web-feedback", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert 'lang="es"' in page.text and "Enviar" in page.text


def test_a_service_without_the_website_channel_has_no_page(client):
    assert client.get("/f/no-website").status_code == 404
    assert client.get("/f/nope").status_code == 404
    assert client.get("/f/no-website/button.js").status_code == 404


def test_an_empty_or_invalid_answer_is_a_422_naming_the_question_and_stores_nothing(client, runtime):
    page = client.get("/f/web-feedback")
    form = hidden_fields(page.text)
    empty = client.post("/f/web-feedback", data=form)
    assert empty.status_code == 422 and "Please answer at least one question" in empty.text
    bad = client.post("/f/web-feedback", data=form | {"q-satisfaction": "9"})
    assert bad.status_code == 422 and 'href="#q-satisfaction"' in bad.text
    assert stored(runtime) == []
    # The same page load can still be sent once it is right.
    assert client.post("/f/web-feedback", data=form | {"q-satisfaction": "2"}).status_code == 200


# -- held off abuse -----------------------------------------------------------------------------------------------


def test_one_response_per_page_load(client, runtime):
    page = client.get("/f/web-feedback")
    form = hidden_fields(page.text) | {"q-satisfaction": "5"}
    assert client.post("/f/web-feedback", data=form).status_code == 200
    again = client.post("/f/web-feedback", data=form | {"q-satisfaction": "1"})
    assert again.status_code == 409
    assert stored(runtime) == [("website", None, {"satisfaction": 5})]


def test_a_forged_or_stale_form_token_is_refused(client, runtime):
    form = hidden_fields(client.get("/f/web-feedback").text) | {"q-satisfaction": "5"}
    forged = client.post("/f/web-feedback", data=form | {"nonce": "another-nonce-of-my-own"})
    assert forged.status_code == 400 and "Open the survey again" in forged.text
    stale = client.post("/f/web-feedback", data=form | {"issued": str(int(time.time()) - 3 * 3600)})
    assert stale.status_code == 400
    # A token made for another service does not open this one.
    other = hidden_fields(client.get("/f/web-slow").text) | {"q-satisfaction": "5"}
    assert client.post("/f/web-feedback", data=other).status_code == 400
    assert client.post("/f/web-feedback", data={"q-satisfaction": "5", "issued": "9" * 5000}).status_code == 400
    assert stored(runtime) == []


def test_the_honeypot_stores_nothing(client, runtime):
    form = hidden_fields(client.get("/f/web-feedback").text) | {"q-satisfaction": "5", "leave_empty": "http://spam"}
    assert client.post("/f/web-feedback", data=form).status_code == 400
    assert stored(runtime) == []


def test_a_form_sent_faster_than_a_person_reads_is_shown_again(client, runtime):
    form = hidden_fields(client.get("/f/web-slow").text) | {"q-satisfaction": "5"}
    fast = client.post("/f/web-slow", data=form)
    assert fast.status_code == 422 and "take a moment" in fast.text
    assert 'value="5" checked' in fast.text  # the answer is kept
    assert stored(runtime) == []


def test_the_rate_limit_per_address_and_per_service_counts_in_the_database(client, runtime, stub_channel):
    for _ in range(3):
        assert answered(client, address="203.0.113.1").status_code == 200
    limited = answered(client, address="203.0.113.1")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 3000
    # Another address still gets through, up to the service's hourly limit (5) ...
    assert answered(client, address="203.0.113.2").status_code == 200
    assert answered(client, address="203.0.113.3").status_code == 200
    assert answered(client, address="203.0.113.4").status_code == 429
    # ... which another process (a second app on the same database) sees too.
    from engine.app import create_app
    from engine.channels import load_channels
    from engine.runtime import build_runtime

    channels = load_channels(runtime.settings)
    channels.register(stub_channel)
    other = build_runtime(runtime.settings, channels=channels)
    other.sync_catalog()
    second = create_app(runtime=other).test_client()
    assert answered(second, address="203.0.113.5").status_code == 429
    other.engine.dispose()
    assert len(stored(runtime)) == 5


@pytest.mark.parametrize(
    ("service", "one_address"),
    [("web-burst", False), ("web-feedback", True)],
    ids=["per-service", "per-address"],
)
def test_a_burst_sent_at_once_never_goes_over_the_hourly_limit(app, runtime, service, one_address):
    """12 forms, each from its own page load, sent at the same moment from 12 threads: exactly 3 are taken and the
    rest is a 429 — per service (``web-burst``'s ``max_per_hour``, from 12 addresses) and per address
    (``web-feedback``'s ``max_per_address_per_hour``, all from one address) — though every POST reaches its count
    before the others have committed their forms (on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes them anyway)."""
    burst = 12
    addresses = ["192.0.2.9"] * burst if one_address else [f"192.0.2.{n + 10}" for n in range(burst)]
    clients = [app.test_client() for _ in range(burst)]
    forms = []
    for client, address in zip(clients, addresses, strict=True):
        page = client.get(f"/f/{service}", environ_base={"REMOTE_ADDR": address})
        assert page.status_code == 200, page.text
        forms.append(hidden_fields(page.text) | {"q-satisfaction": "5", "q-trust": "4"})
    start = threading.Barrier(burst)
    answers: list[tuple[int, str | None]] = []

    def send(n: int) -> None:
        start.wait()
        reply = clients[n].post(f"/f/{service}", data=forms[n], environ_base={"REMOTE_ADDR": addresses[n]})
        answers.append((reply.status_code, reply.headers.get("Retry-After")))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(burst)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == burst
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 3 + [429] * (burst - 3), f"{statuses.count(200)} taken: {statuses}"
    assert all(int(wait or 0) > 3000 for status, wait in answers if status == 429)  # Retry-After: the hour's rest
    with runtime.sessions() as session:
        assert len(session.execute(select(WebsiteForm.nonce)).all()) == 3
    assert len(stored(runtime)) == 3


def test_address_hashes_are_cleared_after_a_day_by_the_retention_job(client, runtime):
    """Even when no form comes after it: the scheduler's job clears them, not the next POST."""
    from datetime import timedelta

    from engine.delivery.retention import forget_form_addresses
    from engine.scheduler import add_jobs

    assert answered(client).status_code == 200
    assert answered(client, address="198.51.100.8").status_code == 200
    with unit_of_work(runtime.sessions) as session:
        rows = session.execute(select(WebsiteForm).order_by(WebsiteForm.received_at)).scalars().all()
        assert all(row.address_hash and "198.51.100" not in row.address_hash for row in rows)
        rows[0].received_at = utcnow() - timedelta(days=1, minutes=1)
    assert forget_form_addresses(runtime) == 1
    assert forget_form_addresses(runtime) == 0  # idempotent
    with runtime.sessions() as session:
        hashes = session.execute(select(WebsiteForm.address_hash).order_by(WebsiteForm.received_at)).scalars().all()
    assert hashes[0] is None and hashes[1] is not None
    # The scheduler runs it in `serve` and in every `worker`.
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler()
    add_jobs(scheduler, runtime)
    assert "forget-addresses" in {job.id for job in scheduler.get_jobs()}


# -- framing and the button ---------------------------------------------------------------------------------------


def test_only_the_allowed_origins_may_frame_the_page(client):
    page = client.get("/f/web-feedback")
    csp = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors {ORIGIN} http://127.0.0.1:8765;" in csp
    assert "X-Frame-Options" not in page.headers
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    missing = client.get("/f/no-website")
    assert "frame-ancestors 'none'" in missing.headers["Content-Security-Policy"]
    assert missing.headers["X-Frame-Options"] == "DENY"


def test_the_button_script_names_the_allowed_origins_and_sets_no_cookie(client):
    script = client.get("/f/web-feedback/button.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert "Set-Cookie" not in script.headers
    body = script.text
    assert ORIGIN in body and '"Feedback"' in body and "Opini" in body  # the Spanish words ride along
    assert "cookie" not in body.replace("no cookies", "").lower() and "localStorage" not in body
    assert "/*SETTINGS*/null" not in body


def test_the_button_script_is_not_kept_past_the_last_day_of_the_approval(client, runtime):
    """A browser keeps button.js an hour, but not past the end of the PRA approval's last day (in the service's time
    zone): the button does not outlive the approval by a cached copy. The service is moved to the zone where it is
    now 23:xx and its approval made to end today, so less than an hour is left."""
    service = runtime.catalog.services["web-feedback"]
    while (now := datetime.now(UTC)).minute == 59 and now.second >= 50:  # not across an hour's turn
        time.sleep(1)
    hours = (23 - now.hour) % 24
    hours = hours - 24 if hours > 14 else hours
    zone = ZoneInfo("Etc/GMT" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}")
    local = now.astimezone(zone)
    assert local.hour == 23
    left = (datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=zone) - now).total_seconds()
    pra = replace(runtime.catalog.pra_of(service), expiration_date=local.date())
    runtime.catalog.services["web-feedback"] = replace(service, timezone=zone, pra=pra)
    script = client.get("/f/web-feedback/button.js")
    assert script.status_code == 200 and '"Feedback"' in script.text
    age = int(script.headers["Cache-Control"].removeprefix("public, max-age="))
    assert left - 5 <= age <= left < 3600, (age, left)


def test_the_website_block_is_checked():
    assert parse_website({"origins": ["https://a.example.gov:8443"]}, "x").origins == ("https://a.example.gov:8443",)
    # A default port is written as the browser names the origin (else the button would never match it).
    both = {"origins": ["https://A.example.gov:443", "http://b.example.gov:80", "http://c.example.gov:443"]}
    assert parse_website(both, "x").origins == (
        "https://a.example.gov",
        "http://b.example.gov",
        "http://c.example.gov:443",
    )
    for bad in ({"origins": ["https://a.example.gov/path"]}, {"origins": []}, {"origins": ["ftp://a.gov"]},
                {"origins": ["https://a.gov"], "max_per_hour": 0}, {"colours": 1}, ["https://a.gov"]):  # fmt: skip
        with pytest.raises(ConfigError):
            parse_website(bad, "services.yaml: service 'x': website")


# -- counted under website ----------------------------------------------------------------------------------------


def test_a_website_answer_counts_in_the_website_row_of_the_a11_report_and_on_the_dashboard(client, runtime, auth):
    assert answered(client, **{"q-satisfaction": "5", "q-trust": "4"}).status_code == 200
    quarter = fiscal_quarter(utcnow(), runtime.catalog.services["web-feedback"].timezone)
    report = client.get(
        f"/api/v1/reports/a11?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}&service=web-feedback",
        headers=auth,
    )
    assert report.status_code == 200, report.text
    rows = {row["channel"]: row for row in report.get_json()["rows"]}
    assert rows["website"]["volume_of_respondents"] == 1
    assert rows["website"]["volume_of_customers"] == 1
    assert rows["website"]["satisfaction_5"] == 1 and rows["website"]["trust_4"] == 1


def test_a_website_answer_shows_on_the_dashboard_under_website(client, runtime):
    from tests.dashboard_support import make_account, sign_in

    assert answered(client, **{"q-satisfaction": "5"}).status_code == 200
    assert answered(client, address="198.51.100.9", **{"q-satisfaction": "3"}).status_code == 200
    make_account(runtime, "analyst@example.gov", ("web-feedback",))
    assert sign_in(client, "analyst@example.gov").status_code in (302, 303)
    quarter = fiscal_quarter(utcnow(), runtime.catalog.services["web-feedback"].timezone)
    page = client.get(f"/dashboard/services/web-feedback?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}")
    assert page.status_code == 200
    row = re.search(r'<table id="table-channel">.*?</table>', page.text, re.S)
    assert row is not None
    cells = re.findall(r"<tr><th scope=\"row\">([^<]+)</th>((?:\s*<td[^>]*>[^<]*</td>)+)", row.group(0))
    table = {name: re.findall(r"<td[^>]*>([^<]*)</td>", tds) for name, tds in cells}
    shown = [c.replace("\xa0", " ") for c in table["Website"][:5]]  # customers … satisfied share
    assert shown == ["2", "2", "2", "100.0 %", "50.0 %"]


# -- the end-of-engagement prompt ---------------------------------------------------------------------------------


def prompt_tx(external_id: str, **fields: Any) -> dict[str, Any]:
    from tests.helpers import tx

    return tx(external_id, "web-feedback", **{"touchpoint": "web", "prompt": True, **fields})


def test_a_prompt_is_written_in_one_database_transaction(client, auth, runtime):
    """A prompt writes twice (the transaction, then its one-time link): unlike a single transaction on PostgreSQL
    (``tests/test_perf_paths.py``), it keeps one database transaction, so a failure between the two stores
    neither."""
    from sqlalchemy import event

    seen: list[bool] = []

    def note(conn: Any, *args: Any) -> None:
        seen.append(bool(getattr(conn.connection.dbapi_connection, "autocommit", False)))

    event.listen(runtime.engine, "before_cursor_execute", note)
    try:
        answer = client.post("/api/v1/transactions", json=prompt_tx("APP-TX"), headers=auth)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", note)
    assert answer.status_code == 200 and answer.get_json()["survey_url"], answer.text
    assert seen and not any(seen), seen


def test_a_prompt_gets_a_survey_url_that_works_once_and_counts_under_website(client, auth, runtime):
    from engine.delivery.dispatch import Dispatcher
    from engine.store.models import Invitation, InvitationState

    result = client.post("/api/v1/transactions", json=prompt_tx("APP-1"), headers=auth)
    assert result.status_code in (200, 201), result.text
    body = result.get_json()
    assert body["decision"] == "scheduled" and body["channel"] == "website"
    assert body["invitation"]["state"] == "sent"
    url = body["survey_url"]
    assert url.startswith("https://surveys.example.gov/s/")
    path = url.removeprefix("https://surveys.example.gov")
    # Dispatch never sends it (it is no message): nothing is due.
    Dispatcher(runtime).drain(utcnow())
    page = client.get(path)
    assert page.status_code == 200 and "Paperwork Reduction Act" in page.text
    form = hidden_fields(page.text) | {"q-satisfaction": "5", "q-trust": "5"}
    assert client.post(path, data=form).status_code == 200
    again = client.post(path, data=form | {"q-satisfaction": "1"})
    assert again.status_code == 409
    with runtime.sessions() as session:
        invitation = session.execute(select(Invitation)).scalar_one()
        response = session.execute(select(Response)).scalar_one()
    assert invitation.channel == "website" and invitation.state is InvitationState.ANSWERED
    assert response.channel == "website" and response.invitation_id == invitation.id
    quarter = fiscal_quarter(utcnow(), runtime.catalog.services["web-feedback"].timezone)
    report = client.get(
        f"/api/v1/reports/a11?fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}&service=web-feedback",
        headers=auth,
    )
    rows = {row["channel"]: row for row in report.get_json()["rows"]}
    assert rows["website"]["volume_of_customers"] == 1
    assert rows["website"]["volume_of_customers_provided_survey_opportunity"] == 1
    assert rows["website"]["volume_of_respondents"] == 1 and rows["website"]["satisfaction_5"] == 1


def test_a_prompt_follows_every_rule(client, auth, runtime):
    from tests.helpers import ago

    late = client.post("/api/v1/transactions", json=prompt_tx("APP-2", completed_at=ago(hours=49)), headers=auth)
    assert late.get_json()["decision"] == "window_passed" and "survey_url" not in late.get_json()
    contact = {"email": "visitor@example.com"}
    first = client.post("/api/v1/transactions", json=prompt_tx("APP-3", contact=contact), headers=auth).get_json()
    assert first["decision"] == "scheduled" and first["survey_url"]
    second = client.post("/api/v1/transactions", json=prompt_tx("APP-4", contact=contact), headers=auth).get_json()
    assert second["decision"] == "cooldown" and "survey_url" not in second
    # A replay of an open prompt gets a fresh link to the same invitation.
    replay = client.post("/api/v1/transactions", json=prompt_tx("APP-3", contact=contact), headers=auth).get_json()
    assert replay["duplicate"] and replay["invitation"]["id"] == first["invitation"]["id"]
    assert replay["survey_url"] != first["survey_url"]


def test_prompt_with_another_touchpoint_or_service_is_a_422_naming_the_field(client, auth):
    from tests.helpers import tx

    for body in (
        prompt_tx("APP-5", touchpoint="phone"),
        tx("APP-6", "web-feedback", prompt=True),
        tx("APP-7", "no-website", touchpoint="web", prompt=True),
        tx("APP-8", "web-feedback", touchpoint="web", prompt="yes"),
    ):
        answer = client.post("/api/v1/transactions", json=body, headers=auth)
        assert answer.status_code == 422, body
        assert [e["field"] for e in answer.get_json()["errors"]] == ["prompt"]


def test_without_prompt_a_web_transaction_never_lands_on_the_website_channel(client, auth):
    from tests.helpers import tx

    body = tx("APP-9", "web-feedback", touchpoint="web", contact={"email": "a@example.com"})
    answer = client.post("/api/v1/transactions", json=body, headers=auth).get_json()
    assert answer["channel"] == "console" and "survey_url" not in answer
