"""The project's own checks run with the suite: ruff (lint and format) and mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint():
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy():
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_says_what_it_is_for():
    missing = [
        str(path.relative_to(ROOT))
        for package in ("engine", "channels")
        for path in (ROOT / package).rglob("*.py")
        if "versions" not in path.parts and not path.read_text().lstrip().startswith('"""')
    ]
    assert missing == []


def test_engine_never_imports_a_channel():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "engine").rglob("*.py")
        if any(line.strip().startswith(("import channels", "from channels")) for line in path.read_text().splitlines())
    ]
    assert offenders == []
