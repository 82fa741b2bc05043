"""A post-call IVR survey counts for the cooldown like an invitation (SPEC §2 rule 3, issue 15 item 14b): the
caller's phone is not asked again by any service within the cooldown, on SQLite and PostgreSQL, through the real
hand-off webhook and intake API; the transaction's own invitation (cancelled in favour of the call) does not hide
it, and the transaction keeps its one invitation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from engine.api.auth import create_api_key
from engine.app import create_app
from engine.channels import load_channels
from engine.runtime import build_runtime
from engine.settings import load_settings
from engine.store.db import unit_of_work
from engine.store.models import Invitation, InvitationState, Response
from tests import ivr_support
from tests.conftest import ENCRYPTION, SECRET
from tests.helpers import FAST_SENDING, write_config
from tests.ivr_support import CLOSED_PORT_URL, IvrStack
from tests.twilio_support import PUBLIC_URL, twilio_provider_env

STANDARD = "/channels/ivr/voice?service=ivr-standard&transaction={tx}&office=NYC-01&language=en"
CALLER = "+12025550177"


SERVICES: dict[str, Any] = {
    **ivr_support.SERVICES,
    # Another agency's service that keeps the default 30-day cooldown.
    "benefits-follow-up": {"name": "Benefits", "agency": "Other Agency", "service_type": "benefits",
                           "flow": "a11-standard", "channels": ["console"], "sample_rate": 1.0,
                           "timezone": "America/New_York"},
}  # fmt: skip


@pytest.fixture
def ivr(database_url: str, flows_dir: Path, tmp_path: Path) -> Iterator[IvrStack]:
    env = {
        "SURVEY_ENGINE_DATABASE_URL": database_url,
        "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
        "SURVEY_ENGINE_CONFIG_DIR": str(write_config(tmp_path / "config", SERVICES, ivr_support.OFFICES)),
        "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
        "SURVEY_ENGINE_SECRET_KEY": SECRET,
        "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
        "SURVEY_ENGINE_PUBLIC_URL": PUBLIC_URL,
        "SURVEY_ENGINE_LOG_LEVEL": "WARNING",
        **FAST_SENDING,
        **twilio_provider_env(CLOSED_PORT_URL),
    }
    settings = load_settings(env)
    rt = build_runtime(settings, channels=load_channels(settings))
    rt.sync_catalog()
    app = create_app(runtime=rt)
    app.testing = True
    with unit_of_work(rt.sessions) as session:
        key = create_api_key(session, "cooldown-tests", tuple(SERVICES), ("intake", "reports"))
    try:
        yield IvrStack(rt, app, app.test_client(), key)
    finally:
        rt.engine.dispose()


def _report(ivr: IvrStack, service: str, external_id: str) -> dict[str, Any]:
    return ivr.report({"id": external_id, "service": service, "touchpoint": "phone",
                       "completed_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
                       "contact": {"phone": CALLER}})  # fmt: skip


def test_a_post_call_survey_puts_the_callers_phone_in_cooldown_for_every_service(ivr):
    first = _report(ivr, "ivr-standard", "CC-1")  # the contact center reports the call; an invitation is scheduled
    assert first["decision"] == "scheduled"
    call = ivr.call(caller=CALLER).dial(STANDARD.format(tx="CC-1"))  # ...but the caller takes the survey on the line
    call.wait()
    call.press("5")
    with ivr.rt.sessions() as session:
        states = dict(session.execute(select(Invitation.channel, Invitation.state)).tuples().all())
    assert states == {"console": InvitationState.CANCELLED}, "rule 7: the pending invitation is cancelled"

    later = _report(ivr, "benefits-follow-up", "BEN-1")  # another agency asks the same phone
    assert later["decision"] == "cooldown" and later["invitation"] is None


def test_a_post_call_survey_older_than_the_cooldown_no_longer_counts(ivr):
    _report(ivr, "ivr-standard", "CC-5")
    call = ivr.call(caller=CALLER).dial(STANDARD.format(tx="CC-5"))
    call.wait()
    call.press("5")
    with unit_of_work(ivr.rt.sessions) as session:  # the call was 31 days ago
        session.execute(update(Response).values(started_at=datetime.now(UTC) - timedelta(days=31)))
    assert _report(ivr, "benefits-follow-up", "BEN-5")["decision"] == "scheduled"


def test_the_transaction_of_a_post_call_survey_can_still_be_looked_up(ivr):
    _report(ivr, "ivr-standard", "CC-3")
    call = ivr.call(caller=CALLER).dial(STANDARD.format(tx="CC-3"))
    call.wait()
    call.press("4")
    reply = ivr.client.get("/api/v1/transactions/ivr-standard/CC-3", headers={"Authorization": f"Bearer {ivr.key}"})
    assert reply.status_code == 200, reply.get_data(as_text=True)
    shown = reply.get_json()["invitation"]
    assert shown["channel"] == "console" and shown["state"] == "cancelled", "the transaction's own invitation"
