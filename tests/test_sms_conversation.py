"""SMS conversations through the real stack: a customer texts signed webhooks and reads the TwiML answers.

Each test reports a transaction through the API, lets dispatch send the first text through the real Twilio SDK
(to the error stub scripted to accept it), then texts ``/channels/sms/inbound`` as Twilio would, on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from engine.store.db import utcnow
from engine.store.models import AuditEntry, DeliveryEvent, InvitationState, WebhookReceipt
from tests import sms_support
from tests.helpers import counts
from tests.sms_support import SmsStack, created, messages
from tests.twilio_support import AUTH_TOKEN, PUBLIC_URL, TwilioErrorStub, signed_post

# The fixtures these tests take (pytest finds them by name in the module).
sms_config_dir = sms_support.sms_config_dir
sms_stack = sms_support.sms_stack
shared_twilio_stub = sms_support.shared_twilio_stub

PHONE = "+12025550123"
OTHER_PHONE = "+12025550188"
THANKS_EN = "Thank you for your feedback. It helps us improve Passport Renewal."
SATISFIED_EN = (
    "I am satisfied with the service I received from Passport Renewal. "
    "Reply 1 (strongly disagree) to 5 (strongly agree)."
)
TRUST_EN = "This interaction increased my trust in Passport Renewal. Reply 1 (strongly disagree) to 5 (strongly agree)."


@pytest.fixture
def twilio_stub(shared_twilio_stub) -> TwilioErrorStub:
    """The Twilio error stub, started once for the session (stopping one costs half a second), emptied per test."""
    shared_twilio_stub.script.clear()
    shared_twilio_stub.requests.clear()
    return shared_twilio_stub


@pytest.fixture
def stack(sms_stack, twilio_stub) -> SmsStack:
    return sms_stack(twilio_stub.base_url)


def send(stack: SmsStack, stub: TwilioErrorStub, external_id: str, phone: str = PHONE, service: str = "sms-first",
         **fields) -> tuple[uuid.UUID, str]:  # fmt: skip
    """Report a transaction and let dispatch text the invitation; (invitation id, Twilio's sid)."""
    sid = f"SM{uuid.uuid4().hex}"
    stub.script.append(created(sid, phone))
    inv_id = stack.schedule(external_id, phone, service, **fields)
    assert stack.dispatch().outcomes == {"sent": 1}
    assert stack.invitation(inv_id).provider_id == sid
    return inv_id, sid


def test_a_whole_survey_in_english(stack, twilio_stub):
    inv_id, _ = send(stack, twilio_stub, "S-1")
    assert stack.reply(PHONE, "5") == TRUST_EN
    assert stack.reply(PHONE, "four") == "My need was addressed. Reply 1 (strongly disagree) to 5 (strongly agree)."
    assert stack.reply(PHONE, "Strongly agree!").startswith("It was easy to complete what I needed to do.")
    assert stack.reply(PHONE, "2").startswith("It took a reasonable amount of time")
    assert stack.reply(PHONE, "3 stars").startswith("I understood what was being asked of me.")
    assert stack.reply(PHONE, "disagree").startswith("The employees I interacted with were helpful.")
    assert stack.reply(PHONE, "1").startswith("Anything else you would like to tell us?")
    assert stack.reply(PHONE, "  The clerk was kind; the wait was long.  ") == THANKS_EN
    assert stack.answers() == {
        "satisfaction": ("satisfaction", 5, None, ()),
        "trust": ("trust", 4, None, ()),
        "effectiveness": ("effectiveness", 5, None, ()),
        "ease": ("ease", 2, None, ()),
        "efficiency": ("efficiency", 3, None, ()),
        "transparency": ("transparency", 2, None, ()),
        "employee": ("employee", 1, None, ()),
        "comments": ("free_text", None, "The clerk was kind; the wait was long.", ()),
    }
    (response,) = stack.responses()
    assert response.completed_at is not None and response.channel == "sms" and response.language == "en"
    assert response.invitation_id == inv_id
    assert stack.invitation(inv_id).state is InvitationState.ANSWERED
    # A text after the end is thanked and changes nothing.
    assert stack.reply(PHONE, "5") == THANKS_EN
    assert len(stack.answers()) == 8


def test_an_empty_reply_skips_the_optional_free_text(stack, twilio_stub):
    send(stack, twilio_stub, "S-2", service="sms-drivers")
    assert stack.reply(PHONE, "no").startswith("What could be better?")
    assert stack.reply(PHONE, "2").startswith("Anything else you would like to tell us?")
    assert stack.reply(PHONE, "   ") == THANKS_EN
    assert stack.answers() == {
        "trust": ("trust", 1, None, ()),
        "could_be_better": ("drivers_negative", None, None, ("ease",)),
    }
    assert stack.responses()[0].completed_at is not None


def test_a_spanish_survey_with_the_positive_branch(stack, twilio_stub):
    send(stack, twilio_stub, "S-3", service="sms-drivers", language="es")
    went_well = stack.reply(PHONE, "Sí")
    assert went_well.startswith("¿Qué salió bien?"), went_well
    assert stack.reply(PHONE, "1 y 3").startswith("¿Hay algo más que quiera decirnos?")
    assert stack.reply(PHONE, "Todo bien, gracias.") == (
        "Gracias por sus comentarios. Nos ayudan a mejorar Renovación de pasaporte."
    )
    assert stack.answers() == {
        "trust": ("trust", 5, None, ()),
        "went_well": ("drivers_positive", None, None, ("effectiveness", "efficiency")),
        "comments": ("free_text", None, "Todo bien, gracias.", ()),
    }
    assert stack.drivers() == {"effectiveness": "effectiveness", "efficiency": "efficiency"}
    assert stack.responses()[0].language == "es"


def test_spanish_number_words_and_scale_labels(stack, twilio_stub):
    send(stack, twilio_stub, "S-4", language="es")
    assert stack.reply(PHONE, "cinco").startswith("Esta interacción aumentó mi confianza en")
    assert stack.reply(PHONE, "Muy de acuerdo").startswith("Se atendió mi necesidad.")
    assert stack.reply(PHONE, "en desacuerdo").startswith("Fue fácil completar lo que necesitaba hacer.")
    answers = stack.answers()
    assert {q: v[1] for q, v in answers.items()} == {"satisfaction": 5, "trust": 5, "effectiveness": 2}


def test_the_negative_branch_takes_letters(stack, twilio_stub):
    send(stack, twilio_stub, "S-5", service="sms-drivers")
    assert stack.reply(PHONE, "thumbs down").startswith("What could be better?")
    assert stack.reply(PHONE, "a, c and G").startswith("Anything else")
    assert stack.answers()["could_be_better"] == ("drivers_negative", None, None, ("effectiveness", "efficiency",
                                                                                   "other"))  # fmt: skip


def test_an_unreadable_reply_is_asked_once_more_then_skipped(stack, twilio_stub):
    send(stack, twilio_stub, "S-6")
    assert stack.reply(PHONE, "banana") == f"Sorry, I didn't understand. {SATISFIED_EN}"
    assert stack.reply(PHONE, "maybe 4 or 5") == TRUST_EN  # still unreadable: skipped, the next question
    assert stack.reply(PHONE, "4").startswith("My need was addressed.")
    assert stack.answers() == {"trust": ("trust", 4, None, ())}
    (response,) = stack.responses()
    assert response.completed_at is None and "satisfaction" in response.state["skipped"]


def test_a_digit_int_cannot_read_is_asked_again_not_a_500(stack, twilio_stub):
    """ "᧚" and "፩" pass ``str.isdigit`` but ``int`` refuses them; a customer's reply is never a 500."""
    send(stack, twilio_stub, "S-6d")
    assert stack.reply(PHONE, "᧚") == f"Sorry, I didn't understand. {SATISFIED_EN}"
    assert stack.reply(PHONE, "٥") == TRUST_EN  # Arabic-Indic five: int reads it
    assert stack.answers() == {"satisfaction": ("satisfaction", 5, None, ())}


def test_stop_mid_survey_opts_out_of_texts_and_calls_at_once(stack, twilio_stub):
    send(stack, twilio_stub, "S-7")
    stack.reply(PHONE, "5")
    confirmation = stack.reply(PHONE, " Stop. ")
    assert confirmation and "START" in confirmation and "Department of State" in confirmation
    rows = stack.suppressions()
    assert [(r.channel, r.reason.value, r.source) for r in rows] == [
        ("ivr", "opted_out", "sms:inbound"),
        ("sms", "opted_out", "sms:inbound"),
    ]
    # The response stays partial and takes nothing more; the customer gets no more survey texts.
    assert stack.reply(PHONE, "4") is None
    (response,) = stack.responses()
    assert response.completed_at is None and stack.answers() == {"satisfaction": ("satisfaction", 5, None, ())}
    # A later transaction for that phone is decided opted_out.
    assert stack.report("S-7b", PHONE)["decision"] == "opted_out"


def test_start_restores_and_is_audited(stack, twilio_stub):
    send(stack, twilio_stub, "S-8")
    assert "START" in (stack.reply(PHONE, "ALTO") or "")
    assert {r.channel for r in stack.suppressions()} == {"sms", "ivr"}
    again = stack.reply(PHONE, "start")
    assert again and "STOP" in again
    assert stack.suppressions() == []
    restored = stack.suppressions(active_only=False)
    assert {(r.restored_by, r.restore_reason) for r in restored} == {("sms:inbound", "customer texted START")}
    with stack.rt.sessions() as session:
        audited = session.execute(select(AuditEntry).where(AuditEntry.action == "suppression.restore")).scalars().all()
    assert [(a.actor, a.detail["channels"], a.detail["reason"]) for a in audited] == [
        ("sms:inbound", ["ivr", "sms"], "customer texted START")
    ]
    assert stack.report("S-8b", PHONE)["decision"] == "scheduled"


def test_with_twilio_opt_out_handling_stop_gets_empty_twiml_but_still_suppresses(stack, twilio_stub):
    send(stack, twilio_stub, "S-9", service="sms-twilio-stop")
    answer = stack.text(PHONE, "STOP")
    assert answer.status_code == 200 and messages(answer.get_data(as_text=True)) == []
    assert {r.channel for r in stack.suppressions()} == {"sms", "ivr"}


def test_help_says_who_asks_the_support_contact_and_the_pra_information(stack, twilio_stub):
    send(stack, twilio_stub, "S-10")
    stack.reply(PHONE, "5")
    help_text = stack.reply(PHONE, "help")
    assert help_text is not None
    for part in ("Department of State", "Passport Renewal", "+18775550100", "https://example.gov/contact",
                 "OMB control number 1090-0011", "2028-06-30", "STOP"):  # fmt: skip
        assert part in help_text, (part, help_text)
    # HELP is no answer: the conversation is where it was.
    assert stack.reply(PHONE, "4").startswith("My need was addressed.")
    assert stack.answers()["trust"][1] == 4


def test_a_reply_after_the_survey_expired_is_told_it_closed(stack, twilio_stub):
    inv_id, _ = send(stack, twilio_stub, "S-11")
    stack.update_invitation(inv_id, expires_at=utcnow() - timedelta(minutes=1))
    assert stack.reply(PHONE, "5") == "Sorry, this survey has closed. Thank you for your time."
    assert stack.responses() == [] and stack.answers() == {}


def test_a_reply_settles_an_invitation_whose_send_timed_out(stack, twilio_stub):
    inv_id, _ = send(stack, twilio_stub, "S-19")
    stack.update_invitation(inv_id, state=InvitationState.UNKNOWN, reason="timed out after the request went out")
    assert stack.reply(PHONE, "5") == TRUST_EN
    invitation = stack.invitation(inv_id)
    assert invitation.state is InvitationState.DELIVERED and invitation.reason is None
    assert stack.answers() == {"satisfaction": ("satisfaction", 5, None, ())}


def test_an_unknown_number_gets_a_sensible_answer(stack):
    answer = stack.reply(OTHER_PHONE, "hello?")
    assert answer and "STOP" in answer and "survey" in answer
    assert stack.reply(OTHER_PHONE, "HELP") == answer
    assert stack.responses() == []
    # STOP from a number we never texted still takes effect at once.
    stopped = stack.reply(OTHER_PHONE, "unsubscribe")
    assert stopped and "START" in stopped
    assert {r.channel for r in stack.suppressions()} == {"sms", "ivr"}


def test_a_text_to_a_link_mode_invitation_points_to_the_link(stack, twilio_stub):
    send(stack, twilio_stub, "S-12", service="sms-link")
    answer = stack.reply(PHONE, "5")
    assert answer and "link" in answer and "STOP" in answer
    assert stack.responses() == []


def test_a_replayed_message_sid_gets_the_same_twiml_and_changes_nothing(stack, twilio_stub):
    send(stack, twilio_stub, "S-13")
    first = stack.text(PHONE, "5", sid="SM" + "0" * 31 + "1")
    assert stack.reply(PHONE, "4").startswith("My need was addressed.")
    before = counts(stack.rt)
    again = stack.text(PHONE, "5", sid="SM" + "0" * 31 + "1")
    assert again.status_code == 200 and again.get_data() == first.get_data()
    assert messages(again.get_data(as_text=True)) == [TRUST_EN]
    assert counts(stack.rt) == before
    assert stack.answers() == {"satisfaction": ("satisfaction", 5, None, ()), "trust": ("trust", 4, None, ())}
    with stack.rt.sessions() as session:
        assert session.execute(select(func.count()).select_from(WebhookReceipt)).scalar_one() == 2


def test_a_forged_or_missing_signature_gets_403_and_changes_nothing(stack, twilio_stub):
    for endpoint in ("sms.inbound", "sms.status"):
        assert stack.app.view_functions[endpoint].access == "twilio-signature"
    send(stack, twilio_stub, "S-14")
    before = counts(stack.rt)
    form = {"MessageSid": "SMforged", "From": PHONE, "To": "+12025550100", "Body": "STOP"}
    forged = signed_post(stack.client, "/channels/sms/inbound", form, token="not-the-auth-token-000000000000")
    assert forged.status_code == 403
    unsigned = stack.client.post("/channels/sms/inbound", data=form)
    assert unsigned.status_code == 403
    # Signed for another URL (replayed against another path) is forged too.
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + "/channels/sms/inbound", form)
    moved = stack.client.post("/channels/sms/status", data=form, headers={"X-Twilio-Signature": signature})
    assert moved.status_code == 403
    assert counts(stack.rt) == before


def test_status_callbacks_are_applied_once(stack, twilio_stub):
    inv_id, sid = send(stack, twilio_stub, "S-15")
    for _ in range(2):
        assert stack.status(sid, "sent").status_code == 200
        assert stack.status(sid, "delivered").status_code == 200
    assert stack.invitation(inv_id).state is InvitationState.DELIVERED
    assert stack.status(sid, "sent").status_code == 200  # late: never moves it back
    assert stack.invitation(inv_id).state is InvitationState.DELIVERED
    with stack.rt.sessions() as session:
        keys = session.execute(select(DeliveryEvent.provider_event_id).where(
            DeliveryEvent.invitation_id == inv_id, DeliveryEvent.provider_event_id.is_not(None))).scalars().all()  # fmt: skip
    assert sorted(keys) == [f"{sid}:delivered", f"{sid}:sent"]


def test_undelivered_30006_fails_and_suppresses_once(stack, twilio_stub):
    inv_id, sid = send(stack, twilio_stub, "S-16")
    for _ in range(2):
        assert stack.status(sid, "undelivered", "30006").status_code == 200
    invitation = stack.invitation(inv_id)
    assert invitation.state is InvitationState.FAILED and "30006" in (invitation.reason or "")
    rows = stack.suppressions()
    assert [(r.channel, r.reason.value) for r in rows] == [("sms", "carrier_block")]


def test_unknown_sids_and_statuses_change_nothing(stack, twilio_stub):
    inv_id, sid = send(stack, twilio_stub, "S-17")
    before = counts(stack.rt)
    assert stack.status(f"SM{uuid.uuid4().hex}", "delivered").status_code == 200
    assert stack.status(sid, "receiving").status_code == 200
    # The unknown sid's report is only held (in case dispatch records that sid later); nothing else changes.
    assert counts(stack.rt) == {**before, "early_reports": before["early_reports"] + 1}
    assert stack.invitation(inv_id).state is InvitationState.SENT


def test_the_same_message_posted_at_once_is_applied_once(stack, twilio_stub):
    """Twilio retrying while the first request is still being handled: one turn, the same TwiML for both."""
    send(stack, twilio_stub, "S-18")
    sid = "SM" + "0" * 31 + "2"
    form = {"MessageSid": sid, "AccountSid": "AC", "From": PHONE, "To": "+12025550100", "Body": "5"}
    start = threading.Barrier(4)
    answers: list[tuple[int, bytes]] = []

    def post() -> None:
        client = stack.app.test_client()
        start.wait()
        answer = signed_post(client, "/channels/sms/inbound", form)
        answers.append((answer.status_code, answer.get_data()))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(answers) == 4 and {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1
    assert messages(answers[0][1].decode()) == [TRUST_EN]
    assert stack.answers() == {"satisfaction": ("satisfaction", 5, None, ())}
    assert len(stack.responses()) == 1


def _two_texts_at_once(stack: SmsStack, phone: str) -> list[int]:
    start = threading.Barrier(2)
    statuses: list[int] = []

    def post(n: int) -> None:
        form = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": "AC", "From": phone,
                "To": "+12025550100", "Body": str(4 + n)}  # fmt: skip
        client = stack.app.test_client()
        start.wait()
        statuses.append(signed_post(client, "/channels/sms/inbound", form).status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


def test_two_texts_of_one_conversation_at_once_answer_two_questions_in_turn(stack, twilio_stub):
    """Two different texts arriving together (a customer typing fast): the invitation is locked as a turn reads it,
    so the second turn waits and answers the question the first one asked; neither is lost or applied twice."""
    for round_ in range(3):
        phone = f"+1202555013{round_}"
        send(stack, twilio_stub, f"S-19-{round_}", phone=phone)
        assert _two_texts_at_once(stack, phone) == [200, 200]
    # Each conversation: the first question and the one after it answered, one text each (4 and 5 in either order).
    responses = stack.responses()
    assert len(responses) == 3
    recorded = stack.answers_by_response()
    for response in responses:
        got = recorded[response.id]
        assert sorted(got) == ["satisfaction", "trust"], got
        assert sorted(v for v in got.values()) == [4, 5], got


def test_stop_texts_and_api_opt_outs_of_one_number_at_once_suppress_once_and_start_lifts_it(stack):
    """STOP texts (different messages of one number) and ``POST /api/v1/opt-outs`` of that number arriving
    together: one suppression in force per channel, every request answered as usual; START then lifts them all,
    so the number is reachable again."""
    api = {"Authorization": f"Bearer {stack.api_key}"}
    for round_ in range(6):
        phone = f"+1202555014{round_}"
        start = threading.Barrier(8)
        statuses: list[int] = []

        def post(n: int, start: threading.Barrier, statuses: list[int], phone: str) -> None:
            client = stack.app.test_client()
            start.wait()
            if n % 2:
                form = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": "AC", "From": phone,
                        "To": "+12025550100", "Body": "STOP"}  # fmt: skip
                statuses.append(signed_post(client, "/channels/sms/inbound", form).status_code)
            else:
                statuses.append(client.post("/api/v1/opt-outs", json={"phone": phone}, headers=api).status_code)

        threads = [threading.Thread(target=post, args=(n, start, statuses, phone)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(statuses) == [200] * 4 + [201] * 4, statuses
        in_force = stack.suppressions()
        assert sorted(r.channel for r in in_force) == ["ivr", "sms"], f"round {round_}: {in_force}"
        assert stack.reply(phone, "START")
        assert stack.suppressions() == []
