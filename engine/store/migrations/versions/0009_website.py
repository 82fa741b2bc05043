"""website: the feedback forms answered from an agency's own site

Revision ID: 0009_website
Revises: 0008_send_pacing
Create Date: 2026-12-05 10:00:00

- ``website_forms``: one row per feedback form accepted from ``/f/<service>`` (channels/website), keyed by the
  form token's nonce (one response per page load); the per-address and per-service rate limits count its rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_website"
down_revision = "0008_send_pacing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "website_forms",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Uuid(), nullable=True),
        sa.Column("address_hash", sa.String(length=64), nullable=True),
        sa.Column("page_url", sa.String(length=500), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["response_id"], ["responses.id"], name=op.f("fk_website_forms_response_id_responses"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], name=op.f("fk_website_forms_service_id_services")),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_website_forms")),
        sa.UniqueConstraint("response_id", name=op.f("uq_website_forms_response_id")),
    )
    op.create_index("ix_website_forms_service_at", "website_forms", ["service_id", "received_at"])
    op.create_index("ix_website_forms_address_at", "website_forms", ["address_hash", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_website_forms_address_at", table_name="website_forms")
    op.drop_index("ix_website_forms_service_at", table_name="website_forms")
    op.drop_table("website_forms")
