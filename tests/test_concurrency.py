"""The same transaction ids arriving at the same moment in two processes: one is stored, both get its decision.

Also pins that batch intake is set-based: a few statements per batch, not per item.
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select

from engine.channels import load_channels
from engine.intake.submit import Intake
from engine.runtime import build_runtime
from engine.settings import Settings
from engine.store.db import unit_of_work
from engine.store.models import Invitation, Transaction
from tests.stand_ins import ScriptedChannel


def _submit(settings: Settings, items: list[dict[str, Any]], start_at: float, queue: Any) -> None:
    channels = load_channels(settings)
    channels.register(ScriptedChannel())  # the test services name it
    rt = build_runtime(settings, channels=channels)
    rt.sync_catalog()
    with rt.engine.connect():
        pass  # connect before the starting gun, so both processes race on the INSERT itself
    time.sleep(max(0.0, start_at - time.time()))
    with unit_of_work(rt.sessions) as session:
        queue.put(Intake(rt).submit(session, items))
    rt.engine.dispose()


def _items(prefix: str, n: int) -> list[dict[str, Any]]:
    completed = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    return [
        {"id": f"{prefix}-{i}", "service": "passport-renewal", "completed_at": completed,
         "contact": {"email": f"{prefix.lower()}{i}@example.com"}}
        for i in range(n)
    ]  # fmt: skip


def test_same_ids_at_the_same_moment_in_two_processes(settings, runtime):
    items = _items("RACE", 200)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 4
    procs = [ctx.Process(target=_submit, args=(settings, items, start_at, queue)) for _ in range(2)]
    for proc in procs:
        proc.start()
    answers = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    first, second = answers
    for a, b in zip(first, second, strict=True):
        assert a["id"] == b["id"]
        assert {a["duplicate"], b["duplicate"]} == {True, False}, (a, b)
        assert {k: v for k, v in a.items() if k != "duplicate"} == {k: v for k, v in b.items() if k != "duplicate"}
    with runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(Transaction)).scalar_one() == len(items)
        assert session.execute(select(func.count()).select_from(Invitation)).scalar_one() == len(items)


def test_a_batch_takes_a_few_statements_not_one_per_item(runtime):
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split()[0].upper())

    items = _items("SET", 1000)
    for n, item in enumerate(items):
        item["service_level"] = {"wait_seconds": n}
        if n % 10 == 0:
            item["id"] = f"SET-{n + 1}"  # in-batch replays
    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        with unit_of_work(runtime.sessions) as session:
            results = Intake(runtime).submit(session, items)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", count)
    assert sum(r["duplicate"] for r in results) == 100
    # Reads: replays, suppressions, recent invitations, the day count. Writes: one multi-row INSERT per table
    # (SQLAlchemy may split a large one into a few pages). Never one per item.
    assert len(statements) <= 20, statements
