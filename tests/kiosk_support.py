"""Kiosk test helpers: register and enroll devices through the real registry, build queued sessions as a device does."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from engine.kiosk import devices as kiosk
from engine.store.db import unit_of_work
from engine.store.models import Answer, Response

COOKIE = "__Host-survey-kiosk"
API = "/api/v1/kiosk/responses"


def register(runtime: Any, service: str = "kiosk-office", office: str = "NYC-01", **kw: Any) -> tuple[uuid.UUID, str]:
    with unit_of_work(runtime.sessions) as session:
        device, code = kiosk.register(session, runtime, service, office, **kw)
        return device.id, code


def enrolled(runtime: Any, service: str = "kiosk-office", office: str = "NYC-01") -> tuple[uuid.UUID, str]:
    """A device enrolled through its one-time code: its id and credential."""
    device_id, code = register(runtime, service, office)
    with unit_of_work(runtime.sessions) as session:
        _, credential = kiosk.enroll(session, code)
    return device_id, credential


def enroll_in(client: Any, code: str) -> Any:
    """Open the enrollment link and tap "Enroll this device", as a person does: the POST's reply."""
    page = client.get(f"/kiosk/enroll/{code}")
    assert page.status_code == 200, page.status_code
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token is not None
    return client.post(f"/kiosk/enroll/{code}", data={"csrf_token": token.group(1)})


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def session_of(
    answers: list[tuple[str, Any]], *, at: datetime | None = None, completed: bool = True, flow: str = "a11-standard",
    version: str = "2", language: str = "en", client_uuid: str | None = None, step: timedelta = timedelta(seconds=3),
) -> dict[str, Any]:  # fmt: skip
    """One queued session as the page posts it; ``answers`` are (question id, value | [choices] | "text")."""
    start = at or datetime.now(UTC) - timedelta(minutes=10)
    items = []
    for n, (qid, given) in enumerate(answers, start=1):
        key = "value" if isinstance(given, int) else "choices" if isinstance(given, list) else "text"
        items.append({"question_id": qid, key: given, "answered_at": iso(start + n * step)})
    return {
        "client_uuid": client_uuid or str(uuid.uuid4()),
        "flow": {"id": flow, "version": version},
        "language": language,
        "started_at": iso(start),
        "completed_at": iso(start + (len(answers) + 1) * step) if completed else None,
        "answers": items,
    }


def post_batch(client: Any, credential: str | None, sessions: list[dict[str, Any]] | Any, **kw: Any) -> Any:
    """POST a batch with the device's credential cookie (none when ``credential`` is None)."""
    client.delete_cookie(COOKIE)
    if credential:
        client.set_cookie(COOKIE, credential)
    body = {"sessions": sessions} if isinstance(sessions, list) else sessions
    return client.post(API, json=body, **kw)


def stored(runtime: Any) -> list[tuple[Response, dict[str, Answer]]]:
    with runtime.sessions() as session:
        responses = session.execute(select(Response).order_by(Response.started_at)).scalars().all()
        out = []
        for r in responses:
            answers = session.execute(select(Answer).where(Answer.response_id == r.id)).scalars().all()
            out.append((r, {a.question_id: a for a in answers}))
        return out
