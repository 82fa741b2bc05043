"""the surveys actually used, submissions and reflections

Revision ID: 0007_surveys_used
Revises: 0006_early_reports
Create Date: 2026-12-04 19:30:00

- ``surveys``: one row per flow version × effective PRA block a service used (SPEC §6.1: a quarter reports the
  survey that was used, never today's configuration); ``survey_id`` on ``transactions``, ``invitations`` and
  ``responses`` (no foreign key: see ``engine.store.models.surveys``; existing rows keep NULL, which the report reads as
  the service's survey at the time of the report), and on the three report copy tables of migration 0004, whose
  triggers are rebuilt to copy it (the response's; the transaction's for invitations and service levels), from the
  SQL ``engine.store.report_triggers`` generates.
- ``submissions``: a filed quarter's frozen files, with who and when (SPEC §6 "Submissions").
- ``reflections``: the team's text per service and quarter (A-11 280.11), reported in the §6.1 ``reflection``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store import report_triggers

revision = "0007_surveys_used"
down_revision = "0006_early_reports"
branch_labels = None
depends_on = None

SURVEYED = ("transactions", "invitations", "responses")
COPIES = ("response_tallies", "invitation_tallies", "service_level_tallies")


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("flow_version_id", sa.Integer(), nullable=False),
        sa.Column("omb_control_number", sa.String(length=32), nullable=False),
        sa.Column("expiration_date", sa.Date(), nullable=False),
        sa.Column("burden_minutes", sa.Integer(), nullable=False),
        sa.Column("burden_statement", sa.Text(), nullable=False),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["flow_version_id"], ["flow_versions.id"],
                                name=op.f("fk_surveys_flow_version_id_flow_versions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_surveys_fingerprint")),
    )  # fmt: skip
    op.create_table(
        "submissions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("quarter", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.String(length=320), nullable=False),
        sa.Column("collection_csv", sa.LargeBinary(), nullable=False),
        sa.Column("collection_json", sa.LargeBinary(), nullable=False),
        sa.Column("collection_xlsx", sa.LargeBinary(), nullable=False),
        sa.Column("responses_csv", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_submissions_service_id_services")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
    )
    op.create_index("ix_submissions_quarter", "submissions", ["service_id", "fiscal_year", "quarter", "submitted_at"])
    op.create_table(
        "reflections",
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("quarter", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_reflections_service_id_services")),
        sa.PrimaryKeyConstraint("service_id", "fiscal_year", "quarter", name=op.f("pk_reflections")),
    )
    # Plain ALTER TABLE ... ADD COLUMN (no batch copy on SQLite: that would drop the triggers on these tables).
    for table in (*SURVEYED, *COPIES):
        op.add_column(table, sa.Column("survey_id", sa.Integer(), nullable=True))
    _rebuild_copy_triggers(survey=True)


def _rebuild_copy_triggers(survey: bool) -> None:
    """The copy triggers of migration 0004, rebuilt to copy the survey id too (or, going down, without it)."""
    dialect = op.get_bind().dialect.name
    for statement in (*report_triggers.drop_copy_triggers(dialect),
                      *report_triggers.copy_triggers(dialect, survey=survey)):  # fmt: skip
        op.execute(statement)


def downgrade() -> None:
    _rebuild_copy_triggers(survey=False)
    for table in (*COPIES, *SURVEYED):
        op.execute(f"ALTER TABLE {table} DROP COLUMN survey_id")
    op.drop_table("reflections")
    op.drop_index("ix_submissions_quarter", table_name="submissions")
    op.drop_table("submissions")
    op.drop_table("surveys")
