"""Conversations: the survey-session engine driven one turn at a time (SMS replies, IVR keypresses).

Both conversational channels share the same turn: take the answer to the question awaiting one; if it cannot
be read, ask once more, then move on (the question is skipped); record what was read at once; give the next
question, or complete. Where the conversation stands lives in ``responses.state``; each provider request is
applied once (``webhook_receipts``), and a retried request gets the answer the first one got.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from engine.delivery import lifecycle
from engine.store.db import insert_unless_present, utcnow
from engine.store.models import (
    ANSWERABLE_STATES,
    Invitation,
    InvitationState,
    Response,
    WebhookReceipt,
)
from engine.surveys.flows import Question
from engine.surveys.sessions import Given, InvalidAnswer, SurveySessions

MAX_REPROMPTS = 1


# -- receipts --------------------------------------------------------------------------------------------------


def seen(session: Session, key: str) -> WebhookReceipt | None:
    """The receipt of a provider request already applied (its ``reply`` is what it was answered)."""
    return session.get(WebhookReceipt, key)


# Built once. One statement claims the key; no savepoint is needed, since a conflict is no error.
_CLAIM = insert_unless_present(
    WebhookReceipt.__table__, ("key", "channel", "received_at", "reply"), conflict=("key",), returning="key"
)
_KEEP = update(WebhookReceipt).where(WebhookReceipt.key == bindparam("k")).values(reply=bindparam("r"))


def remember(session: Session, key: str, channel: str, reply: str | None, now: datetime | None = None) -> bool:
    """Record that ``key`` was applied; False if another request with that key got there first."""
    claimed = (
        session.connection()
        .execute(_CLAIM, {"key": key, "channel": channel, "reply": reply, "received_at": now or utcnow()})
        .first()
    )
    return claimed is not None


def keep_reply(session: Session, key: str, reply: str) -> None:
    """Store on the receipt of ``key`` (claimed in this transaction) what the request is answered."""
    session.connection().execute(_KEEP, {"k": key, "r": reply})


# -- finding the conversation ----------------------------------------------------------------------------------


# Built once (a statement built per call costs more than its execution): the newest answerable invitation to a
# contact on some channels (public: a channel may read more in the same statement, as channels/sms does), and the
# newest whatever its state.
OPEN_INVITATION = (
    select(Invitation)
    .where(
        Invitation.contact_hash == bindparam("contact_hash"),
        Invitation.channel.in_(bindparam("channels", expanding=True)),
        Invitation.state.in_(bindparam("states", expanding=True)),
        Invitation.expires_at > bindparam("now", type_=Invitation.__table__.c.expires_at.type),
    )
    .order_by(Invitation.sent_at.desc().nulls_last(), Invitation.created_at.desc())
    .limit(1)
)
_ANSWERABLE = [s.value for s in ANSWERABLE_STATES]
_LATEST_INVITATION = (
    select(Invitation)
    .where(
        Invitation.contact_hash == bindparam("contact_hash"),
        Invitation.channel.in_(bindparam("channels", expanding=True)),
    )
    .order_by(Invitation.created_at.desc())
    .limit(1)
)


def open_invitation_params(contact_hash: str, channels: Sequence[str], now: datetime | None = None) -> dict[str, Any]:
    """The parameters of :data:`OPEN_INVITATION`."""
    return {"contact_hash": contact_hash, "channels": list(channels), "states": _ANSWERABLE, "now": now or utcnow()}


def open_invitation(
    session: Session, contact_hash: str, channels: Sequence[str], now: datetime | None = None
) -> Invitation | None:
    """The newest invitation to this contact on one of ``channels`` that can still be answered."""
    params = open_invitation_params(contact_hash, channels, now)
    return session.execute(OPEN_INVITATION, params).scalar_one_or_none()


def latest_invitation(session: Session, contact_hash: str, channels: Sequence[str]) -> Invitation | None:
    """The newest invitation to this contact on ``channels`` whatever its state (to say "this survey has closed")."""
    params = {"contact_hash": contact_hash, "channels": list(channels)}
    return session.execute(_LATEST_INVITATION, params).scalar_one_or_none()


def cancel_pending(session: Session, transaction_id: uuid.UUID, reason: str, now: datetime | None = None) -> int:
    """Cancel the transaction's invitations not yet handed to a provider (a post-call survey took their place)."""
    now = now or utcnow()
    rows = (
        session.execute(
            select(Invitation.id).where(
                Invitation.transaction_id == transaction_id, Invitation.state == InvitationState.SCHEDULED
            )
        )
        .scalars()
        .all()
    )
    lifecycle.move_many(session, rows, InvitationState.CANCELLED, lifecycle.Event.CANCELLED, reason, now=now,
                        changes={"claimed_by": None, "lease_until": None})  # fmt: skip
    return len(rows)


# -- one turn --------------------------------------------------------------------------------------------------


@dataclass
class Turn:
    """What a channel says next: a re-prompt of ``question``, the next ``question``, or the end."""

    question: Question | None
    reprompt: bool = False
    recorded: bool = False
    skipped: str | None = None
    completed: bool = False


def state_of(response: Response) -> dict[str, Any]:
    return dict(response.state or {})


def pending(response: Response) -> str | None:
    value = state_of(response).get("pending")
    return str(value) if value else None


def _save(response: Response, **changes: Any) -> None:
    state = state_of(response)
    state.update(changes)
    response.state = state  # a new dict, so the JSON column is seen as changed


def ask(session: Session, sessions: SurveySessions, response: Response, channel: str) -> Turn:
    """The question to ask now (the pending one, else the next unanswered and not skipped one), or the end."""
    skipped = state_of(response).get("skipped", [])
    current = pending(response)
    flow = sessions.flow_of(response)
    if current:
        return Turn(flow.question(current))
    question = sessions.next_question(session, response, channel, skipped)
    if question is None:
        sessions.complete(session, response)
        _save(response, pending=None)
        return Turn(None, completed=True)
    _save(response, pending=question.id, reprompts=0)
    return Turn(question)


def take(
    session: Session,
    sessions: SurveySessions,
    response: Response,
    channel: str,
    read: Callable[[Question], Given],
    now: datetime | None = None,
) -> Turn:
    """Apply one answer to the pending question, then say what comes next.

    ``read`` turns the channel's input into engine terms for that question, raising :class:`InvalidAnswer` when
    it cannot; the first unreadable answer re-asks the question, the second skips it.
    """
    current = pending(response)
    if current is None:
        return ask(session, sessions, response, channel)
    flow = sessions.flow_of(response)
    question = flow.question(current)
    try:
        given = read(question)
        answer = sessions.record(session, response, question, given, now)
    except InvalidAnswer:
        reprompts = int(state_of(response).get("reprompts", 0))
        if reprompts < MAX_REPROMPTS:
            _save(response, reprompts=reprompts + 1)
            return Turn(question, reprompt=True)
        skipped = [*state_of(response).get("skipped", []), question.id]
        _save(response, pending=None, reprompts=0, skipped=skipped)
        turn = ask(session, sessions, response, channel)
        turn.skipped = question.id
        return turn
    if answer is None:  # an optional question left empty: move on
        skipped = [*state_of(response).get("skipped", []), question.id]
        _save(response, pending=None, reprompts=0, skipped=skipped)
    else:
        _save(response, pending=None, reprompts=0)
    turn = ask(session, sessions, response, channel)
    turn.recorded = answer is not None
    return turn


def skip(session: Session, sessions: SurveySessions, response: Response, channel: str) -> Turn:
    """Leave the pending question unanswered and move on (a caller who pressed nothing twice)."""
    current = pending(response)
    if current is not None:
        skipped = [*state_of(response).get("skipped", []), current]
        _save(response, pending=None, reprompts=0, skipped=skipped)
    turn = ask(session, sessions, response, channel)
    turn.skipped = current
    return turn


def no_input(session: Session, sessions: SurveySessions, response: Response, channel: str) -> Turn:
    """Nothing came (an IVR gather timed out): ask once more, then skip."""
    reprompts = int(state_of(response).get("reprompts", 0))
    current = pending(response)
    if current is not None and reprompts < MAX_REPROMPTS:
        _save(response, reprompts=reprompts + 1)
        return Turn(sessions.flow_of(response).question(current), reprompt=True)
    return skip(session, sessions, response, channel)
