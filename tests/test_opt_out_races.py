"""Opt-outs of one address arriving at the same moment (SPEC §2 rule 3): one active suppression per channel.

Real threads post through the Flask app at once, each its own request and transaction; several rounds, since each
is a race (on PostgreSQL every post could read "not yet suppressed" before any committed).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from sqlalchemy import select

from engine.store.models import Suppression

POSTS = 8


def at_once(app: Any, method: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> list[Any]:
    """``POSTS`` requests of ``path`` let go together; their (status, JSON body)."""
    start = threading.Barrier(POSTS)
    answers: list[Any] = []

    def send() -> None:
        client = app.test_client()
        start.wait()
        response = client.open(path, method=method, json=body, headers=headers)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=send) for _ in range(POSTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def active(runtime: Any) -> Counter[tuple[str, str]]:
    with runtime.sessions() as session:
        rows = session.execute(
            select(Suppression.contact_hash, Suppression.channel).where(Suppression.restored_at.is_(None))
        ).all()
    return Counter((h, c) for h, c in rows)


def test_opt_outs_of_one_phone_posted_at_once_record_one_suppression_per_channel(app, client, auth, make_key, runtime):
    admin = {"Authorization": f"Bearer {make_key(tuple(runtime.catalog.services), ('admin',))}"}
    for round_ in range(6):
        phone = f"+120255501{round_:02d}"
        answers = at_once(app, "POST", "/api/v1/opt-outs", {"phone": phone}, auth)
        assert [status for status, _ in answers] == [201] * POSTS, answers
        # Each is answered as a repeated opt-out is: the suppression in force, the same for all.
        assert all(body == answers[0][1] for _, body in answers), answers
        channels = sorted(s["channel"] for s in answers[0][1]["suppressions"])
        assert channels, answers
        counted = active(runtime)
        assert sorted(counted.values()) == [1] * len(channels), f"round {round_}: {counted}"
        restored = client.delete("/api/v1/opt-outs", json={"phone": phone, "reason": "asked again"}, headers=admin)
        assert restored.status_code == 200 and restored.get_json() == {"restored": len(channels)}
        assert active(runtime) == Counter()


def test_an_opt_out_after_a_restore_is_recorded_again(client, auth, make_key, runtime):
    """The restored row stays (history); a new opt-out records a new active one beside it."""
    admin = {"Authorization": f"Bearer {make_key(tuple(runtime.catalog.services), ('admin',))}"}
    body = {"email": "again@example.com"}
    first = client.post("/api/v1/opt-outs", json=body, headers=auth)
    assert first.status_code == 201
    repeated = client.post("/api/v1/opt-outs", json=body, headers=auth)
    assert repeated.status_code == 201 and repeated.get_json() == first.get_json()
    assert client.delete("/api/v1/opt-outs", json=body | {"reason": "asked"}, headers=admin).get_json() == {
        "restored": 1
    }
    again = client.post("/api/v1/opt-outs", json=body, headers=auth)
    assert again.status_code == 201
    with runtime.sessions() as session:
        rows = session.execute(select(Suppression).order_by(Suppression.id)).scalars().all()
    assert [r.restored_at is None for r in rows] == [False, True]
