"""The issue's "done when", tried as a newcomer would: the README's commands on a fresh embedded database, then
the dashboard in the app, and the quarter's A-11 CSV from the dashboard, the API and the CLI, byte for byte."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import make_url

from engine.common.errors import ConfigError
from engine.reporting.fiscal import fiscal_quarter
from engine.settings import load_settings
from engine.store.db import utcnow
from tests.conftest import ENCRYPTION, ROOT, SECRET
from tests.dashboard_support import csrf_of
from tests.test_cli import cli, sqlite_env  # noqa: F401  (the fixture)
from tests.test_serve import free_port, wait_ready
from tests.test_workers import pg_url, worker_environment  # noqa: F401  (the fixture)

PASSWORD = "correct horse battery staple 42"


def test_after_the_demo_the_dashboard_shows_it_and_the_a11_csv_is_one_file(sqlite_env, monkeypatch):  # noqa: F811
    cli("db", "upgrade", env=sqlite_env, check=True)
    demo = cli("demo", "--count", "12", "--answer-rate", "1", env=sqlite_env, check=True)
    assert "survey-engine user create" in demo.stdout and "/kiosk/enroll/" in demo.stdout
    made = cli("user", "create", "--email", "pat@agency.gov", "--service", "passport-renewal",
               "--service", "benefits-contact-center", env=sqlite_env, check=True)  # fmt: skip
    link = made.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/dashboard/\S+", link), link
    key = cli("api-key", "create", "--name", "cx", "--service", "passport-renewal", "--scope", "reports",
              env=sqlite_env, check=True).stdout.strip().splitlines()[-1]  # fmt: skip

    for name, value in sqlite_env.items():
        monkeypatch.setenv(name, value)
    from engine.app import create_app

    client = create_app().test_client()
    path = link.removeprefix("http://127.0.0.1:8000")
    form = client.get(path)
    assert form.status_code == 200
    done = client.post(path, data={"password": PASSWORD, "confirm": PASSWORD, "csrf_token": csrf_of(form.text)})
    assert done.status_code in (302, 303)
    page = client.get("/dashboard/sign-in")
    signed = client.post("/dashboard/sign-in", data={"email": "pat@agency.gov", "password": PASSWORD,
                                                     "csrf_token": csrf_of(page.text)})  # fmt: skip
    assert signed.status_code in (302, 303)

    quarter = fiscal_quarter(utcnow(), ZoneInfo("America/New_York"))
    query = f"fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}"
    counted = client.get(f"/dashboard/services/passport-renewal?{query}")
    assert counted.status_code == 200 and "test data" in counted.text
    shown = client.get(f"/dashboard/services/passport-renewal?{query}&data=test")
    assert shown.status_code == 200
    for heading in ("funnel", "Satisfaction", "Trust", "omment"):
        assert heading in shown.text, heading
    assert "<svg" in shown.text and "<table" in shown.text
    respondents = re.compile(r"<dt>Respondents</dt><dd>([0-9,]+)</dd>")
    assert respondents.search(counted.text).group(1) == "0"  # the demo's console data counts nowhere
    assert int(respondents.search(shown.text).group(1).replace(",", "")) > 0  # its test-data view shows it

    from_dashboard = client.get(f"/dashboard/services/passport-renewal/a11.csv?{query}")
    assert from_dashboard.status_code == 200
    from_api = client.get(f"/api/v1/reports/a11?{query}&service=passport-renewal&format=csv",
                          headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert from_api.status_code == 200
    from_cli = subprocess.run(
        [sys.executable, "-m", "engine.cli", "report", "a11", "--fiscal-year", str(quarter.fiscal_year),
         "--quarter", str(quarter.quarter), "--service", "passport-renewal", "--format", "csv"],
        env={**os.environ, **sqlite_env}, capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert from_dashboard.data == from_api.data == from_cli.stdout
    assert from_api.data.startswith(b"fiscal_year,quarter,agency,service_slug,")


# -- settings a newcomer or an operator gets wrong: one line naming the setting, never a traceback -----------------


def one_line_refusal(run: subprocess.CompletedProcess[str], *words: str) -> str:
    """The command ended with status 1 and one ``Error:`` line holding ``words``, no traceback."""
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), run.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("level", ["verbose", "10", "trace"])
def test_a_log_level_logging_does_not_know_is_one_line_naming_the_setting(sqlite_env, level):  # noqa: F811
    """``SURVEY_ENGINE_LOG_LEVEL=verbose`` ended ``serve`` (and ``web``'s workers, and ``worker``) with a traceback
    from logging's set-up ("ValueError: Unknown level: 'VERBOSE'")."""
    run = cli("serve", "--port", "1", env={**sqlite_env, "SURVEY_ENGINE_LOG_LEVEL": level})
    one_line_refusal(run, "SURVEY_ENGINE_LOG_LEVEL", repr(level), "DEBUG, INFO, WARNING, ERROR, CRITICAL")


@pytest.mark.parametrize(("given", "level"), [("", "INFO"), ("debug", "DEBUG"), (" Warning ", "WARNING")])
def test_a_log_level_is_read_in_any_case_and_an_empty_one_is_the_default(tmp_path, given, level):
    """An empty value (``SURVEY_ENGINE_LOG_LEVEL=`` in an env file) is unset, as for every other setting: it was
    kept as the level "" and logging refused it."""
    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path), "SURVEY_ENGINE_LOG_LEVEL": given}
    assert load_settings(env).log_level == level


BAD_DATABASE_URLS = [
    ("postgressql://root:hunter2-secret@127.0.0.1:5432/survey", "'postgressql'"),  # a typo in the scheme
    ("mysql://root:hunter2-secret@127.0.0.1/survey", "'mysql'"),
    ("postgresql+psycopg2://root:hunter2-secret@127.0.0.1/survey", "'postgresql+psycopg2'"),  # not installed
    ("root:hunter2-secret@127.0.0.1:5432/survey", "is not a database URL"),  # the scheme left out
]


@pytest.mark.parametrize(("url", "named"), BAD_DATABASE_URLS)
def test_a_database_url_the_engine_cannot_run_on_is_one_line_naming_the_setting(tmp_path, url, named):
    """An operator's mistyped ``SURVEY_ENGINE_DATABASE_URL`` ended ``db upgrade``, ``web`` and ``worker`` with
    SQLAlchemy's traceback (NoSuchModuleError, ModuleNotFoundError: MySQLdb / psycopg2, ArgumentError). The line
    names the variable and the form it takes, and never the password."""
    env = {"SURVEY_ENGINE_DATABASE_URL": url, "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
           "SURVEY_ENGINE_SECRET_KEY": SECRET, "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION}  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        load_settings(env)
    assert "SURVEY_ENGINE_DATABASE_URL" in str(refused.value) and named in str(refused.value)
    assert "hunter2" not in str(refused.value) and "postgresql://USER" in str(refused.value)
    for command in (["db", "upgrade"], ["worker"]):
        line = one_line_refusal(cli(*command, env=env), "SURVEY_ENGINE_DATABASE_URL", named)
        assert "hunter2" not in line


@pytest.mark.parametrize("url", ["surveys.example.gov", "https://surveys.example.gov/cx", "ftp://surveys.example.gov",
                                 "https://surveys.example.gov:99999", "https://surveys.example.gov/?x=1"])  # fmt: skip
def test_a_public_url_that_is_not_an_origin_is_one_line_naming_the_setting(sqlite_env, url):  # noqa: F811
    """``SURVEY_ENGINE_PUBLIC_URL=surveys.example.gov`` (the scheme left out) was taken as it stood: ``user create``
    printed ``surveys.example.gov/dashboard/set-password/…`` as the link to send, and every survey link sent,
    enrollment link and Twilio signature check was built on it. A path pointed where the engine does not answer."""
    cli("db", "upgrade", env=sqlite_env, check=True)
    made = cli("user", "create", "--email", "pat@agency.gov", "--service", "passport-renewal",
               env={**sqlite_env, "SURVEY_ENGINE_PUBLIC_URL": url})  # fmt: skip
    one_line_refusal(made, "SURVEY_ENGINE_PUBLIC_URL", repr(url), "https://surveys.agency.gov")


@pytest.mark.parametrize(("given", "origin"), [("https://surveys.example.gov/", "https://surveys.example.gov"),
                                               ("HTTPS://surveys.example.gov", "https://surveys.example.gov"),
                                               ("http://[::1]:8000", "http://[::1]:8000")])  # fmt: skip
def test_a_public_url_is_kept_as_its_origin(tmp_path, given, origin):
    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path), "SURVEY_ENGINE_PUBLIC_URL": given}
    assert load_settings(env).public_url == origin


def test_a_public_url_holding_a_password_is_refused_without_repeating_it(tmp_path):
    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path), "SURVEY_ENGINE_PUBLIC_URL": "https://cx:hunter2@x.gov"}
    with pytest.raises(ConfigError) as refused:
        load_settings(env)
    assert "SURVEY_ENGINE_PUBLIC_URL" in str(refused.value) and "hunter2" not in str(refused.value)


# -- a configuration file an agency engineer edited and broke: one line naming the file and the place ---------------

SERVICE = """services:
  passport-renewal:
    name: {name}
    agency: Department of State
    service_type: administrative
    flow: a11-standard
    channels: [console]
    timezone: America/New_York
"""


def config_folder(tmp_path, services: bytes):
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "services.yaml").write_bytes(services)
    (folder / "offices.yaml").write_text("offices:\n  NYC-01: {name: New York}\n")
    return folder


BROKEN_FILES = [
    # Saved by an editor in Latin-1 ("Département"): the start ended with UnicodeDecodeError's traceback.
    (SERVICE.format(name="Renouvellement, Département").encode("latin-1"),
     "services.yaml: not UTF-8 text (line 3 holds the byte 0xe9): save it as UTF-8"),
    # A key indented one space short: PyYAML's six lines, naming "<unicode string>" rather than the file.
    (SERVICE.format(name="Passport Renewal").replace("    agency", "   agency").encode(),
     "services.yaml: not valid YAML at line 4, column 4: expected <block end>, but found '<block mapping start>' "
     "(while parsing a block mapping at line 2, column 3)"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "line"), BROKEN_FILES, ids=["latin-1", "indentation"])
def test_a_services_file_that_cannot_be_read_stops_the_start_with_one_line(sqlite_env, tmp_path, content, line):  # noqa: F811
    env = {**sqlite_env, "SURVEY_ENGINE_CONFIG_DIR": str(config_folder(tmp_path, content))}
    assert one_line_refusal(cli("serve", "--port", "1", env=env)) == f"Error: {line}"
    validated = cli("flows", "validate", env=env)
    assert validated.returncode == 1 and "Traceback" not in validated.stderr
    assert validated.stderr.strip().splitlines() == [f"error: {line.replace(': ', ': rule format: ', 1)}"]


def test_a_flow_file_with_a_yaml_mistake_stops_the_start_with_one_line(sqlite_env, tmp_path):  # noqa: F811
    flows = tmp_path / "flows"
    flows.mkdir()
    for source in (ROOT / "flows").glob("*.yaml"):
        (flows / source.name).write_text(source.read_text())
    (flows / "a11-improve.yaml").write_text("id: a11-improve\nversion: [1\n")
    env = {**sqlite_env, "SURVEY_ENGINE_FLOWS_DIR": str(flows)}
    line = one_line_refusal(cli("serve", "--port", "1", env=env))
    assert line == ("Error: a11-improve.yaml: not valid YAML at line 3, column 1: expected ',' or ']', but got "
                    "'<stream end>' (while parsing a flow sequence at line 2, column 10)")  # fmt: skip


def test_web_with_a_broken_service_refuses_to_start_with_one_line_as_serve_and_worker_do(sqlite_env, tmp_path):  # noqa: F811
    """gunicorn loads the app in each worker: a ``services.yaml`` that ``serve`` refuses in one line made ``web``
    boot its workers, log a traceback in a JSON line, "Worker failed to boot", and exit with status 3."""
    broken = SERVICE.format(name="Passport Renewal").replace("administrative", "benefit").encode()
    env = {**sqlite_env, "SURVEY_ENGINE_CONFIG_DIR": str(config_folder(tmp_path, broken)),
           "HOME": str(tmp_path / "home")}  # fmt: skip
    cli("db", "upgrade", env=env, check=True)
    run = cli("web", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1", env=env)
    one_line_refusal(run, "services.yaml: service 'passport-renewal': service_type 'benefit' is not one of")
    assert run.stdout == ""


@pytest.mark.slow
def test_every_line_a_worker_logs_is_json_its_start_line_too(pg_url, tmp_path, flows_dir):  # noqa: F811
    """The role logs JSON lines (SPEC §2 rule 12), but ``worker`` announced itself with the bare text "survey-engine
    worker started" on standard error, the one line a log shipper could not parse. Its database's password hidden."""
    url = make_url(pg_url).set(password="hunter2-secret").render_as_string(hide_password=False)
    env = worker_environment(url, tmp_path, flows_dir)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "worker"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        first = proc.stderr.readline()  # type: ignore[union-attr]
        time.sleep(2)  # its jobs under way, so SIGTERM stops them in order
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, first + rest
    lines = [json.loads(line) for line in (first + rest).splitlines()]
    started = lines[0]
    assert (started["logger"], started["event"]) == ("survey_engine.worker", "worker started"), started
    assert started["database"].startswith("postgresql+psycopg://root:***@") and started["pid"] == proc.pid
    assert "hunter2" not in first + rest


@pytest.mark.slow
def test_every_line_serve_logs_is_json_from_the_first(sqlite_env):  # noqa: F811
    """``serve`` set up its JSON logs only once its runtime was built, so what building it logged came out as bare
    text: a SENDGRID_WEBHOOK_PUBLIC_KEY pasted wrongly was the line "SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER
    public key (ValueError)", which a log shipper could not parse (and ``web`` and ``worker`` wrote as JSON)."""
    port = free_port()
    env = {**os.environ, **sqlite_env, "SENDGRID_WEBHOOK_PUBLIC_KEY": "not-a-key", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_ready(port, proc).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    lines = [json.loads(line) for line in err.splitlines()]
    assert {"level": "error", "logger": "survey_engine.channels.email",
            "event": "SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER public key (ValueError)"}.items() <= lines[0].items()  # fmt: skip


PROVIDER_SERVICE = SERVICE.replace("channels: [console]", "channels: [sms, ivr, email, console]")
NOT_CONFIGURED = "CHANNEL NOT CONFIGURED: every invitation on it fails at send"


@pytest.mark.parametrize(
    ("providers", "expected"),
    [
        ({}, {"sms": "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set",
              "ivr": "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set",
              "email": "SENDGRID_API_KEY and SENDGRID_FROM_EMAIL are not set"}),
        ({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "a-token", "SENDGRID_API_KEY": "SG.a-key"},
         {"sms": "neither TWILIO_FROM_NUMBER nor TWILIO_MESSAGING_SERVICE_SID is set",
          "ivr": "TWILIO_FROM_NUMBER is not set (calls are placed from it)",
          "email": "SENDGRID_FROM_EMAIL is not set"}),
        ({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "a-token", "TWILIO_FROM_NUMBER": "+12025550100",
          "SENDGRID_API_KEY": "SG.a-key", "SENDGRID_FROM_EMAIL": "cx@example.gov"}, {}),
    ],
    ids=["nothing", "half", "all"],
)  # fmt: skip
def test_a_channel_whose_provider_settings_are_missing_is_named_at_start_up(tmp_path, caplog, providers, expected):
    """An operator who lists ``sms`` and forgets TWILIO_FROM_NUMBER learnt it from invitations failing one by one
    ("twilio sender not configured"): nothing was said when ``serve``, ``web`` or ``worker`` started."""
    import logging

    from engine.app import create_app

    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
           "SURVEY_ENGINE_CONFIG_DIR": str(config_folder(tmp_path, PROVIDER_SERVICE.encode())),
           "SURVEY_ENGINE_FLOWS_DIR": str(ROOT / "flows"), **providers}  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="survey_engine"):
        create_app(load_settings(env), migrate_database=True)
    said = {r.channel: r.reason for r in caplog.records if r.getMessage() == NOT_CONFIGURED}  # type: ignore[attr-defined]
    assert said == expected
    assert all(r.service == "passport-renewal" for r in caplog.records if r.getMessage() == NOT_CONFIGURED)  # type: ignore[attr-defined]
    assert "a-token" not in caplog.text and "SG.a-key" not in caplog.text


@pytest.mark.slow
def test_web_says_each_start_up_warning_once_not_once_a_worker(sqlite_env, tmp_path):  # noqa: F811
    """Each gunicorn worker built the app and said the start-up's loud lines itself: under ``web --workers 2`` an
    operator read every "CHANNEL NOT CONFIGURED" and "PRA APPROVAL EXPIRED" line twice. ``web`` says each once,
    before gunicorn starts."""
    import yaml

    from tests.helpers import SSA_PRA

    services = yaml.safe_load(PROVIDER_SERVICE.format(name="Passport Renewal"))
    services["services"]["lapsed"] = {**services["services"]["passport-renewal"], "name": "Lapsed Clearance",
                                      "channels": ["console"], "pra": {**SSA_PRA, "expiration_date": "2024-01-31"}}  # fmt: skip
    env = {name: value for name, value in os.environ.items() if not name.startswith(("TWILIO_", "SENDGRID_"))}
    env |= {**sqlite_env, "SURVEY_ENGINE_CONFIG_DIR": str(config_folder(tmp_path, yaml.safe_dump(services).encode())),
            "HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    cli("db", "upgrade", env=env, check=True)
    port, log_path = free_port(), tmp_path / "web.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "web", "--bind", f"127.0.0.1:{port}",
                                 "--workers", "2"], env=env, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_ready(port, proc).close()  # type: ignore[arg-type]
            deadline = time.monotonic() + 60  # both workers booted, so both would have spoken by now
            while log_path.read_text().count("Booting worker") < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    said = [json.loads(line) for line in log_path.read_text().splitlines() if NOT_CONFIGURED in line]
    assert log_path.read_text().count("Booting worker") == 2
    assert sorted(line["channel"] for line in said) == ["email", "ivr", "sms"], said
    lapsed = [json.loads(line) for line in log_path.read_text().splitlines() if "PRA APPROVAL EXPIRED" in line]
    assert [line["service"] for line in lapsed] == ["lapsed"], lapsed


def test_web_on_a_database_never_upgraded_refuses_to_start_as_worker_does(sqlite_env, tmp_path):  # noqa: F811
    """An operator who skipped ``db upgrade`` got a ``web`` that started, logged a warning, and answered every API
    request with a 500 (the tables missing): ``worker`` refuses that database in one line, and now ``web`` too."""
    env = {**os.environ, **sqlite_env, "HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "engine.cli", "web", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1"]
    try:
        run = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"web started on a database without its schema: {exc.stderr!r}")
    one_line_refusal(run, "the database schema is not current: run `survey-engine db upgrade`")


@pytest.mark.parametrize("variable", ["SURVEY_ENGINE_SEND_RATE_SMSS", "SURVEY_ENGINE_SEND_RATE_TEXT"])
def test_a_send_rate_naming_no_channel_is_one_line_naming_it(sqlite_env, tmp_path, variable):  # noqa: F811
    """An operator's ``SURVEY_ENGINE_SEND_RATE_SMSS=3`` (a typo) or ``…_TEXT`` was read as the rate of a channel
    called ``smss``, which none is: the start said nothing and the sms channel went on at its default rate."""
    env = {**sqlite_env, variable: "3", "HOME": str(tmp_path / "home")}
    expected = f"Error: {variable}: no such channel (the channels are console, email, ivr, kiosk, sms, website;"
    assert one_line_refusal(cli("api-key", "list", env=env)).startswith(expected)
    command = [sys.executable, "-m", "engine.cli", "web", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1"]
    cli("db", "upgrade", env=sqlite_env, check=True)
    try:
        run = subprocess.run(command, env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"web started with {variable}")
    assert one_line_refusal(run).startswith(expected)
