"""Filing a large quarter (SPEC §6 "Submissions", §7's 150 MB): peak memory and time of one filing in one process.

Files one service's FY2027 Q1 of the database ``reports.py --keep`` leaves (10 million answers over four services,
about 300,000 respondents each), the way the dashboard, the API and the CLI file it (``submissions.submit``: the
four files built and stored), then rolls the filing back, so the database can be filed again. The process is fresh,
so its peak RSS (``VmHWM``) is the filing's, with the runtime it needs.

Usage (from the repository root)::

    .venv/bin/python bench/reports.py --keep                      # prints the database's URL
    .venv/bin/python bench/filing.py --url URL [--service bench-east]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import common
import reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a database left by `reports.py --keep`")
    parser.add_argument("--service", default="bench-east", choices=sorted(reports.SERVICES))
    args = parser.parse_args()

    from engine.reporting import submissions
    from engine.reporting.fiscal import FiscalQuarter

    rt = reports.runtime(args.url, reports.config_dir())
    before = common.vm_kb(os.getpid(), "VmRSS")
    started = time.perf_counter()
    with rt.sessions() as session:
        row = submissions.submit(rt, session, FiscalQuarter(2027, 1), args.service, "bench")
        sizes = {fmt: len(getattr(row, column)) for fmt, column in submissions.FILES.items()}
        served = getattr(submissions, "served", lambda stored: [stored])  # before 2026-12-05 it was stored plain
        responses = sum(len(piece) for piece in served(row.responses_csv))
        session.rollback()  # nothing kept: the database can be filed again
    seconds = time.perf_counter() - started
    result = {
        "service": args.service,
        "seconds": round(seconds, 3),
        "rss_before_mb": round((before or 0) / 1024, 1),
        "peak_rss_mb": round((common.vm_kb(os.getpid()) or 0) / 1024, 1),
        "stored_bytes": sizes,
        "responses_csv_bytes": responses,
    }
    rt.engine.dispose()
    print(json.dumps(result, indent=2))
    print(f"written to {common.write_result('filing', result)}")


if __name__ == "__main__":
    main()
