"""Dashboard accounts: the ``user`` commands, one-time set-password links, password hashes and rules."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from engine.dashboard.accounts import hash_password, password_problem, verify_password
from engine.store.db import unit_of_work, utcnow
from engine.store.models import AuditEntry
from engine.store.models.accounts import AccountToken, User
from tests import dashboard_support
from tests.conftest import ENCRYPTION, SECRET
from tests.dashboard_support import PASSWORD, csrf_of, link_token, make_account, sign_in

dash_config_dir = dashboard_support.dash_config_dir
dash_settings = dashboard_support.dash_settings
dash_runtime = dashboard_support.dash_runtime
dash_app = dashboard_support.dash_app
dash_client = dashboard_support.dash_client

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"^https://surveys\.example\.gov/dashboard/set-password/[A-Za-z0-9_-]{43}$")


def cli_env(database_url: str, flows_dir: Path, config_dir: Path) -> dict[str, str]:
    return {**os.environ, "SURVEY_ENGINE_DATABASE_URL": database_url, "SURVEY_ENGINE_CONFIG_DIR": str(config_dir),
           "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir), "SURVEY_ENGINE_SECRET_KEY": SECRET,
           "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION, "SURVEY_ENGINE_PUBLIC_URL": "https://surveys.example.gov",
           "SURVEY_ENGINE_INSTANCE_DIR": str(config_dir.parent / "instance")}  # fmt: skip


def cli(database_url: str, flows_dir: Path, config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(database_url, flows_dir, config_dir)
    return subprocess.run([sys.executable, "-m", "engine.cli", "user", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_user_create_prints_a_one_time_link_alone_on_the_last_line(
    dash_runtime, dash_client, database_url, flows_dir, dash_config_dir
):
    result = cli(database_url, flows_dir, dash_config_dir, "create", "--email", "Pat.Manager@Example.gov",
                 "--service", "dash-drivers", "--service", "dash-email")  # fmt: skip
    assert result.returncode == 0, result.stderr
    link = result.stdout.strip().splitlines()[-1]
    assert LINK.match(link), result.stdout
    token = link_token(link)
    with dash_runtime.sessions() as session:
        user = session.execute(select(User).where(User.email == "pat.manager@example.gov")).scalar_one()
        stored = session.execute(select(AccountToken).where(AccountToken.user_id == user.id)).scalar_one()
        assert user.password_hash is None
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() != token
        assert timedelta(hours=1) < stored.expires_at - utcnow() <= timedelta(hours=72)
        assert {dash_runtime.service_ids["dash-drivers"], dash_runtime.service_ids["dash-email"]} == {
            s.service_id for s in user.services
        }

    # The link sets the password; signing in with it works; the link then works no more.
    page = dash_client.get(f"/dashboard/set-password/{token}")
    assert page.status_code == 200 and "pat.manager@example.gov" in page.text
    done = dash_client.post(f"/dashboard/set-password/{token}",
                       data={"password": PASSWORD, "confirm": PASSWORD, "csrf_token": csrf_of(page.text)})  # fmt: skip
    assert done.status_code == 302 and "password_set=1" in done.headers["Location"]
    assert sign_in(dash_client, "pat.manager@example.gov").status_code == 302
    again = dash_client.get(f"/dashboard/set-password/{token}")
    assert again.status_code == 404 and "does not work" in again.text

    with dash_runtime.sessions() as session:
        audited = session.execute(select(AuditEntry.action, AuditEntry.subject).order_by(AuditEntry.id)).all()
        assert [tuple(a) for a in audited] == [("user.create", "pat.manager@example.gov"),
                                               ("user.password_set", "pat.manager@example.gov")]  # fmt: skip
        assert token not in str(session.execute(select(AuditEntry.detail)).all())

    listed = cli(database_url, flows_dir, dash_config_dir, "list")
    assert re.search(r"pat\.manager@example\.gov\tactive\tdash-drivers,dash-email\t\d{4}-", listed.stdout)


def test_user_create_refuses_unknown_services_and_duplicates(dash_runtime, database_url, flows_dir, dash_config_dir):
    unknown = cli(database_url, flows_dir, dash_config_dir, "create", "--email", "a@example.gov", "--service", "nope")
    assert unknown.returncode != 0 and "unknown service(s): nope" in unknown.stderr
    bad_email = cli(
        database_url, flows_dir, dash_config_dir, "create", "--email", "not-an-address", "--service", "dash-email"
    )
    assert bad_email.returncode != 0 and "is not an email address" in bad_email.stderr
    first = cli(
        database_url, flows_dir, dash_config_dir, "create", "--email", "a@example.gov", "--service", "dash-email"
    )
    assert first.returncode == 0
    second = cli(
        database_url, flows_dir, dash_config_dir, "create", "--email", "A@example.gov", "--service", "dash-email"
    )
    assert second.returncode != 0 and "exists already" in second.stderr
    with dash_runtime.sessions() as session:
        assert session.execute(select(User.email)).scalars().all() == ["a@example.gov"]


def test_two_creates_racing_for_one_email_end_in_a_clear_message(dash_runtime, database_url, flows_dir,
                                                                  dash_config_dir):  # fmt: skip
    """The second `user create` checks while the first has inserted but not yet committed: it waits on the store
    (PostgreSQL's unique index, SQLite's write lock) and then says the account exists, with a non-zero exit."""
    racing = dash_runtime.sessions()
    racing.add(User(email="race@example.gov", created_at=utcnow()))
    racing.flush()  # inserted, not committed: the other command's check cannot see it yet (PostgreSQL)
    second = subprocess.Popen([sys.executable, "-m", "engine.cli", "user", "create", "--email", "Race@example.gov",
                               "--service", "dash-email"], env=cli_env(database_url, flows_dir, dash_config_dir),
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        second.wait(timeout=4)  # it must be waiting on the first's insert, not done
        raise AssertionError(f"the second create did not wait: {second.stdout.read()} {second.stderr.read()}")
    except subprocess.TimeoutExpired:
        pass
    racing.commit()
    racing.close()
    out, err = second.communicate(timeout=60)
    assert second.returncode == 1, (out, err)
    assert "an account for race@example.gov exists already" in err and "Traceback" not in err
    assert "IntegrityError" not in err and "duplicate key" not in err
    with dash_runtime.sessions() as session:
        assert session.execute(select(User.email)).scalars().all() == ["race@example.gov"]


def test_a_link_used_twice_is_refused_and_the_password_stays(dash_runtime, dash_client):
    link = make_account(dash_runtime, "twice@example.gov", ("dash-email",), password=None)
    token = link_token(link)
    page = dash_client.get(f"/dashboard/set-password/{token}")
    first = dash_client.post(f"/dashboard/set-password/{token}",
                        data={"password": PASSWORD, "confirm": PASSWORD, "csrf_token": csrf_of(page.text)})  # fmt: skip
    assert first.status_code == 302
    fresh = csrf_of(dash_client.get("/dashboard/sign-in").text)  # setting the password ended the session
    second = dash_client.post(f"/dashboard/set-password/{token}", data={"password": "another-long-passphrase-9",
                              "confirm": "another-long-passphrase-9", "csrf_token": fresh})  # fmt: skip
    assert second.status_code == 404
    with dash_runtime.sessions() as session:
        user = session.execute(select(User).where(User.email == "twice@example.gov")).scalar_one()
        assert verify_password(PASSWORD, user.password_hash)
        assert not verify_password("another-long-passphrase-9", user.password_hash)


def test_an_expired_link_is_refused(dash_runtime, dash_client):
    link = make_account(dash_runtime, "late@example.gov", ("dash-email",), password=None)
    with unit_of_work(dash_runtime.sessions) as session:
        session.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    token = link_token(link)
    assert dash_client.get(f"/dashboard/set-password/{token}").status_code == 404
    page = dash_client.get("/dashboard/sign-in")
    refused = dash_client.post(f"/dashboard/set-password/{token}",
                          data={"password": PASSWORD, "confirm": PASSWORD, "csrf_token": csrf_of(page.text)})  # fmt: skip
    assert refused.status_code == 404
    with dash_runtime.sessions() as session:
        assert session.execute(select(User.password_hash)).scalar_one() is None


def test_a_new_link_replaces_the_old_one(dash_runtime, dash_client, database_url, flows_dir, dash_config_dir):
    old = make_account(dash_runtime, "reset@example.gov", ("dash-email",), password=None)
    result = cli(database_url, flows_dir, dash_config_dir, "reset", "--email", "reset@example.gov")
    new = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0 and LINK.match(new) and new != old
    assert dash_client.get(f"/dashboard/set-password/{link_token(old)}").status_code == 404
    assert dash_client.get(f"/dashboard/set-password/{link_token(new)}").status_code == 200


def test_weak_or_mismatched_passwords_are_refused_and_the_link_stays_usable(dash_runtime, dash_client):
    link = make_account(dash_runtime, "weak@example.gov", ("dash-email",), password=None)
    token = link_token(link)
    page = dash_client.get(f"/dashboard/set-password/{token}")
    for password, confirm, said in (
        ("short", "short", "at least 12 characters"),
        ("passwordpassword", "passwordpassword", "too common"),
        ("weak@example.gov", "weak@example.gov", "email address"),
        (PASSWORD, PASSWORD + "x", "differ"),
    ):
        answer = dash_client.post(f"/dashboard/set-password/{token}",
                             data={"password": password, "confirm": confirm, "csrf_token": csrf_of(page.text)})  # fmt: skip
        assert answer.status_code == 400 and said in answer.text, password
    with dash_runtime.sessions() as session:
        assert session.execute(select(User.password_hash)).scalar_one() is None
    assert dash_client.get(f"/dashboard/set-password/{token}").status_code == 200


def test_password_hashes_are_scrypt_salted_and_checked():
    stored = hash_password(PASSWORD)
    assert stored.startswith("scrypt$32768$8$3$") and PASSWORD not in stored
    assert stored != hash_password(PASSWORD)  # a fresh salt each time
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "!", stored)
    assert not verify_password(PASSWORD, None)
    assert not verify_password(PASSWORD, "md5$abc")
    assert password_problem("correct horse battery", "x@example.gov") is None
    assert password_problem("a" * 300, "x@example.gov") is not None


def test_disable_enable_and_services_from_the_command_line(dash_runtime, dash_client, database_url, flows_dir,
                                                          dash_config_dir):  # fmt: skip
    make_account(dash_runtime, "pm@example.gov", ("dash-email",))
    run = functools.partial(cli, database_url, flows_dir, dash_config_dir)
    assert run("disable", "--email", "PM@example.gov").returncode == 0
    assert sign_in(dash_client, "pm@example.gov").status_code == 401
    assert "pm@example.gov\tdisabled\tdash-email" in run("list").stdout
    assert run("enable", "--email", "pm@example.gov").returncode == 0
    assert sign_in(dash_client, "pm@example.gov").status_code == 302
    assert dash_client.get("/dashboard/services/dash-other").status_code == 403
    assert run("services", "--email", "pm@example.gov", "--service", "dash-other").returncode == 0
    assert dash_client.get("/dashboard/services/dash-other").status_code == 200
    assert dash_client.get("/dashboard/services/dash-email").status_code == 403
    unknown = run("disable", "--email", "nobody@example.gov")
    assert unknown.returncode != 0 and "no account for nobody@example.gov" in unknown.stderr
    for command in ("disable", "enable", "reset"):  # an undecodable argument (a lone surrogate): a message
        odd = run(command, "--email", "pm\udcff@example.gov")
        assert odd.returncode == 1 and "unpaired surrogate" in odd.stderr and "Traceback" not in odd.stderr
    with dash_runtime.sessions() as session:
        actions = session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions[-3:] == ["user.disable", "user.enable", "user.services"]


def test_an_account_with_a_long_address_is_created_and_audited_whole(dash_runtime):
    """An address of 254 characters (the longest email_validator takes): its audit entry holds it whole. Before
    migration 0010, ``audit_log.subject`` held 200 characters and such an account failed on PostgreSQL."""
    local = "a" * 64
    domain = ".".join(["b" * 63, "c" * 63, "d" * 57, "gov"])
    address = f"{local}@{domain}"
    assert len(address) == 254
    make_account(dash_runtime, address, ("dash-email",))
    with dash_runtime.sessions() as session:
        assert address in session.execute(select(AuditEntry.subject)).scalars().all()
