"""Reading a caller's keypad presses and speech as answers in engine terms (:class:`engine.surveys.sessions.Given`).

* Keypad. A rating's keys follow the flow's ``ivr_keypad``: with ``one_is_worst`` key 1 is the lowest point, with
  ``one_is_best`` key 1 is the highest (thumbs and yes/no use keys 1 and 2 the same way); the stored value is always
  1 = worst … 5 = best. A choose-all question numbers its choices 1… in the flow's order; the caller presses each,
  then ``#``. ``*`` asks for the question again. On an outbound call ``0`` alone stops further survey calls
  (:data:`STOP_CALLS_KEY`, handled by :mod:`channels.ivr.calls` before any answer is read).
* Speech. A spoken number is the key of that number ("five", "cinco", "5"); a flow's labels in the call's language
  (or English) name their point or choice ("strongly agree", "muy de acuerdo", "it was quick"); yes/no words answer
  a thumbs or yes/no question. Phrases are matched as whole words, the longest first, so "strongly disagree" is
  not read as "agree". Anything else is an :class:`~engine.surveys.sessions.InvalidAnswer` (asked once more, then skipped).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TypeVar

from channels.ivr.data import ivr_data, normalize
from engine.common.i18n import N_
from engine.surveys.flows import Flow, Question
from engine.surveys.sessions import Given, InvalidAnswer

REPEAT_KEY = "*"
FINISH_KEY = "#"
# The notice: 9 reads the full PRA statement. Outbound calls: 0, at any prompt, stops further survey calls to the
# number (never an answer key: ratings use 1-5, choices 1-9).
FULL_STATEMENT_KEY = "9"
STOP_CALLS_KEY = "0"
MAX_CHOICE_KEYS = 9
T = TypeVar("T")


def keypad(flow: Flow, question: Question) -> dict[str, int]:
    """Key → stored value of a rating question, in the flow's keypad order."""
    points = sorted(question.points)
    if flow.raw.get("ivr_keypad") == "one_is_best":
        points.reverse()
    return {str(key): value for key, value in enumerate(points, start=1)}


def choice_keys(question: Question) -> dict[str, str]:
    """Key → choice id of a choose-all or choose-one question (keys 1 to 9, in the flow's order)."""
    return {str(key): choice.id for key, choice in enumerate(question.choices[:MAX_CHOICE_KEYS], start=1)}


def wants_repeat(digits: str, speech: str, language: str) -> bool:
    """``*`` on the keypad, or "repeat" / "repetir" said."""
    if REPEAT_KEY in digits:
        return True
    said = normalize(speech)
    return bool(said) and said in ivr_data().words_for(language).repeat


def _unreadable(question: Question) -> InvalidAnswer:
    return InvalidAnswer(question.id, N_("Please choose one of the answers offered."))


def read_digits(flow: Flow, question: Question, digits: str) -> Given:
    keys = digits.replace(FINISH_KEY, "")
    if question.is_rating:
        value = keypad(flow, question).get(keys)
        if value is None:
            raise _unreadable(question)
        return Given(value=value)
    if question.choices:
        by_key = choice_keys(question)
        if not keys or any(k not in by_key for k in keys):
            raise _unreadable(question)
        return Given(choices=tuple(dict.fromkeys(by_key[k] for k in keys)))
    raise InvalidAnswer(question.id, N_("Please answer in words."))


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\S)" + re.escape(phrase) + r"(?!\S)")


def _matches(said: str, phrases: Iterable[tuple[str, T]]) -> list[T]:
    """The values of the phrases found in ``said`` in order; a phrase inside a longer one found there is dropped."""
    found: list[tuple[int, int, T]] = []
    for phrase, value in phrases:
        if phrase:
            found.extend((m.start(), m.end(), value) for m in _phrase_pattern(phrase).finditer(said))
    kept = [
        (start, end, value)
        for start, end, value in found
        if not any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in found)
    ]
    kept.sort(key=lambda item: item[0])
    return [value for _, _, value in kept]


def _numbers(language: str) -> list[tuple[str, int]]:
    """Spoken numbers of the call's language and the digits speech recognition writes for them."""
    words = ivr_data().words_for(language).numbers
    return [*words.items(), *((str(n), n) for n in range(10))]


def labels_in_english(flow: Flow, question: Question) -> list[tuple[str, str]]:
    """(value, English label) of each answer ``question`` offers (callers sometimes answer in English)."""
    if question.is_rating:
        scale = flow.scale_labels(question)
        return [(str(p), scale[p]) for p in question.points if p in scale]
    return [(c.id, c.label) for c in question.choices]


def _label_phrases(flow: Flow, question: Question, labels: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(normalize(label), value) for value, label in (*labels, *labels_in_english(flow, question))]


def _speech_rating(flow: Flow, question: Question, said: str, language: str, labels: Sequence[tuple[str, str]]) -> int:
    by_key = keypad(flow, question)
    phrases = [(phrase, int(value)) for phrase, value in _label_phrases(flow, question, labels)]
    phrases += [(word, by_key[str(n)]) for word, n in _numbers(language) if str(n) in by_key]
    if question.type in ("thumbs", "yes_no"):
        words = ivr_data().words_for(language)
        phrases += [(word, max(question.points)) for word in words.yes]
        phrases += [(word, min(question.points)) for word in words.no]
    values = set(_matches(said, phrases))
    if len(values) != 1:
        raise _unreadable(question)
    return values.pop()


def _speech_choices(
    flow: Flow, question: Question, said: str, language: str, labels: Sequence[tuple[str, str]]
) -> tuple[str, ...]:
    by_key = choice_keys(question)
    phrases: list[tuple[str, tuple[str, ...]]] = [
        (phrase, (value,)) for phrase, value in _label_phrases(flow, question, labels)
    ]
    phrases += [(word, (by_key[str(n)],)) for word, n in _numbers(language) if str(n) in by_key]
    # A run of digits heard as one number ("13") is read as keys, as on the keypad.
    phrases += [
        (token, tuple(by_key[k] for k in token))
        for token in said.split()
        if token.isdigit() and len(token) > 1 and all(k in by_key for k in token)
    ]
    chosen = [choice for value in _matches(said, phrases) for choice in value]
    if not chosen:
        raise _unreadable(question)
    return tuple(dict.fromkeys(chosen))


def read_speech(flow: Flow, question: Question, speech: str, language: str, labels: Sequence[tuple[str, str]]) -> Given:
    """What the caller said, for ``question``; ``labels`` are the question's (value, label) in the call's language."""
    said = normalize(speech)
    if not said:
        raise _unreadable(question)
    if question.is_rating:
        return Given(value=_speech_rating(flow, question, said, language, labels))
    if question.choices:
        return Given(choices=_speech_choices(flow, question, said, language, labels))
    return Given(text=speech.strip())


def read(
    flow: Flow, question: Question, digits: str, speech: str, language: str, labels: Sequence[tuple[str, str]]
) -> Given:
    """The caller's input for ``question``: the keypad wins when both came."""
    if digits.replace(FINISH_KEY, ""):
        return read_digits(flow, question, digits)
    return read_speech(flow, question, speech, language, labels)
