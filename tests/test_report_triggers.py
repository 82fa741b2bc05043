"""The triggers that keep the report summaries are generated from the constants of what counts
(:mod:`engine.store.report_triggers`), and nothing drifts silently:

- with today's constants the generator gives, character for character, the SQL migrations 0003, 0004 and
  0007_surveys_used were written with (recorded in ``tests/data/report_triggers.json`` from their frozen text
  before they were made to call the generator), so databases migrated before and after hold the same triggers;
- a changed constant changes the generated SQL (and then the comparison above fails until a migration recreates
  the triggers of existing databases);
- a database migrated from empty holds exactly the generated triggers, no more, no fewer, on SQLite and
  PostgreSQL.

``tests/test_reports_summary.py`` proves what the triggers copy equals what the raw rows say, under today's
constants and under others.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from engine.reporting import what_counts as wc
from engine.store import report_triggers as rt
from engine.store.db import make_engine
from engine.store.models.enums import Decision
from engine.store.report_triggers import RULES, Rules
from tests.reports_support import database_triggers

RECORDED = Path(__file__).resolve().parent / "data" / "report_triggers.json"
DIALECTS = ("postgresql", "sqlite")


def generated(dialect: str, rules: Rules = RULES) -> dict[str, list[str]]:
    """Everything the generator gives the migrations, by the name :data:`RECORDED` files it under."""
    return {
        "answer_triggers": rt.answer_triggers(dialect),
        "tally_existing_answers": [rt.tally_existing_answers()],
        "drop_answer_triggers": rt.drop_answer_triggers(dialect),
        "copy_triggers": rt.copy_triggers(dialect, rules=rules),
        "copy_existing": rt.copy_existing(dialect, rules=rules),
        "copy_triggers_without_survey": rt.copy_triggers(dialect, survey=False, rules=rules),
        "copy_existing_without_survey": rt.copy_existing(dialect, survey=False, rules=rules),
        "drop_copy_triggers": rt.drop_copy_triggers(dialect),
    }


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_generated_sql_is_the_sql_the_migrations_were_written_with(dialect: str) -> None:
    recorded = json.loads(RECORDED.read_text())[dialect]
    assert generated(dialect) == recorded, (
        "The triggers' SQL changed. Databases migrated before hold the recorded SQL: add a migration that "
        "recreates the triggers (drop_*_triggers, then answer_triggers / copy_triggers and copy_existing), "
        f"then record the new SQL in {RECORDED.name}."
    )


def test_the_generator_reads_the_constants_the_filters_read() -> None:
    """One definition: the rules the triggers are generated from are the very constants of what_counts."""
    assert RULES.test_channels is wc.TEST_CHANNELS
    assert RULES.heard_phases is wc.IVR_HEARD_PHASES
    assert RULES.failed_states is wc.FAILED_STATES
    assert RULES.left_out_decision == wc.LEFT_OUT_DECISION == Decision.INVALID


def _all_sql(dialect: str, rules: Rules) -> str:
    return "\n".join(statement for part in generated(dialect, rules).values() for statement in part)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"test_channels": ("console", "kiosk")}, "i.channel IN ('console', 'kiosk')"),
        ({"test_channels": ("console", "kiosk")}, "r.channel IN ('console', 'kiosk')"),
        ({"test_channels": ("console", "kiosk")}, "COALESCE(tx.channel IN ('console', 'kiosk'), false)"),
        ({"heard_phases": ("done",)}, "IN ('done'), false)"),
        ({"left_out_decision": "window_passed"}, "tx.decision = 'window_passed'"),
        ({"failed_states": ("failed", "expired")}, "i.state NOT IN ('failed', 'expired')"),
        ({"failed_states": ("failed", "expired")}, "(OLD.state IN ('failed', 'expired'))"),
        ({"test_channels": ("o'brien",)}, "IN ('o''brien')"),
    ],
)
def test_a_changed_constant_changes_the_triggers(dialect: str, change: dict[str, object], expected: str) -> None:
    today = _all_sql(dialect, RULES)
    other = _all_sql(dialect, replace(RULES, **change))  # type: ignore[arg-type]
    assert expected not in today
    assert expected in other
    assert generated(dialect, replace(RULES, **change)) != json.loads(RECORDED.read_text())[dialect]  # type: ignore[arg-type]


def test_an_empty_list_of_values_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        rt.copy_triggers("sqlite", rules=Rules(test_channels=()))


def _names(statements: list[str]) -> set[str]:
    return {" ".join(m.groups()) for s in statements for m in [re.search(r"CREATE (TRIGGER|FUNCTION) (\w+)", s)] if m}


def test_the_migrated_database_holds_exactly_the_generated_triggers(database_url: str) -> None:
    engine = make_engine(database_url)
    dialect = engine.dialect.name
    statements = rt.triggers(dialect)
    try:
        with engine.connect() as connection:
            present = database_triggers(connection)
            assert set(present) == {n.lower() for n in _names(statements)}
            if dialect == "postgresql":
                bodies = {f"function {m[1]}": m[2] for s in statements
                          for m in [re.match(r"\s*CREATE FUNCTION (\w+)\(\).*?\$\$(.*)\$\$", s, re.S)] if m}  # fmt: skip
                assert {k: v for k, v in present.items() if k.startswith("function ")} == bodies
            else:
                assert present == {f"trigger {n.split()[1]}": s for s in statements for n in _names([s])}
            # The triggers as the server prints them back (on PostgreSQL: with their WHEN conditions) are those of
            # the generated SQL run again, in a transaction rolled back.
            connection.rollback()
            transaction = connection.begin()
            try:
                for statement in (*rt.drop_answer_triggers(dialect), *rt.drop_copy_triggers(dialect)):
                    connection.exec_driver_sql(statement)
                assert database_triggers(connection) == {}
                for statement in statements:
                    connection.exec_driver_sql(statement)
                assert database_triggers(connection) == present
            finally:
                transaction.rollback()
            assert database_triggers(connection) == present
    finally:
        engine.dispose()
