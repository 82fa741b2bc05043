"""The email channel's test stack: its own services, the real runtime and app, SendGrid stand-ins, a signer.

* ``sendgrid_prism`` — Prism (npm ``@stoplight/prism-cli``) serving SendGrid's own Mail Send contract
  (``../shared/contracts/sendgrid_mail_v3.json``), started once per session; it refuses any request that breaks
  the contract.
* :class:`MailStandIn` — a small HTTP server of our own in a thread. It records every request (so a test counts
  the Mail Send calls and reads their bodies) and answers what a test scripts (a 429, a 5xx, a 400, a hang after
  the request arrived); with an ``upstream`` it forwards everything unscripted to Prism (a recording proxy).
* :class:`WebhookSigner` — a real P-256 key pair: events are signed the way SendGrid signs them (ECDSA-SHA256 over
  ``timestamp + payload``, base64 DER), its public key (base64 DER SubjectPublicKeyInfo) configured as
  ``SENDGRID_WEBHOOK_PUBLIC_KEY``.
* ``email_stack(base_url)`` builds the engine on the test database (both backends through ``database_url``) with
  ``EmailChannel`` registered and the SDK pointed at ``base_url``.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from channels.email import EmailChannel
from engine.api.auth import create_api_key
from engine.app import create_app
from engine.channels import load_channels
from engine.delivery.dispatch import Dispatcher, DispatchStats
from engine.runtime import Runtime, build_runtime
from engine.settings import load_settings
from engine.store.db import unit_of_work
from engine.store.models import DeliveryEvent, Invitation, Suppression
from engine.surveys import tokens
from tests.helpers import FAST_SENDING, SSA_PRA, STATE_PRA, write_config
from tests.twilio_support import free_port, prism_mock

ROOT = Path(__file__).resolve().parent.parent
PRISM = ROOT / "node_modules" / ".bin" / "prism"
CONTRACT = ROOT.parent / "shared" / "contracts" / "sendgrid_mail_v3.json"
MAIL_SEND = "/v3/mail/send"
PUBLIC_URL = "https://surveys.example.gov"
API_KEY = "SG.test"
FROM_EMAIL = "surveys@example.gov"
SECRET = "email-test-secret-key-that-is-long-enough-0123456789"
ENCRYPTION = "email-test-encryption-key-that-is-long-enough-98765"
SENDER = {"name": "U.S. Department of State", "reply_to": "cx@example.gov"}
SUPPORT = {"phone": "+18775550100", "url": "https://example.gov/contact"}
_COMMON = {
    "name": "Passport Renewal",
    "agency": "Department of State",
    "service_type": "administrative",
    "send_delay": "PT0S",
    "contact_cooldown_days": 0,
    "timezone": "UTC",
    "default_language": "en",
    "sender": SENDER,
    "support": SUPPORT,
}
SERVICES = {
    "email-first": {**_COMMON, "flow": "a11-standard", "channels": ["email", "console"]},
    "email-drivers": {**_COMMON, "name": "Benefits Contact Center", "agency": "Social Security Administration",
                      "flow": "a11-drivers", "channels": ["email", "console"]},
    "email-reminded": {**_COMMON, "flow": "a11-standard", "channels": ["email", "console"], "reminder_after": "PT24H"},
    # Two agencies on one flow, each with its own PRA clearance (SPEC §2 rule 9).
    "email-state": {**_COMMON, "flow": "a11-standard", "channels": ["email", "console"], "pra": STATE_PRA},
    "email-ssa": {**_COMMON, "name": "Benefits Contact Center", "agency": "Social Security Administration",
                  "flow": "a11-standard", "channels": ["email", "console"], "pra": SSA_PRA},
}  # fmt: skip


@pytest.fixture(scope="session")
def email_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    offices = {"DC-01": {"name": "Washington Passport Agency", "timezone": "America/New_York"}}
    return write_config(tmp_path_factory.mktemp("email-config"), SERVICES, offices)


# -- SendGrid stand-ins ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sendgrid_prism() -> Iterator[str]:
    """The base URL of Prism mocking SendGrid's Mail Send API (validating every request against the contract)."""
    with prism_mock(CONTRACT) as url:
        yield url


@dataclass
class Seen:
    """One request the stand-in received, and what it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def personalizations(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.json()["personalizations"]
        return found


Reply = tuple[int, Any, dict[str, str]]


def sendgrid_error(status: int, message: str, field: str | None = None, **headers: str) -> Reply:
    return status, {"errors": [{"message": message, "field": field, "help": None}]}, dict(headers)


class MailStandIn:
    """A Mail Send stand-in: records requests; answers the script, else forwards to ``upstream``, else 202.

    ``script`` holds replies in order: ``(status, body, headers)``, ``"hang"`` (read the request, answer nothing
    for ``hang_seconds``) or ``"close"`` (read the request, drop the connection). ``reject_marker``: any body
    containing it gets a 400 without naming a field (a bad personalization somewhere in the batch).
    """

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream
        self.script: deque[Any] = deque()
        self.requests: list[Seen] = []
        self.reject_marker: str | None = None
        self.hang_seconds = 3.0
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                seen = Seen(self.command, self.path, {k: v for k, v in self.headers.items()}, body)
                with stand_in._lock:
                    stand_in.requests.append(seen)
                    reply = stand_in.script.popleft() if stand_in.script else None
                if reply == "hang":
                    time.sleep(stand_in.hang_seconds)
                    self.close_connection = True
                    return
                if reply == "close":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply is None and stand_in.reject_marker and stand_in.reject_marker.encode() in body:
                    reply = sendgrid_error(400, "Does not contain a valid address.")
                if reply is None and stand_in.upstream:
                    reply = stand_in.forward(self.command, self.path, dict(self.headers.items()), body)
                if reply is None:
                    reply = (202, None, {"X-Message-Id": uuid.uuid4().hex[:22]})
                status, payload, headers = reply
                seen.status = status
                data = (
                    b""
                    if payload is None
                    else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        target = urlsplit(self.upstream or "")
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port or 80, timeout=30)
        try:
            keep = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "accept")}
            conn.request(method, path, body=body, headers=keep)
            answer = conn.getresponse()
            data = answer.read()
            passed = {k: v for k, v in answer.getheaders() if k.lower() in ("x-message-id", "retry-after")}
            return answer.status, data or None, passed
        finally:
            conn.close()

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.requests.clear()
        self.reject_marker = None

    def mail_sends(self) -> list[Seen]:
        return [r for r in self.requests if r.path == MAIL_SEND]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def _shared_mail_stand_in() -> Iterator[MailStandIn]:
    stand_in = MailStandIn()
    yield stand_in
    stand_in.close()


@pytest.fixture
def mail_stand_in(_shared_mail_stand_in: MailStandIn) -> MailStandIn:
    """The scripted stand-in, started once per session, emptied per test."""
    _shared_mail_stand_in.reset()
    return _shared_mail_stand_in


@pytest.fixture(scope="session")
def _shared_prism_proxy(sendgrid_prism: str) -> Iterator[MailStandIn]:
    proxy = MailStandIn(upstream=sendgrid_prism)
    yield proxy
    proxy.close()


@pytest.fixture
def prism_proxy(_shared_prism_proxy: MailStandIn) -> MailStandIn:
    """A recording proxy in front of Prism: every request is counted, then answered by SendGrid's contract."""
    _shared_prism_proxy.reset()
    return _shared_prism_proxy


def closed_port_url() -> str:
    """A local address where nothing listens (a refused connection)."""
    return f"http://127.0.0.1:{free_port()}"


# -- the signed event webhook ------------------------------------------------------------------------------------


class WebhookSigner:
    """A P-256 key pair standing in for SendGrid's Signed Event Webhook key."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def sign(self, payload: str, timestamp: str) -> str:
        signature = self.private_key.sign((timestamp + payload).encode(), ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()


@pytest.fixture(scope="session")
def webhook_signer() -> WebhookSigner:
    return WebhookSigner()


def sendgrid_event(invitation_id: uuid.UUID | str, event: str, **fields: Any) -> dict[str, Any]:
    """One event as SendGrid posts it: custom args (our ``invitation_id``) at the top level."""
    return {
        "email": "someone@example.com",
        "timestamp": int(time.time()),
        "event": event,
        "sg_event_id": fields.pop("sg_event_id", None) or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode(),
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "invitation_id": str(invitation_id),
        **fields,
    }


# -- the stack ---------------------------------------------------------------------------------------------------


def dispatch_time() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


@dataclass
class EmailStack:
    rt: Runtime
    app: Any
    client: Any
    channel: EmailChannel
    api_key: str
    signer: WebhookSigner
    sent: list[uuid.UUID] = field(default_factory=list)

    # -- intake and dispatch ---------------------------------------------------------------------------------

    def body(self, external_id: str, email: str, service: str = "email-first", **fields: Any) -> dict[str, Any]:
        return {
            "id": external_id,
            "service": service,
            "completed_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "contact": {"email": email},
            **fields,
        }

    def report(self, external_id: str, email: str, service: str = "email-first", **fields: Any) -> dict[str, Any]:
        answer = self.client.post("/api/v1/transactions", json=self.body(external_id, email, service, **fields),
                                  headers={"Authorization": f"Bearer {self.api_key}"})  # fmt: skip
        assert answer.status_code == 200, answer.get_data(as_text=True)
        result: dict[str, Any] = answer.get_json()
        return result

    def schedule(self, external_id: str, email: str, service: str = "email-first", **fields: Any) -> uuid.UUID:
        result = self.report(external_id, email, service, **fields)
        assert result["decision"] == "scheduled" and result["invitation"]["channel"] == "email", result
        return uuid.UUID(result["invitation"]["id"])

    def schedule_many(self, count: int, prefix: str, service: str = "email-first", **fields: Any) -> list[uuid.UUID]:
        ids: list[uuid.UUID] = []
        for start in range(0, count, 1000):
            batch = [self.body(f"{prefix}-{n}", f"{prefix.lower()}-{n}@example.com", service, **fields)
                     for n in range(start, min(count, start + 1000))]  # fmt: skip
            answer = self.client.post("/api/v1/transactions", json={"transactions": batch},
                                      headers={"Authorization": f"Bearer {self.api_key}"})  # fmt: skip
            assert answer.status_code == 200, answer.get_data(as_text=True)
            for result in answer.get_json()["results"]:
                assert result["decision"] == "scheduled" and result["invitation"]["channel"] == "email", result
                ids.append(uuid.UUID(result["invitation"]["id"]))
        return ids

    def dispatch(self, now: datetime | None = None, batch: int = 500) -> DispatchStats:
        return Dispatcher(self.rt, batch=batch).drain(now or dispatch_time())

    # -- what is stored --------------------------------------------------------------------------------------

    def invitation(self, invitation_id: uuid.UUID) -> Invitation:
        with self.rt.sessions() as session:
            found = session.get(Invitation, invitation_id)
            assert found is not None
            return found

    def states(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        with self.rt.sessions() as session:
            rows = session.execute(select(Invitation.id, Invitation.state).where(Invitation.id.in_(ids))).all()
        return {row[0]: row[1].value for row in rows}

    def update_invitation(self, invitation_id: uuid.UUID, **values: Any) -> None:
        with unit_of_work(self.rt.sessions) as session:
            invitation = session.get(Invitation, invitation_id)
            assert invitation is not None
            for name, value in values.items():
                setattr(invitation, name, value)

    def events(self, invitation_id: uuid.UUID | None = None) -> list[DeliveryEvent]:
        with self.rt.sessions() as session:
            query = select(DeliveryEvent).order_by(DeliveryEvent.id)
            if invitation_id is not None:
                query = query.where(DeliveryEvent.invitation_id == invitation_id)
            return list(session.execute(query).scalars())

    def suppressions(self) -> list[Suppression]:
        with self.rt.sessions() as session:
            query = select(Suppression).where(Suppression.restored_at.is_(None)).order_by(Suppression.id)
            return list(session.execute(query).scalars())

    def unsubscribe_token(self, invitation_id: uuid.UUID) -> str:
        """An unsubscribe link token for the invitation, issued as the dispatcher issues it."""
        with unit_of_work(self.rt.sessions) as session:
            return tokens.issue(session, invitation_id, purpose=tokens.UNSUBSCRIBE)

    def survey_token(self, invitation_id: uuid.UUID) -> str:
        with unit_of_work(self.rt.sessions) as session:
            return tokens.issue(session, invitation_id)

    # -- the event webhook -----------------------------------------------------------------------------------

    def post_events(
        self,
        events: list[dict[str, Any]],
        *,
        signer: WebhookSigner | None = None,
        timestamp: str | None = None,
        signed: bool = True,
        body: str | None = None,
    ) -> Any:
        """POST an event batch signed as SendGrid signs it (``body`` replaces the signed payload: tampering)."""
        payload = json.dumps(events)
        stamp = timestamp or str(int(time.time()))
        headers = {"Content-Type": "application/json"}
        if signed:
            headers["X-Twilio-Email-Event-Webhook-Signature"] = (signer or self.signer).sign(payload, stamp)
            headers["X-Twilio-Email-Event-Webhook-Timestamp"] = stamp
        return self.client.post("/channels/email/events", data=body if body is not None else payload, headers=headers)


def build_stack(settings: Any, signer: WebhookSigner, timeout: float | None = None) -> EmailStack:
    registry = load_channels(settings)
    registry.channels.pop("email", None)  # once the package declares the entry point, the test's instance wins
    channel = EmailChannel(settings, timeout=timeout) if timeout else EmailChannel(settings)
    registry.register(channel)
    rt = build_runtime(settings, channels=registry)
    rt.sync_catalog()
    app = create_app(runtime=rt)
    app.testing = True
    with unit_of_work(rt.sessions) as session:
        key = create_api_key(session, f"email-{uuid.uuid4().hex[:6]}", tuple(rt.catalog.services), ("intake", "admin"))
    return EmailStack(rt=rt, app=app, client=app.test_client(), channel=channel, api_key=key, signer=signer)


def provider_env(base_url: str, signer: WebhookSigner) -> dict[str, str]:
    return {
        "SENDGRID_API_KEY": API_KEY,
        "SENDGRID_FROM_EMAIL": FROM_EMAIL,
        "SENDGRID_API_HOST": base_url,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key,
    }


@pytest.fixture
def email_stack(
    database_url: str, flows_dir: Path, email_config_dir: Path, tmp_path: Path, webhook_signer: WebhookSigner
) -> Iterator[Callable[..., EmailStack]]:
    """Build the stack against a SendGrid stand-in: ``email_stack(base_url, timeout=None, **env)``."""
    built: list[EmailStack] = []

    def make(base_url: str | None, timeout: float | None = None, **env: str) -> EmailStack:
        values = {
            "SURVEY_ENGINE_DATABASE_URL": database_url,
            "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
            "SURVEY_ENGINE_CONFIG_DIR": str(email_config_dir),
            "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
            "SURVEY_ENGINE_SECRET_KEY": SECRET,
            "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
            "SURVEY_ENGINE_PUBLIC_URL": PUBLIC_URL,
            "SURVEY_ENGINE_LOG_LEVEL": "WARNING",
            **FAST_SENDING,
            **(provider_env(base_url, webhook_signer) if base_url else {}),
            **env,
        }
        stack = build_stack(load_settings(values), webhook_signer, timeout)
        built.append(stack)
        return stack

    yield make
    for stack in built:
        stack.rt.engine.dispose()
