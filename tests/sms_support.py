"""The SMS channel's test stack: its own services, the real runtime and app, Twilio stand-ins, a texting customer.

``sms_stack(base_url)`` builds the whole engine on the test database (both backends through ``database_url``)
with ``SmsChannel`` registered and the Twilio SDK pointed at ``base_url`` (Prism or the error stub), and returns
an :class:`SmsStack` that reports transactions through the API, runs dispatch, texts the inbound webhook signed
as Twilio signs it, and posts status callbacks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import select

from channels.sms import SmsChannel
from engine.api.auth import create_api_key
from engine.app import create_app
from engine.channels import load_channels
from engine.delivery.dispatch import Dispatcher, DispatchStats
from engine.runtime import Runtime, build_runtime
from engine.settings import load_settings
from engine.store.db import unit_of_work
from engine.store.models import Answer, AnswerChoice, Invitation, Response, Suppression
from tests.helpers import FAST_SENDING, SSA_PRA, STATE_PRA, write_config
from tests.twilio_support import (
    ACCOUNT_SID,
    FROM_NUMBER,
    PUBLIC_URL,
    TwilioErrorStub,
    signed_post,
    twilio_provider_env,
)

SECRET = "sms-test-secret-key-that-is-long-enough-0123456789"
ENCRYPTION = "sms-test-encryption-key-that-is-long-enough-987654"
SUPPORT = {"phone": "+18775550100", "url": "https://example.gov/contact"}
_COMMON = {
    "name": "Passport Renewal",
    "agency": "Department of State",
    "service_type": "administrative",
    "send_delay": "PT0S",
    "contact_cooldown_days": 0,
    # One minute a day is quiet (the validator wants a range); ``sendable_now`` steps over it.
    "quiet_hours": {"start": "00:00", "end": "00:01"},
    "timezone": "UTC",
    "default_language": "en",
    "support": SUPPORT,
}
SERVICES = {
    "sms-first": {**_COMMON, "flow": "a11-standard", "channels": ["sms", "console"], "sms_mode": "conversational"},
    "sms-link": {**_COMMON, "flow": "a11-standard", "channels": ["sms", "console"], "sms_mode": "link"},
    "sms-drivers": {**_COMMON, "flow": "a11-drivers", "channels": ["sms", "console"]},
    "sms-twilio-stop": {**_COMMON, "flow": "a11-standard", "channels": ["sms", "console"],
                        "twilio_opt_out_handling": True},
    # Two agencies on one flow, each with its own PRA clearance (SPEC §2 rule 9).
    "sms-state": {**_COMMON, "flow": "a11-standard", "channels": ["sms", "console"], "pra": STATE_PRA},
    "sms-ssa": {**_COMMON, "name": "Benefits Contact Center", "agency": "Social Security Administration",
                "flow": "a11-standard", "channels": ["sms", "console"], "pra": SSA_PRA, "sms_mode": "link"},
}  # fmt: skip


@pytest.fixture(scope="session")
def sms_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    offices = {"DC-01": {"name": "Washington Passport Agency", "timezone": "America/New_York"}}
    return write_config(tmp_path_factory.mktemp("sms-config"), SERVICES, offices)


@pytest.fixture(scope="session")
def shared_twilio_stub() -> Iterator[TwilioErrorStub]:
    """One Twilio error stub for the session (stopping one costs half a second); empty its script per test."""
    stub = TwilioErrorStub()
    yield stub
    stub.close()


def sendable_now() -> datetime:
    """Now, or just after the services' one quiet minute (00:00-00:01 UTC)."""
    now = datetime.now(UTC)
    if now.hour == 0 and now.minute < 2:
        now = now.replace(minute=2)
    return now


def created(sid: str | None = None, to: str = "+12025550123") -> tuple[int, dict[str, Any]]:
    """What Twilio answers a Message create with (for the error stub, scripted as a success)."""
    return 201, {
        "sid": sid or f"SM{uuid.uuid4().hex}",
        "account_sid": ACCOUNT_SID,
        "to": to,
        "from": FROM_NUMBER,
        "status": "queued",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "num_segments": "1",
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
    }


def messages(twiml: str) -> list[str]:
    """The texts a TwiML answer sends (an empty list: the empty ``<Response/>``)."""
    root = ElementTree.fromstring(twiml)
    assert root.tag == "Response", twiml
    return [m.text or "" for m in root.iter("Message")]


@dataclass
class SmsStack:
    rt: Runtime
    app: Any
    client: Any
    channel: SmsChannel
    api_key: str

    # -- intake and dispatch ---------------------------------------------------------------------------------

    def report(self, external_id: str, phone: str, service: str = "sms-first", **fields: Any) -> dict[str, Any]:
        body = {
            "id": external_id,
            "service": service,
            "completed_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "contact": {"phone": phone},
            "consent": {"sms": True},
            **fields,
        }
        answer = self.client.post("/api/v1/transactions", json=body,
                                  headers={"Authorization": f"Bearer {self.api_key}"})  # fmt: skip
        assert answer.status_code == 200, answer.get_data(as_text=True)
        result: dict[str, Any] = answer.get_json()
        return result

    def schedule(self, external_id: str, phone: str, service: str = "sms-first", **fields: Any) -> uuid.UUID:
        result = self.report(external_id, phone, service, **fields)
        assert result["decision"] == "scheduled" and result["invitation"]["channel"] == "sms", result
        return uuid.UUID(result["invitation"]["id"])

    def dispatch(self, now: datetime | None = None) -> DispatchStats:
        return Dispatcher(self.rt).drain(now or sendable_now())

    def invitation(self, invitation_id: uuid.UUID) -> Invitation:
        with self.rt.sessions() as session:
            found = session.get(Invitation, invitation_id)
            assert found is not None
            return found

    def update_invitation(self, invitation_id: uuid.UUID, **values: Any) -> None:
        with unit_of_work(self.rt.sessions) as session:
            invitation = session.get(Invitation, invitation_id)
            assert invitation is not None
            for name, value in values.items():
                setattr(invitation, name, value)

    # -- what is stored --------------------------------------------------------------------------------------

    def responses(self) -> list[Response]:
        with self.rt.sessions() as session:
            return list(session.execute(select(Response)).scalars())

    def answers(self) -> dict[str, tuple[str, int | None, str | None, tuple[str, ...]]]:
        """question id → (A-11 tag, value, text, chosen ids in order of the choice ids)."""
        with self.rt.sessions() as session:
            rows = session.execute(select(Answer)).scalars().all()
            chosen: dict[int, list[str]] = {}
            for answer_id, choice_id in session.execute(select(AnswerChoice.answer_id, AnswerChoice.choice_id)):
                chosen.setdefault(answer_id, []).append(choice_id)
            return {a.question_id: (a.a11_tag, a.value, a.text, tuple(sorted(chosen.get(a.id, [])))) for a in rows}

    def answers_by_response(self) -> dict[Any, dict[str, int | None]]:
        """response id → question id → value."""
        found: dict[Any, dict[str, int | None]] = {}
        with self.rt.sessions() as session:
            for a in session.execute(select(Answer)).scalars():
                found.setdefault(a.response_id, {})[a.question_id] = a.value
        return found

    def drivers(self) -> dict[str, str | None]:
        with self.rt.sessions() as session:
            return dict(session.execute(select(AnswerChoice.choice_id, AnswerChoice.driver)).tuples().all())

    def suppressions(self, active_only: bool = True) -> list[Suppression]:
        with self.rt.sessions() as session:
            query = select(Suppression).order_by(Suppression.channel)
            if active_only:
                query = query.where(Suppression.restored_at.is_(None))
            return list(session.execute(query).scalars())

    # -- webhooks --------------------------------------------------------------------------------------------

    def text(self, phone: str, body: str, sid: str | None = None) -> Any:
        """A customer's text as Twilio posts it (signed); the HTTP answer."""
        form = {
            "MessageSid": sid or f"SM{uuid.uuid4().hex}",
            "AccountSid": ACCOUNT_SID,
            "From": phone,
            "To": FROM_NUMBER,
            "Body": body,
            "NumMedia": "0",
        }
        return signed_post(self.client, "/channels/sms/inbound", form)

    def reply(self, phone: str, body: str, sid: str | None = None) -> str | None:
        """The one text the engine answers ``body`` with (None: the empty TwiML)."""
        answer = self.text(phone, body, sid)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.mimetype == "text/xml"
        found = messages(answer.get_data(as_text=True))
        assert len(found) <= 1, found
        return found[0] if found else None

    def status(self, sid: str, status: str, error_code: str | None = None) -> Any:
        form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID, "To": "+12025550123",
                "From": FROM_NUMBER}  # fmt: skip
        if error_code:
            form["ErrorCode"] = error_code
        return signed_post(self.client, "/channels/sms/status", form)


def build_stack(settings: Any, timeout: float | None = None) -> SmsStack:
    registry = load_channels(settings)
    registry.channels.pop("sms", None)  # once the package declares the entry point, the test's instance wins
    channel = SmsChannel(settings, timeout=timeout) if timeout else SmsChannel(settings)
    registry.register(channel)
    rt = build_runtime(settings, channels=registry)
    rt.sync_catalog()
    app = create_app(runtime=rt)
    app.testing = True
    with unit_of_work(rt.sessions) as session:
        key = create_api_key(session, f"sms-{uuid.uuid4().hex[:6]}", tuple(rt.catalog.services), ("intake", "admin"))
    return SmsStack(rt=rt, app=app, client=app.test_client(), channel=channel, api_key=key)


@pytest.fixture
def sms_stack(
    database_url: str, flows_dir: Path, sms_config_dir: Path, tmp_path: Path
) -> Iterator[Callable[..., SmsStack]]:
    """Build the stack against a Twilio stand-in: ``sms_stack(base_url, timeout=None, **env)``."""
    built: list[SmsStack] = []

    def make(base_url: str | None, timeout: float | None = None, **env: str) -> SmsStack:
        values = {
            "SURVEY_ENGINE_DATABASE_URL": database_url,
            "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
            "SURVEY_ENGINE_CONFIG_DIR": str(sms_config_dir),
            "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
            "SURVEY_ENGINE_SECRET_KEY": SECRET,
            "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
            "SURVEY_ENGINE_PUBLIC_URL": PUBLIC_URL,
            "SURVEY_ENGINE_LOG_LEVEL": "WARNING",
            **FAST_SENDING,
            **(twilio_provider_env(base_url) if base_url else {}),
            **env,
        }
        stack = build_stack(load_settings(values), timeout)
        built.append(stack)
        return stack

    yield make
    for stack in built:
        stack.rt.engine.dispose()
