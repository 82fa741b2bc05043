"""Dashboard sign-in: sessions, the cookie's flags, CSRF on every POST, the rate limit, and each account's scope."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.dashboard.accounts import set_disabled
from engine.dashboard.signin import PER_ACCOUNT, PER_ACCOUNT_ADDRESS, PER_ADDRESS
from engine.store.db import unit_of_work
from engine.store.models.accounts import DashboardSession, SignInAttempt, User
from tests import dashboard_support
from tests.dashboard_support import PASSWORD, csrf_of, link_token, make_account, sign_in
from tests.helpers import counts

dash_config_dir = dashboard_support.dash_config_dir
dash_settings = dashboard_support.dash_settings
dash_runtime = dashboard_support.dash_runtime
dash_app = dashboard_support.dash_app
dash_client = dashboard_support.dash_client


def test_pages_need_a_sign_in_and_come_back_after_it(dash_runtime, dash_client):
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    for path in ("/dashboard/", "/dashboard/services/dash-email", "/dashboard/services/dash-email/a11.csv"):
        answer = dash_client.get(path)
        assert answer.status_code == 302 and "/dashboard/sign-in?next=" in answer.headers["Location"], path
    page = dash_client.get("/dashboard/sign-in?next=/dashboard/services/dash-email%3Fbucket%3Dmonth")
    signed = dash_client.post("/dashboard/sign-in", data={"email": "PM@example.gov", "password": PASSWORD,
                              "csrf_token": csrf_of(page.text), "next": "/dashboard/services/dash-email?bucket=month"})  # fmt: skip
    assert signed.status_code == 302 and signed.headers["Location"] == "/dashboard/services/dash-email?bucket=month"
    cookie = signed.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    shown = dash_client.get("/dashboard/services/dash-email")
    assert shown.status_code == 200 and "pm@example.gov" in shown.text
    assert shown.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in shown.headers[
        "Content-Security-Policy"]  # fmt: skip
    with dash_runtime.sessions() as session:
        assert session.execute(select(User.last_sign_in_at)).scalar_one() is not None


def test_sign_in_never_follows_a_next_outside_the_dashboard(dash_runtime, dash_app):
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    for target in ("https://evil.example.com/", "//evil.example.com/dashboard", "/api/v1/reports/a11"):
        client = dash_app.test_client()
        page = client.get("/dashboard/sign-in")
        signed = client.post("/dashboard/sign-in", data={"email": "pm@example.gov", "password": PASSWORD,
                             "csrf_token": csrf_of(page.text), "next": target})  # fmt: skip
        assert signed.headers["Location"] == "/dashboard/", target


# ``next`` values no redirect may follow: CR/LF (a 500 and a session left behind, attack report F2), any other
# control character, a backslash, a scheme, another host, a dot segment, text no header can carry.
HOSTILE_NEXT = ("/dashboard\r\nX-I: 1", "/dashboard/\nSet-Cookie: a=b", "/dashboard\r", "/dashboard/\x0bx",
                "/dashboard/\tx", "/dashboard/\x7f", "/dashboard/\x85x", "/dashboard/ x", "/dashboard/\u20ac",
                "/dashboard/\\evil.example", "/dashboard\\..\\..\\evil.example", "https://evil.example/dashboard",
                "javascript:/dashboard", "//evil.example/dashboard", "/dashboard//evil.example",
                "/dashboard/../api/v1/reports/a11", "/dashboard/%2e%2e/s/x", "/dashboardevil")  # fmt: skip


def _server_sessions(rt):
    with rt.sessions() as session:
        return session.execute(select(func.count()).select_from(DashboardSession)).scalar_one()


def test_a_next_with_a_control_character_or_another_origin_goes_to_the_dashboard_home(dash_runtime, dash_app):
    """Signing in (POST) and an already signed-in visit (GET) both end on /dashboard/; exactly one session row per
    sign-in, whatever ``next`` holds (before the fix, CR/LF answered 500 and still left a signed-in session)."""
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    for target in HOSTILE_NEXT:
        client = dash_app.test_client()
        form = client.get("/dashboard/sign-in", query_string={"next": target})
        assert form.status_code == 200, target
        before = _server_sessions(dash_runtime)
        signed = client.post("/dashboard/sign-in", data={"email": "pm@example.gov", "password": PASSWORD,
                             "csrf_token": csrf_of(form.text), "next": target})  # fmt: skip
        made = _server_sessions(dash_runtime) - before
        assert (signed.status_code, signed.headers.get("Location"), made) == (302, "/dashboard/", 1), target
        assert "session=" in signed.headers["Set-Cookie"]  # one session row and its cookie: a normal sign-in
        again = client.get("/dashboard/sign-in", query_string={"next": target})
        assert (again.status_code, again.headers.get("Location")) == (302, "/dashboard/"), target
        assert _server_sessions(dash_runtime) == before + 1, target
    # A path inside the dashboard is still followed, query string and all.
    client = dash_app.test_client()
    form = client.get("/dashboard/sign-in")
    kept = "/dashboard/services/dash-email?bucket=month&fiscal_year=2027#filing-h"
    signed = client.post("/dashboard/sign-in", data={"email": "pm@example.gov", "password": PASSWORD,
                         "csrf_token": csrf_of(form.text), "next": kept})  # fmt: skip
    assert signed.headers["Location"] == kept


def test_unknown_email_and_wrong_password_get_the_same_answer(dash_runtime, dash_client):
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    make_account(dash_runtime, "nolink@example.gov", ("dash-email",), password=None)
    answers = [
        sign_in(dash_client, "pm@example.gov", "wrong-password-123"),
        sign_in(dash_client, "nobody@example.gov", "wrong-password-123"),
        sign_in(dash_client, "nolink@example.gov", "wrong-password-123"),
    ]
    bodies = set()
    for answer in answers:
        assert answer.status_code == 401
        assert "do not match an account" in answer.text
        bodies.add(answer.text.replace("pm@example.gov", "E").replace("nobody@example.gov", "E")
                   .replace("nolink@example.gov", "E").replace(csrf_of(answer.text), "T"))  # fmt: skip
    assert len(bodies) == 1
    assert dash_client.get("/dashboard/").status_code == 302


def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(dash_runtime, dash_client):
    link = make_account(dash_runtime, "pm@example.gov", ("dash-email",), password=None)
    token = link_token(link)
    dash_client.get(f"/dashboard/set-password/{token}")
    before = counts(dash_runtime)
    for data in ({"password": PASSWORD, "confirm": PASSWORD}, {"password": PASSWORD, "confirm": PASSWORD,
                                                                 "csrf_token": "forged"}):  # fmt: skip
        refused = dash_client.post(f"/dashboard/set-password/{token}", data=data)
        assert refused.status_code == 400 and "The form has expired" in refused.text
    missing = dash_client.post("/dashboard/sign-in", data={"email": "pm@example.gov", "password": PASSWORD})
    assert missing.status_code == 400
    assert counts(dash_runtime) == before  # no password set, no sign-in attempt recorded
    with dash_runtime.sessions() as session:
        assert session.execute(select(User.password_hash)).scalar_one() is None

    # Signed in, sign-out without the token leaves the session alive.
    make_account(dash_runtime, "other@example.gov", ("dash-email",))
    assert sign_in(dash_client, "other@example.gov").status_code == 302
    assert dash_client.post("/dashboard/sign-out").status_code == 400
    assert dash_client.get("/dashboard/services/dash-email").status_code == 200
    page = dash_client.get("/dashboard/services/dash-email")
    assert dash_client.post("/dashboard/sign-out", data={"csrf_token": csrf_of(page.text)}).status_code == 302
    assert dash_client.get("/dashboard/services/dash-email").status_code == 302


def test_too_many_attempts_on_one_account_get_429_even_with_the_right_password(dash_runtime, dash_client):
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    for n in range(PER_ACCOUNT_ADDRESS):
        assert sign_in(dash_client, "pm@example.gov", f"wrong-password-{n:03d}").status_code == 401
    limited = sign_in(dash_client, "pm@example.gov")
    assert limited.status_code == 429 and "Too many sign-in attempts" in limited.text
    assert 0 < int(limited.headers["Retry-After"]) <= 15 * 60
    assert dash_client.get("/dashboard/").status_code == 302
    # Another account from the same address is not held back by this one's limit.
    make_account(dash_runtime, "other@example.gov", ("dash-email",))
    assert sign_in(dash_client, "other@example.gov").status_code == 302
    with dash_runtime.sessions() as session:
        kept = session.execute(select(func.count()).select_from(SignInAttempt)).scalar_one()
    assert kept == 3 * (PER_ACCOUNT_ADDRESS + 1)  # pair, address and account rows; the refused attempt is not kept


def test_a_stranger_guessing_at_an_account_does_not_lock_its_official_out(dash_runtime, dash_client):
    """The per-account limit counts (account, address) pairs: the stranger's address is held back, the official
    signing in from another address is not."""
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    stranger, official = "203.0.113.9", "198.51.100.7"
    for n in range(PER_ACCOUNT_ADDRESS):
        assert sign_in(dash_client, "pm@example.gov", f"wrong-password-{n:03d}", address=stranger).status_code == 401
    assert sign_in(dash_client, "pm@example.gov", address=stranger).status_code == 429
    assert sign_in(dash_client, "pm@example.gov", address=official).status_code == 302


def test_guessing_spread_over_many_addresses_meets_the_per_account_brake(dash_runtime, dash_client):
    """No address reaches its own limits, but the account's failures from all of them together do: past
    PER_ACCOUNT, every address is refused for that account (and only that account) until the window moves on."""
    assert PER_ACCOUNT_ADDRESS < PER_ACCOUNT and PER_ADDRESS < PER_ACCOUNT
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    make_account(dash_runtime, "other@example.gov", ("dash-email",))
    for n in range(PER_ACCOUNT):
        address = f"203.0.113.{n // (PER_ACCOUNT_ADDRESS - 1)}"  # fewer failures per address than its limits
        assert sign_in(dash_client, "pm@example.gov", f"wrong-password-{n:03d}", address=address).status_code == 401
    limited = sign_in(dash_client, "pm@example.gov", address="198.51.100.7")
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 15 * 60
    assert sign_in(dash_client, "other@example.gov", address="198.51.100.7").status_code == 302


def test_too_many_attempts_from_one_address_get_429(dash_runtime, dash_client):
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    for n in range(PER_ADDRESS):
        assert (
            sign_in(dash_client, f"guess-{n}@example.gov", "wrong-password-1", address="203.0.113.9").status_code == 401
        )
    assert sign_in(dash_client, "pm@example.gov", address="203.0.113.9").status_code == 429
    assert sign_in(dash_client, "pm@example.gov", address="198.51.100.7").status_code == 302


def test_an_ipv6_client_cannot_step_around_the_address_limits_by_changing_address_within_its_network(
    dash_runtime, dash_client
):
    """An IPv6 host picks any of its /64's 2^64 addresses at will: the address limits count the /64, and an
    IPv4-mapped address counts as its IPv4 address."""
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    for n in range(PER_ADDRESS):
        address = f"2001:db8:1:2::{n + 1:x}"
        assert sign_in(dash_client, f"guess-{n}@example.gov", "wrong-password-1", address=address).status_code == 401
    assert sign_in(dash_client, "pm@example.gov", address="2001:db8:1:2:ffff::9").status_code == 429
    for n in range(PER_ACCOUNT_ADDRESS):
        assert (
            sign_in(dash_client, "pm@example.gov", f"wrong-password-{n:03d}", address="203.0.113.9").status_code == 401
        )
    assert sign_in(dash_client, "pm@example.gov", address="::ffff:203.0.113.9").status_code == 429
    assert sign_in(dash_client, "pm@example.gov", address="2001:db8:1:3::1").status_code == 302  # another network


def test_a_disabled_account_or_a_changed_password_ends_its_sessions(dash_runtime, dash_app):
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    first, second = dash_app.test_client(), dash_app.test_client()
    assert sign_in(first, "pm@example.gov").status_code == 302
    assert sign_in(second, "pm@example.gov").status_code == 302
    with unit_of_work(dash_runtime.sessions) as session:
        set_disabled(session, "pm@example.gov", True)
    assert first.get("/dashboard/services/dash-email").status_code == 302
    assert sign_in(first, "pm@example.gov").status_code == 401
    with unit_of_work(dash_runtime.sessions) as session:
        set_disabled(session, "pm@example.gov", False)
    assert sign_in(first, "pm@example.gov").status_code == 302
    assert first.get("/dashboard/services/dash-email").status_code == 200

    # A new password set through a new link ends the sessions signed in with the old one.
    from engine.dashboard.accounts import reset_link, use_token

    with unit_of_work(dash_runtime.sessions) as session:
        link = reset_link(session, "pm@example.gov", dash_runtime.settings.public_url)
    with unit_of_work(dash_runtime.sessions) as session:
        assert use_token(session, link_token(link.url), "a-brand-new-passphrase-7") is not None
    assert first.get("/dashboard/services/dash-email").status_code == 302
    assert sign_in(first, "pm@example.gov", "a-brand-new-passphrase-7").status_code == 302


def test_an_account_sees_only_its_services(dash_runtime, dash_client):
    make_account(dash_runtime, "pm@example.gov", ("dash-email", "dash-drivers"))
    assert sign_in(dash_client, "pm@example.gov").status_code == 302
    assert dash_client.get("/dashboard/services/dash-email").status_code == 200
    home = dash_client.get("/dashboard/")
    assert "Passport Renewal" in home.text and "Other Service" not in home.text
    for path in ("/dashboard/services/dash-other", "/dashboard/services/dash-other/a11.csv?fiscal_year=2027&quarter=1"):
        refused = dash_client.get(path)
        assert refused.status_code == 403 and "Not your service" in refused.text, path
    assert dash_client.get("/dashboard/services/no-such-service").status_code == 404
    for query in (
        "fiscal_year=2027&quarter=5",
        "fiscal_year=abc&quarter=1",
        "fiscal_year=1950&quarter=1",
        "bucket=year",
        "data=everything",
    ):
        assert dash_client.get(f"/dashboard/services/dash-email?{query}").status_code == 400, query


def test_the_pages_speak_the_browsers_language(dash_runtime, dash_client):
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    spanish = {"Accept-Language": "es-US,es;q=0.9,en;q=0.5"}
    form = dash_client.get("/dashboard/sign-in", headers=spanish)
    assert 'lang="es"' in form.text and "Iniciar sesión" in form.text and "Contraseña" in form.text
    refused = dash_client.post("/dashboard/sign-in", headers=spanish,
                               data={"email": "pm@example.gov", "password": "wrong-password-123",
                                     "csrf_token": csrf_of(form.text)})  # fmt: skip
    assert refused.status_code == 401 and "no corresponden a ninguna cuenta" in refused.text
    assert sign_in(dash_client, "pm@example.gov").status_code == 302
    page = dash_client.get("/dashboard/services/dash-email", headers=spanish)
    assert "Embudo de entrega" in page.text and "Descargar el archivo A-11" in page.text
    assert "Delivery funnel" not in page.text


def test_a_session_lasts_at_most_twelve_hours(dash_runtime, dash_client):
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    assert sign_in(dash_client, "pm@example.gov").status_code == 302
    with dash_client.session_transaction() as session:
        session["at"] -= 11 * 3600
    assert dash_client.get("/dashboard/services/dash-email").status_code == 200
    with dash_client.session_transaction() as session:
        session["at"] -= 1 * 3600 + 1
    assert dash_client.get("/dashboard/services/dash-email").status_code == 302


def test_the_limit_holds_across_app_instances_sharing_the_database(dash_runtime, dash_app, dash_settings):
    """Two web processes each with their own runtime and connection pool: attempts on either count together."""
    from engine.app import create_app
    from engine.runtime import build_runtime

    other_runtime = build_runtime(dash_settings, channels=dash_runtime.channels)
    other_runtime.sync_catalog()
    try:
        other = create_app(runtime=other_runtime).test_client()
        make_account(dash_runtime, "pm@example.gov", ("dash-email",))
        clients = [dash_app.test_client(), other]
        for n in range(PER_ACCOUNT_ADDRESS):
            assert sign_in(clients[n % 2], "pm@example.gov", f"wrong-password-{n:03d}").status_code == 401
        assert sign_in(clients[PER_ACCOUNT_ADDRESS % 2], "pm@example.gov").status_code == 429
        assert sign_in(clients[(PER_ACCOUNT_ADDRESS + 1) % 2], "pm@example.gov").status_code == 429
    finally:
        other_runtime.engine.dispose()


def test_head_is_a_get_never_a_sign_in_attempt_nor_a_password_set_without_csrf(dash_runtime, dash_client):
    # HEAD used to run the POST half without its CSRF check: a refused sign-in (counted) and a password set.
    link = make_account(dash_runtime, "pm@example.gov", ("dash-email",), password=None)
    token = link_token(link)
    before = counts(dash_runtime)
    data = {"email": "pm@example.gov", "password": PASSWORD, "confirm": PASSWORD}
    assert dash_client.head("/dashboard/sign-in", data=data).status_code == 200
    assert dash_client.head(f"/dashboard/set-password/{token}", data=data).status_code == 200
    assert counts(dash_runtime) == before
    with dash_runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(SignInAttempt)).scalar_one() == 0
        assert session.execute(select(User.password_hash)).scalar_one() is None
