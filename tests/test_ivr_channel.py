"""The IVR channel through the real stack: hand-offs, sampling, signatures, outbound calls and status callbacks.

Outbound calls go through the real Twilio SDK to Prism serving Twilio's contract; error replies come from the
scripted stub. Each database test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from channels.ivr import IvrChannel
from engine.app import create_app
from engine.catalog.services import load_catalog
from engine.channels import Outcome, Outgoing
from engine.delivery.dispatch import Dispatcher
from engine.intake import rules
from engine.intake.submit import Intake
from engine.runtime import Runtime, build_runtime
from engine.store.db import unit_of_work
from engine.store.models import (
    Answer,
    Contact,
    ContactKind,
    DeliveryEvent,
    Invitation,
    InvitationState,
    Response,
    SuppressionReason,
    Transaction,
)
from tests.conftest import ROOT
from tests.helpers import ago, counts, write_config
from tests.ivr_support import (  # noqa: F401  (the ivr and ivr_prism fixtures)
    OFFICES,
    POST_CALL_NUMBER,
    SERVICES,
    IvrStack,
    ivr_prism_stack,
    ivr_stack,
)
from tests.twilio_support import (  # noqa: F401  (twilio_prism: a fixture ivr_prism needs)
    PUBLIC_URL,
    TwilioErrorStub,
    signed_post,
    twilio_error,
    twilio_prism,
    twilio_provider_env,
)

CALLER = "+12025550123"
GOODBYE = "Thank you for calling. Goodbye."
UNAVAILABLE = "Sorry, this survey is not available. Goodbye."


def _daytime_now() -> datetime:
    """A moment when it is daytime in New York (quiet hours 21:00-08:00 do not apply)."""
    now = datetime.now(UTC)
    local_hour = now.astimezone(ZoneInfo("America/New_York")).hour
    return now if 8 <= local_hour < 20 else now + timedelta(hours=(13 - local_hour) % 24)


# -- hand-offs --------------------------------------------------------------------------------------------------


def test_sip_transfer_headers_hand_the_caller_to_the_survey(ivr):
    call = ivr.call(caller=f"sip:{CALLER}@pbx.example.gov", called="sip:survey@engine.sip.twilio.com",
                    **{"SipHeader_X-Survey-Service": "ivr-standard", "SipHeader_X-Transaction-Id": "SIP-1",
                       "SipHeader_X-Language": "en"}).dial()  # fmt: skip
    assert "1090-0011" in call.text
    call.wait()
    call.press("5")
    call.hang_up()
    tx = ivr.transaction("ivr-standard", "SIP-1")
    response = ivr.response_of(call)
    assert response.transaction_id == tx.id and tx.source == "ivr"
    assert ivr.answers(response.id) == {"satisfaction": 5}
    with ivr.rt.sessions() as session:  # the caller's number, from the SIP URI, is the transaction's contact
        contact = session.get(Contact, tx.id)
    assert contact.phone_hash == ivr.rt.cipher.lookup_hash("phone", CALLER)


def test_a_call_to_an_ivr_number_is_matched_to_the_transaction_reported_minutes_ago(ivr):
    reported = ivr.report({"id": "CC-API-1", "service": "ivr-post-call", "completed_at": ago(minutes=2),
                           "touchpoint": "phone", "contact": {"phone": CALLER}})  # fmt: skip
    # No voice consent: intake scheduled the console invitation, which the post-call survey now replaces.
    assert reported["decision"] == "scheduled" and reported["invitation"]["channel"] == "console"
    call = ivr.call(caller=CALLER, called=POST_CALL_NUMBER).dial()
    call.press("1")  # English, at the menu
    call.wait()
    call.press("2")  # thumbs down (one_is_best: 2 is the lower key)
    call.press("4#")
    assert call.engine_hung_up
    tx = ivr.transaction("ivr-post-call", "CC-API-1")
    response = ivr.response_of(call)
    assert response.transaction_id == tx.id
    assert ivr.answers(response.id) == {"trust": 1, "could_be_better": ["transparency"]}
    invitation = ivr.invitation(reported["invitation"]["id"])
    assert invitation.state is InvitationState.CANCELLED and invitation.reason == "post_call_survey"
    assert len(ivr.rows(Transaction)) == 1  # nothing new was made from the call


def test_a_call_to_an_ivr_number_without_a_recent_transaction_makes_one(ivr):
    # Reported 20 minutes ago: too old to be this call's.
    past = datetime.now(UTC) - timedelta(minutes=20)
    with unit_of_work(ivr.rt.sessions) as session:
        item = {"id": "CC-OLD", "service": "ivr-post-call", "completed_at": (past - timedelta(minutes=1)).isoformat(),
                "contact": {"phone": CALLER}}  # fmt: skip
        (result,) = Intake(ivr.rt).submit(session, [item], None, now=past)
    assert result["decision"] == "scheduled"
    call = ivr.call(caller=CALLER, called=POST_CALL_NUMBER).dial()
    assert [s.language for s in call.turn] == ["en-US", "en-US", "es-US"]  # a survey starts: opening, language menu
    tx = ivr.transaction("ivr-post-call", f"call-{call.sid}")
    assert tx.source == "ivr" and tx.touchpoint == "phone"
    assert ivr.response_of(call).transaction_id == tx.id
    assert ivr.invitation(result["invitation"]["id"]).state is InvitationState.SCHEDULED  # not this call's


def test_a_caller_sampled_out_hears_thank_you_and_only_the_transaction_is_stored(ivr):
    salt = ivr.rt.service_salts["ivr-half"]
    out = next(f"HALF-{n}" for n in range(1000) if not rules.sampled_in("ivr-half", f"HALF-{n}", salt, 0.5))
    call = ivr.call().dial(f"/channels/ivr/voice?service=ivr-half&transaction={out}")
    assert call.engine_hung_up and call.text == GOODBYE
    tx = ivr.transaction("ivr-half", out)
    assert str(tx.decision) == "sampled_out"
    assert ivr.rows(Response) == [] and ivr.rows(Answer) == [] and ivr.rows(Invitation) == []


def test_unknown_services_transactions_and_invitations_end_the_call_politely(ivr):
    for path in (
        "/channels/ivr/voice?service=no-such-service&transaction=X-1",
        "/channels/ivr/voice?service=ivr-standard",
        "/channels/ivr/voice?invitation=not-a-uuid",
        f"/channels/ivr/voice?invitation={uuid.uuid4()}",
        "/channels/ivr/voice?service=ivr-standard&transaction=X-2&office=NOWHERE",
    ):
        call = ivr.call().dial(path)
        assert call.engine_hung_up and call.text == UNAVAILABLE, path
    call = ivr.call(called="+12025550999").dial()  # a number no service lists, and no hand-off
    assert call.engine_hung_up and call.text == UNAVAILABLE
    reply = signed_post(ivr.client, f"/channels/ivr/gather?response={uuid.uuid4()}&step=1", {"CallSid": "CA1"})
    assert reply.status_code == 200 and UNAVAILABLE in reply.get_data(as_text=True)
    assert ivr.rows(Response) == []


def test_every_ivr_route_is_guarded_by_the_twilio_signature(ivr):
    routes = [r for r in ivr.app.url_map.iter_rules() if r.rule.startswith("/channels/ivr/")]
    assert {r.rule for r in routes} == {
        f"/channels/ivr/{p}" for p in ("voice", "language", "notice", "gather", "status")
    }
    for rule in routes:
        assert getattr(ivr.app.view_functions[rule.endpoint], "access", None) == "twilio-signature"
        assert ivr.client.post(rule.rule, data={"CallSid": "CA1"}).status_code == 403


def test_a_forged_signature_is_refused_and_changes_nothing(ivr):
    call = ivr.call().dial("/channels/ivr/voice?service=ivr-standard&transaction=CC-F&language=en")
    call.wait()
    before = counts(ivr.rt)
    path, form = call.last
    forged = ivr.client.post(path, data={**form, "Digits": "5"}, headers={"X-Twilio-Signature": "Zm9yZ2Vk"})
    assert forged.status_code == 403
    unsigned = ivr.client.post("/channels/ivr/voice?service=ivr-standard&transaction=CC-G", data=call.base)
    assert unsigned.status_code == 403
    wrong_key = signed_post(ivr.client, "/channels/ivr/status", {"CallSid": call.sid, "CallStatus": "completed"},
                            token="not-the-auth-token")  # fmt: skip
    assert wrong_key.status_code == 403
    assert counts(ivr.rt) == before


# -- outbound ---------------------------------------------------------------------------------------------------


def _dispatch_a_call(stack: IvrStack, external_id: str, **more: Any) -> Invitation:
    reported = stack.report({"id": external_id, "service": "ivr-outbound", "completed_at": ago(minutes=5),
                             "contact": {"phone": CALLER}, "consent": {"voice": True}, **more})  # fmt: skip
    assert reported["decision"] == "scheduled" and reported["invitation"]["channel"] == "ivr"
    stats = Dispatcher(stack.rt).drain(_daytime_now())
    assert stats.handed == 1, stats
    return stack.invitation(reported["invitation"]["id"])


def test_the_dispatcher_places_an_outbound_call_and_the_callee_answers(ivr_prism):
    invitation = _dispatch_a_call(ivr_prism, "OUT-1")
    assert invitation.state is InvitationState.SENT and invitation.provider_id.startswith("CA")
    call = ivr_prism.call(sid=invitation.provider_id, caller="+12025550100", called=CALLER,
                          direction="outbound-api", AnsweredBy="human")  # fmt: skip
    call.dial(f"/channels/ivr/voice?invitation={invitation.id}")
    call.press("1")  # English at the menu (the transaction named no language)
    call.wait()
    for key in "5544332":
        call.press(key)
    assert call.engine_hung_up
    response = ivr_prism.response_of(call)
    assert response.invitation_id == invitation.id and response.completed_at is not None
    assert ivr_prism.invitation(invitation.id).state is InvitationState.ANSWERED
    # The status callback of the finished call: recorded once, and an answered invitation stays answered.
    status = {"CallSid": invitation.provider_id, "CallStatus": "completed", "AnsweredBy": "human"}
    for _ in range(2):
        assert signed_post(ivr_prism.client, "/channels/ivr/status", status).status_code == 200
    with ivr_prism.rt.sessions() as session:
        events = session.execute(select(DeliveryEvent.event).where(DeliveryEvent.invitation_id == invitation.id)
                                 .order_by(DeliveryEvent.id)).scalars().all()  # fmt: skip
    assert events == ["sending", "sent", "call_answered", "call_completed"]
    assert ivr_prism.invitation(invitation.id).state is InvitationState.ANSWERED


def test_an_answering_machine_ends_the_call_and_nothing_is_answered(ivr_prism):
    invitation = _dispatch_a_call(ivr_prism, "OUT-2")
    call = ivr_prism.call(sid=invitation.provider_id, called=CALLER, direction="outbound-api",
                          AnsweredBy="machine_start")  # fmt: skip
    call.dial(f"/channels/ivr/voice?invitation={invitation.id}")
    assert call.engine_hung_up and call.heard == []
    assert ivr_prism.rows(Response) == []
    machine = ivr_prism.invitation(invitation.id)
    assert machine.state is InvitationState.FAILED and machine.reason == "answered by machine_start"
    status = {"CallSid": invitation.provider_id, "CallStatus": "completed", "AnsweredBy": "machine_start"}
    for _ in range(2):
        signed_post(ivr_prism.client, "/channels/ivr/status", status)
    with ivr_prism.rt.sessions() as session:
        events = session.execute(select(DeliveryEvent.provider_event_id).where(
            DeliveryEvent.invitation_id == invitation.id, DeliveryEvent.provider_event_id.is_not(None))).scalars().all()  # fmt: skip
    assert sorted(events) == sorted([f"{invitation.provider_id}:answered", f"{invitation.provider_id}:completed"])


def test_a_call_whose_create_request_timed_out_is_settled_by_the_call_itself(ivr_prism):
    invitation = _dispatch_a_call(ivr_prism, "OUT-4")
    sid = invitation.provider_id
    with unit_of_work(ivr_prism.rt.sessions) as session:  # what a Calls create that timed out leaves behind
        row = session.get(Invitation, invitation.id)
        row.state, row.provider_id = InvitationState.UNKNOWN, None
    status = {"CallSid": sid, "CallStatus": "ringing"}
    assert signed_post(ivr_prism.client, f"/channels/ivr/status?invitation={invitation.id}", status).status_code == 200
    assert ivr_prism.invitation(invitation.id).provider_id == sid  # the call's own callback names it
    call = ivr_prism.call(sid=sid, called=CALLER, direction="outbound-api", AnsweredBy="human")
    call.dial(f"/channels/ivr/voice?invitation={invitation.id}")
    assert [s.language for s in call.turn] == ["en-US", "en-US", "es-US"]  # the survey starts: opening, menu
    assert ivr_prism.invitation(invitation.id).state is InvitationState.DELIVERED
    assert ivr_prism.response_of(call).invitation_id == invitation.id


def test_status_callbacks_settle_a_call_nobody_answered_once(ivr_prism):
    invitation = _dispatch_a_call(ivr_prism, "OUT-3")
    for status in ("ringing", "no-answer", "no-answer"):
        reply = signed_post(ivr_prism.client, "/channels/ivr/status",
                            {"CallSid": invitation.provider_id, "CallStatus": status})  # fmt: skip
        assert reply.status_code == 200 and reply.mimetype == "text/xml"
    failed = ivr_prism.invitation(invitation.id)
    assert failed.state is InvitationState.FAILED and failed.reason == "call no-answer"
    with ivr_prism.rt.sessions() as session:
        events = session.execute(select(DeliveryEvent.event).where(DeliveryEvent.invitation_id == invitation.id)
                                 .order_by(DeliveryEvent.id)).scalars().all()  # fmt: skip
    assert events == ["sending", "sent", "call_ringing", "call_no-answer"]


# -- the channel alone ------------------------------------------------------------------------------------------


def _outgoing(tmp_path: Path) -> Outgoing:
    catalog = load_catalog(write_config(tmp_path / "config", SERVICES, OFFICES), ROOT / "flows", {"ivr", "console"})
    service = catalog.services["ivr-outbound"]
    return Outgoing(uuid.uuid4(), service, catalog.flow_of(service), "en", ContactKind.PHONE, CALLER,
                    datetime.now(UTC) + timedelta(hours=48), False)  # fmt: skip


def _settings(providers: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(providers=providers, public_url=PUBLIC_URL)


def test_without_twilio_settings_every_call_fails_plainly(tmp_path):
    item = _outgoing(tmp_path)
    (result,) = IvrChannel(_settings({})).send([item])
    assert result.outcome is Outcome.FAILED and result.detail == "twilio not configured"


def test_provider_errors_are_classified(tmp_path):
    stub = TwilioErrorStub()
    try:
        channel = IvrChannel(_settings(twilio_provider_env(stub.base_url)))
        stub.script.extend([twilio_error(400, 21214, "'To' number cannot be reached"),
                            twilio_error(503, 20503, "Service unavailable")])  # fmt: skip
        unreachable, busy = channel.send([_outgoing(tmp_path), _outgoing(tmp_path)])
    finally:
        stub.close()
    assert unreachable.outcome is Outcome.FAILED and unreachable.suppress is SuppressionReason.CARRIER_BLOCK
    assert unreachable.suppress_channels == ("ivr",)
    assert busy.outcome is Outcome.RETRY
    method, path, body = stub.requests[0]
    assert method == "POST" and path.endswith("/Calls.json")
    assert "MachineDetection=Enable" in body and "StatusCallback=https%3A%2F%2Fsurveys.example.gov" in body


# -- a service removed from the configuration ---------------------------------------------------------------------


def _client_without(stack: IvrStack, slug: str, tmp_path: Path) -> tuple[Any, Runtime]:
    """The app after a deploy whose services.yaml no longer lists ``slug``, on the same database."""
    services = {k: v for k, v in SERVICES.items() if k != slug}
    after = replace(stack.rt.settings, config_dir=write_config(tmp_path / "after", services, OFFICES))
    later = build_runtime(after, channels=stack.rt.channels)
    later.sync_catalog()
    app = create_app(runtime=later)
    app.testing = True
    return app.test_client(), later


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


def test_an_outbound_call_answered_after_its_service_left_the_configuration_ends_politely(ivr_prism, tmp_path,
                                                                                           caplog):  # fmt: skip
    """The call was placed, then the service was taken out of services.yaml: the person who answers hears the
    polite 'not available' goodbye (not 'something went wrong' after a logged KeyError), and no survey starts; in
    the invitation's language, as the survey would have been."""
    invitation = _dispatch_a_call(ivr_prism, "OUT-GONE", language="es")
    client, later = _client_without(ivr_prism, "ivr-outbound", tmp_path)
    try:
        call = ivr_prism.call(sid=invitation.provider_id, called=CALLER, direction="outbound-api", AnsweredBy="human")
        call.client = client
        with caplog.at_level(logging.WARNING, logger="survey_engine"):
            call.dial(f"/channels/ivr/voice?invitation={invitation.id}")
        assert call.engine_hung_up and call.text == "Lo sentimos, esta encuesta no está disponible. Adiós."
        _no_traceback(caplog)
        assert ivr_prism.rows(Response) == []
        assert call.replay().get_data(as_text=True) == call.replies[-1]  # a retry hears the same goodbye
    finally:
        later.engine.dispose()


def test_a_call_in_progress_whose_service_left_the_configuration_ends_politely(ivr, tmp_path, caplog):
    """A post-call survey is under way when a deploy takes its service out of services.yaml: the caller's next
    answer gets the polite 'not available' goodbye; what was answered before stays, nothing more is stored."""
    call = ivr.call().dial("/channels/ivr/voice?service=ivr-standard&transaction=CC-GONE&language=en")
    call.wait()
    call.press("5")
    response = ivr.response_of(call)
    assert ivr.answers(response.id) == {"satisfaction": 5}
    before = counts(ivr.rt)
    client, later = _client_without(ivr, "ivr-standard", tmp_path)
    try:
        call.client = client
        with caplog.at_level(logging.WARNING, logger="survey_engine"):
            call.press("4")
        assert call.engine_hung_up and call.text == UNAVAILABLE
        _no_traceback(caplog)
        assert ivr.answers(response.id) == {"satisfaction": 5}
        assert counts(ivr.rt) == before, "nothing stored half-way"
    finally:
        later.engine.dispose()
