"""The invitation lifecycle (engine/delivery/lifecycle.py): one transition table, one way to move an invitation.

A property test drives random sequences of what happens to an invitation (sends with every outcome, a worker lost
mid-send and reaped, provider reports in any order and replayed, replies, answers, hang-ups, expiry,
cancellation, arbitrary moves) through the real engine on both databases; after every step the invitation's
history, replayed through the table, must give its state, and a refused move must change nothing. Table tests pin
specific moves, and a quality test fails when a module other than the lifecycle assigns an invitation's state.
"""

from __future__ import annotations

import ast
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from engine.channels import Outcome
from engine.delivery import lifecycle
from engine.delivery.dispatch import Dispatcher, DispatchStats, expire_overdue, reap_lost_sends
from engine.delivery.lifecycle import FINAL, FOLLOWING, MOVES, Event, IllegalMove, Move, legal
from engine.delivery.provider_reports import Report, apply_status, settle_held
from engine.store.db import unit_of_work
from engine.store.models import DeliveryEvent, Invitation, InvitationState
from engine.surveys.conversations import cancel_pending
from tests.helpers import post, tx

S = InvitationState
ROOT = Path(__file__).resolve().parent.parent
NY = ZoneInfo("America/New_York")


def _daytime() -> datetime:
    """A moment (rounded to the minute) when it is daytime in New York: quiet hours never cancel a send."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    hour = now.astimezone(NY).hour
    return now if 9 <= hour < 19 else now + timedelta(hours=(13 - hour) % 24)


def _schedule(client, auth) -> uuid.UUID:
    phone = f"+1202555{uuid.uuid4().int % 10_000:04d}"
    body = tx(f"L-{uuid.uuid4().hex[:12]}", service="texting", contact={"phone": phone}, consent={"sms": True})
    result = post(client, body, auth).get_json()
    assert result["decision"] == "scheduled", result
    return uuid.UUID(result["invitation"]["id"])


def _seen(runtime, invitation_id) -> tuple[InvitationState, int]:
    """The invitation's state and how many delivery events it has."""
    with runtime.sessions() as session:
        state = session.execute(select(Invitation.state).where(Invitation.id == invitation_id)).scalar_one()
        events = session.execute(
            select(func.count()).select_from(DeliveryEvent).where(DeliveryEvent.invitation_id == invitation_id)
        ).scalar_one()
    return state, events


def _replayed(runtime, invitation_id, answered_after: int | None) -> InvitationState:
    """The state the invitation's recorded history gives, every step checked against the table (an answer is not a
    delivery event: ``answered_after`` is the id of the last event before it, 0 when there was none). A failure
    report after a recorded reply leaves a delivered invitation delivered (``lifecycle._contradicted``)."""
    state = S.SCHEDULED
    replied = False
    with runtime.sessions() as session:
        events = session.execute(
            select(DeliveryEvent).where(DeliveryEvent.invitation_id == invitation_id).order_by(DeliveryEvent.id)
        ).scalars()
        for e in events:
            if answered_after is not None and e.id > answered_after and state is not S.ANSWERED:
                assert legal(state, S.ANSWERED, Event.ANSWERED)
                state = S.ANSWERED
            if e.provider_event_id is not None:  # a provider's report: moves only where the table allows
                contradicted = replied and state is S.DELIVERED and e.state is S.FAILED
                if e.state is not None and legal(state, e.state, Event.REPORTED) and not contradicted:
                    state = e.state
                continue
            replied = replied or e.event == Event.REPLIED.value
            if e.state is None:  # a note, not a move (an outcome a report beat, a reminder)
                continue
            assert legal(state, e.state, Event(e.event)), f"{e.event}: {state} -> {e.state}"
            state = e.state
    if answered_after is not None and state is not S.ANSWERED:
        assert legal(state, S.ANSWERED, Event.ANSWERED)
        state = S.ANSWERED
    return state


# -- (a) random sequences through the real engine -------------------------------------------------------------

OUTCOMES = [Outcome.SENT, Outcome.DELIVERED, Outcome.FAILED, Outcome.UNKNOWN, Outcome.RETRY]
REPORTED = [S.SENT, S.DELIVERED, S.FAILED, None]
STEP = st.one_of(
    st.tuples(st.just("send"), st.sampled_from(OUTCOMES)),
    st.tuples(st.just("lost")),  # claimed and made ``sending``, then the worker died: no outcome
    st.tuples(st.just("reap")),
    st.tuples(st.just("expire")),
    st.tuples(st.just("report"), st.sampled_from(REPORTED), st.integers(0, 3)),  # small keys: replays happen
    st.tuples(st.just("reply")),
    st.tuples(st.just("settle")),
    st.tuples(st.just("answer")),
    st.tuples(st.just("hang_up")),  # an IVR call that ended unanswered: a "failed" report
    st.tuples(st.just("cancel")),
    st.tuples(st.just("move"), st.sampled_from(list(Event)), st.sampled_from(list(S))),
    st.tuples(st.just("rows"), st.sampled_from(list(S)), st.sampled_from(list(Event)), st.sampled_from(list(S))),
)


def _direct(runtime, invitation_id, to: InvitationState, event: Event, now: datetime) -> bool:
    with unit_of_work(runtime.sessions) as session:
        invitation = session.get(Invitation, invitation_id, with_for_update=True)
        assert invitation is not None
        return lifecycle.move(session, invitation, to, event, "because", now=now)


def _step(runtime, stub_channel, invitation_id, step, t: datetime) -> bool | None:
    """Do one step; for a direct move, whether the lifecycle took it (None: the engine decided)."""
    kind = step[0]
    provider_id = f"SM{invitation_id.hex[:30]}"  # the scripted channel's provider id for this invitation
    if kind == "send":
        stub_channel.script.clear()
        stub_channel.script.append(step[1])
        Dispatcher(runtime).run_once(t)
    elif kind == "lost":
        dispatcher = Dispatcher(runtime, lease=timedelta(seconds=1))
        dispatcher.prepare(dispatcher.claim(t), t, DispatchStats())
    elif kind == "reap":
        reap_lost_sends(runtime, t + timedelta(hours=1))
    elif kind == "expire":
        expire_overdue(runtime, t + timedelta(days=3))
    elif kind in ("report", "hang_up"):
        state, key = (S.FAILED, 9) if kind == "hang_up" else step[1:]
        word = f"status:{state.value if state else 'queued'}"
        with unit_of_work(runtime.sessions) as session:
            apply_status(session, Report(provider_id, f"{provider_id}:{key}", word, state, detail=word), t)
        settle_held(runtime.sessions, [provider_id])
    elif kind == "reply":
        return _direct(runtime, invitation_id, S.DELIVERED, Event.REPLIED, t)
    elif kind == "settle":
        return _direct(runtime, invitation_id, S.SENT, Event.SETTLED, t)
    elif kind == "answer":
        return _direct(runtime, invitation_id, S.ANSWERED, Event.ANSWERED, t)
    elif kind == "cancel":
        with unit_of_work(runtime.sessions) as session:
            transaction_id = session.get(Invitation, invitation_id).transaction_id  # type: ignore[union-attr]
            cancel_pending(session, transaction_id, "post_call_survey", t)
    elif kind == "move":
        return _direct(runtime, invitation_id, step[2], step[1], t)
    elif kind == "rows":
        current, event, to = step[1:]
        try:
            with unit_of_work(runtime.sessions) as session:
                lifecycle.move_rows(session, current, [Move(invitation_id, to, event, "rows")], t)
        except IllegalMove:
            return False
        return True
    return None


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=10))
def test_random_event_sequences_never_reach_an_illegal_state(client, auth, runtime, stub_channel, steps):
    invitation_id = _schedule(client, auth)
    t = _daytime() + timedelta(minutes=1)
    answered_after: int | None = None
    for step in steps:
        before, events_before = _seen(runtime, invitation_id)
        took = _step(runtime, stub_channel, invitation_id, step, t)
        after, events_after = _seen(runtime, invitation_id)
        if took is not None:
            named = {"reply": (Event.REPLIED, S.DELIVERED), "settle": (Event.SETTLED, S.SENT),
                     "answer": (Event.ANSWERED, S.ANSWERED)}  # fmt: skip
            event, to = named[step[0]] if step[0] in named else (step[-2], step[-1])
            current = step[1] if step[0] == "rows" else before
            assert took == (legal(current, to, event) and current is before), (step, before)
            if took:
                assert after is to
                assert events_after == events_before + (event not in lifecycle.UNRECORDED)
            else:  # refused: nothing changed
                assert (after, events_after) == (before, events_before)
            if took and event is Event.ANSWERED:
                with runtime.sessions() as session:
                    answered_after = session.execute(
                        select(func.coalesce(func.max(DeliveryEvent.id), 0)).where(
                            DeliveryEvent.invitation_id == invitation_id
                        )
                    ).scalar_one()
        # Whatever the engine did, it went along the table (at most a claim-send-outcome chain in one step) ...
        assert after is before or after in FOLLOWING[before] or any(after in FOLLOWING[s] for s in FOLLOWING[before])
        # ... and the recorded history, replayed through the table, gives the state.
        assert _replayed(runtime, invitation_id, answered_after) is after, step
        t += timedelta(seconds=1)


# -- (b) the table, move by move --------------------------------------------------------------------------------


def test_the_table_covers_every_state_and_keeps_the_final_ones_final():
    reached = {S.SCHEDULED}
    while True:
        more = reached | {to for s in reached for to in FOLLOWING[s]}
        if more == reached:
            break
        reached = more
    assert reached == set(S)  # every state of SPEC §3 can be reached from ``scheduled``
    assert {S.ANSWERED, S.FAILED, S.EXPIRED, S.CANCELLED} == FINAL
    # Only a retry (from ``sending``) goes back to the queue.
    back = {to for moves in MOVES.values() for s, tos in moves.items() if s is not S.SENDING for to in tos}
    assert S.SCHEDULED not in back


@pytest.mark.parametrize(
    ("current", "to", "event", "allowed"),
    [
        (S.SCHEDULED, S.SENDING, Event.SENDING, True),
        (S.SCHEDULED, S.SENT, Event.SENT, False),  # never sent without being ``sending`` first
        (S.SENDING, S.SCHEDULED, Event.RETRY, True),
        (S.SENT, S.SCHEDULED, Event.RETRY, False),  # what went out is never resent
        (S.SENDING, S.UNKNOWN, Event.REAPED, True),
        (S.UNKNOWN, S.SENT, Event.SETTLED, True),
        (S.UNKNOWN, S.DELIVERED, Event.REPLIED, True),
        (S.SENT, S.DELIVERED, Event.REPLIED, True),  # a reply proves a sent text arrived
        (S.FAILED, S.DELIVERED, Event.REPLIED, False),
        (S.SENDING, S.FAILED, Event.REPORTED, True),
        (S.DELIVERED, S.SENT, Event.REPORTED, False),  # a late "sent" after "delivered" changes nothing
        (S.DELIVERED, S.FAILED, Event.REPORTED, True),  # an asynchronous bounce, reported after "delivered"
        (S.FAILED, S.DELIVERED, Event.REPORTED, False),  # ... and a "delivered" that arrives after the bounce
        (S.ANSWERED, S.FAILED, Event.REPORTED, False),  # an answered call's hang-up report leaves it answered
        (S.DELIVERED, S.ANSWERED, Event.ANSWERED, True),
        (S.UNKNOWN, S.ANSWERED, Event.ANSWERED, False),
        (S.SCHEDULED, S.EXPIRED, Event.EXPIRED, True),
        (S.SENDING, S.EXPIRED, Event.EXPIRED, False),  # a send in flight is reaped, not expired
        (S.SCHEDULED, S.CANCELLED, Event.CANCELLED, True),
        (S.SENT, S.CANCELLED, Event.CANCELLED, False),
        (S.EXPIRED, S.SCHEDULED, Event.RETRY, False),
    ],
)
def test_specific_moves(current, to, event, allowed):
    assert legal(current, to, event) is allowed


def test_a_refused_move_changes_nothing_and_a_legal_one_records_its_event(client, auth, runtime):
    invitation_id = _schedule(client, auth)
    now = _daytime()
    assert _direct(runtime, invitation_id, S.SENT, Event.SENT, now) is False
    assert _seen(runtime, invitation_id) == (S.SCHEDULED, 0)
    with pytest.raises(IllegalMove), unit_of_work(runtime.sessions) as session:
        invitation = session.get(Invitation, invitation_id)
        lifecycle.move(session, invitation, S.ANSWERED, Event.ANSWERED, now=now, strict=True)
    assert _direct(runtime, invitation_id, S.EXPIRED, Event.EXPIRED, now) is True
    with runtime.sessions() as session:
        invitation = session.get(Invitation, invitation_id)
        event = session.execute(select(DeliveryEvent).where(DeliveryEvent.invitation_id == invitation_id)).scalar_one()
    assert invitation.state is S.EXPIRED and invitation.reason == "because" and invitation.updated_at == now
    assert (event.event, event.state, event.detail) == ("expired", S.EXPIRED, "because")


def test_bulk_moves_are_guarded_by_the_state(client, auth, runtime):
    first, second = _schedule(client, auth), _schedule(client, auth)
    now = _daytime()
    # move_rows: a row no longer in the state the caller read refuses the whole batch (rolled back).
    assert _direct(runtime, second, S.CANCELLED, Event.CANCELLED, now)
    with pytest.raises(IllegalMove), unit_of_work(runtime.sessions) as session:
        lifecycle.move_rows(session, S.SCHEDULED, [Move(first, S.SENDING, Event.SENDING),
                                                   Move(second, S.SENDING, Event.SENDING)], now)  # fmt: skip
    assert _seen(runtime, first) == (S.SCHEDULED, 0) and _seen(runtime, second) == (S.CANCELLED, 1)
    # move_many: only the invitations in a legal from-state move; the others are left as they are.
    with unit_of_work(runtime.sessions) as session:
        moved = lifecycle.move_many(session, [first, second], S.EXPIRED, Event.EXPIRED, "window_passed", now=now)
    assert moved == [first]
    assert _seen(runtime, first) == (S.EXPIRED, 1) and _seen(runtime, second) == (S.CANCELLED, 1)


def test_a_replayed_report_is_a_no_op(client, auth, runtime, stub_channel):
    invitation_id = _schedule(client, auth)
    Dispatcher(runtime).run_once(_daytime() + timedelta(minutes=1))
    provider_id = f"SM{invitation_id.hex[:30]}"
    report = Report(provider_id, f"{provider_id}:delivered", "status:delivered", S.DELIVERED)
    for expected in (True, False):
        with unit_of_work(runtime.sessions) as session:
            assert apply_status(session, report) is expected
        assert _seen(runtime, invitation_id) == (S.DELIVERED, 3)  # sending, sent, the report once


# -- (c) nothing else assigns the state ------------------------------------------------------------------------

LIFECYCLE = ROOT / "engine" / "delivery" / "lifecycle.py"
RAW_UPDATE = re.compile(r"update\s+\"?invitations\"?\s+set\b[^;]*\bstate\b", re.IGNORECASE | re.DOTALL)


def _names_invitations_table(node: ast.AST, aliases: set[str]) -> bool:
    """``Invitation``, ``Invitation.__table__``, ``cast(Table, Invitation.__table__)`` or a module alias of it."""
    if isinstance(node, ast.Name):
        return node.id == "Invitation" or node.id in aliases
    if isinstance(node, ast.Attribute) and node.attr == "__table__":
        return _names_invitations_table(node.value, aliases)
    if isinstance(node, ast.Call):
        return any(_names_invitations_table(a, aliases) for a in node.args)
    return False


def _update_of_invitations(node: ast.AST, aliases: set[str]) -> bool:
    """Whether a call chain (``update(Invitation).where(...).values``) starts with ``update(<invitations>)``."""
    while isinstance(node, (ast.Attribute, ast.Call)):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "update":
                return any(_names_invitations_table(a, aliases) for a in node.args)
            node = node.func
        else:
            node = node.value
    return False


def _has_state_key(node: ast.AST, *also: str) -> bool:
    keys = {k.value for k in node.keys if isinstance(k, ast.Constant)} if isinstance(node, ast.Dict) else set()
    return {"state", *also} <= keys


def state_writes(source: str) -> list[str]:
    """Where this module's code assigns an invitation's state (line: what), outside the lifecycle's one way.

    Caught: ``<x>.state = ...`` (but ``response.state``, a conversation's own JSON), ``setattr(x, "state", ...)``,
    ``update(Invitation)...values(state=...)`` or ``.values({"state": ...})``, ``execute(update(Invitation), rows)``
    and ``update_rows(session, <the invitations table>, rows)`` in a module that builds rows with an ``"id"`` and a
    ``"state"``, and raw ``UPDATE invitations SET ... state`` SQL."""
    tree = ast.parse(source)
    aliases = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and _names_invitations_table(node.value, set())
        for target in node.targets
        if isinstance(target, ast.Name) and target.id != "Invitation"
    }
    state_rows = any(_has_state_key(node, "id") for node in ast.walk(tree))  # an invitation's row (not an event's)
    found = []
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and part.attr == "state" and isinstance(part.ctx, ast.Store):
                    owner = ast.unparse(part.value)
                    if owner.split(".")[-1] != "response":
                        found.append(f"{node.lineno}: {owner}.state =")
        if not isinstance(node, ast.Call):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_UPDATE.search(node.value):
                found.append(f"{node.lineno}: raw SQL")
            continue
        func = node.func
        named = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        second = node.args[1] if len(node.args) >= 2 else None
        if named == "setattr" and isinstance(second, ast.Constant) and second.value == "state":
            found.append(f"{node.lineno}: setattr state")
        sets_state = any(k.arg == "state" for k in node.keywords) or any(_has_state_key(a) for a in node.args)
        if (
            isinstance(func, ast.Attribute)
            and named == "values"
            and sets_state
            and _update_of_invitations(func.value, aliases)
        ):
            found.append(f"{node.lineno}: update(Invitation).values(state=...)")
        bulk = (isinstance(func, ast.Attribute) and func.attr == "execute" and len(node.args) >= 2
                and _update_of_invitations(node.args[0], aliases))  # fmt: skip
        rows = named == "update_rows" and second is not None and _names_invitations_table(second, aliases)
        if (bulk or rows) and state_rows:
            found.append(f"{node.lineno}: bulk update of invitations with state rows")
    return found


PLANTED = {
    "attribute": "def f(inv):\n    inv.state = InvitationState.SENT\n",
    "nested attribute": "def f(self):\n    self.invitation.state = 'sent'\n",
    "tuple": "def f(a, inv):\n    a.x, inv.state = 1, 'sent'\n",
    "annotated": "def f(inv):\n    inv.state: str = 'sent'\n",
    "setattr": "def f(inv):\n    setattr(inv, 'state', 'sent')\n",
    "values keyword": "def f(s):\n    s.execute(update(Invitation).where(Invitation.id == 1).values(state='sent'))\n",
    "values dict": "def f(s):\n    s.execute(update(Invitation).values({'state': 'sent', 'reason': None}))\n",
    "table alias": "T = cast(Table, Invitation.__table__)\ndef f(s):\n    s.execute(update(T).values(state='x'))\n",
    "orm bulk": "def f(s, ids):\n    s.execute(update(Invitation), [{'id': i, 'state': 'sent'} for i in ids])\n",
    "update_rows": "INV = Invitation.__table__\ndef f(s, i):\n    update_rows(s, INV, [{'id': i, 'state': 'sent'}])\n",
    "raw sql": "def f(c):\n    c.exec_driver_sql(\"UPDATE invitations SET state = 'sent' WHERE id = ?\", (1,))\n",
}
HARMLESS = {
    "a conversation's state": "def f(response):\n    response.state = {'ended': True}\n",
    "reading": "def f(inv):\n    return inv.state is InvitationState.SENT and Invitation.state.in_(['sent'])\n",
    "other update": "def f(s):\n    s.execute(update(Contact).values(state='x'))\n",
    "creating": "def f(s):\n    insert_rows(s, INVITATIONS, [{'id': 1, 'state': 'scheduled'}])\n",
    "event rows": "I = Invitation.__table__\ndef f(s, e):\n    x = {'invitation_id': 1, 'state': 'sent'}\n"
    "    update_rows(s, I, [{'id': 1, 'provider_id': 'p'}])\n",
    "another column": "def f(s):\n    s.execute(update(Invitation).values(claimed_by=None))\n",
}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_the_detector_catches_a_planted_state_write(name):
    assert state_writes(PLANTED[name]), name


@pytest.mark.parametrize("name", sorted(HARMLESS))
def test_the_detector_leaves_other_code_alone(name):
    assert state_writes(HARMLESS[name]) == [], name


def test_no_module_but_the_lifecycle_assigns_an_invitation_state():
    modules = sorted([*(ROOT / "engine").rglob("*.py"), *(ROOT / "channels").rglob("*.py")])
    assert LIFECYCLE in modules and len(modules) > 50
    offenders = {
        str(path.relative_to(ROOT)): writes
        for path in modules
        if path != LIFECYCLE and (writes := state_writes(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
    assert state_writes(LIFECYCLE.read_text(encoding="utf-8"))  # the one place that does: the detector sees it
