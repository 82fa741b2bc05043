"""The SMS channel's own parts, without a database: its contract, its keywords and how it reads replies.

Replies are read against the shipped flows with the engine's translated labels, so a change of wording in a flow
or a catalog that would break reading shows up here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from channels.sms import SmsChannel
from channels.sms.replies import VOCABULARY_DIR, Keyword, keyword, read_answer, vocabularies
from engine.channels import Channel, ChannelRegistry
from engine.settings import load_settings
from engine.store.models import ContactKind
from engine.surveys.flows import Flow, Question, load_flows
from engine.surveys.sessions import Given, InvalidAnswer, SurveySessions

ROOT = Path(__file__).resolve().parent.parent
FLOWS = load_flows(ROOT / "flows")
STANDARD = FLOWS["a11-standard"]
DRIVERS = FLOWS["a11-drivers"]
# The engine's translated labels (``SurveySessions.labels`` needs no runtime for them).
SESSIONS = SurveySessions(None)  # type: ignore[arg-type]


def read(flow: Flow, question_id: str, text: str, language: str = "en") -> Given:
    question = flow.question(question_id)

    def labels(q: Question) -> list[tuple[str, str]]:
        found = SESSIONS.labels(flow, q, language)
        return found if language == "en" else found + SESSIONS.labels(flow, q, "en")

    return read_answer(question, text, language, labels)


def test_the_channel_satisfies_the_engine_contract(tmp_path):
    settings = load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path)})
    channel = SmsChannel(settings)
    assert isinstance(channel, Channel)
    assert (channel.name, channel.contact_kinds, channel.consent) == ("sms", (ContactKind.PHONE,), "sms")
    assert channel.quiet_hours is True and channel.test_only is False and channel.suppressed_by == ("sms",)
    assert 1 <= channel.batch_size <= 100
    registry = ChannelRegistry()
    registry.register(channel)
    assert registry.blocks("sms", {"sms"}) and not registry.blocks("sms", {"email"})
    bp = channel.blueprint()
    assert bp is not None and bp.url_prefix == "/channels/sms"


# -- keywords --------------------------------------------------------------------------------------------------

SPEC_OPT_OUT_WORDS = ["stop", "stopall", "quit", "end", "revoke", "opt out", "cancel", "unsubscribe", "alto",
                      "parar", "cancelar"]  # fmt: skip


@pytest.mark.parametrize("word", SPEC_OPT_OUT_WORDS)
def test_every_opt_out_word_of_the_spec_is_one(word):
    for variant in (word, word.upper(), f"  {word.title()}. ", f"{word}!!"):
        found = keyword(variant)
        assert found is not None and found[0] is Keyword.OPT_OUT, variant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OPT-OUT", Keyword.OPT_OUT),
        ("Stop all", Keyword.OPT_OUT),
        ("START", Keyword.START),
        ("unstop", Keyword.START),
        ("Comenzar", Keyword.START),
        ("HELP", Keyword.HELP),
        ("ayuda", Keyword.HELP),
        ("¡Ayuda!", Keyword.HELP),
    ],
)
def test_keywords_ignore_case_spaces_and_punctuation(text, expected):
    found = keyword(text)
    assert found is not None and found[0] is expected


@pytest.mark.parametrize("text", ["please stop texting me later", "5", "yes", "no", "stopped", "help me with 5", ""])
def test_a_keyword_counts_only_as_the_whole_message(text):
    assert keyword(text) is None


def test_the_words_are_data_for_every_language_the_flows_offer():
    offered = {lang for flow in FLOWS.values() for lang in flow.languages}
    words = vocabularies()
    assert offered <= set(words), f"no reply words in {VOCABULARY_DIR} for {offered - set(words)}"
    for language, vocabulary in words.items():
        assert vocabulary.opt_out and vocabulary.start and vocabulary.help, language
        assert set(vocabulary.numbers.values()) >= {1, 2, 3, 4, 5, 6, 7}, language
        assert vocabulary.yes and vocabulary.no, language
        answers = set(vocabulary.numbers) | vocabulary.yes | vocabulary.no
        keywords = vocabulary.opt_out | vocabulary.start | vocabulary.help
        assert not answers & keywords, f"{language}: a word is both an answer and a keyword"
    for path in VOCABULARY_DIR.glob("*.yaml"):
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["language"] == path.stem


# -- answers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "value"),
    [
        ("5", "en", 5),
        ("5 stars", "en", 5),
        ("five", "en", 5),
        ("FIVE!", "en", 5),
        ("4/5", "en", 4),
        ("I'd say 2", "en", 2),
        ("Strongly agree", "en", 5),
        ("I strongly agree.", "en", 5),
        ("agree", "en", 4),
        ("Disagree", "en", 2),
        ("strongly disagree", "en", 1),
        ("Neither agree nor disagree", "en", 3),
        ("cinco", "es", 5),
        ("cuatro estrellas", "es", 4),
        ("Muy de acuerdo", "es", 5),
        ("en desacuerdo", "es", 2),
        ("Ni de acuerdo ni en desacuerdo", "es", 3),
        ("tres", "en", 3),  # a Spanish number word is read whatever the survey's language
    ],
)
def test_a_rating_is_read_from_digits_words_and_scale_labels(text, language, value):
    assert read(STANDARD, "satisfaction", text, language) == Given(value=value)


@pytest.mark.parametrize("text", ["", "   ", "banana", "6", "0", "45", "4 or 5", "yes", "2 agree", "👍"])
def test_a_rating_that_says_nothing_or_two_things_is_not_read(text):
    with pytest.raises(InvalidAnswer):
        read(STANDARD, "satisfaction", text)


@pytest.mark.parametrize(
    ("text", "language", "value"),
    [
        ("yes", "en", 5),
        ("Y", "en", 5),
        ("Yes!", "en", 5),
        ("no", "en", 1),
        ("N", "en", 1),
        ("👍", "en", 5),
        ("👎🏽", "en", 1),
        ("thumbs up", "en", 5),
        ("down", "en", 1),
        ("Sí", "es", 5),
        ("si", "es", 5),
        ("no", "es", 1),
        ("Pulgar hacia arriba", "es", 5),
    ],
)
def test_thumbs_take_yes_no_and_up_down(text, language, value):
    assert read(DRIVERS, "trust", text, language) == Given(value=value)


@pytest.mark.parametrize("text", ["5", "1", "maybe", "yes no", "up and down"])
def test_thumbs_refuse_numbers_and_contradictions(text):
    with pytest.raises(InvalidAnswer):
        read(DRIVERS, "trust", text)


@pytest.mark.parametrize(
    ("text", "language", "choices"),
    [
        ("1,3", "en", ("effectiveness", "efficiency")),
        ("1 3", "en", ("effectiveness", "efficiency")),
        ("1 and 3", "en", ("effectiveness", "efficiency")),
        ("1, 3.", "en", ("effectiveness", "efficiency")),
        ("13", "en", ("effectiveness", "efficiency")),
        ("a c", "en", ("effectiveness", "efficiency")),
        ("A, C", "en", ("effectiveness", "efficiency")),
        ("one and three", "en", ("effectiveness", "efficiency")),
        ("uno y tres", "es", ("effectiveness", "efficiency")),
        ("7", "en", ("other",)),
        ("g", "en", ("other",)),
        ("3,1,3", "en", ("efficiency", "effectiveness")),
        ("It was easy", "en", ("ease",)),
    ],
)
def test_choose_all_takes_numbers_letters_and_words_in_the_choices_order(text, language, choices):
    assert read(DRIVERS, "went_well", text, language) == Given(choices=choices)


@pytest.mark.parametrize("text", ["8", "0", "h", "1,9", "great service", "", "18"])
def test_choose_all_refuses_what_is_not_a_choice(text):
    with pytest.raises(InvalidAnswer):
        read(DRIVERS, "went_well", text)


def test_free_text_is_taken_as_it_is_and_empty_skips():
    assert read(STANDARD, "comments", "  The wait was long; staff were kind. ") == Given(
        text="The wait was long; staff were kind."
    )
    assert read(STANDARD, "comments", "5") == Given(text="5")
    assert read(STANDARD, "comments", "   ").empty
