"""Shared plumbing of the benchmark scripts: databases, settings, synthetic transactions, results, machine facts.

Not a benchmark itself. The scripts in this folder import it as ``common`` (``bench/`` is ``sys.path[0]`` when a
script is run as ``.venv/bin/python bench/<name>.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

RESULTS = BENCH / "results"
CONFIG = BENCH / "config"
FLOWS = ROOT / "flows"
SERVICE = "bench"
LATER_SERVICE = "bench-later"  # the same, its invitations due an hour after intake (bench/config/services.yaml)
OFFICE = "BENCH-01"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
# Fixed, benchmark-only secrets (never used by a real deployment): 32+ characters as SPEC §8 asks.
SECRET = "bench-secret-key-not-for-production-0123456789"
ENCRYPTION = "bench-encryption-key-not-for-production-9876543210"


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


STARTED_LOADAVG = os.getloadavg()
STARTED_CPU = _cpu_times()
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Pacific/Honolulu")


# -- databases --------------------------------------------------------------------------------------------------


@contextmanager
def database(backend: str, label: str, keep: bool = False) -> Iterator[str]:
    """A fresh, empty, migrated database for one benchmark; dropped (or deleted) at the end."""
    from engine.store import migrate
    from engine.store.db import make_engine

    name = f"bench_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    if backend == "postgresql":
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        cleanup = lambda: _drop_pg(admin, name)  # noqa: E731
    elif backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"{name}_"))
        url = f"sqlite:///{folder / 'bench.db'}"
        cleanup = lambda: _rm_tree(folder)  # noqa: E731
    else:
        raise SystemExit(f"unknown backend {backend!r}")
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    stop_renice = renice_backends(name) if backend == "postgresql" else None
    try:
        yield url
    finally:
        if stop_renice:
            stop_renice()
        if keep:
            print(f"(kept database {url})", file=sys.stderr)
        else:
            cleanup()


def renice_backends(database: str) -> Any:
    """When this benchmark runs with a raised priority (``nice -n -10 bench/run``: its child processes inherit it),
    give the PostgreSQL backends serving its own database the same priority (they are the postmaster's children,
    not ours), every half second until the returned function is called. Nothing happens at the normal priority.
    On a machine shared with other people's test suites this keeps the benchmark's own processes from queueing
    behind theirs; the result files record the niceness used."""
    import threading

    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness >= 0:
        return None
    import psycopg

    stop = threading.Event()
    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")

    def loop() -> None:
        with contextlib.suppress(Exception), psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                pids = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)).fetchall()
                for (pid,) in pids:
                    with contextlib.suppress(OSError):
                        if os.getpriority(os.PRIO_PROCESS, pid) != niceness:
                            os.setpriority(os.PRIO_PROCESS, pid, niceness)
                stop.wait(0.5)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return stop.set


def _drop_pg(admin: Any, name: str) -> None:
    from sqlalchemy import text

    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _rm_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    folder.rmdir()


_instance_dir: str | None = None


def _scratch_instance_dir() -> str:
    """One temporary instance folder per process, removed when it exits."""
    global _instance_dir
    if _instance_dir is None:
        _instance_dir = tempfile.mkdtemp(prefix="bench_instance_")
        atexit.register(shutil.rmtree, _instance_dir, True)
    return _instance_dir


FAST_SENDING = {
    "SURVEY_ENGINE_SEND_RATE_SMS": "1000000",
    "SURVEY_ENGINE_SEND_RATE_IVR": "1000000",
    "SURVEY_ENGINE_SEND_RATE_EMAIL": "10000000",
}


def env_for(url: str, instance_dir: str | None = None) -> dict[str, str]:
    """The environment a benchmark process of the engine runs with (SPEC §8 variables)."""
    return {
        "SURVEY_ENGINE_DATABASE_URL": url,
        "SURVEY_ENGINE_INSTANCE_DIR": instance_dir or _scratch_instance_dir(),
        "SURVEY_ENGINE_CONFIG_DIR": str(CONFIG),
        "SURVEY_ENGINE_FLOWS_DIR": str(FLOWS),
        "SURVEY_ENGINE_SECRET_KEY": SECRET,
        "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
        "SURVEY_ENGINE_PUBLIC_URL": "http://127.0.0.1:8000",
        "SURVEY_ENGINE_LOG_LEVEL": "WARNING",
        # Throughput benchmarks measure the engine, not a sender's rate (SPEC §7): pacing far above what they reach.
        # bench/channel_dispatch.py --paced-rate measures the rate held.
        **FAST_SENDING,
    }


def runtime_for(url: str) -> Any:
    from engine.runtime import build_runtime
    from engine.settings import load_settings

    rt = build_runtime(load_settings(env_for(url)))
    rt.sync_catalog()
    return rt


# -- synthetic transactions -------------------------------------------------------------------------------------


class Items:
    """Synthetic transactions of the bench service: a contact (phone, email, time zone) on every one."""

    def __init__(
        self, seed: int = 7, service_levels: int = 0, prefix: str | None = None, service: str = SERVICE
    ) -> None:
        self.rng = random.Random(seed)
        self.service = service
        self.n = 0
        self.prefix = prefix or f"bench-{uuid.uuid4().hex[:8]}"
        self.service_levels = service_levels
        self.sent: list[dict[str, Any]] = []

    def fresh(self, completed_at: datetime | None = None) -> dict[str, Any]:
        self.n += 1
        n = self.n
        moment = completed_at or datetime.now(UTC) - timedelta(minutes=5)
        item: dict[str, Any] = {
            "id": f"{self.prefix}-{n:09d}",
            "service": self.service,
            "completed_at": moment.isoformat(timespec="seconds"),
            "touchpoint": "web",
            "office": OFFICE,
            "language": "en",
            # +1 212 2xx xxxx: valid North American numbers, one per transaction.
            "contact": {
                "phone": f"+1212{2000000 + n % 8000000:07d}",
                "email": f"customer.{n}@mail.example.gov",
                "timezone": ZONES[n % len(ZONES)],
            },
        }
        if self.service_levels:
            item["service_level"] = {f"sli_{k}": float(self.rng.randint(1, 900)) for k in range(self.service_levels)}
        self.sent.append(item)
        return item

    def replay(self) -> dict[str, Any]:
        return dict(self.rng.choice(self.sent))

    def batch(self, size: int, replay_share: float) -> list[dict[str, Any]]:
        """``size`` items, ``replay_share`` of them replays of ids sent before (earlier batches or this one)."""
        replays = round(size * replay_share)
        items = [self.fresh() for _ in range(size - replays)]
        items += [self.replay() for _ in range(replays)]
        self.rng.shuffle(items)
        return items


# -- processes and memory ---------------------------------------------------------------------------------------


def vm_kb(pid: int | str, field: str = "VmHWM") -> int | None:
    """A ``/proc/<pid>/status`` memory figure in kB (VmHWM: peak resident set size)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else None


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


# -- machine and results ----------------------------------------------------------------------------------------


def python_speed_ms(repeat: int = 5) -> float:
    """How fast this host runs Python: the best of ``repeat`` timings of one fixed pure-Python loop, in ms.

    The same commit gave very different figures on two hosts of the same size (bench/README.md, stops 25-27). The
    benchmarks' figures scale with this one, so a reader can compare runs from different hosts by it. Taken when
    the machine is quiet (``bench/run`` takes it before the first benchmark)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return round(1000 * best, 1)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = None
    with contextlib.suppress(OSError, AttributeError):
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    cpu_now = _cpu_times()
    busy = None
    if cpu_now and STARTED_CPU and cpu_now[1] > STARTED_CPU[1]:
        busy = round(100 * (cpu_now[0] - STARTED_CPU[0]) / (cpu_now[1] - STARTED_CPU[1]), 1)
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_total_gb": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        # Context on a shared machine: the load average when the script started and when it ended, and how busy
        # all CPUs were (everything, this benchmark included) while it ran.
        "loadavg_at_start": [round(x, 2) for x in STARTED_LOADAVG],
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "niceness": os.getpriority(os.PRIO_PROCESS, 0),
        "all_cpus_busy_percent_during_run": busy,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        import psycopg
        import sqlalchemy

        info["sqlalchemy"] = sqlalchemy.__version__
        info["psycopg"] = psycopg.__version__
    except ImportError:
        pass
    return info


def pg_version(url: str) -> str | None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one())
    except Exception:
        return None
    finally:
        engine.dispose()


def git_commit() -> str | None:
    # Read-only look at HEAD without running git.
    try:
        head = (ROOT / ".git" / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = ROOT / ".git" / head[5:]
            if ref.exists():
                return ref.read_text().strip()
            packed = ROOT / ".git" / "packed-refs"
            for line in packed.read_text().splitlines() if packed.exists() else []:
                if line.endswith(head[5:]):
                    return line.split()[0]
            return None
        return head
    except OSError:
        return None


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {"benchmark": name, "at": stamp, "commit": git_commit(), "machine": machine(), **payload}
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    latest = RESULTS / f"{name}-latest.json"
    latest.write_text(path.read_text())
    return path


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


def load_options(args: Any) -> list[str]:
    """The open-loop generator's rate, duration, warm-up and timeout options, as given to the orchestrator."""
    return ["--rate", str(args.rate), "--duration", str(args.duration), "--warmup", str(args.warmup),
            "--timeout", str(args.timeout)]  # fmt: skip


def now_s() -> float:
    return time.perf_counter()


async def open_loop(loop: Any, total: int, rate: float, one: Any) -> tuple[float, float, float]:
    """Open-loop load: start ``one(i, scheduled)`` at ``t0 + i / rate`` whatever the earlier answers' speed.

    Returns ``(t0, last send, last answer)`` in the loop's clock; latency is measured by ``one`` from ``scheduled``
    (no coordinated omission).
    """
    import asyncio

    tasks = []
    t0 = float(loop.time()) + 0.2
    for i in range(total):
        scheduled = t0 + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    sent_end = float(loop.time())
    await asyncio.gather(*tasks)
    return t0, sent_end, float(loop.time())


def per_second(latencies: list[float | None], warm_n: int, total: int, rate: float) -> list[list[float]]:
    """p50 / p99 / max latency (ms) of each second of the measured window, by scheduled time."""
    timeline = []
    step = int(rate)
    for start in range(warm_n, total, step):
        second = sorted(x for x in latencies[start : start + step] if x is not None)
        if second:
            timeline.append([round((percentile(second, q) or 0.0) * 1000, 1) for q in (50, 99, 100)])
    return timeline


# -- servers over HTTP ------------------------------------------------------------------------------------------


def wait_ready(base: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Until ``GET /readyz`` answers 200 (or the server died, or ``seconds`` passed)."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not become ready within {seconds:.0f} s")


@contextmanager
def server_process(cmd: list[str], env: dict[str, str], port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server started with ``cmd`` (stdout and stderr to ``log_path``), ready on ``port``; SIGTERM at the end."""
    import signal

    log = log_path.open("wb")
    process = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def gunicorn_cmd(port: int, workers: int, worker_class: str, threads: int, *extra: str) -> list[str]:
    """gunicorn serving the engine's app on ``port`` (``threads`` 0: the option not given)."""
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    cmd += ["--no-control-socket"]  # as `web`: gunicorn's default is one path per user, shared by every instance
    cmd += ["--worker-class", worker_class] + (["--threads", str(threads)] if threads else [])
    return [*cmd, *extra, "engine.app:create_app()"]


def cpu_ticks(pid: int) -> int:
    """A process's CPU so far (utime + stime from ``/proc/<pid>/stat``), in clock ticks; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


class WorkerWatch:
    """The workers of a server process while a load runs: their CPU from :meth:`start` and their resident memory,
    sampled every half second by :meth:`until_done` and read at the end (``VmHWM``, the peak) by :meth:`usage`."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.workers = children_of(server_pid)
        self.cpu_start: dict[int, int] = {}
        self.rss_max: dict[int, int] = {}

    def start(self) -> None:
        self.cpu_start = {pid: cpu_ticks(pid) for pid in self.workers}

    def until_done(self, process: subprocess.Popen[Any]) -> None:
        while process.poll() is None:
            for pid in children_of(self.server_pid):
                rss = vm_kb(pid, "VmRSS")
                if rss is not None:
                    self.rss_max[pid] = max(self.rss_max.get(pid, 0), rss)
            time.sleep(0.5)

    def usage(self) -> dict[str, dict[str, float]]:
        """Per worker now alive: peak RSS (MB, the kernel's and the sampled one) and CPU since :meth:`start` (s)."""
        hz = os.sysconf("SC_CLK_TCK")
        return {
            str(pid): {
                "VmHWM_mb": round((vm_kb(pid, "VmHWM") or 0) / 1024, 1),
                "VmRSS_max_sampled_mb": round(self.rss_max.get(pid, 0) / 1024, 1),
                "cpu_s": round((cpu_ticks(pid) - self.cpu_start.get(pid, 0)) / hz, 1),
            }
            for pid in children_of(self.server_pid)
        }

    def replaced(self) -> list[int]:
        """Workers that died or were started during the run (a worker killed for its timeout shows here)."""
        return sorted(set(children_of(self.server_pid)) ^ set(self.workers))


def released_together(ctx: Any, target: Any, args_each: list[tuple[Any, ...]]) -> tuple[list[dict[str, Any]], float]:
    """One process a tuple of ``args_each``, running ``target(*args, ready, start, results)``: each releases
    ``ready`` once set up and waits for ``start``, which is set when all are ready, then puts its report (a dict,
    with ``error`` if it failed) on ``results``. Returns the reports and the time ``start`` was set; any failed
    report ends the benchmark."""
    ready, start, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, ready, start, results)) for args in args_each]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire(timeout=120)
    released_at = time.time()
    start.set()
    reports = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    if errors := [r for r in reports if "error" in r]:
        raise SystemExit(f"worker failed: {errors}")
    return reports, released_at


def count_rows(url: str, *tables: str) -> dict[str, int]:
    """How many rows each of ``tables`` holds in the database at ``url``."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()) for t in tables}
    finally:
        engine.dispose()


def api_key_for(url: str, scopes: tuple[str, ...] = ("intake",)) -> str:
    """A real API key of the bench service in the database at ``url``."""
    from engine.api.auth import create_api_key
    from engine.store.db import unit_of_work

    rt = runtime_for(url)
    try:
        with unit_of_work(rt.sessions) as session:
            return create_api_key(session, "bench", [SERVICE, LATER_SERVICE], list(scopes))
    finally:
        rt.engine.dispose()


def post_batches(port: int, key: str, batches: list[list[dict[str, Any]]], warmup: int) -> dict[str, Any]:
    """POST each batch to ``/api/v1/transactions`` over one keep-alive connection, one after the other; the JSON
    bodies are encoded before the clock starts. Times (s) of the batches after the first ``warmup``."""
    import http.client

    bodies = [json.dumps({"transactions": items}).encode() for items in batches]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times: list[float] = []
    decisions: dict[str, int] = {}
    try:
        for index, body in enumerate(bodies):
            start = time.perf_counter()
            conn.request("POST", "/api/v1/transactions", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            elapsed = time.perf_counter() - start
            if response.status != 200:
                raise SystemExit(f"HTTP intake answered {response.status}: {data[:500]!r}")
            for r in json.loads(data)["results"]:
                decisions[r["decision"]] = decisions.get(r["decision"], 0) + 1
            if index >= warmup:
                times.append(elapsed)
    finally:
        conn.close()
    return {"times": times, "decisions": decisions}


# -- profiles ---------------------------------------------------------------------------------------------------


def spy_start(
    pids: list[int], folder: Path, rate: int = 250, seconds: float | None = None
) -> list[subprocess.Popen[bytes]]:
    """py-spy (``py-spy`` beside this Python) recording raw stacks of each process, threads holding the GIL and
    waiting ones alike, until stopped with SIGINT or for ``seconds``."""
    spy_bin = Path(sys.executable).with_name("py-spy")
    return [
        subprocess.Popen(
            [
                str(spy_bin),
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                *(["--duration", str(int(seconds))] if seconds else []),
                "--format",
                "raw",
                "--output",
                str(folder / f"spy-{pid}.txt"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def spy_stop(spies: list[subprocess.Popen[bytes]]) -> None:
    import signal

    for p in spies:
        p.send_signal(signal.SIGINT)
    for p in spies:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=60)


def spy_top(folder: Path, within: tuple[str, ...] = ("engine/", "channels/"), top: int = 20) -> dict[str, Any]:
    """From py-spy raw stacks: the share of busy samples in which each function of ``within`` is on the stack
    (inclusive), the ``top`` highest; plus the share by innermost library (what the leaf frames are)."""
    inclusive: dict[str, int] = {}
    leaf: dict[str, int] = {}
    total = 0
    for path in folder.glob("spy-*.txt"):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            count = int(n)
            total += count
            seen = set()
            for frame in stack.split(";"):
                name, _, where = frame.partition(" (")
                if any(w in where for w in within) and "site-packages" not in where:
                    key = f"{name} ({where.split(':')[0].split('/wt/')[-1].split('/', 1)[-1]})"
                    seen.add(key)
            for key in seen:
                inclusive[key] = inclusive.get(key, 0) + count
            last = stack.split(";")[-1].partition(" (")[2]
            lib = last.split("site-packages/")[-1].split("/")[0] if "site-packages/" in last else last.split(":")[0]
            leaf[lib] = leaf.get(lib, 0) + count
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]
    leaves = sorted(leaf.items(), key=lambda kv: -kv[1])[:10]
    return {
        "samples": total,
        "inclusive_percent": [[k, round(100 * v / total, 1)] for k, v in ranked] if total else [],
        "leaf_percent": [[k, round(100 * v / total, 1)] for k, v in leaves] if total else [],
    }
