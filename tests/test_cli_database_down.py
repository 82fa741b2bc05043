"""Commands a person runs against a database that cannot be reached end with one line, not a traceback.

``serve``, ``web`` and ``worker`` refuse to start so (tests/test_database_down.py); every other command that
reads or writes the store did print SQLAlchemy's traceback of some 130 lines, the first command a person runs,
``db upgrade``, among them. The URL in the line hides its password.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.test_database_down import environment, free_port

COMMANDS = [
    ["db", "upgrade"],
    ["api-key", "list"],
    ["api-key", "create", "--name", "down", "--service", "passport-renewal"],
    ["kiosk", "list"],
    ["user", "list"],
    ["report", "a11", "--fiscal-year", "2027", "--quarter", "1"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_command_meeting_an_unreachable_database_says_so_in_one_line(command, tmp_path):
    url = f"postgresql+psycopg://root:do-not-print-me@127.0.0.1:{free_port()}/nothing"
    env = {**os.environ, **environment(url, tmp_path)}
    run = subprocess.run([sys.executable, "-m", "engine.cli", *command], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "do-not-print-me" not in run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("Error: the database at postgresql+psycopg://root:***@127.0.0.1:"), lines[0]
    assert "cannot be reached" in lines[0]
