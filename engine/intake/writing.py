"""What intake writes for a batch: the rows of each decided transaction (transaction, contact, service levels,
invitation), written set-based.

On PostgreSQL one statement for every row of every table (one array parameter per column,
``engine.store.db.pg_insert_parents_and_children``), on SQLite one executemany per table. ``ON CONFLICT DO
NOTHING`` on (service, id) settles the race of the same id arriving at the same moment in two processes: the loser
answers with the winner's decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from engine.intake.facts import statement
from engine.intake.rules import PROMPT_CHANNEL, Outcome
from engine.intake.validation import Candidate
from engine.runtime import Runtime
from engine.store.db import insert_rows, pg_insert_parents_and_children
from engine.store.models import (
    Contact,
    ContactKind,
    Decision,
    Invitation,
    InvitationState,
    ServiceLevel,
    Transaction,
)
from engine.surveys import tokens

TRANSACTIONS = cast(Table, Transaction.__table__)
CONTACTS = cast(Table, Contact.__table__)
SERVICE_LEVELS = cast(Table, ServiceLevel.__table__)
INVITATIONS = cast(Table, Invitation.__table__)


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


def plan(rt: Runtime, c: Candidate, hashes: dict[ContactKind, str], outcome: Outcome, now: datetime) -> Planned:
    """The rows a decided transaction will write: its invitation's row when it is scheduled."""
    planned = Planned(c, uuid.uuid4(), outcome.decision, outcome.reason, outcome.choice.channel, hashes)
    if outcome.decision is not Decision.SCHEDULED or outcome.deadline is None:
        return planned
    service, send_at, deadline = c.service, outcome.send_at, outcome.deadline
    channel = outcome.choice.channel
    assert channel is not None
    planned_at = send_at or deadline
    planned.invitation = {
        "id": uuid.uuid4(),
        "transaction_id": planned.transaction_id,
        "service_id": rt.service_ids[service.slug],
        "survey_id": rt.survey_ids.get(service.slug),
        "channel": channel,
        "state": InvitationState.SCHEDULED if send_at else InvitationState.EXPIRED,
        "contact_hash": outcome.choice.contact_hash,
        "language": invitation_language(rt, c),
        "test": c.test or rt.channels.get(channel).test_only,
        "created_at": now,
        "send_at": planned_at,
        "send_by": deadline,
        "expires_at": planned_at + service.answer_window if send_at else deadline,
        "attempts": 0,
        "reason": outcome.reason,
        "updated_at": now,
        "sent_at": None,
    }
    if c.prompt:
        planned.invitation.update(prompt_invitation(now, service.answer_window))
    return planned


def prompt_invitation(now: datetime, answer_window: timedelta) -> dict[str, Any]:
    """An end-of-engagement prompt's invitation is handed over at once (in the intake result), never dispatched:
    sent now, answerable for the service's answer window."""
    return {"state": InvitationState.SENT, "send_at": now, "sent_at": now, "expires_at": now + answer_window}


def attach_survey_urls(session: Session, results: list[dict[str, Any]], public_url: str, now: datetime) -> None:
    """A scheduled prompt's result gets ``survey_url``: a one-time link (``/s/<token>``) to its invitation's survey.
    A replay of a prompt still open gets a fresh link to the same invitation (one response all the same)."""
    for item in results:
        inv = item.get("invitation")
        if item.get("decision") != Decision.SCHEDULED.value or not inv or inv["channel"] != PROMPT_CHANNEL:
            continue
        if inv["state"] in (InvitationState.SENT.value, InvitationState.DELIVERED.value):
            item["survey_url"] = f"{public_url}/s/{tokens.issue(session, uuid.UUID(inv['id']), now)}"


def invitation_language(rt: Runtime, c: Candidate) -> str:
    """The transaction's language where its flow offers it, else the service's default, else the flow's."""
    flow = rt.catalog.flow_of(c.service)
    offered = flow.raw.get("languages") or [flow.default_language]
    if c.language:
        primary = c.language.split("-")[0]
        if primary in offered:
            return primary
    return c.service.default_language if c.service.default_language in offered else flow.default_language


def write(
    session: Session,
    rt: Runtime,
    plans: Sequence[Planned],
    now: datetime,
    source: str,
    guard: tuple[str, dict[str, Any]] | None = None,
) -> set[tuple[str, str]]:
    """Insert the rows of ``plans``; return the keys not written: stored first by another process (a race lost),
    or, with a ``guard`` (PostgreSQL only: ``engine.intake.facts.no_facts_guard``), refused by it."""
    if not plans:
        return set()
    rows = [_transaction_row(rt, p, now, source) for p in plans]
    if session.get_bind().dialect.name == "postgresql":
        # One statement for every row of every table; a transaction skipped for a conflict takes its contact,
        # service levels and invitation with it.
        written = set(
            pg_insert_parents_and_children(
                session, TRANSACTIONS, rows, key="id", conflict=("service_id", "external_id"),
                children=_child_rows(rt, plans, now), link="transaction_id", guard=guard,
            )
        )  # fmt: skip
        return {p.candidate.key for p in plans if p.transaction_id not in written}
    if guard is not None:
        raise NotImplementedError("a guarded write is PostgreSQL's single-transaction path")
    # SQLite: an executemany (no RETURNING) whose row count says whether anything was skipped. (Intake's
    # BEGIN IMMEDIATE holds the database's write lock from the replay check on, so in practice nothing is.)
    lost: set[tuple[str, str]] = set()
    winners = list(plans)
    if insert_rows(session, TRANSACTIONS, rows, skip_conflicts_on=("service_id", "external_id")) != len(rows):
        ids = [row["id"] for row in rows]
        stored = set(session.execute(statement(session, "ours", ids), {"ids": ids}).scalars().all())
        lost = {p.candidate.key for p in plans if p.transaction_id not in stored}
        winners = [p for p in plans if p.transaction_id in stored]
    for table, table_rows in _child_rows(rt, winners, now):
        insert_rows(session, table, table_rows)
    return lost


def _transaction_row(rt: Runtime, p: Planned, now: datetime, source: str) -> dict[str, Any]:
    c = p.candidate
    return {
        "id": p.transaction_id,
        "service_id": rt.service_ids[c.service.slug],
        "external_id": c.external_id,
        "completed_at": c.completed_at,
        "received_at": now,
        "touchpoint": c.touchpoint,
        "office_id": rt.office_ids[c.office.code] if c.office else None,
        "language": c.language,
        "consent_sms": c.consent_sms,
        "consent_voice": c.consent_voice,
        "test": c.test,
        "decision": p.decision,
        "reason": p.reason,
        "channel": p.channel,
        "source": source,
        "attributes": c.attributes,
        "survey_id": rt.survey_ids.get(c.service.slug),
    }


def _child_rows(rt: Runtime, plans: Sequence[Planned], now: datetime) -> list[tuple[Table, list[dict[str, Any]]]]:
    """The contacts, service levels and invitations rows of ``plans``, in that (insertion) order."""
    cipher = rt.cipher
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
