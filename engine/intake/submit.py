"""Transaction intake: validate, deduplicate, decide and store a batch with a few set-based queries.

The flow of one batch (SPEC §2 rule 6 gives the order of the decisions):

1. each item is validated on its own (a bad item is ``invalid`` and never sinks the batch);
2. replays — of an id already stored, or repeated inside the batch — return the first decision;
3. the facts the rules need for the new items are read in one query each (suppressions, recent invitations,
   daily counts);
4. :mod:`engine.intake.rules` decides each item;
5. the rows are written set-based: on PostgreSQL one statement for every row of every table (one array parameter
   per column, ``engine.store.db.pg_insert_parents_and_children``), on SQLite one executemany per table.
   ``ON CONFLICT DO NOTHING`` on (service, id) settles the race of the same id arriving at the same moment in two
   processes: the loser answers with the winner's decision.

Statements are built once (module level) so that SQLAlchemy's compiled cache serves them; on PostgreSQL a batch's
lookups are planned with their values and its INSERT once for all values (``engine.store.db.plans`` says why).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CompoundSelect, Select, Table, bindparam, func, select
from sqlalchemy.orm import Session

from engine.common.errors import FieldError, ValidationFailed
from engine.intake import rules
from engine.intake.validation import PROMPT_CHANNEL, Candidate, parse_transaction
from engine.runtime import Runtime
from engine.store.db import SMALL_LIST, among, insert_rows, pg_insert_parents_and_children, plans, utcnow
from engine.store.models import (
    COOLDOWN_STATES_VALUES,
    Contact,
    ContactKind,
    Decision,
    Invitation,
    InvitationState,
    Response,
    ServiceLevel,
    Suppression,
    SuppressionReason,
    Transaction,
)

MAX_BATCH = 1000
TRANSACTIONS = cast(Table, Transaction.__table__)
CONTACTS = cast(Table, Contact.__table__)
# The channel of a post-call survey: a response to a transaction with no invitation (the engine never imports a
# channel, so the name stands here).
POST_CALL_CHANNEL = "ivr"
SERVICE_LEVELS = cast(Table, ServiceLevel.__table__)
INVITATIONS = cast(Table, Invitation.__table__)

# The look-ups, built once. A list of values is one array parameter on PostgreSQL when it is long (``= ANY(:list)``),
# an expanding ``IN`` otherwise and on SQLite.
_EXISTING = (
    select(
        Transaction.external_id,
        Transaction.decision,
        Transaction.reason,
        Transaction.channel,
        Invitation.id,
        Invitation.channel,
        Invitation.state,
        Invitation.send_at,
        Invitation.expires_at,
    )
    .outerjoin(Invitation, Invitation.transaction_id == Transaction.id)
    .where(Transaction.service_id == bindparam("service_id"))
)


def _statements(array: bool) -> dict[str, Select[Any] | CompoundSelect]:
    return {
        "existing": _EXISTING.where(among(Transaction.external_id, "external_ids", array)),
        "suppressed": select(Suppression.contact_hash, Suppression.channel, Suppression.reason).where(
            among(Suppression.contact_hash, "hashes", array), Suppression.restored_at.is_(None)
        ),
        # Invitations that count for the cooldown, and post-call IVR surveys (SPEC §2 rule 3: a survey on the
        # line asks that phone as an invitation does; it cancelled its transaction's pending invitation).
        "recent": select(Invitation.contact_hash, Invitation.send_at)
        .where(
            among(Invitation.contact_hash, "hashes", array),
            Invitation.state.in_(COOLDOWN_STATES_VALUES),
            Invitation.send_at >= bindparam("since"),
        )
        .union_all(
            select(Contact.phone_hash, Response.started_at)
            .join(Response, Response.transaction_id == Contact.transaction_id)
            .where(
                among(Contact.phone_hash, "hashes", array),
                Response.channel == POST_CALL_CHANNEL,
                Response.invitation_id.is_(None),
                Response.transaction_id.is_not(None),
                Response.started_at >= bindparam("since"),
            )
        ),
        "ours": select(Transaction.id).where(among(Transaction.id, "ids", array)),
    }


STATEMENTS = {"array": _statements(True), "list": _statements(False)}


def _statement(session: Session, name: str, values: Sequence[Any]) -> Select[Any] | CompoundSelect:
    array = len(values) > SMALL_LIST and session.get_bind().dialect.name == "postgresql"
    return STATEMENTS["array" if array else "list"][name]


@dataclass
class Planned:
    """The decision for one new transaction, and the rows it will write."""

    candidate: Candidate
    transaction_id: uuid.UUID
    decision: Decision
    reason: str | None
    channel: str | None
    hashes: dict[ContactKind, str]
    invitation: dict[str, Any] | None = None


@dataclass
class BatchFacts:
    suppressed: dict[str, set[str]] = field(default_factory=dict)
    # The channels among ``suppressed`` where the reason is an opt-out (SPEC §2 rule 5: opted_out vs no_channel).
    opted_out: dict[str, set[str]] = field(default_factory=dict)
    recent: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    day_counts: dict[tuple[str, date], int] = field(default_factory=dict)


def iso(moment: datetime | None) -> str | None:
    """A moment as RFC 3339 in UTC (``…Z``): a first decision and its replays read the same."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def prompt_invitation(now: datetime, answer_window: timedelta) -> dict[str, Any]:
    """An end-of-engagement prompt's invitation is handed over at once (in the intake result), never dispatched:
    sent now, answerable for the service's answer window."""
    return {"state": InvitationState.SENT, "send_at": now, "sent_at": now, "expires_at": now + answer_window}


def attach_survey_urls(session: Session, results: list[dict[str, Any]], public_url: str, now: datetime) -> None:
    """A scheduled prompt's result gets ``survey_url``: a one-time link (``/s/<token>``) to its invitation's survey.
    A replay of a prompt still open gets a fresh link to the same invitation (one response all the same)."""
    from engine.surveys import tokens

    for item in results:
        inv = item.get("invitation")
        if item.get("decision") != Decision.SCHEDULED.value or not inv or inv["channel"] != PROMPT_CHANNEL:
            continue
        if inv["state"] in (InvitationState.SENT.value, InvitationState.DELIVERED.value):
            item["survey_url"] = f"{public_url}/s/{tokens.issue(session, uuid.UUID(inv['id']), now)}"


def invitation_view(inv: Any) -> dict[str, Any] | None:
    if inv is None:
        return None
    return {
        "id": str(inv["id"]),
        "channel": inv["channel"],
        "state": str(inv["state"]),
        "send_at": iso(inv["send_at"]),
        "expires_at": iso(inv["expires_at"]),
    }


def result(external_id: Any, decision: str, reason: str | None, channel: str | None, invitation: Any, duplicate: bool):
    return {
        "id": external_id,
        "decision": str(decision),
        "reason": reason,
        "channel": channel,
        "invitation": invitation_view(invitation),
        "duplicate": duplicate,
    }


def invalid_result(raw: Any, errors: Sequence[FieldError]) -> dict[str, Any]:
    external_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
    return {
        "id": external_id,
        "decision": Decision.INVALID.value,
        "reason": None,
        "channel": None,
        "invitation": None,
        "duplicate": False,
        "errors": [e.as_dict() for e in errors],
    }


class Intake:
    """Decides and stores transactions for one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    # -- public ---------------------------------------------------------------------------------------------

    def submit(
        self,
        session: Session,
        raw_items: Sequence[Any],
        allowed_services: set[str] | None = None,
        now: datetime | None = None,
        source: str = "api",
    ) -> list[dict[str, Any]]:
        """Decide and store ``raw_items``; return one result per item, in input order."""
        now = now or utcnow()
        results: list[dict[str, Any] | None] = [None] * len(raw_items)
        fresh: list[tuple[int, Candidate]] = []
        first_of: dict[tuple[str, str], int] = {}
        repeats: list[tuple[int, tuple[str, str]]] = []
        for index, raw in enumerate(raw_items):
            try:
                candidate = parse_transaction(raw, self.rt.catalog, now)
            except ValidationFailed as exc:
                results[index] = invalid_result(raw, exc.errors)
                continue
            if allowed_services is not None and candidate.service.slug not in allowed_services:
                error = FieldError(
                    "service", f"this API key may not submit transactions for {candidate.service.slug!r}"
                )
                results[index] = invalid_result(raw, [error])
                continue
            if candidate.key in first_of:
                repeats.append((index, candidate.key))
                continue
            first_of[candidate.key] = index
            fresh.append((index, candidate))

        batch = len(fresh) > 1
        if batch:
            plans(session, "custom")  # the lookups of a batch take long lists (engine.store.db.plans)
        if batch or session.get_bind().dialect.name != "postgresql":
            stored = self._load_existing(session, [c.key for _, c in fresh])
        else:
            # One new transaction on PostgreSQL (the single-transaction API): no replay check up front, one round trip
            # less. A replay is then decided again (harmless: deciding reads facts and writes nothing; the counts it
            # keeps live in this call only), its INSERT finds the (service, id) stored and writes nothing, and it
            # answers with the stored first decision, the way a lost race does below.
            stored = {}
        new = [(i, c) for i, c in fresh if c.key not in stored]
        for index, candidate in fresh:
            if candidate.key in stored:
                results[index] = {**stored[candidate.key], "duplicate": True}

        planned = self._decide(session, [c for _, c in new], now)
        if batch and planned:
            plans(session, "generic")  # its INSERT takes long arrays
        lost = self._write(session, planned, now, source)
        if lost:
            if batch:
                plans(session, "custom")
            stored.update({k: {**v, "duplicate": True} for k, v in self._load_existing(session, sorted(lost)).items()})
        for (index, candidate), plan in zip(new, planned, strict=True):
            if candidate.key in lost:
                results[index] = {**stored[candidate.key], "duplicate": True}
            else:
                results[index] = result(
                    candidate.external_id, plan.decision, plan.reason, plan.channel, plan.invitation, False
                )
        for index, key in repeats:
            first = results[first_of[key]]
            assert first is not None
            results[index] = {**first, "duplicate": True}
        done = [r for r in results if r is not None]
        attach_survey_urls(session, done, self.rt.settings.public_url, now)
        return done

    # -- reading --------------------------------------------------------------------------------------------

    def _load_existing(
        self, session: Session, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        by_service: dict[str, list[str]] = defaultdict(list)
        for slug, external_id in keys:
            by_service[slug].append(external_id)
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for slug, ids in by_service.items():
            params = {"service_id": self.rt.service_ids[slug], "external_ids": ids}
            rows = session.connection().execute(_statement(session, "existing", ids), params).all()
            for ext, decision, reason, channel, inv_id, inv_channel, state, send_at, expires_at in rows:
                invitation = None
                if inv_id is not None:
                    invitation = {
                        "id": inv_id,
                        "channel": inv_channel,
                        "state": state,
                        "send_at": send_at,
                        "expires_at": expires_at,
                    }
                found[(slug, ext)] = result(ext, decision, reason, channel, invitation, True)
        return found

    def _gather_facts(self, session: Session, hashes: set[str], now: datetime) -> BatchFacts:
        facts = BatchFacts()
        if not hashes:
            return facts
        hash_list = sorted(hashes)
        connection = session.connection()  # Core statements: no ORM layer to go through
        suppressed = _statement(session, "suppressed", hash_list)
        for contact_hash, channel, reason in connection.execute(suppressed, {"hashes": hash_list}):
            facts.suppressed.setdefault(contact_hash, set()).add(channel)
            if reason == SuppressionReason.OPTED_OUT.value or reason is SuppressionReason.OPTED_OUT:
                facts.opted_out.setdefault(contact_hash, set()).add(channel)
        longest = max((s.contact_cooldown_days for s in self.rt.catalog.services.values()), default=0)
        if longest > 0:
            since = now - timedelta(days=longest)
            recent = _statement(session, "recent", hash_list)
            for contact_hash, send_at in connection.execute(recent, {"hashes": hash_list, "since": since}):
                facts.recent[contact_hash].append(send_at)
        return facts

    def _day_count(self, session: Session, facts: BatchFacts, slug: str, day: date) -> int:
        key = (slug, day)
        if key not in facts.day_counts:
            service = self.rt.catalog.services[slug]
            start, end = rules.day_bounds(day, service.timezone)
            facts.day_counts[key] = session.execute(
                select(func.count())
                .select_from(Invitation)
                .where(
                    Invitation.service_id == self.rt.service_ids[slug],
                    Invitation.send_at >= start,
                    Invitation.send_at < end,
                    Invitation.state.in_(COOLDOWN_STATES_VALUES),
                )
            ).scalar_one()
        return facts.day_counts[key]

    # -- deciding -------------------------------------------------------------------------------------------

    def _hashes(self, candidate: Candidate) -> dict[ContactKind, str]:
        hashes = {}
        if candidate.phone:
            hashes[ContactKind.PHONE] = self.rt.cipher.lookup_hash("phone", candidate.phone)
        if candidate.email:
            hashes[ContactKind.EMAIL] = self.rt.cipher.lookup_hash("email", candidate.email)
        return hashes

    def _decide(self, session: Session, candidates: Sequence[Candidate], now: datetime) -> list[Planned]:
        all_hashes = [self._hashes(c) for c in candidates]
        facts = self._gather_facts(session, {h for hs in all_hashes for h in hs.values()}, now)
        return [self.decide_one(session, c, hs, facts, now) for c, hs in zip(candidates, all_hashes, strict=True)]

    def decide_one(
        self, session: Session, c: Candidate, hashes: dict[ContactKind, str], facts: BatchFacts, now: datetime
    ) -> Planned:
        service = c.service
        consents = {"sms": c.consent_sms, "voice": c.consent_voice}
        choice = rules.choose_channel(
            self.rt.channel_options(service), hashes, consents, facts.suppressed, facts.opted_out
        )
        if c.prompt:  # the link is shown at once by the agency's application: no contact needed
            choice = rules.ChannelChoice(PROMPT_CHANNEL, None, next(iter(hashes.values()), None))
        plan = Planned(c, uuid.uuid4(), Decision.SCHEDULED, None, choice.channel, hashes)

        if rules.window_passed(c.completed_at, service, now):
            plan.decision = Decision.WINDOW_PASSED
        elif (pra := self.rt.catalog.pra_of(service)).expired(now.astimezone(service.timezone).date()):
            plan.decision, plan.reason = (
                Decision.PRA_EXPIRED,
                f"{pra.omb_control_number} approval expired {pra.expiration_date}",
            )
        elif not rules.sampled_in(
            service.slug, c.external_id, self.rt.service_salts[service.slug], service.sample_rate
        ):
            plan.decision = Decision.SAMPLED_OUT
        elif not choice.found:
            plan.decision = Decision.OPTED_OUT if choice.skipped_for_opt_out else Decision.NO_CHANNEL
        elif any(
            rules.in_cooldown(facts.recent.get(h, ()), now, service.contact_cooldown_days) for h in hashes.values()
        ):
            plan.decision = Decision.COOLDOWN
        else:
            assert choice.channel is not None
            channel = self.rt.channels.get(choice.channel)
            office_zone = c.office.timezone if c.office else None
            zone = rules.customer_zone(c.timezone, office_zone, service.timezone)
            send_at = (
                now if c.prompt else rules.planned_send_time(c.completed_at, now, service, zone, channel.quiet_hours)
            )
            day = rules.cap_day(send_at or now, service)
            if (
                service.daily_cap is not None
                and self._day_count(session, facts, service.slug, day) >= service.daily_cap
            ):
                plan.decision = Decision.CAP_REACHED
                return plan
            deadline = rules.window_deadline(c.completed_at, service)
            state = InvitationState.SCHEDULED if send_at else InvitationState.EXPIRED
            planned_at = send_at or deadline
            plan.invitation = {
                "id": uuid.uuid4(),
                "transaction_id": plan.transaction_id,
                "service_id": self.rt.service_ids[service.slug],
                "survey_id": self.rt.survey_ids.get(service.slug),
                "channel": choice.channel,
                "state": state,
                "contact_hash": choice.contact_hash,
                "language": self._language(c),
                "test": c.test or channel.test_only,
                "created_at": now,
                "send_at": planned_at,
                "send_by": deadline,
                "expires_at": planned_at + service.answer_window if send_at else deadline,
                "attempts": 0,
                "reason": None if send_at else "quiet_hours_past_window",
                "updated_at": now,
                "sent_at": None,
            }
            if c.prompt:
                plan.invitation.update(prompt_invitation(now, service.answer_window))
            if send_at:
                if service.daily_cap is not None:
                    facts.day_counts[(service.slug, day)] += 1
                for h in hashes.values():
                    facts.recent[h].append(send_at)
            else:
                plan.reason = "quiet_hours_past_window"
        return plan

    def _language(self, c: Candidate) -> str:
        flow = self.rt.catalog.flow_of(c.service)
        offered = flow.raw.get("languages") or [flow.default_language]
        if c.language:
            primary = c.language.split("-")[0]
            if primary in offered:
                return primary
        return c.service.default_language if c.service.default_language in offered else flow.default_language

    # -- writing --------------------------------------------------------------------------------------------

    def _write(self, session: Session, plans: Sequence[Planned], now: datetime, source: str) -> set[tuple[str, str]]:
        """Insert the rows of ``plans``; return the keys another process stored first (a race lost)."""
        if not plans:
            return set()
        rows = [self._transaction_row(p, now, source) for p in plans]
        if session.get_bind().dialect.name == "postgresql":
            # One statement for every row of every table; a transaction skipped for a conflict takes its contact,
            # service levels and invitation with it.
            written = set(
                pg_insert_parents_and_children(
                    session, TRANSACTIONS, rows, key="id", conflict=("service_id", "external_id"),
                    children=self._child_rows(plans, now), link="transaction_id",
                )
            )  # fmt: skip
            return {p.candidate.key for p in plans if p.transaction_id not in written}
        # SQLite: an executemany (no RETURNING) whose row count says whether anything was skipped. (Intake's
        # BEGIN IMMEDIATE holds the database's write lock from the replay check on, so in practice nothing is.)
        lost: set[tuple[str, str]] = set()
        winners = list(plans)
        if insert_rows(session, TRANSACTIONS, rows, skip_conflicts_on=("service_id", "external_id")) != len(rows):
            ids = [row["id"] for row in rows]
            stored = set(session.execute(_statement(session, "ours", ids), {"ids": ids}).scalars().all())
            lost = {p.candidate.key for p in plans if p.transaction_id not in stored}
            winners = [p for p in plans if p.transaction_id in stored]
        for table, table_rows in self._child_rows(winners, now):
            insert_rows(session, table, table_rows)
        return lost

    def _transaction_row(self, p: Planned, now: datetime, source: str) -> dict[str, Any]:
        c = p.candidate
        return {
            "id": p.transaction_id,
            "service_id": self.rt.service_ids[c.service.slug],
            "external_id": c.external_id,
            "completed_at": c.completed_at,
            "received_at": now,
            "touchpoint": c.touchpoint,
            "office_id": self.rt.office_ids[c.office.code] if c.office else None,
            "language": c.language,
            "consent_sms": c.consent_sms,
            "consent_voice": c.consent_voice,
            "test": c.test,
            "decision": p.decision,
            "reason": p.reason,
            "channel": p.channel,
            "source": source,
            "attributes": c.attributes,
            "survey_id": self.rt.survey_ids.get(c.service.slug),
        }

    def _child_rows(self, plans: Sequence[Planned], now: datetime) -> list[tuple[Table, list[dict[str, Any]]]]:
        """The contacts, service levels and invitations rows of ``plans``, in that (insertion) order."""
        cipher = self.rt.cipher
        contacts = []
        for p in plans:
            c = p.candidate
            if not p.hashes and c.timezone is None:
                continue
            keep = p.invitation is not None and p.invitation["state"] is InvitationState.SCHEDULED
            contacts.append(
                {
                    "transaction_id": p.transaction_id,
                    "phone_encrypted": cipher.encrypt(c.phone) if keep and c.phone else None,
                    "phone_hash": p.hashes.get(ContactKind.PHONE),
                    "email_encrypted": cipher.encrypt(c.email) if keep and c.email else None,
                    "email_hash": p.hashes.get(ContactKind.EMAIL),
                    "timezone": c.timezone.key if c.timezone else None,
                    # Nothing to erase later when no invitation will use the clear values.
                    "erased_at": None if keep else now,
                }
            )
        levels = [
            {"transaction_id": p.transaction_id, "name": name, "value": value}
            for p in plans
            for name, value in p.candidate.service_levels.items()
        ]
        invitations = [p.invitation for p in plans if p.invitation is not None]
        return [(CONTACTS, contacts), (SERVICE_LEVELS, levels), (INVITATIONS, invitations)]
