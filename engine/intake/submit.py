"""Transaction intake: validate, deduplicate, decide and store a batch with a few set-based queries.

The flow of one batch:

1. each item is validated on its own (a bad item is ``invalid`` and never sinks the batch);
2. replays — of an id already stored, or repeated inside the batch — return the first decision;
3. the facts the rules need for the new items are read in one query each (:mod:`engine.intake.facts`:
   suppressions, recent invitations, daily counts);
4. :func:`engine.intake.rules.decide` decides each item, in the order of SPEC §2 rule 6;
5. the rows are written set-based (:mod:`engine.intake.writing`); a transaction another process stored first at
   the same moment answers with that one's decision.

On PostgreSQL a batch's lookups are planned with their values and its INSERT once for all values
(``engine.store.db.plans`` says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.common.errors import FieldError, ValidationFailed
from engine.intake import facts as store_facts
from engine.intake import rules, writing
from engine.intake.facts import BatchFacts, invitation_view, iso, result
from engine.intake.validation import Candidate, parse_transaction, usable_id
from engine.intake.writing import Planned, attach_survey_urls
from engine.runtime import Runtime
from engine.store.db import plans, utcnow
from engine.store.models import ContactKind, Decision

__all__ = ["MAX_BATCH", "Intake", "invalid_result", "invitation_view", "iso", "result"]

MAX_BATCH = 1000


def invalid_result(raw: Any, errors: Sequence[FieldError]) -> dict[str, Any]:
    return {
        "id": usable_id(raw),
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
        single = not batch and session.get_bind().dialect.name == "postgresql"
        # One new transaction on PostgreSQL (the single-transaction API): no replay check up front, one round trip
        # less. A replay is then decided again (harmless: deciding writes nothing; the counts it keeps live in this
        # call only), its INSERT finds the (service, id) stored and writes nothing, and it answers with the stored
        # first decision, the way a lost race does below.
        stored = {} if single else self._load_existing(session, [c.key for _, c in fresh])
        new = [(i, c) for i, c in fresh if c.key not in stored]
        for index, candidate in fresh:
            if candidate.key in stored:
                results[index] = {**stored[candidate.key], "duplicate": True}

        # Most contacts have no facts (no suppression, no recent invitation). One transaction on PostgreSQL is
        # then decided on none, without reading them, and written under a guard that holds exactly when the
        # contact has none: the whole request is one statement. A service with a daily cap counts its day first.
        blind = single and len(new) == 1 and new[0][1].service.daily_cap is None
        planned = self._decide(session, [c for _, c in new], now, blind=blind)
        if batch and planned:
            plans(session, "generic")  # its INSERT takes long arrays
        lost = self._write(session, planned, now, source, guarded=blind)
        if lost and blind:
            # Not written: a replay (its first decision stands), or the contact has facts after all: it is then
            # decided on them and written as any other transaction.
            stored.update({k: {**v, "duplicate": True} for k, v in self._load_existing(session, sorted(lost)).items()})
            if not lost <= stored.keys():
                planned = self._decide(session, [c for _, c in new], now)
                lost = self._write(session, planned, now, source)
        if missing := lost - stored.keys():
            if batch:
                plans(session, "custom")
            found = self._load_existing(session, sorted(missing))
            stored.update({k: {**v, "duplicate": True} for k, v in found.items()})
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

    # -- the steps (each a frame of its own: bench/intake.py profiles by these names) ---------------------------

    def _load_existing(
        self, session: Session, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        return store_facts.load_existing(session, self.rt, keys)

    def _gather_facts(self, session: Session, hashes: set[str], now: datetime) -> BatchFacts:
        return store_facts.gather_facts(session, self.rt, hashes, now)

    def _hashes(self, candidate: Candidate) -> dict[ContactKind, str]:
        hashes = {}
        if candidate.phone:
            hashes[ContactKind.PHONE] = self.rt.cipher.lookup_hash("phone", candidate.phone)
        if candidate.email:
            hashes[ContactKind.EMAIL] = self.rt.cipher.lookup_hash("email", candidate.email)
        return hashes

    def _decide(
        self, session: Session, candidates: Sequence[Candidate], now: datetime, blind: bool = False
    ) -> list[Planned]:
        """Decide ``candidates`` on their contacts' facts, or on none (``blind``: see :meth:`_write`)."""
        all_hashes = [self._hashes(c) for c in candidates]
        if blind:
            facts = BatchFacts(self.rt, session)
        else:
            facts = self._gather_facts(session, {h for hs in all_hashes for h in hs.values()}, now)
        planned = []
        for c, hashes in zip(candidates, all_hashes, strict=True):
            outcome = rules.decide(c, hashes, facts, now)
            facts.count(c.service, outcome, hashes)
            planned.append(writing.plan(self.rt, c, hashes, outcome, now))
        return planned

    def _write(
        self, session: Session, planned: Sequence[Planned], now: datetime, source: str, guarded: bool = False
    ) -> set[tuple[str, str]]:
        """Insert the rows of ``planned``; return the keys not written: another process stored them first (a race
        lost), or, ``guarded`` (decided blind), their contacts have facts after all."""
        hashes = {h for p in planned for h in p.hashes.values()}
        guard = store_facts.no_facts_guard(session, self.rt, hashes, now) if guarded and hashes else None
        return writing.write(session, self.rt, planned, now, source, guard)
