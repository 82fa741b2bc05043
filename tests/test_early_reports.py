"""A delivery report that arrives before dispatch has recorded the provider id (SPEC §2 rule 10, issue 15 item
14a): Twilio reports on a message while the engine is still reading Twilio's answer to the send. Through the real
SMS webhook, the real ``twilio`` SDK and the dispatcher (and SendGrid's signed event webhook), on SQLite and PostgreSQL: the report is held, applied once
when dispatch records the sid, and none is dropped."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.store.models import DeliveryEvent, EarlyReport, InvitationState
from tests import email_support, sms_support
from tests.email_support import sendgrid_event
from tests.sms_support import created

sms_config_dir = sms_support.sms_config_dir
sms_stack = sms_support.sms_stack
email_config_dir = email_support.email_config_dir
email_stack = email_support.email_stack
mail_stand_in = email_support.mail_stand_in
webhook_signer = email_support.webhook_signer
_shared_mail_stand_in = email_support._shared_mail_stand_in


class ReportingTwilio:
    """A Twilio stand-in that, like the real one on a fast network, posts status callbacks for a new message
    *before* its answer to the send reaches the engine (``on_create(sid)`` runs, then the 201 goes out)."""

    def __init__(self) -> None:
        self.on_create: Callable[[str], None] = lambda sid: None
        self.sids: list[str] = []
        self.failures: list[BaseException] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sid = f"SM{uuid.uuid4().hex}"
                stand_in.sids.append(sid)
                try:
                    stand_in.on_create(sid)
                except BaseException as exc:  # surfaced by the test, not lost in this thread
                    stand_in.failures.append(exc)
                status, payload = created(sid)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def reporting_twilio() -> Iterator[ReportingTwilio]:
    stand_in = ReportingTwilio()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def _held(stack: Any) -> list[tuple[str, str]]:
    with stack.rt.sessions() as session:
        return [(r.provider_id, r.event_key) for r in session.execute(select(EarlyReport)).scalars()]


def test_a_status_callback_before_the_sid_is_recorded_is_held_then_applied_once(sms_stack, reporting_twilio):
    stack = sms_stack(reporting_twilio.base_url)
    invitation_id = stack.schedule("EARLY-1", "+12025550123")
    seen: list[Any] = []

    def report_first(sid: str) -> None:
        # The engine has not recorded the sid yet: the invitation is still `sending`, no invitation holds it.
        assert stack.invitation(invitation_id).provider_id is None
        for word in ("sent", "delivered", "delivered"):  # Twilio retries a callback it got no quick answer to
            reply = stack.status(sid, word)
            assert reply.status_code == 200
        seen.append(_held(stack))

    reporting_twilio.on_create = report_first
    stack.dispatch()
    assert reporting_twilio.failures == []
    [sid] = reporting_twilio.sids
    assert seen == [[(sid, f"{sid}:sent"), (sid, f"{sid}:delivered")]], "held, the retried one once"

    invitation = stack.invitation(invitation_id)
    assert invitation.provider_id == sid and invitation.state is InvitationState.DELIVERED, "applied when it landed"
    assert _held(stack) == []
    with stack.rt.sessions() as session:
        events = session.execute(
            select(DeliveryEvent.provider_event_id, DeliveryEvent.state)
            .where(DeliveryEvent.invitation_id == invitation_id, DeliveryEvent.provider_event_id.is_not(None))
            .order_by(DeliveryEvent.id)
        ).all()
    assert [tuple(e) for e in events] == [(f"{sid}:sent", InvitationState.SENT),
                                          (f"{sid}:delivered", InvitationState.DELIVERED)]  # fmt: skip

    assert stack.status(sid, "delivered").status_code == 200  # once more, late: applied already, changes nothing
    with stack.rt.sessions() as session:
        count = session.execute(select(func.count()).select_from(DeliveryEvent).where(
            DeliveryEvent.provider_event_id == f"{sid}:delivered")).scalar_one()  # fmt: skip
    assert count == 1 and _held(stack) == []


def test_an_early_undelivered_report_still_suppresses_the_phone(sms_stack, reporting_twilio):
    stack = sms_stack(reporting_twilio.base_url)
    invitation_id = stack.schedule("EARLY-2", "+12025550188")
    reporting_twilio.on_create = lambda sid: stack.status(sid, "undelivered", error_code="21610")
    stack.dispatch()
    assert reporting_twilio.failures == []
    invitation = stack.invitation(invitation_id)
    assert invitation.state is InvitationState.FAILED and "21610" in (invitation.reason or "")
    assert {s.channel for s in stack.suppressions()} >= {"sms"}
    assert _held(stack) == []


def test_a_report_no_invitation_ever_claims_is_kept_a_while_then_purged(sms_stack, reporting_twilio):
    from datetime import timedelta

    from engine.delivery.provider_reports import HOLD_FOR
    from engine.store.db import unit_of_work, utcnow

    stack = sms_stack(reporting_twilio.base_url)
    not_ours, other = f"SM{uuid.uuid4().hex}", f"SM{uuid.uuid4().hex}"
    assert stack.status(not_ours, "delivered").status_code == 200  # another application's message
    assert _held(stack) == [(not_ours, f"{not_ours}:delivered")]
    with unit_of_work(stack.rt.sessions) as session:
        session.execute(EarlyReport.__table__.update().values(received_at=utcnow() - HOLD_FOR - timedelta(hours=1)))
    assert stack.status(other, "sent").status_code == 200
    assert _held(stack) == [(other, f"{other}:sent")]


def test_an_email_event_before_dispatch_records_the_send_is_held_then_applied(email_stack, mail_stand_in):
    stack = email_stack(mail_stand_in.base_url)
    invitation_id = stack.schedule("EARLY-MAIL-1", "early@example.com")
    delivered = sendgrid_event(invitation_id, "delivered")
    reply = stack.post_events([delivered, dict(delivered)])  # SendGrid's event, and its retry in the same batch
    assert reply.status_code == 200 and reply.get_json()["applied"] == 0
    assert _held(stack) == [(str(invitation_id), f"sendgrid:{delivered['sg_event_id']}")]
    stack.dispatch()  # the send is recorded: the held event lands on it
    invitation = stack.invitation(invitation_id)
    assert invitation.provider_id == str(invitation_id) and invitation.state is InvitationState.DELIVERED
    assert _held(stack) == []
    assert [e.provider_event_id for e in stack.events(invitation_id) if e.provider_event_id] == [
        f"sendgrid:{delivered['sg_event_id']}"
    ]
