"""`survey-engine api-key create|list|revoke`, run as real processes against SQLite and PostgreSQL.

A revoked key is refused at once by a web process that had not cached it, and within
``SURVEY_ENGINE_API_KEY_CACHE_SECONDS`` by one that had; the revocation is in ``audit_log``.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import select

from engine.app import create_app
from engine.channels import load_channels
from engine.runtime import build_runtime
from engine.settings import Settings
from engine.store.models import ApiKey, AuditEntry
from tests import dashboard_support
from tests.conftest import ROOT

dash_config_dir = dashboard_support.dash_config_dir
dash_settings = dashboard_support.dash_settings
dash_runtime = dashboard_support.dash_runtime
dash_app = dashboard_support.dash_app
SERVICE = "dash-email"


def _env(settings: Settings) -> dict[str, str]:
    return {
        "SURVEY_ENGINE_DATABASE_URL": settings.database_url,
        "SURVEY_ENGINE_INSTANCE_DIR": str(settings.instance_dir),
        "SURVEY_ENGINE_CONFIG_DIR": str(settings.config_dir),
        "SURVEY_ENGINE_FLOWS_DIR": str(settings.flows_dir),
        "SURVEY_ENGINE_SECRET_KEY": settings.secret_key,
        "SURVEY_ENGINE_ENCRYPTION_KEY": settings.encryption_key,
    }


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], env={**os.environ, **_env(settings)},
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip


def _lookup(client: Any, key: str) -> int:
    response = client.get(f"/api/v1/transactions/{SERVICE}/NOPE-1", headers={"Authorization": f"Bearer {key}"})
    return int(response.status_code)


def test_list_and_revoke_end_a_key_everywhere(dash_settings, dash_runtime, dash_app):
    settings, runtime, app = dash_settings, dash_runtime, dash_app
    created = cli(settings, "api-key", "create", "--name", "crm", "--service", "dash-email")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    other = cli(settings, "api-key", "create", "--name", "reader", "--service", "dash-email",
                "--scope", "reports").stdout.strip().splitlines()[-1]  # fmt: skip

    # A second web process whose cache keeps a verified key for one second.
    short = dataclasses.replace(runtime.settings, api_key_cache_seconds=1.0)
    channels = load_channels(short)
    rt2 = build_runtime(short, channels=channels)
    other_app = create_app(runtime=rt2)
    client, other_client = app.test_client(), other_app.test_client()
    try:
        assert _lookup(other_client, key) == 404  # known key, unknown transaction: the key was verified (cached)

        listing = cli(settings, "api-key", "list")
        assert listing.returncode == 0, listing.stderr
        assert "id\tname\tprefix\tservices\tscopes\tcreated (UTC)\trevoked (UTC)" in listing.stderr
        rows = [line.split("\t") for line in listing.stdout.strip().splitlines()]
        by_name = {row[1]: row for row in rows}
        assert set(by_name) == {"crm", "reader"}
        crm = by_name["crm"]
        assert crm[2] == key[:10] + "…" and key not in listing.stdout and other not in listing.stdout
        assert crm[3] == "dash-email" and crm[4] == "intake,reports" and crm[6] == "-"
        assert by_name["reader"][4] == "reports"

        revoked = cli(settings, "api-key", "revoke", crm[0])
        assert revoked.returncode == 0, revoked.stderr
        assert f"API key {crm[0]} (crm) revoked" in revoked.stdout
        # This process had not used the key: refused at once.
        assert _lookup(client, key) == 401
        # The other process had it cached: refused once its cache time has passed.
        deadline = time.monotonic() + 5
        while _lookup(other_client, key) != 401:
            assert time.monotonic() < deadline, "the revoked key still works after the cache time"
            time.sleep(0.2)
        # The other key is untouched.
        assert _lookup(client, other) == 404

        again = cli(settings, "api-key", "list").stdout.strip().splitlines()
        crm_row = next(line.split("\t") for line in again if line.split("\t")[1] == "crm")
        assert crm_row[6] != "-"
        with runtime.sessions() as session:
            row = session.get(ApiKey, int(crm[0]))
            assert row is not None and row.revoked_at is not None
            audit = session.execute(select(AuditEntry).where(AuditEntry.action == "api_key.revoke")).scalars().all()
            assert [(a.actor, a.subject, a.detail["id"]) for a in audit] == [("cli", "crm", int(crm[0]))]

        twice = cli(settings, "api-key", "revoke", crm[0])
        assert twice.returncode == 0 and "already revoked" in twice.stderr
        unknown = cli(settings, "api-key", "revoke", "999999")
        assert unknown.returncode != 0 and "no API key with id 999999" in unknown.stderr
        bad = cli(settings, "api-key", "revoke", "abc")
        assert bad.returncode == 2 and "ID" in bad.stderr
        for huge in ("99999999999999999999", "-99999999999999999999"):  # beyond a database integer: not a traceback
            beyond = cli(settings, "api-key", "revoke", "--", huge)
            assert beyond.returncode == 2 and "ID" in beyond.stderr and "Traceback" not in beyond.stderr
    finally:
        rt2.engine.dispose()


def test_create_refuses_a_name_the_store_cannot_keep(dash_settings, dash_runtime):
    settings, runtime = dash_settings, dash_runtime
    result = cli(settings, "api-key", "create", "--name", "bad\udc80name", "--service", "dash-email")
    assert result.returncode == 2 and "--name" in result.stderr
    with runtime.sessions() as session:
        assert session.execute(select(ApiKey)).first() is None
