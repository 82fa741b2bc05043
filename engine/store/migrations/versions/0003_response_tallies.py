"""response tallies for reports, kept by triggers on answers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:40:00

One narrow row per response (its answer count and the rating of each A-11 rating tag) so that the quarterly
collection reads 1 row per response instead of every answer. Triggers on ``answers`` (insert, update, delete)
keep it, on PostgreSQL and SQLite alike, whatever writes the answers; existing answers are tallied here once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TAGS = ("satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency", "employee")


def _values(row: str) -> str:
    return ", ".join(f"CASE WHEN {row}.a11_tag = '{t}' THEN {row}.value END" for t in TAGS)


def _add(existing: str) -> str:
    """The SET list of an upsert adding one answer to the tally row ``existing``."""
    return ", ".join([f"answers = {existing}answers + 1"]
                     + [f"{t} = COALESCE(excluded.{t}, {existing}{t})" for t in TAGS])  # fmt: skip


def _remove(row: str) -> str:
    """The SET list taking the answer ``row`` out of its tally row."""
    return ", ".join(["answers = answers - 1"]
                     + [f"{t} = CASE WHEN {row}.a11_tag = '{t}' THEN NULL ELSE {t} END" for t in TAGS])  # fmt: skip


COLUMNS = "response_id, answers, " + ", ".join(TAGS)


def upgrade() -> None:
    op.create_table(
        "response_tallies",
        sa.Column("response_id", sa.Uuid(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        *(sa.Column(t, sa.SmallInteger(), nullable=True) for t in TAGS),
        sa.ForeignKeyConstraint(
            ["response_id"], ["responses.id"], name=op.f("fk_response_tallies_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("response_id", name=op.f("pk_response_tallies")),
    )  # fmt: skip
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"""
            CREATE FUNCTION response_tallies_on_answer() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('DELETE', 'UPDATE') THEN
                    UPDATE response_tallies SET {_remove("OLD")} WHERE response_id = OLD.response_id;
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    INSERT INTO response_tallies AS t ({COLUMNS}) VALUES (NEW.response_id, 1, {_values("NEW")})
                    ON CONFLICT (response_id) DO UPDATE SET {_add("t.")};
                    RETURN NEW;
                END IF;
                RETURN OLD;
            END $$
        """)  # fmt: skip
        op.execute("CREATE TRIGGER answers_tally AFTER INSERT OR UPDATE OR DELETE ON answers "
                   "FOR EACH ROW EXECUTE FUNCTION response_tallies_on_answer()")  # fmt: skip
    else:
        insert = (f"INSERT INTO response_tallies ({COLUMNS}) VALUES (NEW.response_id, 1, {_values('NEW')}) "
                  f"ON CONFLICT (response_id) DO UPDATE SET {_add('')};")  # fmt: skip
        remove = f"UPDATE response_tallies SET {_remove('OLD')} WHERE response_id = OLD.response_id;"
        op.execute(f"CREATE TRIGGER answers_tally_insert AFTER INSERT ON answers BEGIN {insert} END")
        op.execute(f"CREATE TRIGGER answers_tally_delete AFTER DELETE ON answers BEGIN {remove} END")
        op.execute(f"CREATE TRIGGER answers_tally_update AFTER UPDATE ON answers BEGIN {remove} {insert} END")
    maxima = ", ".join(f"MAX(CASE WHEN a11_tag = '{t}' THEN value END)" for t in TAGS)
    op.execute(f"INSERT INTO response_tallies ({COLUMNS}) SELECT response_id, COUNT(*), {maxima} FROM answers "
               "GROUP BY response_id")  # fmt: skip


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS answers_tally ON answers")
        op.execute("DROP FUNCTION IF EXISTS response_tallies_on_answer()")
    else:
        for name in ("answers_tally_insert", "answers_tally_delete", "answers_tally_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("response_tallies")
