"""Attack pass on the dashboard, filing and the public data pages: what a careless or hostile user ran into.

The quarter is the fixture quarter of ``tests/test_reports_a11.py`` (FY2026 Q4), built through the real engine on
SQLite and PostgreSQL; pages go through the Flask test client, the API with a real key.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event

from engine.reporting import submissions
from engine.reporting.fiscal import FiscalQuarter
from engine.reporting.masking import mask_contacts
from engine.store.db import unit_of_work
from tests import reports_support, test_submissions
from tests.dashboard_support import PASSWORD, csrf_of, make_account, rows_by_first_cell, sign_in
from tests.helpers import write_config
from tests.reports_support import CHICAGO, NEW_YORK, QuarterBuilder, ReportStack, build_stack, local
from tests.test_submissions import Q4, SUBMISSIONS

report_config_dir = reports_support.report_config_dir
report_stack = reports_support.report_stack
quarter = test_submissions.quarter  # FY2026 Q4 built, and a reports key of rpt-mixed
# The races below cannot happen on SQLite: every transaction there is a write transaction (BEGIN IMMEDIATE) from its
# first read, so a filing, a save or a report read never sees another writer commit meanwhile.
ONLY_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@contextmanager
def _switched_flows(database_url: str, flows_dir: Path, tmp_path: Path, first: str,
                    then: str) -> Iterator[tuple[ReportStack, ReportStack]]:  # fmt: skip
    """One database, the service ``sv-switch`` configured with flow ``first``, then with ``then``: a stack each."""
    common = {"agency": "Department of State", "service_type": "administrative", "send_delay": "PT0S",
              "contact_cooldown_days": 0, "channels": ["email"], "timezone": "America/New_York"}  # fmt: skip
    stacks = []
    for flow in (first, then):
        config = write_config(tmp_path / f"config-{flow}", {"sv-switch": {**common, "name": "Passport Renewal",
                              "flow": flow}}, {"NYC-01": {"name": "New York", "timezone": "America/New_York"}})  # fmt: skip
        stacks.append(build_stack(database_url, flows_dir, config, tmp_path / "instance"))
    try:
        yield stacks[0], stacks[1]
    finally:
        for stack in stacks:
            stack.rt.engine.dispose()


def _signed_in(stack: ReportStack) -> tuple[Any, str]:
    """A program manager of rpt-mixed, signed in; the client and the page's CSRF token."""
    make_account(stack.rt, "pm@example.gov", ("rpt-mixed",))
    client = stack.app.test_client()
    assert sign_in(client, "pm@example.gov").status_code == 302
    page = client.get(f"/dashboard/services/rpt-mixed?{Q4}")
    assert page.status_code == 200
    return client, csrf_of(page.text)


def test_a_reflection_the_text_box_allowed_is_kept_with_its_line_breaks_as_typed(quarter: Any) -> None:
    """The box's maxlength (10,000) counts a line break as one character; the browser posts it as CR LF. A reflection
    of 100 lines that fills the box was refused as "at most 10,000 characters" (400, the text lost)."""
    stack, key = quarter
    client, token = _signed_in(stack)
    typed = ("x" * 99 + "\n") * 99 + "x" * 100  # 10,000 characters in the box
    posted = typed.replace("\n", "\r\n")  # 10,099 as the browser sends them
    form = {"fiscal_year": "2026", "quarter": "4", "csrf_token": token}
    saved = client.post("/dashboard/services/rpt-mixed/reflection", data={**form, "text": posted})
    assert saved.status_code == 303, saved.get_data(as_text=True)[:500]
    doc = stack.client.get(f"/api/v1/reports/a11?{Q4}&service=rpt-mixed", headers=key).get_json()
    assert {r["reflection"] for r in doc["rows"]} == {typed}
    # Over the limit as typed is still refused.
    longer = client.post("/dashboard/services/rpt-mixed/reflection", data={**form, "text": posted + "x"})
    assert longer.status_code == 400


def _file(stack: ReportStack, key: dict[str, str]) -> str:
    answer = stack.client.post(SUBMISSIONS, json={"fiscal_year": 2026, "quarter": 4, "service": "rpt-mixed"},
                               headers=key)  # fmt: skip
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return str(answer.get_json()["id"])


def test_listing_the_filings_never_reads_the_filed_files(quarter: Any) -> None:
    """Every filing stores the response-level file (a row per respondent: megabytes for a busy quarter). The
    dashboard's page loaded every filing of the service whole, all four files of each, at every view; the API's
    list and one small file read them all too."""
    stack, key = quarter
    client, _ = _signed_in(stack)
    ids = [_file(stack, key) for _ in range(3)]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(stack.rt.engine, "before_cursor_execute", seen)
    try:
        page = client.get(f"/dashboard/services/rpt-mixed?{Q4}")
        listed = stack.client.get(f"{SUBMISSIONS}?{Q4}", headers=key)
        csv_file = stack.client.get(f"{SUBMISSIONS}/{ids[0]}?format=csv", headers=key)
        public = stack.client.get("/data/rpt-mixed")
        reading = list(statements)
        statements.clear()
        responses = stack.client.get(f"{SUBMISSIONS}/{ids[0]}?format=responses", headers=key)
    finally:
        event.remove(stack.rt.engine, "before_cursor_execute", seen)
    assert page.status_code == 200 and "Submitted" in page.text
    assert listed.status_code == 200 and len(listed.get_json()["submissions"]) == 3
    assert csv_file.status_code == 200 and csv_file.get_data().startswith(b"fiscal_year,")
    assert public.status_code == 200
    assert [s for s in reading if "responses_csv" in s or "collection_xlsx" in s] == []
    assert responses.status_code == 200 and responses.get_data().startswith(b"external_id,")
    assert any("responses_csv" in s for s in statements)  # the file asked for is read, of course


@ONLY_POSTGRESQL
def test_a_filing_while_answers_arrive_freezes_files_that_agree(quarter: Any, database_url: str) -> None:
    """On PostgreSQL the filing read its files with a dozen statements under READ COMMITTED: an answer committed in
    between was in the filed §6.2 file and not in the §6.1 file filed with it, and that stays so forever."""
    stack, key = quarter
    b = QuarterBuilder(stack.rt)
    b.report("rpt-mixed", "RACE1", local(NEW_YORK, 2026, 9, 1, 10, 0), email=True)
    baseline = _filed_counts(stack, key, _file(stack, key))
    arrived: list[bool] = []

    def answer_meanwhile(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The moment the filing starts reading the §6.2 file, after the §6.1 file: a customer's answer is committed.
        if arrived or "answered_positive" not in statement:
            return
        arrived.append(True)
        b.answer_invitation("rpt-mixed", "RACE1", {"satisfaction": 5, "trust": 5}, local(NEW_YORK, 2026, 9, 1, 10, 30))

    event.listen(stack.rt.engine, "before_cursor_execute", answer_meanwhile)
    try:
        raced = _filed_counts(stack, key, _file(stack, key))
    finally:
        event.remove(stack.rt.engine, "before_cursor_execute", answer_meanwhile)
    assert arrived
    respondents, rows = raced[0] - baseline[0], raced[1] - baseline[1]
    assert respondents == rows, f"the §6.1 file counts {respondents} new respondents, the §6.2 file has {rows} new rows"
    # The answer is in the next filing, in both files.
    after = _filed_counts(stack, key, _file(stack, key))
    assert after[0] - baseline[0] == after[1] - baseline[1] == 1


def _filed_counts(stack: ReportStack, key: dict[str, str], submission: str) -> tuple[int, int]:
    """(respondents of the filed §6.1 CSV, rows of the filed §6.2 CSV)."""
    collection = stack.client.get(f"{SUBMISSIONS}/{submission}?format=csv", headers=key).get_data(as_text=True)
    responses = stack.client.get(f"{SUBMISSIONS}/{submission}?format=responses", headers=key).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(collection)))
    return sum(int(r["volume_of_respondents"]) for r in rows), len(responses.splitlines()) - 1


def test_the_public_pages_tell_caches_to_ask_again_and_to_keep_languages_apart(quarter: Any) -> None:
    """``/data`` answered in the visitor's language (``Accept-Language``) with no ``Vary`` and no ``Cache-Control``: a
    shared cache in front of the program's site could serve the Spanish page to everybody, or a quarter's figures
    (and its CSV, whose address stays the same) as they stood before a later filing superseded them."""
    stack, key = quarter
    _file(stack, key)
    english = stack.client.get("/data/rpt-mixed")
    spanish = stack.client.get("/data/rpt-mixed", headers={"Accept-Language": "es"})
    assert english.status_code == spanish.status_code == 200 and english.data != spanish.data
    for url in ("/data", "/data/rpt-mixed", "/data/rpt-mixed/2026-q4.csv", "/data/rpt-mixed/2027-q1.csv",
                "/data/no-such-service"):  # fmt: skip
        answer = stack.client.get(url)
        assert answer.headers.get("Cache-Control") == "no-cache", url
        if answer.mimetype == "text/html":
            assert "Accept-Language" in answer.vary, url


@ONLY_POSTGRESQL
@pytest.mark.parametrize("race", ["two saves", "a save and a removal"])
def test_a_reflection_saved_while_another_request_writes_it_lands(quarter: Any, database_url: str, race: str) -> None:
    """A double-click on "Save the reflection" (or two people of the team) on PostgreSQL: the second save read no row,
    the first committed one, and the second's INSERT met it: a 500. A save that read the row while another request
    removed it (empty text) updated nothing: a 500 too."""
    stack, key = quarter
    client, token = _signed_in(stack)
    form = {"fiscal_year": "2026", "quarter": "4", "csrf_token": token}
    if race == "a save and a removal":
        first = client.post("/dashboard/services/rpt-mixed/reflection", data={**form, "text": "first"})
        assert first.status_code == 303
    meanwhile = "" if race == "a save and a removal" else "from the other tab"
    done: list[bool] = []

    def other_request(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The moment this save writes its row, another request's write of the same reflection has just committed.
        if done or not statement.startswith(("INSERT INTO reflections", "UPDATE reflections")):
            return
        done.append(True)
        with unit_of_work(stack.rt.sessions) as session:
            submissions.save_reflection(stack.rt, session, FiscalQuarter(2026, 4), "rpt-mixed", meanwhile,
                                        "colleague@example.gov")  # fmt: skip

    event.listen(stack.rt.engine, "before_cursor_execute", other_request)
    try:
        saved = client.post("/dashboard/services/rpt-mixed/reflection", data={**form, "text": "what we learned"})
    finally:
        event.remove(stack.rt.engine, "before_cursor_execute", other_request)
    assert done
    assert saved.status_code == 303, saved.get_data(as_text=True)[:300]
    doc = stack.client.get(f"/api/v1/reports/a11?{Q4}&service=rpt-mixed", headers=key).get_json()
    assert {r["reflection"] for r in doc["rows"]} == {"what we learned"}


@pytest.mark.parametrize("form_action", ["submit", "reflection"])
def test_a_form_posted_after_the_session_ended_leads_back_to_its_quarter_after_signing_in(quarter: Any,
                                                                                         form_action: str) -> None:  # fmt: skip
    """The page stayed open past the session's 12 hours; "Submit" sent the person to sign in with ``next`` the form's
    address, and signing in led to a GET of it: a 405 page instead of the quarter being filed."""
    stack, key = quarter
    client, token = _signed_in(stack)
    with client.session_transaction() as session:
        session["at"] -= 12 * 3600 + 1
    posted = client.post(f"/dashboard/services/rpt-mixed/{form_action}",
                         data={"fiscal_year": "2026", "quarter": "4", "text": "x", "csrf_token": token})  # fmt: skip
    assert posted.status_code == 302 and "/dashboard/sign-in?next=" in posted.headers["Location"]
    assert stack.client.get(f"{SUBMISSIONS}?{Q4}", headers=key).get_json()["submissions"] == []
    target = parse_qs(urlsplit(posted.headers["Location"]).query)["next"][0]
    page = client.get(posted.headers["Location"])
    signed = client.post("/dashboard/sign-in", data={"email": "pm@example.gov", "password": PASSWORD,
                                                     "csrf_token": csrf_of(page.text), "next": target})  # fmt: skip
    assert signed.status_code == 302 and signed.headers["Location"] == target
    back = client.get(target)
    assert back.status_code == 200, back.status_code
    assert 'id="submit-quarter"' in back.text and "FY2026 Q4" in back.text


def test_masking_a_long_comment_takes_time_in_proportion_to_its_length() -> None:
    """A comment without a space (2,000 letters, what the survey box takes) took 150 ms to mask, 10,000 (a kiosk's
    limit) 3.5 s: the e-mail pattern tried every place to the end of the text. The dashboard masks its 20 newest
    comments at every view, the §6.2 file and every filing each comment of the quarter."""

    def cost(text: str) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            mask_contacts(text)
            best = min(best, time.perf_counter() - started)
        return best

    for glued in ("a", "a.", "1"):
        short, long = cost(glued * (1_000 // len(glued))), cost(glued * (8_000 // len(glued)))
        assert long / short < 25, f"8 times the text took {long / short:.0f} times as long ({glued!r})"
    # What it masks is unchanged: an address glued to text keeps the text, the address (its last 64) goes.
    assert mask_contacts("x" * 100 + "@example.com") == "x" * 36 + "[email]"
    assert mask_contacts("pat@example.com+jo@x.org, call 202-555-0123") == "[email][email], call [phone]"


def test_a_past_quarter_reads_as_its_survey_asked_after_the_service_switched_flows(database_url: str, flows_dir: Path,
                                                                                   tmp_path: Path) -> None:  # fmt: skip
    """The service asked trust on a 5-point scale in FY2026 Q4, then switched to a thumbs flow (a11-drivers). The
    dashboard's page of FY2026 Q4 took the thumbs from today's flow: the 3 the customer gave showed as "—" and the
    mean as "—", while the quarter's A-11 file (and its download on the same page) reports the 3 and the mean 3.00."""
    with _switched_flows(database_url, flows_dir, tmp_path, "a11-standard", "a11-drivers") as (before, after):
        b = QuarterBuilder(before.rt)
        b.report("sv-switch", "S1", local(NEW_YORK, 2026, 7, 10, 10, 0), email=True)
        b.answer_invitation("sv-switch", "S1", {"satisfaction": 2, "trust": 3}, local(NEW_YORK, 2026, 7, 10, 10, 30))
        make_account(after.rt, "pm@example.gov", ("sv-switch",))
        client = after.app.test_client()
        assert sign_in(client, "pm@example.gov").status_code == 302
        page = client.get(f"/dashboard/services/sv-switch?{Q4}")
        assert page.status_code == 200
        ratings = rows_by_first_cell(page.text, "table-ratings")
        # Points 1-5, answers, mean, share agreeing: as the A-11 file of the quarter has them.
        assert ratings["Trust"] == ["0", "0", "1", "0", "0", "1", "3.00", "0.0\u00a0%"]
        filed = list(csv.DictReader(io.StringIO(client.get(f"/dashboard/services/sv-switch/a11.csv?{Q4}").text)))
        assert [(r["trust_3"], r["trust_mean"]) for r in filed if r["trust_n"] == "1"] == [("1", "3.00")]


def test_an_unknown_report_parameter_is_named_cut_not_echoed_whole(quarter: Any) -> None:
    """``serve`` (waitress) takes a request line of up to 256 KB: a parameter name of 200,000 characters came back
    whole in the 400's ``errors``, on the report, the responses file, the list of filings and a filed file."""
    stack, key = quarter
    submission = _file(stack, key)
    long_name = "n" * 200_000
    for path in (f"/api/v1/reports/a11?{Q4}", f"/api/v1/reports/a11/responses?{Q4}", f"{SUBMISSIONS}?{Q4}",
                 f"{SUBMISSIONS}/{submission}?format=csv"):  # fmt: skip
        answer = stack.client.get(f"{path}&{long_name}=1", headers=key)
        assert answer.status_code == 400, path
        (error,) = answer.get_json()["errors"]
        assert error["message"] == "unknown parameter" and error["field"].startswith("nnnn"), path
        assert len(answer.get_data()) < 2_000, (path, len(answer.get_data()))


def test_a_past_quarters_chosen_drivers_show_after_the_service_switched_to_five_point_drivers(
    database_url: str, flows_dir: Path, tmp_path: Path
) -> None:
    """The service asked "what went well" (choose-all, a11-drivers) in FY2026 Q4, then switched to a flow asking each
    driver as a 5-point question (a11-standard). The dashboard's page of FY2026 Q4 said "This survey asks about each
    driver as a 5-point question" and showed none of the drivers chosen, which the quarter's A-11 file reports."""
    with _switched_flows(database_url, flows_dir, tmp_path, "a11-drivers", "a11-standard") as (before, after):
        b = QuarterBuilder(before.rt)
        b.report("sv-switch", "D1", local(NEW_YORK, 2026, 8, 10, 10, 0), email=True)
        answered = local(NEW_YORK, 2026, 8, 10, 10, 30)
        b.answer_invitation("sv-switch", "D1", {"trust": 5, "went_well": ("ease",)}, answered)
        make_account(after.rt, "pm@example.gov", ("sv-switch",))
        client = after.app.test_client()
        assert sign_in(client, "pm@example.gov").status_code == 302
        page = client.get(f"/dashboard/services/sv-switch?{Q4}")
        assert page.status_code == 200
        assert rows_by_first_cell(page.text, "table-drivers")["Ease"] == ["1", "0"]  # positive, negative
        filed = list(csv.DictReader(io.StringIO(client.get(f"/dashboard/services/sv-switch/a11.csv?{Q4}").text)))
        assert sum(int(r["positive_ease"] or 0) for r in filed) == 1


@ONLY_POSTGRESQL
def test_the_live_file_counts_agree_when_an_answer_arrives_while_it_is_read(quarter: Any, database_url: str) -> None:
    """On PostgreSQL the §6.1 file's figures came from a handful of statements under READ COMMITTED: an answer
    committed between the respondents' count and the drivers' count was a driver chosen by nobody the file counts."""
    stack, _ = quarter
    key = stack.key(["rpt-thumbs"])
    url = f"/api/v1/reports/a11?{Q4}&service=rpt-thumbs"
    b = QuarterBuilder(stack.rt)
    b.report("rpt-thumbs", "RACE2", local(CHICAGO, 2026, 9, 1, 10, 0), email=True)

    def sums(doc: dict[str, Any]) -> tuple[int, int]:
        return (sum(r["volume_of_respondents"] for r in doc["rows"]), sum(r["positive_ease"] or 0 for r in doc["rows"]))

    baseline = sums(stack.client.get(url, headers=key).get_json())
    arrived: list[bool] = []

    def answer_meanwhile(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The moment the report counts the drivers chosen, after it counted the respondents: an answer is committed.
        if arrived or "count(DISTINCT" not in statement or "answer_choices" not in statement:
            return
        arrived.append(True)
        b.answer_invitation("rpt-thumbs", "RACE2", {"trust": 5, "went_well": ("ease",)}, local(CHICAGO, 2026, 9, 1, 11))

    event.listen(stack.rt.engine, "before_cursor_execute", answer_meanwhile)
    try:
        raced = sums(stack.client.get(url, headers=key).get_json())
    finally:
        event.remove(stack.rt.engine, "before_cursor_execute", answer_meanwhile)
    assert arrived
    assert raced[0] - baseline[0] == raced[1] - baseline[1], (baseline, raced)
    after = sums(stack.client.get(url, headers=key).get_json())
    assert (after[0] - baseline[0], after[1] - baseline[1]) == (1, 1)
