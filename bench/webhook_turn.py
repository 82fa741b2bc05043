"""SPEC §7 webhook turn benchmark: signed SMS replies in, the next prompt out, gunicorn (2 workers) on PostgreSQL.

    .venv/bin/python bench/webhook_turn.py [--rate 200] [--duration 30] [--warmup 5] [--workers 2]
                                           [--conversations N] [--timeout 10]

1. A fresh PostgreSQL database, migrated; a config folder of its own with the ``bench-sms`` service of
   ``bench/channel_dispatch.py`` (channels [sms], conversational, flow a11-standard: 7 likert questions then a
   comment, one quiet minute 12 hours away).
2. N conversations are opened for real: N transactions through ``Intake.submit`` (consent sms true, one phone
   number each), then ``Dispatcher(rt).drain()`` against a local Twilio stand-in (201 ``{"sid": "SM…"}``), so
   every invitation is ``sent`` and its first question is pending. N defaults to ceil(requests / 7), so no
   conversation runs past its last likert question during the run.
3. ``python -m gunicorn --workers 2 'engine.app:create_app()'`` with the SPEC §8 environment, that config, Twilio
   settings with a dummy base URL (no provider call happens on an inbound turn) and ``SURVEY_ENGINE_PUBLIC_URL``
   the URL the requests are signed for.
4. A second process (this script with ``--generate``) sends an open-loop load of ``POST /channels/sms/inbound``:
   request *i* scheduled at ``t0 + i / rate``; each a fresh ``MessageSid``, ``From`` = phone ``i mod N`` (so each
   conversation gets a reply every N / rate seconds and advances one question per reply), ``Body`` a digit 1–5,
   signed with ``X-Twilio-Signature`` as Twilio signs (all forms and signatures built before the clock starts).
   Latency from the scheduled send time to the end of the answer. An answer counts as a good turn when it is 200
   and its TwiML holds a ``<Message>`` (the next prompt). ``--warmup`` seconds at the same rate are not counted.
IVR gathers are not driven by this script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import channel_dispatch as cd
import common

PATH = "/channels/sms/inbound"


def ivr_requests(calls_file: str, total: int) -> tuple[list[str], list[dict[str, str]], list[bytes]]:
    """Request *i* answers the next question of call ``i mod N`` (step ``first + k * delta``) with a digit; the
    answer must hold the ``<Gather>`` of the step after it."""
    from twilio.request_validator import RequestValidator

    spec = json.loads(Path(calls_file).read_text())
    validator = RequestValidator(cd.AUTH_TOKEN)
    rng = random.Random(11)
    calls, delta = spec["calls"], spec["delta"]
    paths, forms, expect = [], [], []
    for i in range(total):
        call = calls[i % len(calls)]
        step = call["step"] + (i // len(calls)) * delta
        path = f"/channels/ivr/gather?response={call['response']}&step={step}"
        form = {"AccountSid": cd.ACCOUNT_SID, "CallSid": call["sid"], "From": call["from"], "To": cd.FROM_NUMBER,
                "CallStatus": "in-progress", "Digits": str(rng.randint(1, 5)), "FinishedOnKey": ""}  # fmt: skip
        form["_signature"] = validator.compute_signature(cd.PUBLIC_URL + path, {k: v for k, v in form.items()})
        paths.append(path)
        forms.append(form)
        expect.append(f"step={step + delta}".encode())
    return paths, forms, expect


async def generate(
    base: str, conversations: int, rate: float, duration: float, warmup: float, timeout: float,
    calls_file: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    import aiohttp
    from twilio.request_validator import RequestValidator

    total = int((warmup + duration) * rate)
    warm_n = int(warmup * rate)
    validator = RequestValidator(cd.AUTH_TOKEN)
    rng = random.Random(11)
    forms, headers = [], []
    paths: list[str] = [PATH] * total
    expect: list[bytes] = [b"<Message>"] * total
    if calls_file:
        paths, ivr_forms, expect = ivr_requests(calls_file, total)
        for form in ivr_forms:
            headers.append({"X-Twilio-Signature": form.pop("_signature")})
            forms.append(form)
    for i in range(total if not calls_file else 0):
        form = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": cd.ACCOUNT_SID,
            "From": cd.phone_of(i % conversations),
            "To": cd.FROM_NUMBER,
            "Body": str(rng.randint(1, 5)),
            "NumMedia": "0",
        }
        forms.append(form)
        headers.append({"X-Twilio-Signature": validator.compute_signature(cd.PUBLIC_URL + PATH, form)})
    latencies: list[float | None] = [None] * total
    send_lag: list[float] = [0.0] * total
    statuses: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    loop = asyncio.get_running_loop()

    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:

        async def one(i: int, scheduled: float) -> None:
            send_lag[i] = loop.time() - scheduled
            try:
                async with session.post(base + paths[i], data=forms[i], headers=headers[i]) as response:
                    body = await response.read()
                    status = str(response.status)
                    if status == "200" and expect[i] not in body:
                        status = "200-no-prompt"
            except TimeoutError:
                status = "timeout"
            except aiohttp.ClientError as exc:
                status = type(exc).__name__
            done = loop.time()
            if i >= warm_n:
                statuses[status] = statuses.get(status, 0) + 1
                if status == "200":
                    latencies[i] = done - scheduled

        t0, sent_end, finished = await common.open_loop(loop, total, rate, one)

    timeline = common.per_second(latencies, warm_n, total, rate)
    measured = sorted(x for x in latencies[warm_n:] if x is not None)
    ok = len(measured)
    lag = sorted(send_lag[warm_n:])
    usage = resource.getrusage(resource.RUSAGE_SELF)

    def ms(q: float) -> float | None:
        return round(common.percentile(measured, q) * 1000, 2) if ok else None  # type: ignore[operator]

    return {
        "scheduled": total - warm_n,
        "ok": ok,
        "statuses": statuses,
        "errors": (total - warm_n) - ok,
        "offered_rate": rate,
        "achieved_rate": round(ok / duration, 1),
        "latency_ms": {
            "p50": ms(50),
            "p90": ms(90),
            "p99": ms(99),
            "p999": ms(99.9),
            "max": round(measured[-1] * 1000, 2) if ok else None,
        },
        "generator_send_lag_ms": {
            "p50": round(common.percentile(lag, 50) * 1000, 2),  # type: ignore[operator]
            "p99": round(common.percentile(lag, 99) * 1000, 2),  # type: ignore[operator]
            "max": round(lag[-1] * 1000, 2),
        },
        "schedule_overrun_s": round(sent_end - (t0 + (total - 1) / rate), 3),
        "drain_after_last_send_s": round(finished - sent_end, 3),
        "latency_ms_per_second_p50_p99_max": timeline,
        "generator_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
    }


IVR_SERVICE = "bench-ivr"
IVR_NUMBER = "+12025550177"


def add_ivr_service(config_dir: Path) -> None:
    """``bench-ivr``: post-call IVR survey (flow a11-standard) reached by a redirect hand-off."""
    import yaml

    path = config_dir / "services.yaml"
    data = yaml.safe_load(path.read_text())
    data["services"][IVR_SERVICE] = {
        "name": "Benchmark IVR Service", "agency": "Benchmark Agency", "service_type": "administrative",
        "flow": "a11-standard", "channels": ["ivr"], "ivr_numbers": [IVR_NUMBER], "sample_rate": 1.0,
        "send_delay": "PT0S", "contact_cooldown_days": 0, "default_language": "en", "timezone": "UTC",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def open_calls(rt: Any, n: int) -> dict[str, Any]:
    """N post-call IVR calls walked (Flask test client, signed as Twilio signs) to their first question; the step
    increment between two questions, from one extra call answered twice."""
    import re
    import uuid

    from twilio.request_validator import RequestValidator

    from engine.app import create_app

    client = create_app(runtime=rt).test_client()
    validator = RequestValidator(cd.AUTH_TOKEN)
    action = re.compile(r'<Gather[^>]*action="([^"]+)"')

    def post(url: str, form: dict[str, str]) -> str:
        url = url.replace("&amp;", "&")
        sig = validator.compute_signature(url, form)
        reply = client.post(url[len(cd.PUBLIC_URL) :], data=form, headers={"X-Twilio-Signature": sig})
        if reply.status_code != 200:
            raise SystemExit(f"IVR set-up answered {reply.status_code}: {reply.get_data(as_text=True)[:300]}")
        return reply.get_data(as_text=True)

    def to_first_question(i: int) -> dict[str, Any]:
        sid, caller = "CA" + uuid.uuid4().hex, cd.phone_of(i)
        base = {"AccountSid": cd.ACCOUNT_SID, "CallSid": sid, "From": caller, "To": cd.FROM_NUMBER,
                "CallStatus": "in-progress", "Direction": "inbound"}  # fmt: skip
        body = post(f"{cd.PUBLIC_URL}/channels/ivr/voice?service={IVR_SERVICE}&transaction=ivr-{i}", base)
        for _ in range(5):
            found = action.search(body)
            if not found:
                raise SystemExit(f"IVR set-up: no <Gather> in {body[:300]}")
            url = found.group(1).replace("&amp;", "&")
            if "/channels/ivr/gather?" in url:
                query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
                return {"sid": sid, "from": caller, "response": query["response"], "step": int(query["step"])}
            body = post(url, {**base, "Digits": "1", "FinishedOnKey": ""})
        raise SystemExit("IVR set-up: never reached a question")

    calls = [to_first_question(i) for i in range(n)]
    probe = to_first_question(n)
    url = f"{cd.PUBLIC_URL}/channels/ivr/gather?response={probe['response']}&step={probe['step']}"
    base = {"AccountSid": cd.ACCOUNT_SID, "CallSid": probe["sid"], "From": probe["from"], "To": cd.FROM_NUMBER,
            "CallStatus": "in-progress"}  # fmt: skip
    found = action.search(post(url, {**base, "Digits": "4", "FinishedOnKey": ""}))
    assert found, "the answer to a question holds the next <Gather>"
    step = int(found.group(1).replace("&amp;", "&").rsplit("step=", 1)[1].split("&")[0])
    return {"calls": calls, "delta": step - probe["step"]}


def orchestrate(args: argparse.Namespace) -> None:
    from engine.delivery.dispatch import Dispatcher

    total = int((args.warmup + args.duration) * args.rate)
    # SMS: 7 likert replies a conversation; IVR: 6 answers a call, so every answer is followed by a likert question.
    n = args.conversations or math.ceil(total / (7 if args.turn == "sms" else 6))
    workdir = Path(tempfile.mkdtemp(prefix="bench_webhook_turn_"))
    config_dir = cd.write_config(workdir / "config")
    with common.database("postgresql", "webhook_turn", keep=args.keep) as db_url:
        pg = common.pg_version(db_url)
        calls_file = None
        if args.turn == "ivr":
            add_ivr_service(config_dir)
            env = cd.engine_env(db_url, config_dir, cd.provider_env("http://127.0.0.1:9"), str(workdir / "instance"))
            rt = cd.runtime_with(env)
            t = time.perf_counter()
            spec = open_calls(rt, n)
            seed_s = time.perf_counter() - t
            rt.engine.dispose()
            calls_file = str(workdir / "calls.json")
            Path(calls_file).write_text(json.dumps(spec))
            print(f"opened {n} IVR calls to their first question in {seed_s:.1f} s (step delta {spec['delta']})",
                  file=sys.stderr, flush=True)  # fmt: skip
        else:
            # Seed: open N conversations for real (intake, then dispatch through the Twilio stand-in).
            stand_in = cd.StandIn().start_thread()
            env = cd.engine_env(db_url, config_dir, cd.provider_env(stand_in.base_url), str(workdir / "instance"))
            rt = cd.runtime_with(env)
            t = time.perf_counter()
            decisions = cd.seed(rt, cd.SMS_SERVICE, n)
            stats = Dispatcher(rt).drain()
            seed_s = time.perf_counter() - t
            rt.engine.dispose()
            sent = stand_in.stats()
            stand_in.close()
            print(
                f"opened {n} SMS conversations in {seed_s:.1f} s: {decisions}, dispatch {dict(stats.outcomes)}, "
                f"stand-in {sent['counts']}",
                file=sys.stderr,
                flush=True,
            )
            if sent["sms_numbers"] != n:
                raise SystemExit("not every conversation was opened")

        port = common.free_port()
        base = f"http://127.0.0.1:{port}"
        server_env = cd.engine_env(db_url, config_dir, cd.provider_env("http://127.0.0.1:9"), str(workdir / "instance"))
        cmd = common.gunicorn_cmd(port, args.workers, args.worker_class, args.threads)
        log_path = workdir / "gunicorn.log"
        with common.server_process(cmd, server_env, port, log_path) as server:
            watch = common.WorkerWatch(server.pid)
            print(
                f"gunicorn {server.pid} workers {watch.workers}; {args.rate}/s for {args.warmup}+{args.duration} s "
                f"over {n} conversations",
                file=sys.stderr,
                flush=True,
            )
            gen_cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--generate",
                "--target",
                base,
                "--conversations",
                str(n),
                *common.load_options(args),
            ] + (["--calls-file", calls_file] if calls_file else [])
            generator = subprocess.Popen(gen_cmd, cwd=common.ROOT, stdout=subprocess.PIPE, text=True)
            spies = common.spy_start(watch.workers, workdir) if args.profile else []
            watch.start()
            watch.until_done(generator)
            out, _ = generator.communicate()
            common.spy_stop(spies)
            profile = common.spy_top(workdir) if args.profile else None
            if generator.returncode != 0:
                raise SystemExit(f"load generator failed ({generator.returncode})")
            load = json.loads(out.strip().splitlines()[-1])
            memory = watch.usage()
        rows = common.count_rows(db_url, "answers", "responses")
        answers, responses = rows["answers"], rows["responses"]

    log_tail = log_path.read_text(errors="replace").splitlines()[-20:]
    shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "params": vars(args),
        "postgresql": pg,
        "conversations": n,
        "seed_s": round(seed_s, 2),
        "turn": args.turn,
        "profile": profile,
        "gunicorn": {
            "cmd": " ".join(cmd[1:]),
            "workers": args.workers,
            "worker_class": args.worker_class,
            "threads": args.threads,
        },
        "load": load,
        "workers_memory": memory,
        "stored": {"answers": answers, "responses": responses},
        "gunicorn_log_tail": log_tail,
    }
    path = common.write_result("webhook_turn", result)
    lat = load["latency_ms"]
    print()
    print(
        f"{args.turn.upper()} turns: offered {load['offered_rate']}/s for {args.duration} s (+{args.warmup} s warm-up), "
        f"{n} conversations, {args.workers} gunicorn {args.worker_class} workers, PostgreSQL {pg}"
    )
    print(
        f"achieved {load['achieved_rate']} turns/s with a prompt; errors {load['errors']} of {load['scheduled']} "
        f"({load['statuses']})"
    )
    print(
        f"latency from scheduled send: p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms, "
        f"max {lat['max']} ms (SPEC §7: p99 <= 50 ms at 200/s)"
    )
    seconds = load.get("latency_ms_per_second_p50_p99_max") or []
    bad = [k for k, (_, p99, _) in enumerate(seconds) if p99 > 50]
    print(
        f"seconds with p99 > 50 ms: {len(bad)} of {len(seconds)}; generator send lag p99 "
        f"{load['generator_send_lag_ms']['p99']} ms"
    )
    for pid, m in memory.items():
        print(f"worker {pid}: peak RSS {m['VmHWM_mb']} MB, CPU {m['cpu_s']} s")
    print(f"stored: {answers} answers in {responses} responses (warm-up included)")
    if profile:
        print(f"py-spy of the workers ({profile['samples']} samples): inclusive share of our functions")
        for name, share in profile["inclusive_percent"]:
            print(f"  {share:>5} %  {name}")
        print("innermost frames by library: " + ", ".join(f"{k} {v} %" for k, v in profile["leaf_percent"]))
    print(f"result: {path.relative_to(common.ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second, fixed (default 200)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds at the same rate, not counted")
    parser.add_argument("--turn", choices=["sms", "ivr"], default="sms", help="an SMS reply or an IVR gather")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (as `web`: gthread)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn --threads (as `web`: 4)")
    parser.add_argument("--conversations", type=int, default=0, help="default: ceil(requests / 7)")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--profile", action="store_true", help="py-spy the workers: where a turn's time goes")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--calls-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        result = asyncio.run(
            generate(
                args.target, args.conversations, args.rate, args.duration, args.warmup, args.timeout, args.calls_file
            )
        )
        print(json.dumps(result))
        return
    orchestrate(args)


if __name__ == "__main__":
    main()
