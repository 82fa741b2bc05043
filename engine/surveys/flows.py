"""Survey flows as data: loading ``flows/*.yaml`` into typed questions, and what the engine asks of a flow.

The A-11 rule checks of a flow (SPEC §2 rule 8) live in :mod:`engine.surveys.flow_rules`; this module reads the files,
keeps their content hash (a published version may not change) and answers questions such as "which question
comes next for this channel" or "has the PRA approval expired".

The format (all wording in English; translations are gettext catalogs in ``locales/``)::

    id, version, title, edition ("2021" | "2024"), default_language, languages: [en, es], minutes
    driver_form: likert | improve | positive_negative
    positive_from: 4                  # a 5-point rating at or above this is positive; thumbs up always is
    ivr_keypad: one_is_best | one_is_worst
    pra: {omb_control_number, expiration_date, burden_statement[, burden_minutes]}   # a service's own pra wins
    scales: {agree: {1: Strongly disagree, ..., 5: Strongly agree}, thumbs: {1: ..., 5: ...}, ...}
    messages: {invitation: {default, sms, sms_link, ...}, intro: {default}, thanks: {default},
               use_of_answers: {default}}     # placeholders: engine.surveys.messages ({duration}: "1 minute", "2 minutes")
    questions:
      - id, a11 (tag), type (likert5 | stars5 | thumbs | choose_all | choose_one | text | yes_no)
        text: wording for the web page and email; wording: {ivr, sms, kiosk} where the medium needs other words
        scale: which ``scales`` entry labels the points (default by type)
        choices: [{id, label, driver}]      # choose_all / choose_one
        show_if: {question: trust, rating: positive | negative}
        skip_on: [ivr]                       # channels that do not ask it
        required: false
        omb_wording_approval: "..."          # trust / satisfaction only: what OMB agreed to, and when

Stored ratings are always 1 = worst … 5 = best (thumbs: 1 down, 5 up; yes/no: 1 no, 5 yes).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from engine.common.errors import ConfigError
from engine.common.limits import length_problem
from engine.common.yaml_files import read_yaml
from engine.store.models import FlowVersion, Survey


@dataclass(frozen=True)
class Pra:
    """The Paperwork Reduction Act block (5 CFR 1320.8(b)(3))."""

    omb_control_number: str
    expiration_date: date
    burden_statement: str
    # How long the survey takes, in minutes: every surface that says "how long" reads it from here.
    burden_minutes: int = 2

    def expired(self, on: date) -> bool:
        """Whether the approval had lapsed on the day ``on`` (it stands through its expiration date)."""
        return on > self.expiration_date

    def lapsed_at(self, moment: datetime, zone: tzinfo) -> bool:
        """Whether the approval had lapsed at ``moment``, an aware time: by the calendar of ``zone``, the service's
        time zone, where its last day ends (the one way every surface asks; SPEC §2 rule 9)."""
        return self.expired(moment.astimezone(zone).date())


RATING_TYPES = {"likert5", "stars5", "thumbs", "yes_no"}
CHOICE_TYPES = {"choose_all", "choose_one"}
DEFAULT_SCALE = {"likert5": "agree", "stars5": "stars", "thumbs": "thumbs", "yes_no": "yes_no"}
POINTS = {"likert5": (1, 2, 3, 4, 5), "stars5": (1, 2, 3, 4, 5), "thumbs": (1, 5), "yes_no": (1, 5)}


@dataclass(frozen=True)
class Choice:
    id: str
    label: str
    driver: str | None = None


@dataclass(frozen=True)
class Question:
    id: str
    a11: str
    type: str
    text: str
    wording: dict[str, str] = field(default_factory=dict)
    scale: str | None = None
    choices: tuple[Choice, ...] = ()
    show_if: dict[str, str] | None = None
    skip_on: tuple[str, ...] = ()
    required: bool = False
    # What OMB agreed to, and when, where a trust or satisfaction statement leaves the A-11 sentence base (rule 8).
    omb_wording_approval: str | None = None

    @property
    def is_rating(self) -> bool:
        return self.type in RATING_TYPES

    @property
    def points(self) -> tuple[int, ...]:
        return POINTS.get(self.type, ())

    def text_for(self, channel: str) -> str:
        """The English wording for ``channel`` (kiosk, sms, ivr), else the default text."""
        return self.wording.get(channel) or self.text

    def asked_on(self, channel: str) -> bool:
        return channel not in self.skip_on


def _text(value: Any, where: str, optional: bool = False) -> str:
    if value is None and optional:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: rule format: must be non-empty English text")
    return value.strip()


def _question(raw: Any, source: str) -> Question:
    """One question, typed; a value of the wrong shape is refused here, never coerced."""
    if not isinstance(raw, dict) or "id" not in raw:
        raise ConfigError(f"{source}: rule format: every question is a mapping with an id")
    where = f"{source} ({raw['id']})"
    qtype = str(raw.get("type", ""))
    raw_choices = raw.get("choices") or []
    if not isinstance(raw_choices, list) or not all(isinstance(c, dict) for c in raw_choices):
        raise ConfigError(f"{where}: rule format: choices must be a list of {{id, label, driver}} mappings")
    wording = raw.get("wording") or {}
    show_if = raw.get("show_if")
    skip_on = raw.get("skip_on") or []
    required = raw.get("required", False)
    if not isinstance(wording, dict):
        raise ConfigError(f"{where}: rule format: wording must be a mapping of channel to text")
    if show_if is not None and not isinstance(show_if, dict):
        raise ConfigError(f"{where}: rule format: show_if must be {{question, rating}}")
    if not isinstance(skip_on, list):
        raise ConfigError(f"{where}: rule format: skip_on must be a list of channels, e.g. [ivr]")
    if not isinstance(required, bool):
        raise ConfigError(f"{where}: rule format: required must be true or false")
    return Question(
        id=str(raw["id"]),
        a11=str(raw.get("a11", "")),
        type=qtype,
        text=_text(raw.get("text"), f"{where}: text"),
        wording={str(k): _text(v, f"{where}: wording.{k}") for k, v in wording.items()},
        scale=raw.get("scale") or DEFAULT_SCALE.get(qtype),
        choices=tuple(
            Choice(str(c.get("id")), _text(c.get("label"), f"{where}: choice {c.get('id')}"), c.get("driver"))
            for c in raw_choices
        ),
        show_if={str(k): str(v) for k, v in show_if.items()} if show_if else None,
        skip_on=tuple(str(c) for c in skip_on),
        required=required,
        omb_wording_approval=str(raw["omb_wording_approval"]).strip() if raw.get("omb_wording_approval") else None,
    )


@dataclass(frozen=True)
class Flow:
    id: str
    version: str
    title: str
    edition: str
    pra: Pra
    default_language: str
    content_hash: str
    raw: dict[str, Any] = field(repr=False, compare=False)
    path: Path | None = None

    questions: tuple[Question, ...] = ()

    @property
    def definition(self) -> dict[str, Any]:
        """The flow's data as JSON values (dates as ISO strings): what ``flow_versions.definition`` keeps."""
        loaded: dict[str, Any] = json.loads(json.dumps(self.raw, default=str))
        return loaded

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.raw.get("languages") or (self.default_language,))

    @property
    def positive_from(self) -> int:
        return int(self.raw.get("positive_from", 4))

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)

    def scale_labels(self, question: Question) -> dict[int, str]:
        """The English label of each point of a rating question (1 = worst)."""
        scales = self.raw.get("scales") or {}
        labels = scales.get(question.scale or "") or {}
        return {int(point): str(label) for point, label in labels.items()}

    def is_positive(self, question: Question, value: int) -> bool:
        return value == 5 if question.type in ("thumbs", "yes_no") else value >= self.positive_from

    def applies(self, question: Question, channel: str, answers: dict[str, int | None]) -> bool:
        """Whether ``question`` is asked on ``channel`` given the ratings answered so far (branching)."""
        if not question.asked_on(channel):
            return False
        if not question.show_if:
            return True
        parent_id = question.show_if.get("question", "")
        rating = answers.get(parent_id)
        if rating is None:
            return False
        positive = self.is_positive(self.question(parent_id), rating)
        wanted = question.show_if.get("rating")
        if wanted not in ("positive", "negative"):
            raise ConfigError(f"flow {self.id}: question {question.id}: show_if.rating must be positive or negative")
        return positive if wanted == "positive" else not positive

    def message(self, name: str) -> dict[str, Any]:
        """A message template of the flow (``messages.<name>``): wording per channel, English."""
        messages = self.raw.get("messages") or {}
        value = messages.get(name)
        if not isinstance(value, dict):
            raise KeyError(f"flow {self.id} has no message {name!r}")
        return value


def content_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


BURDEN_MINUTES = re.compile(r"(\d+)\s+minutes?\b", re.IGNORECASE)


def parse_pra(pra: Any, source: str, default_minutes: int | None = None) -> Pra:
    """A PRA block (a flow's, or a service's own clearance): ``{omb_control_number, expiration_date,
    burden_statement[, burden_minutes]}``. ``burden_minutes`` defaults to the figure the statement gives
    ("… average 2 minutes per response"), else ``default_minutes`` (a flow's ``minutes``), else 2."""
    if not isinstance(pra, dict):
        raise ConfigError(f"{source}: pra must be a mapping")
    unknown = set(pra) - {"omb_control_number", "expiration_date", "burden_statement", "burden_minutes"}
    if unknown:
        raise ConfigError(f"{source}: pra: unknown keys {', '.join(sorted(unknown))}")
    pra_missing = [k for k in ("omb_control_number", "expiration_date", "burden_statement") if not pra.get(k)]
    if pra_missing:
        raise ConfigError(f"{source}: rule pra (5 CFR 1320.8(b)(3)): pra block lacks {', '.join(pra_missing)}")
    if too_long := length_problem(str(pra["omb_control_number"]), Survey.omb_control_number):
        raise ConfigError(f"{source}: pra.omb_control_number {too_long}")
    expiration = pra["expiration_date"]
    if isinstance(expiration, str):
        try:
            expiration = date.fromisoformat(expiration)
        except ValueError as exc:
            raise ConfigError(f"{source}: pra.expiration_date {expiration!r} is not a date (YYYY-MM-DD)") from exc
    if not isinstance(expiration, date) or isinstance(expiration, datetime):
        raise ConfigError(f"{source}: rule pra: pra.expiration_date must be a date (YYYY-MM-DD)")
    statement = str(pra["burden_statement"]).strip()
    minutes = pra.get("burden_minutes")
    if minutes is None:
        stated = BURDEN_MINUTES.search(statement)
        minutes = int(stated.group(1)) if stated else (default_minutes or 2)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 600:
        raise ConfigError(f"{source}: rule pra: pra.burden_minutes must be a whole number of minutes (1-600)")
    return Pra(str(pra["omb_control_number"]), expiration, statement, minutes)


def parse_flow(data: Any, source: str = "<flow>", path: Path | None = None) -> Flow:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a flow is a YAML mapping")
    missing = [key for key in ("id", "version", "title", "edition", "pra", "questions") if key not in data]
    if missing:
        raise ConfigError(f"{source}: missing {', '.join(missing)}")
    # Every flow in the directory is stored as a flow version at start-up, in use or not: both fit their columns.
    for key, column in (("id", FlowVersion.flow_id), ("version", FlowVersion.version)):
        if too_long := length_problem(str(data[key]), column):
            raise ConfigError(f"{source}: the {key} {too_long}")
    minutes = data.get("minutes")
    pra = parse_pra(
        data["pra"], source, minutes if isinstance(minutes, int) and not isinstance(minutes, bool) else None
    )
    questions = data["questions"]
    if not isinstance(questions, list):
        raise ConfigError(f"{source}: questions must be a list")
    try:
        positive_from = int(data.get("positive_from", 4))
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: rule format: positive_from must be a whole number 1-5") from None
    if not 1 <= positive_from <= 5:
        raise ConfigError(f"{source}: rule format: positive_from must be a whole number 1-5")
    return Flow(
        questions=tuple(_question(q, f"{source}: question {i + 1}") for i, q in enumerate(questions)),
        id=str(data["id"]),
        version=str(data["version"]),
        title=str(data["title"]),
        edition=str(data["edition"]),
        pra=pra,
        default_language=str(data.get("default_language", "en")),
        content_hash=content_hash(data),
        raw=data,
        path=path,
    )


def load_flows(directory: Path) -> dict[str, Flow]:
    if not directory.is_dir():
        raise ConfigError(f"flows directory {directory} does not exist (SURVEY_ENGINE_FLOWS_DIR)")
    flows: dict[str, Flow] = {}
    for path in sorted(directory.glob("*.yaml")):
        flow = parse_flow(read_yaml(path), path.name, path)
        if flow.id in flows:
            raise ConfigError(f"{path.name}: flow id {flow.id!r} is defined twice")
        if path.stem != flow.id:
            raise ConfigError(f"{path.name}: the file name must be the flow id ({flow.id}.yaml)")
        flows[flow.id] = flow
    return flows
