"""The A-11 flow rules (SPEC §2 rules 8 and 9): the shipped flows pass, each broken flow is refused by its rule.

Most broken flows are a shipped flow with one small edit, checked with ``check_flow``; the files under
``tests/flows_broken/`` are broken in exactly one way each and go through ``validate_paths`` and the real CLI.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.common.errors import ConfigError
from engine.surveys.flow_rules import check_flow, validate_paths
from engine.surveys.flows import load_flows, parse_flow

ROOT = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).resolve().parent / "flows_broken"
TODAY = date(2026, 1, 15)
SHIPPED = ("a11-standard", "a11-drivers", "a11-improve")
SEVEN_DRIVERS = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other"]


def shipped(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "flows" / f"{name}.yaml").read_text(encoding="utf-8"))


def check(data: dict[str, Any], today: date = TODAY) -> tuple[list[str], list[str]]:
    return check_flow(parse_flow(copy.deepcopy(data), "test.yaml"), today)


def question(data: dict[str, Any], qid: str) -> dict[str, Any]:
    return next(q for q in data["questions"] if q["id"] == qid)


def drop(data: dict[str, Any], qid: str) -> None:
    data["questions"] = [q for q in data["questions"] if q["id"] != qid]


# -- the shipped flows --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_flows_pass_every_rule(name):
    problems, warnings = check(shipped(name))
    assert problems == []
    assert warnings == []


def test_the_shipped_flows_are_the_three_the_spec_names_in_their_forms():
    flows = load_flows(ROOT / "flows")
    assert set(flows) == set(SHIPPED)
    forms = {f.id: (f.edition, f.raw["driver_form"], f.raw["ivr_keypad"]) for f in flows.values()}
    assert forms == {
        "a11-standard": ("2021", "likert", "one_is_worst"),
        "a11-drivers": ("2024", "positive_negative", "one_is_best"),
        "a11-improve": ("2021", "improve", "one_is_worst"),
    }
    drivers = flows["a11-drivers"]
    assert drivers.question("trust").type == "thumbs"
    for qid in ("went_well", "could_be_better"):
        assert [c.driver for c in drivers.question(qid).choices] == SEVEN_DRIVERS
    assert [c.driver for c in flows["a11-improve"].question("how_improve").choices] == SEVEN_DRIVERS
    assert drivers.pra.omb_control_number != flows["a11-standard"].pra.omb_control_number


def test_the_shipped_wording_is_english_with_only_the_service_placeholder_and_labelled_scales():
    for flow in load_flows(ROOT / "flows").values():
        assert flow.languages == ("en", "es") and flow.version == "2"
        for name in ("invitation", "intro", "thanks"):
            assert flow.message(name)["default"].strip()
        for q in flow.questions:
            for words in [q.text, *q.wording.values(), *(c.label for c in q.choices)]:
                assert words and "{" not in words.replace("{service}", "")
            if q.is_rating:
                assert set(flow.scale_labels(q)) == set(q.points)
            if q.asked_on("ivr") and q.is_rating and q.type == "likert5":
                assert "Press 1 for strongly disagree through 5 for strongly agree." in q.text_for("ivr")
            if q.asked_on("sms"):
                assert len(q.text_for("sms")) <= 160, q.id


def test_the_2024_flow_branches_on_the_thumbs():
    flow = load_flows(ROOT / "flows")["a11-drivers"]
    went_well, could_be_better = flow.question("went_well"), flow.question("could_be_better")
    assert flow.applies(went_well, "web", {"trust": 5}) and not flow.applies(could_be_better, "web", {"trust": 5})
    assert flow.applies(could_be_better, "web", {"trust": 1}) and not flow.applies(went_well, "web", {"trust": 1})
    assert not flow.applies(flow.question("comments"), "ivr", {})


# -- one broken flow each -----------------------------------------------------------------------------------------


def sixteen_questions(d):
    d["questions"][-1:-1] = [
        {"id": f"extra_{n}", "a11": "other", "type": "yes_no", "text": f"Extra question {n}?"} for n in range(8)
    ]
    d["scales"]["yes_no"] = {1: "No", 5: "Yes"}


def two_free_texts(d):
    d["questions"].append({**question(d, "comments"), "id": "more_comments"})


def choice_without_driver(d):
    del question(d, "went_well")["choices"][2]["driver"]


def missing_other(d):
    for qid in ("went_well", "could_be_better"):
        question(d, qid)["choices"] = [c for c in question(d, qid)["choices"] if c["driver"] != "other"]


def duplicate_ids(d):
    question(d, "ease")["id"] = "effectiveness"


def unknown_top_level_key(d):
    d["langauges"] = d.pop("languages")


def unknown_question_key(d):
    question(d, "comments")["skip-on"] = question(d, "comments").pop("skip_on")


CASES: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("16 questions", "a11-standard", sixteen_questions, "rule short-survey (A-11 280.7): 16 questions, at most 15"),
    ("no trust question", "a11-standard", lambda d: drop(d, "trust"), "rule trust (A-11 280.7): no trust question"),
    ("no trust in 2024", "a11-drivers", lambda d: question(d, "trust").update(a11="other"), "rule trust"),
    ("2021 without satisfaction", "a11-standard", lambda d: drop(d, "satisfaction"), "rule satisfaction"),
    ("no free text", "a11-standard", lambda d: drop(d, "comments"), "rule free-text (A-11 280.7): exactly one"),
    ("two free texts", "a11-improve", two_free_texts, "rule free-text (A-11 280.7): exactly one free-text question"),
    (
        "required free text",
        "a11-standard",
        lambda d: question(d, "comments").update(required=True),
        "question comments: rule free-text (A-11 280.7): the free-text answer is optional",
    ),
    (
        "free text asked on IVR",
        "a11-drivers",
        lambda d: question(d, "comments").pop("skip_on"),
        "question comments: rule free-text (A-11 280.7): the free-text question is not asked on IVR",
    ),
    (
        "expired PRA",
        "a11-standard",
        lambda d: d["pra"].update(expiration_date=TODAY - timedelta(days=1)),
        "rule pra (5 CFR 1320.8(b)(3)): PRA approval expired on 2026-01-14",
    ),
    (
        "choose_all choice without a driver",
        "a11-drivers",
        choice_without_driver,
        "question went_well: rule driver-choices (A-11 280.7): choice 'efficiency' names no A-11 driver",
    ),
    (
        "2024 flow missing other",
        "a11-drivers",
        missing_other,
        "question could_be_better: rule driver-choices (A-11 280.7): edition 2024 offers exactly the drivers",
    ),
    (
        "show_if to an unknown question",
        "a11-drivers",
        lambda d: question(d, "went_well")["show_if"].update(question="trusst"),
        "question went_well: rule show-if: show_if refers to 'trusst', which is not an earlier question",
    ),
    ("duplicate ids", "a11-standard", duplicate_ids, "question effectiveness: rule unique-ids"),
    (
        "unknown top-level key",
        "a11-standard",
        unknown_top_level_key,
        "rule format: unknown top-level key 'langauges' (did you mean 'languages'?)",
    ),
    (
        "unknown question key",
        "a11-standard",
        unknown_question_key,
        "question comments: rule format: unknown question key 'skip-on' (did you mean 'skip_on'?)",
    ),
    (
        "thumbs trust in 2021",
        "a11-standard",
        lambda d: question(d, "trust").update(type="thumbs", scale="agree"),
        "question trust: rule trust (A-11 280.7): edition 2021 asks trust as likert5 or stars5, not thumbs",
    ),
    (
        "2024 flow in the likert form",
        "a11-drivers",
        lambda d: d.update(driver_form="likert"),
        "rule drivers (A-11 280.7): edition 2024 uses driver_form positive_negative",
    ),
    (
        "likert flow without driver questions",
        "a11-standard",
        lambda d: d.update(questions=[q for q in d["questions"] if q["a11"] in ("trust", "satisfaction", "free_text")]),
        "rule drivers (A-11 280.7): driver_form likert needs a 5-point question per driver",
    ),
    (
        "improve flow without its question",
        "a11-improve",
        lambda d: drop(d, "how_improve"),
        "rule drivers (A-11 280.7): driver_form improve needs exactly one drivers_improve choose_all, found 0",
    ),
    (
        "positive drivers not branching on a positive rating",
        "a11-drivers",
        lambda d: question(d, "went_well")["show_if"].update(rating="negative"),
        "question went_well: rule drivers (A-11 280.7): shown after a positive rating",
    ),
    (
        "show_if on a later question",
        "a11-standard",
        lambda d: question(d, "ease").update(show_if={"question": "employee", "rating": "positive"}),
        "question ease: rule show-if: show_if refers to 'employee', which is not an earlier question",
    ),
    (
        "unknown a11 tag",
        "a11-standard",
        lambda d: question(d, "ease").update(a11="easiness"),
        "question ease: rule a11-tag: unknown a11 tag 'easiness'",
    ),
    (
        "unknown type",
        "a11-standard",
        lambda d: question(d, "ease").update(type="likert7"),
        "question ease: rule type: unknown type 'likert7'",
    ),
    (
        "scale not defined",
        "a11-standard",
        lambda d: question(d, "ease").update(scale="agreement"),
        "question ease: rule scales: scale 'agreement' is not defined under scales",
    ),
    (
        "scale short of a point",
        "a11-standard",
        lambda d: d["scales"]["agree"].pop(3),
        "question satisfaction: rule scales: scale 'agree' has no label for point 3",
    ),
    (
        "unknown ivr_keypad",
        "a11-standard",
        lambda d: d.update(ivr_keypad="one_is_good"),
        "rule ivr-keypad: ivr_keypad 'one_is_good' must be one_is_best or one_is_worst",
    ),
    (
        "IVR wording against the keypad order",
        "a11-standard",
        lambda d: d.update(ivr_keypad="one_is_best"),
        "question trust: rule ivr-keypad: wording.ivr says 1 for 'Strongly disagree', but with ivr_keypad "
        "one_is_best that is key 5",
    ),
    (
        "default language not offered",
        "a11-standard",
        lambda d: d.update(languages=["es"]),
        "rule languages: default_language 'en' is not among languages",
    ),
    (
        "empty message",
        "a11-standard",
        lambda d: d["messages"]["thanks"].update(default=""),
        "rule wording: messages.thanks.default must be non-empty English text",
    ),
    (
        "message missing",
        "a11-improve",
        lambda d: d["messages"].pop("intro"),
        "rule messages: messages.intro is missing",
    ),
    (
        "unknown placeholder in question wording",
        "a11-standard",
        lambda d: question(d, "trust").update(text="This interaction increased my trust in {agency}."),
        "question trust: rule placeholders: text: unknown placeholder {agency} (allowed: {service})",
    ),
    (
        "trust skipped on a channel",
        "a11-standard",
        lambda d: question(d, "trust").update(skip_on=["sms"]),
        "question trust: rule trust (A-11 280.7): the trust question is asked on every channel",
    ),
    (
        "OMB control number not quoted",
        "a11-standard",
        lambda d: d["pra"].update(omb_control_number=10900011),
        "rule pra (5 CFR 1320.8(b)(3)): omb_control_number 10900011 must be a quoted string",
    ),
    (
        "SMS invitation without the control number",
        "a11-standard",
        lambda d: d["messages"]["invitation"].update(sms="{agency}: how did your {service} go? Reply STOP to opt out."),
        "rule pra (5 CFR 1320.8(b)(3)): messages.invitation.sms must carry the OMB control number",
    ),
    (
        "choose_all with a driver that is not one",
        "a11-improve",
        lambda d: question(d, "how_improve")["choices"][0].update(driver="speed"),
        "question how_improve: rule driver-choices (A-11 280.7): choice 'effectiveness': 'speed' is not an A-11 driver",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_broken_flow_is_refused_naming_its_rule(name, mutate, expected):
    data = shipped(name)
    mutate(data)
    problems, _ = check(data)
    assert any(expected in line for line in problems), "\n".join(problems)
    assert all(line.startswith(f"{name} v2: ") and " rule " in line for line in problems)


def test_a_pra_expiring_within_30_days_warns_without_refusing():
    data = shipped("a11-drivers")
    data["pra"]["expiration_date"] = TODAY + timedelta(days=10)
    problems, warnings = check(data)
    assert problems == []
    assert warnings == [
        "a11-drivers v2: rule pra (5 CFR 1320.8(b)(3)): PRA approval expires on 2026-01-25 (10 days): renew it"
    ]
    assert check(data, today=TODAY - timedelta(days=30))[1] == []  # 40 days ahead: nothing to say
    assert check(data, today=TODAY + timedelta(days=10))[0] == []  # the last valid day
    assert "expired on 2026-01-25" in check(data, today=TODAY + timedelta(days=11))[0][0]


def test_a_2024_flow_may_ask_trust_on_five_points_and_a_2021_one_may_branch_on_satisfaction():
    data = shipped("a11-drivers")
    question(data, "trust").update(type="likert5", scale="agree")
    data["scales"]["agree"] = shipped("a11-standard")["scales"]["agree"]
    data["questions"][0].pop("wording")
    problems, warnings = check(data)
    assert problems == []
    assert "question went_well: rule positive-from: positive_from is not set" in "\n".join(warnings)
    data["positive_from"] = 4
    assert not any("positive-from" in line for line in check(data)[1])
    data["edition"], data["ivr_keypad"] = "2021", "one_is_worst"  # the satisfaction wording reads 1 = worst
    data["questions"].insert(0, question(shipped("a11-standard"), "satisfaction"))
    for qid in ("went_well", "could_be_better"):
        question(data, qid)["show_if"]["question"] = "satisfaction"
    assert check(data)[0] == []


def test_a_broken_flow_gets_one_message_per_fault_not_an_avalanche():
    data = shipped("a11-standard")
    drop(data, "trust")
    problems, _ = check(data)
    assert problems == ["a11-standard v2: rule trust (A-11 280.7): no trust question (a11: trust)"]


# -- files and the command line ---------------------------------------------------------------------------------

EXPECTED_FILES = {
    "free-text-on-ivr.yaml": "free-text-on-ivr v1: question comments: rule free-text",
    "missing-other-driver.yaml": "missing-other-driver v1: question went_well: rule driver-choices",
    "choices-not-mappings.yaml": "choices-not-mappings.yaml: question how_improve: rule format: choices must be",
    "pra-without-control-number.yaml": "pra-without-control-number.yaml: rule pra",
    "trust-wording-changed.yaml": "trust-wording-changed v1: question trust: rule wording-base",
}


def test_every_broken_file_is_refused_for_its_own_rule_alone():
    assert {p.name for p in BROKEN.glob("*.yaml")} == set(EXPECTED_FILES)
    for file, expected in EXPECTED_FILES.items():
        problems, warnings, count = validate_paths([str(BROKEN / file)], TODAY)
        assert count == 1 and warnings == []
        assert problems and any(line.startswith(expected) for line in problems), problems
        rule = expected.split(" rule ", 1)[1].split(":")[0]
        assert all(f" rule {rule}" in line for line in problems), problems


def test_validate_paths_reads_directories_and_names_missing_paths_and_misnamed_files(tmp_path):
    problems, warnings, count = validate_paths([str(ROOT / "flows")], TODAY)
    assert (problems, warnings, count) == ([], [], 3)
    (tmp_path / "standard.yaml").write_text((ROOT / "flows" / "a11-standard.yaml").read_text())
    (tmp_path / "a11-standard.yaml").write_text((ROOT / "flows" / "a11-standard.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("id: [unclosed\n")
    problems, _, count = validate_paths([str(tmp_path), str(tmp_path / "nope.yaml")], TODAY)
    assert count == 3
    assert any("nope.yaml: rule format: no such file" in p for p in problems)
    assert any(p.startswith("bad.yaml: rule format: not valid YAML") for p in problems)
    assert any("rule file-name: the file standard.yaml must be named a11-standard.yaml" in p for p in problems)
    assert any("rule unique-flow-ids: flow id 'a11-standard' is also defined in" in p for p in problems)


def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"), "SURVEY_ENGINE_DATABASE_URL": "",
           "SURVEY_ENGINE_SECRET_KEY": "", "SURVEY_ENGINE_ENCRYPTION_KEY": ""}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_the_cli_refuses_a_broken_file_naming_the_rule(tmp_path):
    result = _cli("flows", "validate", str(BROKEN / "free-text-on-ivr.yaml"), tmp_path=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "error: free-text-on-ivr v1: question comments: rule free-text" in result.stderr
    assert "skip_on: [ivr]" in result.stderr and "valid" not in result.stdout


def test_the_cli_refuses_a_changed_trust_statement_showing_the_base(tmp_path):
    result = _cli("flows", "validate", str(BROKEN / "trust-wording-changed.yaml"), tmp_path=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "rule wording-base (A-11 280.7)" in result.stderr and "'I love {service}.'" in result.stderr
    assert "'This interaction increased my trust in [Program/Service name].'" in result.stderr


def test_the_cli_reports_an_unreadable_flow_without_a_traceback(tmp_path):
    result = _cli("flows", "validate", str(BROKEN / "choices-not-mappings.yaml"), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "rule format: choices must be a list" in result.stderr and "Traceback" not in result.stderr


def test_the_cli_passes_the_shipped_flows(tmp_path):
    result = _cli("flows", "validate", str(ROOT / "flows"), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 flow(s) valid" in result.stdout and result.stderr == ""


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: question(d, "ease").update(text=None), "question 4 (ease): text: rule format"),
        (lambda d: question(d, "comments").update(skip_on="ivr"), "(comments): rule format: skip_on must be a list"),
        (lambda d: question(d, "comments").update(required="no"), "(comments): rule format: required must be"),
    ],
    ids=["empty question text", "skip_on as a string", "required written as a string"],
)
def test_a_malformed_question_is_refused_by_the_parser_never_coerced(mutate, expected):
    data = shipped("a11-standard")
    mutate(data)
    with pytest.raises(ConfigError) as refused:
        parse_flow(copy.deepcopy(data), "test.yaml")
    assert expected in str(refused.value)


# -- rule 8: the trust and satisfaction sentence bases (A-11 280.7) ---------------------------------------------


def problems_of(data: dict[str, Any]) -> str:
    return "\n".join(check(data)[0])


def test_i_love_service_is_refused_with_the_base_beside_the_flows_wording():
    data = shipped("a11-drivers")
    question(data, "trust")["text"] = "I love {service}."
    problems = check(data)[0]
    assert len(problems) == 1, problems
    line = problems[0]
    assert line.startswith("a11-drivers v2: question trust: rule wording-base (A-11 280.7): the trust statement")
    assert "'I love {service}.'" in line
    assert "'This interaction increased my trust in [Program/Service name].'" in line
    assert "omb_wording_approval" in line


def test_the_same_wording_with_omb_wording_approval_passes_and_is_kept_for_the_report():
    data = shipped("a11-drivers")
    trust = question(data, "trust")
    trust["text"] = "I love {service}."
    trust["wording"] = {"ivr": "I love {service}. If you agree, press 1. If you disagree, press 2.",
                        "sms": "I love {service}. Reply YES if you agree or NO if you disagree."}  # fmt: skip
    trust["omb_wording_approval"] = "OMB (J. Doe, OIRA) agreed to this wording by email on 2026-03-02."
    assert check(data)[0] == []
    flow = parse_flow(copy.deepcopy(data), "test.yaml")
    assert flow.question("trust").omb_wording_approval.startswith("OMB (J. Doe, OIRA) agreed")
    assert flow.question("trust").text == "I love {service}."


@pytest.mark.parametrize(
    "approval",
    ["", "OMB said yes.", 20260302],
    ids=["empty", "no date", "not a sentence"],
)
def test_an_approval_must_say_what_and_when(approval):
    data = shipped("a11-standard")
    question(data, "satisfaction").update(text="I liked {service}.", omb_wording_approval=approval)
    assert "question satisfaction: rule wording-base (A-11 280.7): omb_wording_approval is a sentence" in (
        problems_of(data)
    )


def test_an_approval_on_a_driver_question_is_refused():
    data = shipped("a11-standard")
    question(data, "ease")["omb_wording_approval"] = "OMB agreed on 2026-03-02."
    assert "question ease: rule wording-base (A-11 280.7): omb_wording_approval belongs to the trust and" in (
        problems_of(data)
    )


@pytest.mark.parametrize(
    ("tag", "text"),
    [
        ("trust", "this interaction increased my trust in {service}"),
        ("trust", "This interaction increased my trust in {service}!"),
        ("trust", "This  interaction increased my TRUST in the Passport Office."),
        ("trust", "I trust {service} to fulfill our country's commitment to veterans."),
        ("trust", "I trust {service} to fulfill our country’s commitment to people like me."),
        ("satisfaction", "I am satisfied with the service I received from {service}"),
        ("satisfaction", "Please rate your experience."),
        ("satisfaction", "Please rate your experience with {service}."),
    ],
)
def test_minor_edits_of_the_base_pass(tag, text):
    data = shipped("a11-standard")
    q = question(data, tag)
    q["text"] = text
    q.pop("wording")
    assert check(data)[0] == []


@pytest.mark.parametrize(
    ("tag", "text"),
    [
        ("trust", "I love {service}."),
        ("trust", "This interaction increased my confidence in {service}."),
        ("trust", "This interaction did not increase my trust in {service}."),
        ("trust", "I trust {service}."),
        ("satisfaction", "I am happy with the service I received from {service}."),
        ("satisfaction", "I am satisfied with {service}."),
        ("satisfaction", "I am satisfied with the service I received from {service}. Everyone is."),
    ],
)
def test_other_changes_to_the_base_are_refused(tag, text):
    data = shipped("a11-standard")
    question(data, tag)["text"] = text
    assert f"question {tag}: rule wording-base (A-11 280.7): the {tag} statement changes" in problems_of(data)


@pytest.mark.parametrize("channel", ["ivr", "sms", "kiosk"])
def test_a_channel_wording_is_compared_by_the_statement_it_opens_with(channel):
    data = shipped("a11-standard")
    wording = question(data, "trust").setdefault("wording", {})
    wording[channel] = (
        "This interaction increased my trust in {service}. Reply 1 (strongly disagree) to 5 (strongly agree)."
    )
    if channel == "ivr":
        wording[channel] = (
            "This interaction increased my trust in {service}. Press 1 for strongly disagree through 5 for strongly agree."
        )
    assert check(data)[0] == []
    wording[channel] = "Do you trust {service} more now? Press 1 for strongly disagree through 5 for strongly agree."
    assert f"the trust statement changes the A-11 sentence base: the flow's wording.{channel} reads " \
           "'Do you trust {service} more now?'" in problems_of(data)  # fmt: skip


# -- every tag a flow carries is reported (SPEC §6.1) -----------------------------------------------------------


def test_a_humanity_likert_question_is_refused_naming_the_report_columns():
    data = shipped("a11-standard")
    data["questions"].insert(-1, {"id": "humanity", "a11": "humanity", "type": "likert5",
                                  "text": "I was treated with respect."})  # fmt: skip
    problems = check(data)[0]
    assert len(problems) == 1, problems
    assert problems[0].startswith("a11-standard v2: question humanity: rule report-columns (SPEC §6.1): a question "
                                  "tagged 'humanity' has no columns in the A-11 file")  # fmt: skip
    assert "positive_humanity" in problems[0]


def test_a_question_tagged_other_is_refused():
    data = shipped("a11-standard")
    data["scales"]["yes_no"] = {1: "No", 5: "Yes"}
    data["questions"].insert(-1, {"id": "purpose", "a11": "other", "type": "yes_no", "text": "Did you come to renew?"})
    assert "question purpose: rule report-columns (SPEC §6.1): a question tagged 'other'" in problems_of(data)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_tag_of_the_shipped_flows_has_its_report_columns(name):
    from engine.surveys.flow_rules import NO_COLUMNS, RATING_COLUMNS, REPORTED_AS

    for q in shipped(name)["questions"]:
        assert q["a11"] in RATING_COLUMNS or q["a11"] in REPORTED_AS
        assert q["a11"] not in NO_COLUMNS


def way_three() -> dict[str, Any]:
    """An edition 2021 flow asking both choose-all driver questions to every respondent (A-11 280.7's third way)."""
    data = shipped("a11-drivers")
    data.update(
        edition="2021", ivr_keypad="one_is_worst", scales={**data["scales"], **shipped("a11-standard")["scales"]}
    )
    data["questions"][0] = question(shipped("a11-standard"), "trust")
    data["questions"].insert(0, question(shipped("a11-standard"), "satisfaction"))
    for qid in ("went_well", "could_be_better"):
        question(data, qid).pop("show_if")
    return data


def test_the_2021_way_three_both_driver_questions_to_everyone_is_accepted():
    data = way_three()
    assert check(data)[0] == []
    flow = parse_flow(copy.deepcopy(data), "test.yaml")
    assert flow.applies(flow.question("went_well"), "web", {}) and flow.applies(
        flow.question("could_be_better"), "web", {}
    )


def test_way_three_half_branched_is_refused_and_2024_still_branches():
    data = way_three()
    question(data, "went_well")["show_if"] = {"question": "trust", "rating": "positive"}
    data["positive_from"] = 4
    assert "rule drivers (A-11 280.7): ask both choose-all driver questions to everyone" in problems_of(data)
    data = shipped("a11-drivers")
    for qid in ("went_well", "could_be_better"):
        question(data, qid).pop("show_if")
    assert "question went_well: rule drivers (A-11 280.7): shown after a positive rating" in problems_of(data)


# -- what the public hears is true (SPEC §2 rule 9, §4 sms) ----------------------------------------------------


@pytest.mark.parametrize(
    ("sms", "expected"),
    [
        ("{service}: Voluntary, about {duration}. OMB {omb_control_number}. Reply STOP to opt out.",
         "rule messages: messages.invitation.sms must say who is asking ({agency})"),
        ("{agency}: how did your {service} go? OMB {omb_control_number}. Reply STOP to opt out.",
         "rule pra (5 CFR 1320.8(b)(3)): messages.invitation.sms must say how long the survey takes ({duration})"),
    ],
    ids=["no agency", "no how long"],
)  # fmt: skip
def test_the_first_text_says_who_asks_and_how_long(sms, expected):
    data = shipped("a11-standard")
    data["messages"]["invitation"]["sms"] = sms
    assert expected in problems_of(data)


def test_a_bare_minutes_placeholder_warns_and_sms_link_wording_is_checked_like_the_first_text():
    data = shipped("a11-standard")
    data["messages"]["invitation"]["default"] = "{agency}: a {minutes}-minute survey. OMB {omb_control_number}. {link}"
    problems, warnings = check(data)
    assert problems == []
    assert any("messages.invitation.default: {minutes} is the bare number; {duration} says it" in w for w in warnings)
    data["messages"]["invitation"]["sms_link"] = "{agency}: {link} Reply STOP to opt out."
    assert "messages.invitation.sms_link must carry the OMB control number" in problems_of(data)


def test_burden_minutes_must_agree_with_the_burden_statement():
    data = shipped("a11-standard")  # its statement says "2 minutes"
    data["pra"]["burden_minutes"] = 2
    assert check(data)[0] == []
    data["pra"]["burden_minutes"] = 1
    assert "rule pra (5 CFR 1320.8(b)(3)): burden_minutes 1 disagrees with the burden statement (2 minutes)" in (
        problems_of(data)
    )


# ``^...$`` with ``re.match`` let a final line break through (YAML's ``|`` block keeps one): each name below is
# stored, shown or compared as given, so "x\n" is not "x".
@pytest.mark.parametrize(("change", "said"), [
    (lambda d: d.update(id=d["id"] + "\n"), "rule format: id 'a11-standard\\n' must be a slug"),
    (lambda d: question(d, "comments").update(id="comments\n"), "rule format: id 'comments\\n' must be a slug"),
    (lambda d: d["pra"].update(omb_control_number="1090-0011\n"), "omb_control_number '1090-0011\\n' must be"),
    (lambda d: d.update(languages=["en", "es\n"]), "rule languages: 'es\\n' is not a language tag"),
])  # fmt: skip
def test_a_name_ending_in_a_line_break_breaks_its_rule(change, said):
    data = shipped("a11-standard")
    change(data)
    errors, _ = check(data)
    assert any(said in error for error in errors), errors
