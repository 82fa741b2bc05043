"""Hostile bytes and encodings at every door (SPEC §2 rule 11), through the real stack on SQLite and PostgreSQL.

A form body that is not UTF-8 (a percent-escape of bytes that are not UTF-8, raw such bytes, an overlong encoding,
an encoded lone surrogate, in a urlencoded body or in a multipart part) is refused with a 400 wherever it arrives:
the "cannot be read" page for people, a problem naming the field for machines and Twilio's webhooks; nothing is
stored, where Werkzeug had handed the view the escape as literal text (``%FF%FE``) or U+FFFD replacements.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from engine.store.models import DeliveryEvent, EarlyReport, WebhookReceipt
from engine.store.models.accounts import SignInAttempt
from engine.store.models.submissions import Reflection
from tests import dashboard_support, ivr_support, sms_support, test_atk_web_forms
from tests.dashboard_support import csrf_of, make_account, sign_in
from tests.helpers import counts, tx
from tests.ivr_support import CLOSED_PORT_URL
from tests.test_atk_web_forms import _comments
from tests.test_website import hidden_fields
from tests.twilio_support import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, PUBLIC_URL

settings = test_atk_web_forms.settings  # the website services (a survey link, a feedback page) and their fixtures
website_config_dir = test_atk_web_forms.website_config_dir
survey_path = test_atk_web_forms.survey_path
dash_config_dir = dashboard_support.dash_config_dir
dash_settings = dashboard_support.dash_settings
dash_runtime = dashboard_support.dash_runtime
dash_app = dashboard_support.dash_app
dash_client = dashboard_support.dash_client
sms_config_dir = sms_support.sms_config_dir
sms_stack = sms_support.sms_stack
ivr = ivr_support.ivr_stack

BOUNDARY = "atk-bytes-boundary"
# (how the value travels, its bytes): each is not UTF-8.
NOT_UTF8 = [
    ("urlencoded", b"%FF%FE"),  # bytes no UTF-8 sequence starts with
    ("urlencoded", b"%C0%AF"),  # an overlong "/"
    ("urlencoded", b"%ED%A0%80"),  # an encoded lone surrogate (U+D800)
    ("urlencoded", b"ok%E2%82"),  # a sequence cut short
    ("urlencoded", b"caf\xe9"),  # raw Latin-1 bytes in the body
    ("multipart", b"\xff\xfe"),
    ("multipart", b"caf\xe9"),
    ("multipart", b"\xc0\xaf"),
]
NOT_UTF8_IDS = ["ff-fe", "overlong", "surrogate", "cut-short", "raw-latin1", "mp-ff-fe", "mp-latin1", "mp-overlong"]
TYPED = "Très bien ✓ — 谢谢"  # what a person types, sent as UTF-8, is kept as typed


def body_with(fields: dict[str, str], name: str, raw: bytes, shape: str) -> tuple[bytes, str]:
    """A form body holding ``fields`` and the field ``name`` whose value is the bytes ``raw``; its content type."""
    if shape == "urlencoded":
        return urlencode(fields).encode() + b"&" + name.encode() + b"=" + raw, "application/x-www-form-urlencoded"
    parts = [*fields.items(), (name, raw)]
    body = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
        + (value if isinstance(value, bytes) else value.encode())
        + b"\r\n"
        for key, value in parts
    )
    return body + f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"


def post_with(client: Any, path: str, fields: dict[str, str], name: str, raw: bytes, shape: str, **kw: Any) -> Any:
    body, content_type = body_with(fields, name, raw, shape)
    return client.post(path, data=body, content_type=content_type, **kw)


def assert_unreadable_page(page: Any) -> None:
    assert page.status_code == 400, (page.status_code, re.findall(r"<h1>[^<]*", page.text))
    assert page.mimetype == "text/html"
    assert "This address cannot be read" in page.text


def _count(rt: Any, model: Any) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


# -- the survey pages --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "raw"), NOT_UTF8, ids=NOT_UTF8_IDS)
def test_a_survey_form_that_is_not_utf8_is_a_400_page_and_stores_nothing(client, survey_path, runtime, shape, raw):
    before = counts(runtime)
    form = hidden_fields(client.get(survey_path).text) | {"q-trust": "4"}
    assert_unreadable_page(post_with(client, survey_path, form, "q-comments", raw, shape))
    assert counts(runtime) == before
    form = hidden_fields(client.get(survey_path).text) | {"q-trust": "4"}
    kept = post_with(client, survey_path, form, "q-comments", TYPED.encode(), shape)
    assert kept.status_code == 200, re.findall(r"Please[^<]*", kept.text)
    assert _comments(runtime) == [TYPED]


@pytest.mark.parametrize(("shape", "raw"), NOT_UTF8[:1] + NOT_UTF8[-3:-2], ids=["urlencoded", "multipart"])
def test_a_feedback_form_that_is_not_utf8_is_a_400_page_and_stores_nothing(client, runtime, shape, raw):
    visitor = {"REMOTE_ADDR": "192.0.2.88"}
    before = counts(runtime)
    form = hidden_fields(client.get("/f/web-feedback", environ_base=visitor).text) | {"q-satisfaction": "4"}
    assert_unreadable_page(post_with(client, "/f/web-feedback", form, "q-comments", raw, shape, environ_base=visitor))
    assert counts(runtime) == before
    form = hidden_fields(client.get("/f/web-feedback", environ_base=visitor).text) | {"q-satisfaction": "4"}
    kept = post_with(client, "/f/web-feedback", form, "q-comments", TYPED.encode(), shape, environ_base=visitor)
    assert kept.status_code == 200, re.findall(r"Please[^<]*", kept.text)
    assert _comments(runtime) == [TYPED]


def test_a_field_name_that_is_not_utf8_is_refused_as_well(client, survey_path, runtime):
    before = counts(runtime)
    form = hidden_fields(client.get(survey_path).text) | {"q-trust": "4"}
    assert_unreadable_page(post_with(client, survey_path, form, "q-comm%FFents", b"fine", "urlencoded"))
    assert counts(runtime) == before


# -- the dashboard's forms ---------------------------------------------------------------------------------------


def test_a_dashboard_form_that_is_not_utf8_is_a_400_page_and_changes_nothing(dash_runtime, dash_client):
    make_account(dash_runtime, "pat@agency.gov", ("dash-email",))
    token = csrf_of(dash_client.get("/dashboard/sign-in").text)
    refused = post_with(dash_client, "/dashboard/sign-in", {"password": dashboard_support.PASSWORD,
                        "csrf_token": token}, "email", b"pat%FF@agency.gov", "urlencoded")  # fmt: skip
    assert_unreadable_page(refused)
    assert _count(dash_runtime, SignInAttempt) == 0  # refused before the sign-in read it
    assert sign_in(dash_client, "pat@agency.gov").status_code == 302
    page = dash_client.get("/dashboard/services/dash-email")
    quarter = dict(re.findall(r'name="(fiscal_year|quarter)" value="(\d+)"', page.text))
    form = {"csrf_token": csrf_of(page.text), **quarter}
    for shape, raw in NOT_UTF8:
        saved = post_with(dash_client, "/dashboard/services/dash-email/reflection", form, "text", raw, shape)
        assert_unreadable_page(saved)
    assert _count(dash_runtime, Reflection) == 0


# -- Twilio's webhooks (signed, urlencoded) ------------------------------------------------------------------------


def signed_raw(client: Any, path: str, fields: dict[str, str], name: str, raw: bytes) -> Any:
    """POST a urlencoded body with ``name=<raw>``, signed over the value Werkzeug used to read (the escape as text)."""
    from twilio.request_validator import RequestValidator

    seen = {**fields, name: raw.decode("latin-1")}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, seen)
    body, content_type = body_with(fields, name, raw, "urlencoded")
    return client.post(path, data=body, content_type=content_type, headers={"X-Twilio-Signature": signature})


def assert_problem_naming(reply: Any, field: str) -> None:
    assert reply.status_code == 400, (reply.status_code, reply.get_data(as_text=True)[:300])
    assert reply.mimetype == "application/problem+json"
    problem = reply.get_json()
    assert problem["type"].endswith("/not-utf-8")
    assert [e["field"] for e in problem["errors"]] == [field]


def test_a_text_message_that_is_not_utf8_is_a_400_naming_the_field_and_nothing_is_stored(sms_stack):
    stack = sms_stack(CLOSED_PORT_URL)
    fields = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": ACCOUNT_SID, "From": "+12025550123",
              "To": FROM_NUMBER, "NumMedia": "0"}  # fmt: skip
    assert_problem_naming(signed_raw(stack.client, "/channels/sms/inbound", fields, "Body", b"%FF%FE"), "Body")
    assert _count(stack.rt, WebhookReceipt) == 0


def test_a_call_status_that_is_not_utf8_is_a_400_naming_the_field_and_nothing_is_stored(ivr):
    fields = {"AccountSid": ACCOUNT_SID, "CallSid": f"CA{uuid.uuid4().hex}", "CallStatus": "completed"}
    assert_problem_naming(signed_raw(ivr.client, "/channels/ivr/status", fields, "AnsweredBy", b"%C0%AF"), "AnsweredBy")
    assert _count(ivr.rt, EarlyReport) == 0 and _count(ivr.rt, DeliveryEvent) == 0


# -- query strings ---------------------------------------------------------------------------------------------------

# A raw byte that is not UTF-8 was a UnicodeDecodeError (500) on every route; an escape of one was kept as its text.
QUERY_NOT_UTF8 = [b"lang=\xff", b"\xff=1", b"lang=caf\xe9", b"lang=%FF", b"lang=%C0%AF"]
QUERY_IDS = ["raw-ff", "raw-name", "raw-latin1", "escaped-ff", "escaped-overlong"]


@pytest.mark.parametrize("query", QUERY_NOT_UTF8, ids=QUERY_IDS)
def test_a_query_that_is_not_utf8_is_a_400_never_a_500(client, auth, query):
    environ = {"QUERY_STRING": query.decode("latin-1")}  # the raw bytes, as a WSGI server hands them over
    for path in ("/", "/s/abc", "/data", "/dashboard/sign-in", "/kiosk"):
        assert_unreadable_page(client.get(path, environ_overrides=environ))
    for path in ("/api/v1/reports/a11", "/api/v1/transactions/passport-renewal/CC-1"):
        answer = client.get(path, headers=auth, environ_overrides=environ)
        assert answer.status_code == 400, (path, answer.status_code)
        assert answer.get_json()["type"].endswith("/not-utf-8")
        assert answer.get_json()["errors"][0]["message"] == "(in the query) is not valid UTF-8 text"
    good = client.get("/s/abc", environ_overrides={"QUERY_STRING": "lang=es&x=caf%C3%A9"})  # UTF-8: read as it is
    assert good.status_code == 404 and 'lang="es"' in good.text


def test_a_call_hand_off_whose_query_is_not_utf8_is_a_400_and_makes_no_transaction(ivr):
    from engine.store.models import Transaction
    from tests.twilio_support import signed_post

    form = {"AccountSid": ACCOUNT_SID, "CallSid": f"CA{uuid.uuid4().hex}", "From": "+12025550199",
            "To": ivr_support.POST_CALL_NUMBER, "CallStatus": "in-progress", "Direction": "inbound"}  # fmt: skip
    path = "/channels/ivr/voice?service=ivr-standard&transaction=CC-%FF&office=NYC-01&language=en"
    assert_problem_naming(signed_post(ivr.client, path, form), "transaction")
    assert _count(ivr.rt, Transaction) == 0 and _count(ivr.rt, WebhookReceipt) == 0


# -- URL paths -------------------------------------------------------------------------------------------------------


def raw_path(client: Any, path: bytes, method: str = "GET", **kw: Any) -> Any:
    """Request ``path`` with its percent-escapes decoded to raw bytes, as waitress and gunicorn hand them to the app
    (the test client would decode them with U+FFFD replacements before the app ever saw them)."""
    return client.open("/", method=method, environ_overrides={"PATH_INFO": path.decode("latin-1")}, **kw)


SEGMENTS = [b"\xff", b"CC-\xff", b"\xc0\xaf", b"\xed\xa0\x80"]


@pytest.mark.parametrize("segment", SEGMENTS, ids=["ff", "cc-ff", "overlong", "surrogate"])
def test_a_url_path_that_is_not_utf8_is_a_400_and_finds_nothing(client, auth, runtime, segment):
    """Werkzeug read the path's bytes with U+FFFD replacements: ``CC-%FF`` found the transaction named CC-\\ufffd."""
    reported = client.post("/api/v1/transactions", json=tx("CC-\ufffd"), headers=auth)
    assert reported.status_code == 200, reported.get_data(as_text=True)
    answer = raw_path(client, b"/api/v1/transactions/passport-renewal/" + segment, headers=auth)
    assert answer.status_code == 400, (answer.status_code, answer.get_data(as_text=True)[:200])
    assert answer.get_json()["errors"] == [{"field": "path", "message": "(in the URL path) is not valid UTF-8 text"}]
    for page in (b"/s/", b"/u/", b"/kiosk/enroll/", b"/dashboard/set-password/"):
        for method in ("GET", "POST"):
            assert_unreadable_page(raw_path(client, page + segment, method))
    assert client.get("/api/v1/transactions/passport-renewal/CC-%EF%BF%BD", headers=auth).status_code == 200


def test_through_waitress_bytes_that_are_not_utf8_in_the_path_or_query_are_a_400(app):
    """``serve`` runs waitress, which hands the app a path's and a query's bytes as they came (no test client between)."""
    import socket
    import threading

    from waitress import create_server
    from waitress.wasyncore import close_all

    server = create_server(app, host="127.0.0.1", port=0, threads=1)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for target in (b"/s/%FF", b"/s/\xff", b"/?lang=%FF", b"/?lang=\xff", b"/api/v1/reports/a11?%C0%AF=1"):
            with socket.create_connection(("127.0.0.1", server.effective_port), timeout=10) as conn:
                conn.sendall(b"GET " + target + b" HTTP/1.0\r\nHost: surveys.example.gov\r\n\r\n")
                status_line = conn.makefile("rb").readline()
            assert status_line.split(b" ")[1] == b"400", (target, status_line)
    finally:
        server.task_dispatcher.shutdown()
        close_all(server._map)
        thread.join(timeout=10)
