"""Filing a quarter (SPEC §6 "Submissions"): the API, the CLI and the dashboard freeze the four files with who and
when; the filed bytes never change after new bounces and answers; a later submission supersedes; reflections.

The quarter is the fixture quarter of ``tests/test_reports_a11.py`` (FY2026 Q4), built through the real engine on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import uuid
from typing import Any

import pytest

from engine.reporting import formats, submissions
from engine.reporting.fiscal import FiscalQuarter
from tests import reports_support
from tests.dashboard_support import csrf_of, make_account, sign_in
from tests.reports_support import NEW_YORK, QuarterBuilder, ReportStack, local
from tests.test_reports_a11 import build_quarter

report_config_dir = reports_support.report_config_dir
report_stack = reports_support.report_stack

Q4 = "fiscal_year=2026&quarter=4"
SUBMISSIONS = "/api/v1/reports/a11/submissions"


@pytest.fixture
def quarter(report_stack: ReportStack) -> tuple[ReportStack, dict[str, str]]:
    build_quarter(report_stack)
    return report_stack, report_stack.key(["rpt-mixed"])


def _files(stack: ReportStack, key: dict[str, str], submission: str) -> dict[str, bytes]:
    out = {}
    for fmt in ("csv", "json", "xlsx", "responses"):
        answer = stack.client.get(f"{SUBMISSIONS}/{submission}?format={fmt}", headers=key)
        assert answer.status_code == 200, (fmt, answer.get_data(as_text=True))
        out[fmt] = answer.get_data()
    return out


def _live(stack: ReportStack, key: dict[str, str]) -> dict[str, bytes]:
    base = f"/api/v1/reports/a11?{Q4}&service=rpt-mixed"
    return {
        "csv": stack.client.get(base + "&format=csv", headers=key).get_data(),
        "json": stack.client.get(base + "&format=json", headers=key).get_data(),
        "responses": stack.client.get(f"/api/v1/reports/a11/responses?{Q4}&service=rpt-mixed", headers=key).get_data(),
    }


def _more_data(stack: ReportStack) -> None:
    """What arrives after filing: a late bounce of an opportunity, and a new answered transaction."""
    b = QuarterBuilder(stack.rt)
    b.fail("rpt-mixed", "M4", local(NEW_YORK, 2026, 10, 3, 9, 0))
    b.report("rpt-mixed", "LATE1", local(NEW_YORK, 2026, 9, 29, 12, 0), email=True)
    b.answer_invitation("rpt-mixed", "LATE1", {"satisfaction": 1, "trust": 1}, local(NEW_YORK, 2026, 9, 29, 12, 30))


def test_a_filed_quarter_reads_back_byte_identical_after_new_bounces_and_answers(quarter: Any) -> None:
    stack, key = quarter
    before = _live(stack, key)
    answer = stack.client.post(SUBMISSIONS, json={"fiscal_year": 2026, "quarter": 4, "service": "rpt-mixed"},
                               headers=key)  # fmt: skip
    assert answer.status_code == 201, answer.get_data(as_text=True)
    body = answer.get_json()
    assert set(body) == {"id", "fiscal_year", "quarter", "service", "submitted_at", "submitted_by"}
    assert (body["fiscal_year"], body["quarter"], body["service"]) == (2026, 4, "rpt-mixed")
    assert body["submitted_by"].startswith("api-key:rpt-")
    assert uuid.UUID(body["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["submitted_at"])
    filed = _files(stack, key, body["id"])
    # The filed files are the files as they stood: the report API's bytes (JSON: the same document).
    assert filed["csv"] == before["csv"] and filed["responses"] == before["responses"]
    assert json.loads(filed["json"]) == json.loads(before["json"])
    header, rows = formats.read_xlsx(filed["xlsx"])
    assert header == next(csv.reader(io.StringIO(filed["csv"].decode())))
    assert len(rows) == len(json.loads(filed["json"])["rows"])

    _more_data(stack)
    after = _live(stack, key)
    assert after["csv"] != before["csv"] and after["responses"] != before["responses"]  # the live data moved
    assert _files(stack, key, body["id"]) == filed  # the filed bytes did not

    # A second filing supersedes the first; both are kept and listed, newest first.
    second = stack.client.post(SUBMISSIONS, json={"fiscal_year": 2026, "quarter": 4, "service": "rpt-mixed"},
                               headers=key).get_json()  # fmt: skip
    listed = stack.client.get(f"{SUBMISSIONS}?{Q4}", headers=key)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.get_json()["submissions"]] == [second["id"], body["id"]]
    assert _files(stack, key, second["id"])["csv"] == after["csv"]
    assert _files(stack, key, body["id"]) == filed


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"fiscal_year": 2026, "quarter": 4, "service": "rpt-mixed", "extra": 1}, {"extra"}),
        ({"fiscal_year": "2026", "quarter": 5, "service": "rpt-mixed"}, {"fiscal_year", "quarter"}),
        ({"fiscal_year": True, "quarter": 4}, {"fiscal_year", "service"}),
        ({"fiscal_year": 2026, "quarter": 4, "service": "nope"}, {"service"}),
    ],
)
def test_bad_submissions_are_422_naming_each_field_and_file_nothing(quarter: Any, payload: Any, fields: Any) -> None:
    stack, key = quarter
    answer = stack.client.post(SUBMISSIONS, json=payload, headers=key)
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert {e["field"] for e in answer.get_json()["errors"]} == fields
    assert stack.client.get(f"{SUBMISSIONS}?{Q4}", headers=key).get_json() == {"submissions": []}


def test_a_key_files_and_reads_only_its_services(quarter: Any) -> None:
    stack, key = quarter
    other = stack.key(["rpt-thumbs"])
    intake_only = stack.key(["rpt-mixed"], ("intake",))
    payload = {"fiscal_year": 2026, "quarter": 4, "service": "rpt-mixed"}
    assert stack.client.post(SUBMISSIONS, json=payload, headers=other).status_code == 403
    assert stack.client.post(SUBMISSIONS, json=payload, headers=intake_only).status_code == 403
    filed = stack.client.post(SUBMISSIONS, json=payload, headers=key).get_json()
    assert stack.client.get(f"{SUBMISSIONS}/{filed['id']}", headers=other).status_code == 404
    assert stack.client.get(f"{SUBMISSIONS}/{uuid.uuid4()}", headers=key).status_code == 404
    assert stack.client.get(f"{SUBMISSIONS}/not-a-uuid", headers=key).status_code == 404
    assert stack.client.get(f"{SUBMISSIONS}?{Q4}&service=rpt-mixed", headers=other).status_code == 403
    assert stack.client.get(f"{SUBMISSIONS}?{Q4}", headers=other).get_json() == {"submissions": []}
    bad = stack.client.get(f"{SUBMISSIONS}/{filed['id']}?format=pdf&x=1", headers=key)
    assert bad.status_code == 400
    assert {e["field"] for e in bad.get_json()["errors"]} == {"format", "x"}
    assert stack.client.get(f"{SUBMISSIONS}?quarter=9", headers=key).status_code == 400


def test_the_cli_files_a_quarter_and_prints_the_id_alone_last(quarter: Any) -> None:
    stack, key = quarter
    done = stack.cli("report", "submit", "--fiscal-year", "2026", "--quarter", "4", "--service", "rpt-mixed",
                     "--by", "Jo Analyst")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    last = done.stdout.decode().strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f-]{36}", last)
    (listed,) = stack.client.get(f"{SUBMISSIONS}?{Q4}", headers=key).get_json()["submissions"]
    assert (listed["id"], listed["submitted_by"]) == (last, "Jo Analyst")
    live = stack.client.get(f"/api/v1/reports/a11?{Q4}&service=rpt-mixed&format=csv", headers=key).get_data()
    assert _files(stack, key, last)["csv"] == live
    refused = stack.cli("report", "submit", "--fiscal-year", "2026", "--quarter", "4", "--service", "nope")
    assert refused.returncode == 2 and b"nope" in refused.stderr


def test_the_dashboard_files_a_quarter_keeps_a_reflection_and_says_what_moved(quarter: Any) -> None:
    stack, key = quarter
    make_account(stack.rt, "pm@example.gov", ("rpt-mixed",))
    client = stack.app.test_client()
    assert sign_in(client, "pm@example.gov").status_code == 302
    page_url = f"/dashboard/services/rpt-mixed?{Q4}"
    page = client.get(page_url)
    assert page.status_code == 200
    assert "Draft" in page.text and 'id="submit-quarter"' in page.text
    form = {"fiscal_year": "2026", "quarter": "4"}
    # No CSRF token: refused, nothing written.
    assert client.post("/dashboard/services/rpt-mixed/reflection", data={**form, "text": "x"}).status_code == 400
    assert client.post("/dashboard/services/rpt-mixed/submit", data=form).status_code == 400
    token = csrf_of(page.text)
    for year, number in (("2026", "²"), ("1" * 5000, "4"), ("2026", "٤")):  # int() refuses or misreads these
        bad = {"fiscal_year": year, "quarter": number, "csrf_token": token}
        assert client.post("/dashboard/services/rpt-mixed/submit", data=bad).status_code == 400
        assert client.get(f"/dashboard/services/rpt-mixed?fiscal_year={year}&quarter={number}").status_code == 400
    reflection = "=We shortened the form; wait times fell."
    saved = client.post("/dashboard/services/rpt-mixed/reflection",
                        data={**form, "text": reflection, "csrf_token": token})  # fmt: skip
    assert saved.status_code == 303
    too_long = client.post("/dashboard/services/rpt-mixed/reflection",
                           data={**form, "text": "x" * 10_001, "csrf_token": token})  # fmt: skip
    assert too_long.status_code == 400
    doc = stack.client.get(f"/api/v1/reports/a11?{Q4}&service=rpt-mixed", headers=key).get_json()
    assert {r["reflection"] for r in doc["rows"]} == {reflection}
    columns = list(doc["rows"][0])
    assert columns[-3:] == ["bureau", "service_provider", "reflection"]

    filed = client.post("/dashboard/services/rpt-mixed/submit", data={**form, "csrf_token": token})
    assert filed.status_code == 303
    (listed,) = stack.client.get(f"{SUBMISSIONS}?{Q4}", headers=key).get_json()["submissions"]
    assert listed["submitted_by"] == "pm@example.gov"
    page = client.get(page_url).text
    assert "Submitted" in page and "pm@example.gov" in page
    assert "Nothing has moved" in page
    assert re.search(r'quarter=4">FY2026 Q4</a>:\s+by pm@example.gov on', page)
    spanish = client.get(page_url, headers={"Accept-Language": "es"}).text
    assert "Presentado" in spanish and "Presentar de nuevo" in spanish

    _more_data(stack)
    page = client.get(page_url).text
    assert "What moved in the live figures since it was submitted" in page
    moved = re.findall(r'<tr class="changed"><th scope="row">([^<]+)</th>', page)
    assert "Customers" in moved and "Respondents" in moved and "Survey opportunities" in moved
    # Shares as the rest of the page shows them, percentages (the filed 4-place cell, its point moved), not 0.2105.
    for name in ("Response rate", "Trust share agreeing"):
        cells = re.search(rf'<th scope="row">{name}</th>\s*<td>([^<]+)</td><td>([^<]+?)(?: <span|</td>)', page)
        assert cells is not None and all(re.fullmatch(r"(\d{1,3}\.\d\d\xa0%|—)", c) for c in cells.groups()), cells
        assert any(c != "—" for c in cells.groups())
    # The reflection stays editable; the filing keeps the text it was filed with.
    client.post("/dashboard/services/rpt-mixed/reflection", data={**form, "text": "changed", "csrf_token": token})
    stored = stack.client.get(f"{SUBMISSIONS}/{listed['id']}?format=json", headers=key).get_json()
    assert {r["reflection"] for r in stored["rows"]} == {reflection}
    other = stack.client.get(f"/api/v1/reports/a11?{Q4}&service=rpt-mixed", headers=key).get_json()
    assert {r["reflection"] for r in other["rows"]} == {"changed"}


def test_submitted_quarters_reads_a_services_filings_back(quarter: Any) -> None:
    stack, key = quarter
    for _ in range(2):
        stack.client.post(SUBMISSIONS, json={"fiscal_year": 2026, "quarter": 4, "service": "rpt-mixed"}, headers=key)
    stack.client.post(SUBMISSIONS, json={"fiscal_year": 2026, "quarter": 3, "service": "rpt-mixed"}, headers=key)
    with stack.rt.sessions() as session:
        filed = submissions.submitted_quarters(stack.rt, session, "rpt-mixed")
        assert [(s.fiscal_year, s.quarter) for s in filed] == [(2026, 4), (2026, 3)]
        standing = submissions.latest(stack.rt, session, FiscalQuarter(2026, 4), "rpt-mixed")
        assert standing is not None and filed[0].id == standing.id


def test_a_reflection_with_control_characters_still_reports_and_files_in_every_format(quarter: Any) -> None:
    """XML (so XLSX) cannot hold U+0001-U+0008, U+000B, U+000C or U+000E-U+001F: openpyxl raises on them. A text
    the dashboard stored is still reported (SPEC §2 rule 11), in XLSX with those characters as U+FFFD."""
    stack, key = quarter
    make_account(stack.rt, "pm@example.gov", ("rpt-mixed",))
    client = stack.app.test_client()
    assert sign_in(client, "pm@example.gov").status_code == 302
    token = csrf_of(client.get(f"/dashboard/services/rpt-mixed?{Q4}").text)
    text = "Forms\x0bshorter\x01; =wait\x1ffell"
    saved = client.post("/dashboard/services/rpt-mixed/reflection",
                        data={"fiscal_year": "2026", "quarter": "4", "text": text, "csrf_token": token})  # fmt: skip
    assert saved.status_code == 303
    xlsx = stack.client.get(f"/api/v1/reports/a11?{Q4}&service=rpt-mixed&format=xlsx", headers=key)
    assert xlsx.status_code == 200
    header, rows = formats.read_xlsx(xlsx.get_data())
    assert {r[header.index("reflection")] for r in rows} == {"Forms\ufffdshorter\ufffd; =wait\ufffdfell"}
    filed = stack.client.post(SUBMISSIONS, json={"fiscal_year": 2026, "quarter": 4, "service": "rpt-mixed"},
                              headers=key)  # fmt: skip
    assert filed.status_code == 201, filed.get_data(as_text=True)
    stored = stack.client.get(f"{SUBMISSIONS}/{filed.get_json()['id']}?format=json", headers=key).get_json()
    assert {r["reflection"] for r in stored["rows"]} == {text}


def test_a_quarter_that_has_not_begun_is_refused_everywhere_and_nothing_is_filed(quarter: Any) -> None:
    """Filing freezes and publishes (``/data``) a quarter's files: a quarter not yet begun, in the service's time
    zone, would be published as empty figures. The current quarter may be filed (and filed again as it fills)."""
    from datetime import UTC, datetime

    from engine.reporting.fiscal import fiscal_quarter

    stack, key = quarter
    current = fiscal_quarter(datetime.now(UTC), NEW_YORK)
    for later in (current.next(), FiscalQuarter(2999, 4)):
        payload = {"fiscal_year": later.fiscal_year, "quarter": later.quarter, "service": "rpt-mixed"}
        answer = stack.client.post(SUBMISSIONS, json=payload, headers=key)
        assert answer.status_code == 422, answer.get_data(as_text=True)
        assert {e["field"] for e in answer.get_json()["errors"]} == {"fiscal_year", "quarter"}
        done = stack.cli("report", "submit", "--fiscal-year", str(later.fiscal_year), "--quarter",
                         str(later.quarter), "--service", "rpt-mixed", "--by", "Jo")  # fmt: skip
        assert done.returncode == 1 and b"has not begun" in done.stderr, done.stderr
    make_account(stack.rt, "pm@example.gov", ("rpt-mixed",))
    client = stack.app.test_client()
    assert sign_in(client, "pm@example.gov").status_code == 302
    token = csrf_of(client.get("/dashboard/services/rpt-mixed").text)
    later = current.next()
    refused = client.post("/dashboard/services/rpt-mixed/submit",
                          data={"fiscal_year": str(later.fiscal_year), "quarter": str(later.quarter), "csrf_token": token})  # fmt: skip
    assert refused.status_code == 400 and "has not begun" in refused.text
    for later in (current.next(), FiscalQuarter(2999, 4)):
        listed = stack.client.get(f"{SUBMISSIONS}?fiscal_year={later.fiscal_year}&quarter={later.quarter}", headers=key)
        assert listed.get_json() == {"submissions": []}
    payload = {"fiscal_year": current.fiscal_year, "quarter": current.quarter, "service": "rpt-mixed"}
    assert stack.client.post(SUBMISSIONS, json=payload, headers=key).status_code == 201


def test_a_filed_files_format_given_twice_is_a_400_naming_it_not_the_first_one_served(quarter: Any) -> None:
    """``?format=json&format=csv`` asks for two files at once: the report endpoints refuse a repeated parameter
    (400 naming it); reading a filed quarter back does the same, rather than serving whichever came first."""
    stack, key = quarter
    filed = stack.client.post(SUBMISSIONS, json={"fiscal_year": 2026, "quarter": 4, "service": "rpt-mixed"},
                              headers=key).get_json()  # fmt: skip
    for query in ("format=json&format=csv", "format=csv&format=csv"):
        answer = stack.client.get(f"{SUBMISSIONS}/{filed['id']}?{query}", headers=key)
        assert answer.status_code == 400, (query, answer.status_code)
        assert answer.mimetype == "application/problem+json"
        assert answer.get_json()["errors"] == [{"field": "format", "message": "is given more than once"}]
    assert stack.client.get(f"{SUBMISSIONS}/{filed['id']}?format=json", headers=key).status_code == 200


def test_what_moved_gives_a_thumbs_trust_question_no_mean(quarter: Any) -> None:
    """``rpt-thumbs`` asks trust as thumbs up/down (stored as 1 and 5): its §6.1 rows leave ``trust_mean`` empty
    (SPEC §6.1), and so does the dashboard's table of what moved since the filing; the share agreeing stands."""
    stack, _ = quarter
    key = stack.key(["rpt-thumbs"])
    filed = stack.client.post(SUBMISSIONS, json={"fiscal_year": 2026, "quarter": 4, "service": "rpt-thumbs"},
                              headers=key)  # fmt: skip
    assert filed.status_code == 201, filed.get_data(as_text=True)
    (row,) = csv.DictReader(io.StringIO(_files(stack, key, filed.get_json()["id"])["csv"].decode()))
    assert (row["trust_1"], row["trust_5"], row["trust_mean"], row["trust_agree_pct"]) == ("1", "2", "", "0.6667")
    make_account(stack.rt, "thumbs@example.gov", ("rpt-thumbs",))
    client = stack.app.test_client()
    assert sign_in(client, "thumbs@example.gov").status_code == 302
    page = client.get(f"/dashboard/services/rpt-thumbs?{Q4}").text
    moved = dict(re.findall(r'<th scope="row">([^<]+)</th>\s*<td>([^<]*)</td>', page))
    assert (moved["Trust mean (1-5)"], moved["Trust share agreeing"]) == ("—", "66.67\xa0%")
    assert (moved["Respondents"], moved["Satisfaction mean (1-5)"]) == ("3", "—")


def _signed_in_page(stack: ReportStack) -> tuple[Any, str]:
    client = stack.app.test_client()
    assert sign_in(client, "pm@example.gov").status_code == 302
    page = client.get(f"/dashboard/services/rpt-mixed?{Q4}")
    assert page.status_code == 200
    return client, page.text


def test_a_second_click_of_submit_files_nothing_more(quarter: Any) -> None:
    """A double click on "Submit" sent the form twice, and each request filed the quarter: two submissions a moment
    apart, the second "superseding" the first. The form names the filing it saw standing; a request arriving once
    another stands files nothing, and leads to the page showing the filing that stands."""
    stack, key = quarter
    make_account(stack.rt, "pm@example.gov", ("rpt-mixed",))
    client, page = _signed_in_page(stack)
    assert 'name="standing" value=""' in page
    form = {"fiscal_year": "2026", "quarter": "4", "standing": "", "csrf_token": csrf_of(page)}
    for _ in range(2):
        filed = client.post("/dashboard/services/rpt-mixed/submit", data=form)
        assert filed.status_code == 303 and filed.location.endswith("quarter=4#filing-h")
    (first,) = stack.client.get(f"{SUBMISSIONS}?{Q4}", headers=key).get_json()["submissions"]
    # "Submit again", from the page that shows that filing, files once more, and once only.
    page = client.get(f"/dashboard/services/rpt-mixed?{Q4}").text
    assert f'name="standing" value="{first["id"]}"' in page
    for _ in range(2):
        again = client.post("/dashboard/services/rpt-mixed/submit", data={**form, "standing": first["id"]})
        assert again.status_code == 303
    listed = stack.client.get(f"{SUBMISSIONS}?{Q4}", headers=key).get_json()["submissions"]
    assert [s["id"] for s in listed][1:] == [first["id"]] and len(listed) == 2


def test_two_clicks_at_once_file_once(quarter: Any) -> None:
    """The second click's request arrives while the first one's filing is still being built (a filing reads the
    whole quarter). On PostgreSQL both read "a draft" and both filed, unless filings wait for one another."""
    import threading

    stack, key = quarter
    make_account(stack.rt, "pm@example.gov", ("rpt-mixed",))
    pages = [_signed_in_page(stack) for _ in range(2)]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def click(client: Any, page: str) -> None:
        form = {"fiscal_year": "2026", "quarter": "4", "standing": "", "csrf_token": csrf_of(page)}
        start.wait()
        statuses.append(client.post("/dashboard/services/rpt-mixed/submit", data=form).status_code)

    threads = [threading.Thread(target=click, args=page) for page in pages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [303, 303]
    assert len(stack.client.get(f"{SUBMISSIONS}?{Q4}", headers=key).get_json()["submissions"]) == 1


def test_the_response_level_file_is_stored_compressed_and_served_as_filed(quarter: Any) -> None:
    """The response-level file (a line per respondent) was joined whole in memory, then encoded, then stored: the
    process filing a large quarter held it twice over. It is compressed as it is built and stored so; the API
    serves the bytes as filed, and a filing stored before (plain) is served as it was stored."""
    from engine.store.db import unit_of_work
    from engine.store.models import Submission

    stack, key = quarter
    live = _live(stack, key)["responses"]
    body = stack.client.post(SUBMISSIONS, json={"fiscal_year": 2026, "quarter": 4, "service": "rpt-mixed"},
                             headers=key).get_json()  # fmt: skip
    with stack.rt.sessions() as session:
        row = session.get(Submission, uuid.UUID(body["id"]))
        assert row is not None
        stored = row.responses_csv
    assert stored[:2] == b"\x1f\x8b" and gzip.decompress(stored) == live
    served = stack.client.get(f"{SUBMISSIONS}/{body['id']}?format=responses", headers=key)
    assert served.status_code == 200 and served.get_data() == live
    assert served.headers["Content-Type"].startswith("text/csv")
    assert served.headers["Content-Disposition"] == 'attachment; filename="a11-responses-rpt-mixed-fy2026-q4.csv"'
    # A filing stored before this change holds the plain CSV: served as it was.
    with unit_of_work(stack.rt.sessions) as session:
        filed = session.get(Submission, uuid.UUID(body["id"]))
        assert filed is not None
        filed.responses_csv = live
    assert stack.client.get(f"{SUBMISSIONS}/{body['id']}?format=responses", headers=key).get_data() == live
