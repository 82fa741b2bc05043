"""SPEC §7 single-transaction API benchmark: gunicorn (2 workers) on PostgreSQL under an open-loop load.

    .venv/bin/python bench/single_api.py [--rate 500] [--duration 60] [--warmup 5] [--workers 2]
                                         [--timeout 10] [--access-log]

1. A fresh PostgreSQL database is created and migrated, the catalogue (bench/config) synced and an API key created
   (``engine.api.auth.create_api_key`` inside ``unit_of_work``).
2. ``python -m gunicorn --workers 2 --bind 127.0.0.1:<free port> 'engine.app:create_app()'`` is started with the
   SPEC §8 environment (sync workers, gunicorn's defaults; no access log unless ``--access-log``, which is what
   ``survey-engine web`` adds).
3. A **second process** (this script with ``--generate``) runs the open-loop load generator: request *i* is
   scheduled at ``t0 + i / rate`` and sent then whatever happened to the earlier ones (asyncio + aiohttp, no
   connection limit). Latency is measured from the *scheduled* time to the end of the response, so a stalled
   server or a late generator counts against the figure (no coordinated omission). Each request posts one
   transaction with a fresh id (a contact on every one) to ``POST /api/v1/transactions``.
   The first ``--warmup`` seconds run at the same rate and are not counted.
4. While it runs, the gunicorn workers' RSS is sampled; at the end their peak (``VmHWM`` of /proc/<pid>/status).
   Then gunicorn is stopped, the stored transactions are counted and the database is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import common

# -- the load generator (the second process) --------------------------------------------------------------------


class _OneRequest(asyncio.Protocol):
    """One request on a connection of its own (HTTP/1.1): written when connected, its answer read up to the end
    of its body, then the connection closed by us. The future gets the status code."""

    def __init__(self, request: bytes, answered: asyncio.Future[str]) -> None:
        self.request = request
        self.answered = answered
        self.received = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.received += data
        end = self.received.find(b"\r\n\r\n")
        if end < 0 or self.answered.done():
            return
        length = 0
        for line in bytes(self.received[:end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.received) >= end + 4 + length:
            self.answered.set_result(bytes(self.received[9:12]).decode())
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_result(type(exc).__name__ if exc else "closed-early")


async def _raw_post(host: str, port: int, request: bytes) -> str:
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[str] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: _OneRequest(request, answered), host, port)
    try:
        return await answered
    finally:
        transport.close()


async def generate(
    url: str,
    key: str,
    rate: float,
    duration: float,
    warmup: float,
    timeout: float,
    keep_alive: bool = False,
    client: str = "aiohttp",
) -> dict[str, Any]:
    """``client`` "raw": each request written as bytes built before the clock starts, on a new connection (asyncio
    streams, no HTTP library: the generator shares the 2 cores with the server, so it should cost little);
    "aiohttp": aiohttp's client (``keep_alive`` reuses connections)."""
    import aiohttp

    total = int((warmup + duration) * rate)
    warm_n = int(warmup * rate)
    source = common.Items(seed=17)
    bodies = [json.dumps(source.fresh()).encode() for _ in range(total)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float | None] = [None] * total
    send_lag: list[float] = [0.0] * total
    statuses: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    target = urllib.parse.urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    requests = [
        (f"POST {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\nAuthorization: Bearer {key}\r\n"
         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        for body in bodies
    ] if client == "raw" else []  # fmt: skip

    def done_with(i: int, scheduled: float, status: str) -> None:
        if i >= warm_n:
            statuses[status] = statuses.get(status, 0) + 1
            if status in ("200", "201"):
                latencies[i] = loop.time() - scheduled

    if client == "raw":

        async def one_raw(i: int, scheduled: float) -> None:
            send_lag[i] = loop.time() - scheduled
            try:
                status = await asyncio.wait_for(_raw_post(host, port, requests[i]), timeout)
            except TimeoutError:
                status = "timeout"
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                status = type(exc).__name__
            done_with(i, scheduled, status)

        t0, sent_end, finished = await common.open_loop(loop, total, rate, one_raw)
    else:
        connector = aiohttp.TCPConnector(limit=0, force_close=not keep_alive)
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

            async def one(i: int, scheduled: float) -> None:
                send_lag[i] = loop.time() - scheduled
                try:
                    async with session.post(url, data=bodies[i], headers=headers) as response:
                        await response.read()
                        status = str(response.status)
                except TimeoutError:
                    status = "timeout"
                except aiohttp.ClientError as exc:
                    status = type(exc).__name__
                done_with(i, scheduled, status)

            t0, sent_end, finished = await common.open_loop(loop, total, rate, one)

    # Per second of the measured window (by scheduled time): p50 / p99 / max latency, to tell stalls (a few bad
    # seconds) from steady queueing (every second bad).
    timeline = common.per_second(latencies, warm_n, total, rate)
    measured = [x for x in latencies[warm_n:] if x is not None]
    measured.sort()
    ok = len(measured)
    lag = sorted(send_lag[warm_n:])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    window = duration  # the measured requests were scheduled over ``duration`` seconds
    return {
        "scheduled": total - warm_n,
        "ok": ok,
        "statuses": statuses,
        "errors": (total - warm_n) - ok,
        "offered_rate": rate,
        "achieved_rate": round(ok / window, 1),
        "latency_ms": {
            "p50": round(common.percentile(measured, 50) * 1000, 2) if ok else None,
            "p90": round(common.percentile(measured, 90) * 1000, 2) if ok else None,
            "p99": round(common.percentile(measured, 99) * 1000, 2) if ok else None,
            "p999": round(common.percentile(measured, 99.9) * 1000, 2) if ok else None,
            "max": round(measured[-1] * 1000, 2) if ok else None,
        },
        "generator_send_lag_ms": {
            "p50": round(common.percentile(lag, 50) * 1000, 2),
            "p99": round(common.percentile(lag, 99) * 1000, 2),
            "max": round(lag[-1] * 1000, 2),
        },
        "schedule_overrun_s": round(sent_end - (t0 + (total - 1) / rate), 3),
        "drain_after_last_send_s": round(finished - sent_end, 3),
        "latency_ms_per_second_p50_p99_max": timeline,
        "generator_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "generator_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


# -- the orchestrator -------------------------------------------------------------------------------------------


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    from engine.api.auth import create_api_key
    from engine.store.db import unit_of_work

    workdir = Path(tempfile.mkdtemp(prefix="bench_single_api_"))
    with common.database("postgresql", "single_api", keep=args.keep) as db_url:
        pg = common.pg_version(db_url)
        rt = common.runtime_for(db_url)
        with unit_of_work(rt.sessions) as session:
            key = create_api_key(session, "bench-single-api", [common.SERVICE], ["intake"])
        rt.engine.dispose()

        port = common.free_port()
        base = f"http://127.0.0.1:{port}"
        env = common.env_for(db_url, str(workdir / "instance"))
        extra = ["--access-logfile", "-"] if args.access_log else []
        cmd = common.gunicorn_cmd(port, args.workers, args.worker_class, args.threads, *extra)
        log_path = workdir / "gunicorn.log"
        with common.server_process(cmd, env, port, log_path) as server:
            watch = common.WorkerWatch(server.pid)
            print(
                f"gunicorn pid {server.pid}, workers {watch.workers}, {base}; load: {args.rate}/s for "
                f"{args.warmup}+{args.duration} s",
                file=sys.stderr,
                flush=True,
            )
            gen_cmd = (
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--generate",
                    "--target",
                    base + "/api/v1/transactions",
                    "--key",
                    key,
                    *common.load_options(args),
                ]
                + (["--keep-alive"] if args.keep_alive else [])
                + ["--client", args.client]
            )
            generator = subprocess.Popen(gen_cmd, cwd=common.ROOT, stdout=subprocess.PIPE, text=True)
            watch.start()
            wall_start = time.monotonic()
            watch.until_done(generator)
            wall = time.monotonic() - wall_start
            out, _ = generator.communicate()
            if generator.returncode != 0:
                raise SystemExit(f"load generator failed ({generator.returncode})")
            load = json.loads(out.strip().splitlines()[-1])
            memory = watch.usage()
            master = {"pid": server.pid, "VmHWM_mb": round((common.vm_kb(server.pid, "VmHWM") or 0) / 1024, 1)}
            restarted = watch.replaced()
        rows = common.count_rows(db_url, "transactions", "invitations")
        stored, invitations = rows["transactions"], rows["invitations"]

    log_tail = log_path.read_text(errors="replace").splitlines()[-20:]
    shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "params": vars(args),
        "postgresql": pg,
        "gunicorn": {
            "cmd": " ".join(cmd[1:]),
            "workers": args.workers,
            "worker_class": args.worker_class,
            "threads": args.threads,
            "workers_replaced_during_run": restarted,
        },
        "load": load,
        "wall_s": round(wall, 1),
        "workers_memory": memory,
        "master_memory": master,
        "stored": {"transactions": stored, "invitations": invitations},
        "gunicorn_log_tail": log_tail,
    }
    path = common.write_result("single_api", result)

    lat = load["latency_ms"]
    peak = max((m["VmHWM_mb"] for m in memory.values()), default=None)
    print()
    print(
        f"offered {load['offered_rate']}/s for {args.duration} s (+{args.warmup} s warm-up, not counted), "
        f"{args.workers} gunicorn {args.worker_class} workers, PostgreSQL {pg}"
    )
    print(
        f"achieved {load['achieved_rate']} req/s ok; errors {load['errors']} of {load['scheduled']} "
        f"({load['statuses']})"
    )
    print(
        f"latency from scheduled send: p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms, "
        f"max {lat['max']} ms"
    )
    seconds = load.get("latency_ms_per_second_p50_p99_max") or []
    if seconds:
        bad = [n for n, (_, p99, _) in enumerate(seconds) if p99 > 50]
        print(f"seconds with p99 > 50 ms: {len(bad)} of {len(seconds)}" + (f" (at {bad[:20]})" if bad else ""))
    print(
        f"generator send lag p99 {load['generator_send_lag_ms']['p99']} ms; generator CPU {load['generator_cpu_s']} s"
    )
    for pid, m in memory.items():
        print(f"worker {pid}: peak RSS {m['VmHWM_mb']} MB, CPU {m['cpu_s']} s")
    print(f"stored: {stored} transactions, {invitations} invitations (warm-up included)")
    print(f"targets (SPEC §7): >= 500 req/s, p99 <= 50 ms, worker RSS < 150 MB  -> peak worker RSS {peak} MB")
    print(f"\nresult: {path.relative_to(common.ROOT)}")
    return result


def knee(args: argparse.Namespace) -> None:
    """One run per rate of ``--rates`` (ascending); the knee is where p99 crosses 50 ms for good."""
    rows = []
    for rate in [float(r) for r in args.rates.split(",")]:
        args.rate = rate
        load_at_start = os.getloadavg()[0]
        r = orchestrate(args)
        lat = r["load"]["latency_ms"]
        rows.append({"rate": rate, "achieved": r["load"]["achieved_rate"], "errors": r["load"]["errors"],
                     "p50": lat["p50"], "p99": lat["p99"], "load_at_start": round(load_at_start, 2)})  # fmt: skip
    # The knee: the lowest rate from which p99 stays over 50 ms at every higher rate measured (one noisy run
    # below it does not count as the crossing).
    found = None
    for row in reversed(rows):
        if row["p99"] is not None and row["p99"] <= 50:
            break
        found = row["rate"]
    print(f"\nlatency curve ({args.worker_class}, threads {args.threads}):")
    for row in rows:
        print(f"  {row['rate']:>6.0f}/s  achieved {row['achieved']:>6}  p50 {row['p50']} ms  p99 {row['p99']} ms  "
              f"errors {row['errors']}  load {row['load_at_start']}")  # fmt: skip
    print(f"knee (p99 > 50 ms from this rate up): {found if found is not None else 'none up to ' + args.rates}")
    common.write_result("single_api_knee", {"params": vars(args), "rows": rows, "knee": found})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second, fixed (default 500)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds at the same rate, not counted")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (as `web`: gthread)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn --threads (as `web`: 4; 0: not given)")
    parser.add_argument("--keep-alive", action="store_true", help="the aiohttp generator reuses connections")
    parser.add_argument(
        "--client",
        choices=["raw", "aiohttp"],
        default="aiohttp",
        help="the generator's HTTP client: aiohttp (default; every figure in bench/README.md unless it says raw) or "
        "raw (prebuilt bytes on a new connection a request, no HTTP library: a third less generator CPU)",
    )
    parser.add_argument("--rates", help="comma-separated rates, one run each: the latency curve and its knee")
    parser.add_argument("--timeout", type=float, default=10.0, help="a request's timeout in seconds")
    parser.add_argument(
        "--access-log", action="store_true", help="gunicorn --access-logfile - (as `survey-engine web`)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        result = asyncio.run(
            generate(
                args.target, args.key, args.rate, args.duration, args.warmup, args.timeout, args.keep_alive, args.client
            )
        )
        print(json.dumps(result))
        return
    if args.rates:
        knee(args)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
