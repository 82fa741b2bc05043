"""Several ``survey-engine worker`` processes on PostgreSQL over thousands of due invitations, one killed mid-run.

Proves SPEC §2 rule 10 end to end: no invitation is handed to its channel twice, none is lost; the killed
worker's in-flight sends end ``unknown`` (never resent blind), everything else is sent exactly once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.delivery.dispatch import Dispatcher, reap_lost_sends
from engine.intake.submit import Intake
from engine.runtime import build_runtime
from engine.settings import load_settings
from engine.store.db import unit_of_work, utcnow
from engine.store.models import Invitation, InvitationState
from tests.conftest import ENCRYPTION, SECRET, prepared_database

N = 4000
WORKERS = 3
LEASE_SECONDS = 3
HANDED = re.compile(r"invitation ([0-9a-f-]{36})\)")

SERVICES = """
services:
  bulk:
    name: Bulk Service
    agency: Test Agency
    service_type: administrative
    flow: a11-standard
    channels: [console]
    send_delay: PT0S
    contact_cooldown_days: 0
    timezone: UTC
"""


@pytest.fixture
def pg_url(pg_database):
    """Workers claim rows with FOR UPDATE SKIP LOCKED: PostgreSQL only (``worker`` refuses SQLite)."""
    return prepared_database(pg_database)


def worker_environment(pg_url: str, tmp_path: Path, flows_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``survey-engine worker`` on ``pg_url`` with the ``bulk`` service (console only)."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "services.yaml").write_text(SERVICES)
    (config / "offices.yaml").write_text("offices:\n  HQ: {name: Headquarters}\n")
    return {
        **os.environ,
        "SURVEY_ENGINE_DATABASE_URL": pg_url,
        "SURVEY_ENGINE_CONFIG_DIR": str(config),
        "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
        "SURVEY_ENGINE_SECRET_KEY": SECRET,
        "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
        "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@pytest.mark.slow
def test_workers_hand_each_invitation_over_at_most_once_and_lose_none(pg_url, tmp_path, flows_dir):
    env = worker_environment(pg_url, tmp_path, flows_dir, SURVEY_ENGINE_DISPATCH_LEASE_SECONDS=str(LEASE_SECONDS))
    rt = build_runtime(load_settings(env))
    rt.sync_catalog()
    now = utcnow()
    items = [
        {"id": f"W-{n}", "service": "bulk", "completed_at": (now - timedelta(minutes=1)).isoformat(),
         "contact": {"email": f"w{n}@example.com"}}
        for n in range(N)
    ]  # fmt: skip
    for start in range(0, N, 1000):
        with unit_of_work(rt.sessions) as session:
            results = Intake(rt).submit(session, items[start : start + 1000])
        assert {r["decision"] for r in results} == {"scheduled"}

    outputs = [tmp_path / f"worker-{i}.out" for i in range(WORKERS)]
    procs = []
    for path in outputs:
        with path.open("w") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "engine.cli", "worker"], env=env, stdout=out,
                                          stderr=subprocess.DEVNULL, cwd=Path(__file__).parent.parent))  # fmt: skip
    try:
        victim = procs[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(HANDED.findall(outputs[0].read_text())) < 20:
            time.sleep(0.02)
        assert HANDED.findall(outputs[0].read_text()), "the first worker never sent anything"
        victim.send_signal(signal.SIGKILL)
        victim.wait()

        def open_rows() -> int:
            with rt.sessions() as session:
                return session.execute(
                    select(func.count()).where(
                        Invitation.state.in_([InvitationState.SCHEDULED, InvitationState.SENDING])
                    )
                ).scalar_one()

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            reap_lost_sends(rt)
            if open_rows() == 0:
                break
            time.sleep(0.5)
        assert open_rows() == 0, "invitations were left scheduled or sending"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)

    handed = Counter(m for path in outputs for m in HANDED.findall(path.read_text()))
    with rt.sessions() as session:
        states = dict(session.execute(select(Invitation.id, Invitation.state)).tuples().all())
        reasons = Counter(
            session.execute(select(Invitation.reason).where(Invitation.state == InvitationState.UNKNOWN)).scalars()
        )
    assert len(states) == N
    print(f"states: {dict(Counter(s.value for s in states.values()))}; handed: {len(handed)}")
    twice = [i for i, n in handed.items() if n > 1]
    assert twice == [], f"{len(twice)} invitations were handed to the channel more than once"
    by_state = Counter(states.values())
    assert set(by_state) <= {InvitationState.DELIVERED, InvitationState.UNKNOWN}, by_state
    delivered = {str(i) for i, s in states.items() if s is InvitationState.DELIVERED}
    assert delivered <= set(handed), "an invitation was recorded delivered without being handed over"
    assert set(handed) <= {str(i) for i in states}
    # Only the killed worker's in-flight sends are unknown, and only because it died.
    assert set(reasons) <= {"worker_lost_during_send"}
    assert by_state[InvitationState.UNKNOWN] <= Dispatcher(rt).batch  # at most one claimed batch was in flight
    rt.engine.dispose()


@pytest.mark.slow
def test_a_worker_stopped_by_sigterm_finishes_its_batch_and_leaves_nothing_sending(pg_url, tmp_path, flows_dir):
    """A deployment stops workers with SIGTERM at every restart: the batch in hand is sent and recorded, no
    further batch is claimed, and the worker exits 0. Killed at once instead, it would leave its batch
    ``sending``, for the reaper to mark ``unknown`` (never resent: those customers would not be asked)."""
    env = worker_environment(pg_url, tmp_path, flows_dir)
    rt = build_runtime(load_settings(env))
    rt.sync_catalog()
    now = utcnow()
    for start in range(0, N, 1000):
        items = [{"id": f"T-{n}", "service": "bulk", "completed_at": (now - timedelta(minutes=1)).isoformat(),
                  "contact": {"email": f"t{n}@example.com"}} for n in range(start, start + 1000)]  # fmt: skip
        with unit_of_work(rt.sessions) as session:
            assert {r["decision"] for r in Intake(rt).submit(session, items)} == {"scheduled"}
    out, err = tmp_path / "worker.out", tmp_path / "worker.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "worker"], env=env, stdout=stdout, stderr=stderr,
                                cwd=Path(__file__).parent.parent)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(HANDED.findall(out.read_text())) < 20:
            time.sleep(0.005)
        assert HANDED.findall(out.read_text()), "the worker never sent anything"
        proc.send_signal(signal.SIGTERM)  # mid-run: 4,000 due, a batch of at most 1,000 in hand
        assert proc.wait(timeout=60) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with rt.sessions() as session:
        states = Counter(session.execute(select(Invitation.state)).scalars())
        held = session.execute(
            select(func.count()).where(
                Invitation.state == InvitationState.SCHEDULED, Invitation.claimed_by.is_not(None)
            )
        ).scalar_one()
    handed = set(HANDED.findall(out.read_text()))
    assert states[InvitationState.SENDING] == 0 and states[InvitationState.UNKNOWN] == 0, states
    assert states[InvitationState.DELIVERED] == len(handed) > 0  # every message handed over is recorded
    assert 0 < states[InvitationState.SCHEDULED] == N - len(handed)  # the rest wait for the next worker
    assert held == 0  # and none of them is held by a claim
    events = [line for line in err.read_text().splitlines() if line.startswith("{")]
    assert '"event": "stopped"' in events[-1], events[-3:]
    rt.engine.dispose()
