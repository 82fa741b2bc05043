"""SPEC §7 intake benchmark: batches through ``Intake.submit`` against a bare Core executemany of the same rows.

    .venv/bin/python bench/intake.py [--backend sqlite|postgresql|both] [--batches 20] [--batch-size 1000]
                                     [--replays 0.10] [--warmup 2] [--service-levels 0] [--http] [--profile]

What is timed, per backend, each on a fresh migrated database:

* **intake** — every batch (``--batch-size`` items, ``--replays`` of them replays of ids sent before) goes through
  ``Intake(rt).submit(session, items)`` inside ``unit_of_work(rt.sessions)``: the code path of
  ``POST /api/v1/transactions`` minus HTTP and auth (validation, replay lookup, facts, decisions, encryption,
  the INSERTs, the commit). The items are built before the clock starts.
* **baseline** — afterwards, the rows the intake wrote are read back (transactions, contacts, invitations,
  service_levels), restricted to the columns ``Intake._write`` sets, and inserted into a second fresh database
  with ``conn.execute(insert(table), rows)`` (SQLAlchemy Core executemany), through the same ``make_engine``
  (same driver, same SQLite pragmas), one database transaction per intake batch — the rows of 1,000 submitted
  transactions a database transaction — in the same table order.
* **ratio** — baseline time / intake time for the same timed batches (= intake rate / baseline rate).
* ``--http`` also posts the same kind of batches through Flask's test client (``POST /api/v1/transactions`` with a
  real API key), on a third fresh database: adds JSON, auth and the response to the intake figure.

The first ``--warmup`` batches are run (and their rows inserted in the baseline) but not timed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import common
from sqlalchemy import insert, select

from engine.intake.submit import Intake
from engine.store.db import make_engine, unit_of_work
from engine.store.models import Contact, Invitation, ServiceLevel, Transaction

# The columns Intake._write sets, per table (engine/intake/submit.py: ``_transaction_row``, ``_child_rows``, ``decide_one``).
WRITTEN = {
    "transactions": (
        Transaction.__table__,
        [
            "id",
            "service_id",
            "external_id",
            "completed_at",
            "received_at",
            "touchpoint",
            "office_id",
            "language",
            "consent_sms",
            "consent_voice",
            "test",
            "decision",
            "reason",
            "channel",
            "source",
            "attributes",
            "survey_id",
        ],
    ),
    "contacts": (
        Contact.__table__,
        ["transaction_id", "phone_encrypted", "phone_hash", "email_encrypted", "email_hash", "timezone", "erased_at"],
    ),
    "service_levels": (ServiceLevel.__table__, ["transaction_id", "name", "value"]),
    "invitations": (
        Invitation.__table__,
        [
            "id",
            "transaction_id",
            "service_id",
            "channel",
            "state",
            "contact_hash",
            "language",
            "test",
            "created_at",
            "send_at",
            "send_by",
            "expires_at",
            "attempts",
            "reason",
            "updated_at",
            "survey_id",
        ],
    ),
}
# The order _write inserts in (on PostgreSQL all four in one statement, the transactions first).
ORDER = ["transactions", "contacts", "service_levels", "invitations"]


def summarize_times(times: list[float], items_per_batch: int) -> dict[str, Any]:
    total = sum(times)
    ordered = sorted(times)
    return {
        "batches": len(times),
        "seconds": round(total, 4),
        "batch_ms_p50": round(common.percentile(ordered, 50) * 1000, 2) if times else None,
        "batch_ms_max": round(ordered[-1] * 1000, 2) if times else None,
        "tx_per_s": round(len(times) * items_per_batch / total, 1) if total else None,
    }


def run_intake(rt: Any, batches: list[list[dict[str, Any]]], warmup: int, profile: bool) -> dict[str, Any]:
    intake = Intake(rt)
    times: list[float] = []
    decisions: Counter[str] = Counter()
    duplicates = 0
    profiler = cProfile.Profile() if profile else None
    for index, items in enumerate(batches):
        timed = index >= warmup
        if profiler and timed:
            profiler.enable()
        start = time.perf_counter()
        with unit_of_work(rt.sessions) as session:
            results = intake.submit(session, items)
        elapsed = time.perf_counter() - start
        if profiler and timed:
            profiler.disable()
        if timed:
            times.append(elapsed)
        for r in results:
            decisions[r["decision"]] += 1
            duplicates += bool(r["duplicate"])
    out = {"decisions": dict(decisions), "duplicates": duplicates, **summarize_times(times, len(batches[0]))}
    if profiler:
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(30)
        out["profile_top"] = buffer.getvalue()
    return out


def read_back(url: str) -> tuple[list[dict[str, list[dict[str, Any]]]], dict[str, int]]:
    """The rows the intake wrote, per intake batch (one ``received_at`` per ``submit`` call), per table."""
    engine = make_engine(url)
    by_tx: dict[str, dict[Any, list[dict[str, Any]]]] = {}
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        tx_rows = [
            dict(r._mapping)
            for r in conn.execute(select(*[Transaction.__table__.c[c] for c in WRITTEN["transactions"][1]]))
        ]
        counts["transactions"] = len(tx_rows)
        for name in ("contacts", "service_levels", "invitations"):
            table, cols = WRITTEN[name]
            grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
            rows = conn.execute(select(*[table.c[c] for c in cols])).all()
            for r in rows:
                row = dict(r._mapping)
                grouped[row["transaction_id"]].append(row)
            by_tx[name] = grouped
            counts[name] = len(rows)
    engine.dispose()
    received = sorted({r["received_at"] for r in tx_rows})
    batch_of = {moment: i for i, moment in enumerate(received)}
    batches: list[dict[str, list[dict[str, Any]]]] = [{n: [] for n in ORDER} for _ in received]
    for row in sorted(tx_rows, key=lambda r: r["external_id"]):
        b = batches[batch_of[row["received_at"]]]
        b["transactions"].append(row)
        for name in ("contacts", "service_levels", "invitations"):
            b[name].extend(by_tx[name].get(row["id"], ()))
    return batches, counts


def run_baseline(url: str, batches: list[dict[str, list[dict[str, Any]]]], warmup: int) -> dict[str, Any]:
    common.runtime_for(url).engine.dispose()  # services and offices rows, for the foreign keys
    engine = make_engine(url)
    times = []
    for index, rows in enumerate(batches):
        start = time.perf_counter()
        with engine.begin() as conn:
            for name in ORDER:
                if rows[name]:
                    conn.execute(insert(WRITTEN[name][0]), rows[name])
        elapsed = time.perf_counter() - start
        if index >= warmup:
            times.append(elapsed)
    engine.dispose()
    return {"seconds": round(sum(times), 4), "batches": len(times)}


def server_command(backend: str, port: int) -> list[str]:
    """The command a person runs: ``serve`` on SQLite (jobs in the same process), ``web`` (gunicorn, 2 workers) on
    PostgreSQL."""
    if backend == "sqlite":
        return [sys.executable, "-m", "engine.cli", "serve", "--port", str(port)]
    return [sys.executable, "-m", "engine.cli", "web", "--bind", f"127.0.0.1:{port}", "--workers", "2"]


def run_http(backend: str, url: str, batches: list[list[dict[str, Any]]], warmup: int, profile: bool) -> dict[str, Any]:
    """The batches posted over HTTP to the real server process, one after the other on one keep-alive connection."""
    key = common.api_key_for(url)
    port = common.free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench_intake_http_"))
    cmd = server_command(backend, port)
    out: dict[str, Any] = {"server": " ".join(cmd[2:])}
    try:
        with common.server_process(cmd, common.env_for(url, str(workdir / "instance")), port,
                                   workdir / "server.log") as process:  # fmt: skip
            if profile:
                common.post_batches(port, key, batches[:warmup], warmup)
                pids = [process.pid, *common.children_of(process.pid)]
                spies = common.spy_start(pids, workdir, seconds=600)
                time.sleep(1.0)
                posted = common.post_batches(port, key, batches[warmup:], 0)
                for p in spies:
                    p.send_signal(signal.SIGINT)
                    p.wait(timeout=60)
                out["profile"] = profile_summary(workdir)
            else:
                posted = common.post_batches(port, key, batches, warmup)
        out["server_log_dev_warning"] = "development server" in (workdir / "server.log").read_text(errors="replace")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    times = posted["times"]
    return {**out, "decisions": posted["decisions"], **summarize_times(times, len(batches[0]))}


# Where a sample of the serving process is counted: the first of these found walking from the innermost frame out.
STAGES = [
    ("INSERT + commit (driver, database)", ("_write", "commit", "do_commit", "_commit_impl")),
    ("replay check (SELECT)", ("_load_existing",)),
    ("facts (SELECT)", ("_gather_facts",)),
    ("decisions (rules, keyed hashes)", ("_decide",)),
    ("validation (parse_transaction)", ("parse_transaction",)),
    ("JSON out (jsonify)", ("jsonify", "dumps")),
    ("JSON in (json_body)", ("json_body",)),
    ("key check (require_scope)", ("_lookup", "token_hash", "_verified_keys")),
    ("request parsing, server, Flask", ()),
]


def profile_summary(folder: Path) -> dict[str, Any]:
    """py-spy raw stacks of the serving processes grouped into stages (share of the samples spent handling a
    request; idle threads waiting for work are left out)."""
    counts: Counter[str] = Counter()
    rest: Counter[str] = Counter()
    total = 0
    for path in folder.glob("spy-*.txt"):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            if "wsgi_app" not in stack and "handle_request" not in stack and "service (" not in stack:
                continue  # an idle thread, the scheduler, the accept loop
            frames = {f.split(" (")[0].rsplit(".", 1)[-1] for f in stack.split(";")}
            total += int(n)
            for name, markers in STAGES:
                if not markers or any(m in frames for m in markers):
                    counts[name] += int(n)
                    if not markers:  # what the rest is: the innermost frame of our code or a library's
                        rest[stack.split(";")[-1].split(" (")[0]] += int(n)
                    break
    return {
        "samples": total,
        "stages_percent": {name: round(100 * counts[name] / total, 1) for name, _ in STAGES} if total else {},
        "rest_innermost_top": [[f, round(100 * k / total, 1)] for f, k in rest.most_common(8)] if total else [],
    }


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    total = args.warmup + args.batches
    source = common.Items(seed=11, service_levels=args.service_levels, service=args.service)
    batches = [source.batch(args.batch_size, args.replays) for _ in range(total)]
    out: dict[str, Any] = {"backend": backend}
    timed_items = args.batches * args.batch_size
    if not args.http_only:
        with common.database(backend, "intake", keep=args.keep) as url:
            if backend == "postgresql":
                out["postgresql"] = common.pg_version(url)
            rt = common.runtime_for(url)
            out["intake"] = run_intake(rt, batches, args.warmup, args.profile)
            rt.engine.dispose()
            rows, counts = read_back(url)
        out["rows_written"] = counts
        out["rows_per_batch"] = {n: round(sum(len(b[n]) for b in rows) / len(rows), 1) for n in ORDER}
        with common.database(backend, "baseline", keep=args.keep) as url:
            base = run_baseline(url, rows, args.warmup)
        base["tx_per_s"] = round(timed_items / base["seconds"], 1)
        out["baseline"] = base
        out["ratio"] = round(base["seconds"] / out["intake"]["seconds"], 3)
    if args.http:
        out["http"] = http_run(backend, args, args.service, seed=13, profile=args.profile_http)
        if backend == "sqlite" and args.also_dispatching and args.service != common.SERVICE:
            # The same batches for a service whose invitations are due at once: `serve` then dispatches them (the
            # console channel) in the very process taking the next batches, one GIL and one SQLite writer.
            out["http_dispatching"] = http_run(backend, args, common.SERVICE, seed=13, profile=False)
    return out


def http_run(backend: str, args: argparse.Namespace, service: str, seed: int, profile: bool) -> dict[str, Any]:
    """The HTTP batches for ``service`` and the bare executemany of the rows they wrote."""
    total = args.warmup + args.batches
    http_source = common.Items(seed=seed, service_levels=args.service_levels, service=service)
    http_batches = [http_source.batch(args.batch_size, args.replays) for _ in range(total)]
    with common.database(backend, "http", keep=args.keep) as url:
        out = run_http(backend, url, http_batches, args.warmup, profile)
        http_rows, _ = read_back(url)
    with common.database(backend, "http_baseline", keep=args.keep) as url:
        http_base = run_baseline(url, http_rows, args.warmup)
    http_base["tx_per_s"] = round(args.batches * args.batch_size / http_base["seconds"], 1)
    out["service"] = service
    out["baseline"] = http_base
    out["ratio"] = round(http_base["seconds"] / out["seconds"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--batches", type=int, default=20, help="timed batches (default 20)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--replays", type=float, default=0.10, help="share of items that replay an earlier id")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first (default 2)")
    parser.add_argument("--service-levels", type=int, default=1, help="service_level indicators per item (SPEC: 1)")
    parser.add_argument(
        "--http", action="store_true", help="also post over HTTP to `serve` (SQLite) / `web` (PostgreSQL)"
    )
    parser.add_argument("--http-only", action="store_true", help="only over HTTP (implies --http)")
    parser.add_argument("--profile-http", action="store_true", help="py-spy the server during the timed HTTP batches")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed intake batches")
    parser.add_argument("--repeat", type=int, default=1, help="run each backend this many times (median shown)")
    parser.add_argument("--keep", action="store_true", help="keep the databases (for inspection)")
    parser.add_argument(
        "--service",
        default=common.LATER_SERVICE,
        choices=[common.LATER_SERVICE, common.SERVICE],
        help="bench-later (default): invitations due in an hour, so intake is timed alone; bench: due at once",
    )
    parser.add_argument(
        "--also-dispatching",
        action="store_true",
        help="on SQLite, also post the batches for `bench` (due at once: `serve` dispatches them while intake goes on)",
    )
    args = parser.parse_args()
    args.http = args.http or args.http_only or args.profile_http
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]

    runs = []
    for round_ in range(args.repeat):
        for backend in backends:
            print(
                f"[{backend}, run {round_ + 1}/{args.repeat}] {args.warmup} warm-up + {args.batches} timed batches "
                f"of {args.batch_size} ({args.replays:.0%} replays)...",
                file=sys.stderr,
                flush=True,
            )
            runs.append(bench_backend(backend, args))

    print()
    print(
        f"{'backend':<11} {'in-process tx/s':>15} {'ratio':>6} {'HTTP tx/s':>10} {'HTTP baseline':>13} {'ratio':>6}  "
        f"HTTP batch p50/max ms"
    )
    for r in runs:
        ip = r.get("intake", {}).get("tx_per_s", "-")
        ipr = r.get("ratio", "-")
        h = r.get("http", {})
        print(
            f"{r['backend']:<11} {ip!s:>15} {ipr!s:>6} {h.get('tx_per_s', '-')!s:>10} "
            f"{h.get('baseline', {}).get('tx_per_s', '-')!s:>13} {h.get('ratio', '-')!s:>6}  "
            f"{h.get('batch_ms_p50', '-')}/{h.get('batch_ms_max', '-')}"
        )
        d = r.get("http_dispatching")
        if d:
            print(
                f"{'  (due now)':<11} {'-':>15} {'-':>6} {d['tx_per_s']!s:>10} {d['baseline']['tx_per_s']!s:>13} "
                f"{d['ratio']!s:>6}  {d['batch_ms_p50']}/{d['batch_ms_max']}  <- `bench`: serve dispatches them meanwhile"
            )
    medians = {}
    if args.repeat > 1:
        for backend in backends:
            mine = [r for r in runs if r["backend"] == backend]
            m: dict[str, Any] = {}
            if not args.http_only:
                m["intake_tx_per_s"] = round(statistics.median(r["intake"]["tx_per_s"] for r in mine), 1)
                m["ratio"] = round(statistics.median(r["ratio"] for r in mine), 3)
            if args.http:
                m["http_tx_per_s"] = round(statistics.median(r["http"]["tx_per_s"] for r in mine), 1)
                m["http_ratio"] = round(statistics.median(r["http"]["ratio"] for r in mine), 3)
            medians[backend] = m
            print(f"median {backend}: {m}")
    for r in runs:
        if "profile" in r.get("http", {}):
            print(f"\n--- py-spy of the server ({r['backend']}, {r['http']['server']}) ---")
            print(json.dumps(r["http"]["profile"], indent=2))
    print("targets (SPEC §7): intake >= 5,000 tx/s on each backend, ratio >= 0.5")
    for r in runs:
        if "profile_top" in r.get("intake", {}):
            print(f"\n--- profile ({r['backend']}) ---\n{r['intake']['profile_top']}")
    params = {k: v for k, v in vars(args).items()}
    path = common.write_result("intake", {"params": params, "runs": runs, "medians": medians})
    print(f"\nresult: {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
