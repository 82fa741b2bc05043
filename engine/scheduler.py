"""Scheduled work: APScheduler 3 interval jobs that sweep due rows (in ``serve`` and in every ``worker``).

Each job claims its rows or makes idempotent updates, so it is safe to run in many processes at once. The job
store is in memory on purpose: APScheduler 3's shared job stores would run every job once per process anyway.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from engine.common.logs import log
from engine.delivery.dispatch import Dispatcher, expire_overdue, reap_lost_sends
from engine.delivery.reminders import send_reminders
from engine.delivery.retention import erase_unneeded_contacts, forget_form_addresses
from engine.delivery.settlement import settle_unknown
from engine.runtime import Runtime
from engine.store.db import UNREACHABLE, unreachable_line

logger = logging.getLogger("survey_engine.scheduler")

DISPATCH_EVERY = 1.0
SWEEP_EVERY = 30.0
RETENTION_EVERY = 300.0


def _safely(job: Callable[[], object], name: str, database_url: str) -> Callable[[], None]:
    """``job`` run so that a failure is logged and the next run comes as planned.

    A database that cannot be reached (``UNREACHABLE``, as the web app's 503s) is logged once, in one line (the
    database with its password hidden and the driver's reason, never a statement or its values), when the job
    first finds it gone; the runs that fail the same way after it log nothing (the dispatch job runs every
    second), and the first run that succeeds again says so, with how many runs failed. Any other error is logged
    with its traceback at every run."""
    failed_runs = 0

    def run() -> None:
        nonlocal failed_runs
        try:
            job()
        except UNREACHABLE as exc:
            if not failed_runs:
                log(logger, "database unreachable", logging.ERROR, job=name, error=type(exc).__name__,
                    reason=unreachable_line(exc, database_url))  # fmt: skip
            failed_runs += 1
            return
        except Exception:
            logger.exception("scheduled job failed", extra={"job": name})
            return
        if failed_runs:
            log(logger, "database reachable again", logging.INFO, job=name, failed_runs=failed_runs)
            failed_runs = 0

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
        scheduler.add_job(_safely(job, name, rt.settings.database_url), "interval", seconds=seconds, id=name,
                          coalesce=True, max_instances=1, misfire_grace_time=int(seconds * 5) or 1)  # fmt: skip
    return dispatcher


class Jobs:
    """The scheduled jobs of one process, and their orderly stop."""

    def __init__(self, scheduler: BaseScheduler, dispatcher: Dispatcher) -> None:
        self.scheduler = scheduler
        self.dispatcher = dispatcher

    def stop(self) -> None:
        """Start no job and claim no invitation any more; wait for the jobs that run. The batch a dispatch job holds
        is sent and its outcomes recorded, so a stopped process leaves no invitation ``sending`` for the reaper
        to mark ``unknown`` (which a deployment's SIGTERM would otherwise do at every restart)."""
        self.dispatcher.stopping.set()
        if self.scheduler.running:
            log(logger, "stopping: waiting for the jobs that run")
            self.scheduler.shutdown(wait=True)
            log(logger, "stopped")


def start_background(rt: Runtime) -> Jobs:
    scheduler = BackgroundScheduler(daemon=True)
    dispatcher = add_jobs(scheduler, rt)
    scheduler.start()
    return Jobs(scheduler, dispatcher)


def run_blocking(rt: Runtime) -> None:
    """Run the jobs in this thread until SIGTERM or SIGINT, then stop them in order (:meth:`Jobs.stop`); a second
    signal ends the process at once."""
    scheduler = BlockingScheduler()
    jobs = Jobs(scheduler, add_jobs(scheduler, rt))

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        jobs.dispatcher.stopping.set()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        scheduler.start()
    except SystemExit:
        pass
    finally:
        jobs.stop()
