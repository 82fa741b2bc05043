"""Scheduled work: APScheduler 3 interval jobs that sweep due rows (in ``serve`` and in every ``worker``).

Each job claims its rows or makes idempotent updates, so it is safe to run in many processes at once. The job
store is in memory on purpose: APScheduler 3's shared job stores would run every job once per process anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from engine.delivery.dispatch import Dispatcher, expire_overdue, reap_lost_sends
from engine.delivery.reminders import send_reminders
from engine.delivery.retention import erase_unneeded_contacts, forget_form_addresses
from engine.delivery.settlement import settle_unknown
from engine.runtime import Runtime

logger = logging.getLogger("survey_engine.scheduler")

DISPATCH_EVERY = 1.0
SWEEP_EVERY = 30.0
RETENTION_EVERY = 300.0


def _safely(job: Callable[[], object], name: str) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:
            logger.exception("scheduled job failed", extra={"job": name})

    run.__name__ = name
    return run


def add_jobs(scheduler: BaseScheduler, rt: Runtime, dispatcher: Dispatcher | None = None) -> Dispatcher:
    dispatcher = dispatcher or Dispatcher(rt)
    jobs: list[tuple[str, Callable[[], object], float]] = [
        ("dispatch", dispatcher.drain, DISPATCH_EVERY),
        ("expire", lambda: expire_overdue(rt), SWEEP_EVERY),
        ("reap", lambda: reap_lost_sends(rt), SWEEP_EVERY),
        ("retention", lambda: erase_unneeded_contacts(rt), RETENTION_EVERY),
        ("forget-addresses", lambda: forget_form_addresses(rt), RETENTION_EVERY),
        ("reminders", lambda: send_reminders(rt), SWEEP_EVERY),
        ("settle", lambda: settle_unknown(rt), SWEEP_EVERY),
    ]
    for name, job, seconds in jobs:
        scheduler.add_job(_safely(job, name), "interval", seconds=seconds, id=name, coalesce=True, max_instances=1,
                          misfire_grace_time=int(seconds * 5) or 1)  # fmt: skip
    return dispatcher


def start_background(rt: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(daemon=True)
    add_jobs(scheduler, rt)
    scheduler.start()
    return scheduler


def run_blocking(rt: Runtime) -> None:
    scheduler = BlockingScheduler()
    add_jobs(scheduler, rt)
    scheduler.start()
