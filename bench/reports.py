"""Benchmark of the §6.1 quarterly collection (SPEC §7): 10 million answers in one quarter on PostgreSQL.

Generates FY2027 Q1 (2026-10-01 .. 2026-12-31) for four services in four time zones with ``COPY ... FROM STDIN``
(no row inserts): 2,000,000 transactions (one service-level indicator each), 1,800,000 invitations (sent; 3 %
reported failed), 1,250,000 responses on SMS and email with 8 answers each (7 ratings and a comment on one in
ten) = 10,000,000 answers; 2.5 % of the transactions are test data and 1 % of the responses are flagged spam
(which must not count). The report summaries (``response_tallies``, ``invitation_tallies``,
``service_level_tallies``) are filled by their database triggers as the rows arrive, as in service. Then it
times ``engine.reporting.a11.collection`` for all services, the way the API and the CLI build the file:

- **cold**: the first build in a fresh process on a fresh connection right after the data was loaded and
  ANALYZEd (PostgreSQL's shared buffers and the OS page cache are not flushed: the machine is shared);
- **warm**: ``--repeat`` more builds in the same process (min, median, max).

Usage (from the repository root)::

    .venv/bin/python bench/reports.py [--answers 10000000] [--repeat 5] [--keep]

The result is written to ``bench/results/reports-<stamp>.json``; the figures measured here are in README.md.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import common
import yaml

SERVICES = {
    "bench-east": "America/New_York",
    "bench-central": "America/Chicago",
    "bench-mountain": "America/Denver",
    "bench-west": "America/Los_Angeles",
}
OFFICES = {f"OFF-{n:02d}": {"name": f"Office {n}", "timezone": "America/New_York"} for n in range(1, 21)}
QUARTER_START = datetime(2026, 10, 1, 12, tzinfo=UTC)
QUARTER_SECONDS = 90 * 24 * 3600
RATING_TAGS = ("satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency", "employee")
CHUNK = 20_000  # transactions per round of COPY (about 100,000 answers)


def config_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench_reports_config_"))
    services = {
        slug: {"name": slug.replace("-", " ").title(), "agency": "Benchmark Agency", "service_type": "administrative",
               "flow": "a11-standard", "channels": ["sms", "email"], "sample_rate": 1.0, "timezone": zone,
               "send_delay": "PT0S", "contact_cooldown_days": 0, "default_language": "en"}
        for slug, zone in SERVICES.items()
    }  # fmt: skip
    (folder / "services.yaml").write_text(yaml.safe_dump({"services": services}, sort_keys=False))
    (folder / "offices.yaml").write_text(yaml.safe_dump({"offices": OFFICES}, sort_keys=False))
    return folder


def env_for(url: str, config: Path) -> dict[str, str]:
    return {**common.env_for(url), "SURVEY_ENGINE_CONFIG_DIR": str(config)}


def runtime(url: str, config: Path) -> Any:
    from engine.runtime import build_runtime
    from engine.settings import load_settings

    rt = build_runtime(load_settings(env_for(url, config)))
    rt.sync_catalog()
    return rt


def _ts(moment: datetime) -> str:
    return moment.isoformat()


class Copier:
    """Text-format COPY into one table; the caller flushes every table in foreign-key order, chunk by chunk."""

    def __init__(self, cursor: Any, table: str, columns: tuple[str, ...]) -> None:
        self.cursor = cursor
        self.sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        self.buffer = io.StringIO()
        self.lines = 0
        self.total = 0

    def row(self, *values: Any) -> None:
        self.buffer.write("\t".join("\\N" if v is None else str(v) for v in values))
        self.buffer.write("\n")
        self.lines += 1

    def flush(self) -> None:
        if not self.lines:
            return
        with self.cursor.copy(self.sql) as copy:
            copy.write(self.buffer.getvalue())
        self.total += self.lines
        self.buffer = io.StringIO()
        self.lines = 0


def generate(url: str, rt: Any, answers_wanted: int, seed: int = 7) -> dict[str, int]:
    """Load the quarter with COPY; return the row counts."""
    import psycopg
    from sqlalchemy.engine import make_url

    rng = random.Random(seed)
    per_response = len(RATING_TAGS) + 1
    responses_n = answers_wanted // per_response
    transactions_n = int(responses_n * 1.6)
    invitations_n = int(transactions_n * 0.9)
    service_ids = [rt.service_ids[s] for s in SERVICES]
    office_ids = list(rt.office_ids.values())
    flow_version = rt.flow_version_ids["a11-standard"]
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    counts: dict[str, int] = {}
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        tx = Copier(cur, "transactions", ("id", "service_id", "external_id", "completed_at", "received_at", "office_id",
                    "language", "consent_sms", "consent_voice", "test", "decision", "channel", "source"))  # fmt: skip
        sli = Copier(cur, "service_levels", ("transaction_id", "name", "value"))
        inv = Copier(cur, "invitations", ("id", "transaction_id", "service_id", "channel", "state", "language",
                     "test", "created_at", "send_at", "send_by", "expires_at", "attempts", "sent_at",
                     "updated_at"))  # fmt: skip
        resp = Copier(cur, "responses", ("id", "service_id", "transaction_id", "invitation_id", "flow_version_id",
                      "office_id", "channel", "language", "started_at", "completed_at", "test",
                      "suspected_spam"))  # fmt: skip
        ans = Copier(cur, "answers", ("response_id", "question_id", "a11_tag", "value", "text", "answered_at"))
        answered = 0
        copiers = (tx, sli, inv, resp, ans)
        for n in range(transactions_n):
            if n and n % CHUNK == 0:
                for copier in copiers:
                    copier.flush()
            tid = uuid.uuid4()
            sid = service_ids[n % len(service_ids)]
            completed = QUARTER_START + timedelta(seconds=rng.randrange(QUARTER_SECONDS))
            test = n % 40 == 0  # 2.5 % test data
            channel = "sms" if n % 3 else "email"
            invited = n < invitations_n
            tx.row(tid, sid, f"T{n}", _ts(completed), _ts(completed), office_ids[n % len(office_ids)], "en",
                   "t", "f", "t" if test else "f", "scheduled" if invited else "no_channel",
                   channel if invited else None, "api")  # fmt: skip
            sli.row(tid, "wait_seconds", rng.randrange(10, 900))
            if not invited:
                continue
            iid = uuid.uuid4()
            sent = completed + timedelta(minutes=1)
            answers_now = answered < responses_n and n % 10 < 7
            state = "failed" if n % 33 == 0 else "answered" if answers_now else "delivered"
            inv.row(iid, tid, sid, channel, state, "en", "t" if test else "f", _ts(completed), _ts(sent),
                    _ts(completed + timedelta(hours=48)), _ts(sent + timedelta(hours=48)), 1, _ts(sent), _ts(sent))  # fmt: skip
            if not answers_now:
                continue
            answered += 1
            rid = uuid.uuid4()
            started = sent + timedelta(minutes=5)
            spam = n % 97 == 0
            resp.row(rid, sid, tid, iid, flow_version, office_ids[n % len(office_ids)], channel, "en", _ts(started),
                     _ts(started + timedelta(minutes=2)), "t" if test else "f", "t" if spam else "f")  # fmt: skip
            for tag in RATING_TAGS:
                ans.row(rid, tag, tag, rng.choice((1, 2, 3, 4, 4, 5, 5, 5)), None, _ts(started))
            text = "Quick and friendly, thank you." if n % 10 == 0 else None
            ans.row(rid, "comments", "free_text", None, text, _ts(started))
        for copier in copiers:
            copier.flush()
        conn.commit()
        for table in ("transactions", "service_levels", "invitations", "responses", "answers"):
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[table] = int(cur.fetchone()[0])  # type: ignore[index]
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE")
    return counts


def time_collection(url: str, config: Path, repeat: int) -> dict[str, Any]:
    """Build the §6.1 file in this process: the first build (cold) and ``repeat`` more (warm)."""
    from engine.reporting import a11, formats
    from engine.reporting.fiscal import FiscalQuarter

    rt = runtime(url, config)
    quarter = FiscalQuarter(2027, 1)
    timings = []
    rows = 0
    csv_bytes = 0
    for _ in range(repeat + 1):
        started = time.perf_counter()
        with rt.sessions() as session:
            collection = a11.collection(rt, session, quarter, None)
            body = formats.to_csv(collection)
        timings.append(time.perf_counter() - started)
        rows = len(collection.rows)
        csv_bytes = len(body.encode())
    rt.engine.dispose()
    warm = timings[1:]
    return {
        "rows": rows,
        "csv_bytes": csv_bytes,
        "cold_seconds": round(timings[0], 3),
        "warm_seconds": {
            "min": round(min(warm), 3),
            "median": round(statistics.median(warm), 3),
            "max": round(max(warm), 3),
            "all": [round(t, 3) for t in warm],
        },
        "respondents": sum(int(r["volume_of_respondents"] or 0) for r in collection.rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    parser.add_argument("--timing-only", metavar="URL", help="(internal) time an existing database in this process")
    parser.add_argument("--config", help="(internal) the config folder of --timing-only")
    args = parser.parse_args()
    if args.timing_only:
        print(json.dumps(time_collection(args.timing_only, Path(args.config), args.repeat)))
        return
    config = config_dir()
    with common.database("postgresql", "reports", keep=args.keep) as url:
        rt = runtime(url, config)
        started = time.perf_counter()
        counts = generate(url, rt, args.answers)
        load_seconds = time.perf_counter() - started
        rt.engine.dispose()
        print(f"loaded {counts} in {load_seconds:.0f} s", file=sys.stderr)
        # A fresh process, so nothing of the load stays in Python's memory or SQLAlchemy's caches.
        child = subprocess.run([sys.executable, __file__, "--timing-only", url, "--config", str(config),
                                "--repeat", str(args.repeat)], check=True, capture_output=True, text=True)  # fmt: skip
        timing = json.loads(child.stdout.strip().splitlines()[-1])
        result = {"backend": "postgresql", "pg_version": common.pg_version(url), "counts": counts,
                  "load_seconds": round(load_seconds, 1), "target_seconds": 2.0, **timing}  # fmt: skip
        path = common.write_result("reports", result)
        print(json.dumps(result, indent=2))
        print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
