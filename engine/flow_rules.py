"""The A-11 rules a flow must keep (SPEC §2 rules 8 and 9), each failure naming the rule and the question."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from engine.errors import ConfigError
from engine.flows import Flow, parse_flow

MAX_QUESTIONS = 15
TAGS = {
    "trust", "satisfaction", "effectiveness", "ease", "efficiency", "transparency", "humanity", "employee",
    "drivers_positive", "drivers_negative", "drivers_improve", "free_text", "other",
}  # fmt: skip
TYPES = {"likert5", "stars5", "thumbs", "choose_all", "choose_one", "text", "yes_no"}
DRIVERS = {"effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other"}
LIKERT_DRIVERS = {"effectiveness", "ease", "efficiency", "transparency", "employee", "humanity"}


def check_flow(flow: Flow, today: date) -> tuple[list[str], list[str]]:
    """Return (problems, warnings) for one flow."""
    problems: list[str] = []
    warnings: list[str] = []
    name = f"{flow.id} v{flow.version}"
    questions: list[dict[str, Any]] = list(flow.raw.get("questions") or [])
    if flow.edition not in ("2021", "2024"):
        problems.append(f"{name}: rule edition: edition must be 2021 or 2024")
    if len(questions) > MAX_QUESTIONS:
        problems.append(f"{name}: rule short-survey (A-11 280.7): {len(questions)} questions, at most {MAX_QUESTIONS}")
    ids = [q.get("id") for q in questions]
    for dup in {i for i in ids if ids.count(i) > 1}:
        problems.append(f"{name}: question {dup}: id used twice")
    for q in questions:
        qid = q.get("id", "?")
        if q.get("a11") not in TAGS:
            problems.append(f"{name}: question {qid}: rule a11-tag: unknown a11 tag {q.get('a11')!r}")
        if q.get("type") not in TYPES:
            problems.append(f"{name}: question {qid}: unknown type {q.get('type')!r}")
        if q.get("type") == "choose_all":
            for choice in q.get("choices") or []:
                if choice.get("driver") not in DRIVERS:
                    problems.append(
                        f"{name}: question {qid}: rule driver-choices: choice {choice.get('id')!r} names no A-11 driver"
                    )
    tags = [q.get("a11") for q in questions]
    if "trust" not in tags:
        problems.append(f"{name}: rule trust (A-11 280.7): no trust question")
    if flow.edition == "2021" and "satisfaction" not in tags:
        problems.append(f"{name}: rule satisfaction (A-11 280.7, edition 2021): no satisfaction question")
    free = [q for q in questions if q.get("type") == "text"]
    if len(free) != 1:
        problems.append(f"{name}: rule free-text (A-11 280.7): exactly one free-text question, found {len(free)}")
    for q in free:
        if q.get("required"):
            problems.append(f"{name}: question {q.get('id')}: rule free-text: the free-text answer must be optional")
        if "ivr" not in (q.get("skip_on") or []):
            problems.append(f"{name}: question {q.get('id')}: rule free-text: not asked on IVR (add skip_on: [ivr])")
    form = flow.raw.get("driver_form")
    if form == "likert" and not LIKERT_DRIVERS.intersection(tags):
        problems.append(f"{name}: rule drivers: driver_form likert needs a 5-point question per driver")
    elif form == "improve" and "drivers_improve" not in tags:
        problems.append(f"{name}: rule drivers: driver_form improve needs a 'how can we improve' choose-all")
    elif form == "positive_negative" and not {"drivers_positive", "drivers_negative"} <= set(tags):
        problems.append(f"{name}: rule drivers: driver_form positive_negative needs both driver questions")
    elif form not in ("likert", "improve", "positive_negative"):
        problems.append(f"{name}: rule drivers: driver_form must be likert, improve or positive_negative")
    if flow.pra.expired(today):
        problems.append(f"{name}: rule pra (5 CFR 1320.8): PRA approval expired on {flow.pra.expiration_date}")
    elif flow.pra.expiration_date - today <= timedelta(days=30):
        warnings.append(f"{name}: PRA approval expires on {flow.pra.expiration_date}")
    return problems, warnings


def validate_paths(paths: list[str], today: date | None = None) -> tuple[list[str], list[str], int]:
    today = today or date.today()
    files: list[Path] = []
    for given in map(Path, paths):
        files.extend(sorted(given.glob("*.yaml")) if given.is_dir() else [given])
    problems: list[str] = []
    warnings: list[str] = []
    for path in files:
        try:
            flow = parse_flow(yaml.safe_load(path.read_text(encoding="utf-8")), path.name, path)
        except (ConfigError, yaml.YAMLError) as exc:
            problems.append(str(exc))
            continue
        found, warned = check_flow(flow, today)
        problems += found
        warnings += warned
    return problems, warnings, len(files)
