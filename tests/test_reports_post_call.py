"""Post-call IVR callers in the §6.1 file of a service that texts and emails its other customers.

A contact center hands its callers to the post-call survey (``ivr_numbers``, or a ``<Redirect>`` naming the
transaction); a caller the engine does not survey (sampled out, in cooldown ...) was a customer all the same, on
the phone: the transaction the hand-off made counts in the ``automated_phone`` row with the surveyed callers
(SPEC §2 rule 5: post-call IVR is triggered by the customer being there), not in the row of the service's first
channel, where no text or email ever reached them. Through the real stack: the IVR webhooks walked as Twilio does,
the report API.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.api.auth import create_api_key
from engine.app import create_app
from engine.channels import load_channels
from engine.intake import rules
from engine.reporting.fiscal import fiscal_quarter
from engine.runtime import build_runtime
from engine.settings import load_settings
from engine.store.db import unit_of_work, utcnow
from tests.conftest import ENCRYPTION, SECRET
from tests.helpers import FAST_SENDING, write_config
from tests.ivr_support import CLOSED_PORT_URL, POST_CALL_NUMBER, IvrStack
from tests.twilio_support import PUBLIC_URL, twilio_provider_env

SERVICE = "ivr-texts-first"
SERVICES = {
    SERVICE: {"name": "Passport Renewal", "agency": "Department of State", "service_type": "administrative",
              "flow": "a11-standard", "channels": ["sms", "email"], "ivr_numbers": [POST_CALL_NUMBER],
              "sample_rate": 0.5, "contact_cooldown_days": 0, "timezone": "America/New_York"},
}  # fmt: skip
HAND_OFF = "/channels/ivr/voice?service=" + SERVICE + "&transaction={tx}&language=en"


@pytest.fixture
def ivr(database_url: str, flows_dir: Path, tmp_path: Path) -> Iterator[IvrStack]:
    settings = load_settings({
        "SURVEY_ENGINE_DATABASE_URL": database_url,
        "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
        "SURVEY_ENGINE_CONFIG_DIR": str(write_config(tmp_path / "config", SERVICES, {})),
        "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
        "SURVEY_ENGINE_SECRET_KEY": SECRET,
        "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
        "SURVEY_ENGINE_PUBLIC_URL": PUBLIC_URL,
        "SURVEY_ENGINE_LOG_LEVEL": "WARNING",
        **FAST_SENDING,
        **twilio_provider_env(CLOSED_PORT_URL),
    })  # fmt: skip
    rt = build_runtime(settings, channels=load_channels(settings))
    rt.sync_catalog()
    app = create_app(runtime=rt)
    app.testing = True
    with unit_of_work(rt.sessions) as session:
        key = create_api_key(session, "post-call-reports", (SERVICE,), ("intake", "reports"))
    yield IvrStack(rt, app, app.test_client(), key)
    rt.engine.dispose()


def rows(ivr: IvrStack) -> dict[str, dict[str, Any]]:
    quarter = fiscal_quarter(utcnow(), ivr.rt.catalog.services[SERVICE].timezone)
    query = f"fiscal_year={quarter.fiscal_year}&quarter={quarter.quarter}&service={SERVICE}&format=csv"
    answer = ivr.client.get(f"/api/v1/reports/a11?{query}", headers={"Authorization": f"Bearer {ivr.key}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {r["channel"]: r for r in csv.DictReader(io.StringIO(answer.get_data(as_text=True)))}


def volumes(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["volume_of_customers"], row["volume_of_customers_provided_survey_opportunity"],
            row["volume_of_respondents"])  # fmt: skip


def test_a_post_call_caller_who_is_not_surveyed_is_a_phone_customer(ivr: IvrStack) -> None:
    salt = ivr.rt.service_salts[SERVICE]
    ids = [f"CALL-{n}" for n in range(200)]
    sampled_in = next(i for i in ids if rules.sampled_in(SERVICE, i, salt, 0.5))
    sampled_out = next(i for i in ids if not rules.sampled_in(SERVICE, i, salt, 0.5))
    # Surveyed: hears the notice, answers the first question and hangs up.
    call = ivr.call().dial(HAND_OFF.format(tx=sampled_in))
    call.wait()
    call.press("4")
    call.hang_up()
    # Sampled out: thanked and let go.
    ivr.call().dial(HAND_OFF.format(tx=sampled_out))
    assert str(ivr.transaction(SERVICE, sampled_out).decision) == "sampled_out"

    found = rows(ivr)
    assert volumes(found["automated_phone"]) == ("2", "1", "1")
    assert (found["automated_phone"]["satisfaction_4"], found["automated_phone"]["response_rate"]) == ("1", "1.0000")
    assert volumes(found["sms_text_messages"]) == ("0", "0", "0")
    assert volumes(found["email"]) == ("0", "0", "0")
