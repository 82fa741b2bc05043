"""What intake reads from the store for a batch, in a few set-based queries: replays of ids already stored, and the
facts the decision rules need (suppressions, recent invitations, invitations counted against a daily cap).

Statements are built once (module level) so that SQLAlchemy's compiled cache serves them; a list of values is one
array parameter on PostgreSQL when it is long (``= ANY(:list)``), an expanding ``IN`` otherwise and on SQLite.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import CompoundSelect, Dialect, Select, bindparam, func, select
from sqlalchemy.orm import Session

from engine.catalog.services import ServiceConfig
from engine.intake import rules
from engine.runtime import Runtime
from engine.store.db import SMALL_LIST, among
from engine.store.models import (
    COOLDOWN_STATES_VALUES,
    Contact,
    ContactKind,
    Invitation,
    Response,
    Suppression,
    SuppressionReason,
    Transaction,
)
from engine.surveys.flows import Pra

# The channel of a post-call survey: a response to a transaction with no invitation (the engine never imports a
# channel, so the name stands here).
POST_CALL_CHANNEL = "ivr"

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


def statement(session: Session, name: str, values: Sequence[Any]) -> Select[Any] | CompoundSelect:
    array = len(values) > SMALL_LIST and session.get_bind().dialect.name == "postgresql"
    return STATEMENTS["array" if array else "list"][name]


def iso(moment: datetime | None) -> str | None:
    """A moment as RFC 3339 in UTC (``…Z``): a first decision and its replays read the same."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


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


def load_existing(
    session: Session, rt: Runtime, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The first decisions of the (service, id) ``keys`` already stored, as the API answers them."""
    by_service: dict[str, list[str]] = defaultdict(list)
    for slug, external_id in keys:
        by_service[slug].append(external_id)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for slug, ids in by_service.items():
        params = {"service_id": rt.service_ids[slug], "external_ids": ids}
        rows = session.connection().execute(statement(session, "existing", ids), params).all()
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


@dataclass
class BatchFacts:
    """The facts of one batch (:class:`engine.intake.rules.Facts`): read up front, kept up to date by
    :meth:`count` as the batch's invitations are planned."""

    rt: Runtime
    session: Session
    suppressed: dict[str, set[str]] = field(default_factory=dict)
    # The channels among ``suppressed`` where the reason is an opt-out (SPEC §2 rule 5: opted_out vs no_channel).
    opted_out: dict[str, set[str]] = field(default_factory=dict)
    recent: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    day_counts: dict[tuple[str, date], int] = field(default_factory=dict)

    def channel_options(self, service: ServiceConfig) -> list[rules.ChannelOption]:
        return self.rt.channel_options(service)

    def sampling_salt(self, service: ServiceConfig) -> str:
        return self.rt.service_salts[service.slug]

    def pra_of(self, service: ServiceConfig) -> Pra:
        return self.rt.catalog.pra_of(service)

    def respects_quiet_hours(self, channel: str) -> bool:
        return bool(self.rt.channels.get(channel).quiet_hours)

    def invitations_on(self, service: ServiceConfig, day: date) -> int:
        """The invitations counted against ``service``'s daily cap on ``day`` (one query per service and day)."""
        key = (service.slug, day)
        if key not in self.day_counts:
            start, end = rules.day_bounds(day, service.timezone)
            self.day_counts[key] = self.session.execute(
                select(func.count())
                .select_from(Invitation)
                .where(
                    Invitation.service_id == self.rt.service_ids[service.slug],
                    Invitation.send_at >= start,
                    Invitation.send_at < end,
                    Invitation.state.in_(COOLDOWN_STATES_VALUES),
                )
            ).scalar_one()
        return self.day_counts[key]

    def count(self, service: ServiceConfig, outcome: rules.Outcome, hashes: dict[ContactKind, str]) -> None:
        """An invitation planned in this batch counts for the cap and the cooldown of the items after it."""
        if outcome.send_at is None:
            return
        if service.daily_cap is not None and outcome.cap_day is not None:
            self.day_counts[(service.slug, outcome.cap_day)] += 1
        for h in hashes.values():
            self.recent[h].append(outcome.send_at)


def longest_cooldown(rt: Runtime) -> int:
    """The longest contact cooldown of the catalogue, in days: how far back the recent invitations are read."""
    return max((s.contact_cooldown_days for s in rt.catalog.services.values()), default=0)


@lru_cache(maxsize=8)
def _no_facts_sql(dialect: Dialect, with_recent: bool) -> tuple[str, dict[str, Any]]:
    """``NOT EXISTS (<suppressed>) AND NOT EXISTS (<recent>)``: the very statements :func:`gather_facts` runs (in
    their array form), compiled for ``dialect``, and their constant parameters (the states, the channel)."""
    parts, constants = [], {}
    for name in ("suppressed", "recent") if with_recent else ("suppressed",):
        placeholder = STATEMENTS["array"][name].params(hashes=[], since=datetime(2000, 1, 1, tzinfo=UTC))
        compiled = placeholder.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        parts.append(f"NOT EXISTS ({compiled})")
        constants.update({k: v for k, v in compiled.params.items() if k not in ("hashes", "since")})
    return " AND ".join(parts), constants


def no_facts_guard(session: Session, rt: Runtime, hashes: set[str], now: datetime) -> tuple[str, dict[str, Any]]:
    """A condition for a write, true exactly when :func:`gather_facts` would find no fact for ``hashes`` at that
    moment (no suppression, no recent invitation or post-call survey), and its parameters: a transaction decided
    on no facts is written under it, in one statement, where reading the facts first would cost a round trip.
    PostgreSQL only (``engine.store.db.pg_insert_parents_and_children``)."""
    longest = longest_cooldown(rt)
    sql, constants = _no_facts_sql(session.get_bind().dialect, longest > 0)
    return sql, {**constants, "hashes": sorted(hashes), "since": now - timedelta(days=longest)}


def gather_facts(session: Session, rt: Runtime, hashes: set[str], now: datetime) -> BatchFacts:
    """Suppressions and recent invitations of the batch's contact hashes: one query each."""
    facts = BatchFacts(rt, session)
    if not hashes:
        return facts
    hash_list = sorted(hashes)
    connection = session.connection()  # Core statements: no ORM layer to go through
    suppressed = statement(session, "suppressed", hash_list)
    for contact_hash, channel, reason in connection.execute(suppressed, {"hashes": hash_list}):
        facts.suppressed.setdefault(contact_hash, set()).add(channel)
        if reason == SuppressionReason.OPTED_OUT.value or reason is SuppressionReason.OPTED_OUT:
            facts.opted_out.setdefault(contact_hash, set()).add(channel)
    longest = longest_cooldown(rt)
    if longest > 0:
        since = now - timedelta(days=longest)
        recent = statement(session, "recent", hash_list)
        for contact_hash, send_at in connection.execute(recent, {"hashes": hash_list, "since": since}):
            facts.recent[contact_hash].append(send_at)
    return facts
