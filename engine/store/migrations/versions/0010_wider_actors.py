"""wider actors and subjects: an API key's full name in what its opt-outs record, an account's whole address

Revision ID: 0010_wider_actors
Revises: 0009_website
Create Date: 2026-12-05 07:30:00

- ``audit_log.actor``, ``suppressions.source`` and ``suppressions.restored_by``: 120 → 128 characters. An API
  key's opt-outs and restores record ``api-key:<name>``, and a name holds 120 characters: a key named with more
  than 112 was a 500 on PostgreSQL (value too long) at its first opt-out.
- ``audit_log.subject``: 200 → 320 characters, the length of ``users.email``: an account whose address is longer
  than 200 characters could not be created on PostgreSQL (its audit entry did not fit).

Widening a ``varchar`` rewrites nothing on PostgreSQL; on SQLite (where the length is not enforced) the batch
mode copies the two tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_wider_actors"
down_revision = "0009_website"
branch_labels = None
depends_on = None

# (table, column, before, after)
WIDENED = [
    ("audit_log", "actor", 120, 128),
    ("audit_log", "subject", 200, 320),
    ("suppressions", "source", 120, 128),
    ("suppressions", "restored_by", 120, 128),
]


def _resize(which: int) -> None:
    for table in dict.fromkeys(t for t, *_ in WIDENED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for _, column, *lengths in (w for w in WIDENED if w[0] == table):
                batch_op.alter_column(
                    column, existing_type=sa.String(length=lengths[1 - which]), type_=sa.String(length=lengths[which])
                )


def upgrade() -> None:
    _resize(1)


def downgrade() -> None:
    _resize(0)
