"""Settling ``unknown`` invitations by asking the provider what it sent (SPEC §2 rule 10).

A send whose provider call timed out after the request went out is ``unknown`` and is never resent blind. A
status callback settles it when one comes; this sweep also asks channels that can look (Twilio: the messages or
calls to that number since the claim) and marks ``sent`` those the provider did send. What it cannot find stays
``unknown``: absence in a look-up is not proof that nothing went out.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select

from engine.channels import Unsettled
from engine.common.logs import log
from engine.delivery import lifecycle
from engine.delivery.dispatch import contact_address
from engine.runtime import Runtime
from engine.store.db import unit_of_work, utcnow
from engine.store.models import Contact, Invitation, InvitationState

logger = logging.getLogger("survey_engine.settlement")
BATCH = 200


def settle_unknown(rt: Runtime, now: datetime | None = None) -> int:
    """Look up ``unknown`` invitations still inside their answer window; return how many were settled."""
    now = now or utcnow()
    lookers = {name for name, channel in rt.channels.channels.items() if callable(getattr(channel, "settle", None))}
    if not lookers:
        return 0
    pending: dict[str, list[Unsettled]] = defaultdict(list)
    with rt.sessions() as session:
        rows = session.execute(
            select(Invitation, Contact)
            .join(Contact, Contact.transaction_id == Invitation.transaction_id)
            .where(
                Invitation.state == InvitationState.UNKNOWN,
                Invitation.channel.in_(sorted(lookers)),
                Invitation.expires_at > now,
                Invitation.claimed_at.is_not(None),
            )
            .limit(BATCH)
        ).all()
        for inv, contact in rows:
            address = contact_address(rt.cipher, inv.contact_hash, contact.phone_hash, contact.phone_encrypted,
                                      contact.email_hash, contact.email_encrypted)  # fmt: skip
            if address is None or inv.claimed_at is None:
                continue
            since = inv.claimed_at - timedelta(minutes=1)  # the provider's clock may run a little behind ours
            pending[inv.channel].append(Unsettled(inv.id, address[1], since))
    settled = 0
    for name, items in pending.items():
        try:
            found = rt.channels.get(name).settle(items)  # type: ignore[attr-defined]
        except Exception:
            logger.exception("look-up of unknown sends failed", extra={"channel": name})
            continue
        if not found:
            continue
        with unit_of_work(rt.sessions) as session:
            for invitation_id, provider_id in found.items():
                inv = session.execute(
                    select(Invitation).where(Invitation.id == invitation_id).with_for_update()
                ).scalar_one_or_none()
                if inv is None:
                    continue
                changes = {"provider_id": inv.provider_id or provider_id, "sent_at": inv.sent_at or inv.claimed_at,
                           "reason": None}  # fmt: skip
                settled += lifecycle.move(session, inv, InvitationState.SENT, lifecycle.Event.SETTLED, now=now,
                                          detail=f"provider look-up found {provider_id}", changes=changes)  # fmt: skip
    if settled:
        log(logger, "unknown sends settled by look-up", count=settled)
    return settled
