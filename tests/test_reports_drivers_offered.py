"""§6.2's driver cells when a 2021 flow asks its choose-all driver questions after the satisfaction rating.

``flows validate`` lets the positive and negative driver questions follow the trust *or* the satisfaction rating
(A-11 280.7's third way, asked after a rating). A driver cell is ``0`` when that side's question was offered and not
chosen, empty when it was not asked (SPEC §6.2): a respondent who rated satisfaction 5 was offered "what went well"
whatever their trust rating, so its cells are 0 even when they left it unanswered. Through the real stack: an
enrolled kiosk posts its sessions to ``/api/v1/kiosk/responses``, the file is read from the report API.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.reporting.fiscal import fiscal_quarter
from tests.helpers import write_config
from tests.kiosk_support import enrolled, post_batch, session_of
from tests.reports_support import ReportStack, build_stack

ROOT = Path(__file__).resolve().parent.parent
FLOW = "a11-after-satisfaction"
SERVICES = {
    "kiosk-satisfied": {"name": "Field Office Visit", "agency": "Test Agency", "service_type": "benefits",
                        "flow": FLOW, "channels": ["kiosk"], "timezone": "America/New_York"},
}  # fmt: skip
OFFICES = {"NYC-01": {"name": "New York Passport Agency", "timezone": "America/New_York"}}


def after_satisfaction_flow() -> dict[str, Any]:
    """``a11-standard``'s satisfaction and trust, then ``a11-drivers``' two choose-all questions shown after the
    satisfaction rating, then the free text."""
    standard = yaml.safe_load((ROOT / "flows" / "a11-standard.yaml").read_text())
    drivers = yaml.safe_load((ROOT / "flows" / "a11-drivers.yaml").read_text())
    choose = [q for q in drivers["questions"] if q["a11"] in ("drivers_positive", "drivers_negative")]
    for question in choose:
        question["show_if"]["question"] = "satisfaction"
    keep = [q for q in standard["questions"] if q["a11"] in ("satisfaction", "trust")]
    comments = [q for q in standard["questions"] if q["a11"] == "free_text"]
    standard.update(id=FLOW, version="1", title="After Satisfaction", driver_form="positive_negative",
                    positive_from=4, questions=[*keep, *choose, *comments])  # fmt: skip
    return dict(standard)


@pytest.fixture
def stack(database_url: str, flows_dir: Path, tmp_path: Path) -> Iterator[ReportStack]:
    flows = tmp_path / "flows"
    flows.mkdir()
    for source in flows_dir.glob("*.yaml"):
        (flows / source.name).write_text(source.read_text())
    (flows / f"{FLOW}.yaml").write_text(yaml.safe_dump(after_satisfaction_flow(), sort_keys=False))
    config = write_config(tmp_path / "config", SERVICES, OFFICES)
    built = build_stack(database_url, flows, config, tmp_path / "instance")
    yield built
    built.rt.engine.dispose()


def test_a_driver_question_shown_after_the_satisfaction_rating_is_offered(stack: ReportStack) -> None:
    _, credential = enrolled(stack.rt, "kiosk-satisfied", "NYC-01")
    at = datetime.now(UTC) - timedelta(minutes=30)
    satisfied = session_of([("satisfaction", 5), ("trust", 2)], at=at, completed=False, flow=FLOW, version="1")
    unsatisfied = session_of([("satisfaction", 2), ("trust", 5), ("could_be_better", ["ease"])],
                             at=at + timedelta(minutes=5), flow=FLOW, version="1")  # fmt: skip
    reply = post_batch(stack.client, credential, [satisfied, unsatisfied])
    assert [r["status"] for r in reply.get_json()["results"]] == ["stored", "stored"], reply.get_json()

    quarter = fiscal_quarter(at, stack.rt.catalog.services["kiosk-satisfied"].timezone)
    query = f"fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}&service=kiosk-satisfied"
    key = stack.key(["kiosk-satisfied"])
    answer = stack.client.get(f"/api/v1/reports/a11/responses?{query}", headers=key)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    drivers = ("effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other")
    cells = [(r["question_1"], [r[f"positive_{d}"] for d in drivers], [r[f"negative_{d}"] for d in drivers])
             for r in rows]  # fmt: skip
    assert cells == [
        # Satisfaction 5: "what went well" was shown and left unanswered (0s); "what could be better" was not.
        ("2", ["0"] * 7, [""] * 7),
        # Satisfaction 2: "what could be better" answered; "what went well" not shown.
        ("5", [""] * 7, ["0", "1", "0", "0", "0", "0", "0"]),
    ]

    # The §6.1 row counts both respondents and the one driver chosen.
    file = stack.client.get(f"/api/v1/reports/a11?{query}&format=csv", headers=key).get_data(as_text=True)
    (row,) = list(csv.DictReader(io.StringIO(file)))
    assert (row["channel"], row["survey_title"], row["volume_of_respondents"]) == (
        "self_service_kiosk",
        "After Satisfaction",
        "2",
    )
    assert ([row[f"positive_{d}"] for d in drivers], [row[f"negative_{d}"] for d in drivers]) == (
        ["0"] * 7, ["0", "1", "0", "0", "0", "0", "0"])  # fmt: skip
