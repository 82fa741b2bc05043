"""Paced sending: slots of a sender's ``send_rate``, shared by every dispatcher through one locked row per sender.

Each sender (the Twilio number or Messaging Service for ``sms`` and ``ivr``, the From address for ``email``: each
channel names its own, ``Channel.sender``, and its ``default_send_rate``) has a ``send_pacing`` row holding the next moment it may send. After a claim a dispatcher locks that row
(``SELECT ... FOR UPDATE``), takes the slots that fall within the next :data:`HORIZON` — one every ``1/rate``
seconds from that moment, at the soonest :data:`LEAD` from now — and moves the moment past them; the rest of its claim goes back to the queue unsent.
So every worker process on PostgreSQL draws on one budget, and a provider is never handed more than it can send
at once: its queue never carries a text into quiet hours or past the window. On SQLite only ``serve`` dispatches,
and the same table does the same work there.

Slots are on the wall clock (the real sending moments), whatever moment a test or replay pins for the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from engine.store.db import unit_of_work
from engine.store.models import SendPacing

if TYPE_CHECKING:
    from engine.channels import Channel
    from engine.settings import Settings

# How far ahead a dispatcher may take slots: what it holds ``sending`` before handing it over, at most.
HORIZON = timedelta(seconds=1)
# Slots start ``lead`` ahead at the soonest: the time a dispatcher needs to check and mark its invitations
# ``sending`` before it hands them over, so that it meets its slots rather than catching up on them late (a late
# worker's sends would bunch with the next worker's). Each dispatcher measures it (its preparation time per
# invitation × the invitations at hand × 1.25, + MIN_LEAD, within these bounds); LEAD is the first guess.
LEAD = timedelta(milliseconds=250)
MIN_LEAD = timedelta(milliseconds=10)
MAX_LEAD = timedelta(milliseconds=500)
# Items whose slots fall within this span are handed over in one ``send`` call (a batch of N counts N).
TICK = 0.1
DEFAULT_SENDER = "default"


def rate_of(channel: Channel, settings: Settings) -> float | None:
    """The most ``channel``'s sender may send a second: ``SURVEY_ENGINE_SEND_RATE_<NAME>``, else the channel's
    ``default_send_rate``; None: the channel is not paced (the console, the kiosk)."""
    rate = settings.send_rates.get(channel.name)
    if rate is not None:
        return rate
    default = getattr(channel, "default_send_rate", None)
    return float(default) if default is not None else None


def sender_of(channel: Channel, settings: Settings) -> str:
    """The sender a channel's messages leave from (its pacing key, as the channel names it: ``sender(settings)``);
    ``default`` where it names none."""
    ask = getattr(channel, "sender", None)
    sender = ask(settings) if callable(ask) else None
    return str(sender)[:200] if sender else DEFAULT_SENDER


@dataclass(frozen=True)
class Grant:
    """Slots taken for one sender: ``slots[i]`` is when the i-th item may be handed over; ``wait`` is how long until
    the sender has a slot again inside the horizon (seconds), for a dispatcher that got fewer than it asked."""

    slots: list[datetime]
    wait: float


def slots_from(start: datetime, now: datetime, rate: float, wanted: int, lead: timedelta = LEAD) -> list[datetime]:
    """The slots from ``start`` (one every ``1/rate`` s) that fall before ``now + lead + HORIZON``, at most
    ``wanted``."""
    room = (now + lead + HORIZON - start).total_seconds()
    if room <= 0 or wanted <= 0:
        return []
    count = min(wanted, math.ceil(room * rate))
    return [start + timedelta(seconds=i / rate) for i in range(count)]


def take(
    sessions: sessionmaker[Session],
    channel: str,
    sender: str,
    rate: float,
    wanted: int,
    now: datetime,
    lead: timedelta = LEAD,
) -> Grant:
    """Take up to ``wanted`` slots of ``sender`` on ``channel`` at ``rate`` a second, under the sender's row lock;
    the first no sooner than ``lead`` from ``now``."""
    with unit_of_work(sessions) as session:
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert(SendPacing)
            .values(channel=channel, sender=sender, next_free_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["channel", "sender"])
        )
        row = session.execute(
            select(SendPacing).where(SendPacing.channel == channel, SendPacing.sender == sender).with_for_update()
        ).scalar_one()
        start = max(row.next_free_at, now + lead)
        slots = slots_from(start, now, rate, wanted, lead)
        if slots:
            row.next_free_at = slots[-1] + timedelta(seconds=1 / rate)
            row.updated_at = now
        wait = max(0.0, (row.next_free_at - (now + lead + HORIZON)).total_seconds())
    return Grant(slots, wait)
