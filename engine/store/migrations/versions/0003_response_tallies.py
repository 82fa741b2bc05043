"""response tallies for reports, kept by triggers on answers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:40:00

One narrow row per response (its answer count and the rating of each A-11 rating tag) so that the quarterly
collection reads 1 row per response instead of every answer. Triggers on ``answers`` (insert, update, delete)
keep it, on PostgreSQL and SQLite alike, whatever writes the answers; existing answers are tallied here once.
The triggers' SQL comes from ``engine.store.report_triggers`` (for this revision's columns, it is the SQL first
written here: ``tests/test_report_triggers.py`` compares).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store import report_triggers

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The tally columns of this revision (a later revision that tallies another tag adds its column).
TAGS = ("satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency", "employee")


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
    for statement in report_triggers.answer_triggers(op.get_bind().dialect.name, TAGS):
        op.execute(statement)
    op.execute(report_triggers.tally_existing_answers(TAGS))


def downgrade() -> None:
    for statement in report_triggers.drop_answer_triggers(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table("response_tallies")
