"""The demo: synthetic transactions fed through the real intake, so a newcomer sees the loop on the console."""

from __future__ import annotations

import random
from datetime import timedelta

from engine.db import unit_of_work, utcnow
from engine.runtime import Runtime


def feed(rt: Runtime, count: int, services: list[str] | None = None) -> list[str]:
    """Report ``count`` transactions per service; return a summary of the decisions."""
    now = utcnow()
    slugs = services or sorted(rt.catalog.services)
    unknown = [s for s in slugs if s not in rt.catalog.services]
    if unknown:
        raise ValueError(f"unknown services: {', '.join(unknown)}")
    offices = sorted(rt.catalog.offices)
    rng = random.Random()
    stamp = now.strftime("%Y%m%d%H%M%S")
    lines = []
    for slug in slugs:
        items = []
        for n in range(count):
            item = {
                "id": f"DEMO-{stamp}-{n:05d}",
                "service": slug,
                "completed_at": (now - timedelta(minutes=rng.randint(1, 90))).isoformat(),
                "touchpoint": rng.choice(["phone", "in_person", "web"]),
                "language": rng.choice(["en", "en", "es"]),
                # Fictional numbers (555-01xx) and the reserved example.com domain.
                "contact": {"email": f"demo{n}@example.com", "phone": f"+1202555{100 + n % 100:04d}"[:12]},
                "consent": {"sms": True, "voice": False},
                "service_level": {"wait_seconds": rng.randint(10, 900)},
                "test": True,
            }
            if offices:
                item["office"] = rng.choice(offices)
            items.append(item)
        from engine.intake import Intake

        with unit_of_work(rt.sessions) as session:
            results = Intake(rt).submit(session, items, None, source="demo")
        tally: dict[str, int] = {}
        for r in results:
            tally[r["decision"]] = tally.get(r["decision"], 0) + 1
        lines.append(f"{slug}: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    return lines
