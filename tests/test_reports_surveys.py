"""A quarter reports the survey actually used (SPEC §6.1, issue 16 item 3): the flow version and PRA block
recorded with each transaction, invitation and response, never today's configuration.

One database, two configurations: ``sv-switch`` asks ``a11-standard`` and is then switched to ``a11-drivers`` in
the middle of FY2026 Q4; ``sv-own-pra`` carries its own PRA block. The quarter of the switch has one row per
channel and survey; the quarter before gives the same bytes before and after the switch.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from engine.store.db import unit_of_work
from engine.store.models import FlowVersion, Invitation, KioskDevice, Response, Survey, Transaction
from engine.surveys.flows import parse_flow
from engine.surveys.sessions import Given, SurveySessions
from tests.dashboard_support import rows_by_first_cell
from tests.helpers import write_config
from tests.reports_support import NEW_YORK, QuarterBuilder, ReportStack, build_stack, local

COMMON = {"agency": "Department of State", "service_type": "administrative", "send_delay": "PT0S",
          "contact_cooldown_days": 0, "default_language": "en", "sample_rate": 1.0, "channels": ["email"],
          "timezone": "America/New_York"}  # fmt: skip
OWN_PRA = {"omb_control_number": "1405-0123", "expiration_date": "2028-06-30", "burden_minutes": 3,
           "burden_statement": "Public reporting burden is estimated to average 3 minutes per response."}  # fmt: skip
ROOT = Path(__file__).resolve().parent.parent
OFFICES = {"NYC-01": {"name": "New York Passport Agency", "timezone": "America/New_York"}}


def services(switch_flow: str) -> dict[str, Any]:
    return {
        "sv-switch": {**COMMON, "name": "Passport Renewal", "flow": switch_flow, "bureau": "Consular Affairs",
                      "service_provider": "Passport Services", "transaction_point": "post_service_journey"},
        "sv-own-pra": {**COMMON, "name": "Visa Appointments", "flow": "a11-standard", "pra": OWN_PRA},
    }  # fmt: skip


@pytest.fixture
def stacks(database_url: str, flows_dir: Path, tmp_path: Path) -> Iterator[list[Any]]:
    made: list[ReportStack] = []

    def make(switch_flow: str) -> ReportStack:
        config = write_config(tmp_path / f"config-{switch_flow}", services(switch_flow), OFFICES)
        stack = build_stack(database_url, flows_dir, config, tmp_path / "instance")
        made.append(stack)
        return stack

    yield [make]
    for stack in made:
        stack.rt.engine.dispose()


def a11(stack: ReportStack, key: dict[str, str], query: str) -> bytes:
    answer = stack.client.get(f"/api/v1/reports/a11?{query}", headers=key)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_data()


def rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def test_a_switched_service_reports_a_row_per_survey_and_past_quarters_do_not_move(stacks: Any) -> None:
    (make,) = stacks
    before = make("a11-standard")
    key = before.key(["sv-switch", "sv-own-pra"])
    b = QuarterBuilder(before.rt)
    ny = lambda *p: local(NEW_YORK, 2026, *p)  # noqa: E731
    # FY2026 Q3, on a11-standard: one answered, one not.
    b.report("sv-switch", "T1", ny(5, 4, 10, 0), email=True, office="NYC-01")
    b.answer_invitation("sv-switch", "T1", {"satisfaction": 4, "trust": 5}, ny(5, 4, 10, 30))
    b.report("sv-switch", "T2", ny(5, 5, 10, 0), email=True)
    # FY2026 Q4 before the switch.
    b.report("sv-switch", "S1", ny(7, 10, 10, 0), email=True, office="NYC-01")
    b.answer_invitation("sv-switch", "S1", {"satisfaction": 2, "trust": 3}, ny(7, 10, 10, 30))
    b.report("sv-own-pra", "O1", ny(7, 11, 10, 0), email=True)
    b.answer_invitation("sv-own-pra", "O1", {"satisfaction": 5, "trust": 5}, ny(7, 11, 10, 30))
    q3 = "fiscal_year=2026&quarter=3&service=sv-switch"
    q3_csv, q3_json = a11(before, key, q3 + "&format=csv"), a11(before, key, q3 + "&format=json")
    q3_office = a11(before, key, q3 + "&format=csv&by=office")

    after = make("a11-drivers")
    b = QuarterBuilder(after.rt)
    # FY2026 Q4 after the switch: thumbs up with a driver; a transaction not answered.
    b.report("sv-switch", "D1", ny(8, 10, 10, 0), email=True, office="NYC-01")
    b.answer_invitation("sv-switch", "D1", {"trust": 5, "went_well": ("effectiveness", "humanity")}, ny(8, 10, 10, 30))
    b.report("sv-switch", "D2", ny(8, 11, 10, 0), email=True)

    # The quarter before the switch: the same bytes.
    assert a11(after, key, q3 + "&format=csv") == q3_csv
    assert a11(after, key, q3 + "&format=json") == q3_json
    assert a11(after, key, q3 + "&format=csv&by=office") == q3_office
    (q3_row,) = rows(q3_csv)
    assert (q3_row["survey_title"], q3_row["survey_type"], q3_row["omb_control_number"]) == (
        "Customer Experience Survey", "likert_scale", "1090-0011")  # fmt: skip

    # The quarter of the switch: one email row per survey, each described by its own flow version and PRA block.
    q4 = rows(a11(after, key, "fiscal_year=2026&quarter=4&format=csv"))
    switch = [r for r in q4 if r["service_slug"] == "sv-switch"]
    assert [(r["channel"], r["survey_title"], r["survey_type"], r["omb_control_number"]) for r in switch] == [
        ("email", "Customer Experience Survey", "likert_scale", "1090-0011"),
        ("email", "Customer Feedback", "thumbs_up_down", "1090-0012"),
    ]
    standard, drivers = switch
    assert standard["trust_question_text"] == "This interaction increased my trust in Passport Renewal."
    assert drivers["trust_question_text"] == "This interaction increased my trust in Passport Renewal."
    assert (standard["volume_of_customers"], standard["volume_of_respondents"]) == ("1", "1")
    assert (drivers["volume_of_customers"], drivers["volume_of_respondents"]) == ("2", "1")
    assert (standard["satisfaction_2"], standard["satisfaction_n"], standard["trust_mean"]) == ("1", "1", "3.00")
    assert (drivers["satisfaction_n"], drivers["trust_5"], drivers["trust_n"]) == ("", "1", "1")
    assert (standard["positive_effectiveness"], drivers["positive_effectiveness"]) == ("", "1")
    assert (drivers["positive_humanity"], drivers["positive_other"], drivers["negative_humanity"]) == ("1", "0", "0")
    for row in switch:
        assert (row["transaction_point"], row["bureau"], row["service_provider"]) == (
            "post_service_journey", "Consular Affairs", "Passport Services")  # fmt: skip
    (own,) = [r for r in q4 if r["service_slug"] == "sv-own-pra"]
    assert own["omb_control_number"] == "1405-0123" and own["transaction_point"] == "post_interaction"

    # By office: still a row per survey, split by office.
    by_office = rows(a11(after, key, "fiscal_year=2026&quarter=4&format=csv&by=office&service=sv-switch"))
    assert [(r["survey_title"], r["office"], r["volume_of_customers"]) for r in by_office] == [
        ("Customer Experience Survey", "NYC-01", "1"),
        ("Customer Feedback", "NYC-01", "1"),
        ("Customer Feedback", "", "1"),
    ]

    # What was recorded: each transaction, invitation and response names its survey.
    with after.rt.sessions() as session:
        surveys = {s.id: s for s in session.execute(select(Survey)).scalars()}
        tx_surveys = dict(session.execute(select(Transaction.external_id, Transaction.survey_id)).tuples().all())
        assert surveys[tx_surveys["S1"]].omb_control_number == "1090-0011"
        assert surveys[tx_surveys["D1"]].omb_control_number == "1090-0012"
        assert surveys[tx_surveys["O1"]].omb_control_number == "1405-0123"
        assert surveys[tx_surveys["O1"]].burden_minutes == 3
        invited = session.execute(select(Invitation.transaction_id, Invitation.survey_id)).tuples().all()
        ids = dict(session.execute(select(Transaction.id, Transaction.survey_id)).tuples().all())
        assert all(survey == ids[tx] for tx, survey in invited)
        answered = session.execute(select(Response.transaction_id, Response.survey_id)).tuples().all()
        assert answered and all(survey == ids[tx] for tx, survey in answered)


def way_3_flow() -> Any:
    """A 2021 flow asking both choose-all driver questions to every respondent (the policy's "way 3")."""
    raw = yaml.safe_load((ROOT / "flows" / "a11-standard.yaml").read_text())
    drivers = yaml.safe_load((ROOT / "flows" / "a11-drivers.yaml").read_text())
    choose = [q for q in drivers["questions"] if q["a11"] in ("drivers_positive", "drivers_negative")]
    for question in choose:
        question.pop("show_if")
    keep = [q for q in raw["questions"] if q["a11"] in ("satisfaction", "trust")]
    comments = [q for q in raw["questions"] if q["a11"] == "free_text"]
    raw.update(id="a11-way3", version="1", title="Way 3 Survey", driver_form="positive_negative",
               questions=[*keep, *choose, *comments])  # fmt: skip
    return parse_flow(raw, "way 3")


def test_way_3_reports_both_driver_sides_of_every_respondent(stacks: Any) -> None:
    """Both choose-all questions asked to everyone: every driver of both sides has its column, humanity and other
    included, in the §6.1 row of the survey used and in the §6.2 file (0 offered, 1 chosen, on both sides)."""
    (make,) = stacks
    stack = make("a11-standard")
    rt = stack.rt
    flow = way_3_flow()
    sessions = SurveySessions(rt)
    at = local(NEW_YORK, 2026, 8, 3, 10, 0)
    answers = [
        {"satisfaction": 5, "trust": 4, "went_well": ("humanity", "other"), "could_be_better": ("ease",)},
        {"satisfaction": 2, "trust": 2, "could_be_better": ("humanity", "employee")},
    ]
    ids = []
    with unit_of_work(rt.sessions) as session:
        version = FlowVersion(flow_id=flow.id, version=flow.version, content_hash=flow.content_hash,
                              title=flow.title, definition=flow.definition)  # fmt: skip
        device = KioskDevice(service_id=rt.service_ids["sv-switch"], office_id=rt.office_ids["NYC-01"],
                             name="Lobby tablet", languages=["en"], created_at=at, enrolled_at=at)  # fmt: skip
        session.add_all([version, device])
        session.flush()
        for given in answers:
            response = sessions.start_session(session, "sv-switch", "kiosk", "en", kiosk_device_id=device.id,
                                              office_id=device.office_id, client_uuid=uuid.uuid4(), started_at=at,
                                              flow_version_id=version.id)  # fmt: skip
            for qid, value in given.items():
                sessions.record(session, response, flow.question(qid),
                                Given(choices=value) if isinstance(value, tuple) else Given(value=value), at)  # fmt: skip
            ids.append(str(response.id))
    key = stack.key(["sv-switch"])
    q4 = rows(a11(stack, key, "fiscal_year=2026&quarter=4&format=csv&service=sv-switch"))
    (kiosk,) = [r for r in q4 if r["channel"] == "self_service_kiosk"]
    assert (kiosk["survey_title"], kiosk["survey_type"], kiosk["volume_of_respondents"]) == (
        "Way 3 Survey",
        "likert_scale",
        "2",
    )
    drivers = ("effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other")
    assert [kiosk[f"positive_{d}"] for d in drivers] == ["0", "0", "0", "0", "1", "0", "1"]
    assert [kiosk[f"negative_{d}"] for d in drivers] == ["0", "1", "0", "0", "1", "1", "0"]
    assert (kiosk["satisfaction_n"], kiosk["trust_mean"], kiosk["effectiveness_n"]) == ("2", "3.00", "")
    body = stack.client.get("/api/v1/reports/a11/responses?fiscal_year=2026&quarter=4&service=sv-switch",
                            headers=key).get_data(as_text=True)  # fmt: skip
    file_rows = {r[0]: r[1:] for r in csv.reader(io.StringIO(body))}
    assert file_rows[ids[0]] == ["4", "0", "0", "0", "0", "1", "0", "1", "0", "1", "0", "0", "0", "0", "0", ""]
    assert file_rows[ids[1]] == ["2", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "1", "1", "0", ""]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0007_goes_down_and_up_on_both_backends(backend: str, tmp_path: Path) -> None:
    """Downgrading 0007 restores 0004's triggers (without the survey copies) and drops its tables and columns;
    upgrading again matches the models (``alembic check``). On a database of its own, not the shared one."""
    from alembic import command
    from sqlalchemy import inspect, text

    from engine.store import migrate
    from engine.store.db import make_engine
    from tests import conftest

    with conftest.own_database(backend, tmp_path, "survey_engine_m7") as (_, url, _admin):
        engine = make_engine(url)
        listing = ("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal" if backend == "postgresql"
                   else "SELECT name FROM sqlite_master WHERE type = 'trigger'")  # fmt: skip

        def triggers() -> set[str]:
            with engine.connect() as conn:
                return set(conn.execute(text(listing)).scalars())

        def run(step: str, revision: str) -> None:
            cfg = migrate.alembic_config(engine)
            with engine.begin() as connection:
                cfg.attributes["connection"] = connection
                getattr(command, step)(cfg, revision)

        try:
            migrate.upgrade(engine, "0004")
            at_0004 = triggers()
            migrate.upgrade(engine)
            assert triggers() == at_0004 and "survey_id" in {
                c["name"] for c in inspect(engine).get_columns("responses")
            }
            run("downgrade", "0004")
            assert triggers() == at_0004
            tables = set(inspect(engine).get_table_names())
            assert not tables & {"surveys", "submissions", "reflections"}
            assert "survey_id" not in {c["name"] for c in inspect(engine).get_columns("transactions")}
            migrate.upgrade(engine)
            cfg = migrate.alembic_config(engine)
            with engine.connect() as connection:
                cfg.attributes["connection"] = connection
                command.check(cfg)
        finally:
            engine.dispose()


def test_the_file_has_columns_for_every_rating_tag_and_driver_of_spec_6_1() -> None:
    """Every A-11 rating tag and driver §6.1 names has its columns, in its order, and is tallied."""
    from engine.reporting import a11 as collection
    from engine.reporting import what_counts
    from engine.store.models.reporting import TALLIED_TAGS

    ratings = ("satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency", "employee")
    drivers = ("effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other")
    assert what_counts.RATING_TAGS == TALLIED_TAGS == ratings
    assert drivers == what_counts.DRIVERS
    header = collection.columns(False, [])
    assert header[-3:] == ["bureau", "service_provider", "reflection"]
    points = [f"{t}_{s}" for t in ratings for s in ("1", "2", "3", "4", "5", "n", "mean", "agree_pct")]
    sides = [f"{side}_{d}" for side in ("positive", "negative") for d in drivers]
    start = header.index("satisfaction_1")
    assert header[start : start + len(points) + len(sides)] == points + sides
    assert set(what_counts.DRIVER_SIDES) == {"drivers_positive", "drivers_negative", "drivers_improve"}


def test_a_trust_statement_changed_with_omb_approval_is_reported_as_asked(database_url: str, flows_dir: Path,
                                                                           tmp_path: Path) -> None:  # fmt: skip
    """SPEC §2 rule 8: "I love {service}." passes only with ``omb_wording_approval``, and the §6.1 row's
    ``trust_question_text`` then shows the statement as asked (the service's name filled in), not the A-11 base."""
    flows = tmp_path / "flows"
    flows.mkdir()
    for source in flows_dir.glob("*.yaml"):
        (flows / source.name).write_text(source.read_text())
    raw = yaml.safe_load((ROOT / "flows" / "a11-standard.yaml").read_text())
    trust = next(q for q in raw["questions"] if q["a11"] == "trust")
    trust["text"] = "I love {service}."
    trust.pop("wording", None)
    trust["omb_wording_approval"] = "OMB agreed on 2026-09-15 that the trust statement may read 'I love {service}.'"
    raw.update(id="a11-approved", title="Approved Wording Survey")
    (flows / "a11-approved.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    config = write_config(tmp_path / "config", {"sv-love": {**COMMON, "name": "Visa Appointments",
                                                           "flow": "a11-approved"}}, OFFICES)  # fmt: skip
    stack = build_stack(database_url, flows, config, tmp_path / "instance")
    try:
        b = QuarterBuilder(stack.rt)
        b.report("sv-love", "L1", local(NEW_YORK, 2026, 8, 3, 10, 0), email=True)
        b.answer_invitation("sv-love", "L1", {"satisfaction": 5, "trust": 5}, local(NEW_YORK, 2026, 8, 3, 10, 30))
        (row,) = rows(a11(stack, stack.key(["sv-love"]), "fiscal_year=2026&quarter=4&format=csv"))
        assert (row["survey_title"], row["trust_question_text"], row["trust_n"]) == (
            "Approved Wording Survey",
            "I love Visa Appointments.",
            "1",
        )
    finally:
        stack.rt.engine.dispose()


def test_the_public_mean_of_a_switched_quarter_is_of_its_five_point_answers(stacks: Any) -> None:
    """A quarter filed with a 5-point trust row and a thumbs trust row (the service switched flows): the public
    page's trust mean is that of the 5-point answers; the thumbs answers (filed at 1 and 5, with no mean) count in
    the answers and the share agreeing, never in a mean (SPEC §6.1)."""
    (make,) = stacks
    before = make("a11-standard")
    b = QuarterBuilder(before.rt)
    ny = lambda *p: local(NEW_YORK, 2026, *p)  # noqa: E731
    b.report("sv-switch", "S1", ny(7, 10, 10, 0), email=True)
    b.answer_invitation("sv-switch", "S1", {"satisfaction": 2, "trust": 3}, ny(7, 10, 10, 30))
    after = make("a11-drivers")
    b = QuarterBuilder(after.rt)
    b.report("sv-switch", "D1", ny(8, 10, 10, 0), email=True)
    b.answer_invitation("sv-switch", "D1", {"trust": 5, "went_well": ("ease",)}, ny(8, 10, 10, 30))
    key = after.key(["sv-switch"])
    filed = after.client.post("/api/v1/reports/a11/submissions", headers=key,
                              json={"fiscal_year": 2026, "quarter": 4, "service": "sv-switch"})  # fmt: skip
    assert filed.status_code == 201, filed.get_data(as_text=True)
    page = after.client.get("/data/sv-switch")
    assert page.status_code == 200
    ratings = rows_by_first_cell(page.get_data(as_text=True), "table-ratings")
    # Points 1-5, answers, mean, share agreeing: the thumbs up is an answer that agrees, not a 5 on the scale.
    assert ratings["Trust"] == ["0", "0", "1", "0", "1", "2", "3.00", "50.0\u00a0%"]
    assert ratings["Satisfaction"] == ["0", "1", "0", "0", "0", "1", "2.00", "0.0\u00a0%"]
