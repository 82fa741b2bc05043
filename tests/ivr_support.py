"""IVR test support: a runtime with the ``ivr`` channel registered, and a Twilio stand-in that walks TwiML.

* ``ivr`` / ``ivr_prism`` (import ``ivr_stack`` / ``ivr_prism_stack`` to use them) — the real stack (Flask test client, the store on SQLite and PostgreSQL through
  ``database_url``) with the services below and :class:`channels.ivr.IvrChannel` registered; ``ivr_prism`` points
  the Twilio SDK at Prism serving Twilio's own contract (outbound calls), ``ivr`` at a closed port (nothing may
  call Twilio's REST API).
* :class:`TwilioCall` — what Twilio does with a call: it posts (signed) to the entry URL, reads the TwiML it gets
  back verb by verb — ``<Say>`` is heard, ``<Gather>`` waits for the caller (keys pressed, words spoken, nothing:
  a timeout), ``<Redirect>`` is followed, ``<Hangup/>`` (or the end of the document) ends the call — and a caller
  may hang up at any point, after which nothing more is posted.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.api.auth import create_api_key
from engine.app import create_app
from engine.channels import load_channels
from engine.runtime import Runtime, build_runtime
from engine.settings import load_settings
from engine.store.db import unit_of_work
from engine.store.models import Answer, AnswerChoice, Invitation, Response, Transaction
from tests.conftest import ENCRYPTION, SECRET
from tests.helpers import FAST_SENDING, SSA_PRA, STATE_PRA, write_config
from tests.twilio_support import ACCOUNT_SID, PUBLIC_URL, signed_post, twilio_provider_env

POST_CALL_NUMBER = "+12025550142"
CLOSED_PORT_URL = "http://127.0.0.1:9"

SERVICES: dict[str, Any] = {
    "ivr-post-call": {
        "name": "Passport Renewal",
        "agency": "Department of State",
        "service_type": "administrative",
        "flow": "a11-drivers",
        "channels": ["ivr", "console"],
        "ivr_numbers": [POST_CALL_NUMBER],
        "sample_rate": 1.0,
        "send_delay": "PT15M",
        "contact_cooldown_days": 0,
        "default_language": "en",
        "timezone": "America/New_York",
    },
    "ivr-standard": {
        "name": "Passport Renewal",
        "agency": "Department of State",
        "service_type": "administrative",
        "flow": "a11-standard",
        "channels": ["ivr", "console"],
        "sample_rate": 1.0,
        "send_delay": "PT15M",
        "contact_cooldown_days": 0,
        "default_language": "en",
        "timezone": "America/New_York",
    },
    "ivr-half": {
        "name": "Half Sampled",
        "agency": "Test Agency",
        "service_type": "informational",
        "flow": "a11-standard",
        "channels": ["ivr", "console"],
        "sample_rate": 0.5,
        "contact_cooldown_days": 0,
        "timezone": "America/Chicago",
    },
    "ivr-outbound": {
        "name": "Passport Renewal",
        "agency": "Department of State",
        "service_type": "administrative",
        "flow": "a11-standard",
        "channels": ["ivr"],
        "sample_rate": 1.0,
        "send_delay": "PT0S",
        "contact_cooldown_days": 0,
        "default_language": "en",
        "timezone": "America/New_York",
    },
    # Two agencies on one flow, each with its own PRA clearance (SPEC §2 rule 9), called outbound.
    "ivr-state": {
        "name": "Passport Renewal",
        "agency": "Department of State",
        "service_type": "administrative",
        "flow": "a11-standard",
        "channels": ["ivr"],
        "send_delay": "PT0S",
        "contact_cooldown_days": 0,
        "timezone": "America/New_York",
        "pra": STATE_PRA,
    },
    "ivr-ssa": {
        "name": "Benefits Contact Center",
        "agency": "Social Security Administration",
        "service_type": "benefits",
        "flow": "a11-standard",
        "channels": ["ivr"],
        "send_delay": "PT0S",
        "contact_cooldown_days": 0,
        "timezone": "America/New_York",
        "pra": SSA_PRA,
    },
}
OFFICES = {"NYC-01": {"name": "New York Passport Agency", "timezone": "America/New_York"}}


@dataclass
class IvrStack:
    rt: Runtime
    app: Any
    client: Any
    key: str

    def call(self, **kwargs: Any) -> TwilioCall:
        return TwilioCall(self.client, **kwargs)

    def report(self, body: dict[str, Any]) -> dict[str, Any]:
        """A transaction reported through the intake API, as a contact center's system of record would."""
        reply = self.client.post("/api/v1/transactions", json=body, headers={"Authorization": f"Bearer {self.key}"})
        assert reply.status_code == 200, reply.get_json()
        result: dict[str, Any] = reply.get_json()
        return result

    def rows(self, model: Any) -> list[Any]:
        with self.rt.sessions() as session:
            return list(session.execute(select(model)).scalars().all())

    def response_of(self, call: TwilioCall) -> Response:
        with self.rt.sessions() as session:
            return session.execute(select(Response).where(Response.provider_ref == call.sid)).scalar_one()

    def answers(self, response_id: uuid.UUID) -> dict[str, Any]:
        """question id → stored value, or the sorted choice ids of a choose-all answer."""
        with self.rt.sessions() as session:
            answers = session.execute(select(Answer).where(Answer.response_id == response_id)).scalars().all()
            found: dict[str, Any] = {}
            for a in answers:
                chosen = session.execute(select(AnswerChoice.choice_id).where(AnswerChoice.answer_id == a.id))
                choices = sorted(chosen.scalars().all())
                found[a.question_id] = choices if choices else a.value
            return found

    def transaction(self, slug: str, external_id: str) -> Transaction:
        with self.rt.sessions() as session:
            return session.execute(
                select(Transaction).where(
                    Transaction.service_id == self.rt.service_ids[slug], Transaction.external_id == external_id
                )
            ).scalar_one()

    def invitation(self, invitation_id: uuid.UUID | str) -> Invitation:
        with self.rt.sessions() as session:
            found = session.get(Invitation, uuid.UUID(str(invitation_id)))
            assert found is not None
            return found


def build_stack(database_url: str, flows_dir: Path, tmp_path: Path, twilio_base_url: str) -> Iterator[IvrStack]:
    env = {
        "SURVEY_ENGINE_DATABASE_URL": database_url,
        "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
        "SURVEY_ENGINE_CONFIG_DIR": str(write_config(tmp_path / "ivr-config", SERVICES, OFFICES)),
        "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
        "SURVEY_ENGINE_SECRET_KEY": SECRET,
        "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
        "SURVEY_ENGINE_PUBLIC_URL": PUBLIC_URL,
        "SURVEY_ENGINE_LOG_LEVEL": "WARNING",
        **FAST_SENDING,
        **twilio_provider_env(twilio_base_url),
    }
    settings = load_settings(env)
    registry = load_channels(settings)  # the package declares ivr under survey_engine.channels
    rt = build_runtime(settings, channels=registry)
    rt.sync_catalog()
    app = create_app(runtime=rt)
    app.testing = True
    with unit_of_work(rt.sessions) as session:
        key = create_api_key(session, "ivr-tests", tuple(SERVICES), ("intake", "reports"))
    try:
        yield IvrStack(rt, app, app.test_client(), key)
    finally:
        rt.engine.dispose()


@pytest.fixture(name="ivr")
def ivr_stack(database_url: str, flows_dir: Path, tmp_path: Path) -> Iterator[IvrStack]:
    """The stack with Twilio's REST API out of reach (webhooks only)."""
    yield from build_stack(database_url, flows_dir, tmp_path, CLOSED_PORT_URL)


@pytest.fixture(name="ivr_prism")
def ivr_prism_stack(database_url: str, flows_dir: Path, tmp_path: Path, twilio_prism: str) -> Iterator[IvrStack]:
    """The stack with the Twilio SDK talking to Prism on Twilio's contract (outbound calls)."""
    yield from build_stack(database_url, flows_dir, tmp_path, twilio_prism)


# -- the Twilio stand-in ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Said:
    text: str
    language: str | None
    voice: str | None


class TwilioCall:
    """One call as Twilio would run it against the engine's webhooks (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        *,
        caller: str = "+12025550199",
        called: str = POST_CALL_NUMBER,
        direction: str = "inbound",
        sid: str | None = None,
        **extra: str,
    ) -> None:
        self.client = client
        self.sid = sid or "CA" + uuid.uuid4().hex
        self.base = {"AccountSid": ACCOUNT_SID, "CallSid": self.sid, "From": caller, "To": called,
                     "CallStatus": "in-progress", "Direction": direction, "ApiVersion": "2010-04-01", **extra}  # fmt: skip
        self.heard: list[Said] = []
        self.turn: list[Said] = []  # what was said since the caller last did something
        self.gather: ET.Element | None = None
        self._rest: list[ET.Element] = []
        self.ended = False
        self.engine_hung_up = False
        self.last: tuple[str, dict[str, str]] | None = None
        self.replies: list[str] = []

    # -- what the caller hears --------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.turn)

    def languages(self) -> set[str | None]:
        return {s.language for s in self.turn}

    # -- what the caller does ---------------------------------------------------------------------------------

    def dial(self, path: str = "/channels/ivr/voice", **form: str) -> TwilioCall:
        """The call connects: Twilio fetches the entry URL (``path`` may carry the hand-off's query)."""
        self._post(PUBLIC_URL + path, form)
        return self

    def press(self, keys: str) -> TwilioCall:
        """Keys on the keypad while the current ``<Gather>`` listens (its finishOnKey and numDigits apply)."""
        gather = self._listening()
        finish = gather.get("finishOnKey", "#")
        limit = int(gather.get("numDigits") or 0)
        digits, finished = "", ""
        for key in keys:
            if finish and key in finish:
                finished = key
                break
            digits += key
            if limit and len(digits) >= limit:
                break
        return self._answer(gather, {"Digits": digits, "FinishedOnKey": finished})

    def speak(self, words: str, confidence: str = "0.91") -> TwilioCall:
        gather = self._listening()
        assert "speech" in gather.get("input", ""), "this <Gather> does not listen for speech"
        return self._answer(gather, {"SpeechResult": words, "Confidence": confidence})

    def wait(self) -> TwilioCall:
        """The caller does nothing until the ``<Gather>`` times out."""
        gather = self._listening()
        if gather.get("actionOnEmptyResult") == "true":
            return self._answer(gather, {})
        self.gather = None
        self._run(self._rest)
        return self

    def hang_up(self) -> TwilioCall:
        self.ended = True
        self.gather = None
        return self

    def replay(self) -> Any:
        """Twilio retries the last request (same URL, same form, signed again): the raw HTTP answer."""
        assert self.last is not None
        path, form = self.last
        return signed_post(self.client, path, form)

    # -- Twilio's side ----------------------------------------------------------------------------------------

    def _listening(self) -> ET.Element:
        assert not self.ended, "the call has ended"
        assert self.gather is not None, "nothing is listening for the caller"
        return self.gather

    def _answer(self, gather: ET.Element, fields: dict[str, str]) -> TwilioCall:
        action = gather.get("action")
        assert action, "a <Gather> without an action posts back to the current URL: the engine always sets one"
        assert (gather.get("method") or "POST") == "POST"
        self._post(action, fields)
        return self

    def _post(self, url: str, fields: dict[str, str]) -> None:
        assert url.startswith(PUBLIC_URL + "/channels/ivr/"), f"Twilio would call {url!r}"
        path = url[len(PUBLIC_URL) :]
        form = {**self.base, **fields}
        reply = signed_post(self.client, path, form)
        assert reply.status_code == 200, (reply.status_code, reply.get_data(as_text=True))
        assert reply.mimetype == "text/xml"
        body = reply.get_data(as_text=True)
        self.last = (path, form)
        self.replies.append(body)
        self.turn = []
        self.gather = None
        root = ET.fromstring(body)
        assert root.tag == "Response"
        self._run(list(root))

    def _say(self, element: ET.Element) -> None:
        said = Said((element.text or "").strip(), element.get("language"), element.get("voice"))
        self.heard.append(said)
        self.turn.append(said)

    def _run(self, verbs: list[ET.Element]) -> None:
        for index, verb in enumerate(verbs):
            if verb.tag == "Say":
                self._say(verb)
            elif verb.tag == "Gather":
                for child in verb:
                    if child.tag == "Say":
                        self._say(child)
                self.gather = verb
                self._rest = verbs[index + 1 :]
                return
            elif verb.tag == "Redirect":
                self._post((verb.text or "").strip(), {})
                return
            elif verb.tag in ("Hangup", "Reject"):
                self.ended = self.engine_hung_up = True
                return
            elif verb.tag != "Pause":
                raise AssertionError(f"the stand-in does not know <{verb.tag}>")
        self.ended = True  # the document ran out: Twilio hangs up
