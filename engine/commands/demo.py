"""The demo: synthetic transactions fed through the real intake, sent by the real dispatcher, some answered
through the real survey-session engine — so a newcomer sees transaction → invitation → link → answers → rows.

Everything it makes is test data (``test: true``, console channel): it is never counted in reports.
"""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from engine.catalog.services import Catalog
from engine.delivery.dispatch import Dispatcher
from engine.intake.submit import MAX_BATCH, Intake
from engine.runtime import Runtime
from engine.store.db import unit_of_work, utcnow
from engine.store.models import Invitation, InvitationState, Transaction
from engine.surveys.sessions import Given, SurveySessions


def _transactions(rt: Runtime, slug: str, count: int, rng: random.Random, stamp: str) -> list[dict[str, Any]]:
    now = utcnow()
    offices = sorted(rt.catalog.offices)
    items = []
    for n in range(count):
        item: dict[str, Any] = {
            "id": f"DEMO-{stamp}-{n:05d}",
            "service": slug,
            "completed_at": (now - timedelta(minutes=rng.randint(2, 90))).isoformat(),
            "touchpoint": rng.choice(["phone", "in_person", "web"]),
            "language": rng.choice(["en", "en", "es"]),
            # Fictional numbers (555-01xx) and the reserved example.com domain.
            "contact": {"email": f"demo-{stamp}-{slug}-{n}@example.com", "phone": f"+1202555{100 + n % 100:04d}"},
            "consent": {"sms": True, "voice": False},
            "service_level": {"wait_seconds": rng.randint(10, 900)},
            "test": True,
        }
        if offices:
            item["office"] = rng.choice(offices)
        items.append(item)
    return items


def _answer(rt: Runtime, invitation_ids: list[Any], rng: random.Random) -> int:
    sessions = SurveySessions(rt)
    answered = 0
    with unit_of_work(rt.sessions) as session:
        for inv_id in invitation_ids:
            invitation = session.get(Invitation, inv_id)
            if invitation is None or invitation.state not in (InvitationState.SENT, InvitationState.DELIVERED):
                continue
            response = sessions.start_for_invitation(session, invitation, invitation.language or "en", "console")
            flow = sessions.flow_of(response)
            ratings: dict[str, int | None] = {}
            for question in sessions.questions_for(flow, "web", ratings):
                if not flow.applies(question, "web", ratings):
                    continue
                if question.is_rating:
                    value = rng.choice([p for p in question.points for _ in range(p)])  # leans positive
                    ratings[question.id] = value
                    sessions.record(session, response, question, Given(value=value))
                elif question.choices:
                    picked = rng.sample([c.id for c in question.choices], k=rng.randint(1, 2))
                    sessions.record(session, response, question, Given(choices=tuple(picked)))
                elif rng.random() < 0.3:
                    sessions.record(session, response, question, Given(text="Demo comment: the staff were kind."))
            sessions.complete(session, response)
            answered += 1
    return answered


COUNT_RULE = f"--count must be a whole number from 1 to {MAX_BATCH} (transactions a service)"
ANSWER_RATE_RULE = "--answer-rate must be a number from 0 to 1 (the share of sent invitations the demo answers)"


def check_count(count: int) -> None:
    """Refuse a count the demo cannot honour: at least one transaction a service, at most one intake batch
    (``MAX_BATCH``, what the API takes in one request), so a slip such as ``--count -1`` or ``--count 10000000`` is
    one line, not a silent empty run or a long, memory-hungry one."""
    if not 1 <= count <= MAX_BATCH:
        raise ValueError(f"{COUNT_RULE}, got {count}")


def parse_count(text: str) -> int:
    """``--count`` as typed: a whole number :func:`check_count` accepts, else the same one line (``--count abc`` and
    ``--count 1.5`` too, not click's usage error)."""
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"{COUNT_RULE}, got {text}") from None
    check_count(count)
    return count


def check_answer_rate(rate: float, typed: str | None = None) -> None:
    """Refuse a share the demo cannot take: a number from 0 to 1 (``nan`` is not one; it answered nothing). The
    message names ``typed`` (what was typed) where given, else the number."""
    if not 0 <= rate <= 1:
        raise ValueError(f"{ANSWER_RATE_RULE}, got {rate if typed is None else typed}")


def parse_answer_rate(text: str) -> float:
    """``--answer-rate`` as typed: a number :func:`check_answer_rate` accepts, else one line naming what was typed."""
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    check_answer_rate(rate, text)
    return rate


def check_services(catalog: Catalog, services: list[str]) -> None:
    """Refuse a service the catalogue does not hold."""
    unknown = [s for s in services if s not in catalog.services]
    if unknown:
        raise ValueError(f"unknown services: {', '.join(unknown)}")


def feed(rt: Runtime, count: int, services: list[str] | None = None, answer_rate: float = 0.5) -> list[str]:
    """Report ``count`` transactions per service, send what is due, answer a share; return a summary."""
    check_count(count)
    check_answer_rate(answer_rate)
    slugs = services or sorted(rt.catalog.services)
    check_services(rt.catalog, slugs)
    rng = random.Random()
    stamp = utcnow().strftime("%Y%m%d%H%M%S")
    lines = []
    for slug in slugs:
        with unit_of_work(rt.sessions) as session:
            results = Intake(rt).submit(session, _transactions(rt, slug, count, rng, stamp), None, source="demo")
        tally: dict[str, int] = {}
        for r in results:
            tally[r["decision"]] = tally.get(r["decision"], 0) + 1
        lines.append(f"{slug}: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    stats = Dispatcher(rt).drain()
    lines.append(_sent_line(rt, stamp, stats.handed))
    with rt.sessions() as session:
        sent = (
            session.execute(
                select(Invitation.id).where(Invitation.state == InvitationState.DELIVERED, Invitation.test.is_(True))
            )
            .scalars()
            .all()
        )
    chosen = [i for i in sent if rng.random() < answer_rate]
    lines.append(f"answered: {_answer(rt, chosen, rng)} survey(s) through the survey-session engine")
    lines.append(
        'dashboard: everything above is test data (its "test data" view shows it); make an account with '
        f"`survey-engine user create --email you@agency.gov {' '.join('--service ' + s for s in slugs)}` and open "
        f"{rt.settings.public_url.rstrip('/')}/dashboard"
    )
    lines.extend(_demo_kiosk(rt, slugs))
    return lines


HANDED_ON = (InvitationState.SENDING, InvitationState.SENT, InvitationState.DELIVERED, InvitationState.ANSWERED)


def _sent_line(rt: Runtime, stamp: str, handed: int) -> str:
    """Say how many of this run's invitations went out, and where their links were printed. A running ``serve``
    (or ``worker``) dispatches too, and may take some or all of them between this command's intake and its own
    dispatch: those links are in that process's console, not here, and the line says so rather than "sent 0"."""
    with rt.sessions() as session:
        out = session.execute(
            select(func.count())
            .select_from(Invitation)
            .join(Transaction, Transaction.id == Invitation.transaction_id)
            .where(Transaction.external_id.like(f"DEMO-{stamp}-%"), Invitation.state.in_(HANDED_ON))
        ).scalar_one()
    line = f"sent now: {handed} invitation(s); the console printed each message with its survey link"
    if out > handed:
        line += (
            f"; {out - handed} more were sent meanwhile by a running `serve` or `worker`: that process's console "
            "printed their links"
        )
    return line


def _demo_kiosk(rt: Runtime, slugs: list[str]) -> list[str]:
    """Register a demo kiosk for the first fed service that offers the kiosk channel, and say how to open it."""
    from engine.kiosk import devices as kiosk

    slug = next((s for s in slugs if kiosk.CHANNEL in rt.catalog.services[s].channels), None)
    if slug is None or not rt.catalog.offices:
        return ["kiosk: no fed service lists the kiosk channel, so no demo kiosk was registered"]
    office = sorted(rt.catalog.offices)[0]
    with unit_of_work(rt.sessions) as session:
        device, code = kiosk.register(session, rt, slug, office, f"Demo kiosk at {office}")
        device_id = device.id
    url = f"{rt.settings.public_url.rstrip('/')}/kiosk/enroll/{code}"
    return [
        f"kiosk: registered demo kiosk {device_id} ({slug} at {office}); open this one-time link within 24 hours "
        "on a tablet or in a browser to enroll it and answer as a visitor would:",
        url,
    ]
