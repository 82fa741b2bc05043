"""A flow version is immutable once a response uses it: a changed flow with the same version is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.channels import load_channels
from engine.common.errors import ConfigError
from engine.delivery.dispatch import Dispatcher
from engine.runtime import build_runtime
from engine.store.db import unit_of_work
from engine.store.models import FlowVersion, Invitation
from engine.surveys.sessions import Given, SurveySessions
from tests.helpers import post, tx
from tests.stand_ins import ScriptedChannel
from tests.test_serve import free_port

ROOT = Path(__file__).resolve().parent.parent


def _runtime(settings, flows_dir):
    channels = load_channels(settings)
    channels.register(ScriptedChannel())
    return build_runtime(replace(settings, flows_dir=flows_dir), channels=channels)


def _changed_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    path = target / "a11-standard.yaml"
    path.write_text(path.read_text().replace("My need was addressed.", "My need was met."))
    return target


def _answer_one(client, auth, runtime):
    post(client, tx("FV-1", contact={"email": "fv@example.com"}), auth)
    Dispatcher(runtime).drain(datetime.now(UTC) + timedelta(minutes=20))
    sessions = SurveySessions(runtime)
    with unit_of_work(runtime.sessions) as session:
        invitation = session.execute(select(Invitation)).scalar_one()
        response = sessions.start_for_invitation(session, invitation, "en")
        flow = sessions.flow_of(response)
        sessions.record(session, response, flow.question("trust"), Given(value=4))


def test_an_unused_version_may_still_change(settings, runtime, flows_dir, tmp_path):
    changed = _changed_copy(flows_dir, tmp_path / "flows")
    rt = _runtime(settings, changed)
    rt.sync_catalog()
    with rt.sessions() as session:
        stored = session.execute(select(FlowVersion).where(FlowVersion.flow_id == "a11-standard")).scalar_one()
    assert stored.content_hash == rt.catalog.flows["a11-standard"].content_hash


def test_a_changed_published_version_is_refused(client, auth, settings, runtime, flows_dir, tmp_path):
    _answer_one(client, auth, runtime)
    changed = _changed_copy(flows_dir, tmp_path / "flows")
    with pytest.raises(ConfigError, match="rule immutable-version"):
        _runtime(settings, changed).sync_catalog()
    env = {**os.environ, "SURVEY_ENGINE_DATABASE_URL": settings.database_url,
           "SURVEY_ENGINE_SECRET_KEY": settings.secret_key, "SURVEY_ENGINE_ENCRYPTION_KEY": settings.encryption_key,
           "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance")}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "engine.cli", "flows", "validate", str(changed / "a11-standard.yaml")],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1 and "rule immutable-version" in result.stderr
    # The unchanged flow still validates against the same store.
    same = subprocess.run([sys.executable, "-m", "engine.cli", "flows", "validate", str(flows_dir / "a11-standard.yaml")],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert same.returncode == 0, same.stderr
    # Every role refuses such a store in one line, before it serves: serve and web (worker through the same path).
    # serve's came out as a traceback of the ConfigError.
    for role in (
        ["serve", "--port", str(free_port())],
        ["web", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1"],
    ):
        refused = subprocess.run([sys.executable, "-m", "engine.cli", *role], cwd=ROOT, capture_output=True, text=True,
                                 env={**env, "SURVEY_ENGINE_FLOWS_DIR": str(changed), "HOME": str(tmp_path)},
                                 timeout=60)  # fmt: skip
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert refused.stderr.startswith("Error: a11-standard v") and "rule immutable-version" in refused.stderr
