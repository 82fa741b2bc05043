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
rows are copied here. The triggers' SQL comes from ``engine.store.report_triggers``, generated from the constants
of what counts (``survey=False``: the copies of this revision, without the survey id that 0007_surveys_used adds);
with today's constants it is the SQL first written here (``tests/test_report_triggers.py`` compares).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from engine.store import report_triggers

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The columns this revision adds to ``response_tallies`` (its downgrade drops them).
RESPONSE_KEYS = ("service_id", "channel", "office_id", "period_service_id", "moment", "has_transaction", "invited",
                 "heard", "left_out", "test")  # fmt: skip


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
    for statement in (*report_triggers.copy_triggers(dialect, survey=False),
                      *report_triggers.copy_existing(dialect, survey=False)):  # fmt: skip
        op.execute(statement)


def downgrade() -> None:
    for statement in report_triggers.drop_copy_triggers(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_index("ix_responses_post_call", table_name="responses")
    op.drop_table("service_level_tallies")
    op.drop_table("invitation_tallies")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite ≥ 3.35): a batch copy of the table would break the triggers of
    # migration 0003 that write it.
    for column in reversed(RESPONSE_KEYS):
        op.execute(f"ALTER TABLE response_tallies DROP COLUMN {column}")
