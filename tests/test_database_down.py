"""SPEC §2 rule 11: with the database unreachable, the API answers 503 problem+json with ``Retry-After``, people
get a translated "try again shortly" page, ``/readyz`` says not ready, and ``web``/``worker``/``serve`` refuse to
start with one line.

Two real ways of losing it: a PostgreSQL URL on a port nothing listens on (and an SQLite file in a folder that does
not exist), from start-up on; and a PostgreSQL database dropped under a live app, its connections terminated.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from engine.api.auth import create_api_key
from engine.app import create_app
from engine.runtime import build_runtime
from engine.settings import load_settings
from engine.store import migrate
from engine.store.db import make_engine, unit_of_work
from tests import conftest
from tests.conftest import ENCRYPTION, ROOT, SECRET
from tests.helpers import tx
from tests.kiosk_support import API as KIOSK_API
from tests.kiosk_support import COOKIE as KIOSK_COOKIE

TOKEN = "A" * 22


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The shipped configuration and flows (the CLI runs them as a user would) on ``database_url``."""
    return {
        "SURVEY_ENGINE_DATABASE_URL": database_url,
        "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
        "SURVEY_ENGINE_CONFIG_DIR": str(ROOT / "config"),
        "SURVEY_ENGINE_FLOWS_DIR": str(ROOT / "flows"),
        "SURVEY_ENGINE_SECRET_KEY": SECRET,
        "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
        "SURVEY_ENGINE_PUBLIC_URL": "https://surveys.example.gov",
    }


def unreachable_url(kind: str, tmp_path: Path) -> str:
    if kind == "postgresql":
        return f"postgresql+psycopg://root@127.0.0.1:{free_port()}/nothing"
    return f"sqlite:///{tmp_path / 'no-such-folder' / 'survey-engine.db'}"


def assert_api_503(response: Any) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"].endswith("/database-unreachable")
    assert int(response.headers["Retry-After"]) > 0


def assert_page_503(response: Any, language: str = "en") -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert int(response.headers["Retry-After"]) > 0
    html = response.get_data(as_text=True)
    assert ("Please try again shortly" if language == "en" else "Vuelva a intentarlo en unos minutos") in html
    assert f'lang="{language}"' in html
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def api_calls(client: Any, key: str) -> list[Any]:
    auth = {"Authorization": f"Bearer {key}"}
    contact = {"email": "pat@example.com"}
    return [
        client.post("/api/v1/transactions", json=tx("D-1", contact=contact), headers=auth),
        client.post("/api/v1/transactions", json={"transactions": [tx("D-2", contact=contact)]}, headers=auth),
        client.get("/api/v1/transactions/passport-renewal/D-1", headers=auth),
        client.get("/api/v1/reports/a11?fiscal_year=2027&quarter=1", headers=auth),
        client.get("/api/v1/reports/a11/responses?fiscal_year=2027&quarter=1", headers=auth),
        client.post("/api/v1/opt-outs", json={"email": "pat@example.com"}, headers=auth),
        client.delete("/api/v1/opt-outs", json={"email": "pat@example.com", "reason": "asked"}, headers=auth),
        client.post("/api/v1/transactions", json=tx("D-3"), headers={"Authorization": "Bearer se_unknown_key"}),
    ]


def page_calls(client: Any) -> list[tuple[Any, str]]:
    client.set_cookie(KIOSK_COOKIE, "a-credential-the-database-would-have-to-look-up")
    return [
        (client.get(f"/s/{TOKEN}"), "en"),
        (client.get(f"/s/{TOKEN}", headers={"Accept-Language": "es"}), "es"),
        (client.post(f"/s/{TOKEN}?lang=es", data={"q-trust": "4"}), "es"),
        (client.get(f"/u/{TOKEN}"), "en"),
        (client.get("/kiosk"), "en"),
        (client.get("/dashboard/"), "en"),
    ]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_unreachable_from_start_up(kind, tmp_path):
    settings = load_settings(environment(unreachable_url(kind, tmp_path), tmp_path))
    app = create_app(settings)  # starts: it answers 503 until the database is back
    client = app.test_client()
    for response in api_calls(client, "se_" + "x" * 43):
        assert_api_503(response)
    client.set_cookie(KIOSK_COOKIE, "a-credential-the-database-would-have-to-look-up")
    assert_api_503(client.post(KIOSK_API, json={"sessions": []}))
    for response, language in page_calls(client):
        assert_page_503(response, language)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["type"].endswith("/database-unreachable")
    assert int(ready.headers["Retry-After"]) > 0  # as every other 503 (attack report F9)
    assert client.get("/healthz").status_code == 200


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[tuple[str, str, Any]]:
    """A migrated PostgreSQL database of the test's own: its name, its URL (with a password, which the local
    server's trust authentication ignores: a log must never show it) and an AUTOCOMMIT admin engine to take it away
    with. Dropped at the end, whatever the test did to it."""
    with conftest.own_database("postgresql", tmp_path, "survey_engine_down", password="s3cret-pw") as made:
        engine = make_engine(made[1])
        migrate.upgrade(engine)
        engine.dispose()
        yield made


def test_a_database_dropped_under_a_live_app(tmp_path, own_database):
    name, url, admin = own_database
    settings = load_settings(environment(url, tmp_path))
    rt = build_runtime(settings)
    app = create_app(runtime=rt)
    client = app.test_client()
    with unit_of_work(rt.sessions) as session:
        key = create_api_key(session, "down", list(rt.catalog.services), ["intake", "reports", "admin"])
    auth = {"Authorization": f"Bearer {key}"}
    first = client.post("/api/v1/transactions", json=tx("U-1", contact={"email": "a@example.com"}), headers=auth)
    assert first.status_code == 200  # up: the pool holds live connections now
    assert client.get("/readyz").status_code == 200
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))  # terminates the app's connections
    for response in api_calls(client, key):
        assert_api_503(response)
    client.set_cookie(KIOSK_COOKIE, "a-credential-the-database-would-have-to-look-up")
    assert_api_503(client.post(KIOSK_API, json={"sessions": []}))
    for response, language in page_calls(client):
        if response.status_code != 503:  # a page that needs no data (the dashboard's sign-in redirect)
            assert response.status_code in (302, 303), response.status_code
            continue
        assert_page_503(response, language)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and int(ready.headers["Retry-After"]) > 0
    rt.engine.dispose()


@pytest.mark.parametrize(("ping_seconds", "first_after"), [("0", 200), ("3600", 503)])
def test_connections_the_server_cut_while_idle_are_replaced_before_use(tmp_path, own_database, ping_seconds,
                                                                       first_after):  # fmt: skip
    """PostgreSQL restarted (its backends terminated) while the app's pooled connections sat idle: a connection
    idle for SURVEY_ENGINE_DATABASE_PING_SECONDS is pinged before use and replaced, so the next request goes
    through. Not pinged (idle for less than that), the request meets the dead connection and answers 503, and
    the pool is renewed for the requests after it."""
    name, url, admin = own_database
    settings = load_settings({**environment(url, tmp_path), "SURVEY_ENGINE_DATABASE_PING_SECONDS": ping_seconds})
    rt = build_runtime(settings)
    client = create_app(runtime=rt).test_client()
    with unit_of_work(rt.sessions) as session:
        key = create_api_key(session, "cut", ["passport-renewal"], ["intake"])
    auth = {"Authorization": f"Bearer {key}"}
    contact = {"email": "cut@example.com"}
    assert client.post("/api/v1/transactions", json=tx("CUT-1", contact=contact), headers=auth).status_code == 200
    with admin.connect() as conn:
        cut = conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                           {"name": name}).scalars().all()  # fmt: skip
    assert cut and all(cut), "the app held a connection to cut"
    after = client.post("/api/v1/transactions", json=tx("CUT-2", contact=contact), headers=auth)
    assert after.status_code == first_after, after.get_data(as_text=True)
    if first_after == 503:
        assert_api_503(after)
    again = client.post("/api/v1/transactions", json=tx("CUT-3", contact=contact), headers=auth)
    assert again.status_code == 200, again.get_data(as_text=True)
    rt.engine.dispose()


@pytest.mark.parametrize("command", ["web", "worker", "serve"])
def test_the_roles_refuse_to_start_with_one_line(command, tmp_path):
    env = {**os.environ, **environment(unreachable_url("postgresql", tmp_path), tmp_path)}
    done = subprocess.run([sys.executable, "-m", "engine.cli", command], env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "database" in lines[0] and "cannot be reached" in lines[0] and "Traceback" not in done.stderr


def test_an_app_started_without_its_database_works_once_it_is_there(tmp_path):
    url = unreachable_url("sqlite", tmp_path)
    app = create_app(load_settings(environment(url, tmp_path)))
    client = app.test_client()
    assert_api_503(client.get("/api/v1/transactions/passport-renewal/X", headers={"Authorization": "Bearer se_x"}))
    (tmp_path / "no-such-folder").mkdir()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    assert client.get("/readyz").status_code == 200
    rt = app.extensions["survey_engine"]
    unknown = client.get("/api/v1/transactions/passport-renewal/X", headers={"Authorization": "Bearer se_x"})
    assert unknown.status_code == 401 and rt.synced  # the catalogue was mirrored on the first request
    with unit_of_work(rt.sessions) as session:
        key = create_api_key(session, "late", ["passport-renewal"], ["intake"])
    body = tx("LATE-1", contact={"email": "late@example.com"})
    answer = client.post("/api/v1/transactions", json=body, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200 and answer.get_json()["decision"] == "scheduled"


def test_a_scheduled_job_logs_a_lost_database_once_in_one_line_and_says_when_it_is_back(tmp_path, caplog, own_database):
    """The dispatch job runs every second: a database gone for a minute is one line, not sixty tracebacks."""
    import logging

    from apscheduler.schedulers.background import BackgroundScheduler

    from engine.scheduler import add_jobs

    name, url, admin = own_database
    rt = build_runtime(load_settings(environment(url, tmp_path)))
    scheduler = BackgroundScheduler()
    add_jobs(scheduler, rt)
    dispatch = scheduler.get_job("dispatch").func
    caplog.set_level(logging.INFO, logger="survey_engine.scheduler")
    dispatch()
    assert [r for r in caplog.records if r.name == "survey_engine.scheduler"] == []
    with admin.connect() as conn:  # gone: its connections cut, no new one let in
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
    for _ in range(3):
        dispatch()
    (down,) = [r for r in caplog.records if r.name == "survey_engine.scheduler"]
    assert down.getMessage() == "database unreachable" and down.levelno == logging.ERROR
    assert down.exc_info is None and down.job == "dispatch"  # type: ignore[attr-defined]
    assert name in down.reason and "s3cret-pw" not in down.reason  # type: ignore[attr-defined]
    assert "Traceback" not in caplog.text and "s3cret-pw" not in caplog.text
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    dispatch()
    back = [r for r in caplog.records if r.name == "survey_engine.scheduler"][1:]
    assert [(r.getMessage(), r.failed_runs) for r in back] == [("database reachable again", 3)]  # type: ignore[attr-defined]
    dispatch()
    assert len([r for r in caplog.records if r.name == "survey_engine.scheduler"]) == 2
    rt.engine.dispose()


def test_an_app_on_a_schema_not_upgraded_answers_503_until_db_upgrade(tmp_path: Path) -> None:
    """``gunicorn 'engine.app:create_app()'`` started directly skips ``web``'s refusal: on a database never
    upgraded the app logged a warning, then answered every API call and page with a 500 from its missing tables.
    It says 503 with ``Retry-After`` (problem+json, or the "try again shortly" page), as ``/readyz`` does, and
    serves once ``db upgrade`` has run, without a restart."""
    url = f"sqlite:///{tmp_path / 'survey-engine.db'}"
    app = create_app(load_settings(environment(url, tmp_path)))
    client = app.test_client()
    api = client.post("/api/v1/transactions", json=tx("SCHEMA-1"), headers={"Authorization": "Bearer x"})
    assert api.status_code == 503 and api.headers["Retry-After"] == "30", api.get_data(as_text=True)
    assert api.get_json()["type"].endswith("migrations-pending")
    page = client.get(f"/s/{TOKEN}")
    assert page.status_code == 503 and page.mimetype == "text/html" and page.headers["Retry-After"] == "30"
    assert client.get("/readyz").status_code == 503
    assert client.get("/static/survey.css").status_code == 200

    migrate.upgrade(make_engine(url))
    assert client.get("/readyz").status_code == 200
    assert client.post("/api/v1/transactions", json=tx("SCHEMA-1")).status_code == 401  # served: no key given
    assert client.get(f"/s/{TOKEN}").status_code == 404
