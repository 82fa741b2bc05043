"""``survey-engine serve`` and ``web`` as a person runs them: a production WSGI server (no development warning), the
scheduled jobs in the same process on SQLite, one JSON access line per request with tokens masked."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.common.logs import MASK

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sqlite_env(tmp_path):
    return {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"), "SURVEY_ENGINE_DATABASE_URL": "",
            "SURVEY_ENGINE_SECRET_KEY": "", "SURVEY_ENGINE_ENCRYPTION_KEY": "", "SURVEY_ENGINE_LOG_LEVEL": "INFO"}  # fmt: skip


def wait_ready(port: int, proc: subprocess.Popen[str]) -> urllib.request.http.client.HTTPResponse:  # type: ignore[name-defined]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited before answering"
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server never answered /readyz")


def call(port: int, path: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.slow
def test_serve_runs_waitress_with_the_jobs_in_process_and_logs_json_access_lines(sqlite_env):
    env = {**os.environ, **sqlite_env}
    env.pop("SURVEY_ENGINE_PUBLIC_URL", None)  # the default: links follow the port serve listens on
    key = subprocess.run([sys.executable, "-m", "engine.cli", "api-key", "create", "--name", "t", "--service",
                          "passport-renewal"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=False)  # fmt: skip
    if key.returncode != 0:  # no database yet: serve creates it, so create the key after a first start
        subprocess.run([sys.executable, "-m", "engine.cli", "db", "upgrade"], env=env, cwd=ROOT, check=True,
                       capture_output=True, timeout=120)  # fmt: skip
        key = subprocess.run([sys.executable, "-m", "engine.cli", "api-key", "create", "--name", "t", "--service",
                              "passport-renewal"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
                             check=True)  # fmt: skip
    api_key = key.stdout.strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        with wait_ready(port, proc) as ready:
            assert ready.status == 200
            assert "werkzeug" not in (ready.headers.get("Server") or "").lower()
        # Due a minute ago: the dispatch job of this very process sends it (console channel) within seconds.
        completed = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
        status, answer = call(port, "/api/v1/transactions", {"id": "SERVE-1", "service": "passport-renewal",
                              "completed_at": completed, "office": "NYC-01", "contact": {"email": "pat@example.com"}},
                              api_key)  # fmt: skip
        assert status == 200 and answer["decision"] == "scheduled", answer
        deadline = time.monotonic() + 30
        state = None
        while time.monotonic() < deadline:
            status, detail = call(port, "/api/v1/transactions/passport-renewal/SERVE-1", key=api_key)
            state = detail["invitation"]["state"]
            if state in ("sent", "delivered"):
                break
            time.sleep(0.5)
        assert state in ("sent", "delivered"), state
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/s/{TOKEN}", timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    lines = out.splitlines()
    assert f"survey-engine serving on http://127.0.0.1:{port}" in out
    assert f"dashboard: http://127.0.0.1:{port}/dashboard" in out
    # Its advice for a demo survey, pasted in another terminal, makes links to this port, not the default 8000.
    assert f"run `SURVEY_ENGINE_PUBLIC_URL=http://127.0.0.1:{port} survey-engine demo` in another terminal" in out
    # The console channel printed the invitation with its survey link on serve's own port, not the default 8000.
    assert re.search(rf"http://127\.0\.0\.1:{port}/s/[A-Za-z0-9_-]{{22}}", out), out
    assert "127.0.0.1:8000" not in out
    assert "development server" not in out.lower() and "WARNING: This is" not in out
    access = [json.loads(line) for line in lines if line.startswith("{") and '"survey_engine.access"' in line]
    paths = [(a["method"], a["path"], a["status"]) for a in access]
    assert ("POST", "/api/v1/transactions", 200) in paths
    assert any(p == f"/s/{MASK}" for _, p, _ in paths), paths
    assert TOKEN not in out and api_key not in out and "pat@example.com" not in out
    assert all(isinstance(a["duration_ms"], float | int) for a in access)
    # SIGTERM stopped the jobs in order: the dispatch batch in hand was finished before the process ended.
    last = json.loads([line for line in lines if line.startswith("{")][-1])
    assert (last["logger"], last["event"]) == ("survey_engine.scheduler", "stopped"), last


@pytest.mark.slow
def test_web_logs_the_same_json_access_lines(sqlite_env, tmp_path):
    # Its own HOME and no XDG_RUNTIME_DIR: where gunicorn would put its control socket, which `web` turns off (one
    # fixed path per user, taken over by a second `web` on the host and removed when that one stopped).
    env = {**os.environ, **sqlite_env, "HOME": str(tmp_path / "home")}
    env.pop("XDG_RUNTIME_DIR", None)
    subprocess.run([sys.executable, "-m", "engine.cli", "db", "upgrade"], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "web", "--bind", f"127.0.0.1:{port}", "--workers",
                             "1"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_ready(port, proc).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    access = [json.loads(line) for line in out.splitlines() if '"survey_engine.access"' in line]
    assert any(a["path"] == "/readyz" and a["status"] == 200 for a in access), out
    assert not (tmp_path / "home" / ".gunicorn").exists(), "web opened gunicorn's control socket"
