"""The SQL of the triggers that keep the report summaries (:mod:`engine.store.models.reporting`), generated from
the constants of what counts defined there: the same constants the report filters
(``engine.reporting.what_counts``) read, so the summaries and the filters can never follow two different rules.

Migrations 0003 (the answer tallies), 0004 (the copies) and 0007 (the copies carry the survey id) execute what
this module returns; with today's constants that is, character for character, the SQL they were first written
with (``tests/test_report_triggers.py`` holds that SQL and compares). A changed constant changes what this module
generates, and that test then fails until a new migration recreates the triggers in existing databases
(:func:`drop_answer_triggers` / :func:`drop_copy_triggers`, then :func:`answer_triggers` / :func:`copy_triggers`
and :func:`copy_existing`) and the recorded SQL is updated with it.

Every function returns plain statements for one dialect (``"postgresql"``, or anything else for SQLite). Nothing
here touches a database. :class:`Rules` carries the constants; the default, :data:`RULES`, is today's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.store.models.reporting import (
    FAILED_STATES,
    IVR_HEARD_PHASES,
    LEFT_OUT_DECISION,
    TALLIED_TAGS,
    TEST_CHANNELS,
)


@dataclass(frozen=True)
class Rules:
    """The constants of what counts the triggers are built from (SPEC §6)."""

    test_channels: tuple[str, ...] = TEST_CHANNELS
    heard_phases: tuple[str, ...] = IVR_HEARD_PHASES
    left_out_decision: str = LEFT_OUT_DECISION.value
    failed_states: tuple[str, ...] = FAILED_STATES


RULES = Rules()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _list(values: Sequence[str]) -> str:
    """``('a', 'b')``: an SQL list of string literals (never empty: an empty ``IN ()`` is no SQL)."""
    if not values:
        raise ValueError("an empty list of values")
    return "(" + ", ".join(_literal(v) for v in values) + ")"


def _is(expression: str, values: Sequence[str]) -> str:
    """``expression = 'a'`` for one value, ``expression IN ('a', 'b')`` for more."""
    return f"{expression} = {_literal(values[0])}" if len(values) == 1 else f"{expression} IN {_list(values)}"


def _is_not(expression: str, values: Sequence[str]) -> str:
    return f"{expression} <> {_literal(values[0])}" if len(values) == 1 else f"{expression} NOT IN {_list(values)}"


# -- the answer tallies: answer count and ratings per response (migration 0003) ---------------------------------


def _values(row: str, tags: Sequence[str]) -> str:
    return ", ".join(f"CASE WHEN {row}.a11_tag = '{t}' THEN {row}.value END" for t in tags)


def _add(existing: str, tags: Sequence[str]) -> str:
    """The SET list of an upsert adding one answer to the tally row ``existing``."""
    return ", ".join([f"answers = {existing}answers + 1"]
                     + [f"{t} = COALESCE(excluded.{t}, {existing}{t})" for t in tags])  # fmt: skip


def _remove(row: str, tags: Sequence[str]) -> str:
    """The SET list taking the answer ``row`` out of its tally row."""
    return ", ".join(["answers = answers - 1"]
                     + [f"{t} = CASE WHEN {row}.a11_tag = '{t}' THEN NULL ELSE {t} END" for t in tags])  # fmt: skip


def _tally_columns(tags: Sequence[str]) -> str:
    return "response_id, answers, " + ", ".join(tags)


def answer_triggers(dialect: str, tags: Sequence[str] = TALLIED_TAGS) -> list[str]:
    """The triggers on ``answers`` (insert, update, delete) that keep each response's answer count and ratings."""
    columns = _tally_columns(tags)
    if dialect == "postgresql":
        return [
            f"""
            CREATE FUNCTION response_tallies_on_answer() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('DELETE', 'UPDATE') THEN
                    UPDATE response_tallies SET {_remove("OLD", tags)} WHERE response_id = OLD.response_id;
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    INSERT INTO response_tallies AS t ({columns}) VALUES (NEW.response_id, 1, {_values("NEW", tags)})
                    ON CONFLICT (response_id) DO UPDATE SET {_add("t.", tags)};
                    RETURN NEW;
                END IF;
                RETURN OLD;
            END $$
        """,
            "CREATE TRIGGER answers_tally AFTER INSERT OR UPDATE OR DELETE ON answers "
            "FOR EACH ROW EXECUTE FUNCTION response_tallies_on_answer()",
        ]
    insert = (f"INSERT INTO response_tallies ({columns}) VALUES (NEW.response_id, 1, {_values('NEW', tags)}) "
              f"ON CONFLICT (response_id) DO UPDATE SET {_add('', tags)};")  # fmt: skip
    remove = f"UPDATE response_tallies SET {_remove('OLD', tags)} WHERE response_id = OLD.response_id;"
    return [
        f"CREATE TRIGGER answers_tally_insert AFTER INSERT ON answers BEGIN {insert} END",
        f"CREATE TRIGGER answers_tally_delete AFTER DELETE ON answers BEGIN {remove} END",
        f"CREATE TRIGGER answers_tally_update AFTER UPDATE ON answers BEGIN {remove} {insert} END",
    ]


def tally_existing_answers(tags: Sequence[str] = TALLIED_TAGS) -> str:
    """Tally the answers already stored (one row per response that has any)."""
    maxima = ", ".join(f"MAX(CASE WHEN a11_tag = '{t}' THEN value END)" for t in tags)
    return (f"INSERT INTO response_tallies ({_tally_columns(tags)}) SELECT response_id, COUNT(*), {maxima} "
            "FROM answers GROUP BY response_id")  # fmt: skip


def drop_answer_triggers(dialect: str) -> list[str]:
    """Drop what :func:`answer_triggers` made."""
    if dialect == "postgresql":
        return [
            "DROP TRIGGER IF EXISTS answers_tally ON answers",
            "DROP FUNCTION IF EXISTS response_tallies_on_answer()",
        ]
    return [f"DROP TRIGGER IF EXISTS {name}"
            for name in ("answers_tally_insert", "answers_tally_delete", "answers_tally_update")]  # fmt: skip


# -- the copies: what decides whether, when and where a row counts (migrations 0004, 0007) -----------------------
#
# ``survey``: whether each copy also carries the survey id (the response's; the transaction's for invitations and
# service levels), as from migration 0007_surveys_used on (the default); without, the triggers of revision 0004.

RESPONSE_KEYS = ("service_id", "channel", "office_id", "period_service_id", "moment", "has_transaction", "invited",
                 "heard", "left_out", "test")  # fmt: skip
# Columns whose change moves a copy (a response's ``state``: compared by its IVR phase only).
RESPONSE_COLUMNS = ("service_id", "channel", "office_id", "transaction_id", "invitation_id", "started_at",
                    "test", "suspected_spam")  # fmt: skip
TRANSACTION_COLUMNS = ("service_id", "completed_at", "office_id", "channel", "test", "decision")
INVITATION_COLUMNS = ("transaction_id", "channel", "test", "sent_at")
SERVICE_LEVEL_COLUMNS = ("transaction_id", "name", "value")
TX_KEYS = ("service_id", "moment", "office_id", "channel", "left_out", "test")


def _tx_left_out(rules: Rules) -> str:
    return f"tx.decision = {_literal(rules.left_out_decision)}"


def _tx_test(rules: Rules) -> str:
    """A transaction is test data: flagged so, or on a test-only channel."""
    return f"(tx.test OR COALESCE(tx.channel IN {_list(rules.test_channels)}, false))"


def _tx_keys(survey: bool) -> tuple[str, ...]:
    return (*TX_KEYS, "survey_id") if survey else TX_KEYS


def _tx_place(rules: Rules) -> tuple[str, ...]:
    """The transaction's service, moment, office and channel, and whether it is left out."""
    return "tx.service_id", "tx.completed_at", "tx.office_id", "tx.channel", _tx_left_out(rules)


def _tx_values(survey: bool, rules: Rules) -> tuple[str, ...]:
    """The values of :func:`_tx_keys`."""
    return (*_tx_place(rules), _tx_test(rules), *(("tx.survey_id",) if survey else ()))


def _phase(dialect: str, row: str) -> str:
    if dialect == "postgresql":
        return f"({row}.state ->> 'ivr_phase')"
    return f"json_extract({row}.state, '$.ivr_phase')"


def _upsert(table: str, key: str, columns: tuple[str, ...], values: Sequence[str], source: str, where: str) -> str:
    refresh = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key.split(", "))
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source} WHERE {where} "
            f"ON CONFLICT ({key}) DO UPDATE SET {refresh};")  # fmt: skip


def upsert_responses(dialect: str, where: str, survey: bool = True, rules: Rules = RULES) -> str:
    """Insert or refresh the copied keys of the tally rows of the responses ``r`` matching ``where``."""
    values = [
        "r.id",
        "0",
        "r.service_id",
        "r.channel",
        "r.office_id",
        "COALESCE(tx.service_id, r.service_id)",
        "COALESCE(tx.completed_at, r.started_at)",
        "r.transaction_id IS NOT NULL",
        "r.invitation_id IS NOT NULL",
        f"COALESCE({_phase(dialect, 'r')} IN {_list(rules.heard_phases)}, false)",
        f"(r.suspected_spam OR COALESCE({_tx_left_out(rules)}, false))",
        f"(r.test OR COALESCE(tx.test, false) OR r.channel IN {_list(rules.test_channels)})",
        *(("r.survey_id",) if survey else ()),
    ]
    columns = ("response_id", "answers", *RESPONSE_KEYS, *(("survey_id",) if survey else ()))
    source = "responses r LEFT JOIN transactions tx ON tx.id = r.transaction_id"
    sql = _upsert("response_tallies", "response_id", columns, values, source, where)
    return sql.replace("answers = excluded.answers, ", "")  # an existing row keeps its answer tallies


def upsert_invitations(where: str, survey: bool = True, rules: Rules = RULES) -> str:
    """Insert or refresh the copies of the invitations ``i`` matching ``where``."""
    test = f"({_tx_test(rules)} OR i.test OR i.channel IN {_list(rules.test_channels)})"
    opportunity = f"(i.sent_at IS NOT NULL AND {_is_not('i.state', rules.failed_states)})"
    values = ["i.id", "i.transaction_id", *_tx_place(rules), test, opportunity,
              *(("tx.survey_id",) if survey else ())]  # fmt: skip
    columns = ("invitation_id", "transaction_id", *TX_KEYS, "opportunity", *(("survey_id",) if survey else ()))
    source = "invitations i JOIN transactions tx ON tx.id = i.transaction_id"
    return _upsert("invitation_tallies", "invitation_id", columns, values, source, where)


def upsert_service_levels(where: str, source: str = "service_levels s", survey: bool = True,
                          rules: Rules = RULES) -> str:  # fmt: skip
    """Insert or refresh the copies of the service-level indicators ``s`` matching ``where``."""
    values = ["s.transaction_id", "s.name", "s.value", *_tx_values(survey, rules)]
    columns = ("transaction_id", "name", "value", *_tx_keys(survey))
    source = f"{source} JOIN transactions tx ON tx.id = s.transaction_id"
    return _upsert("service_level_tallies", "transaction_id, name", columns, values, source, where)


def upsert_new_service_level(survey: bool = True, rules: Rules = RULES) -> str:
    """Insert or refresh the copy of the row trigger's indicator ``NEW`` (one look-up: its transaction)."""
    values = ["NEW.transaction_id", "NEW.name", "NEW.value", *_tx_values(survey, rules)]
    columns = ("transaction_id", "name", "value", *_tx_keys(survey))
    return _upsert("service_level_tallies", "transaction_id, name", columns, values, "transactions tx",
                   "tx.id = NEW.transaction_id")  # fmt: skip


def _changed(dialect: str, columns: tuple[str, ...], phase: bool = False, failed: Sequence[str] = ()) -> str:
    """A trigger's WHEN: any of ``columns`` changed (or the IVR phase; or whether the state is one of ``failed``)."""
    differs = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    tests = [f"OLD.{c} {differs} NEW.{c}" for c in columns]
    if phase:
        tests.append(f"{_phase(dialect, 'OLD')} {differs} {_phase(dialect, 'NEW')}")
    if failed:
        tests.append(f"({_is('OLD.state', failed)}) {differs} ({_is('NEW.state', failed)})")
    return " OR ".join(tests)


def _pg_function(name: str, body: str, returns: str = "NEW") -> str:
    return f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} RETURN {returns}; END $$"


def copy_existing(dialect: str, survey: bool = True, rules: Rules = RULES) -> list[str]:
    """Copy (or refresh the copies of) every existing row."""
    return [
        upsert_responses(dialect, "true", survey, rules),
        upsert_invitations("i.sent_at IS NOT NULL", survey, rules),
        upsert_service_levels("true", survey=survey, rules=rules),
    ]


def copy_triggers(dialect: str, survey: bool = True, rules: Rules = RULES) -> list[str]:
    """The triggers (and on PostgreSQL their functions) that keep the copies: on ``responses``, ``invitations``
    and ``service_levels`` (insert; an update of a column they copy; a deleted indicator), and on ``transactions``
    (an update of a column they copy)."""
    on_response = upsert_responses(dialect, "r.id = NEW.id", survey, rules)
    on_invitation = upsert_invitations("i.id = NEW.id", survey, rules)
    on_level = upsert_new_service_level(survey, rules)
    # No foreign key from the copies to ``service_levels`` (its check would cost intake a look-up per indicator):
    # a deleted indicator (or its transaction's cascade) takes its copy with it here.
    on_level_gone = ("DELETE FROM service_level_tallies WHERE transaction_id = OLD.transaction_id "
                     "AND name = OLD.name;")  # fmt: skip
    on_transaction = " ".join([upsert_responses(dialect, "r.transaction_id = NEW.id", survey, rules),
                               upsert_invitations("i.transaction_id = NEW.id AND i.sent_at IS NOT NULL", survey,
                                                  rules),
                               upsert_service_levels("s.transaction_id = NEW.id", survey=survey,
                                                     rules=rules)])  # fmt: skip
    response_changed = _changed(dialect, RESPONSE_COLUMNS, phase=True)
    invitation_changed = _changed(dialect, INVITATION_COLUMNS, failed=rules.failed_states)
    level_changed = _changed(dialect, SERVICE_LEVEL_COLUMNS)
    transaction_changed = _changed(dialect, TRANSACTION_COLUMNS)
    statements = []
    if dialect == "postgresql":
        statements += [
            _pg_function("report_copies_on_response", on_response),
            _pg_function("report_copies_on_invitation", on_invitation),
            _pg_function("report_copies_on_service_level", on_level),
            _pg_function("report_copies_on_transaction", on_transaction),
            _pg_function("report_copies_on_gone_service_level", on_level_gone, returns="OLD"),
            _pg_function("report_copies_on_new_service_levels",
                         upsert_service_levels("true", "new_levels s", survey, rules), returns="NULL"),
        ]  # fmt: skip
        for table, name, when, function in (
            ("responses", "responses_copy_insert", None, "report_copies_on_response"),
            ("responses", "responses_copy_update", response_changed, "report_copies_on_response"),
            ("invitations", "invitations_copy_insert", "NEW.sent_at IS NOT NULL", "report_copies_on_invitation"),
            ("invitations", "invitations_copy_update", invitation_changed, "report_copies_on_invitation"),
            ("service_levels", "service_levels_copy_update", level_changed, "report_copies_on_service_level"),
            ("service_levels", "service_levels_copy_delete", None, "report_copies_on_gone_service_level"),
            ("transactions", "transactions_copy_update", transaction_changed, "report_copies_on_transaction"),
        ):
            event = name.rpartition("_")[2].upper()
            condition = f"WHEN ({when}) " if when else ""
            statements.append(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW {condition}"
                              f"EXECUTE FUNCTION {function}()")  # fmt: skip
        statements.append("CREATE TRIGGER service_levels_copy_insert AFTER INSERT ON service_levels "
                          "REFERENCING NEW TABLE AS new_levels FOR EACH STATEMENT "
                          "EXECUTE FUNCTION report_copies_on_new_service_levels()")  # fmt: skip
        return statements
    for table, name, when, body in (
        ("responses", "responses_copy_insert", None, on_response),
        ("responses", "responses_copy_update", response_changed, on_response),
        ("invitations", "invitations_copy_insert", "NEW.sent_at IS NOT NULL", on_invitation),
        ("invitations", "invitations_copy_update", invitation_changed, on_invitation),
        ("service_levels", "service_levels_copy_insert", None, on_level),
        ("service_levels", "service_levels_copy_update", level_changed, on_level),
        ("service_levels", "service_levels_copy_delete", None, on_level_gone),
        ("transactions", "transactions_copy_update", transaction_changed, on_transaction),
    ):
        event = name.rpartition("_")[2].upper()
        condition = f"WHEN {when} " if when else ""
        statements.append(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW {condition}BEGIN {body} END")
    return statements


COPY_TRIGGERS = {
    "responses": ("responses_copy_insert", "responses_copy_update"),
    "invitations": ("invitations_copy_insert", "invitations_copy_update"),
    "service_levels": ("service_levels_copy_insert", "service_levels_copy_update", "service_levels_copy_delete"),
    "transactions": ("transactions_copy_update",),
}
COPY_FUNCTIONS = ("response", "invitation", "service_level", "transaction", "new_service_levels", "gone_service_level")


def drop_copy_triggers(dialect: str) -> list[str]:
    """Drop what :func:`copy_triggers` made."""
    postgresql = dialect == "postgresql"
    statements = [f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgresql else f"DROP TRIGGER IF EXISTS {name}"
                  for table, names in COPY_TRIGGERS.items() for name in names]  # fmt: skip
    if postgresql:
        statements += [f"DROP FUNCTION IF EXISTS report_copies_on_{function}()" for function in COPY_FUNCTIONS]
    return statements


def triggers(dialect: str, rules: Rules = RULES) -> list[str]:
    """Every trigger (and function) of the current schema, in the order the migrations create them."""
    return [*answer_triggers(dialect), *copy_triggers(dialect, True, rules)]
