"""SPEC §2 rule 11 at the intake edges: hostile numbers, text, nesting and times get a precise 4xx, nothing stored.

Every case runs on SQLite and PostgreSQL (the ``database_url`` fixture), through the Flask test client.
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime, timedelta

import pytest

from engine.delivery.dispatch import Dispatcher
from engine.settings import load_settings
from engine.store.db import make_engine
from tests.helpers import MeteredBody, counts, post, tx
from tests.kiosk_support import API as KIOSK_API
from tests.kiosk_support import COOKIE, enrolled

NUL = "A\x00B"
SURROGATE = "A\ud800B"
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"')


def raw_post(client, path: str, text: str, auth: dict[str, str], method: str = "POST"):
    return client.open(path, method=method, data=text, content_type="application/json", headers=auth)


def fields(response) -> list[str]:
    return [e["field"] for e in response.get_json().get("errors", [])]


# -- 1. numbers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["1e999", "-1e999", "Infinity", "-Infinity", "NaN", "9" * 400, "-" + "9" * 5000,
                                    "1000000000001", "1e13"])  # fmt: skip
def test_a_number_that_no_report_can_add_up_is_refused_naming_the_field(client, auth, runtime, number):
    before = counts(runtime)
    body = json.dumps(tx("N-1", service_level={"wait_seconds": "N"})).replace('"N"', number)
    response = raw_post(client, "/api/v1/transactions", body, auth)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert fields(response) == ["service_level.wait_seconds"]
    assert counts(runtime) == before


def test_the_largest_allowed_numbers_are_kept(client, auth):
    body = tx("N-2", service_level={"wait_seconds": 10**12, "handle_seconds": -(10**12), "score": 0.5})
    assert post(client, body, auth).status_code == 200


def test_in_a_batch_only_the_bad_item_is_invalid(client, auth):
    def item(external_id: str) -> str:
        return json.dumps(tx(external_id, contact={"email": f"{external_id.lower()}@example.com"}))

    good = item("N-3")
    bad = json.dumps(tx("N-4", service_level={"w": "INF"})).replace('"INF"', "Infinity")
    nul = json.dumps(tx(NUL, contact={"email": "n-5@example.com"}))
    text = f'{{"transactions": [{good}, {bad}, {nul}, {item("N-6")}]}}'
    response = raw_post(client, "/api/v1/transactions", text, auth)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["decision"] for r in results] == ["scheduled", "invalid", "invalid", "scheduled"]
    assert results[1]["errors"][0]["field"] == "transactions[1].service_level.w"
    assert results[2]["errors"][0]["field"] == "transactions[2].id"


# -- 2. text a database cannot keep --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("id", lambda v: tx(v)),
        ("service", lambda v: tx("T-1", service=v)),
        ("office", lambda v: tx("T-1", office=v)),
        ("language", lambda v: tx("T-1", language=v)),
        ("attributes.reason", lambda v: tx("T-1", attributes={"reason": v})),
        ("contact.phone", lambda v: tx("T-1", contact={"phone": v})),
        ("contact.email", lambda v: tx("T-1", contact={"email": f"p{v}@example.com"})),
        ("contact.timezone", lambda v: tx("T-1", contact={"timezone": v})),
    ],
)
def test_unstorable_text_in_a_transaction_is_a_422_naming_the_field(client, auth, runtime, bad, name, build):
    before = counts(runtime)
    response = post(client, build(bad), auth)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert name in fields(response)
    assert counts(runtime) == before


# Files under the host's zoneinfo folder that ZoneInfo opens but that name no place: the machine's own zone, the
# rule file, and copies under other names (a leap-second clock 27 s off). Each exists on Debian's tzdata.
NOT_PLACES = ["localtime", "posixrules", "right/America/New_York", "posix/America/New_York", "Etc/../UTC"]


@pytest.mark.parametrize("zone", NOT_PLACES)
def test_a_host_zone_file_that_is_not_an_iana_name_is_refused(client, auth, runtime, zone):
    before = counts(runtime)
    response = post(client, tx("TZ-1", contact={"timezone": zone}), auth)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert fields(response) == ["contact.timezone"]
    assert "IANA" in response.get_json()["errors"][0]["message"]
    assert counts(runtime) == before
    assert post(client, tx("TZ-2", contact={"timezone": "America/New_York"}), auth).status_code == 200


def test_an_invalid_item_echoes_its_id_only_when_it_is_one(client, auth, runtime):
    """A batch's invalid result echoes the item's id so the client can match it, unless that id is itself the
    problem: a megabyte, or text no database keeps, is not sent back (``null``; its error names ``id``)."""
    items = [tx("E-1", service="nope"), tx("E" * 1_000_000), tx(SURROGATE), tx(NUL), tx("  ")]
    response = post(client, {"transactions": items}, auth)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["decision"] for r in results] == ["invalid"] * 5
    assert [r["id"] for r in results] == ["E-1", None, None, None, None]
    assert [e["field"] for r in results[1:] for e in r["errors"]] == [f"transactions[{i}].id" for i in range(1, 5)]
    assert len(response.get_data()) < 10_000


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_unstorable_attribute_names_are_refused(client, auth, runtime, bad):
    response = post(client, tx("T-2", attributes={bad: "x"}), auth)
    assert response.status_code == 422
    assert len(fields(response)) == 1 and fields(response)[0].startswith("attributes.")


def test_a_nul_in_a_url_path_is_a_422_naming_the_segment(client, auth):
    response = client.get("/api/v1/transactions/passport-renewal/A%00B", headers=auth)
    assert response.status_code == 422 and fields(response) == ["external_id"]
    response = client.get("/api/v1/transactions/pass%00port/A", headers=auth)
    assert response.status_code == 422 and fields(response) == ["service"]


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_opt_out_text_is_checked(client, make_key, runtime, bad):
    admin = {"Authorization": f"Bearer {make_key(scopes=('intake', 'admin'))}"}
    before = counts(runtime)
    cases = [
        ("POST", {"email": "pat@example.com", "note": bad}, "note"),
        ("POST", {"email": f"p{bad}@example.com"}, "email"),
        ("POST", {"phone": f"+1202555{bad}"}, "phone"),
        ("DELETE", {"email": "pat@example.com", "reason": bad}, "reason"),
    ]
    for method, body, name in cases:
        response = client.open("/api/v1/opt-outs", method=method, json=body, headers=admin)
        assert response.status_code == 422, (body, response.get_data(as_text=True))
        assert name in fields(response)
    assert counts(runtime) == before


def test_opt_out_bounds_match_the_contract(client, make_key, runtime):
    admin = {"Authorization": f"Bearer {make_key(scopes=('intake', 'admin'))}"}
    before = counts(runtime)
    long = client.delete("/api/v1/opt-outs", json={"email": "pat@example.com", "reason": "x" * 3_000_000},
                         headers=admin)  # fmt: skip
    assert long.status_code == 422 and fields(long) == ["reason"]
    ivr = client.post("/api/v1/opt-outs", json={"email": "pat@example.com", "channel": "ivr"}, headers=admin)
    assert ivr.status_code == 422 and fields(ivr) == ["channel"]
    odd = client.post("/api/v1/opt-outs", json={"email": "pat@example.com", "channel": ["sms"]}, headers=admin)
    assert odd.status_code == 422 and fields(odd) == ["channel"]
    assert counts(runtime) == before


# -- 3. structure and time -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 1_000, 5_000])
def test_json_nested_too_deep_is_a_400(client, auth, runtime, depth):
    text = "[" * depth + "]" * depth
    for body in (text, '{"transactions": ' + text + "}"):
        response = raw_post(client, "/api/v1/transactions", body, auth)
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json" and "32" in response.get_json()["detail"]
    _device, credential = enrolled(runtime)
    client.set_cookie(COOKIE, credential)
    deep = '{"sessions": [' + "{" + '"a": {' * depth + "}" * depth + "}]}"
    assert raw_post(client, KIOSK_API, deep, {}).status_code == 400


def test_an_oversize_json_body_is_refused_having_read_at_most_one_byte_past_the_limit(client, auth, runtime):
    """``json_body``'s 413 for a body over its limit: by ``Content-Length`` before a byte is read; chunked (no length,
    read as gunicorn and waitress hand it over) after reading one byte past the limit, not the whole body."""
    limit = 4 * 1024 * 1024
    before = counts(runtime)
    for chunked in (False, True):
        body = MeteredBody(b" " * (limit + 2 * 1024 * 1024))
        headers = {**auth, "Content-Type": "application/json"}
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        response = client.post("/api/v1/transactions", headers=headers, content_length=None if chunked else len(body.data),
                               environ_overrides={"wsgi.input": body, "wsgi.input_terminated": True})  # fmt: skip
        assert response.status_code == 413 and response.mimetype == "application/problem+json"
        assert response.get_json()["detail"] == f"The body is larger than {limit} bytes; send smaller batches."
        assert body.read_bytes == (limit + 1 if chunked else 0), chunked
    assert counts(runtime) == before


def test_json_nested_32_deep_is_parsed(client, auth):
    body = '{"transactions": ' + "[" * 31 + "]" * 31 + "}"
    response = raw_post(client, "/api/v1/transactions", body, auth)
    assert response.status_code == 200 and response.get_json()["results"][0]["decision"] == "invalid"


def _with_second(body: dict, first: str, second: str) -> str:
    """``body`` as JSON text with the object key ``first`` written twice, its second value ``second`` (JSON text)."""
    text = json.dumps(body)
    marker = f'"{first}": '
    assert text.count(marker) == 1
    return text.replace(marker, f"{marker}{second}, {marker}")


@pytest.mark.parametrize(
    ("build", "key", "path"),
    [
        (lambda: _with_second(tx("DUP-1", contact={"phone": "+12025550123"}), "phone", '"+12025550199"'),
         "phone", "contact.phone"),
        (lambda: _with_second(tx("DUP-2"), "id", '"DUP-3"'), "id", "id"),
        (lambda: _with_second({"transactions": [tx("DUP-4"), tx("DUP-5", office="NYC-01")]}, "office", '"CHI-01"'),
         "office", "transactions[1].office"),
        (lambda: _with_second({"transactions": [tx("DUP-6")]}, "transactions", "[]"), "transactions", "transactions"),
    ],
)  # fmt: skip
def test_a_key_named_twice_in_one_object_is_a_400_naming_it_and_where(client, auth, runtime, build, key, path):
    """JSON leaves a repeated key open and Python keeps the last silently: a client that sends two phones would
    never learn which one was used. Refused, with nothing stored."""
    before = counts(runtime)
    response = raw_post(client, "/api/v1/transactions", build(), auth)
    assert response.status_code == 400, response.get_data(as_text=True)
    problem = response.get_json()
    assert response.mimetype == "application/problem+json" and problem["type"].endswith("/duplicate-key"), problem
    assert repr(key) in problem["detail"] and f"(at {path})" in problem["detail"], problem
    assert fields(response) == [path]
    assert counts(runtime) == before


def test_the_same_key_in_different_objects_is_no_duplicate(client, auth):
    body = json.dumps({"transactions": [tx("SAME-1", office="NYC-01", contact={"email": "a@example.com"}),
                                        tx("SAME-2", office="NYC-01", contact={"email": "b@example.com"})]})  # fmt: skip
    response = raw_post(client, "/api/v1/transactions", body, auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [r["decision"] for r in response.get_json()["results"]] == ["scheduled", "scheduled"]


def test_a_kiosk_batch_naming_a_key_twice_is_a_400_naming_it(client, runtime):
    _device, credential = enrolled(runtime)
    client.set_cookie(COOKIE, credential)
    body = '{"sessions": [{"language": "en", "language": "es"}]}'
    response = raw_post(client, KIOSK_API, body, {})
    assert response.status_code == 400, response.get_data(as_text=True)
    problem = response.get_json()
    assert problem["type"].endswith("/duplicate-key") and "sessions[0].language" in problem["detail"], problem


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "1969-12-31T23:59:59Z"])
def test_a_time_outside_the_years_1970_to_9999_is_a_422(client, auth, runtime, moment):
    before = counts(runtime)
    response = post(client, tx("C-1", completed_at=moment), auth)
    assert response.status_code == 422 and fields(response) == ["completed_at"]
    assert counts(runtime) == before


# -- pages: the survey form, the unsubscribe link -----------------------------------------------------------------

LINK = re.compile(r"https://surveys\.example\.gov/s/([A-Za-z0-9_-]+)")


@pytest.fixture
def survey_path(client, auth, runtime, capsys):
    post(client, tx("WEB-H", contact={"email": "web-h@example.com"}), auth)
    Dispatcher(runtime).drain(datetime.now(UTC) + timedelta(minutes=20))
    match = LINK.search(capsys.readouterr().out)
    assert match
    return f"/s/{match.group(1)}"


def _hidden(client, path):
    return dict(HIDDEN.findall(client.get(path).get_data(as_text=True)))


def test_a_nul_in_the_survey_comment_reshows_the_form_and_stores_nothing(client, survey_path, runtime):
    before = counts(runtime)
    form = {**_hidden(client, survey_path), "q-satisfaction": "5", "q-comments": "fine\x00"}
    page = client.post(survey_path, data=form)
    assert page.status_code == 422
    assert "character we cannot store" in page.get_data(as_text=True)
    assert counts(runtime) == before
    form["q-comments"] = "fine"
    assert client.post(survey_path, data=form).status_code == 200


def test_an_empty_submission_stores_nothing_and_the_real_answers_count_after(client, survey_path, runtime):
    before = counts(runtime)
    for extra in ({}, {"q-not-a-question": "5", "q-what_went_well": "ease"}, {"q-comments": "   "}):
        page = client.post(survey_path, data={**_hidden(client, survey_path), **extra})
        assert page.status_code == 422, page.get_data(as_text=True)
        assert "Please answer at least one question" in page.get_data(as_text=True)
        assert counts(runtime) == before
    spanish = client.post(survey_path, data={**_hidden(client, survey_path), "lang": "es"})
    assert "Responda al menos una pregunta" in spanish.get_data(as_text=True)
    done = client.post(survey_path, data={**_hidden(client, survey_path), "q-trust": "4"})
    assert done.status_code == 200 and "Thank you" in done.get_data(as_text=True)


def test_a_forged_form_token_of_any_text_is_refused_never_a_500(client, survey_path, runtime):
    """hmac.compare_digest raises on a str holding anything but ASCII, and int() reads "²" as a digit: a form
    token or time of any text is a refusal, not a crash."""
    before = counts(runtime)
    good = _hidden(client, survey_path)
    for forged in (
        {"csrf_token": "é" * 64},
        {"issued": "²"},
        {"issued": "١٢٣"},
        {"csrf_token": "\u2028"},
        {"issued": "9" * 5000},
    ):
        page = client.post(survey_path, data={**good, **forged, "q-trust": "4"})
        assert 400 <= page.status_code < 500, (forged, page.status_code)
        assert counts(runtime) == before


def test_a_dashboard_form_token_of_any_text_is_refused_never_a_500(client):
    page = client.get("/dashboard/sign-in")
    assert page.status_code == 200
    response = client.post("/dashboard/sign-in", data={"email": "a@example.gov", "password": "x" * 12,
                                                       "csrf_token": "é" * 43})  # fmt: skip
    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/s/abc%00def", "/u/abc%00def", "/kiosk/enroll/ab%00c", "/dashboard/%00"])
def test_a_nul_in_a_page_address_is_a_4xx_page(client, path):
    for method in ("GET", "POST"):
        response = client.open(path, method=method, data={"List-Unsubscribe": "One-Click"})
        assert 400 <= response.status_code < 500
        assert response.mimetype == "text/html"


def test_a_nul_in_a_form_value_is_a_4xx_page(client):
    response = client.post("/u/sometoken", data={"List-Unsubscribe": "One-Click\x00"})
    assert response.status_code == 422 and response.mimetype == "text/html"


# -- 12. headers and files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("GET", "/no/such/page"), ("DELETE", "/s/abc"),
                                              ("GET", "/s/unknown-token"), ("GET", "/dashboard/sign-in")])  # fmt: skip
def test_every_html_page_carries_the_security_headers(client, method, path):
    response = client.open(path, method=method)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    if response.mimetype == "text/html":
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
    if response.status_code == 405:
        assert "GET" in response.headers["Allow"]


def test_an_api_405_says_what_is_allowed(client, auth):
    response = client.put("/api/v1/opt-outs", headers=auth)
    assert response.status_code == 405 and response.mimetype == "application/problem+json"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"POST", "DELETE"}


def test_no_hsts_on_plain_http(tmp_path):
    from engine.app import create_app

    env = {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"), "SURVEY_ENGINE_PUBLIC_URL": "http://x.test"}
    app = create_app(load_settings(env), migrate_database=True)
    assert "Strict-Transport-Security" not in app.test_client().get("/healthz").headers


def test_the_instance_folder_and_the_sqlite_files_are_the_owners_alone(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    os.chmod(instance, 0o755)
    settings = load_settings({"SURVEY_ENGINE_INSTANCE_DIR": str(instance)})
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    engine = make_engine(settings.database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x)")
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        files = sorted(p.name for p in instance.iterdir() if p.name.startswith("survey-engine.db"))
        assert "survey-engine.db-wal" in files
        for name in files:
            assert stat.S_IMODE((instance / name).stat().st_mode) == 0o600, name
    engine.dispose()
    assert stat.S_IMODE((instance / "secrets.json").stat().st_mode) == 0o600


def test_a_nul_in_the_query_is_a_422_naming_the_parameter(client, auth):
    response = client.get("/api/v1/reports/a11?fiscal_year=2027&quarter=1&service=pass%00port", headers=auth)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert fields(response) == ["service"]


# -- digits int() cannot read: "²" and "᧚" pass str.isdigit; int() refuses over 4,300 digits -------------------------

NOT_WHOLE = ["%C2%B2", "%D9%A3", "1" * 5000, "%E1%A7%9A"]


@pytest.mark.parametrize("bad", NOT_WHOLE, ids=["superscript", "arabic-indic", "5000-digits", "tai-lue"])
@pytest.mark.parametrize("path", ["/api/v1/reports/a11", "/api/v1/reports/a11/responses",
                                  "/api/v1/reports/a11/submissions"])  # fmt: skip
def test_a_report_parameter_that_is_not_ascii_digits_is_a_400_naming_it(client, auth, path, bad):
    for query, field in (
        (f"fiscal_year=2027&quarter={bad}", "quarter"),
        (f"fiscal_year={bad}&quarter=1", "fiscal_year"),
    ):
        response = client.get(f"{path}?{query}", headers=auth)
        assert response.status_code == 400, (query[:40], response.status_code)
        assert response.mimetype == "application/problem+json" and fields(response) == [field]
    assert client.get(f"{path}?fiscal_year=2027&quarter={'0' * 5000}1", headers=auth).status_code == 200


def test_a_rating_that_is_not_ascii_digits_reshows_the_form_and_stores_nothing(client, survey_path, runtime):
    before = counts(runtime)
    for bad in ("²", "᧚", "1" * 5000):
        assert client.get(f"{survey_path}?q=trust&a={bad}").status_code == 200
        page = client.post(survey_path, data={**_hidden(client, survey_path), "q-trust": bad})
        assert page.status_code == 422, (bad[:9], page.status_code)
        assert counts(runtime) == before
    assert client.post(survey_path, data={**_hidden(client, survey_path), "q-trust": "4"}).status_code == 200


# -- a line break after a value: a pattern anchored with ``^...$`` and ``re.match`` took it --------------------------
# ``$`` also matches before a final "\n": such checks let one more character through than the rule names. A
# service-level name of 64 characters and a line break then overflowed its 64-character column (a 500 on
# PostgreSQL, stored with the line break on SQLite).


@pytest.mark.parametrize(("build", "field"), [
    (lambda: {"service_level": {"s" * 64 + "\n": 3}}, "service_level." + "s" * 64 + "\n"),
    (lambda: {"service_level": {"wait\n": 3}}, "service_level.wait\n"),
    (lambda: {"language": "en\n"}, "language"),
    (lambda: {"attributes": {"case\n": "x"}}, "attributes.case\n"),
    (lambda: {"completed_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "\n"}, "completed_at"),
])  # fmt: skip
def test_a_value_ending_in_a_line_break_is_a_422_naming_the_field(client, auth, runtime, build, field):
    before = counts(runtime)
    response = post(client, tx("LF-1", **build()), auth)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert fields(response) == [field]
    assert counts(runtime) == before


@pytest.mark.parametrize("build", [
    lambda big: {"office": big},
    lambda big: {"service": big},
    lambda big: {"attributes": {big: "x"}},
    lambda big: {"service_level": {big: 1}},
])  # fmt: skip
def test_a_long_unknown_value_is_named_cut_not_echoed_whole(client, auth, runtime, build):
    big = "Z" * 100_000
    before = counts(runtime)
    response = post(client, tx("LONG-1", **build(big)), auth)
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert len(response.get_data()) < 2_000, len(response.get_data())
    assert counts(runtime) == before


def test_a_survey_token_ending_in_a_line_break_is_not_found(client):
    token = "A" * 43
    assert client.get(f"/s/{token}%0A").status_code == 404


def test_a_transaction_holds_at_most_20_service_level_indicators(client, auth, runtime):
    """Each indicator name is a column of the quarter's §6.1 report: one call with thousands of names added
    thousands of columns to every row of an unfiltered report (and to what a submission freezes)."""
    before = counts(runtime)
    response = post(client, tx("SLI-1", service_level={f"k{i}": i for i in range(21)}), auth)
    assert response.status_code == 422 and fields(response) == ["service_level"], response.get_json()
    assert counts(runtime) == before
    assert post(client, tx("SLI-2", service_level={f"k{i}": i for i in range(20)}), auth).status_code == 200


@pytest.mark.parametrize("office", [False, 12, ["NYC-01"], {"code": "NYC-01"}])
def test_an_office_that_is_not_text_is_a_422_naming_it(client, auth, runtime, office):
    before = counts(runtime)
    response = post(client, tx("OFF-1", office=office), auth)
    assert response.status_code == 422 and fields(response) == ["office"], response.get_data(as_text=True)
    assert counts(runtime) == before
