"""send pacing: the next free send moment per channel and sender

Revision ID: 0008_send_pacing
Revises: 0007_surveys_used
Create Date: 2026-12-04 21:00:00

- ``send_pacing``: one row per (channel, sender), taken under a row lock by every dispatcher so that together they
  never send faster than the channel's ``send_rate`` (engine/delivery/pacing.py). Rows are created on first use.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_send_pacing"
down_revision = "0007_surveys_used"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_pacing",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("next_free_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "sender", name=op.f("pk_send_pacing")),
    )


def downgrade() -> None:
    op.drop_table("send_pacing")
