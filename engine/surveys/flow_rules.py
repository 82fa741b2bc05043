"""The A-11 rules a flow must keep (SPEC §2 rules 8 and 9), each failure naming the rule and the question.

:func:`check_flow` reads a parsed flow's raw YAML (so that a value the parser would coerce, such as
``skip_on: ivr`` or ``required: "no"``, is still seen as written) and returns ``(problems, warnings)``;
:func:`validate_paths` is what ``survey-engine flows validate`` runs over files and directories. A problem reads
``<flow id> v<version>: [question <id>: ]rule <rule>[ (<source>)]: <what is wrong>``; any problem refuses the flow,
a warning does not (a PRA approval that expires within 30 days, an SMS wording longer than one segment, ...).
"""

from __future__ import annotations

import difflib
import re
import string
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from engine.channels import installed_channels
from engine.common.errors import ConfigError
from engine.common.yaml_files import read_yaml, yaml_problem
from engine.surveys.flows import (
    BURDEN_MINUTES,
    CHOICE_TYPES,
    DEFAULT_SCALE,
    POINTS,
    RATING_TYPES,
    Flow,
    Pra,
    parse_flow,
    parse_pra,
)

MAX_QUESTIONS = 15
PRA_WARNING_DAYS = 30
SMS_SEGMENT = 160
MAX_KEYPAD_CHOICES = 9

TAGS = {
    "trust", "satisfaction", "effectiveness", "ease", "efficiency", "transparency", "humanity", "employee",
    "drivers_positive", "drivers_negative", "drivers_improve", "free_text", "other",
}  # fmt: skip
TYPES = {"likert5", "stars5", "thumbs", "choose_all", "choose_one", "text", "yes_no"}
DRIVERS = ("effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other")
LIKERT_DRIVERS = {"effectiveness", "ease", "efficiency", "transparency", "employee"}
# SPEC §6.1: the tags the A-11 file has rating columns for (``<tag>_1`` … ``<tag>_agree_pct``), and what every other
# tag a flow may carry is reported as. A tag with no columns is refused: nothing asked is silently dropped.
RATING_COLUMNS = ("satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency", "employee")
REPORTED_AS = {
    "drivers_positive": "the positive_<driver> columns (§6.1)",
    "drivers_negative": "the negative_<driver> columns (§6.1)",
    "drivers_improve": "the negative_<driver> columns (§6.1)",
    "free_text": "the response-level file's question_4 (§6.2)",
}
NO_COLUMNS = {
    "humanity": "ask humanity as a choice (driver: humanity) of the choose-all driver questions, reported as "
    "positive_humanity / negative_humanity",
    "other": "leave the question out, or offer 'other' as a choice (driver: other) of a choose-all driver question",
}
# A-11 280.7's sentence bases of the two statements it protects, word for word; [...] is what the agency fills in.
# "Agencies should use the statements below as a sentence base and make only minor edits. Any requested
# modification to the wording of these statements must first be discussed with OMB" (SPEC §2 rule 8).
WORDING_BASES = {
    "trust": (
        "This interaction increased my trust in [Program/Service name].",
        "I trust [Agency/Program/Service name] to fulfill our country's commitment to [relevant population].",
    ),
    "satisfaction": (
        "Please rate your experience [5 star option].",
        "I am satisfied with the service I received from [program/service name].",
    ),
}
OPTIONAL_SLOTS = {"[5 star option]"}
APPROVAL_WHEN = re.compile(r"\b(19|20)\d\d\b")
FIVE_POINT = {"likert5", "stars5"}
TRUST_TYPES = {"2021": FIVE_POINT, "2024": FIVE_POINT | {"thumbs"}}
EDITIONS = ("2021", "2024")
DRIVER_FORMS = ("likert", "improve", "positive_negative")
IVR_KEYPADS = ("one_is_best", "one_is_worst")
# The keys a flow holds per channel come from the installed channels (``Channel.wording_key``, their names: see
# :func:`wording_channels`, :func:`skip_channels`) and these of the engine's own: ``web`` is the survey page;
# a message's ``default`` wording, and ``sms_link``, the SMS invitation in link mode (it places ``{link}`` itself).
PAGE_CHANNELS = ("web",)
MESSAGE_KEYS = ("default", "sms_link")
REQUIRED_MESSAGES = ("invitation", "intro", "thanks")
QUESTION_PLACEHOLDERS = {"service"}
MESSAGE_PLACEHOLDERS = {"agency", "service", "minutes", "duration", "omb_control_number", "pra_expiration", "link"}
HOW_LONG_PLACEHOLDERS = ("{duration}", "{minutes}")

TOP_KEYS = {
    "id", "version", "title", "edition", "default_language", "languages", "minutes", "driver_form",
    "positive_from", "ivr_keypad", "pra", "scales", "messages", "questions",
}  # fmt: skip
PRA_KEYS = {"omb_control_number", "expiration_date", "burden_statement", "burden_minutes"}
QUESTION_KEYS = {
    "id", "a11", "type", "text", "wording", "scale", "choices", "show_if", "skip_on", "required", "omb_wording_approval",
}  # fmt: skip
CHOICE_KEYS = {"id", "label", "driver"}
SHOW_IF_KEYS = {"question", "rating"}

SLUG = re.compile(r"[a-z][a-z0-9_-]*")
OMB_CONTROL_NUMBER = re.compile(r"\d{4}-\d{4}", re.ASCII)

LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")

# Where each rule comes from; a problem names the rule and, after it, this source.
SOURCES = {
    "short-survey": "A-11 280.7",
    "trust": "A-11 280.7",
    "satisfaction": "A-11 280.7",
    "drivers": "A-11 280.7",
    "wording-base": "A-11 280.7",
    "report-columns": "SPEC §6.1",
    "driver-choices": "A-11 280.7",
    "free-text": "A-11 280.7",
    "pra": "5 CFR 1320.8(b)(3)",
}


def omb_number_problem(number: object) -> str | None:
    """Why ``number`` is not an OMB control number as a PRA block must give it (a quoted "NNNN-NNNN"), or ``None``:
    the one rule for a flow's block and a service's own (shown to every respondent as the survey's clearance)."""
    if isinstance(number, str) and OMB_CONTROL_NUMBER.fullmatch(number):
        return None
    return f'omb_control_number {number!r} must be a quoted string like "1090-0011"'


@dataclass
class _Report:
    name: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def _line(self, rule: str, message: str, question: Any) -> str:
        where = f"question {question}: " if question is not None else ""
        source = f" ({SOURCES[rule]})" if rule in SOURCES else ""
        return f"{self.name}: {where}rule {rule}{source}: {message}"

    def problem(self, rule: str, message: str, question: Any = None) -> None:
        self.problems.append(self._line(rule, message, question))

    def warn(self, rule: str, message: str, question: Any = None) -> None:
        self.warnings.append(self._line(rule, message, question))


def wording_channels() -> tuple[str, ...]:
    """The keys a question's ``wording:`` may hold: each installed channel's ``wording_key`` (ivr, sms, kiosk)."""
    return tuple(dict.fromkeys(c.wording_key for c in installed_channels().values() if c.wording_key))


def skip_channels() -> tuple[str, ...]:
    """The channels a question's ``skip_on:`` may name (and a message may have a wording for): the web page, each
    installed channel that is not test-only, and each wording key."""
    names = [name for name, c in installed_channels().items() if not c.test_only]
    return tuple(dict.fromkeys([*names, *PAGE_CHANNELS, *wording_channels()]))


def message_channels() -> tuple[str, ...]:
    """The keys a ``messages.<name>`` mapping may hold."""
    return (MESSAGE_KEYS[0], *skip_channels(), *MESSAGE_KEYS[1:])


def _unknown_keys(given: Iterable[Any], allowed: set[str]) -> list[str]:
    """Each unknown key, with the allowed key it most likely misspells."""
    out = []
    for key in sorted(set(map(str, given)) - allowed):
        guess = difflib.get_close_matches(key, sorted(allowed), n=1)
        out.append(f"{key!r} (did you mean {guess[0]!r}?)" if guess else repr(key))
    return out


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _text(value: Any) -> str:
    """``value`` stripped when it is a string, else empty."""
    return value.strip() if isinstance(value, str) else ""


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _choices(q: dict[str, Any]) -> list[dict[Any, Any]]:
    return [c for c in _items(q.get("choices")) if isinstance(c, dict)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _placeholders(template: str) -> set[str] | None:
    """The ``{names}`` a template uses, or None when its braces do not parse."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError:
        return None


def _check_template(report: _Report, template: str, allowed: set[str], where: str, question: Any = None) -> None:
    names = _placeholders(template)
    if names is None:
        report.problem("placeholders", f"{where}: unbalanced braces in {template!r}", question)
        return
    unknown = sorted(names - allowed)
    if unknown:
        allowed_text = ", ".join("{" + name + "}" for name in sorted(allowed))
        shown = ", ".join("{" + name + "}" for name in unknown)
        report.problem("placeholders", f"{where}: unknown placeholder {shown} (allowed: {allowed_text})", question)


def question_shape_problems(questions: Any) -> list[tuple[Any, str]]:
    """The question shapes :func:`engine.surveys.flows.parse_flow` cannot read or silently misreads: (question, message)."""
    found: list[tuple[Any, str]] = []
    if not isinstance(questions, list):
        return found
    for number, q in enumerate(questions, start=1):
        if not isinstance(q, dict):
            found.append((number, "a question is a mapping with an id"))
            continue
        qid = q.get("id", number)
        choices = q.get("choices")
        if choices is not None and not (isinstance(choices, list) and all(isinstance(c, dict) for c in choices)):
            found.append((qid, "choices must be a list of {id, label, driver} mappings"))
        if q.get("wording") is not None and not isinstance(q["wording"], dict):
            keys = ", ".join(wording_channels())
            found.append((qid, f"wording must be a mapping of channel to wording ({{{keys}}})"))
        if q.get("show_if") is not None and not isinstance(q["show_if"], dict):
            found.append((qid, "show_if must be a mapping {question, rating}"))
        if q.get("skip_on") is not None and not isinstance(q["skip_on"], list):
            found.append((qid, "skip_on must be a list of channels, e.g. [ivr]"))
    return found


def _keypad_mentions(wording: str, labels: dict[int, str]) -> list[tuple[int, int]]:
    """(key, point) pairs where the wording puts a digit right before a point's label ("1 for strongly disagree")."""
    found: list[tuple[int, int]] = []
    for point, label in labels.items():
        pattern = rf"\b([1-9])\s*(?:\(\s*|for\s+|if\s+you\s+|if\s+|=\s*|-\s*|means\s+|is\s+)?{re.escape(label)}\b"
        found.extend((int(m.group(1)), point) for m in re.finditer(pattern, wording, re.IGNORECASE))
    return found


_SERVICE_WORD = "servicename"
_SLOT = re.compile(r"\[[^\]]+\]")


def _normal(text: str) -> str:
    """``text`` for the sentence-base comparison: lower case, no punctuation, single spaces, ``{service}`` a word."""
    text = text.replace("{service}", f" {_SERVICE_WORD} ").lower()
    return " ".join(re.sub(r"[^\w\s]", "", text).split())


def _base_pattern(base: str) -> re.Pattern[str]:
    """A sentence base as a pattern over :func:`_normal` text: each ``[...]`` slot holds one to eight words (the
    ``{service}`` placeholder is one), an optional slot none to eight."""
    pattern, position = "", 0
    for slot in _SLOT.finditer(base):
        words = _normal(base[position : slot.start()])
        if words:
            pattern += (" " if pattern else "") + re.escape(words)
        optional = slot.group(0) in OPTIONAL_SLOTS
        if pattern:
            pattern += r"(?: \S+){0,8}" if optional else r"(?: \S+){1,8}"
        else:
            pattern += r"(?:\S+ ?){0,8}" if optional else r"\S+(?: \S+){0,7}"
        position = slot.end()
    words = _normal(base[position:])
    if words:
        pattern += (" " if pattern else "") + re.escape(words)
    return re.compile(f"^{pattern}$")


def keeps_sentence_base(tag: str, statement: str) -> bool:
    """Whether ``statement`` keeps one of A-11 280.7's sentence bases for ``tag`` (SPEC §2 rule 8)."""
    said = _normal(statement)
    return any(_base_pattern(base).match(said) for base in WORDING_BASES.get(tag, ()))


def first_sentence(text: str) -> str:
    """The statement a channel wording opens with: its text up to the first sentence end."""
    return re.split(r"(?<=[.?!])\s+", text.strip(), maxsplit=1)[0]


def _expected_key(points: tuple[int, ...], point: int, one_is_best: bool) -> int:
    ordered = sorted(points, reverse=one_is_best)
    return ordered.index(point) + 1


def burden_problems(block: dict[str, Any], fallback_minutes: Any = None) -> list[str]:
    """A PRA block whose ``burden_minutes`` (what every surface says) disagrees with its burden statement, or that
    says nowhere how long the survey takes (``fallback_minutes``: a flow's ``minutes``)."""
    given = block.get("burden_minutes")
    stated = BURDEN_MINUTES.search(str(block.get("burden_statement", "")))
    if _is_int(given) and stated and int(stated.group(1)) != given:
        return [f"burden_minutes {given} disagrees with the burden statement ({stated.group(0)}): every surface says "
                "burden_minutes, so make them one figure"]  # fmt: skip
    if given is None and not stated and not _is_int(fallback_minutes):
        return ["the block says nowhere how long the survey takes: add burden_minutes (the figure of the burden "
                "statement, which every surface repeats)"]  # fmt: skip
    return []


class _FlowCheck:
    def __init__(self, flow: Flow, today: date, check_expiry: bool = True) -> None:
        self.check_expiry = check_expiry
        self.flow = flow
        self.raw = flow.raw
        self.today = today
        self.report = _Report(f"{flow.id} v{flow.version}")
        self.edition = str(self.raw.get("edition", ""))
        self.form = self.raw.get("driver_form")
        raw_questions = self.raw.get("questions")
        self.questions: list[dict[str, Any]] = (
            [q for q in raw_questions if isinstance(q, dict)] if isinstance(raw_questions, list) else []
        )
        self.scales: dict[str, Any] = self.raw["scales"] if isinstance(self.raw.get("scales"), dict) else {}

    def run(self) -> tuple[list[str], list[str]]:
        self.top_level()
        self.pra()
        self.languages()
        self.scales_block()
        self.messages()
        self.questions_each()
        self.trust_and_satisfaction()
        self.sentence_bases()
        self.report_columns()
        self.drivers()
        self.free_text()
        return self.report.problems, self.report.warnings

    # -- the flow as a whole -------------------------------------------------------------------------------------

    def top_level(self) -> None:
        r, raw = self.report, self.raw
        unknown = _unknown_keys(raw, TOP_KEYS)
        if unknown:
            r.problem("format", f"unknown top-level key {', '.join(unknown)}")
        if not SLUG.fullmatch(str(raw.get("id", ""))):
            r.problem("format", f"id {raw.get('id')!r} must be a slug (lower-case letters, digits, - and _)")
        if raw.get("version") is None or not str(raw["version"]).strip():
            r.problem("format", 'version must be set, e.g. "1"')
        if not _is_text(raw.get("title")):
            r.problem("wording", "title must be non-empty English text")
        if self.edition not in EDITIONS:
            r.problem("edition", f'edition {raw.get("edition")!r} must be "2021" or "2024"')
        if self.form not in DRIVER_FORMS:
            r.problem("drivers", f"driver_form {self.form!r} must be one of {', '.join(DRIVER_FORMS)}")
        if raw.get("ivr_keypad") not in IVR_KEYPADS:
            r.problem("ivr-keypad", f"ivr_keypad {raw.get('ivr_keypad')!r} must be one_is_best or one_is_worst")
        if "positive_from" in raw and not (_is_int(raw["positive_from"]) and 2 <= raw["positive_from"] <= 5):
            r.problem("positive-from", f"positive_from {raw['positive_from']!r} must be a whole number from 2 to 5")
        if "minutes" in raw and not (_is_int(raw["minutes"]) and raw["minutes"] > 0):
            r.problem("format", f"minutes {raw['minutes']!r} must be a positive whole number")
        if not self.questions:
            r.problem("format", "questions must be a non-empty list")
        if len(self.questions) > MAX_QUESTIONS:
            r.problem("short-survey", f"{len(self.questions)} questions, at most {MAX_QUESTIONS}")

    def pra(self) -> None:
        r = self.report
        block = self.raw.get("pra")
        if not isinstance(block, dict):  # parse_flow refuses this; a Flow built otherwise is still checked
            r.problem("pra", "the pra block {omb_control_number, expiration_date, burden_statement} is missing")
            return
        unknown = _unknown_keys(block, PRA_KEYS)
        if unknown:
            r.problem("format", f"unknown pra key {', '.join(unknown)}")
        if problem := omb_number_problem(block.get("omb_control_number")):
            r.problem("pra", problem)
        if not _is_text(block.get("burden_statement")):
            r.problem("pra", "burden_statement must be non-empty English text")
        expiration = block.get("expiration_date")
        if isinstance(expiration, datetime):
            r.problem("pra", f"expiration_date {expiration} must be a date (YYYY-MM-DD), not a date and time")
            return
        ends = self.flow.pra.expiration_date
        if not self.check_expiry:
            pass  # at start-up an expired approval only decides pra_expired (SPEC §2 rule 9)
        elif self.flow.pra.expired(self.today):
            r.problem("pra", f"PRA approval expired on {ends}: nothing may be sent with this flow")
        elif ends - self.today <= timedelta(days=PRA_WARNING_DAYS):
            r.warn("pra", f"PRA approval expires on {ends} ({(ends - self.today).days} days): renew it")
        minutes = self.raw.get("minutes")
        stated = BURDEN_MINUTES.search(str(block.get("burden_statement", "")))
        for problem in burden_problems(block, self.raw.get("minutes")):
            r.problem("pra", problem)
        if _is_int(minutes) and stated and int(stated.group(1)) != minutes:
            r.warn("pra", f"the burden statement says {stated.group(0)} but minutes is {minutes}")

    def languages(self) -> None:
        r, raw = self.report, self.raw
        default = raw.get("default_language", "en")
        languages = raw.get("languages", [default])
        if not isinstance(languages, list) or not languages or not all(isinstance(x, str) for x in languages):
            r.problem("languages", "languages must be a non-empty list of language tags, e.g. [en, es]")
            return
        for tag in languages:
            if not LANGUAGE_TAG.fullmatch(tag):
                r.problem("languages", f"{tag!r} is not a language tag (BCP 47, e.g. en, es, zh-Hant)")
        repeated = sorted(tag for tag, n in Counter(languages).items() if n > 1)
        if repeated:
            r.problem("languages", f"language listed twice: {', '.join(repeated)}")
        if default not in languages:
            r.problem("languages", f"default_language {default!r} is not among languages {languages}")

    def scales_block(self) -> None:
        r = self.report
        if "scales" in self.raw and not isinstance(self.raw["scales"], dict):
            r.problem("scales", "scales must be a mapping of scale name to {point: label}")
            return
        for name, labels in self.scales.items():
            if not isinstance(labels, dict) or not labels:
                r.problem("scales", f"scale {name!r} must map points (1-5) to labels")
                continue
            for point, label in labels.items():
                if not (_is_int(point) or (isinstance(point, str) and point.isdigit())) or not 1 <= int(point) <= 5:
                    r.problem("scales", f"scale {name!r}: point {point!r} is not one of 1-5")
                if not _is_text(label):
                    r.problem("wording", f"scale {name!r}: point {point!r} has no English label")
        used = {self._scale_name(q) for q in self.questions if q.get("type") in RATING_TYPES}
        for name in sorted(set(map(str, self.scales)) - used):
            r.warn("scales", f"scale {name!r} is not used by any question")

    def messages(self) -> None:
        r = self.report
        messages = self.raw.get("messages")
        if not isinstance(messages, dict):
            r.problem("messages", f"messages must be a mapping holding {', '.join(REQUIRED_MESSAGES)}")
            return
        for name in REQUIRED_MESSAGES:
            if name not in messages:
                r.problem("messages", f"messages.{name} is missing (a default wording at least)")
        for name, templates in messages.items():
            if not isinstance(templates, dict):
                r.problem("messages", f"messages.{name} must be a mapping of channel to wording (default, sms, ...)")
                continue
            unknown = _unknown_keys(templates, set(message_channels()))
            if unknown:
                r.problem("format", f"messages.{name}: unknown channel {', '.join(unknown)}")
            if "default" not in templates:
                r.problem("messages", f"messages.{name} has no default wording")
            for channel, template in templates.items():
                if not _is_text(template):
                    r.problem("wording", f"messages.{name}.{channel} must be non-empty English text")
                    continue
                _check_template(r, template, MESSAGE_PLACEHOLDERS, f"messages.{name}.{channel}")
        for name, templates in messages.items():
            for channel, template in _mapping(templates).items():
                if isinstance(template, str) and "{minutes}" in template:
                    r.warn("placeholders", f"messages.{name}.{channel}: {{minutes}} is the bare number; "
                           "{duration} says it with the plural form of each language (1 minute, 2 minutes)")  # fmt: skip
        # The first text says who asks, how long, the control number and how to stop (SPEC §2 rule 9, §4 sms).
        invitation = _mapping(messages.get("invitation"))
        for channel in ("sms", "sms_link"):
            sms = _text(invitation.get(channel))
            if not sms:
                continue
            where = f"messages.invitation.{channel}"
            if "{omb_control_number}" not in sms:
                r.problem("pra", f"{where} must carry the OMB control number ({{omb_control_number}})")
            if "STOP" not in sms:
                r.problem("messages", f"{where} must say how to opt out (Reply STOP to opt out)")
            if "{agency}" not in sms:
                r.problem("messages", f"{where} must say who is asking ({{agency}})")
            if not any(p in sms for p in HOW_LONG_PLACEHOLDERS):
                r.problem("pra", f"{where} must say how long the survey takes ({{duration}})")

    # -- each question -------------------------------------------------------------------------------------------

    def _scale_name(self, q: dict[str, Any]) -> str:
        return str(q.get("scale") or DEFAULT_SCALE.get(str(q.get("type")), ""))

    def questions_each(self) -> None:
        r = self.report
        for qid, message in question_shape_problems(self.raw.get("questions")):
            r.problem("format", message, qid)
        ids = [q.get("id") for q in self.questions]
        for dup in sorted({str(i) for i in ids if ids.count(i) > 1}):
            r.problem("unique-ids", "this id is used by more than one question", dup)
        earlier: dict[str, dict[str, Any]] = {}
        for q in self.questions:
            self.question(q, earlier)
            earlier.setdefault(str(q.get("id")), q)

    def question(self, q: dict[str, Any], earlier: dict[str, dict[str, Any]]) -> None:
        r = self.report
        qid = q.get("id", "?")
        qtype, tag = q.get("type"), q.get("a11")
        unknown = _unknown_keys(q, QUESTION_KEYS)
        if unknown:
            r.problem("format", f"unknown question key {', '.join(unknown)}", qid)
        if not SLUG.fullmatch(str(qid)):
            r.problem("format", f"id {qid!r} must be a slug (lower-case letters, digits, - and _)", qid)
        if tag not in TAGS:
            r.problem("a11-tag", f"unknown a11 tag {tag!r} (one of {', '.join(sorted(TAGS))})", qid)
        if qtype not in TYPES:
            r.problem("type", f"unknown type {qtype!r} (one of {', '.join(sorted(TYPES))})", qid)
        if "required" in q and not isinstance(q["required"], bool):
            r.problem("format", f"required {q['required']!r} must be true or false", qid)

        # English wording, for the web page and per channel
        text = _text(q.get("text"))
        if not text:
            r.problem("wording", "the question has no English text", qid)
        else:
            _check_template(r, text, QUESTION_PLACEHOLDERS, "text", qid)
        skip_on = _items(q.get("skip_on"))
        skippable = skip_channels()
        for channel in skip_on:
            if channel not in skippable:
                r.problem("skip-on", f"unknown channel {channel!r} in skip_on (one of {', '.join(skippable)})", qid)
        wording = _mapping(q.get("wording"))
        worded = wording_channels()
        unknown = _unknown_keys(wording, set(worded))
        if unknown:
            r.problem("format", f"unknown wording channel {', '.join(unknown)} (one of {', '.join(worded)})", qid)
        for channel, value in wording.items():
            words = _text(value)
            if not words:
                r.problem("wording", f"wording.{channel} must be non-empty English text", qid)
                continue
            _check_template(r, words, QUESTION_PLACEHOLDERS, f"wording.{channel}", qid)
            if channel in skip_on:
                r.warn("wording", f"wording.{channel} is never used: the question is skipped on {channel}", qid)
        sms = _text(wording.get("sms")) or text
        if "sms" not in skip_on and len(sms) > SMS_SEGMENT:
            r.warn(
                "sms-length", f"the SMS wording is {len(sms)} characters, over one {SMS_SEGMENT}-character segment", qid
            )

        self.scale(q, qid, wording)
        self.choices(q, qid, skip_on)
        self.show_if(q, qid, earlier)

    def scale(self, q: dict[str, Any], qid: Any, wording: dict[str, Any]) -> None:
        r = self.report
        qtype = str(q.get("type"))
        if qtype not in RATING_TYPES:
            if q.get("scale") is not None:
                r.problem("scales", f"a {qtype} question has no scale (scale {q['scale']!r})", qid)
            return
        name = self._scale_name(q)
        labels = self.scales.get(name)
        if not isinstance(labels, dict):
            r.problem("scales", f"scale {name!r} is not defined under scales", qid)
            return
        points = POINTS[qtype]
        try:
            by_point = {int(p): _text(label) for p, label in labels.items()}
        except (TypeError, ValueError):
            return  # reported with the scale itself
        missing = [p for p in points if not by_point.get(p)]
        if missing:
            r.problem("scales", f"scale {name!r} has no label for point {', '.join(map(str, missing))}", qid)
        extra = sorted(set(by_point) - set(points))
        if extra:
            r.problem("scales", f"scale {name!r} labels point {', '.join(map(str, extra))}, not a {qtype} point", qid)
        # keypad order: IVR wording follows ivr_keypad; SMS replies are stored values (1 = worst)
        one_is_best = self.raw.get("ivr_keypad") == "one_is_best"
        wanted = {p: label for p, label in by_point.items() if p in points and label}
        for channel, best_first in (("ivr", one_is_best), ("sms", False)):
            words = _text(wording.get(channel))
            if not words:
                continue
            for key, point in _keypad_mentions(words, wanted):
                expected = _expected_key(points, point, best_first)
                if key != expected:
                    order = "ivr_keypad " + str(self.raw.get("ivr_keypad")) if channel == "ivr" else "SMS replies"
                    r.problem(
                        "ivr-keypad",
                        f"wording.{channel} says {key} for {wanted[point]!r}, but with {order} that is key {expected}",
                        qid,
                    )

    def choices(self, q: dict[str, Any], qid: Any, skip_on: list[Any]) -> None:
        r = self.report
        qtype = q.get("type")
        choices = _choices(q)
        if qtype not in CHOICE_TYPES:
            if choices:
                r.problem("choices", f"a {qtype} question has no choices", qid)
            return
        if len(choices) < 2:
            r.problem("choices", f"a {qtype} question needs at least two choices", qid)
        if "ivr" not in skip_on and len(choices) > MAX_KEYPAD_CHOICES:
            r.problem("choices", f"{len(choices)} choices do not fit the IVR keypad (1-9): add skip_on: [ivr]", qid)
        ids = [c.get("id") for c in choices]
        for dup in sorted({str(i) for i in ids if ids.count(i) > 1}):
            r.problem("choices", f"choice id {dup!r} is used twice", qid)
        for c in choices:
            cid = c.get("id")
            unknown = _unknown_keys(c, CHOICE_KEYS)
            if unknown:
                r.problem("format", f"choice {cid!r}: unknown key {', '.join(unknown)}", qid)
            if not SLUG.fullmatch(str(cid)):
                r.problem("choices", f"choice id {cid!r} must be a slug", qid)
            label = _text(c.get("label"))
            if not label:
                r.problem("wording", f"choice {cid!r} has no English label", qid)
            else:
                _check_template(r, label, QUESTION_PLACEHOLDERS, f"choice {cid!r}", qid)
            driver = c.get("driver")
            if driver is None and qtype == "choose_all":
                r.problem("driver-choices", f"choice {cid!r} names no A-11 driver ({', '.join(DRIVERS)})", qid)
            elif driver is not None and driver not in DRIVERS:
                r.problem(
                    "driver-choices", f"choice {cid!r}: {driver!r} is not an A-11 driver ({', '.join(DRIVERS)})", qid
                )

    def show_if(self, q: dict[str, Any], qid: Any, earlier: dict[str, dict[str, Any]]) -> None:
        r = self.report
        condition = q.get("show_if")
        if not isinstance(condition, dict):
            return
        unknown = _unknown_keys(condition, SHOW_IF_KEYS)
        if unknown:
            r.problem("format", f"show_if: unknown key {', '.join(unknown)}", qid)
        parent_id = condition.get("question")
        parent = earlier.get(str(parent_id))
        if parent is None:
            r.problem("show-if", f"show_if refers to {parent_id!r}, which is not an earlier question", qid)
        elif parent.get("type") not in RATING_TYPES:
            r.problem("show-if", f"show_if refers to {parent_id!r}, a {parent.get('type')} question, not a rating", qid)
        if condition.get("rating") not in ("positive", "negative"):
            r.problem("show-if", f"show_if rating {condition.get('rating')!r} must be positive or negative", qid)

    # -- the A-11 content --------------------------------------------------------------------------------------

    def _tagged(self, *tags: str) -> list[dict[str, Any]]:
        return [q for q in self.questions if q.get("a11") in tags]

    def trust_and_satisfaction(self) -> None:
        r = self.report
        allowed = TRUST_TYPES.get(self.edition, FIVE_POINT)
        trust = self._tagged("trust")
        if not trust:
            r.problem("trust", "no trust question (a11: trust)")
        elif len(trust) > 1:
            r.problem(
                "trust", f"exactly one trust question, found {len(trust)}: {', '.join(str(q.get('id')) for q in trust)}"
            )
        for q in trust:
            if q.get("type") not in allowed:
                kinds = "likert5 or stars5" + (" or thumbs" if "thumbs" in allowed else "")
                r.problem("trust", f"edition {self.edition} asks trust as {kinds}, not {q.get('type')}", q.get("id"))
        satisfaction = self._tagged("satisfaction")
        if self.edition == "2021" and not satisfaction:
            r.problem("satisfaction", "edition 2021 needs a satisfaction question (a11: satisfaction)")
        if len(satisfaction) > 1:
            ids = ", ".join(str(q.get("id")) for q in satisfaction)
            r.problem("satisfaction", f"at most one satisfaction question, found {len(satisfaction)}: {ids}")
        for q in satisfaction:
            if q.get("type") not in FIVE_POINT:
                r.problem(
                    "satisfaction",
                    f"satisfaction is a 5-point question (likert5 or stars5), not {q.get('type')}",
                    q.get("id"),
                )
        for q in trust + satisfaction:
            rule = str(q.get("a11"))
            if q.get("skip_on"):
                r.problem(rule, f"the {rule} question is asked on every channel (remove skip_on)", q.get("id"))
            if q.get("show_if"):
                r.problem(rule, f"the {rule} question is asked of everyone (remove show_if)", q.get("id"))

    def sentence_bases(self) -> None:
        """Trust and satisfaction keep A-11 280.7's sentence base, on the web and on every channel, unless OMB
        agreed to the change (``omb_wording_approval``). A channel wording (IVR, SMS, kiosk) is compared by the
        statement it opens with: what follows is how to answer in that medium ("Press 1 for ..."), not the
        statement."""
        r = self.report
        for q in self.questions:
            tag, qid = str(q.get("a11")), q.get("id")
            approval = q.get("omb_wording_approval")
            if approval is not None:
                if tag not in WORDING_BASES:
                    r.problem("wording-base", "omb_wording_approval belongs to the trust and satisfaction "
                              "statements only (other wording may be adapted freely)", qid)  # fmt: skip
                elif not _is_text(approval) or not APPROVAL_WHEN.search(str(approval)):
                    r.problem("wording-base", "omb_wording_approval is a sentence saying what OMB agreed to and "
                              "when (with the date), e.g. 'OMB agreed to this wording on 2026-03-02'", qid)  # fmt: skip
                continue
            if tag not in WORDING_BASES:
                continue
            bases = " or ".join(repr(base) for base in WORDING_BASES[tag])
            given = [("text", _text(q.get("text")), False)]
            given += [(f"wording.{ch}", _text(w), True) for ch, w in _mapping(q.get("wording")).items()]
            for where, words, medium in given:
                # the web text is the statement alone; a channel wording may go on to say how to answer
                statement = first_sentence(words) if medium else words
                alone = medium or first_sentence(words) == words
                if words and not (alone and keeps_sentence_base(tag, statement)):
                    r.problem(
                        "wording-base",
                        f"the {tag} statement changes the A-11 sentence base: the flow's {where} reads "
                        f"{statement!r}, the base is {bases} (only minor edits: case, punctuation, spacing, the "
                        "{service} name); any other change must first be agreed with OMB, then add "
                        "omb_wording_approval: '<what OMB agreed to, and when>'",
                        qid,
                    )

    def report_columns(self) -> None:
        """Every tag a flow carries is reported (SPEC §6.1, §6.2): a tag without columns is refused."""
        r = self.report
        for q in self.questions:
            tag = str(q.get("a11"))
            if tag in NO_COLUMNS:
                r.problem(
                    "report-columns",
                    f"a question tagged {tag!r} has no columns in the A-11 file, so its answers would be asked and "
                    f"dropped (rating columns: {', '.join(RATING_COLUMNS)}): {NO_COLUMNS[tag]}",
                    q.get("id"),
                )

    def drivers(self) -> None:
        r, form = self.report, self.form
        if self.edition == "2024" and form != "positive_negative":
            r.problem("drivers", f"edition 2024 uses driver_form positive_negative, not {form}")
        per_driver = self._tagged(*LIKERT_DRIVERS)
        positive = self._tagged("drivers_positive")
        negative = self._tagged("drivers_negative")
        improve = self._tagged("drivers_improve")
        for q in per_driver:
            if form != "likert":
                r.problem("drivers", f"a per-driver question belongs to driver_form likert, not {form}", q.get("id"))
            elif q.get("type") not in FIVE_POINT:
                r.problem(
                    "drivers", f"a driver question is 5-point (likert5 or stars5), not {q.get('type')}", q.get("id")
                )
        for q in positive + negative + improve:
            if q.get("type") != "choose_all":
                r.problem("drivers", f"a {q.get('a11')} question is choose_all, not {q.get('type')}", q.get("id"))
            drivers = [c.get("driver") for c in _choices(q) if c.get("driver")]
            for dup in sorted({str(d) for d in drivers if drivers.count(d) > 1}):
                r.problem("driver-choices", f"driver {dup!r} is offered by more than one choice", q.get("id"))
        if form == "likert":
            if not per_driver:
                tags = ", ".join(sorted(LIKERT_DRIVERS))
                r.problem("drivers", f"driver_form likert needs a 5-point question per driver used ({tags})")
            counts = Counter(str(q.get("a11")) for q in per_driver)
            for tag in sorted(t for t, n in counts.items() if n > 1):
                r.problem("drivers", f"driver {tag!r} is asked by {counts[tag]} questions, one is enough")
            for q in positive + negative + improve:
                r.problem("drivers", f"a {q.get('a11')} question does not belong to driver_form likert", q.get("id"))
        elif form == "improve":
            if len(improve) != 1:
                r.problem(
                    "drivers", f"driver_form improve needs exactly one drivers_improve choose_all, found {len(improve)}"
                )
            for q in positive + negative:
                r.problem("drivers", f"a {q.get('a11')} question does not belong to driver_form improve", q.get("id"))
        elif form == "positive_negative":
            self._positive_negative(positive, negative, improve)

    def _positive_negative(
        self, positive: list[dict[str, Any]], negative: list[dict[str, Any]], improve: list[dict[str, Any]]
    ) -> None:
        r = self.report
        for tag, found in (("drivers_positive", positive), ("drivers_negative", negative)):
            if len(found) != 1:
                r.problem(
                    "drivers", f"driver_form positive_negative needs exactly one {tag} choose_all, found {len(found)}"
                )
        for q in improve:
            r.problem(
                "drivers", "a drivers_improve question does not belong to driver_form positive_negative", q.get("id")
            )
        both = positive + negative
        to_everyone = [q for q in both if not q.get("show_if")]
        if self.edition == "2021" and to_everyone:
            # A-11 280.7's third way: both choose-all questions asked to every respondent.
            if len(to_everyone) != len(both):
                r.problem(
                    "drivers",
                    "ask both choose-all driver questions to everyone (no show_if) or both after the rating, "
                    "not one of each",
                )
            return
        parents = set()
        for rating, found in (("positive", positive), ("negative", negative)):
            for q in found:
                condition = _mapping(q.get("show_if"))
                if condition.get("rating") != rating:
                    r.problem(
                        "drivers",
                        f"shown after a {rating} rating: add show_if {{question: trust, rating: {rating}}}",
                        q.get("id"),
                    )
                    continue
                parent = next((p for p in self.questions if p.get("id") == condition.get("question")), None)
                if parent is not None and parent.get("a11") not in ("trust", "satisfaction"):
                    r.problem(
                        "drivers",
                        f"shown after the trust (or satisfaction) rating, not after {parent.get('id')!r}",
                        q.get("id"),
                    )
                parents.add(str(condition.get("question")))
                if parent is not None and parent.get("type") in FIVE_POINT and "positive_from" not in self.raw:
                    r.warn(
                        "positive-from",
                        f"positive_from is not set: ratings from 4 up on {parent.get('id')!r} count as positive",
                        q.get("id"),
                    )
        if len(parents) > 1:
            r.problem(
                "drivers",
                f"the positive and negative driver questions follow different ratings ({', '.join(sorted(parents))})",
            )
        if self.edition == "2024":
            for q in positive + negative:
                drivers = {c.get("driver") for c in _choices(q)}
                missing = [d for d in DRIVERS if d not in drivers]
                extra = sorted(str(d) for d in drivers - set(DRIVERS) - {None})
                if missing or extra:
                    detail = "; ".join(
                        part
                        for part in (
                            f"missing {', '.join(missing)}" if missing else "",
                            f"not allowed {', '.join(extra)}" if extra else "",
                        )
                        if part
                    )
                    r.problem(
                        "driver-choices",
                        f"edition 2024 offers exactly the drivers {', '.join(DRIVERS)} ({detail})",
                        q.get("id"),
                    )

    def free_text(self) -> None:
        r = self.report
        free = [q for q in self.questions if q.get("type") == "text"]
        if len(free) != 1:
            ids = f" ({', '.join(str(q.get('id')) for q in free)})" if free else ""
            r.problem("free-text", f"exactly one free-text question (type text), found {len(free)}{ids}")
        for q in free:
            qid = q.get("id")
            if q.get("a11") != "free_text":
                r.problem("free-text", f"a text question is tagged a11: free_text, not {q.get('a11')!r}", qid)
            if q.get("required") is True:
                r.problem("free-text", "the free-text answer is optional: remove required: true", qid)
            skip_on = _items(q.get("skip_on"))
            if "ivr" not in skip_on:
                r.problem("free-text", "the free-text question is not asked on IVR: add skip_on: [ivr]", qid)
        for q in self._tagged("free_text"):
            if q.get("type") != "text":
                r.problem("free-text", f"a free_text question is of type text, not {q.get('type')!r}", q.get("id"))


def check_flow(flow: Flow, today: date, check_expiry: bool = True) -> tuple[list[str], list[str]]:
    """Return (problems, warnings) for one flow: any problem refuses it (SPEC §2 rules 8 and 9).

    ``check_expiry=False`` is the start-up check: an expired PRA approval does not stop the service, it makes
    the flow's transactions ``pra_expired``.
    """
    return _FlowCheck(flow, today, check_expiry).run()


def _parse_problem(source: str, message: str) -> str:
    """A parser's ConfigError as a problem line that names a rule (``rule format`` unless it names one)."""
    if " rule " in f" {message}":
        return message
    prefix = f"{source}: "
    rest = message[len(prefix) :] if message.startswith(prefix) else message
    return f"{source}: rule format: {rest}"


def validate_paths(paths: list[str], today: date | None = None) -> tuple[list[str], list[str], int]:
    """Check every flow file under ``paths`` (files or directories of ``*.yaml``): (problems, warnings, files)."""
    today = today or date.today()
    problems: list[str] = []
    warnings: list[str] = []
    files: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            listed = sorted(given.glob("*.yaml"))
            if not listed:
                problems.append(f"{given}: rule format: no flow files (*.yaml) in this directory")
            files.extend(listed)
        elif given.is_file():
            files.append(given)
        else:
            problems.append(f"{given}: rule format: no such file or directory")
    seen: dict[str, Path] = {}
    for path in files:
        source = path.name
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{source}: rule format: cannot read the file: {exc}")
            continue
        except yaml.YAMLError as exc:
            problems.append(f"{source}: rule format: not valid YAML {yaml_problem(exc)}")
            continue
        shapes = question_shape_problems(data.get("questions")) if isinstance(data, dict) else []
        if shapes:
            problems += [f"{source}: question {qid}: rule format: {message}" for qid, message in shapes]
            continue
        try:
            flow = parse_flow(data, source, path)
        except ConfigError as exc:
            problems.append(_parse_problem(source, str(exc)))
            continue
        found, warned = check_flow(flow, today)
        problems += found
        warnings += warned
        name = f"{flow.id} v{flow.version}"
        if path.stem != flow.id:
            problems.append(f"{name}: rule file-name: the file {source} must be named {flow.id}.yaml")
        if flow.id in seen and seen[flow.id].resolve() != path.resolve():
            problems.append(f"{name}: rule unique-flow-ids: flow id {flow.id!r} is also defined in {seen[flow.id]}")
        seen.setdefault(flow.id, path)
    return problems, warnings, len(files)


def _effective_pra_problems(where: str, pra: Pra, whose: str, today: date) -> tuple[list[str], list[str]]:
    line = f"{where}: rule pra ({SOURCES['pra']}): "
    if pra.expired(today):
        return [line + f"the PRA approval that stands for it ({whose}, OMB {pra.omb_control_number}) expired on "
                f"{pra.expiration_date}: nothing is sent for this service"], []  # fmt: skip
    if pra.expiration_date - today <= timedelta(days=PRA_WARNING_DAYS):
        days = (pra.expiration_date - today).days
        return [], [line + f"the PRA approval that stands for it ({whose}, OMB {pra.omb_control_number}) expires "
                    f"on {pra.expiration_date} ({days} days): renew it"]  # fmt: skip
    return [], []


def _today_in(zone: Any) -> date:
    """Today in the time zone named ``zone``; this host's day where it names none, or none that exists (the
    catalogue check says so)."""
    try:
        return datetime.now(ZoneInfo(zone)).date()
    except (TypeError, ValueError, ZoneInfoNotFoundError):
        return date.today()


def validate_services(config_dir: Path, flows_dir: Path, today: date | None = None) -> tuple[list[str], list[str]]:
    """Every configured service's effective PRA block (its own ``pra``, else its flow's): complete, well formed,
    its burden minutes one figure with its statement, and current (SPEC §2 rule 9) on the service's own calendar day
    (its ``timezone``), the day intake and dispatch judge it by; ``today`` fixes the day for every service instead.
    ``(problems, warnings)``."""
    path = config_dir / "services.yaml"
    if not path.is_file():
        return [], []
    try:
        data = read_yaml(path) or {}
    except ConfigError as exc:  # one line: the file, and where the mistake is
        return [f"services.yaml: rule format: {str(exc).removeprefix('services.yaml: ')}"], []
    services = data.get("services") if isinstance(data, dict) else None
    problems: list[str] = []
    warnings: list[str] = []
    for slug, raw in _mapping(services).items():
        where = f"services.yaml: service {slug!r}"
        raw = _mapping(raw)
        block = raw.get("pra")
        if block is not None:
            try:
                pra = parse_pra(block, where)
            except ConfigError as exc:
                problems.append(_parse_problem(where, str(exc)))
                continue
            if problem := omb_number_problem(_mapping(block).get("omb_control_number")):
                problems.append(f"{where}: rule pra ({SOURCES['pra']}): {problem}")
            problems += [f"{where}: rule pra ({SOURCES['pra']}): {p}" for p in burden_problems(_mapping(block))]
            whose = "its own"
        else:
            flow_path = flows_dir / f"{raw.get('flow')}.yaml"
            try:
                pra = parse_flow(yaml.safe_load(flow_path.read_text(encoding="utf-8")), flow_path.name).pra
            except (OSError, UnicodeDecodeError, yaml.YAMLError, ConfigError):
                continue  # a missing or broken flow is reported by the flow check and the start-up
            whose = f"flow {raw.get('flow')}'s"
        found, warned = _effective_pra_problems(where, pra, whose, today or _today_in(raw.get("timezone")))
        problems += found
        warnings += warned
    return problems, warnings
