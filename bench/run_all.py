"""Every SPEC §7 benchmark in turn, then one table: measured figure, target, verdict, with the machine and its load.

    bench/run [--quick] [--only intake,single_api,webhook_sms,webhook_ivr,channel_dispatch,reports]
    make bench

Each benchmark is its own script in this folder, run as a child process with the options below; its result is
read back from ``bench/results/<name>-latest.json`` (the figures in the table are those files' figures, nothing
else). ``--quick`` shortens every run (fewer batches, 15 s of load instead of 60 / 30, 200,000 answers instead of
10 million for the report): good to try the scripts, not to quote; the verdict column then says ``(quick)``.
A benchmark that fails is shown as ``failed`` with its exit code, and the others still run.

Each benchmark starts on a settled machine: before it, PostgreSQL is asked for a ``CHECKPOINT`` (so the rows the one
before wrote are not flushed in the middle of this one's run), and the run waits until the 1-minute load average is
at most ``--settle-load`` (default 1.0), for at most ``--settle-max`` seconds (default 120); the wait is printed.
``--no-settle`` starts each at once, as before 2026-12-05 (stop 26).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common

PY = sys.executable


def steps(quick: bool) -> dict[str, tuple[str, list[str]]]:
    """Name -> (result name, command line) of every benchmark."""
    b = str(common.BENCH)
    return {
        "intake": ("intake", [PY, f"{b}/intake.py", "--http-only", "--also-dispatching", "--batches", "5" if quick else "20"]),
        "single_api": ("single_api", [PY, f"{b}/single_api.py", "--duration", "15" if quick else "60"]),
        "webhook_sms": ("webhook_turn", [PY, f"{b}/webhook_turn.py", "--turn", "sms", "--duration", "15" if quick else "30"]),
        "webhook_ivr": ("webhook_turn", [PY, f"{b}/webhook_turn.py", "--turn", "ivr", "--duration", "15" if quick else "30"]),
        "channel_dispatch": ("channel_dispatch", [PY, f"{b}/channel_dispatch.py"] + (["--emails", "4000", "--sms", "800", "--paced", "300", "--paced-rate", "50"] if quick else ["--paced", "1000", "--paced-rate", "100"])),
        "reports": ("reports", [PY, f"{b}/reports.py", "--answers", "200000" if quick else "10000000"]),
    }  # fmt: skip


def verdict(ok: bool | None, quick: bool) -> str:
    word = "n/a" if ok is None else "met" if ok else "NOT met"
    return f"{word} (quick)" if quick and ok is not None else word


def rows_of(name: str, r: dict[str, Any]) -> list[tuple[str, str, str, bool | None, float | None]]:
    """(what, measured, target, met?, peak RSS MB) rows of one result."""
    out: list[tuple[str, str, str, bool | None, float | None]] = []
    if name == "intake":
        for run in r["runs"]:
            h = run["http"]
            where = "serve / SQLite" if run["backend"] == "sqlite" else "web / PostgreSQL"
            out.append((f"intake over HTTP, {where}", f"{h['tx_per_s']:,.0f} tx/s", ">= 5,000 tx/s",
                        h["tx_per_s"] >= 5000, None))  # fmt: skip
            out.append((f"  ratio to bare executemany, {run['backend']}", f"{h['ratio']:.2f}", ">= 0.5",
                        h["ratio"] >= 0.5, None))  # fmt: skip
            d = run.get("http_dispatching")
            if d:  # the same batches, their invitations due at once: serve dispatches them in the same process
                out.append(("  the same, invitations due at once (serve dispatching them)", f"{d['tx_per_s']:,.0f} tx/s"
                            f", ratio {d['ratio']:.2f}", ">= 5,000 tx/s, >= 0.5",
                            d["tx_per_s"] >= 5000 and d["ratio"] >= 0.5, None))  # fmt: skip
    elif name == "single_api":
        load = r["load"]
        rss = max((m["VmHWM_mb"] for m in r["workers_memory"].values()), default=None)
        out.append(("single API, gunicorn 2 workers, PostgreSQL", f"{load['achieved_rate']} req/s answered",
                    f">= {load['offered_rate']:.0f} req/s", load["achieved_rate"] >= 0.99 * load["offered_rate"], rss))  # fmt: skip
        p99 = load["latency_ms"]["p99"]
        out.append(("  p99 latency (open loop)", f"{p99} ms", "<= 50 ms", p99 is not None and p99 <= 50, None))
    elif name == "webhook_turn":
        load = r["load"]
        turn = r.get("turn", "sms").upper()
        rss = max((m["VmHWM_mb"] for m in r["workers_memory"].values()), default=None)
        p99 = load["latency_ms"]["p99"]
        out.append((f"webhook turn {turn} at {load['offered_rate']:.0f}/s: p99", f"{p99} ms "
                    f"({load['errors']} errors)", "<= 50 ms", p99 is not None and p99 <= 50 and not load["errors"], rss))  # fmt: skip
    elif name == "channel_dispatch":
        for phase in r["phases"]:
            email = "email" in phase["service"]
            rss = max((w.get("VmHWM_mb") or 0 for w in phase["workers"]), default=None)
            if "rate" in phase:  # the paced phase: the busiest second at the stand-in against the send rate
                paced = phase["stand_in"]["sms_pacing"]
                out.append((f"paced SMS at {phase['rate']:g}/s, {len(phase['workers'])} workers: busiest second",
                            f"{paced.get('busiest_1s_window')} (mean {paced.get('mean_per_s')}/s)",
                            f"<= {phase['rate']:g} (+15 %)", phase["verify"]["ok"], rss or None))  # fmt: skip
                continue
            target = 2000 if email else 200
            out.append((f"dispatch {'email' if email else 'SMS'}, {len(phase['workers'])} workers",
                        f"{phase['invitations_per_s']:,.0f}/s", f">= {target:,}/s",
                        phase["invitations_per_s"] >= target and phase["verify"]["ok"], rss or None))  # fmt: skip
    elif name == "reports":
        answers = r.get("counts", {}).get("answers")
        full = (answers or 0) >= 10_000_000
        warm = r["warm_seconds"]["median"]
        out.append((f"report §6.1 quarter, {answers:,} answers (cold {r['cold_seconds']} s)", f"{warm} s warm",
                    "<= 2 s at 10 M answers", (warm <= 2.0) if full else None, None))  # fmt: skip
    return out


def machine_line() -> str:
    m = common.machine()
    load = os.getloadavg()
    return (
        f"machine: {m['nproc']} cores, {m['cpu']}, {m['mem_total_gb']} GB; load average now {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}; this run's niceness {m['niceness']}; Python speed {common.python_speed_ms()} ms "
        "(common.python_speed_ms: a fixed loop, best of 5; lower is faster)"
    )


def settle(max_load: float, max_seconds: float) -> str:
    """Checkpoint PostgreSQL, then wait for the load average to fall to ``max_load`` (at most ``max_seconds``)."""
    from sqlalchemy import create_engine, text

    started = time.monotonic()
    try:
        admin = create_engine(common.PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CHECKPOINT"))
        admin.dispose()
        checkpoint = "checkpoint done"
    except Exception as exc:  # a benchmark without PostgreSQL still runs; the line says why nothing was flushed
        checkpoint = f"no checkpoint ({type(exc).__name__})"
    while os.getloadavg()[0] > max_load and time.monotonic() - started < max_seconds:
        time.sleep(2)
    return f"{checkpoint}; waited {time.monotonic() - started:.0f} s for load {os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs: to try, not to quote")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(steps(False)))
    parser.add_argument("--settle-load", type=float, default=1.0, help="start each when the load average is this")
    parser.add_argument("--settle-max", type=float, default=120.0, help="but wait at most this many seconds")
    parser.add_argument("--no-settle", action="store_true", help="start each benchmark at once")
    args = parser.parse_args()
    chosen = steps(args.quick)
    names = args.only.split(",") if args.only else list(chosen)
    table: list[tuple[str, str, str, str, str]] = []
    rss_peak: float = 0.0
    print(machine_line(), flush=True)
    for name in names:
        result_name, cmd = chosen[name]
        if not args.no_settle:
            print(f"--- settling before {name}: {settle(args.settle_load, args.settle_max)}", flush=True)
        load = os.getloadavg()[0]
        print(f"--- {name} (load {load:.2f}): {' '.join(Path(c).name if c == PY else c for c in cmd[1:])}", flush=True)
        started = time.time()
        done = subprocess.run(cmd, cwd=common.ROOT)
        latest = common.RESULTS / f"{result_name}-latest.json"
        fresh = latest.exists() and latest.stat().st_mtime >= started
        if done.returncode != 0 or not fresh:
            table.append((name, f"failed (exit {done.returncode})", "", "NOT measured", f"{load:.2f}"))
            continue
        r = json.loads(latest.read_text())
        r_load = r["machine"]["loadavg_at_start"][0]
        for what, measured, target, ok, rss in rows_of(result_name, r):
            table.append((what, measured, target, verdict(ok, args.quick), f"{r_load:.2f}"))
            if rss:
                rss_peak = max(rss_peak, rss)
    if rss_peak:
        table.append(("peak RSS of a web or worker process", f"{rss_peak:.1f} MB", "< 150 MB",
                      verdict(rss_peak < 150, args.quick), ""))  # fmt: skip
    widths = [max(len(row[i]) for row in [*table, ("benchmark", "measured", "target", "verdict", "load")])
              for i in range(5)]  # fmt: skip
    print()
    print(machine_line())
    head = ("benchmark", "measured", "target", "verdict", "load")
    for row in [head, tuple("-" * w for w in widths), *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print("\nload = 1-minute load average when that benchmark started; results in bench/results/*-latest.json")


if __name__ == "__main__":
    main()
