"""SPEC §7 channel dispatch benchmark: K worker processes send due email and SMS invitations through local stand-ins.

    .venv/bin/python bench/channel_dispatch.py [--emails 10000] [--sms 2000] [--workers 2] [--batch N]
    .venv/bin/python bench/channel_dispatch.py --emails 0 --sms 0 --paced 600 --paced-rate 50 --workers 3

1. A fresh PostgreSQL database, migrated; a config folder of its own (temporary) with two services: ``bench-email``
   (channels [email]) and ``bench-sms`` (channels [sms], ``sms_mode: conversational``, one quiet minute placed
   12 hours away from now so that now is allowed). Both: sample_rate 1.0, send_delay PT0S, no cooldown.
2. A **stand-in** process (this script with ``--stand-in``, a ``ThreadingHTTPServer``, HTTP/1.1 keep-alive)
   answers at once: SendGrid ``POST /v3/mail/send`` with 202 and an ``X-Message-Id``; Twilio ``POST
   /2010-04-01/Accounts/<sid>/Messages.json`` with 201 JSON ``{"sid": "SM…", …}``. It counts requests, Mail Send
   personalizations (by their ``invitation_id`` custom arg) and Twilio messages (by ``To``: one phone number per
   invitation), so a double send shows there as well as in the database.
3. Phase *email*: N transactions of ``bench-email`` through the real intake (not timed); K processes (spawn), each
   with its own runtime (every channel of the entry-point group, the SDKs pointed at the stand-in), start on a
   common signal and run ``Dispatcher(rt).drain()``. Timed from the signal to the last worker's end. Phase *sms*:
   the same with M transactions of ``bench-sms`` (consent sms true).
4. Checked per phase: every invitation of the service ``sent``, ``attempts`` 1, exactly one ``sending`` delivery
   event each; the stand-in saw each invitation exactly once (email: personalizations by invitation id; SMS:
   messages by ``To``), and the number of Mail Send requests.
5. The throughput phases run with send rates far above what they reach (``bench/common.py`` ``FAST_SENDING``).
   Phase *paced* (``--paced N``): N more SMS with ``SURVEY_ENGINE_SEND_RATE_SMS=--paced-rate`` for every worker;
   the stand-in notes the moment of each message create, and the result gives the busiest one-second window and
   the mean rate from the first message to the last: with pacing, never above the rate (plus one tick's batch and
   5 % for the jitter of the moments the stand-in notes).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import common

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
FROM_NUMBER = "+12025550100"
PUBLIC_URL = "https://surveys.example.gov"
EMAIL_SERVICE = "bench-email"
SMS_SERVICE = "bench-sms"
OFFICE = "BENCH-01"

# -- config ------------------------------------------------------------------------------------------------------


def quiet_minute_away() -> dict[str, str]:
    """One quiet minute (the validator wants a range) 12 hours from now (UTC), so that now is allowed."""
    start = datetime.now(UTC) + timedelta(hours=12)
    end = start + timedelta(minutes=1)
    return {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}


def write_config(folder: Path) -> Path:
    import yaml

    common_fields = {
        "agency": "Benchmark Agency",
        "service_type": "administrative",
        "flow": "a11-standard",
        "sample_rate": 1.0,
        "send_delay": "PT0S",
        "contact_cooldown_days": 0,
        "default_language": "en",
        "timezone": "UTC",
        "support": {"phone": "+18775550100", "url": "https://example.gov/contact"},
    }
    services = {
        EMAIL_SERVICE: {
            **common_fields,
            "name": "Benchmark Email Service",
            "channels": ["email"],
            "sender": {"name": "Benchmark Agency", "reply_to": "cx@example.gov"},
        },
        SMS_SERVICE: {
            **common_fields,
            "name": "Benchmark SMS Service",
            "channels": ["sms"],
            "sms_mode": "conversational",
            "quiet_hours": quiet_minute_away(),
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "services.yaml").write_text(yaml.safe_dump({"services": services}, sort_keys=False))
    offices = {"offices": {OFFICE: {"name": "Benchmark Office", "timezone": "UTC"}}}
    (folder / "offices.yaml").write_text(yaml.safe_dump(offices, sort_keys=False))
    return folder


def provider_env(twilio_base: str, sendgrid_base: str | None = None) -> dict[str, str]:
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": twilio_base,
    }
    if sendgrid_base:
        env.update(
            {
                "SENDGRID_API_KEY": "SG.bench",
                "SENDGRID_FROM_EMAIL": "surveys@example.gov",
                "SENDGRID_API_HOST": sendgrid_base,
            }
        )
    return env


def engine_env(
    url: str, config_dir: Path, providers: dict[str, str], instance_dir: str | None = None
) -> dict[str, str]:
    return {
        **common.env_for(url, instance_dir),
        "SURVEY_ENGINE_CONFIG_DIR": str(config_dir),
        "SURVEY_ENGINE_PUBLIC_URL": PUBLIC_URL,
        **providers,
    }


def runtime_with(env: dict[str, str]) -> Any:
    from engine.runtime import build_runtime
    from engine.settings import load_settings

    rt = build_runtime(load_settings(env))
    rt.sync_catalog()
    return rt


def phone_of(n: int) -> str:
    # +1 212 2xx xxxx: valid North American numbers, one per transaction.
    return f"+1212{2000000 + n % 8000000:07d}"


def items(service: str, n: int, start: int = 0, prefix: str | None = None) -> list[dict[str, Any]]:
    prefix = prefix or f"{service}-{uuid.uuid4().hex[:6]}"
    moment = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
    out = []
    for k in range(start, start + n):
        item: dict[str, Any] = {
            "id": f"{prefix}-{k:09d}",
            "service": service,
            "completed_at": moment,
            "touchpoint": "web",
            "office": OFFICE,
            "language": "en",
        }
        if service == SMS_SERVICE:
            item["contact"] = {"phone": phone_of(k), "timezone": "UTC"}
            item["consent"] = {"sms": True}
        else:
            item["contact"] = {"email": f"customer.{k}@mail.example.gov", "timezone": "UTC"}
        out.append(item)
    return out


def seed(rt: Any, service: str, n: int, start: int = 0) -> dict[str, int]:
    from engine.intake.submit import Intake
    from engine.store.db import unit_of_work

    intake = Intake(rt)
    decisions: Counter[str] = Counter()
    prefix = f"{service}-{uuid.uuid4().hex[:6]}"
    done = 0
    while done < n:
        size = min(1000, n - done)
        with unit_of_work(rt.sessions) as session:
            for r in intake.submit(session, items(service, size, start + done, prefix)):
                decisions[r["decision"]] += 1
        done += size
    return dict(decisions)


# -- the stand-in (SendGrid Mail Send and Twilio Message create, answering at once) -------------------------------


class StandIn:
    def __init__(self, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.mail_ids: Counter[str] = Counter()
        self.sms_to: Counter[str] = Counter()
        self.sms_moments: list[float] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # TCP_NODELAY: no 40 ms delayed-ACK stall per keep-alive request

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                if path.endswith("/Messages.json"):
                    from urllib.parse import parse_qs

                    form = parse_qs(body.decode())
                    to = (form.get("To") or [""])[0]
                    sid = "SM" + uuid.uuid4().hex
                    with stand_in.lock:
                        stand_in.counts["twilio_message_create"] += 1
                        stand_in.sms_to[to] += 1
                        stand_in.sms_moments.append(time.monotonic())
                    data = json.dumps(
                        {
                            "sid": sid,
                            "account_sid": ACCOUNT_SID,
                            "to": to,
                            "from": FROM_NUMBER,
                            "status": "queued",
                            "direction": "outbound-api",
                            "api_version": "2010-04-01",
                            "num_segments": "1",
                        }
                    ).encode()
                    self.reply(201, data, {"Content-Type": "application/json"})
                elif path == "/v3/mail/send":
                    ids = []
                    try:
                        for p in json.loads(body).get("personalizations", []):
                            ids.append((p.get("custom_args") or {}).get("invitation_id", ""))
                    except ValueError:
                        pass
                    with stand_in.lock:
                        stand_in.counts["mail_send"] += 1
                        stand_in.counts["personalizations"] += len(ids)
                        stand_in.mail_ids.update(ids)
                    self.reply(202, b"", {"X-Message-Id": uuid.uuid4().hex[:22]})
                else:
                    with stand_in.lock:
                        stand_in.counts["other:" + path[:60]] += 1
                    self.reply(404, b"{}", {"Content-Type": "application/json"})

            def do_GET(self) -> None:
                if self.path == "/__stats":
                    self.reply(200, json.dumps(stand_in.stats()).encode(), {"Content-Type": "application/json"})
                elif self.path == "/__reset":
                    stand_in.reset()
                    self.reply(200, b"{}", {"Content-Type": "application/json"})
                else:
                    self.reply(404, b"{}", {})

            def reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                # Headers and body in one write (two small writes would meet Nagle and delayed ACK).
                self._headers_buffer.append(b"\r\n" + data)
                self.flush_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "counts": dict(self.counts),
                "mail_invitations": len(self.mail_ids),
                "mail_invitations_seen_twice": sum(1 for c in self.mail_ids.values() if c > 1),
                "sms_numbers": len(self.sms_to),
                "sms_numbers_seen_twice": sum(1 for c in self.sms_to.values() if c > 1),
                "sms_pacing": pacing_summary(self.sms_moments),
            }

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.mail_ids.clear()
            self.sms_to.clear()
            self.sms_moments.clear()

    def start_thread(self) -> StandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pacing_summary(moments: list[float]) -> dict[str, Any]:
    """The busiest one-second window of message creates, and the mean rate from the first to the last."""
    if len(moments) < 2:
        return {"messages": len(moments)}
    ordered = sorted(moments)
    busiest, j = 0, 0
    for i, start in enumerate(ordered):
        while j < len(ordered) and ordered[j] < start + 1.0:
            j += 1
        busiest = max(busiest, j - i)
    span = ordered[-1] - ordered[0]
    return {"messages": len(ordered), "span_s": round(span, 3), "mean_per_s": round((len(ordered) - 1) / span, 2),
            "busiest_1s_window": busiest}  # fmt: skip


def serve_stand_in(port: int) -> None:
    stand_in = StandIn(port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    stand_in.server.serve_forever()


def start_stand_in_process() -> tuple[subprocess.Popen[bytes], str]:
    port = common.free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--stand-in", "--port", str(port)], cwd=common.ROOT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            stand_in_get(base, "/__stats")
            return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the stand-in did not start")


def stand_in_get(base: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + path, timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


# -- workers -----------------------------------------------------------------------------------------------------


def due_left(rt: Any) -> int:
    from sqlalchemy import func, select

    from engine.store.models import Invitation, InvitationState

    with rt.sessions() as session:
        query = select(func.count()).where(Invitation.state == InvitationState.SCHEDULED)
        return int(session.execute(query).scalar_one())


def worker(env: dict[str, str], index: int, batch: int | None, ready: Any, start: Any, results: Any) -> None:
    paced = "BENCH_PACED" in env
    try:
        from engine.delivery.dispatch import Dispatcher

        rt = runtime_with(env)
        dispatcher = Dispatcher(rt, worker=f"bench-{index}-{os.getpid()}", batch=batch)
        ready.release()
        start.wait()
        t0 = time.time()
        stats = dispatcher.drain()
        while paced and (stats.claimed or due_left(rt)):
            # Paced: the others' claims come back to the queue; keep taking slots until none is due (as every
            # worker's dispatch job does each second).
            more = dispatcher.drain()
            stats.claimed, stats.handed = more.claimed, stats.handed + more.handed
            for key, n in more.outcomes.items():
                stats.count(key, n)
            time.sleep(0.05)
        t1 = time.time()
        rt.engine.dispose()
        results.put(
            {
                "index": index,
                "pid": os.getpid(),
                "start": t0,
                "end": t1,
                "claimed": stats.claimed,
                "handed": stats.handed,
                "outcomes": {str(k): v for k, v in stats.outcomes.items()},
                "VmHWM_mb": round((common.vm_kb(os.getpid()) or 0) / 1024, 1),
            }
        )
    except BaseException as exc:
        results.put({"index": index, "error": repr(exc)})
        ready.release()
        raise


def verify(url: str, service_id: int, n: int) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    p = {"s": service_id}
    with engine.connect() as conn:
        states = dict(
            conn.execute(text("SELECT state, count(*) FROM invitations WHERE service_id = :s GROUP BY state"), p)
            .tuples()
            .all()
        )
        attempts = dict(
            conn.execute(text("SELECT attempts, count(*) FROM invitations WHERE service_id = :s GROUP BY attempts"), p)
            .tuples()
            .all()
        )
        sending = dict(
            conn.execute(
                text(
                    "SELECT c, count(*) FROM (SELECT i.id, count(e.id) AS c FROM invitations i LEFT JOIN delivery_events e "
                    "ON e.invitation_id = i.id AND e.event = 'sending' WHERE i.service_id = :s GROUP BY i.id) t GROUP BY c"
                ),
                p,
            )
            .tuples()
            .all()
        )
        providers = conn.execute(
            text("SELECT count(DISTINCT provider_id) FROM invitations WHERE service_id = :s"), p
        ).scalar_one()
    engine.dispose()
    checks = {
        "all_sent": states.get("sent", 0) == n and sum(states.values()) == n,
        "attempts_all_1": attempts == {1: n},
        "one_sending_event_each": sending == {1: n},
    }
    return {
        "states": {str(k): v for k, v in states.items()},
        "attempts": {str(k): v for k, v in attempts.items()},
        "sending_events_per_invitation": {str(k): v for k, v in sending.items()},
        "distinct_provider_ids": providers,
        "checks": checks,
    }


def phase(
    ctx: Any,
    env: dict[str, str],
    url: str,
    rt: Any,
    stand_in: str,
    service: str,
    n: int,
    k: int,
    batch: int | None,
    start_index: int,
    expected: int | None = None,
) -> dict[str, Any]:
    """``expected``: the service's invitations in all once this phase is done (default ``n``)."""
    stand_in_get(stand_in, "/__reset")
    t = time.perf_counter()
    decisions = seed(rt, service, n, start_index)
    seed_s = time.perf_counter() - t
    print(f"[{service}] seeded {n} in {seed_s:.1f} s: {decisions}", file=sys.stderr, flush=True)
    if decisions.get("scheduled") != n:
        raise SystemExit(f"expected every transaction scheduled, got {decisions}")
    reports, signal_at = common.released_together(ctx, worker, [(env, i, batch) for i in range(k)])
    elapsed = max(r["end"] for r in reports) - signal_at
    seen = stand_in_get(stand_in, "/__stats")
    check = verify(url, rt.service_ids[service], expected or n)
    if service == EMAIL_SERVICE:
        check["checks"]["stand_in_each_once"] = (
            seen["mail_invitations"] == n
            and seen["mail_invitations_seen_twice"] == 0
            and seen["counts"].get("personalizations") == n
        )
    else:
        check["checks"]["stand_in_each_once"] = (
            seen["sms_numbers"] == n
            and seen["sms_numbers_seen_twice"] == 0
            and seen["counts"].get("twilio_message_create") == n
        )
    check["ok"] = all(check["checks"].values())
    reports.sort(key=lambda r: r["index"])
    return {
        "service": service,
        "invitations": n,
        "seed_s": round(seed_s, 2),
        "elapsed_s": round(elapsed, 3),
        "invitations_per_s": round(n / elapsed, 1),
        "workers": reports,
        "stand_in": seen,
        "verify": check,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=10000, help="due email invitations (default 10,000)")
    parser.add_argument("--sms", type=int, default=2000, help="due SMS invitations (default 2,000)")
    parser.add_argument("--workers", "-k", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None, help="Dispatcher claim size (default: the engine's)")
    parser.add_argument("--paced", type=int, default=0, help="due SMS for the paced phase (default 0: none)")
    parser.add_argument("--paced-rate", type=float, default=50.0, help="SURVEY_ENGINE_SEND_RATE_SMS there (50)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--stand-in", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stand_in:
        serve_stand_in(args.port)
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench_channel_dispatch_"))
    config_dir = write_config(workdir / "config")
    stand_proc, stand_base = start_stand_in_process()
    ctx = mp.get_context("spawn")
    phases = []
    try:
        with common.database("postgresql", "channel_dispatch", keep=args.keep) as url:
            pg = common.pg_version(url)
            env = engine_env(url, config_dir, provider_env(stand_base, stand_base), str(workdir / "instance"))
            rt = runtime_with(env)
            if args.emails:
                phases.append(
                    phase(ctx, env, url, rt, stand_base, EMAIL_SERVICE, args.emails, args.workers, args.batch, 0)
                )
            if args.sms:
                phases.append(phase(ctx, env, url, rt, stand_base, SMS_SERVICE, args.sms, args.workers, args.batch, 0))
            if args.paced:
                paced_env = {**env, "SURVEY_ENGINE_SEND_RATE_SMS": str(args.paced_rate), "BENCH_PACED": "1"}
                paced = phase(ctx, paced_env, url, rt, stand_base, SMS_SERVICE, args.paced, args.workers, args.batch,
                              args.sms, expected=args.sms + args.paced)  # fmt: skip
                summary = paced["stand_in"]["sms_pacing"]
                paced["rate"] = args.paced_rate
                # The rate, plus one tick's batch (engine/delivery/pacing.py TICK: a tenth of the rate) and 5 % for the moments
                # as the stand-in notes them (its threads, the workers and PostgreSQL share the 2 cores).
                allowed = args.paced_rate + max(1, math.ceil(args.paced_rate * 0.15))
                paced["verify"]["checks"]["rate_held"] = summary.get("busiest_1s_window", 0) <= allowed
                paced["verify"]["ok"] = all(paced["verify"]["checks"].values())
                phases.append(paced)
            rt.engine.dispose()
    finally:
        stand_proc.send_signal(signal.SIGTERM)
        stand_proc.wait(timeout=10)
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    result = {"params": vars(args), "postgresql": pg, "phases": phases, "ok": all(p["verify"]["ok"] for p in phases)}
    path = common.write_result("channel_dispatch", result)
    print()
    for p in phases:
        kind = "email" if p["service"] == EMAIL_SERVICE else "sms"
        target = 2000 if kind == "email" else 200
        counts = p["stand_in"]["counts"]
        if "rate" in p:
            s = p["stand_in"]["sms_pacing"]
            print(
                f"paced sms at {p['rate']}/s: {p['invitations']} due, {args.workers} workers -> mean "
                f"{s.get('mean_per_s')}/s over {s.get('span_s')} s, busiest one-second window "
                f"{s.get('busiest_1s_window')}; checks {p['verify']['checks']} -> "
                f"{'OK' if p['verify']['ok'] else 'FAILED'}"
            )
            continue
        print(
            f"{kind}: {p['invitations']} due, {args.workers} workers, drained in {p['elapsed_s']:.2f} s -> "
            f"{p['invitations_per_s']}/s (SPEC §7: >= {target}/s)"
        )
        print(f"  stand-in: {counts}; checks {p['verify']['checks']} -> {'OK' if p['verify']['ok'] else 'FAILED'}")
        for r in p["workers"]:
            print(
                f"  worker {r['index']} (pid {r['pid']}): handed {r['handed']} in {r['end'] - r['start']:.2f} s, "
                f"peak RSS {r['VmHWM_mb']} MB, outcomes {r['outcomes']}"
            )
    print(f"PostgreSQL {pg}\nresult: {path.relative_to(common.ROOT)}")
    if not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
