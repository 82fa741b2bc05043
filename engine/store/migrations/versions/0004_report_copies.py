"""copies of what decides where responses, invitations and service levels count, kept by triggers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 05:10:00

So that the quarterly collection reads one narrow table per figure and joins nothing big:

- ``response_tallies`` gains a copy of the response's service, channel and office, the moment that decides its
  period (its transaction's ``completed_at``, else its ``started_at``) and the service whose period it is, whether
  it has a transaction or an invitation, whether a post-call caller heard the first question, and whether it is
  left out (spam; an ``invalid`` transaction) or test data (a test response or transaction; the console channel).
  Every response gets its tally row when it is stored (``answers`` = 0 until it has one).
- ``invitation_tallies``: one row per sent invitation (made when ``sent_at`` is first set; intake's unsent
  invitations cost nothing) with its transaction's keys and whether it is an opportunity now (not failed since).
- ``service_level_tallies``: one row per service-level indicator with its transaction's keys (on PostgreSQL one
  statement-level insert per intake statement, from its transition table; no foreign key, whose check would cost
  intake a look-up per indicator: a delete trigger takes a deleted indicator's copy away).
- ``ix_responses_post_call``: the few responses that decide a transaction's channel (post-call surveys).

Triggers keep them on PostgreSQL and SQLite alike: on ``responses``, ``invitations`` and ``service_levels``
(insert; an update of a column they copy), and on ``transactions`` (an update of a column they copy). Existing
rows are copied here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

HEARD_PHASES = "('questions', 'done')"
TEST_CHANNELS = "('console')"
RESPONSE_KEYS = ("service_id", "channel", "office_id", "period_service_id", "moment", "has_transaction", "invited",
                 "heard", "left_out", "test")  # fmt: skip
# Columns whose change moves a copy (a response's ``state``: compared by its IVR phase only).
RESPONSE_COLUMNS = ("service_id", "channel", "office_id", "transaction_id", "invitation_id", "started_at",
                    "test", "suspected_spam")  # fmt: skip
TRANSACTION_COLUMNS = ("service_id", "completed_at", "office_id", "channel", "test", "decision")
INVITATION_COLUMNS = ("transaction_id", "channel", "test", "sent_at")
SERVICE_LEVEL_COLUMNS = ("transaction_id", "name", "value")
TX_KEYS = ("service_id", "moment", "office_id", "channel", "left_out", "test")
TX_VALUES = ("tx.service_id", "tx.completed_at", "tx.office_id", "tx.channel", "tx.decision = 'invalid'")
TX_TEST = f"(tx.test OR COALESCE(tx.channel IN {TEST_CHANNELS}, false))"
# Migration 0007_surveys_used rebuilds these triggers with ``survey=True``: each copy then also carries the survey
# id (the response's; the transaction's for invitations and service levels). The default builds this revision's.


def _tx_keys(survey: bool) -> tuple[str, ...]:
    return (*TX_KEYS, "survey_id") if survey else TX_KEYS


def _tx_values(survey: bool) -> tuple[str, ...]:
    """The values of :func:`_tx_keys`."""
    return (*TX_VALUES, TX_TEST, *(("tx.survey_id",) if survey else ()))


def _phase(dialect: str, row: str) -> str:
    if dialect == "postgresql":
        return f"({row}.state ->> 'ivr_phase')"
    return f"json_extract({row}.state, '$.ivr_phase')"


def _upsert(table: str, key: str, columns: tuple[str, ...], values: list[str], source: str, where: str) -> str:
    refresh = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key.split(", "))
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source} WHERE {where} "
            f"ON CONFLICT ({key}) DO UPDATE SET {refresh};")  # fmt: skip


def upsert_responses(dialect: str, where: str, survey: bool = False) -> str:
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
        f"COALESCE({_phase(dialect, 'r')} IN {HEARD_PHASES}, false)",
        "(r.suspected_spam OR COALESCE(tx.decision = 'invalid', false))",
        f"(r.test OR COALESCE(tx.test, false) OR r.channel IN {TEST_CHANNELS})",
        *(("r.survey_id",) if survey else ()),
    ]
    columns = ("response_id", "answers", *RESPONSE_KEYS, *(("survey_id",) if survey else ()))
    source = "responses r LEFT JOIN transactions tx ON tx.id = r.transaction_id"
    sql = _upsert("response_tallies", "response_id", columns, values, source, where)
    return sql.replace("answers = excluded.answers, ", "")  # an existing row keeps its answer tallies


def upsert_invitations(where: str, survey: bool = False) -> str:
    """Insert or refresh the copies of the invitations ``i`` matching ``where``."""
    values = ["i.id", "i.transaction_id", *TX_VALUES, f"({TX_TEST} OR i.test OR i.channel IN {TEST_CHANNELS})",
              "(i.sent_at IS NOT NULL AND i.state <> 'failed')", *(("tx.survey_id",) if survey else ())]  # fmt: skip
    columns = ("invitation_id", "transaction_id", *TX_KEYS, "opportunity", *(("survey_id",) if survey else ()))
    source = "invitations i JOIN transactions tx ON tx.id = i.transaction_id"
    return _upsert("invitation_tallies", "invitation_id", columns, values, source, where)


def upsert_service_levels(where: str, source: str = "service_levels s", survey: bool = False) -> str:
    """Insert or refresh the copies of the service-level indicators ``s`` matching ``where``."""
    values = ["s.transaction_id", "s.name", "s.value", *_tx_values(survey)]
    columns = ("transaction_id", "name", "value", *_tx_keys(survey))
    source = f"{source} JOIN transactions tx ON tx.id = s.transaction_id"
    return _upsert("service_level_tallies", "transaction_id, name", columns, values, source, where)


def upsert_new_service_level(survey: bool = False) -> str:
    """Insert or refresh the copy of the row trigger's indicator ``NEW`` (one look-up: its transaction)."""
    values = ["NEW.transaction_id", "NEW.name", "NEW.value", *_tx_values(survey)]
    columns = ("transaction_id", "name", "value", *_tx_keys(survey))
    return _upsert("service_level_tallies", "transaction_id, name", columns, values, "transactions tx",
                   "tx.id = NEW.transaction_id")  # fmt: skip


def _changed(dialect: str, columns: tuple[str, ...], phase: bool = False, failed: bool = False) -> str:
    """A trigger's WHEN: any of ``columns`` changed (or the IVR phase; or whether the state is ``failed``)."""
    differs = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    tests = [f"OLD.{c} {differs} NEW.{c}" for c in columns]
    if phase:
        tests.append(f"{_phase(dialect, 'OLD')} {differs} {_phase(dialect, 'NEW')}")
    if failed:
        tests.append(f"(OLD.state = 'failed') {differs} (NEW.state = 'failed')")
    return " OR ".join(tests)


def _pg_function(name: str, body: str, returns: str = "NEW") -> None:
    op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} RETURN {returns}; END $$")


def _create_tables() -> None:
    with op.batch_alter_table("response_tallies") as batch:
        batch.add_column(sa.Column("service_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("channel", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("office_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("period_service_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("moment", sa.DateTime(timezone=True), nullable=True))
        for flag in ("has_transaction", "invited", "heard", "left_out", "test"):
            batch.add_column(sa.Column(flag, sa.Boolean(), nullable=True))

    def keys() -> list[sa.Column[Any]]:
        return [
            sa.Column("service_id", sa.Integer(), nullable=False),
            sa.Column("moment", sa.DateTime(timezone=True), nullable=False),
            sa.Column("office_id", sa.Integer(), nullable=True),
            sa.Column("channel", sa.String(length=32), nullable=True),
            sa.Column("left_out", sa.Boolean(), nullable=False),
            sa.Column("test", sa.Boolean(), nullable=False),
        ]

    op.create_table(
        "invitation_tallies",
        sa.Column("invitation_id", sa.Uuid(), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        *keys(),
        sa.Column("opportunity", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["invitation_id"], ["invitations.id"],
                                name=op.f("fk_invitation_tallies_invitation_id_invitations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("invitation_id", name=op.f("pk_invitation_tallies")),
    )  # fmt: skip
    op.create_table(
        "service_level_tallies",
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        *keys(),
        sa.PrimaryKeyConstraint("transaction_id", "name", name=op.f("pk_service_level_tallies")),
    )  # fmt: skip
    op.create_index("ix_responses_post_call", "responses", ["transaction_id"], unique=False,
                    postgresql_where=sa.text("invitation_id IS NULL AND transaction_id IS NOT NULL"),
                    sqlite_where=sa.text("invitation_id IS NULL AND transaction_id IS NOT NULL"))  # fmt: skip


def upgrade() -> None:
    _create_tables()
    dialect = op.get_bind().dialect.name
    create_triggers(dialect)
    copy_existing(dialect)


def copy_existing(dialect: str, survey: bool = False) -> None:
    """Copy (or refresh the copies of) every existing row."""
    op.execute(upsert_responses(dialect, "true", survey))
    op.execute(upsert_invitations("i.sent_at IS NOT NULL", survey))
    op.execute(upsert_service_levels("true", survey=survey))


def create_triggers(dialect: str, survey: bool = False) -> None:
    """The triggers (and on PostgreSQL their functions) that keep the copies."""
    on_response = upsert_responses(dialect, "r.id = NEW.id", survey)
    on_invitation = upsert_invitations("i.id = NEW.id", survey)
    on_level = upsert_new_service_level(survey)
    # No foreign key from the copies to ``service_levels`` (its check would cost intake a look-up per indicator):
    # a deleted indicator (or its transaction's cascade) takes its copy with it here.
    on_level_gone = ("DELETE FROM service_level_tallies WHERE transaction_id = OLD.transaction_id "
                     "AND name = OLD.name;")  # fmt: skip
    on_transaction = " ".join([upsert_responses(dialect, "r.transaction_id = NEW.id", survey),
                               upsert_invitations("i.transaction_id = NEW.id AND i.sent_at IS NOT NULL", survey),
                               upsert_service_levels("s.transaction_id = NEW.id", survey=survey)])  # fmt: skip
    response_changed = _changed(dialect, RESPONSE_COLUMNS, phase=True)
    invitation_changed = _changed(dialect, INVITATION_COLUMNS, failed=True)
    level_changed = _changed(dialect, SERVICE_LEVEL_COLUMNS)
    transaction_changed = _changed(dialect, TRANSACTION_COLUMNS)
    if dialect == "postgresql":
        _pg_function("report_copies_on_response", on_response)
        _pg_function("report_copies_on_invitation", on_invitation)
        _pg_function("report_copies_on_service_level", on_level)
        _pg_function("report_copies_on_transaction", on_transaction)
        _pg_function("report_copies_on_gone_service_level", on_level_gone, returns="OLD")
        _pg_function("report_copies_on_new_service_levels",
                     upsert_service_levels("true", "new_levels s", survey), returns="NULL")  # fmt: skip
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
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW {condition}"
                       f"EXECUTE FUNCTION {function}()")  # fmt: skip
        op.execute("CREATE TRIGGER service_levels_copy_insert AFTER INSERT ON service_levels "
                   "REFERENCING NEW TABLE AS new_levels FOR EACH STATEMENT "
                   "EXECUTE FUNCTION report_copies_on_new_service_levels()")  # fmt: skip
    else:
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
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW {condition}BEGIN {body} END")


def drop_triggers() -> None:
    """Drop what :func:`create_triggers` made."""
    triggers = {
        "responses": ("responses_copy_insert", "responses_copy_update"),
        "invitations": ("invitations_copy_insert", "invitations_copy_update"),
        "service_levels": ("service_levels_copy_insert", "service_levels_copy_update", "service_levels_copy_delete"),
        "transactions": ("transactions_copy_update",),
    }
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, names in triggers.items():
        for name in names:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgresql else f"DROP TRIGGER IF EXISTS {name}")
    if postgresql:
        for function in (
            "response",
            "invitation",
            "service_level",
            "transaction",
            "new_service_levels",
            "gone_service_level",
        ):
            op.execute(f"DROP FUNCTION IF EXISTS report_copies_on_{function}()")


def downgrade() -> None:
    drop_triggers()
    op.drop_index("ix_responses_post_call", table_name="responses")
    op.drop_table("service_level_tallies")
    op.drop_table("invitation_tallies")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite ≥ 3.35): a batch copy of the table would break the triggers of
    # migration 0003 that write it.
    for column in reversed(RESPONSE_KEYS):
        op.execute(f"ALTER TABLE response_tallies DROP COLUMN {column}")
