"""Dispatch benchmark: K worker processes drain N due invitations on PostgreSQL; nothing may be handed twice.

    .venv/bin/python bench/dispatch.py [--invitations 20000] [--workers 3] [--batch 500] [--keep-output]

1. A fresh PostgreSQL database is created and migrated; N transactions of the bench service (send_delay PT0S,
   sample_rate 1.0, no cooldown, console channel, a contact on every one) go through the real intake
   (``Intake.submit``, batches of 1,000), so N invitations are due at once. Seeding is not timed.
2. K processes (``multiprocessing``, spawn) each build their own runtime (``build_runtime`` + ``sync_catalog``),
   redirect their stdout (the console channel's output) to a file of their own, wait at a common start signal,
   then run ``Dispatcher(rt, batch=--batch).drain()`` until nothing is due.
3. Timed: from the start signal to the last worker's end. Reported: invitations/s overall, per worker counts and
   peak RSS (``VmHWM``).
4. Checked: every invitation ends ``delivered`` and their number is N; every invitation has ``attempts`` 1 and
   exactly one ``sending`` delivery event; the console outputs of all workers together name every invitation
   exactly once (an invitation handed twice would be printed twice).

The console channel is the only channel built so far; it stands in for a provider "answering instantly"
(it formats the message and writes it to a file). Email/SMS figures of SPEC §7 need those channels.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common

INVITATION_LINE = re.compile(r"^\[console\] to .*, invitation ([0-9a-f-]{36})\):$", re.M)


def worker(url: str, index: int, out_path: str, batch: int, ready: Any, start: Any, results: Any) -> None:
    # The console channel writes to sys.stdout: send fd 1 and sys.stdout to this worker's own file.
    handle = open(out_path, "w", buffering=1024 * 1024)  # noqa: SIM115
    os.dup2(handle.fileno(), 1)
    sys.stdout = handle
    try:
        from engine.delivery.dispatch import Dispatcher

        rt = common.runtime_for(url)
        dispatcher = Dispatcher(rt, worker=f"bench-{index}-{os.getpid()}", batch=batch)
        ready.release()
        start.wait()
        t0 = time.time()
        stats = dispatcher.drain()
        t1 = time.time()
        sys.stdout.flush()
        rt.engine.dispose()
        results.put(
            {
                "index": index,
                "pid": os.getpid(),
                "start": t0,
                "end": t1,
                "claimed": stats.claimed,
                "handed": stats.handed,
                "outcomes": dict(stats.outcomes),
                "VmHWM_mb": round((common.vm_kb(os.getpid()) or 0) / 1024, 1),
            }
        )
    except BaseException as exc:
        results.put({"index": index, "error": repr(exc)})
        ready.release()
        raise
    finally:
        handle.flush()


def seed(url: str, n: int) -> dict[str, int]:
    from engine.intake.submit import Intake
    from engine.store.db import unit_of_work

    rt = common.runtime_for(url)
    source = common.Items(seed=23)
    decisions: Counter[str] = Counter()
    intake = Intake(rt)
    done = 0
    while done < n:
        size = min(1000, n - done)
        with unit_of_work(rt.sessions) as session:
            for r in intake.submit(session, [source.fresh() for _ in range(size)]):
                decisions[r["decision"]] += 1
        done += size
    rt.engine.dispose()
    return dict(decisions)


def verify(url: str, n: int, outputs: list[Path]) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        states = dict(conn.execute(text("SELECT state, count(*) FROM invitations GROUP BY state")).tuples().all())
        attempts = dict(
            conn.execute(text("SELECT attempts, count(*) FROM invitations GROUP BY attempts")).tuples().all()
        )
        sending_twice = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT invitation_id FROM delivery_events WHERE event = 'sending' "
                "GROUP BY invitation_id HAVING count(*) > 1) AS t"
            )
        ).scalar_one()
        events = dict(conn.execute(text("SELECT event, count(*) FROM delivery_events GROUP BY event")).tuples().all())
        ids = {str(i) for i in conn.execute(text("SELECT id FROM invitations")).scalars()}
    engine.dispose()
    printed: Counter[str] = Counter()
    for path in outputs:
        printed.update(INVITATION_LINE.findall(path.read_text()))
    handed_twice = sum(1 for c in printed.values() if c > 1)
    checks = {
        "all_delivered": states.get("delivered", 0) == n and sum(states.values()) == n,
        "attempts_all_1": attempts == {1: n},
        "no_double_sending_event": sending_twice == 0,
        "printed_each_once": handed_twice == 0 and set(printed) == ids and len(printed) == n,
    }
    return {
        "states": {str(k): v for k, v in states.items()},
        "attempts": {str(k): v for k, v in attempts.items()},
        "events": events,
        "console_lines": sum(printed.values()),
        "invitations_printed_more_than_once": handed_twice,
        "checks": checks,
        "ok": all(checks.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invitations", "-n", type=int, default=20000)
    parser.add_argument("--workers", "-k", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500, help="Dispatcher batch (claim size), default 500")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--keep-output", action="store_true", help="keep the workers' console output files")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench_dispatch_"))
    ctx = mp.get_context("spawn")
    with common.database("postgresql", "dispatch", keep=args.keep) as url:
        pg = common.pg_version(url)
        t = time.perf_counter()
        decisions = seed(url, args.invitations)
        seed_s = time.perf_counter() - t
        print(f"seeded {args.invitations} transactions in {seed_s:.1f} s: {decisions}", file=sys.stderr, flush=True)
        if decisions.get("scheduled") != args.invitations:
            raise SystemExit(f"expected every transaction scheduled, got {decisions}")

        outputs = [workdir / f"worker-{i}.out" for i in range(args.workers)]
        each = [(url, i, str(outputs[i]), args.batch) for i in range(args.workers)]
        reports, signal_at = common.released_together(ctx, worker, each)
        end = max(r["end"] for r in reports)
        elapsed = end - signal_at
        check = verify(url, args.invitations, outputs)

    reports.sort(key=lambda r: r["index"])
    result = {
        "params": vars(args),
        "postgresql": pg,
        "seed_s": round(seed_s, 2),
        "elapsed_s": round(elapsed, 3),
        "invitations_per_s": round(args.invitations / elapsed, 1),
        "workers": reports,
        "verify": check,
    }
    if args.keep_output:
        result["outputs"] = [str(p) for p in outputs]
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    path = common.write_result("dispatch", result)

    print()
    print(
        f"{args.invitations} due invitations, {args.workers} workers (batch {args.batch}), console channel, "
        f"PostgreSQL {pg}"
    )
    print(f"drained in {elapsed:.2f} s: {result['invitations_per_s']} invitations/s overall")
    for r in reports:
        busy = r["end"] - r["start"]
        print(
            f"worker {r['index']} (pid {r['pid']}): handed {r['handed']} in {busy:.2f} s, peak RSS {r['VmHWM_mb']} MB, "
            f"outcomes {r['outcomes']}"
        )
    print(f"checks: {check['checks']} -> {'OK' if check['ok'] else 'FAILED'}")
    print(f"states {check['states']}, attempts {check['attempts']}")
    print(f"\nresult: {path.relative_to(common.ROOT)}")
    if not check["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
