"""Link tokens (SPEC §4): at least 128 random bits, base64url, stored only as SHA-256, one invitation each."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.crypto import token_hash
from engine.store.db import utcnow
from engine.store.models import Invitation, SurveyToken

TOKEN_BYTES = 16  # 128 bits → 22 base64url characters: short enough for a text message
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{22,64}")


SURVEY = "survey"
UNSUBSCRIBE = "unsubscribe"


def issue(session: Session, invitation_id: uuid.UUID, now: datetime | None = None, purpose: str = SURVEY) -> str:
    """A new link token for the invitation; only its hash is stored, the token goes into the message."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        SurveyToken(
            token_hash=token_hash(token), invitation_id=invitation_id, purpose=purpose, created_at=now or utcnow()
        )
    )
    return token


def invitation_for(session: Session, token: str, purpose: str = SURVEY, *, lock: bool = False) -> Invitation | None:
    """The invitation a token opens for ``purpose``, or None for an unknown, malformed, revoked or other token.

    ``lock``: the invitation is read with a row lock (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's transactions
    are already one at a time), held until the transaction ends, so that a second request for the same invitation
    waits here and then reads what the first one stored.
    """
    if not TOKEN_SHAPE.fullmatch(token):
        return None
    row = session.get(SurveyToken, token_hash(token))
    if row is None or row.revoked_at is not None or row.purpose != purpose:
        return None
    return session.get(Invitation, row.invitation_id, with_for_update=lock, populate_existing=lock)


def revoke_all(session: Session, invitation_id: uuid.UUID, now: datetime | None = None) -> int:
    rows = session.execute(
        select(SurveyToken).where(SurveyToken.invitation_id == invitation_id, SurveyToken.revoked_at.is_(None))
    ).scalars()
    count = 0
    for row in rows:
        row.revoked_at = now or utcnow()
        count += 1
    return count
