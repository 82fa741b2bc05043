"""Schemathesis (``--checks all``) over ``/api/v1/openapi.json``, served by the real app on a live port.

Any server error, any answer the document does not describe (status, headers, content type, body), a 405 without
``Allow``, any bad input the code accepts though the document refuses it, or a good one refused with anything but
the statuses of ``tests/schemathesis.toml``, fails the test. The run is deterministic
(``--generation-deterministic``) and bounded (``MAX_EXAMPLES`` per operation), with an API key of every scope so
the authenticated paths are explored. It runs on SQLite and on PostgreSQL.

The kiosk's sync API runs with an enrolled device's credential (a cookie; requests without it are part of the
exploration too). Left out: the dashboard's pages and the kiosk's HTML pages (people's pages, not the API;
tested in the dashboard, kiosk and browser tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.api.auth import create_api_key
from engine.runtime import Runtime
from engine.store.db import unit_of_work
from tests.kiosk_support import COOKIE as KIOSK_COOKIE
from tests.kiosk_support import enrolled

CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
MAX_EXAMPLES = os.environ.get("SURVEY_ENGINE_SCHEMATHESIS_EXAMPLES", "20")
EXCLUDED = r"^/(dashboard|kiosk)(/|$)"


def test_the_api_keeps_its_contract(live_server: str, runtime: Runtime, tmp_path: Path) -> None:
    with unit_of_work(runtime.sessions) as session:
        key = create_api_key(session, "schemathesis", list(runtime.catalog.services), ["intake", "reports", "admin"])
    _, device = enrolled(runtime)
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG), "--no-color", "run",
        f"{live_server}/api/v1/openapi.json", "--checks", "all", "--generation-deterministic", "--max-examples",
        MAX_EXAMPLES, "--header", f"Authorization: Bearer {key}", "--header", f"Cookie: {KIOSK_COOKIE}={device}",
        "--exclude-path-regex", EXCLUDED,
        "--workers", "1", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    report = done.stdout[-20000:] + done.stderr[-5000:]
    assert done.returncode == 0, report
    assert "Tested:" in done.stdout and " 0 generated" not in done.stdout, report
    assert "/api/v1/kiosk/responses" in done.stdout, report  # the sync API was explored too
