"""Kiosk devices: `survey-engine kiosk register|list|revoke` as a newcomer runs them, and the enrollment rules
(one use, 24 hours, hashed at rest, a cookie that keeps the secret out of the address)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.kiosk import devices as registry
from engine.store.db import unit_of_work
from engine.store.models import KioskDevice
from tests.kiosk_support import COOKIE, enroll_in, register
from tests.test_cli import cli

ENROLL = re.compile(r"^https?://[^/]+/kiosk/enroll/([A-Za-z0-9_-]{32,})$")


@pytest.fixture
def sqlite_env(tmp_path):
    """A fresh instance folder: the embedded default (SQLite, generated secrets), as a newcomer starts."""
    return {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"), "SURVEY_ENGINE_DATABASE_URL": "",
            "SURVEY_ENGINE_SECRET_KEY": "", "SURVEY_ENGINE_ENCRYPTION_KEY": ""}  # fmt: skip


def test_register_list_revoke_on_the_command_line(sqlite_env):
    cli("db", "upgrade", env=sqlite_env, check=True)
    made = cli("kiosk", "register", "--service", "passport-renewal", "--office", "NYC-01", "--name", "Exit left",
               "--language", "es", "--language", "en", env=sqlite_env, check=True)  # fmt: skip
    last = made.stdout.strip().splitlines()[-1]
    assert ENROLL.match(last), made.stdout
    result = cli("kiosk", "list", env=sqlite_env, check=True)
    assert result.stderr.split("\t")[:5] == ["id", "service", "office", "name", "state"]
    [line] = result.stdout.strip().splitlines()
    device_id, service, office, name, state, seen = line.split("\t")
    assert (service, office, name, state, seen) == ("passport-renewal", "NYC-01", "Exit left", "awaiting enrollment",
                                                    "never")  # fmt: skip
    assert device_id in made.stdout
    revoked = cli("kiosk", "revoke", device_id, env=sqlite_env, check=True)
    assert "revoked" in revoked.stdout
    assert cli("kiosk", "list", env=sqlite_env, check=True).stdout.splitlines()[0].split("\t")[4] == "revoked"
    wrong = cli("kiosk", "revoke", "not-an-id", env=sqlite_env)
    assert wrong.returncode != 0 and "not a device id" in wrong.stderr
    no_kiosk = cli("kiosk", "register", "--service", "benefits-contact-center", "--office", "NYC-01", env=sqlite_env)
    assert no_kiosk.returncode != 0 and "does not list the kiosk channel" in no_kiosk.stderr
    bad_office = cli("kiosk", "register", "--service", "passport-renewal", "--office", "ZZZ", env=sqlite_env)
    assert bad_office.returncode != 0 and "unknown office 'ZZZ'" in bad_office.stderr
    bad_language = cli("kiosk", "register", "--service", "passport-renewal", "--office", "NYC-01", "--language", "fr",
                       env=sqlite_env)  # fmt: skip
    assert bad_language.returncode != 0 and "does not offer fr" in bad_language.stderr


def test_the_demo_registers_a_kiosk_and_prints_its_enrollment_url(sqlite_env):
    result = cli("demo", "--count", "2", "--service", "passport-renewal", env=sqlite_env, check=True)
    assert ENROLL.match(result.stdout.strip().splitlines()[-1]), result.stdout
    assert "demo kiosk" in result.stdout


def test_the_code_is_kept_hashed_used_once_and_expires(client, runtime):
    device_id, code = register(runtime, languages=["es"])
    with runtime.sessions() as session:
        device = session.get(KioskDevice, device_id)
        assert device is not None and device.enrollment_hash == hashlib.sha256(code.encode()).hexdigest()
        assert device.languages == ["es"] and device.credential_hash is None
        assert device.enrollment_expires_at is not None
        assert timedelta(hours=23, minutes=59) < device.enrollment_expires_at - datetime.now(UTC) <= timedelta(hours=24)
    reply = enroll_in(client, code)
    assert reply.status_code == 303 and reply.headers["Location"] == "/kiosk"
    assert reply.headers["Referrer-Policy"] == "no-referrer" and reply.headers["Cache-Control"] == "no-store"
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("Secure", "HttpOnly", "Path=/", "SameSite=Strict"):
        assert attribute in cookie
    assert "Domain" not in cookie
    credential = cookie.split(";")[0].split("=", 1)[1]
    assert len(credential) >= 43 and code not in cookie
    with runtime.sessions() as session:
        stored = session.execute(select(KioskDevice.credential_hash)).scalar_one()
    assert stored == hashlib.sha256(credential.encode()).hexdigest()
    page = client.get("/kiosk")
    assert page.status_code == 200 and code.encode() not in page.data and credential.encode() not in page.data
    assert client.get("/kiosk/flow.json").get_json()["languages"] == [{"code": "es", "name": "Español"}]
    again = client.get(f"/kiosk/enroll/{code}")
    assert again.status_code == 410 and b"Enroll this device" not in again.data and b"already used" in again.data
    assert client.get("/kiosk/enroll/made-up-code").status_code == 404

    old_id, old_code = register(runtime)
    with unit_of_work(runtime.sessions) as session:
        expired = session.get(KioskDevice, old_id)
        assert expired is not None
        expired.enrollment_expires_at = datetime.now(UTC) - timedelta(seconds=1)
    late = client.get(f"/kiosk/enroll/{old_code}")
    assert late.status_code == 410 and b"expired" in late.data
    with runtime.sessions() as session:
        assert registry.list_devices(session)[1].state == "enrollment expired"


def test_opening_the_link_uses_nothing_up_only_the_button_enrolls(app, runtime):
    device_id, code = register(runtime)
    preview = app.test_client()  # a chat app's link preview, a mail scanner: they GET the link, often twice
    for _ in range(2):
        shown = preview.get(f"/kiosk/enroll/{code}", headers={"Accept-Language": "es"})
        assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
        assert "Inscribir este dispositivo" in shown.get_data(as_text=True)
        assert f"{COOKIE}=" not in shown.headers.get("Set-Cookie", "")
    with runtime.sessions() as session:
        device = session.get(KioskDevice, device_id)
        assert device is not None and device.enrolled_at is None and device.credential_hash is None

    tablet = app.test_client()
    form = tablet.get(f"/kiosk/enroll/{code}")
    assert "Enroll this device" in form.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.get_data(as_text=True)).group(1)
    forged = app.test_client()  # another site's form: no page cookie, or a token of its own making
    assert forged.post(f"/kiosk/enroll/{code}", data={"csrf_token": token}).status_code == 403
    assert tablet.post(f"/kiosk/enroll/{code}", data={"csrf_token": "0" * 64}).status_code == 403
    assert tablet.post(f"/kiosk/enroll/{code}", data={"csrf_token": "é" * 64}).status_code == 403
    assert tablet.post(f"/kiosk/enroll/{code}").status_code == 403
    with runtime.sessions() as session:
        assert session.get(KioskDevice, device_id).enrolled_at is None, "a refused POST used nothing up"
    done = tablet.post(f"/kiosk/enroll/{code}", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"] == "/kiosk"
    assert tablet.get("/kiosk").status_code == 200
    assert tablet.post(f"/kiosk/enroll/{code}", data={"csrf_token": token}).status_code == 410
    assert preview.get(f"/kiosk/enroll/{code}").status_code == 410


def test_without_a_credential_the_kiosk_says_how_to_enroll(client, runtime):
    for path in ("/kiosk", "/kiosk/flow.json", "/kiosk/sw.js", "/kiosk/assets/kiosk.js"):
        reply = client.get(path)
        assert reply.status_code == 401, path
    page = client.get("/kiosk", headers={"Accept-Language": "es"})
    assert "Este quiosco no está inscrito" in page.get_data(as_text=True)
    assert b"survey-engine kiosk register" in page.data


def test_the_service_worker_may_control_the_kiosk_page(client, runtime):
    _, code = register(runtime)
    enroll_in(client, code)
    worker = client.get("/kiosk/sw.js")
    assert worker.status_code == 200 and worker.headers["Service-Worker-Allowed"] == "/kiosk"
    assert worker.mimetype == "text/javascript"
    assert client.get("/kiosk/assets/nope.js").status_code == 404
    document = client.get("/kiosk/flow.json").get_json()
    assert document["idle_reset_seconds"] == 45
    assert document["flow"] == {**document["flow"], "id": "a11-standard", "version": "2"}
    comments = document["text"]["en"]["questions"]["comments"]
    assert "do not include personal information" in comments
    assert document["text"]["es"]["questions"]["comments"].startswith("¿Algo más")


def test_the_kiosk_settings_of_a_service_are_checked(runtime):
    from engine.catalog.services import parse_service
    from engine.common.errors import ConfigError

    base = {"name": "S", "agency": "A", "service_type": "regulatory", "flow": "a11-standard", "channels": ["kiosk"],
            "timezone": "UTC"}  # fmt: skip
    flows = runtime.catalog.flows
    parsed = parse_service("s", base, flows, {"kiosk"})
    assert parsed.kiosk_idle_reset == timedelta(seconds=45) and parsed.kiosk_max_sessions_per_minute == 6
    tuned = parse_service("s", {**base, "kiosk_idle_reset": "PT90S", "kiosk_max_sessions_per_minute": 10}, flows, None)
    assert tuned.kiosk_idle_reset == timedelta(seconds=90) and tuned.kiosk_max_sessions_per_minute == 10
    for key, value, message in [
        ("kiosk_idle_reset", "45 seconds", "kiosk_idle_reset"),
        ("kiosk_idle_reset", "PT0S", "between PT1S and PT1H"),
        ("kiosk_idle_reset", "PT2H", "between PT1S and PT1H"),
        ("kiosk_max_sessions_per_minute", 0, "positive whole number"),
        ("kiosk_max_sessions_per_minute", "6", "positive whole number"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_service("s", {**base, key: value}, flows, None)


def test_a_kiosk_whose_service_left_the_configuration_keeps_its_queue(client, runtime):
    from tests.kiosk_support import enrolled, post_batch, session_of

    _, credential = enrolled(runtime)
    runtime.catalog.services.pop("kiosk-office")
    reply = post_batch(client, credential, [session_of([("trust", 5)])])
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "300"
    assert "nothing was stored" in reply.get_json()["detail"]
    assert client.get("/kiosk/flow.json").status_code == 503


def test_the_page_shell_is_in_the_device_language_and_holds_no_secret(client, runtime):
    _, code = register(runtime, languages=["es", "en"])
    enroll_in(client, code)
    page = client.get("/kiosk")
    html = page.get_data(as_text=True)
    assert '<html lang="es">' in html and "Este quiosco no puede mostrar la encuesta" in html
    assert (
        page.headers["Referrer-Policy"] == "no-referrer"
        and "default-src 'self'" in page.headers["Content-Security-Policy"]
    )
    assert f"{COOKIE}=" in page.headers["Set-Cookie"], "the credential's cookie is renewed at every load"
