"""Dispatch: claim due invitations, check them again, hand them to their channel at most once, record the outcome.

The protocol (SPEC §2 rule 10), safe with any number of workers on PostgreSQL:

1. **claim** — one statement marks up to ``batch`` due rows with this worker and a lease
   (``FOR UPDATE SKIP LOCKED``, so workers never wait on each other's rows). The state stays ``scheduled``: a
   worker that dies now loses nothing, its claims return to the queue when the lease runs out.
2. **prepare** — in one transaction, the rows this worker still holds are checked again (window, PRA, suppression,
   consent, quiet hours; SPEC §2 rule 7). Those that pass become ``sending`` and that is **committed before any
   provider is called**.
3. **send** — the channel gets the batch; its answer per invitation is recorded. Only "surely nothing went out"
   (refused connection, 429, 5xx) goes back to ``scheduled`` with backoff inside the window.
4. **reap** — a row still ``sending`` after its lease ran out belonged to a worker that died mid-send: it becomes
   ``unknown`` and is never resent blind.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from engine import rules, tokens
from engine.catalog import ServiceConfig
from engine.channels import Outcome, Outgoing, SendResult
from engine.db import unit_of_work, utcnow
from engine.logs import log
from engine.models import (
    ANSWERABLE_STATES,
    Contact,
    ContactKind,
    DeliveryEvent,
    Invitation,
    InvitationState,
    Office,
    Service,
    Suppression,
    Transaction,
)
from engine.runtime import Runtime
from engine.suppressions import suppress_hash

logger = logging.getLogger("survey_engine.dispatch")
ANSWERABLE_OR_UNSETTLED = (*ANSWERABLE_STATES, InvitationState.UNKNOWN)
MAX_ATTEMPTS = 8


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class DispatchStats:
    claimed: int = 0
    handed: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def count(self, key: str, n: int = 1) -> None:
        self.outcomes[key] += n


class Dispatcher:
    def __init__(
        self,
        runtime: Runtime,
        worker: str | None = None,
        lease: timedelta | None = None,
        batch: int = 500,
    ) -> None:
        self.rt = runtime
        self.worker = worker or worker_name()
        self.lease = lease or timedelta(seconds=runtime.settings.dispatch_lease_seconds)
        self.batch = batch

    # -- 1. claim -------------------------------------------------------------------------------------------

    def claim(self, now: datetime) -> list[uuid.UUID]:
        due = (
            select(Invitation.id)
            .where(
                Invitation.state == InvitationState.SCHEDULED,
                Invitation.send_at <= now,
                or_(Invitation.lease_until.is_(None), Invitation.lease_until < now),
            )
            .order_by(Invitation.send_at)
            .limit(self.batch)
            .with_for_update(skip_locked=True)
        )
        with unit_of_work(self.rt.sessions) as session:
            claimed = (
                session.execute(
                    update(Invitation)
                    .where(Invitation.id.in_(due.scalar_subquery()))
                    .values(claimed_by=self.worker, claimed_at=now, lease_until=now + self.lease)
                    .returning(Invitation.id)
                    .execution_options(synchronize_session=False)
                )
                .scalars()
                .all()
            )
        return list(claimed)

    # -- 2. prepare -----------------------------------------------------------------------------------------

    def prepare(self, ids: Sequence[uuid.UUID], now: datetime, stats: DispatchStats) -> list[tuple[str, Outgoing]]:
        """Check claimed invitations again; commit ``sending`` for those that pass and return them decrypted."""
        ready: list[tuple[str, Outgoing]] = []
        with unit_of_work(self.rt.sessions) as session:
            rows = session.execute(
                select(Invitation, Transaction, Contact, Service.slug, Office.code)
                .join(Transaction, Transaction.id == Invitation.transaction_id)
                .join(Service, Service.id == Invitation.service_id)
                .outerjoin(Contact, Contact.transaction_id == Transaction.id)
                .outerjoin(Office, Office.id == Transaction.office_id)
                .where(
                    Invitation.id.in_(ids),
                    Invitation.claimed_by == self.worker,
                    Invitation.state == InvitationState.SCHEDULED,
                    Invitation.lease_until > now,
                )
                .with_for_update(of=Invitation)
            ).all()
            hashes = {inv.contact_hash for inv, *_ in rows if inv.contact_hash}
            suppressed: dict[str, set[str]] = defaultdict(set)
            if hashes:
                for contact_hash, channel in session.execute(
                    select(Suppression.contact_hash, Suppression.channel).where(
                        Suppression.contact_hash.in_(hashes), Suppression.restored_at.is_(None)
                    )
                ):
                    suppressed[contact_hash].add(channel)
            for inv, tx, contact, slug, office_code in rows:
                verdict = self._recheck(inv, tx, contact, slug, office_code, suppressed, now)
                if verdict is not None:
                    state, reason = verdict
                    self._finish(session, inv, state, reason, now, event="rechecked")
                    stats.count(f"{state.value}:{reason}")
                    continue
                outgoing = self._outgoing(inv, tx, contact, slug, session, now)
                if outgoing is None:
                    self._finish(session, inv, InvitationState.FAILED, "contact_data_missing", now, event="rechecked")
                    stats.count("failed:contact_data_missing")
                    continue
                inv.state = InvitationState.SENDING
                inv.attempts += 1
                inv.lease_until = now + self.lease
                inv.updated_at = now
                session.add(DeliveryEvent(invitation_id=inv.id, at=now, event="sending", state=InvitationState.SENDING,
                                          detail=f"attempt {inv.attempts} by {self.worker}"))  # fmt: skip
                ready.append((inv.channel, outgoing))
        return ready

    def _recheck(
        self,
        inv: Invitation,
        tx: Transaction,
        contact: Contact | None,
        slug: str,
        office_code: str | None,
        suppressed: dict[str, set[str]],
        now: datetime,
    ) -> tuple[InvitationState, str] | None:
        service = self.rt.catalog.services.get(slug)
        if service is None:
            return InvitationState.CANCELLED, "service_removed"
        if inv.channel not in self.rt.channels:
            return InvitationState.CANCELLED, "channel_unavailable"
        if now > inv.send_by:
            return InvitationState.EXPIRED, "window_passed"
        flow = self.rt.catalog.flow_of(service)
        if flow.pra.expired(now.astimezone(service.timezone).date()):
            return InvitationState.CANCELLED, "pra_expired"
        channel = self.rt.channels.get(inv.channel)
        if inv.contact_hash and self.rt.channels.blocks(inv.channel, suppressed.get(inv.contact_hash, set())):
            return InvitationState.CANCELLED, "opted_out"
        if (channel.consent == "sms" and not tx.consent_sms) or (channel.consent == "voice" and not tx.consent_voice):
            return InvitationState.CANCELLED, "no_consent"
        if channel.quiet_hours:
            office = self.rt.catalog.offices.get(office_code) if office_code else None
            contact_zone = None
            if contact is not None and contact.timezone:
                from engine.validation import zone_named

                contact_zone = zone_named(contact.timezone)
            zone = rules.customer_zone(contact_zone, office.timezone if office else None, service.timezone)
            if rules.in_quiet_hours(now, service.quiet_hours, zone):
                return InvitationState.CANCELLED, "quiet_hours"
        return None

    def _outgoing(
        self, inv: Invitation, tx: Transaction, contact: Contact | None, slug: str, session: Session, now: datetime
    ) -> Outgoing | None:
        if contact is None or inv.contact_hash is None:
            return None
        if inv.contact_hash == contact.phone_hash and contact.phone_encrypted:
            kind, address = ContactKind.PHONE, self.rt.cipher.decrypt(contact.phone_encrypted)
        elif inv.contact_hash == contact.email_hash and contact.email_encrypted:
            kind, address = ContactKind.EMAIL, self.rt.cipher.decrypt(contact.email_encrypted)
        else:
            return None
        service = self.rt.catalog.services[slug]
        token = tokens.issue(session, inv.id, now)
        return Outgoing(
            invitation_id=inv.id,
            service=service,
            flow=self.rt.catalog.flow_of(service),
            language=inv.language or service.default_language,
            contact_kind=kind,
            address=address,
            expires_at=inv.expires_at,
            test=inv.test,
            survey_url=f"{self.rt.settings.public_url}/s/{token}",
        )

    # -- 3. send and record ---------------------------------------------------------------------------------

    def send(self, ready: Sequence[tuple[str, Outgoing]], stats: DispatchStats, now: datetime | None = None) -> None:
        by_channel: dict[str, list[Outgoing]] = defaultdict(list)
        for name, item in ready:
            by_channel[name].append(item)
        for name, items in by_channel.items():
            channel = self.rt.channels.get(name)
            for start in range(0, len(items), channel.batch_size):
                chunk = items[start : start + channel.batch_size]
                try:
                    results = channel.send(chunk)
                except Exception as exc:  # a channel bug: we cannot know what went out, so nothing is resent
                    logger.exception("channel send raised", extra={"channel": name, "count": len(chunk)})
                    results = [SendResult(i.invitation_id, Outcome.UNKNOWN, detail=f"channel error: {exc!r}"[:200])
                               for i in chunk]  # fmt: skip
                answered = {r.invitation_id for r in results}
                results += [SendResult(i.invitation_id, Outcome.UNKNOWN, detail="channel gave no result")
                            for i in chunk if i.invitation_id not in answered]  # fmt: skip
                stats.handed += len(chunk)
                self.record(results, name, now)
                for r in results:
                    stats.count(r.outcome.value)

    def record(self, results: Sequence[SendResult], channel: str, now: datetime | None = None) -> None:
        now = now or utcnow()
        with unit_of_work(self.rt.sessions) as session:
            invitations = {
                inv.id: inv
                for inv in session.execute(
                    select(Invitation).where(Invitation.id.in_([r.invitation_id for r in results])).with_for_update()
                ).scalars()
            }
            slugs = dict(session.execute(select(Service.id, Service.slug)).tuples().all())
            for r in results:
                inv = invitations.get(r.invitation_id)
                if inv is None:
                    continue
                if r.provider_id and not inv.provider_id:
                    inv.provider_id = r.provider_id
                if inv.state is not InvitationState.SENDING:
                    # A status callback got here first (delivered, failed): it is the better witness.
                    session.add(DeliveryEvent(invitation_id=inv.id, at=now, event=f"send_{r.outcome.value}",
                                              state=None, detail=r.detail))  # fmt: skip
                    continue
                service = self.rt.catalog.services[slugs[inv.service_id]]
                if r.outcome in (Outcome.SENT, Outcome.DELIVERED):
                    inv.sent_at = now
                    inv.expires_at = now + service.answer_window
                    state = InvitationState.SENT if r.outcome is Outcome.SENT else InvitationState.DELIVERED
                    self._finish(session, inv, state, None, now, event=r.outcome.value, detail=r.detail)
                elif r.outcome is Outcome.RETRY:
                    self._retry(session, inv, service, r, now)
                elif r.outcome is Outcome.FAILED:
                    self._finish(session, inv, InvitationState.FAILED, r.detail or "provider_refused", now,
                                 event="failed", detail=r.detail)  # fmt: skip
                    if r.suppress is not None and inv.contact_hash:
                        kind = ContactKind.EMAIL if channel == "email" else ContactKind.PHONE
                        suppress_hash(session, inv.contact_hash, kind, [channel], r.suppress,
                                      f"{channel}:provider", r.detail, now)  # fmt: skip
                else:
                    self._finish(session, inv, InvitationState.UNKNOWN, r.detail or "outcome_unknown", now,
                                 event="unknown", detail=r.detail)  # fmt: skip

    def _retry(self, session: Session, inv: Invitation, service: ServiceConfig, r: SendResult, now: datetime) -> None:
        delay = rules.retry_delay(inv.attempts)
        if r.retry_after_seconds:
            delay = max(delay, timedelta(seconds=r.retry_after_seconds))
        next_at = now + delay
        channel = self.rt.channels.get(inv.channel)
        if channel.quiet_hours:
            tx_zone = self._zone_of(session, inv, service)
            next_at = rules.next_allowed(next_at, service.quiet_hours, tx_zone)
        if inv.attempts >= MAX_ATTEMPTS or next_at > inv.send_by:
            self._finish(session, inv, InvitationState.EXPIRED, f"retries_exhausted: {r.detail or 'provider unavailable'}",
                         now, event="retry_exhausted", detail=r.detail)  # fmt: skip
            return
        inv.state = InvitationState.SCHEDULED
        inv.send_at = next_at
        inv.claimed_by = None
        inv.lease_until = None
        inv.updated_at = now
        session.add(DeliveryEvent(invitation_id=inv.id, at=now, event="retry", state=InvitationState.SCHEDULED,
                                  detail=f"{r.detail or 'provider unavailable'}; next attempt {next_at.isoformat()}"))  # fmt: skip

    def _zone_of(self, session: Session, inv: Invitation, service: ServiceConfig) -> ZoneInfo:
        from engine.validation import zone_named

        row = session.execute(
            select(Contact.timezone, Office.code)
            .select_from(Transaction)
            .outerjoin(Contact, Contact.transaction_id == Transaction.id)
            .outerjoin(Office, Office.id == Transaction.office_id)
            .where(Transaction.id == inv.transaction_id)
        ).one()
        office = self.rt.catalog.offices.get(row[1]) if row[1] else None
        return rules.customer_zone(zone_named(row[0]) if row[0] else None, office.timezone if office else None,
                                   service.timezone)  # fmt: skip

    @staticmethod
    def _finish(session: Session, inv: Invitation, state: InvitationState, reason: str | None, now: datetime,
                event: str, detail: str | None = None) -> None:  # fmt: skip
        inv.state = state
        inv.reason = reason
        inv.claimed_by = None
        inv.lease_until = None
        inv.updated_at = now
        session.add(DeliveryEvent(invitation_id=inv.id, at=now, event=event, state=state, detail=detail or reason))

    # -- the sweeps -----------------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> DispatchStats:
        """Claim, prepare and send one batch of due invitations."""
        stats = DispatchStats()
        at = now or utcnow()
        ids = self.claim(at)
        stats.claimed = len(ids)
        if ids:
            ready = self.prepare(ids, at, stats)
            # Outcomes are stamped when they happen (``now`` only pins the clock in tests and replays).
            self.send(ready, stats, now)
            log(logger, "dispatched", claimed=stats.claimed, handed=stats.handed, outcomes=dict(stats.outcomes))
        return stats

    def drain(self, now: datetime | None = None, max_rounds: int = 1000) -> DispatchStats:
        """Run batches until nothing is due (the CLI, tests and benchmarks)."""
        total = DispatchStats()
        for _ in range(max_rounds):
            stats = self.run_once(now)
            if not stats.claimed:
                break
            total.claimed += stats.claimed
            total.handed += stats.handed
            for key, n in stats.outcomes.items():
                total.count(key, n)
        return total


def reap_lost_sends(rt: Runtime, now: datetime | None = None) -> int:
    """``sending`` rows whose lease ran out: their worker died mid-send. They become ``unknown``, never resent."""
    now = now or utcnow()
    with unit_of_work(rt.sessions) as session:
        rows = (
            session.execute(
                select(Invitation)
                .where(Invitation.state == InvitationState.SENDING, Invitation.lease_until < now)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        for inv in rows:
            Dispatcher._finish(session, inv, InvitationState.UNKNOWN, "worker_lost_during_send", now, event="reaped")
    if rows:
        log(logger, "sends left unknown by a lost worker", logging.WARNING, count=len(rows))
    return len(rows)


def expire_overdue(rt: Runtime, now: datetime | None = None) -> int:
    """Scheduled invitations whose send window has passed: ``expired``, never sent late (SPEC §2 rule 1)."""
    now = now or utcnow()
    with unit_of_work(rt.sessions) as session:
        rows = (
            session.execute(
                select(Invitation)
                .where(
                    Invitation.state == InvitationState.SCHEDULED,
                    Invitation.send_by < now,
                    or_(Invitation.lease_until.is_(None), Invitation.lease_until < now),
                )
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        for inv in rows:
            Dispatcher._finish(session, inv, InvitationState.EXPIRED, "window_passed", now, event="expired")
    return len(rows)


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
