"""Reading what a customer texts: keywords (STOP, START, HELP) and the answer to the question awaiting one.

The words are data, not code: ``locales/sms/<language>.yaml`` holds each language's opt-out, start and help
keywords, number words, yes/no words and the joining words of a choose-all answer; they are loaded once. Scale
labels ("strongly agree", "muy de acuerdo") come from the flow through the engine, translated.

Matching ignores case, accents, punctuation and extra spaces. A keyword counts only as the whole message, in any
language the engine has words for (a customer asked in English may still text ALTO). An answer is read for the
pending question in the response's language first, then in the others; it must say one thing (``"4 or 5"`` is
not read), and a reply that cannot be read raises :class:`engine.surveys.sessions.InvalidAnswer` so the conversation
asks once more.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from engine.common.i18n import LOCALES, N_, locales_dir
from engine.surveys.flows import CHOICE_TYPES, Question
from engine.surveys.sessions import Given, InvalidAnswer

# The shipped words; a catalog folder of the deployment's own (SURVEY_ENGINE_LOCALES_DIR) with an ``sms/`` folder
# is read instead (:func:`vocabulary_dir`).
VOCABULARY_DIR = LOCALES / "sms"
DEFAULT_LANGUAGE = "en"
# Labels of a question's answers, translated: (stored value or choice id, label).
Labels = Callable[[Question], list[tuple[str, str]]]


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    START = "start"
    HELP = "help"


@dataclass(frozen=True)
class Vocabulary:
    """One language's reply words, normalized (see :func:`normalize`)."""

    language: str
    opt_out: frozenset[str]
    start: frozenset[str]
    help: frozenset[str]
    numbers: dict[str, int]
    yes: frozenset[str]
    no: frozenset[str]
    thumbs_up: frozenset[str]
    thumbs_down: frozenset[str]
    connectors: frozenset[str]
    filler: frozenset[str]


_APOSTROPHES = str.maketrans("", "", "'’ʼ`")


def normalize(text: str) -> str:
    """Lower case, no accents, no punctuation, single spaces; digits, letters and emoji kept."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    kept = []
    for char in decomposed:
        category = unicodedata.category(char)
        if category == "Mn":  # accents, variation selectors
            continue
        kept.append(char if category[0] in "LN" or category == "So" else " ")
    return " ".join("".join(kept).casefold().split())


def compact(text: str) -> str:
    """A keyword's comparable form: "OPT-OUT", "opt out" and "optout" are one word."""
    return normalize(text).replace(" ", "")


def _words(raw: Any, where: str) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(w, str | int) for w in raw):
        raise ValueError(f"{where}: expected a list of words")
    return frozenset(w for w in (normalize(str(item)) for item in raw) if w)


def _load(path: Path) -> Vocabulary:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    language = str(data.get("language") or path.stem)
    numbers: dict[str, int] = {}
    for value, words in (data.get("numbers") or {}).items():
        for word in _words(words, f"{path}: numbers.{value}"):
            numbers[word] = int(value)
    return Vocabulary(
        language=language,
        opt_out=frozenset(compact(w) for w in _words(data.get("opt_out"), f"{path}: opt_out")),
        start=frozenset(compact(w) for w in _words(data.get("start"), f"{path}: start")),
        help=frozenset(compact(w) for w in _words(data.get("help"), f"{path}: help")),
        numbers=numbers,
        yes=_words(data.get("yes"), f"{path}: yes"),
        no=_words(data.get("no"), f"{path}: no"),
        thumbs_up=_words(data.get("thumbs_up"), f"{path}: thumbs_up"),
        thumbs_down=_words(data.get("thumbs_down"), f"{path}: thumbs_down"),
        connectors=_words(data.get("connectors"), f"{path}: connectors"),
        filler=_words(data.get("filler"), f"{path}: filler"),
    )


def vocabulary_dir() -> Path:
    """Where the reply words are read: ``sms/`` beside the catalogs in use, else the shipped ones."""
    configured = locales_dir() / "sms"
    return configured if configured.is_dir() else VOCABULARY_DIR


def vocabularies() -> dict[str, Vocabulary]:
    """Every language's words, English first (loaded once per process and folder)."""
    return _vocabularies(vocabulary_dir())


@cache
def _vocabularies(folder: Path) -> dict[str, Vocabulary]:
    found = {v.language: v for v in (_load(p) for p in sorted(folder.glob("*.yaml")))}
    if DEFAULT_LANGUAGE not in found:
        raise RuntimeError(f"the SMS reply words for {DEFAULT_LANGUAGE!r} are missing in {folder}")
    return {DEFAULT_LANGUAGE: found.pop(DEFAULT_LANGUAGE), **found}


def in_order(language: str) -> list[Vocabulary]:
    """The vocabularies to read a reply with: the response's language first, then the others."""
    primary = language.split("-")[0].lower()
    every = vocabularies()
    first = [every[primary]] if primary in every else []
    return first + [v for code, v in every.items() if code != primary]


def _keywords() -> dict[str, tuple[Keyword, str]]:
    return _keywords_in(vocabulary_dir())


@cache
def _keywords_in(folder: Path) -> dict[str, tuple[Keyword, str]]:
    table: dict[str, tuple[Keyword, str]] = {}
    # An opt-out word wins over any other meaning a word has in another language.
    for kind in (Keyword.HELP, Keyword.START, Keyword.OPT_OUT):
        for vocabulary in reversed(list(_vocabularies(folder).values())):
            for word in getattr(vocabulary, kind.value):
                table[word] = (kind, vocabulary.language)
    return table


def keyword(text: str) -> tuple[Keyword, str] | None:
    """The keyword a whole message is (and the language it is a word of), or None."""
    return _keywords().get(compact(text))


# -- answers ---------------------------------------------------------------------------------------------------


OUT_OF_FIVE = re.compile(r"(?<!\d)([1-5])\s*/\s*5(?!\d)")


def _phrase(text: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\S)" + re.escape(text) + r"(?!\S)")


def _take_phrases(text: str, phrases: Iterable[tuple[str, int]]) -> tuple[str, set[int]]:
    """Remove each phrase found (longest first, whole words only); return what is left and their values."""
    found: set[int] = set()
    for phrase, value in sorted(phrases, key=lambda p: len(p[0]), reverse=True):
        if not phrase:
            continue
        pattern = _phrase(phrase)
        if pattern.search(text):
            found.add(value)
            text = pattern.sub(" ", text)
    return " ".join(text.split()), found


def _unreadable(question: Question, message: str) -> InvalidAnswer:
    return InvalidAnswer(question.id, message)


def _number(token: str) -> bool:
    """Whether ``int`` reads ``token`` (``str.isdigit`` also passes "᧚", which ``int`` refuses), and it is short."""
    return token.isdecimal() and len(token) <= 12


def read_rating(question: Question, text: str, language: str, labels: Labels) -> int:
    """A 1-5 rating, thumbs or yes/no reply as the stored value (1 = worst … 5 = best)."""
    if question.type not in ("thumbs", "yes_no"):
        text = OUT_OF_FIVE.sub(r"\1", text)  # "4/5" is a 4
    words = normalize(text)
    vocabs = in_order(language)
    phrases = [(normalize(label), int(value)) for value, label in labels(question)]
    if question.type in ("thumbs", "yes_no"):
        for v in vocabs:
            phrases += [(w, 5) for w in v.yes] + [(w, 1) for w in v.no]
            if question.type == "thumbs":
                phrases += [(w, 5) for w in v.thumbs_up] + [(w, 1) for w in v.thumbs_down]
    rest, found = _take_phrases(words, phrases)
    for token in rest.split():
        if _number(token) and question.type not in ("thumbs", "yes_no"):
            found.add(int(token))
            continue
        number = next((v.numbers[token] for v in vocabs if token in v.numbers), None)
        if number is not None and question.type not in ("thumbs", "yes_no"):
            found.add(number)
        elif not any(token in v.filler for v in vocabs):
            raise _unreadable(question, N_("Please choose one of the answers offered."))
    if len(found) != 1 or next(iter(found)) not in question.points:
        raise _unreadable(question, N_("Please choose one of the answers offered."))
    return found.pop()


def read_choices(question: Question, text: str, language: str, labels: Labels) -> tuple[str, ...]:
    """A choose-all or choose-one reply: numbers or letters in the choices' order ("1,3", "a c", "1 and 3")."""
    words = normalize(text)
    options = labels(question)
    for value, label in options:  # the whole reply is one answer's label
        if words and normalize(label) == words:
            return (value,)
    count = len(question.choices)
    vocabs = in_order(language)
    letters = "abcdefghijklmnopqrstuvwxyz"[:count]
    picked: list[int] = []
    for token in words.split():
        if any(token in v.connectors for v in vocabs):
            continue
        if _number(token):
            number = int(token)
            if 1 <= number <= count:
                picked.append(number)
            elif count <= 9 and len(set(token)) == len(token) and all(1 <= int(c) <= count for c in token):
                picked.extend(int(c) for c in token)  # "13" typed for 1 and 3
            else:
                raise _unreadable(question, N_("Please choose from the answers offered."))
        elif len(token) == 1 and token in letters:
            picked.append(letters.index(token) + 1)
        elif (number := next((v.numbers[token] for v in vocabs if token in v.numbers), 0)) and number <= count:
            picked.append(number)
        else:
            raise _unreadable(question, N_("Please choose from the answers offered."))
    if not picked:
        raise _unreadable(question, N_("Please choose from the answers offered."))
    return tuple(question.choices[n - 1].id for n in dict.fromkeys(picked))


def read_answer(question: Question, text: str, language: str, labels: Labels) -> Given:
    """One reply to ``question`` in engine terms; :class:`InvalidAnswer` when it cannot be read.

    Free text is taken as it is (an empty reply to an optional one skips it); any other question needs a reply.
    """
    if question.is_rating:
        if not normalize(text):
            raise _unreadable(question, N_("Please answer this question."))
        return Given(value=read_rating(question, text, language, labels))
    if question.type in CHOICE_TYPES:
        if not normalize(text):
            raise _unreadable(question, N_("Please answer this question."))
        return Given(choices=read_choices(question, text, language, labels))
    return Given(text=text.strip() or None)


def reader(text: str, language: str, labels: Labels) -> Callable[[Question], Given]:
    """The ``read`` callable :func:`engine.surveys.conversations.take` wants, for one incoming text."""
    return lambda question: read_answer(question, text, language, labels)
