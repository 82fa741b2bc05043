"""early reports: delivery reports held until dispatch records their provider id

Revision ID: 0006_early_reports
Revises: 0005_sessions
Create Date: 2026-12-04 19:40:00

A status callback (SMS, IVR) or an email event can arrive before dispatch has committed the provider id it names
(the provider reports on a message within milliseconds of accepting it). ``early_reports`` keeps such a report,
once by its event key, until the id lands; dispatch then applies it through the same state table and deletes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_early_reports"
down_revision = "0005_sessions"
branch_labels = None
depends_on = None

STATES = ("scheduled", "sending", "sent", "delivered", "answered", "failed", "unknown", "expired", "cancelled")
REASONS = ("opted_out", "bounce", "carrier_block", "complaint")


def upgrade() -> None:
    op.create_table(
        "early_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider_id", sa.String(length=200), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("state", sa.Enum(*STATES, name="invitationstate", native_enum=False, length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("suppress", sa.Enum(*REASONS, name="suppressionreason", native_enum=False, length=32), nullable=True),
        sa.Column("suppress_channels", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_early_reports")),
        sa.UniqueConstraint("event_key", name=op.f("uq_early_reports_event_key")),
    )
    with op.batch_alter_table("early_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_early_reports_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_early_reports_received_at"), ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("early_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_early_reports_received_at"))
        batch_op.drop_index(batch_op.f("ix_early_reports_provider_id"))
    op.drop_table("early_reports")
