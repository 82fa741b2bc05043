"""Retention sweeps (the scheduler's ``retention`` and ``forget-addresses`` jobs): personal data kept no longer than
it is needed.

Encrypted contacts are erased once no invitation can use them (the keyed hashes stay: suppressions and cooldowns
need them); a website feedback form's address hash is cleared after a day (the rate limits need an hour). Each sweep
is one idempotent ``UPDATE``, safe in many processes at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select, update

from engine.runtime import Runtime
from engine.store.db import unit_of_work, utcnow
from engine.store.models import ANSWERABLE_STATES, Contact, Invitation, InvitationState, WebsiteForm
from engine.store.models.website import ADDRESS_KEPT

ANSWERABLE_OR_UNSETTLED = (*ANSWERABLE_STATES, InvitationState.UNKNOWN)


def forget_form_addresses(rt: Runtime, now: datetime | None = None) -> int:
    """Retention: clear the address hash of website feedback forms older than ``ADDRESS_KEPT`` (a day)."""
    now = now or utcnow()
    with unit_of_work(rt.sessions) as session:
        result = session.execute(
            update(WebsiteForm)
            .where(WebsiteForm.received_at < now - ADDRESS_KEPT, WebsiteForm.address_hash.is_not(None))
            .values(address_hash=None)
            .execution_options(synchronize_session=False)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def erase_unneeded_contacts(rt: Runtime, now: datetime | None = None) -> int:
    """Retention: erase encrypted contact data no invitation can use any more; the keyed hashes stay."""
    now = now or utcnow()
    still_needed = (
        select(Invitation.id)
        .where(
            Invitation.transaction_id == Contact.transaction_id,
            or_(
                Invitation.state.in_([InvitationState.SCHEDULED.value, InvitationState.SENDING.value]),
                # Sent (or perhaps sent) and still open for answers.
                and_(Invitation.expires_at > now, Invitation.state.in_([s.value for s in ANSWERABLE_OR_UNSETTLED])),
            ),
        )
        .exists()
    )
    with unit_of_work(rt.sessions) as session:
        result = session.execute(
            update(Contact)
            .where(Contact.erased_at.is_(None), ~still_needed)
            .values(phone_encrypted=None, email_encrypted=None, erased_at=now)
            .execution_options(synchronize_session=False)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
