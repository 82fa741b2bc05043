"""The one reminder (``reminder_after``): for an unanswered invitation on a channel that reminds (email; SMS in
link mode: each channel says so, ``Channel.reminds`` and ``wants_reminder``), inside its answer window.

Never after an opt-out, a bounce or a started response, and never twice: ``reminded_at`` is committed before the
channel is called, so a worker that dies mid-send leaves the reminder unsent rather than sent twice (a reminder
is a courtesy; losing one is better than nagging).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.channels import Outcome, Outgoing, reminds_for
from engine.common.logs import log
from engine.delivery.dispatch import contact_address, outgoing_for, suppressed_by_hash
from engine.runtime import Runtime
from engine.store.db import unit_of_work, utcnow
from engine.store.models import (
    Contact,
    DeliveryEvent,
    Invitation,
    InvitationState,
    Response,
    Service,
)

logger = logging.getLogger("survey_engine.reminders")
BATCH = 1000


def _claim(session: Session, rt: Runtime, now: datetime) -> list[tuple[Invitation, Contact, str]]:
    slugs = {id_: slug for slug, id_ in rt.service_ids.items()}
    due_services = [
        rt.service_ids[slug]
        for slug, svc in rt.catalog.services.items()
        if svc.reminder_after and slug in rt.service_ids
    ]
    if not due_services:
        return []
    started = select(Response.id).where(Response.invitation_id == Invitation.id).exists()
    rows = session.execute(
        select(Invitation, Contact, Service.slug)
        .join(Contact, Contact.transaction_id == Invitation.transaction_id)
        .join(Service, Service.id == Invitation.service_id)
        .where(
            Invitation.service_id.in_(due_services),
            Invitation.state.in_([InvitationState.SENT.value, InvitationState.DELIVERED.value]),
            Invitation.reminded_at.is_(None),
            Invitation.sent_at.is_not(None),
            Invitation.expires_at > now,
            ~started,
        )
        .order_by(Invitation.sent_at)
        .limit(BATCH)
        .with_for_update(of=Invitation, skip_locked=True)
    ).all()
    suppressed = suppressed_by_hash(session, sorted({inv.contact_hash for inv, _, _ in rows if inv.contact_hash}))
    claimed = []
    for inv, contact, slug in rows:
        service = rt.catalog.services.get(slugs.get(inv.service_id, slug))
        if service is None or service.reminder_after is None or inv.sent_at is None:
            continue
        if inv.sent_at + service.reminder_after > now or inv.channel not in rt.channels:
            continue
        if not reminds_for(rt.channels.get(inv.channel), service):
            continue
        if inv.contact_hash and rt.channels.blocks(inv.channel, suppressed.get(inv.contact_hash, set())):
            continue
        inv.reminded_at = now
        claimed.append((inv, contact, slug))
    return claimed


def send_reminders(rt: Runtime, now: datetime | None = None) -> int:
    """Hand the due reminders to their channels; return how many were handed over."""
    now = now or utcnow()
    batch: dict[str, list[Outgoing]] = defaultdict(list)
    with unit_of_work(rt.sessions) as session:
        for inv, contact, slug in _claim(session, rt, now):
            address = contact_address(rt.cipher, inv.contact_hash, contact.phone_hash, contact.phone_encrypted,
                                      contact.email_hash, contact.email_encrypted)  # fmt: skip
            if address is None:
                continue
            batch[inv.channel].append(
                outgoing_for(
                    rt,
                    session,
                    now,
                    invitation_id=inv.id,
                    channel=inv.channel,
                    slug=slug,
                    language=inv.language,
                    expires_at=inv.expires_at,
                    test=inv.test,
                    address=address,
                    reminder=True,
                )
            )
    handed = 0
    for name, items in batch.items():
        channel = rt.channels.get(name)
        for start in range(0, len(items), channel.batch_size):
            chunk = items[start : start + channel.batch_size]
            detail: str | None = None
            try:
                results = channel.send(chunk)
            except Exception as exc:  # unknown: it is not retried (reminded_at is already set)
                logger.exception("reminder send raised", extra={"channel": name})
                results = []
                detail = f"channel error: {exc!r}"[:200]
            handed += len(chunk)
            outcomes = {r.invitation_id: r for r in results}
            with unit_of_work(rt.sessions) as session:
                for item in chunk:
                    r = outcomes.get(item.invitation_id)
                    ok = r is not None and r.outcome in (Outcome.SENT, Outcome.DELIVERED)
                    session.add(DeliveryEvent(invitation_id=item.invitation_id, at=utcnow(),
                                              event="reminder_sent" if ok else "reminder_not_sent",
                                              detail=(r.detail if r else detail)))  # fmt: skip
    if handed:
        log(logger, "reminders handed over", count=handed)
    return handed
