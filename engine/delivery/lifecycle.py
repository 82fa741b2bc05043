"""The invitation lifecycle: SPEC §3's states, every move between them, and the one way to make a move.

An invitation's ``state`` is assigned here and nowhere else (tests/test_lifecycle.py checks every module).
:data:`MOVES` is the whole table: for each :class:`Event` (what happened), the states it may move an invitation
from and the states it may move it to. A move names the event, the state wanted and (when it ends something) the
reason; it is refused, changing nothing, unless the table allows it from the invitation's current state, and it
records the delivery event that says so (the event's value, or the provider's own word for a report).

Three ways in, one table:

- :func:`move`: one invitation the caller holds (read, locked where it matters, in this session);
- :func:`move_rows`: many invitations a caller read and locked in this transaction, all in one state, each to its
  own state (dispatch's batches): set-based statements guarded by ``state = <that state>``;
- :func:`move_many`: ids, whatever their state, to one state: one ``UPDATE ... WHERE state IN (<legal from-states>)``
  (the invitations that were not there are left as they are);
- :func:`report`: a provider's delivery report, recorded once by its key and applied as far as the table allows (a
  replayed or late report is a no-op, never an error).

Some things happen to an invitation without a move: a claim (the row stays ``scheduled``; a worker lost before it
prepared anything leaves it to the queue when the lease runs out), a reminder, a send's outcome that a status
callback beat (dispatch notes it, stateless).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.common.limits import column_length
from engine.store.db import insert_rows, update_rows
from engine.store.models import DeliveryEvent, Invitation, InvitationState, Response

S = InvitationState
DELIVERY_EVENTS = cast(Table, DeliveryEvent.__table__)
INVITATIONS = cast(Table, Invitation.__table__)


class Event(StrEnum):
    """What moves an invitation; the value is the delivery event recorded for it."""

    # Dispatch (engine/delivery/dispatch.py, SPEC §2 rule 10).
    SENDING = "sending"  # checked again and committed before any provider is called
    RECHECKED = "rechecked"  # refused by that check: window passed, PRA expired, opted out, no consent, ...
    SENT = "sent"  # the provider took it
    DELIVERED = "delivered"  # the provider took it and says it arrived
    FAILED = "failed"  # the provider refused it
    UNKNOWN = "unknown"  # no telling whether it went out (a timeout after the request, a channel error)
    RETRY = "retry"  # surely nothing went out: back to the queue, later
    RETRY_EXHAUSTED = "retry_exhausted"  # ... but no attempt or no window is left
    REAPED = "reaped"  # its worker was lost mid-send: never resent blind
    EXPIRED = "expired"  # its send window passed while it waited
    CANCELLED = "cancelled"  # another survey took its place (a post-call survey)
    # Settling an ``unknown`` send.
    SETTLED = "settled"  # the provider's look-up found it (engine/delivery/settlement.py)
    REPLIED = "reply_received"  # the customer replied to the text, so it arrived
    # A provider's status report (a callback, an event webhook): recorded under the provider's word.
    REPORTED = "reported"
    # The customer completed the survey: the response is its record (no delivery event).
    ANSWERED = "answered"


# The longest reason an invitation keeps (``invitations.reason``).
REASON_LENGTH = column_length(Invitation.reason)
_AFTER_SEND = frozenset({S.SENT, S.DELIVERED, S.FAILED})
# The whole table: event -> {from state -> the states it may move to}.
MOVES: Mapping[Event, Mapping[InvitationState, frozenset[InvitationState]]] = {
    Event.SENDING: {S.SCHEDULED: frozenset({S.SENDING})},
    Event.RECHECKED: {S.SCHEDULED: frozenset({S.CANCELLED, S.EXPIRED, S.FAILED})},
    Event.SENT: {S.SENDING: frozenset({S.SENT})},
    Event.DELIVERED: {S.SENDING: frozenset({S.DELIVERED})},
    Event.FAILED: {S.SENDING: frozenset({S.FAILED})},
    Event.UNKNOWN: {S.SENDING: frozenset({S.UNKNOWN})},
    Event.RETRY: {S.SENDING: frozenset({S.SCHEDULED})},
    Event.RETRY_EXHAUSTED: {S.SENDING: frozenset({S.EXPIRED})},
    Event.REAPED: {S.SENDING: frozenset({S.UNKNOWN})},
    Event.EXPIRED: {S.SCHEDULED: frozenset({S.EXPIRED})},
    Event.CANCELLED: {S.SCHEDULED: frozenset({S.CANCELLED})},
    Event.SETTLED: {S.UNKNOWN: frozenset({S.SENT})},
    # A reply proves the text arrived: it settles an ``unknown`` send, and marks a ``sent`` one delivered, so that a
    # late "undelivered" report cannot take the opportunity back from a customer who answered (SPEC §6). On a
    # ``delivered`` one it changes no state; it is recorded (once: :func:`replied`) for :func:`_contradicted`.
    Event.REPLIED: {
        S.UNKNOWN: frozenset({S.DELIVERED}),
        S.SENT: frozenset({S.DELIVERED}),
        S.DELIVERED: frozenset({S.DELIVERED}),
    },
    # A report never moves an invitation backwards: a late "sent" after "delivered" changes nothing, "unknown" is
    # settled by any report, and an answered or failed invitation stays so (a late "delivered" after a bounce
    # too). A delivered one can still fail: a receiving server may accept a message and bounce it later (an
    # asynchronous bounce, reported after "delivered"), and SPEC §6 takes such an invitation out of the
    # opportunities ("a later bounce or undelivered report takes one out") -- unless the customer showed they got
    # it (a reply, a response begun): :func:`report` checks that.
    Event.REPORTED: {
        S.SENDING: _AFTER_SEND,
        S.UNKNOWN: _AFTER_SEND,
        S.SENT: frozenset({S.DELIVERED, S.FAILED}),
        S.DELIVERED: frozenset({S.FAILED}),
    },
    Event.ANSWERED: {S.SENT: frozenset({S.ANSWERED}), S.DELIVERED: frozenset({S.ANSWERED})},
}
# Events whose move is recorded elsewhere than in ``delivery_events``.
UNRECORDED = frozenset({Event.ANSWERED})
# The state graph, whatever the event: from -> the states that may follow.
FOLLOWING: Mapping[InvitationState, frozenset[InvitationState]] = {
    state: frozenset().union(*(moves.get(state, frozenset()) for moves in MOVES.values())) for state in S
}
# Where an invitation may end: no event moves it on.
FINAL = frozenset(state for state, after in FOLLOWING.items() if not after)


class IllegalMove(Exception):
    """A move the table does not allow, from a state the caller was sure of (a broken invariant, not bad input)."""


def legal(current: InvitationState, to: InvitationState, event: Event) -> bool:
    """Whether ``event`` may move an invitation from ``current`` to ``to``."""
    return to in MOVES[event].get(current, ())


def sources(event: Event, to: InvitationState) -> frozenset[InvitationState]:
    """The states from which ``event`` may move an invitation to ``to``."""
    return frozenset(current for current, after in MOVES[event].items() if to in after)


def _reason(text: str | None) -> str | None:
    """A reason as the invitation keeps it: cut to its column (a provider's words, an error code, are any length)."""
    return text[:REASON_LENGTH] if text else text


def _assign(invitation: Invitation, to: InvitationState, now: datetime, changes: Mapping[str, Any]) -> None:
    invitation.state = to
    for name, value in changes.items():
        setattr(invitation, name, _reason(value) if name == "reason" else value)
    invitation.updated_at = now


def move(
    session: Session,
    invitation: Invitation,
    to: InvitationState,
    event: Event,
    reason: str | None = None,
    *,
    now: datetime,
    detail: str | None = None,
    changes: Mapping[str, Any] | None = None,
    strict: bool = False,
) -> bool:
    """Move one invitation from its current state to ``to`` because of ``event``; False when the table does not
    allow it (nothing changes), or :class:`IllegalMove` with ``strict``.

    ``reason`` (when given) is stored on the invitation; the delivery event's detail is ``detail`` or the reason.
    ``changes``: other columns the move sets (``sent_at``, ``provider_id``, the lease...)."""
    if not legal(invitation.state, to, event):
        if strict:
            raise IllegalMove(f"{event.value}: {invitation.state.value} -> {to.value} ({invitation.id})")
        return False
    _assign(invitation, to, now, {**({"reason": reason} if reason is not None else {}), **(changes or {})})
    if event not in UNRECORDED:
        session.add(DeliveryEvent(invitation_id=invitation.id, at=now, event=event.value, state=to,
                                  detail=detail or reason))  # fmt: skip
    return True


def replied(session: Session, invitation: Invitation, *, now: datetime) -> bool:
    """The customer texted back: the text arrived. A ``sent`` invitation becomes ``delivered``; on a ``delivered``
    one the first reply is recorded, so that a failure report arriving later cannot take the opportunity away
    (:func:`_contradicted`); later replies add nothing. False when nothing was recorded."""
    if invitation.state is S.DELIVERED:
        recorded = select(DeliveryEvent.id).where(DeliveryEvent.invitation_id == invitation.id,
                                                  DeliveryEvent.event == Event.REPLIED.value)  # fmt: skip
        if session.execute(select(recorded.exists())).scalar():
            return False
    return move(session, invitation, S.DELIVERED, Event.REPLIED, now=now,
                detail="the customer replied, so the text was delivered")  # fmt: skip


def _contradicted(session: Session, invitation: Invitation, to: InvitationState) -> bool:
    """Whether the customer has already shown that a delivered invitation reached them (they replied to it, or began
    its survey), which a later failure report then cannot undo: a respondent keeps their opportunity."""
    if not (invitation.state is S.DELIVERED and to is S.FAILED):
        return False
    replied = select(DeliveryEvent.id).where(DeliveryEvent.invitation_id == invitation.id,
                                             DeliveryEvent.event == Event.REPLIED.value)  # fmt: skip
    responded = select(Response.id).where(Response.invitation_id == invitation.id)
    return bool(session.execute(select(or_(replied.exists(), responded.exists()))).scalar())


@dataclass(frozen=True, slots=True)
class Move:
    """One row of :func:`move_rows`: the invitation, where it goes, why, and the other columns it sets."""

    invitation_id: Any
    to: InvitationState
    event: Event
    detail: str | None = None
    columns: Mapping[str, Any] = field(default_factory=dict)


def move_rows(session: Session, current: InvitationState, moves: Sequence[Move], now: datetime) -> None:
    """Apply many moves of invitations this transaction read (and locked) in ``current``, set-based: one guarded
    update per set of columns, one insert of their delivery events. Raises :class:`IllegalMove` (the transaction
    is then rolled back) for a move the table does not allow or a row no longer in ``current``."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    events: list[dict[str, Any]] = []
    for m in moves:
        if not legal(current, m.to, m.event):
            raise IllegalMove(f"{m.event.value}: {current.value} -> {m.to.value} ({m.invitation_id})")
        row = {"id": m.invitation_id, "state": m.to, **m.columns, "updated_at": now}
        groups.setdefault(tuple(row), []).append(row)
        if m.event not in UNRECORDED:
            events.append({"invitation_id": m.invitation_id, "at": now, "event": m.event.value, "state": m.to,
                           "detail": m.detail})  # fmt: skip
    for rows in groups.values():
        written = update_rows(session, INVITATIONS, rows, only=("state", current.value))
        if written != len(rows):
            raise IllegalMove(f"{len(rows) - written} of {len(rows)} invitations were no longer {current.value}")
    insert_rows(session, DELIVERY_EVENTS, events)


def move_many(
    session: Session,
    ids: Collection[Any],
    to: InvitationState,
    event: Event,
    reason: str | None = None,
    *,
    now: datetime,
    changes: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Move the invitations among ``ids`` that are in a state ``event`` may move to ``to`` (one ``UPDATE ... WHERE
    state IN (...)``), record their delivery events; the ids moved (the others are left as they are)."""
    if not ids:
        return []
    values = {"state": to, "updated_at": now, **({"reason": _reason(reason)} if reason is not None else {}),
              **(changes or {})}  # fmt: skip
    moved = list(
        session.execute(
            update(Invitation)
            .where(Invitation.id.in_(list(ids)), Invitation.state.in_(sorted(sources(event, to))))
            .values(values)
            .returning(Invitation.id)
        ).scalars()
    )
    if moved and event not in UNRECORDED:
        insert_rows(session, DELIVERY_EVENTS, [{"invitation_id": i, "at": now, "event": event.value, "state": to,
                                                "detail": reason} for i in moved])  # fmt: skip
    return moved


def report(
    session: Session,
    invitation: Invitation,
    to: InvitationState | None,
    *,
    word: str,
    key: str,
    detail: str | None,
    now: datetime,
) -> bool:
    """Record a provider's report (its ``word``, once by its ``key``) and move the invitation to ``to`` if the table
    allows (:data:`Event.REPORTED`). False when that report was recorded before: a replay changes nothing.

    A report the table does not let move the invitation (a late "sent" after "delivered") is still recorded: the
    history keeps what the provider said. A move to ``failed`` stores the report's detail as the reason; the first
    report that it went out stamps ``sent_at``."""
    try:
        with session.begin_nested():
            session.add(DeliveryEvent(invitation_id=invitation.id, at=now, event=word, state=to, detail=detail,
                                      provider_event_id=key))  # fmt: skip
            session.flush()
    except IntegrityError:
        return False
    if to is not None and legal(invitation.state, to, Event.REPORTED) and not _contradicted(session, invitation, to):
        changes: dict[str, Any] = {}
        if to is S.FAILED:
            changes["reason"] = detail or word
        if invitation.sent_at is None and to in (S.SENT, S.DELIVERED):
            changes["sent_at"] = now
        _assign(invitation, to, now, changes)
    return True
