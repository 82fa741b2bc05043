"""Configured strings that do not fit their columns are refused where the catalogue loads, in one line.

Every string the catalogue sync writes to a bounded column (``offices.code`` String(64), ``services.name``
String(300), ``flow_versions.version`` String(32), ...) is checked against that column's own length. Before, an
office code of 65 characters started the engine on SQLite (stored whole) and stopped it on PostgreSQL with a
database error at the sync (a traceback); ``flows validate`` called the configuration valid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from engine.app import create_app
from engine.catalog.services import load_catalog
from engine.common.errors import ConfigError
from engine.runtime import build_runtime
from engine.settings import Settings, load_settings
from engine.store.models import FlowVersion, Office, Service, Survey
from tests.conftest import ENCRYPTION, ROOT, SECRET
from tests.helpers import STATE_PRA, write_config

SLUG = "passport-renewal"
CODE = "NYC-01"
EXTRA = "a11-extra"  # a flow in the flows directory that no service uses: the sync stores it all the same


def service(**changes: Any) -> dict[str, Any]:
    return {"name": "Passport Renewal", "agency": "Department of State", "service_type": "administrative",
            "service_stage": "renewal", "flow": "a11-standard", "channels": ["console"], "timezone": "UTC",
            "pra": dict(STATE_PRA), **changes}  # fmt: skip


def office(**changes: Any) -> dict[str, Any]:
    return {"name": "New York Passport Agency", "timezone": "America/New_York", **changes}


def catalogue(
    tmp_path: Path,
    services: dict[str, Any] | None = None,
    offices: dict[str, Any] | None = None,
    extra_flow: dict[str, Any] | None = None,
    flow_id: str = EXTRA,
) -> tuple[Path, Path]:
    """A config directory and a flows directory (the shipped a11-standard, and an unused copy changed so)."""
    config = write_config(tmp_path / "config", services or {SLUG: service()}, offices or {CODE: office()})
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(ROOT / "flows" / "a11-standard.yaml", flows / "a11-standard.yaml")
    copy = yaml.safe_load((ROOT / "flows" / "a11-standard.yaml").read_text())
    copy.update(id=flow_id, title="An unused copy", **(extra_flow or {}))
    (flows / f"{flow_id}.yaml").write_text(yaml.safe_dump(copy, sort_keys=False))
    return config, flows


def settings_for(database_url: str, config: Path, flows: Path, tmp_path: Path) -> Settings:
    return load_settings({
        "SURVEY_ENGINE_DATABASE_URL": database_url, "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
        "SURVEY_ENGINE_CONFIG_DIR": str(config), "SURVEY_ENGINE_FLOWS_DIR": str(flows),
        "SURVEY_ENGINE_SECRET_KEY": SECRET, "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
    })  # fmt: skip


LONG_CODE = "C" * 65
HERE = f"services.yaml: service {SLUG!r}"
THERE = f"offices.yaml: office {CODE!r}"
# Each too-long value (one character over its column), how it is configured, and the one line that refuses it.
TOO_LONG: dict[str, tuple[Callable[[Path], tuple[Path, Path]], str]] = {
    "office code": (lambda t: catalogue(t, offices={LONG_CODE: office()}),
                    f"offices.yaml: office {LONG_CODE!r}: the code must be at most 64 characters"),
    "office name": (lambda t: catalogue(t, offices={CODE: office(name="n" * 301)}),
                    f"{THERE}: the name must be at most 300 characters"),
    "office timezone": (lambda t: catalogue(t, offices={CODE: office(timezone="z" * 65)}),
                        f"{THERE}: the timezone must be at most 64 characters"),
    "service name": (lambda t: catalogue(t, services={SLUG: service(name="n" * 301)}),
                     f"{HERE}: the name must be at most 300 characters"),
    "service agency": (lambda t: catalogue(t, services={SLUG: service(agency="a" * 301)}),
                       f"{HERE}: the agency must be at most 300 characters"),
    "service stage": (lambda t: catalogue(t, services={SLUG: service(service_stage="s" * 101)}),
                      f"{HERE}: the service_stage must be at most 100 characters"),
    "service timezone": (lambda t: catalogue(t, services={SLUG: service(timezone="z" * 65)}),
                         f"{HERE}: the timezone must be at most 64 characters"),
    "service's own omb_control_number": (
        lambda t: catalogue(t, services={SLUG: service(pra={**STATE_PRA, "omb_control_number": "1" * 33})}),
        f"{HERE}: pra: pra.omb_control_number must be at most 32 characters"),
    "flow version": (lambda t: catalogue(t, extra_flow={"version": "7" * 33}),
                     f"{EXTRA}.yaml: the version must be at most 32 characters"),
    "flow id": (lambda t: catalogue(t, flow_id="f" * 101),
                f"{'f' * 101}.yaml: the id must be at most 100 characters"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TOO_LONG))
def test_a_value_longer_than_its_column_is_refused_at_load_in_one_line(tmp_path, case):
    configure, line = TOO_LONG[case]
    config, flows = configure(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_catalog(config, flows)
    assert str(caught.value) == line


@pytest.mark.parametrize(
    ("configure", "start"),
    [
        (lambda t: catalogue(t, offices={"C" * 1_000_000: office()}), "offices.yaml: office 'CCCC"),
        (lambda t: catalogue(t, services={SLUG: service(timezone="z" * 1_000_000)}), f"{HERE}: the timezone"),
        (lambda t: catalogue(t, offices={"C" * 1_000_000: office(timezone="Mars/Olympus_Mons")}), "offices.yaml"),
    ],
)
def test_a_megabyte_value_is_cut_in_the_message_not_echoed(tmp_path, configure, start):
    config, flows = configure(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_catalog(config, flows)
    message = str(caught.value)
    assert message.startswith(start) and "\n" not in message and len(message) < 300, message[:400]


def test_start_up_refuses_a_too_long_office_code_in_one_line_and_stores_nothing(database_url, tmp_path):
    """``create_app`` (what gunicorn's ``wsgi:app`` runs): the one line, not a database error, on both backends."""
    config, flows = catalogue(tmp_path, offices={CODE: office(), LONG_CODE: office()})
    with pytest.raises(ConfigError) as caught:
        create_app(settings_for(database_url, config, flows, tmp_path))
    assert str(caught.value) == TOO_LONG["office code"][1]
    rt = build_runtime(settings_for(database_url, *catalogue(tmp_path / "ok"), tmp_path))
    try:
        with rt.sessions() as session:
            assert session.execute(select(Office.code)).scalars().all() == []
    finally:
        rt.engine.dispose()


def test_the_longest_values_each_column_holds_load_and_sync(database_url, tmp_path):
    """One character under each refusal: the checks are not off by one, and the store takes every value whole.
    (No time zone name comes near 64 characters; their check only keeps a wrong one out of the message.)"""
    # (A control number is "NNNN-NNNN": its 32-character column is never the limit.)
    longest = {"name": "n" * 300, "agency": "a" * 300, "service_stage": "s" * 100}
    config, flows = catalogue(tmp_path, services={SLUG: service(**longest)},
                              offices={"C" * 64: office(name="o" * 300)}, extra_flow={"version": "7" * 32},
                              flow_id="f" * 100)  # fmt: skip
    rt = build_runtime(settings_for(database_url, config, flows, tmp_path))
    try:
        rt.sync_catalog()
        with rt.sessions() as session:
            assert session.execute(select(Office.code, Office.name)).one() == ("C" * 64, "o" * 300)
            row = session.execute(select(Service.name, Service.agency, Service.service_stage)).one()
            assert tuple(row) == ("n" * 300, "a" * 300, "s" * 100)
            assert session.execute(select(FlowVersion.version).where(FlowVersion.flow_id == "f" * 100)).scalar_one() \
                == "7" * 32  # fmt: skip
            assert session.execute(select(Survey.omb_control_number)).scalar_one() == STATE_PRA["omb_control_number"]
    finally:
        rt.engine.dispose()


# -- the command line --------------------------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _env(tmp_path: Path, config: Path, flows: Path, database_url: str = "") -> dict[str, str]:
    secrets = (SECRET, ENCRYPTION) if database_url else ("", "")
    return {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"), "SURVEY_ENGINE_DATABASE_URL": database_url,
            "SURVEY_ENGINE_SECRET_KEY": secrets[0], "SURVEY_ENGINE_ENCRYPTION_KEY": secrets[1],
            "SURVEY_ENGINE_CONFIG_DIR": str(config), "SURVEY_ENGINE_FLOWS_DIR": str(flows)}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "line"),
    [("office code", TOO_LONG["office code"][1]),
     ("service name", TOO_LONG["service name"][1]),
     ("flow version", f"{EXTRA}.yaml: rule format: the version must be at most 32 characters")],
)  # fmt: skip
def test_flows_validate_refuses_a_too_long_value_in_one_line(tmp_path, case, line):
    config, flows = TOO_LONG[case][0](tmp_path)
    result = _cli("flows", "validate", env=_env(tmp_path, config, flows))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {line}"], result.stderr


def test_a_command_that_starts_the_engine_refuses_a_too_long_office_code_in_one_line(database_url, tmp_path):
    """On PostgreSQL this was a DataError traceback from the sync; on SQLite the command ran."""
    config, flows = TOO_LONG["office code"][0](tmp_path)
    result = _cli("api-key", "list", env=_env(tmp_path, config, flows, database_url))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip() == f"Error: {TOO_LONG['office code'][1]}"
