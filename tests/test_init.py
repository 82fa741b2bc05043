"""`survey-engine init [DIR]` and the folders an install defaults to: the current directory, never the package's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.settings import load_settings, shipped
from tests.conftest import ROOT


def init(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEY_ENGINE_")}
    return subprocess.run([sys.executable, "-m", "engine.cli", "init", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_config_flows_and_instance_default_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.config_dir == tmp_path / "config"
    assert settings.flows_dir == tmp_path / "flows"
    assert settings.instance_dir == tmp_path / "instance"
    assert settings.database_url == f"sqlite:///{tmp_path / 'instance' / 'survey-engine.db'}"
    # From a checkout the shipped folders are the repository's own (the wheel carries copies in the package).
    assert shipped("locales") == ROOT / "locales" and shipped("flows") == ROOT / "flows"


def test_init_writes_the_starter_and_refuses_to_overwrite(tmp_path):
    done = init("site", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    site = tmp_path / "site"
    assert (site / "config" / "services.yaml").read_bytes() == (ROOT / "config" / "services.yaml").read_bytes()
    assert (site / "config" / "offices.yaml").is_file()
    assert sorted(p.name for p in (site / "flows").glob("*.yaml")) == sorted(
        p.name for p in (ROOT / "flows").glob("*.yaml")
    )

    # One file already there: nothing is written, and the message names it.
    other = tmp_path / "other"
    (other / "flows").mkdir(parents=True)
    (other / "flows" / "a11-standard.yaml").write_text("mine\n")
    refused = init(str(other), cwd=tmp_path)
    assert refused.returncode == 1 and "a11-standard.yaml" in refused.stderr
    assert (other / "flows" / "a11-standard.yaml").read_text() == "mine\n"
    assert not (other / "config").exists() and len(list((other / "flows").iterdir())) == 1


def test_init_defaults_to_the_current_directory_and_the_result_validates(tmp_path):
    assert init(cwd=tmp_path).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEY_ENGINE_")}
    env["SURVEY_ENGINE_INSTANCE_DIR"] = str(tmp_path / "instance")
    checked = subprocess.run([sys.executable, "-m", "engine.cli", "flows", "validate"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "3 flow(s) valid" in checked.stdout
