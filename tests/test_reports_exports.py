"""What the report files can be trusted with: formulas neutralized (SPEC §2 rule 12) and any stored value reported
(rule 11, issue 15 item 1), read back by parsing the produced CSV and XLSX files.

A cell whose text begins, after any leading whitespace, with ``=``, ``+``, ``-`` or ``@``, or begins with a tab or
a carriage return, must come out of every CSV with a leading ``'`` and out of every XLSX as a plain string cell;
numbers stay numbers. A service-level value of ±Infinity, NaN or 1e300 already in the store is left out of its
mean and never makes a report answer 500.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert

from engine.reporting import submissions
from engine.reporting.fiscal import FiscalQuarter
from engine.reporting.formats import looks_like_formula
from engine.store.db import unit_of_work
from engine.store.models import ServiceLevel
from tests.dashboard_support import make_account, sign_in
from tests.helpers import write_config
from tests.reports_support import NEW_YORK, QuarterBuilder, ReportStack, build_stack, local

HOSTILE_NAME = '=HYPERLINK("http://evil.example","Passport")'
FREE_TEXTS = ['=HYPERLINK("http://evil.example","click")', "+1+cmd|' /C calc'!A0", "@SUM(1+1)", "\t=1+1",
              "  -2+3", "\r=1"]  # fmt: skip
SERVICES = {
    "ex-hostile": {"name": HOSTILE_NAME, "agency": "@Agency", "service_type": "administrative",
                   "bureau": "+Bureau", "service_provider": " -Provider", "flow": "a11-standard",
                   "channels": ["email"], "timezone": "America/New_York", "send_delay": "PT0S",
                   "contact_cooldown_days": 0, "sample_rate": 1.0},
}  # fmt: skip
Q4 = "fiscal_year=2026&quarter=4&service=ex-hostile"


@pytest.fixture
def stack(database_url: str, flows_dir: Path, tmp_path: Path) -> Iterator[ReportStack]:
    config = write_config(tmp_path / "config", SERVICES, {})
    made = build_stack(database_url, flows_dir, config, tmp_path / "instance")
    yield made
    made.rt.engine.dispose()


def build(stack: ReportStack) -> None:
    b = QuarterBuilder(stack.rt)
    for n, text in enumerate(FREE_TEXTS):
        ext = f"H{n}"
        b.report("ex-hostile", ext, local(NEW_YORK, 2026, 8, 1 + n, 10, 0), email=True, sli={"wait_seconds": -5})
        b.answer_invitation("ex-hostile", ext, {"satisfaction": 4, "trust": 4, "comments": text},
                            local(NEW_YORK, 2026, 8, 1 + n, 10, 30))  # fmt: skip
    with unit_of_work(stack.rt.sessions) as session:
        submissions.save_reflection(stack.rt, session, FiscalQuarter(2026, 4), "ex-hostile", "=1+1 we learned",
                                    "pm@example.gov")  # fmt: skip


def check_csv(body: bytes) -> list[list[str]]:
    """No cell a spreadsheet would take for a formula, unless it is a plain number (e.g. ``-5.00``)."""
    cells = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    for row in cells:
        for cell in row:
            if looks_like_formula(cell):
                float(cell)  # a number, not text: it stays as it is
    return cells


def check_xlsx(body: bytes) -> list[list[Any]]:
    sheet = load_workbook(io.BytesIO(body)).active
    assert sheet is not None
    values = []
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
        values.append([c.value for c in row])
    return values


def test_every_export_neutralizes_formulas_and_keeps_numbers(stack: ReportStack) -> None:
    build(stack)
    key = stack.key(["ex-hostile"])
    collection = check_csv(stack.client.get(f"/api/v1/reports/a11?{Q4}&format=csv", headers=key).get_data())
    header, (row,) = collection[0], collection[1:]
    cell = dict(zip(header, row, strict=True))
    assert cell["service_name"] == "'" + HOSTILE_NAME
    assert (cell["agency"], cell["bureau"], cell["service_provider"]) == ("'@Agency", "'+Bureau", "' -Provider")
    assert cell["reflection"] == "'=1+1 we learned"
    assert cell["sli_wait_seconds_mean"] == "-5.00"  # a negative number stays a number

    responses = check_csv(stack.client.get(f"/api/v1/reports/a11/responses?{Q4}", headers=key).get_data())
    # (the survey keeps a comment without its leading and trailing whitespace)
    assert sorted(r[-1] for r in responses[1:]) == sorted("'" + t.strip() for t in FREE_TEXTS)

    sheet = check_xlsx(stack.client.get(f"/api/v1/reports/a11?{Q4}&format=xlsx", headers=key).get_data())
    xlsx = dict(zip(sheet[0], sheet[1], strict=True))
    assert xlsx["service_name"] == HOSTILE_NAME and xlsx["reflection"] == "=1+1 we learned"
    assert xlsx["sli_wait_seconds_mean"] == -5.0 and xlsx["volume_of_customers"] == len(FREE_TEXTS)

    # The dashboard download, the CLI and a submission's files are the same neutralized bytes.
    make_account(stack.rt, "pm@example.gov", ("ex-hostile",))
    client = stack.app.test_client()
    sign_in(client, "pm@example.gov")
    download = client.get("/dashboard/services/ex-hostile/a11.csv?fiscal_year=2026&quarter=4")
    assert check_csv(download.get_data()) == collection
    cli = stack.cli("report", "a11", "--fiscal-year", "2026", "--quarter", "4", "--service", "ex-hostile")
    assert cli.returncode == 0 and check_csv(cli.stdout) == collection
    filed = stack.client.post("/api/v1/reports/a11/submissions", headers=key,
                              json={"fiscal_year": 2026, "quarter": 4, "service": "ex-hostile"}).get_json()  # fmt: skip
    base = f"/api/v1/reports/a11/submissions/{filed['id']}"
    check_csv(stack.client.get(base + "?format=csv", headers=key).get_data())
    check_csv(stack.client.get(base + "?format=responses", headers=key).get_data())
    check_xlsx(stack.client.get(base + "?format=xlsx", headers=key).get_data())


def test_a_cell_starting_with_a_tab_or_carriage_return_is_neutralized_too() -> None:
    from engine.reporting.formats import csv_lines

    body = "".join(csv_lines(["a", "b", "c", "d"], [["\t=1+1", "\rx", " @x", -3]])).encode()
    assert list(csv.reader(io.StringIO(body.decode())))[1] == ["'\t=1+1", "'\rx", "' @x", "-3"]


def test_stored_values_no_report_can_add_up_are_left_out_of_the_mean(stack: ReportStack) -> None:
    b = QuarterBuilder(stack.rt)
    bad = [math.inf, -math.inf, 1e300, -1e13]
    if stack.rt.engine.dialect.name == "postgresql":
        bad.append(math.nan)  # SQLite stores NaN as NULL, which the column refuses: it cannot be held there
    values = [10.0, 20.0, *bad]
    for n in range(len(values)):
        b.report("ex-hostile", f"N{n}", local(NEW_YORK, 2026, 8, 1 + n, 10, 0), email=True)
    ids = [b.transaction("ex-hostile", f"N{n}").id for n in range(len(values))]
    with unit_of_work(stack.rt.sessions) as session:
        for tx_id, value in zip(ids, values, strict=True):
            session.execute(insert(ServiceLevel).values(transaction_id=tx_id, name="wait_seconds", value=value))
    key = stack.key(["ex-hostile"])
    for fmt in ("csv", "json", "xlsx"):
        answer = stack.client.get(f"/api/v1/reports/a11?{Q4}&format={fmt}", headers=key)
        assert answer.status_code == 200, (fmt, answer.get_data(as_text=True))
    doc = stack.client.get(f"/api/v1/reports/a11?{Q4}&format=json", headers=key).get_json()
    (row,) = doc["rows"]
    assert row["sli_wait_seconds_mean"] == 15.0  # (10 + 20) / 2: the rest left out
    assert row["volume_of_customers"] == len(values)
    cli = stack.cli("report", "a11", "--fiscal-year", "2026", "--quarter", "4", "--format", "json")
    assert cli.returncode == 0, cli.stderr.decode()
    make_account(stack.rt, "pm@example.gov", ("ex-hostile",))
    client = stack.app.test_client()
    sign_in(client, "pm@example.gov")
    assert client.get("/dashboard/services/ex-hostile/a11.csv?fiscal_year=2026&quarter=4").status_code == 200
    assert client.get("/dashboard/services/ex-hostile?fiscal_year=2026&quarter=4").status_code == 200
    filed = stack.client.post("/api/v1/reports/a11/submissions", headers=key,
                              json={"fiscal_year": 2026, "quarter": 4, "service": "ex-hostile"})  # fmt: skip
    assert filed.status_code == 201
