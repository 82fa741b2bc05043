"""Signing out ends the dashboard session on the server (SPEC §2 rule 12), and the sign-in form refuses text no
database can keep with a form error, never a 500 (rule 11), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import func, select

from engine.app import create_app
from engine.channels import load_channels
from engine.runtime import build_runtime
from engine.store.models.accounts import DashboardSession, SignInAttempt
from tests import dashboard_support
from tests.dashboard_support import PASSWORD, csrf_of, make_account, sign_in

dash_config_dir = dashboard_support.dash_config_dir
dash_settings = dashboard_support.dash_settings
dash_runtime = dashboard_support.dash_runtime
dash_app = dashboard_support.dash_app
dash_client = dashboard_support.dash_client

EMAIL = "pat@agency.gov"
HOME = "/dashboard/services/dash-email"


def _cookie(client: Any) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None, "no session cookie"
    return str(cookie.value)


def _opens_dashboard(client: Any) -> bool:
    response = client.get(HOME)
    if response.status_code == 302:
        assert "/dashboard/sign-in" in response.headers["Location"]
        return False
    assert response.status_code == 200, response.status_code
    return True


def _sign_out(client: Any) -> None:
    page = client.get(HOME)
    assert client.post("/dashboard/sign-out", data={"csrf_token": csrf_of(page.text)}).status_code == 302


def test_a_cookie_copied_before_sign_out_opens_nothing_afterwards(dash_runtime, dash_app):
    make_account(dash_runtime, EMAIL, ("dash-email",))
    browser = dash_app.test_client()
    assert sign_in(browser, EMAIL).status_code == 302
    copied = _cookie(browser)

    thief = dash_app.test_client()
    thief.set_cookie("session", copied)
    assert _opens_dashboard(thief)  # the copy works while the session lasts: it is the credential

    _sign_out(browser)
    assert not _opens_dashboard(browser)
    fresh = dash_app.test_client()
    fresh.set_cookie("session", copied)
    assert not _opens_dashboard(fresh)
    with dash_runtime.sessions() as db:
        rows = db.execute(select(DashboardSession)).scalars().all()
        assert len(rows) == 1 and rows[0].ended_at is not None
        assert copied not in rows[0].id_hash  # only a digest of the session id is stored

    # A new sign-in is a new server session; the old copy stays dead.
    assert sign_in(browser, EMAIL).status_code == 302
    assert _opens_dashboard(browser)
    again = dash_app.test_client()
    again.set_cookie("session", copied)
    assert not _opens_dashboard(again)


def test_sign_out_in_one_process_ends_the_session_in_another(dash_runtime, dash_app, dash_settings):
    make_account(dash_runtime, EMAIL, ("dash-email",))
    other_rt = build_runtime(dataclasses.replace(dash_settings), channels=load_channels(dash_settings))
    other_app = create_app(runtime=other_rt)
    try:
        here = dash_app.test_client()
        assert sign_in(here, EMAIL).status_code == 302
        there = other_app.test_client()
        there.set_cookie("session", _cookie(here))
        assert _opens_dashboard(there)
        _sign_out(here)
        assert not _opens_dashboard(there)
    finally:
        other_rt.engine.dispose()


def test_signing_out_one_session_leaves_the_accounts_other_sessions(dash_runtime, dash_app):
    make_account(dash_runtime, EMAIL, ("dash-email",))
    laptop, phone = dash_app.test_client(), dash_app.test_client()
    assert sign_in(laptop, EMAIL).status_code == 302
    assert sign_in(phone, EMAIL).status_code == 302
    _sign_out(laptop)
    assert not _opens_dashboard(laptop)
    assert _opens_dashboard(phone)


def _post_sign_in(client: Any, body: bytes) -> Any:
    page = client.get("/dashboard/sign-in")
    token = csrf_of(page.text).encode()
    return client.post("/dashboard/sign-in", data=body + b"&csrf_token=" + token,
                       content_type="application/x-www-form-urlencoded")  # fmt: skip


def test_sign_in_with_unstorable_text_is_a_form_error(dash_runtime, dash_client):
    make_account(dash_runtime, EMAIL, ("dash-email",))
    pw = PASSWORD.encode()
    bodies = [
        b"email=pat%00@agency.gov&password=" + pw,  # NUL in the email
        b"email=pat@agency.gov&password=" + pw + b"%00",  # NUL in the (right) password
        b"email=pat%ED%A0%80@agency.gov&password=" + pw,  # an encoded lone surrogate (not UTF-8)
        b"email=pat%F0%9F%98%80@agency.gov&password=x%00",
    ]
    for body in bodies:
        response = _post_sign_in(dash_client, body)
        if b"%00" in body:  # refused before any view runs (engine.webapp.request_checks): 422, nothing read or written
            assert response.status_code == 422, (body, response.status_code)
        else:  # bytes that are not UTF-8: refused wherever the form is read (engine.webapp.utf8_forms), 400
            assert response.status_code == 400, (body, response.status_code)
            assert "cannot be read" in response.text
        assert not _opens_dashboard(dash_client)
    with dash_runtime.sessions() as db:
        assert db.execute(select(func.count()).select_from(DashboardSession)).scalar_one() == 0
        # none reached the sign-in, so none counted towards the rate limit
        assert db.execute(select(func.count()).select_from(SignInAttempt)).scalar_one() == 0
    # The account still signs in with the right words.
    assert sign_in(dash_client, EMAIL).status_code == 302


def test_authenticate_never_sends_unstorable_text_to_the_database(dash_runtime, dash_app):
    """A lone surrogate cannot arrive through a form (it is not UTF-8), but the check does not rely on that."""
    from engine.dashboard.signin import authenticate

    make_account(dash_runtime, EMAIL, ("dash-email",))
    with dash_app.test_request_context("/dashboard/sign-in", method="POST"):
        for email, password in (("pat\ud800@agency.gov", PASSWORD), (EMAIL, PASSWORD + "\udfff"),
                                ("pat\x00@agency.gov", PASSWORD), (EMAIL, "\x00" + PASSWORD)):  # fmt: skip
            assert authenticate(email, password, "127.0.0.1") is None
        assert authenticate(EMAIL, PASSWORD, "127.0.0.1") is not None
