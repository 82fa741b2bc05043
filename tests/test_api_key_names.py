"""An API key's name fits every column it is written to: its opt-outs and restores record ``api-key:<name>``.

``suppressions.source``, ``suppressions.restored_by`` and ``audit_log.actor`` held 120 characters, and a key name
could be 120 too: a key named with 113 or more characters was created, and its first ``POST /api/v1/opt-outs``
was a 500 on PostgreSQL (value too long; SQLite stored it whole). The three columns now hold 128 (migration
0010_wider_actors), so a name of the 120 characters its own column holds is recorded whole; a longer one is
refused when the key is made.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from engine.api.auth import create_api_key
from engine.settings import Settings
from engine.store.db import unit_of_work
from engine.store.models import ApiKey, AuditEntry, Suppression
from tests.conftest import ROOT

LONGEST = "k" * 120


def test_a_key_name_its_opt_outs_could_not_record_is_refused_when_the_key_is_made(runtime, settings: Settings):
    with (
        pytest.raises(ValueError, match=r"^the name must be 1 to 120 characters$"),
        unit_of_work(runtime.sessions) as s,
    ):
        create_api_key(s, LONGEST + "k", ("passport-renewal",), ("intake",))
    env = {**os.environ, "SURVEY_ENGINE_DATABASE_URL": settings.database_url,
           "SURVEY_ENGINE_INSTANCE_DIR": str(settings.instance_dir), "SURVEY_ENGINE_CONFIG_DIR": str(settings.config_dir),
           "SURVEY_ENGINE_FLOWS_DIR": str(settings.flows_dir), "SURVEY_ENGINE_SECRET_KEY": settings.secret_key,
           "SURVEY_ENGINE_ENCRYPTION_KEY": settings.encryption_key}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "engine.cli", "api-key", "create", "--name", LONGEST + "k",
                             "--service", "passport-renewal"], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--name" in result.stderr and "must be 1 to 120 characters" in result.stderr
    assert "Traceback" not in result.stderr
    with runtime.sessions() as session:
        assert session.execute(select(ApiKey)).first() is None


def test_the_longest_key_name_records_an_opt_out_and_a_restore(client, runtime):
    with unit_of_work(runtime.sessions) as session:
        key = create_api_key(session, LONGEST, ("passport-renewal",), ("intake", "admin"))
    headers = {"Authorization": f"Bearer {key}"}
    made = client.post("/api/v1/opt-outs", json={"email": "long.name@example.gov"}, headers=headers)
    assert made.status_code == 201, made.get_json()
    restored = client.delete("/api/v1/opt-outs", json={"email": "long.name@example.gov", "reason": "asked again"},
                             headers=headers)  # fmt: skip
    assert restored.status_code == 200 and restored.get_json()["restored"] >= 1, restored.get_json()
    actor = f"api-key:{LONGEST}"
    with runtime.sessions() as session:
        rows = session.execute(select(Suppression.source, Suppression.restored_by)).all()
        assert rows and all(tuple(row) == (actor, actor) for row in rows), rows
        assert actor in session.execute(select(AuditEntry.actor)).scalars().all()
