"""Dispatch: claim due invitations, check them again, hand them to their channel at most once, record the outcome.

The protocol (SPEC §2 rule 10), safe with any number of workers on PostgreSQL:

1. **claim** — one statement marks up to ``batch`` due rows with this worker and a lease
   (``FOR UPDATE SKIP LOCKED``, so workers never wait on each other's rows). The state stays ``scheduled``: a
   worker that dies now loses nothing, its claims return to the queue when the lease runs out.
1b. **pace** — a channel with a ``send_rate`` takes send slots for its sender (engine/delivery/pacing.py, one row lock
   shared by every worker); claimed invitations without a slot are released to the queue at once, unsent.
2. **prepare** — in one transaction, the rows this worker still holds are checked again (window, PRA, suppression,
   consent, quiet hours; SPEC §2 rule 7). Those that pass become ``sending`` and that is **committed before any
   provider is called**.
3. **send** — the channel gets the batch (a paced channel each part at its slot, never earlier); its answer per
   invitation is recorded. Only "surely nothing went out" (refused connection, 429, 5xx) goes back to
   ``scheduled`` with backoff inside the window.
4. **reap** — a row still ``sending`` after its lease ran out belonged to a worker that died mid-send: it becomes
   ``unknown`` and is never resent blind.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from engine.catalog.services import ServiceConfig
from engine.channels import Outcome, Outgoing, SendResult
from engine.common.logs import log
from engine.delivery import lifecycle, pacing
from engine.delivery.lifecycle import Event, Move
from engine.delivery.provider_reports import settle_held
from engine.delivery.suppressions import suppress_hash
from engine.intake import rules
from engine.runtime import Runtime
from engine.store.db import SMALL_LIST, among, insert_rows, plans, unit_of_work, update_rows, utcnow
from engine.store.models import (
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
from engine.surveys import tokens

logger = logging.getLogger("survey_engine.dispatch")
MAX_ATTEMPTS = 8
DELIVERY_EVENTS = cast(Table, DeliveryEvent.__table__)
INVITATIONS = cast(Table, Invitation.__table__)


# The statements of prepare() and record(), built once so that SQLAlchemy's compiled cache serves every batch;
# plain columns rather than ORM objects (a batch is hundreds of rows), the ids as an array on PostgreSQL when many.
def _claimed_rows(array: bool) -> Select[Any]:
    return (
        select(
            Invitation.id,
            Invitation.channel,
            Invitation.contact_hash,
            Invitation.language,
            Invitation.test,
            Invitation.send_by,
            Invitation.expires_at,
            Invitation.attempts,
            Transaction.consent_sms,
            Transaction.consent_voice,
            Contact.transaction_id.label("contact"),  # None: no contact row
            Contact.timezone,
            Contact.phone_hash,
            Contact.phone_encrypted,
            Contact.email_hash,
            Contact.email_encrypted,
            Service.slug,
            Office.code.label("office_code"),
        )
        .join(Transaction, Transaction.id == Invitation.transaction_id)
        .join(Service, Service.id == Invitation.service_id)
        .outerjoin(Contact, Contact.transaction_id == Transaction.id)
        .outerjoin(Office, Office.id == Transaction.office_id)
        .where(
            among(Invitation.id, "ids", array),
            Invitation.claimed_by == bindparam("worker"),
            Invitation.state == InvitationState.SCHEDULED,
            Invitation.lease_until > bindparam("now"),
        )
        .with_for_update(of=Invitation)
    )


def _statements(array: bool) -> dict[str, Select[Any]]:
    return {
        "claimed": _claimed_rows(array),
        "suppressed": select(Suppression.contact_hash, Suppression.channel).where(
            among(Suppression.contact_hash, "hashes", array), Suppression.restored_at.is_(None)
        ),
        "sent": select(Invitation.id, Invitation.state, Invitation.provider_id, Invitation.service_id)
        .where(among(Invitation.id, "ids", array))
        .with_for_update(),
    }


STATEMENTS = {"array": _statements(True), "list": _statements(False)}


def _statement(session: Session, name: str, values: Sequence[Any]) -> Select[Any]:
    array = len(values) > SMALL_LIST and session.get_bind().dialect.name == "postgresql"
    return STATEMENTS["array" if array else "list"][name]


def suppressed_by_hash(session: Session, hashes: Sequence[str]) -> dict[str, set[str]]:
    """The channels each contact hash is suppressed on (active suppressions only)."""
    found: dict[str, set[str]] = defaultdict(set)
    if hashes:
        statement = _statement(session, "suppressed", hashes)
        for contact_hash, channel in session.connection().execute(statement, {"hashes": list(hashes)}):
            found[contact_hash].add(channel)
    return found


def contact_address(
    cipher: Any,
    contact_hash: str | None,
    phone_hash: str | None,
    phone_encrypted: bytes | None,
    email_hash: str | None,
    email_encrypted: bytes | None,
) -> tuple[ContactKind, str] | None:
    """The clear address an invitation goes to (the contact whose hash it carries), or None once erased."""
    if contact_hash is None:
        return None
    if contact_hash == phone_hash and phone_encrypted:
        return ContactKind.PHONE, cipher.decrypt(phone_encrypted)
    if contact_hash == email_hash and email_encrypted:
        return ContactKind.EMAIL, cipher.decrypt(email_encrypted)
    return None


def outgoing_for(
    rt: Runtime,
    session: Session,
    now: datetime,
    *,
    invitation_id: uuid.UUID,
    channel: str,
    slug: str,
    language: str | None,
    expires_at: datetime,
    test: bool,
    address: tuple[ContactKind, str],
    reminder: bool = False,
) -> Outgoing:
    """An invitation ready for its channel, with a fresh survey link (and unsubscribe link where it wants one)."""
    service = rt.catalog.services[slug]
    token = tokens.issue(session, invitation_id, now)
    unsubscribe = None
    if getattr(rt.channels.get(channel), "wants_unsubscribe_link", False):
        unsubscribe = f"{rt.settings.public_url}/u/{tokens.issue(session, invitation_id, now, tokens.UNSUBSCRIBE)}"
    return Outgoing(
        invitation_id=invitation_id,
        service=service,
        flow=rt.catalog.flow_of(service),
        language=language or service.default_language,
        contact_kind=address[0],
        address=address[1],
        expires_at=expires_at,
        test=test,
        survey_url=f"{rt.settings.public_url}/s/{token}",
        unsubscribe_url=unsubscribe,
        reminder=reminder,
    )


# The columns an invitation's last move in a worker's hands also sets (the claim is over).
RELEASED = {"claimed_by": None, "lease_until": None}


def _event(
    invitation_id: uuid.UUID, now: datetime, event: str, state: InvitationState | None, detail: str | None
) -> dict[str, Any]:
    return {"invitation_id": invitation_id, "at": now, "event": event, "state": state, "detail": detail}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class DispatchStats:
    claimed: int = 0
    handed: int = 0
    # Claimed but given no send slot (their sender's rate is spent): back in the queue, unsent.
    released: int = 0
    # Seconds until a sender that released some has a slot again (what ``drain`` waits).
    wait: float = 0.0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def count(self, key: str, n: int = 1) -> None:
        self.outcomes[key] += n


class Dispatcher:
    def __init__(
        self,
        runtime: Runtime,
        worker: str | None = None,
        lease: timedelta | None = None,
        batch: int | None = None,
    ) -> None:
        self.rt = runtime
        self.worker = worker or worker_name()
        self.lease = lease or timedelta(seconds=runtime.settings.dispatch_lease_seconds)
        # Claim at least a full batch of the largest channel (email: 1,000 personalizations a request).
        self.batch = batch or max([500, *(c.batch_size for c in runtime.channels.channels.values())])
        # Seconds this dispatcher's last preparation took per invitation: paced slots start that far ahead for the
        # invitations at hand, and a little more (engine/delivery/pacing.py); None until it has prepared some.
        self.prepare_cost: float | None = None
        # Set when the process is stopping (SIGTERM): ``drain`` claims no further batch; the one in hand is sent and
        # recorded.
        self.stopping = threading.Event()

    # -- 1. claim -------------------------------------------------------------------------------------------

    def claim(self, now: datetime) -> list[uuid.UUID]:
        return [invitation_id for invitation_id, _ in self._claim(now)]

    def _claim(self, now: datetime) -> list[tuple[uuid.UUID, str]]:
        """Claim due invitations: their ids and channels."""
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
                    .returning(Invitation.id, Invitation.channel)
                    .execution_options(synchronize_session=False)
                )
                .tuples()
                .all()
            )
        return list(claimed)

    # -- 1b. pace -------------------------------------------------------------------------------------------

    def pace(
        self, claimed: Sequence[tuple[uuid.UUID, str]], at: datetime, stats: DispatchStats
    ) -> tuple[list[uuid.UUID], dict[uuid.UUID, datetime]]:
        """Take send slots for the claimed invitations of paced channels; release those that got none.

        Returns the ids to prepare and, for the paced ones, their slot on the wall clock. ``at`` is the moment the
        rules use (pinned in tests); slots are real time (engine/delivery/pacing.py)."""
        by_channel: dict[str, list[uuid.UUID]] = defaultdict(list)
        for invitation_id, channel in claimed:
            by_channel[channel].append(invitation_id)
        keep: list[uuid.UUID] = []
        slots: dict[uuid.UUID, datetime] = {}
        released: list[uuid.UUID] = []
        waits: list[float] = []
        for channel, ids in by_channel.items():
            paced = self.rt.channels.channels.get(channel)
            rate = pacing.rate_of(paced, self.rt.settings) if paced is not None else None
            if paced is None or rate is None:
                keep.extend(ids)  # not paced (the console), or prepare cancels it
                continue
            sender = pacing.sender_of(paced, self.rt.settings)
            # What this round will prepare, at most: the other channels' claims and about a second of this one's.
            preparing = len(claimed) - len(ids) + min(len(ids), math.ceil(rate * 1.5))
            grant = pacing.take(self.rt.sessions, channel, sender, rate, len(ids), utcnow(), self._lead(preparing))
            for invitation_id, slot in zip(ids, grant.slots, strict=False):
                keep.append(invitation_id)
                slots[invitation_id] = slot
            released.extend(ids[len(grant.slots) :])
            if len(grant.slots) < len(ids):
                waits.append(grant.wait)
        if released:
            self._release(released, at)
            stats.released += len(released)
            stats.wait = min(waits)
        return keep, slots

    def _lead(self, count: int) -> timedelta:
        """How far ahead the first slot of ``count`` invitations starts: the time to prepare them, with a margin."""
        if self.prepare_cost is None:
            return pacing.LEAD
        lead = timedelta(seconds=1.25 * self.prepare_cost * count) + pacing.MIN_LEAD
        return min(max(lead, pacing.MIN_LEAD), pacing.MAX_LEAD)

    def _release(self, ids: Sequence[uuid.UUID], now: datetime) -> None:
        """Give claims back to the queue (still ``scheduled``, no event: nothing happened to them)."""
        with unit_of_work(self.rt.sessions) as session:
            for start in range(0, len(ids), 1000):
                session.execute(
                    update(Invitation)
                    .where(
                        Invitation.id.in_(list(ids[start : start + 1000])),
                        Invitation.claimed_by == self.worker,
                        Invitation.state == InvitationState.SCHEDULED,
                    )
                    .values(claimed_by=None, lease_until=None)
                    .execution_options(synchronize_session=False)
                )

    # -- 2. prepare -----------------------------------------------------------------------------------------

    def prepare(
        self,
        ids: Sequence[uuid.UUID],
        now: datetime,
        stats: DispatchStats,
        moments: dict[uuid.UUID, datetime] | None = None,
    ) -> list[tuple[str, Outgoing]]:
        """Check claimed invitations again; commit ``sending`` for those that pass and return them decrypted.

        ``moments``: when a paced invitation will be handed over (its slot, on the clock of ``now``); the window
        and quiet hours are checked at that moment, so a slot past the window is never used (SPEC §2 rules 1, 4)."""
        ready: list[tuple[str, Outgoing]] = []
        with unit_of_work(self.rt.sessions) as session:
            if len(ids) > SMALL_LIST:
                plans(session, "custom")  # long lists of ids and hashes (engine.store.db.plans)
            connection = session.connection()
            params = {"ids": list(ids), "worker": self.worker, "now": now}
            rows = connection.execute(_statement(session, "claimed", ids), params).all()
            suppressed = suppressed_by_hash(session, sorted({row.contact_hash for row in rows if row.contact_hash}))
            moves: list[Move] = []
            for row in rows:
                verdict = self._recheck(row, suppressed, (moments or {}).get(row.id, now))
                if verdict is None:
                    outgoing = self._outgoing(row, session, now)
                    if outgoing is None:
                        verdict = InvitationState.FAILED, "contact_data_missing"
                if verdict is not None:
                    state, reason = verdict
                    moves.append(Move(row.id, state, Event.RECHECKED, reason, {"reason": reason, **RELEASED}))
                    stats.count(f"{state.value}:{reason}")
                    continue
                assert outgoing is not None
                attempts = row.attempts + 1
                moves.append(Move(row.id, InvitationState.SENDING, Event.SENDING, f"attempt {attempts} by {self.worker}",
                                  {"attempts": attempts, "lease_until": now + self.lease}))  # fmt: skip
                ready.append((row.channel, outgoing))
            if len(ids) > SMALL_LIST:
                plans(session, "generic")  # long arrays to write
            lifecycle.move_rows(session, InvitationState.SCHEDULED, moves, now)
        return ready

    def _recheck(self, row: Any, suppressed: dict[str, set[str]], now: datetime) -> tuple[InvitationState, str] | None:
        """``row``: one of the ``claimed`` statement's (the invitation, its transaction's consents, its contact)."""
        service = self.rt.catalog.services.get(row.slug)
        if service is None:
            return InvitationState.CANCELLED, "service_removed"
        if row.channel not in self.rt.channels:
            return InvitationState.CANCELLED, "channel_unavailable"
        if now > row.send_by:
            return InvitationState.EXPIRED, "window_passed"
        if self.rt.catalog.pra_of(service).lapsed_at(now, service.timezone):
            return InvitationState.CANCELLED, "pra_expired"
        channel = self.rt.channels.get(row.channel)
        if row.contact_hash and self.rt.channels.blocks(row.channel, suppressed.get(row.contact_hash, set())):
            return InvitationState.CANCELLED, "opted_out"
        if (channel.consent == "sms" and not row.consent_sms) or (channel.consent == "voice" and not row.consent_voice):
            return InvitationState.CANCELLED, "no_consent"
        if channel.quiet_hours:
            office = self.rt.catalog.offices.get(row.office_code) if row.office_code else None
            contact_zone = None
            if row.contact is not None and row.timezone:
                from engine.intake.validation import zone_named

                contact_zone = zone_named(row.timezone)
            zone = rules.customer_zone(contact_zone, office.timezone if office else None, service.timezone)
            if rules.in_quiet_hours(now, service.quiet_hours, zone):
                return InvitationState.CANCELLED, "quiet_hours"
        return None

    def _outgoing(self, row: Any, session: Session, now: datetime) -> Outgoing | None:
        if row.contact is None:
            return None
        address = contact_address(self.rt.cipher, row.contact_hash, row.phone_hash, row.phone_encrypted,
                                  row.email_hash, row.email_encrypted)  # fmt: skip
        if address is None:
            return None
        return outgoing_for(self.rt, session, now, invitation_id=row.id, channel=row.channel, slug=row.slug,
                            language=row.language, expires_at=row.expires_at, test=row.test, address=address)  # fmt: skip

    # -- 3. send and record ---------------------------------------------------------------------------------

    def send(
        self,
        ready: Sequence[tuple[str, Outgoing]],
        stats: DispatchStats,
        now: datetime | None = None,
        slots: dict[uuid.UUID, datetime] | None = None,
    ) -> None:
        """Hand ``ready`` to their channels; a paced invitation (one in ``slots``) never before its slot."""
        slots = slots or {}
        by_channel: dict[str, list[Outgoing]] = defaultdict(list)
        for name, item in ready:
            by_channel[name].append(item)
        for name, items in by_channel.items():
            channel = self.rt.channels.get(name)
            size = channel.batch_size
            rate = pacing.rate_of(channel, self.rt.settings)
            if rate is not None:  # in slot order, the items whose slots fall within one tick together
                size = max(1, min(size, math.ceil(rate * pacing.TICK)))
                far = datetime.max.replace(tzinfo=UTC)
                items.sort(key=lambda item: slots.get(item.invitation_id, far))
            # A paced channel's outcomes are recorded once its slots are spent (a second or so later: the rows are
            # ``sending`` meanwhile, and a report that comes first is held), so that writing them never makes the
            # next slot late.
            paced: list[SendResult] = []
            for start in range(0, len(items), size):
                chunk = items[start : start + size]
                slot = slots.get(chunk[0].invitation_id)
                if slot is not None:
                    _sleep_until(slot)
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
                if slot is None:
                    self.record(results, name, now)
                else:
                    paced.extend(results)
                for r in results:
                    stats.count(r.outcome.value)
            if paced:
                self.record(paced, name, now)

    def record(self, results: Sequence[SendResult], channel: str, now: datetime | None = None) -> None:
        now = now or utcnow()
        landed = [r.provider_id for r in results if r.provider_id]
        slugs = {service_id: slug for slug, service_id in self.rt.service_ids.items()}
        ids = [r.invitation_id for r in results]
        with unit_of_work(self.rt.sessions) as session:
            if len(ids) > SMALL_LIST:
                plans(session, "custom")
            connection = session.connection()
            rows = {row.id: row for row in connection.execute(_statement(session, "sent", ids), {"ids": ids})}
            handed: list[Move] = []
            provider_ids: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            others: list[SendResult] = []
            for r in results:
                row = rows.get(r.invitation_id)
                if row is None:
                    continue
                provider_id = r.provider_id if r.provider_id and not row.provider_id else row.provider_id
                if row.state is not InvitationState.SENDING:
                    # A status callback got here first (delivered, failed): it is the better witness.
                    if provider_id != row.provider_id:
                        provider_ids.append({"id": row.id, "provider_id": provider_id})
                    events.append(_event(row.id, now, f"send_{r.outcome.value}", None, r.detail))
                elif r.outcome in (Outcome.SENT, Outcome.DELIVERED):
                    service = self.rt.catalog.services[slugs[row.service_id]]
                    state = InvitationState.SENT if r.outcome is Outcome.SENT else InvitationState.DELIVERED
                    handed.append(Move(row.id, state, Event(r.outcome.value), r.detail,
                                       {"reason": None, **RELEASED, "sent_at": now,
                                        "expires_at": now + service.answer_window, "provider_id": provider_id}))  # fmt: skip
                else:
                    others.append(r)  # retry, failure, unknown: few, through the ORM
            if len(ids) > SMALL_LIST:
                plans(session, "generic")
            lifecycle.move_rows(session, InvitationState.SENDING, handed, now)
            update_rows(session, INVITATIONS, provider_ids)
            insert_rows(session, DELIVERY_EVENTS, events)
            for r in others:
                inv = session.get(Invitation, r.invitation_id)
                assert inv is not None
                if r.provider_id and not inv.provider_id:
                    inv.provider_id = r.provider_id
                service = self.rt.catalog.services[slugs[inv.service_id]]
                if r.outcome is Outcome.RETRY:
                    self._retry(session, inv, service, r, now)
                elif r.outcome is Outcome.FAILED:
                    self._finish(session, inv, InvitationState.FAILED, r.detail or "provider_refused", now,
                                 event=Event.FAILED, detail=r.detail)  # fmt: skip
                    if r.suppress is not None and inv.contact_hash:
                        kind = self.rt.channels.suppressed_kind(channel)
                        if kind is not None:
                            suppress_hash(session, inv.contact_hash, kind, list(r.suppress_channels or (channel,)),
                                          r.suppress, f"{channel}:provider", r.detail, now)  # fmt: skip
                else:
                    self._finish(session, inv, InvitationState.UNKNOWN, r.detail or "outcome_unknown", now,
                                 event=Event.UNKNOWN, detail=r.detail)  # fmt: skip
        # Reports the provider sent before these ids were committed were held: apply them now (SPEC §2 rule 10).
        settle_held(self.rt.sessions, landed)

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
                         now, event=Event.RETRY_EXHAUSTED, detail=r.detail)  # fmt: skip
            return
        lifecycle.move(session, inv, InvitationState.SCHEDULED, Event.RETRY, now=now, strict=True,
                       detail=f"{r.detail or 'provider unavailable'}; next attempt {next_at.isoformat()}",
                       changes={"send_at": next_at, **RELEASED})  # fmt: skip

    def _zone_of(self, session: Session, inv: Invitation, service: ServiceConfig) -> ZoneInfo:
        from engine.intake.validation import zone_named

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
    def _finish(session: Session, inv: Invitation, state: InvitationState, reason: str, now: datetime,
                event: Event, detail: str | None = None) -> None:  # fmt: skip
        lifecycle.move(session, inv, state, event, reason, now=now, detail=detail, changes=RELEASED, strict=True)

    # -- the sweeps -----------------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> DispatchStats:
        """Claim, prepare and send one batch of due invitations."""
        stats = DispatchStats()
        at = now or utcnow()
        claimed = self._claim(at)
        stats.claimed = len(claimed)
        if claimed:
            ids, slots = self.pace(claimed, at, stats)
            real = utcnow()
            moments = {invitation_id: at + (slot - real) for invitation_id, slot in slots.items()}
            began = time.monotonic()
            ready = self.prepare(ids, at, stats, moments) if ids else []
            if ids:
                self.prepare_cost = (time.monotonic() - began) / len(ids)
            # Outcomes are stamped when they happen (``now`` only pins the clock in tests and replays).
            self.send(ready, stats, now, slots)
            log(logger, "dispatched", claimed=stats.claimed, handed=stats.handed, released=stats.released,
                outcomes=dict(stats.outcomes))  # fmt: skip
        return stats

    def drain(self, now: datetime | None = None, max_rounds: int = 1000) -> DispatchStats:
        """Run batches until nothing is due, or until :attr:`stopping` is set; where a sender's rate is spent,
        wait for its next slot rather than claim the same invitations again at once."""
        total = DispatchStats()
        for _ in range(max_rounds):
            if self.stopping.is_set():
                break
            stats = self.run_once(now)
            if not stats.claimed:
                break
            total.claimed += stats.claimed
            total.handed += stats.handed
            total.released += stats.released
            if stats.released and stats.claimed == stats.released:
                time.sleep(min(max(stats.wait, 0.005), pacing.HORIZON.total_seconds()))
            for key, n in stats.outcomes.items():
                total.count(key, n)
        return total


def _sleep_until(moment: datetime) -> None:
    delay = (moment - utcnow()).total_seconds()
    if delay > 0:
        time.sleep(delay)


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
            Dispatcher._finish(
                session, inv, InvitationState.UNKNOWN, "worker_lost_during_send", now, event=Event.REAPED
            )
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
            Dispatcher._finish(session, inv, InvitationState.EXPIRED, "window_passed", now, event=Event.EXPIRED)
    return len(rows)
