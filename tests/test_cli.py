"""The ``survey-engine`` command line, run as a newcomer would (a real process, the real database)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ENCRYPTION, SECRET

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict[str, str], check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=check)  # fmt: skip


@pytest.fixture
def sqlite_env(tmp_path):
    return {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"), "SURVEY_ENGINE_DATABASE_URL": "",
            "SURVEY_ENGINE_SECRET_KEY": "", "SURVEY_ENGINE_ENCRYPTION_KEY": ""}  # fmt: skip


def test_db_upgrade_then_api_key_create_prints_the_key_alone_on_the_last_line(sqlite_env, tmp_path):
    assert "database at revision" in cli("db", "upgrade", env=sqlite_env, check=True).stdout
    secrets = tmp_path / "instance" / "secrets.json"
    assert secrets.exists() and (secrets.stat().st_mode & 0o777) == 0o600
    result = cli("api-key", "create", "--name", "crm", "--service", "passport-renewal", "--scope", "intake",
                 env=sqlite_env, check=True)  # fmt: skip
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("se_") and " " not in key and len(key) > 40
    unknown = cli("api-key", "create", "--name", "x", "--service", "nope", env=sqlite_env)
    assert unknown.returncode != 0 and "unknown services: nope" in unknown.stderr


@pytest.mark.parametrize("args", [("serve", "--port", "99999999"), ("serve", "--port", "-1"),
                                  ("web", "--workers", "0"), ("web", "--workers", "99999999999999999999")])  # fmt: skip
def test_a_port_or_worker_count_out_of_range_is_a_usage_error_not_a_hang_or_a_fork_storm(sqlite_env, args):
    """``serve --port 99999999`` printed "serving" and hung; ``web --workers 99999999999999999999`` booted workers
    without end; ``--workers 0`` served nothing, silently."""
    result = cli(*args, env=sqlite_env)
    assert result.returncode == 2 and args[1] in result.stderr


def test_worker_refuses_sqlite(sqlite_env):
    result = cli("worker", env=sqlite_env)
    assert result.returncode != 0
    assert "needs PostgreSQL" in result.stderr and "serve" in result.stderr


def test_postgresql_without_secrets_stops_with_a_clear_message(tmp_path):
    env = {"SURVEY_ENGINE_DATABASE_URL": "postgresql://root@127.0.0.1:5432/test", "SURVEY_ENGINE_SECRET_KEY": "",
           "SURVEY_ENGINE_ENCRYPTION_KEY": "", "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path)}  # fmt: skip
    result = cli("db", "upgrade", env=env)
    assert result.returncode != 0
    assert "SURVEY_ENGINE_SECRET_KEY" in result.stderr and "must be set" in result.stderr


def test_flows_validate_passes_the_shipped_flows_and_refuses_broken_ones(sqlite_env, tmp_path):
    ok = cli("flows", "validate", env=sqlite_env)
    assert ok.returncode == 0, ok.stderr
    broken = (ROOT / "flows" / "a11-standard.yaml").read_text().replace("a11: trust", "a11: other")
    path = tmp_path / "broken.yaml"
    path.write_text(broken)
    bad = cli("flows", "validate", str(path), env=sqlite_env)
    assert bad.returncode == 1 and "rule trust" in bad.stderr


def test_demo_feeds_transactions_through_the_real_intake(sqlite_env):
    cli("db", "upgrade", env=sqlite_env, check=True)
    result = cli("demo", "--count", "5", "--service", "passport-renewal", "--answer-rate", "1", env=sqlite_env,
                 check=True)  # fmt: skip
    assert "passport-renewal: scheduled 5" in result.stdout
    assert len(re.findall(r"http://127\.0\.0\.1:8000/s/[A-Za-z0-9_-]{22}", result.stdout)) == 5
    assert "answered: 5 survey(s)" in result.stdout


def test_the_demo_says_where_the_links_are_when_a_running_serve_sent_its_invitations_first(runtime):
    # ``serve`` dispatches every few seconds: between the demo's intake and its own dispatch it may take the demo's
    # invitations, and then prints their links in its own console. The demo's line says so, not a bare "sent 0".
    import random

    from engine.commands import demo
    from engine.delivery.dispatch import Dispatcher
    from engine.intake.submit import Intake
    from engine.store.db import unit_of_work

    stamp = "20261205120000"
    with unit_of_work(runtime.sessions) as session:
        items = demo._transactions(runtime, "passport-renewal", 3, random.Random(1), stamp)
        Intake(runtime).submit(session, items, None, source="demo")
    assert demo._sent_line(runtime, stamp, 0) == (
        "sent now: 0 invitation(s); the console printed each message with its survey link"
    )
    assert Dispatcher(runtime).drain().handed == 3  # the running service's dispatcher, first
    line = demo._sent_line(runtime, stamp, 0)
    assert line.endswith("3 more were sent meanwhile by a running `serve` or `worker`: that process's console "
                         "printed their links"), line  # fmt: skip


@pytest.mark.parametrize("count", ["-1", "0", "1001", "1000000000000", "abc", "1.5"])
def test_demo_refuses_a_count_it_cannot_honour_in_one_line(sqlite_env, tmp_path, count):
    result = cli("demo", "--count", count, env=sqlite_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        result.stderr.strip()
        == f"Error: --count must be a whole number from 1 to 1000 (transactions a service), got {count}"
    )
    assert result.stdout == ""
    assert not (tmp_path / "instance" / "survey-engine.db").exists()  # refused before the database is touched


def test_a_service_slug_that_cannot_stand_in_a_url_stops_a_command_in_one_line(sqlite_env, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "offices.yaml").write_bytes((ROOT / "config" / "offices.yaml").read_bytes())
    services = (ROOT / "config" / "services.yaml").read_text()
    assert "\n  passport-renewal:\n" in services
    (config / "services.yaml").write_text(services.replace("\n  passport-renewal:\n", "\n  Passport/Renewal:\n"))
    result = cli("api-key", "list", env={**sqlite_env, "SURVEY_ENGINE_CONFIG_DIR": str(config)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip() == (
        "Error: services.yaml: service 'Passport/Renewal': a service slug must be 1 to 64 lower-case letters, digits "
        "and hyphens, starting and ending with a letter or digit (it stands in URLs and file names)"
    )


@pytest.mark.parametrize("rate", ["2", "1.01", "-0.5", "nan", "inf", "half"])
def test_demo_refuses_an_answer_rate_outside_0_to_1_in_one_line(sqlite_env, tmp_path, rate):
    """``--answer-rate 2`` was click's usage error (three lines, exit 2); ``--answer-rate nan`` ran and answered
    nothing."""
    result = cli("demo", "--answer-rate", rate, env=sqlite_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"Error: --answer-rate must be a number from 0 to 1 (the share of sent invitations the demo answers), got {rate}"
    )
    assert result.stdout == ""
    assert not (tmp_path / "instance" / "survey-engine.db").exists()  # refused before the database is touched


def test_demo_refuses_an_unknown_service_before_the_database_is_touched(sqlite_env, tmp_path):
    result = cli("demo", "--service", "passport-renewal", "--service", "nope", env=sqlite_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip() == "Error: unknown services: nope"
    assert not (tmp_path / "instance" / "survey-engine.db").exists()


def test_secrets_are_not_in_the_environment_of_the_code():
    text = (ROOT / "engine" / "settings.py").read_text()
    assert SECRET not in text and ENCRYPTION not in text


def test_web_role_serves_under_gunicorn(sqlite_env, tmp_path):
    import socket
    import time
    import urllib.request

    cli("db", "upgrade", env=sqlite_env, check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "web", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                            env={**os.environ, **sqlite_env}, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        body = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    body = response.read().decode()
                    break
            except OSError:
                time.sleep(0.2)
        assert body is not None and '"ready"' in body
    finally:
        proc.terminate()
        proc.wait(timeout=30)
