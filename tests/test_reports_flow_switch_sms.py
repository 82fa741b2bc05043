"""An SMS conversation that spans a change of the service's flow (a deploy while customers are mid-survey).

The response records the flow version and survey it was started on (SPEC §6.1: "the flow version and PRA block
recorded with each ... response"); the rest of the conversation is asked and read on that version, so its answers
are the answers to the questions the customer was asked, and the quarter's file counts them in that survey's row.
Through the real stack: two configurations on one database (before and after the switch), the API, dispatch through
the real Twilio SDK to the error stub, signed inbound webhooks, the report API.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.api.auth import create_api_key
from engine.reporting.fiscal import fiscal_quarter
from engine.settings import load_settings
from engine.store.db import unit_of_work, utcnow
from tests import sms_support
from tests.helpers import FAST_SENDING, write_config
from tests.sms_support import SmsStack, created
from tests.twilio_support import PUBLIC_URL, TwilioErrorStub, twilio_provider_env

shared_twilio_stub = sms_support.shared_twilio_stub

PHONE = "+12025550123"
SERVICE = "sms-switch"


def services(flow: str) -> dict[str, Any]:
    return {SERVICE: {**sms_support._COMMON, "flow": flow, "channels": ["sms"], "sms_mode": "conversational"}}


@pytest.fixture
def stacks(
    database_url: str, flows_dir: Path, tmp_path: Path, shared_twilio_stub: TwilioErrorStub
) -> Iterator[Callable[[str], SmsStack]]:
    shared_twilio_stub.script.clear()
    shared_twilio_stub.requests.clear()
    built: list[SmsStack] = []

    def make(flow: str) -> SmsStack:
        config = write_config(tmp_path / f"config-{flow}", services(flow), {})
        settings = load_settings({
            "SURVEY_ENGINE_DATABASE_URL": database_url,
            "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
            "SURVEY_ENGINE_CONFIG_DIR": str(config),
            "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
            "SURVEY_ENGINE_SECRET_KEY": sms_support.SECRET,
            "SURVEY_ENGINE_ENCRYPTION_KEY": sms_support.ENCRYPTION,
            "SURVEY_ENGINE_PUBLIC_URL": PUBLIC_URL,
            "SURVEY_ENGINE_LOG_LEVEL": "WARNING",
            **FAST_SENDING,
            **twilio_provider_env(shared_twilio_stub.base_url),
        })  # fmt: skip
        stack = sms_support.build_stack(settings)
        built.append(stack)
        return stack

    yield make
    for stack in built:
        stack.rt.engine.dispose()


def quarter_rows(stack: SmsStack) -> list[dict[str, str]]:
    with unit_of_work(stack.rt.sessions) as session:
        key = create_api_key(session, f"rpt-{uuid.uuid4().hex[:6]}", [SERVICE], ["reports"])
    quarter = fiscal_quarter(utcnow(), stack.rt.catalog.services[SERVICE].timezone)
    query = f"fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}&service={SERVICE}&format=csv"
    answer = stack.client.get(f"/api/v1/reports/a11?{query}", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))


def test_a_conversation_goes_on_with_the_flow_version_it_started_on(
    stacks: Callable[[str], SmsStack], shared_twilio_stub: TwilioErrorStub
) -> None:
    before = stacks("a11-standard")
    shared_twilio_stub.script.append(created(f"SM{uuid.uuid4().hex}", PHONE))
    before.schedule("SW-1", PHONE, SERVICE)
    assert before.dispatch().outcomes == {"sent": 1}
    assert (before.reply(PHONE, "5", sid=f"SM{uuid.uuid4().hex}") or "").startswith(
        "This interaction increased my trust"
    )
    assert (before.reply(PHONE, "4", sid=f"SM{uuid.uuid4().hex}") or "").startswith("My need was addressed.")

    # The service now asks a11-drivers (thumbs trust, no effectiveness question); the customer answers on.
    after = stacks("a11-drivers")
    answer = after.text(PHONE, "3", sid=f"SM{uuid.uuid4().hex}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert "It was easy to complete what I needed to do." in answer.get_data(as_text=True)
    assert after.answers() == {
        "satisfaction": ("satisfaction", 5, None, ()),
        "trust": ("trust", 4, None, ()),
        "effectiveness": ("effectiveness", 3, None, ()),
    }
    (row,) = [r for r in quarter_rows(after) if r["survey_title"] == "Customer Experience Survey"]
    assert (row["volume_of_respondents"], row["trust_4"], row["effectiveness_3"]) == ("1", "1", "1")
