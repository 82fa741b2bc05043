"""one active suppression per contact and channel: a partial unique index on the rows not restored

Revision ID: 0011_one_active_suppression
Revises: 0010_wider_actors
Create Date: 2026-12-05 10:20:00

``suppress_hash`` read whether a contact was suppressed on a channel and then inserted, with nothing unique in the
table: on PostgreSQL opt-outs of one address arriving at once (two unsubscribe links, an SMS STOP and an API
opt-out) each stored an active suppression. From here ``uq_suppressions_active`` (``contact_hash``,
``contact_kind``, ``channel``) ``WHERE restored_at IS NULL`` allows one, and the insert skips on its conflict.

Existing duplicates are resolved first: of the active rows of one contact, kind and channel the earliest (by
``created_at``, then ``id``) stays in force, as it would have had the opt-outs come one after another (a later one
finds it and records nothing); each other is marked restored now, by ``migration:0011_one_active_suppression``,
naming the row it duplicated, and each contact so resolved gets a ``suppression.restore`` audit entry listing the
ids, as a restore through the API does. Nobody becomes reachable: the kept row still suppresses the contact on
that channel. Downgrading drops the index and leaves those rows restored (they were never needed).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011_one_active_suppression"
down_revision = "0010_wider_actors"
branch_labels = None
depends_on = None

ACTOR = "migration:0011_one_active_suppression"
ACTIVE = "restored_at IS NULL"

suppressions = sa.table(
    "suppressions",
    sa.column("id", sa.Integer),
    sa.column("contact_hash", sa.String),
    sa.column("contact_kind", sa.String),
    sa.column("channel", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("restored_at", sa.DateTime(timezone=True)),
    sa.column("restored_by", sa.String),
    sa.column("restore_reason", sa.Text),
)
audit_log = sa.table(
    "audit_log",
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("subject", sa.String),
    sa.column("detail", sa.JSON),
)


def _resolve_duplicates() -> None:
    connection = op.get_bind()
    s = suppressions.c
    key = (s.contact_hash, s.contact_kind, s.channel)
    duplicated = sa.select(*key).where(s.restored_at.is_(None)).group_by(*key).having(sa.func.count() > 1).subquery()
    rows = connection.execute(
        sa.select(s.id, *key)
        .join(duplicated, sa.and_(*(c == duplicated.c[c.name] for c in key)))
        .where(s.restored_at.is_(None))
        .order_by(*key, s.created_at, s.id)
    ).all()
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for row in rows:
        groups[(row.contact_hash, row.contact_kind, row.channel)].append(row.id)
    now = datetime.now(UTC)
    # Per contact: the channels and ids lifted, for one audit entry (as a restore through the API writes).
    audited: dict[tuple[str, str], dict[str, Any]] = {}
    for (contact_hash, kind, channel), (kept, *others) in groups.items():
        reason = f"duplicate of suppression {kept}, recorded while that one was in force"
        connection.execute(
            sa.update(suppressions)
            .where(s.id.in_(others))
            .values(restored_at=now, restored_by=ACTOR, restore_reason=reason)
        )
        entry = audited.setdefault((contact_hash, kind), {"channels": [], "reason": "", "ids": []})
        entry["channels"].append(channel)
        entry["ids"].extend(others)
    for (contact_hash, kind), detail in audited.items():
        detail["channels"].sort()
        detail["reason"] = "a duplicate of a suppression in force (the earliest is kept)"
        connection.execute(
            sa.insert(audit_log).values(
                at=now, actor=ACTOR, action="suppression.restore", subject=f"{kind}:{contact_hash[:12]}", detail=detail
            )
        )


def upgrade() -> None:
    _resolve_duplicates()
    op.create_index("uq_suppressions_active", "suppressions", ["contact_hash", "contact_kind", "channel"],
                    unique=True, postgresql_where=sa.text(ACTIVE), sqlite_where=sa.text(ACTIVE))  # fmt: skip


def downgrade() -> None:
    op.drop_index("uq_suppressions_active", table_name="suppressions")
