"""The IVR survey call through the real stack: a Twilio stand-in walks the TwiML, pressing keys and speaking.

Each test runs on SQLite and on PostgreSQL; every request is signed as Twilio signs it.
"""

from __future__ import annotations

from channels.ivr import keys
from channels.ivr.data import ivr_data
from engine.store.models import AnswerChoice, Response, Transaction, WebhookReceipt
from engine.surveys.flows import load_flows
from tests.conftest import ROOT
from tests.helpers import counts
from tests.ivr_support import IvrStack, ivr_stack  # noqa: F401  (the ivr fixture)

STANDARD = "/channels/ivr/voice?service=ivr-standard&transaction={tx}&office=NYC-01&language=en"
STANDARD_QUESTIONS = ["satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency", "employee"]


def _at_first_question(ivr: IvrStack, tx: str = "CC-100") -> tuple[IvrStack, object]:
    call = ivr.call().dial(STANDARD.format(tx=tx))
    call.wait()  # no key at the PRA notice: on to the first question
    assert call.text.startswith("I am satisfied with the service I received from Passport Renewal.")
    return ivr, call


def test_redirect_hand_off_walks_the_standard_flow_by_keypad(ivr):
    call = ivr.call().dial(STANDARD.format(tx="CC-1"))
    # The hand-off named the language: no menu; the intro and the PRA notice (OMB control number, key 9).
    assert "short survey about your recent experience with Passport Renewal" in call.text
    assert "OMB under control number 1090-0011" in call.text and "Press 9" in call.text
    call.wait()
    gather = call.gather
    assert gather.get("input") == "dtmf speech" and gather.get("numDigits") == "1"
    assert gather.get("language") == "en-US" and gather.get("actionOnEmptyResult") == "true"
    assert {(s.language, s.voice) for s in call.turn} == {("en-US", "Polly.Joanna")}
    assert "Press 1 for strongly disagree through 5 for strongly agree" in call.text
    pressed = ["1", "2", "3", "4", "5", "4", "2"]
    for key in pressed:
        call.press(key)
    assert call.engine_hung_up and call.text == "Thank you for your feedback. Goodbye."
    response = ivr.response_of(call)
    assert response.completed_at is not None and response.channel == "ivr" and response.invitation_id is None
    assert response.language == "en" and response.provider_ref == call.sid
    # a11-standard numbers its keys one_is_worst: key n stores n (1 = worst … 5 = best).
    assert ivr.answers(response.id) == {q: int(k) for q, k in zip(STANDARD_QUESTIONS, pressed, strict=True)}
    tx = ivr.transaction("ivr-standard", "CC-1")
    assert response.transaction_id == tx.id and tx.source == "ivr" and tx.touchpoint == "phone"
    assert tx.office_id == ivr.rt.office_ids["NYC-01"] and tx.language == "en"
    assert str(tx.decision) == "scheduled"


def test_drivers_flow_in_spanish_by_speech_after_the_language_menu(ivr):
    call = ivr.call().dial("/channels/ivr/voice?service=ivr-post-call&transaction=CC-2")
    # a11-drivers offers English and Spanish: each option is read in its own language.
    assert [s.language for s in call.turn] == ["en-US", "en-US", "es-US"]  # the opening, then each language's line
    assert call.turn[0].text == "Department of State would like your feedback on your recent Passport Renewal."
    assert call.turn[1].text == "For English, press 1."
    assert call.turn[2].voice == "Polly.Lupe" and "2" in call.turn[2].text
    assert call.gather.get("numDigits") == "1"
    call.press("2")
    assert call.languages() == {"es-US"} and "1090-0012" in call.text
    call.wait()
    assert call.gather.get("language") == "es-US" and "sí" in call.gather.get("hints")
    assert call.text == ("Esta interacción aumentó mi confianza en Renovación de pasaporte. "
                         "Si está de acuerdo, oprima 1. Si no está de acuerdo, oprima 2.")  # fmt: skip
    call.speak("Sí.")
    # Thumbs up: "what went well", keys for each choice then the pound key.
    assert call.gather.get("finishOnKey") == "#"
    call.press("13#")
    assert call.engine_hung_up and call.text == "Gracias por sus comentarios. Adiós."
    response = ivr.response_of(call)
    assert response.language == "es" and response.completed_at is not None
    assert ivr.answers(response.id) == {"trust": 5, "went_well": ["effectiveness", "efficiency"]}
    assert {c.driver for c in ivr.rows(AnswerChoice)} == {"effectiveness", "efficiency"}


def test_spoken_answers_in_english_and_spanish(ivr):
    call = ivr.call().dial("/channels/ivr/voice?service=ivr-post-call&transaction=CC-3&language=en-US")
    call.wait()
    call.speak("No.")  # thumbs down (one_is_best: "no" is the lowest point whatever the keys)
    assert call.text.startswith("What could be better?")
    call.speak("Speed, and helpful staff")
    assert call.engine_hung_up
    assert ivr.answers(ivr.response_of(call).id) == {"trust": 1, "could_be_better": ["efficiency", "employee"]}

    call = ivr.call().dial(STANDARD.format(tx="CC-4").replace("language=en", "language=es"))
    call.wait()
    for said in ["muy de acuerdo", "Cinco.", "strongly disagree", "2", "cuatro", "Ni de acuerdo ni en desacuerdo"]:
        call.speak(said)
    call.press("5")
    assert call.engine_hung_up
    assert ivr.answers(ivr.response_of(call).id) == dict(zip(STANDARD_QUESTIONS, [5, 5, 1, 2, 4, 3, 5], strict=True))


def test_star_repeats_the_question_and_changes_nothing(ivr):
    _, call = _at_first_question(ivr)
    question = call.text
    before = ivr.response_of(call).state
    call.press("*")
    assert call.text == question  # said again, no apology
    after = ivr.response_of(call).state
    assert {k: v for k, v in after.items() if k != "ivr_step"} == {k: v for k, v in before.items() if k != "ivr_step"}
    call.speak("repeat")
    assert call.text == question
    call.press("4")
    assert call.text.startswith("This interaction increased my trust")
    assert ivr.answers(ivr.response_of(call).id) == {"satisfaction": 4}


def test_an_invalid_key_repeats_once_then_the_question_is_skipped(ivr):
    _, call = _at_first_question(ivr)
    call.press("9")
    assert call.text.startswith("Sorry, I didn't get that.") and "I am satisfied" in call.text
    call.speak("banana")
    assert call.text.startswith("This interaction increased my trust")  # skipped, moved on
    # No input twice skips the same way.
    call.wait()
    assert call.text.startswith("Sorry, I didn't get that.") and "trust" in call.text
    call.wait()
    assert call.text.startswith("My need was addressed.")
    call.press("5")
    response = ivr.response_of(call)
    assert ivr.answers(response.id) == {"effectiveness": 5}
    assert response.state["skipped"] == ["satisfaction", "trust"]


def test_a_caller_who_hangs_up_after_two_answers_leaves_a_partial_response(ivr):
    _, call = _at_first_question(ivr)
    call.press("5")
    call.press("4")
    call.hang_up()
    response = ivr.response_of(call)
    assert ivr.answers(response.id) == {"satisfaction": 5, "trust": 4}
    assert response.completed_at is None


def test_a_retried_gather_gets_the_same_twiml_and_changes_nothing(ivr):
    _, call = _at_first_question(ivr)
    call.press("3")
    first_reply = call.replies[-1]
    state = ivr.response_of(call).state
    before = counts(ivr.rt)
    again = call.replay()
    assert again.status_code == 200 and again.get_data(as_text=True) == first_reply
    assert counts(ivr.rt) == before and ivr.response_of(call).state == state
    # The call goes on from where it was: the next key answers the second question.
    call.press("2")
    assert ivr.answers(ivr.response_of(call).id) == {"satisfaction": 3, "trust": 2}


def test_a_retried_entry_request_starts_nothing_twice(ivr):
    call = ivr.call().dial(STANDARD.format(tx="CC-5"))
    before = counts(ivr.rt)
    again = call.replay()
    assert again.get_data(as_text=True) == call.replies[-1]
    assert counts(ivr.rt) == before
    assert len(ivr.rows(Response)) == 1 and len(ivr.rows(Transaction)) == 1
    assert ivr.rows(WebhookReceipt)[0].key == f"{call.sid}:voice"


def test_key_9_at_the_notice_reads_the_full_burden_statement(ivr):
    call = ivr.call().dial(STANDARD.format(tx="CC-6"))
    call.press("9")
    assert call.text.startswith("A federal agency may not conduct or sponsor")
    assert "I am satisfied with the service" in call.text


def test_no_choice_at_the_language_menu_keeps_the_service_default(ivr):
    call = ivr.call().dial("/channels/ivr/voice?service=ivr-post-call&transaction=CC-7")
    call.wait()
    assert call.languages() == {"en-US"} and "1090-0012" in call.text
    assert ivr.response_of(call).language == "en"


def test_keypad_and_speech_reading_follow_the_flow_keypad_order():
    flows = load_flows(ROOT / "flows")
    drivers, standard = flows["a11-drivers"], flows["a11-standard"]
    assert keys.keypad(drivers, drivers.question("trust")) == {"1": 5, "2": 1}  # one_is_best
    assert keys.keypad(standard, standard.question("trust")) == {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
    one_is_best = keys.keypad(drivers, standard.question("trust"))
    assert one_is_best == {"1": 5, "2": 4, "3": 3, "4": 2, "5": 1}
    went_well = drivers.question("went_well")
    assert keys.read_speech(drivers, went_well, "uno y tres", "es", []).choices == ("effectiveness", "efficiency")
    assert keys.read_speech(drivers, went_well, "13", "en", []).choices == ("effectiveness", "efficiency")
    trust = drivers.question("trust")
    assert keys.read_speech(drivers, trust, "no estoy de acuerdo", "es", []).value == 1
    assert keys.read_speech(drivers, trust, "one", "en", []).value == 5  # key 1 = thumbs up in this flow
    assert ivr_data().voice("es-MX").voice == "Polly.Lupe" and ivr_data().voice("fr").language == "en-US"
