"""The IVR's data (``ivr.yaml`` beside this module): voices per call language, gather timeouts, spoken words.

Nothing a caller hears or says is written in Python: prompts come from the flows and the gettext catalogs, and the
words the speech reader understands besides a flow's labels (numbers, yes/no, "repeat") live in ``ivr.yaml``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from engine.common.errors import ConfigError

DATA_FILE = Path(__file__).with_name("ivr.yaml")
FALLBACK_LANGUAGE = "en"
_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalize(text: str) -> str:
    """Lower-case, accents and punctuation dropped, single spaces: ``"¡Sí!"`` → ``"si"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.sub(" ", stripped).replace("_", " ").split())


@dataclass(frozen=True)
class Voice:
    """How a language is spoken and heard: Twilio's ``language`` (speech recognition too) and ``<Say>`` voice."""

    language: str
    voice: str


@dataclass(frozen=True)
class Words:
    """Spoken words of one language, normalized: number words to keys, yes/no, and asking for a repeat."""

    numbers: dict[str, int]
    yes: tuple[str, ...]
    no: tuple[str, ...]
    repeat: tuple[str, ...]
    # Each normalized word as written in ``ivr.yaml`` (accents kept), for speech-recognition hints.
    written: dict[str, str]

    def hint(self, word: str) -> str:
        return self.written.get(word, word)


@dataclass(frozen=True)
class IvrData:
    voices: dict[str, Voice]
    timeouts: dict[str, int]
    words: dict[str, Words]

    def voice(self, language: str) -> Voice:
        return self.voices.get(_primary(language)) or self.voices[FALLBACK_LANGUAGE]

    def words_for(self, language: str) -> Words:
        return self.words.get(_primary(language)) or self.words[FALLBACK_LANGUAGE]

    def timeout(self, kind: str) -> int:
        return int(self.timeouts[kind])


def _primary(language: str) -> str:
    return language.split("-")[0].lower()


def _phrases(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) and p.strip() for p in raw):
        raise ConfigError(f"{DATA_FILE.name}: {where} must be a list of words or phrases")
    return tuple(dict.fromkeys(normalize(p) for p in raw))


def parse(data: Any) -> IvrData:
    if not isinstance(data, dict) or not {"voices", "timeouts", "words"} <= set(data):
        raise ConfigError(f"{DATA_FILE.name}: expected voices, timeouts and words")
    voices = {str(lang): Voice(str(v["language"]), str(v["voice"])) for lang, v in data["voices"].items()}
    if FALLBACK_LANGUAGE not in voices:
        raise ConfigError(f"{DATA_FILE.name}: voices must include {FALLBACK_LANGUAGE!r}")
    words = {}
    for lang, raw in data["words"].items():
        numbers = {normalize(str(w)): int(n) for w, n in (raw.get("numbers") or {}).items()}
        written: dict[str, str] = {}
        for word in [*(raw.get("numbers") or {}), *(raw.get("yes") or []), *(raw.get("no") or [])]:
            written.setdefault(normalize(str(word)), str(word))  # the first spelling ("sí" before "si")
        words[str(lang)] = Words(
            numbers=numbers,
            yes=_phrases(raw.get("yes"), f"words.{lang}.yes"),
            no=_phrases(raw.get("no"), f"words.{lang}.no"),
            repeat=_phrases(raw.get("repeat"), f"words.{lang}.repeat"),
            written=written,
        )
    if FALLBACK_LANGUAGE not in words:
        raise ConfigError(f"{DATA_FILE.name}: words must include {FALLBACK_LANGUAGE!r}")
    return IvrData(voices=voices, timeouts={str(k): int(v) for k, v in data["timeouts"].items()}, words=words)


@cache
def ivr_data() -> IvrData:
    with DATA_FILE.open(encoding="utf-8") as handle:
        return parse(yaml.safe_load(handle))
