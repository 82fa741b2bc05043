"""The fast paths of SPEC §7 give the answers of the slow ones: validation shortcuts, the set-based writes, the
race of one transaction id in two processes (taken the optimistic way), and the cache of verified API keys."""

from __future__ import annotations

import random
import string
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import event, func, select, text, update

from engine.api import auth as api_auth
from engine.common.errors import ConfigError, FieldError
from engine.intake.submit import Intake
from engine.intake.validation import _plain_email, normalize_email, normalize_phone
from engine.settings import load_settings
from engine.store.db import make_engine, unit_of_work
from engine.store.models import ApiKey, DeliveryEvent, Invitation, InvitationState, Transaction
from tests.helpers import post, tx

# -- validation ---------------------------------------------------------------------------------------------------


def _reference_email(value: str) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


TRICKY_EMAILS = [
    "pat@example.com", "Pat.Doe@Example.COM", "a+b@mail.example.gov", "o'neil@example.org", "x!#$%&'*+/=?^_`{|}~-@ex.co",
    "info@example.com", "a" * 64 + "@example.com", "a" * 65 + "@example.com", "pat@" + "a" * 63 + ".com",
    "pat@" + "a" * 64 + ".com", "pat@" + ".".join(["abcdefghi"] * 25) + ".com", ".pat@example.com", "pat.@example.com",
    "pat..doe@example.com", "pat@example", "pat@localhost", "pat@example.local", "pat@x.invalid", "pat@foo.arpa",
    "pat@home.arpa", "pat@x.onion", "pat@x.test", "pat@-example.com", "pat@example-.com", "pat@exa--mple.com",
    "pat@ab--cd.com", "pat@xn--bcher-kva.example", "pat@example.c0m", "pat@example.123", "pat@1.2.3.4", "pat@[1.2.3.4]",
    '"pat"@example.com', "Pat <pat@example.com>", "pat@@example.com", "pat@exa mple.com", " pat@example.com",
    "pat@example.com ", "pät@example.com", "pat@exämple.com", "pat@example.com\n", "pat\u200b@example.com", "@example.com",
    "pat@", "pat", "pat@example..com", "pat@.example.com", "pat@example.com.", "PAT@EXAMPLE.COM",
]  # fmt: skip


@pytest.mark.parametrize("address", TRICKY_EMAILS)
def test_the_email_fast_path_accepts_only_what_email_validator_accepts(address):
    reference = _reference_email(address)
    fast = _plain_email(address)
    assert fast is None or fast == reference, (address, fast, reference)
    try:
        normalized = normalize_email(address)
    except FieldError as exc:
        assert reference is None, (address, exc)
    else:
        assert normalized == reference


def test_the_email_fast_path_agrees_with_email_validator_on_generated_addresses():
    rng = random.Random(20261126)
    local_chars = string.ascii_letters + string.digits + ".!#$%&'*+/=?^_`{|}~-\"(),:;<>@[\\] é"
    domain_chars = string.ascii_letters + string.digits + "-." + "é_@ "
    tlds = ["com", "gov", "org", "io", "x1", "123", "local", "invalid", "arpa", "test", "c-m", "COM", ""]
    accepted = 0
    for _ in range(20000):
        local = "".join(rng.choice(local_chars) for _ in range(rng.randint(0, 12)))
        labels = [
            "".join(rng.choice(domain_chars) for _ in range(rng.randint(0, 10))) for _ in range(rng.randint(1, 3))
        ]
        address = f"{local}@{'.'.join([*labels, rng.choice(tlds)])}"
        fast = _plain_email(address)
        if fast is not None:
            accepted += 1
            assert fast == _reference_email(address), address
    assert accepted > 500  # the generator reaches the fast path, not only the refusals


@pytest.mark.parametrize(
    "raw",
    ["+12025550123", "+1 202 555 0123", "(202) 555-0123", "+442079460018", "+4407911123456", "+3906698",
     "+390669812345", "+999123456789", "+1202555012", "+120255501234", "12345", "phone", "+", "+0123456789",
     "+6834002", "tel:+1-202-555-0123", "+12025550123;ext=7"],
)  # fmt: skip
def test_a_cached_phone_verdict_is_phonenumbers_verdict(raw):
    try:
        number = phonenumbers.parse(raw, "US")
        expected = (
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(number)
            else None
        )
    except phonenumbers.NumberParseException:
        expected = None
    for _ in range(2):  # the second answer comes from the cache
        if expected is None:
            with pytest.raises(FieldError):
                normalize_phone(raw)
        else:
            assert normalize_phone(raw) == expected


# -- intake -------------------------------------------------------------------------------------------------------


def _items(prefix: str, n: int) -> list[dict[str, Any]]:
    completed = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    return [
        {"id": f"{prefix}-{i}", "service": "passport-renewal", "completed_at": completed,
         "contact": {"email": f"{prefix.lower()}{i}@example.com", "phone": f"+1202555{i:04d}"},
         "service_level": {"wait_seconds": i}, "attributes": {"n": str(i)} if i % 2 else None}
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("size", [1, 3, 40])
def test_a_race_lost_at_the_insert_answers_with_the_winners_decision(runtime, size):
    """Two submissions of the same items at once: the second answers every item as a replay of the first.

    A real race, no stand-in: the first submission has written its rows and not committed when the second starts.
    On PostgreSQL the second's replay check sees nothing (READ COMMITTED), its INSERT waits on the first's
    uncommitted keys (the test waits until PostgreSQL shows it waiting on that lock), and once the first commits
    it writes nothing: the look-up after the lost INSERT must give the winner's decisions. On SQLite every
    transaction begins IMMEDIATE, so the second waits at its start and its replay check finds the rows.
    """
    items = [{k: v for k, v in item.items() if v is not None} for item in _items("LOST", size)]
    second: dict[str, Any] = {}

    def submit_again() -> None:
        try:
            with unit_of_work(runtime.sessions, one_write=size == 1) as session:
                second["results"] = Intake(runtime).submit(session, items)
        except BaseException as exc:  # reported by the assertion below
            second["error"] = exc

    with unit_of_work(runtime.sessions) as session:
        first = Intake(runtime).submit(session, items)
        session.flush()
        racer = threading.Thread(target=submit_again, daemon=True)
        racer.start()
        _until_waiting_on_a_lock(runtime, racer)
    racer.join(30)
    assert not racer.is_alive() and "error" not in second, second.get("error")
    again = second["results"]
    assert [r["duplicate"] for r in first] == [False] * size
    assert [r["duplicate"] for r in again] == [True] * size
    assert [{**r, "duplicate": True} for r in first] == again
    with runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(Transaction)).scalar_one() == size
        assert session.execute(select(func.count()).select_from(Invitation)).scalar_one() == size


def _until_waiting_on_a_lock(runtime: Any, racer: threading.Thread) -> None:
    """Return once another PostgreSQL backend waits on a lock (the racer's INSERT); on SQLite, once the racer has
    had time to reach its BEGIN IMMEDIATE. Fails if the racer ends first (it did not wait for the first's rows)."""
    deadline = time.monotonic() + 20
    if runtime.engine.dialect.name != "postgresql":
        time.sleep(0.3)
        assert racer.is_alive(), "the second submission did not wait for the first's transaction"
        return
    watcher = make_engine(runtime.settings.database_url)
    try:
        with watcher.connect() as conn:
            while time.monotonic() < deadline:
                waiting = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                         "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
                ).scalar_one()  # fmt: skip
                conn.rollback()
                if waiting:
                    return
                assert racer.is_alive(), "the second submission ended without waiting on the first's rows"
                time.sleep(0.01)
    finally:
        watcher.dispose()
    raise AssertionError("the second submission never waited on the first's uncommitted rows")


def test_a_batch_writes_what_the_rows_say(runtime):
    """The set-based INSERTs store the very values an ORM read gives back (types, JSON, time zones, defaults)."""
    items = _items("ROWS", 30)
    with unit_of_work(runtime.sessions) as session:
        results = Intake(runtime).submit(session, items)
    assert {r["decision"] for r in results} == {"scheduled"}
    with runtime.sessions() as session:
        rows = {t.external_id: t for t in session.execute(select(Transaction)).scalars()}
        invitations = session.execute(select(Invitation)).scalars().all()
    assert rows["ROWS-1"].attributes == {"n": "1"} and rows["ROWS-0"].attributes is None
    assert rows["ROWS-3"].completed_at.tzinfo is not None and rows["ROWS-3"].source == "api"
    assert all(inv.state is InvitationState.SCHEDULED and inv.attempts == 0 for inv in invitations)
    by_id = {str(inv.id): inv for inv in invitations}
    for result in results:
        inv = by_id[result["invitation"]["id"]]
        assert inv.send_at.isoformat().replace("+00:00", "Z") == result["invitation"]["send_at"]


def test_one_transaction_takes_few_statements_and_a_replay_one_more(runtime, client, auth):
    statements: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0].upper()))
    assert post(client, tx("FEW-1", contact={"email": "few@example.com"}), auth).status_code == 200
    fresh = list(statements)
    statements.clear()
    replay = post(client, tx("FEW-1", contact={"email": "few@example.com"}), auth).get_json()
    assert replay["duplicate"] is True and replay["decision"] == "scheduled"
    fresh = [s for s in fresh if s != "BEGIN"]
    replayed = [s for s in statements if s != "BEGIN"]
    # The key lookup (then cached) and, on PostgreSQL, one guarded statement for all the rows (no facts read, no
    # replay check up front); on SQLite the replay check, the facts and one INSERT a table. A replay on PostgreSQL:
    # the guarded INSERT writes nothing, then the replay check answers.
    postgresql = runtime.engine.dialect.name == "postgresql"
    assert len(fresh) <= (2 if postgresql else 7), fresh
    assert len(replayed) <= 2, replayed  # on SQLite the replay check answers at once


def test_one_transaction_on_postgresql_runs_without_begin_and_commit(runtime, client, auth):
    """The single-transaction API reads, then writes once: on PostgreSQL its statements run in autocommit (no
    BEGIN and COMMIT round trips). A batch writes many times: it keeps one database transaction; so does
    everything on SQLite. (A prompt, which writes twice: ``tests/test_website.py``.)"""
    seen: list[tuple[str, bool]] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        dbapi = conn.connection.dbapi_connection
        in_autocommit = bool(getattr(dbapi, "autocommit", False)) if conn.dialect.name == "postgresql" else False
        seen.append((statement.split()[0].upper(), in_autocommit))

    event.listen(runtime.engine, "before_cursor_execute", note)
    try:
        postgresql = runtime.engine.dialect.name == "postgresql"
        assert post(client, tx("AUTO-0"), auth).status_code == 200  # the key is looked up, then cached
        seen.clear()
        assert post(client, tx("AUTO-1", contact={"email": "auto@example.com"}), auth).status_code == 200
        single = [x for x in seen if x[0] != "BEGIN"]
        assert single and all(auto is postgresql for _, auto in single), single
        seen.clear()
        body = {"transactions": [tx("AUTO-2"), tx("AUTO-3", contact={"email": "auto3@example.com"})]}
        assert post(client, body, auth).status_code == 200
        assert seen and not any(auto for _, auto in seen), seen
        # The pool hands the connection on in a transaction again: the batches after it (more of them than the
        # pool holds connections, so the one the single transaction used is among them) are transactions.
        seen.clear()
        for n in range(runtime.engine.pool.size() + 2):
            assert post(client, {"transactions": [tx(f"AUTO-5-{n}"), tx(f"AUTO-6-{n}")]}, auth).status_code == 200
        assert seen and not any(auto for _, auto in seen), seen
    finally:
        event.remove(runtime.engine, "before_cursor_execute", note)


def _decided_in_a_batch(runtime: Any, item: dict[str, Any]) -> dict[str, Any]:
    """What the batch path (which reads the contact's facts first) decides for ``item``, written nowhere: the
    batch's transaction is rolled back."""
    filler = tx(f"{item['id']}-FILLER", contact={"email": f"filler-{uuid.uuid4().hex[:8]}@example.com"})
    with runtime.sessions() as session:
        first, _ = Intake(runtime).submit(session, [item, filler])
        session.rollback()
    return {k: first[k] for k in ("decision", "reason", "channel")}


PHONE = "+12025550148"
EMAIL = "facts@example.com"


def _opted_out(client: Any, auth: dict[str, str], admin: dict[str, str]) -> None:
    assert client.post("/api/v1/opt-outs", json={"phone": PHONE}, headers=auth).status_code == 201


def _opted_out_then_restored(client: Any, auth: dict[str, str], admin: dict[str, str]) -> None:
    _opted_out(client, auth, admin)
    restore = client.delete("/api/v1/opt-outs", json={"phone": PHONE, "reason": "asked again"}, headers=admin)
    assert restore.status_code == 200 and restore.get_json()["restored"] >= 1


# (set-up, the service, whether the contact has facts when the transaction comes in)
SITUATIONS = {
    "no facts": (None, "passport-renewal", False),
    "phone opted out": (_opted_out, "texting", True),
    "opted out, then restored": (_opted_out_then_restored, "texting", False),
    "invited within the cooldown": ("invited", "passport-renewal", True),
    "invited, invitation cancelled": ("cancelled", "passport-renewal", False),
    "invited before the longest cooldown": ("long ago", "passport-renewal", False),
}


@pytest.mark.parametrize("situation", list(SITUATIONS))
def test_one_transaction_is_decided_on_its_contacts_facts_as_in_a_batch(runtime, client, auth, make_key, situation):
    """On PostgreSQL a transaction whose contact has no facts is decided on none and written under a guard, in one
    statement; a contact with facts fails the guard and is decided on them. Either way the decision is the batch
    path's, and the transaction is stored once."""
    setup, service, has_facts = SITUATIONS[situation]
    admin = {"Authorization": f"Bearer {make_key(tuple(runtime.catalog.services), ('intake', 'admin'))}"}
    assert client.get("/api/v1/transactions/passport-renewal/NONE", headers=auth).status_code == 404  # key cached
    if callable(setup):
        setup(client, auth, admin)
    elif setup is not None:
        first = post(client, tx("FACTS-EARLIER", contact={"email": EMAIL, "phone": PHONE}), auth).get_json()
        assert first["decision"] == "scheduled", first
        changes: dict[str, Any] = {
            "invited": {},
            "cancelled": {"state": InvitationState.CANCELLED},
            "long ago": {"send_at": datetime.now(UTC) - timedelta(days=400)},
        }[setup]
        if changes:
            with unit_of_work(runtime.sessions) as session:
                session.execute(
                    update(Invitation).where(Invitation.id == uuid.UUID(first["invitation"]["id"])).values(changes)
                )
    item = tx("FACTS-1", service=service, contact={"email": EMAIL, "phone": PHONE}, consent={"sms": True})
    expected = _decided_in_a_batch(runtime, item)

    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(runtime.engine, "before_cursor_execute", note)
    try:
        answer = post(client, item, auth)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", note)
    assert answer.status_code == 200, answer.get_json()
    got = answer.get_json()
    assert {k: got[k] for k in expected} == expected, (situation, got)
    assert got["duplicate"] is False
    if runtime.engine.dialect.name == "postgresql":
        if has_facts:  # the guarded write, then the replay check, the facts and the write
            assert statements[0] == "WITH" and len(statements) >= 3, statements
        else:
            assert statements == ["WITH"], statements
    with runtime.sessions() as session:
        stored = session.execute(
            select(func.count()).select_from(Transaction).where(Transaction.external_id == "FACTS-1")
        )
        assert stored.scalar_one() == 1
    replay = post(client, item, auth).get_json()
    assert replay["duplicate"] is True and replay["decision"] == expected["decision"]


# -- dispatch -----------------------------------------------------------------------------------------------------


def test_dispatch_records_outcomes_in_bulk_as_it_did_one_by_one(runtime):
    from engine.channels import Outcome
    from engine.delivery.dispatch import Dispatcher, DispatchStats

    with unit_of_work(runtime.sessions) as session:
        Intake(runtime).submit(session, [{**i, "contact": {"email": i["contact"]["email"]}} for i in _items("DSP", 25)])
    now = datetime.now(UTC) + timedelta(minutes=30)
    dispatcher = Dispatcher(runtime, worker="bulk", batch=100)
    ids = dispatcher.claim(now)
    ready = dispatcher.prepare(ids, now, DispatchStats())
    assert len(ready) == 25
    from engine.channels import SendResult

    dispatcher.record([SendResult(o.invitation_id, Outcome.SENT, provider_id=f"p-{n}") for n, (_, o) in enumerate(ready)],
                      ready[0][0], now)  # fmt: skip
    with runtime.sessions() as session:
        rows = session.execute(select(Invitation)).scalars().all()
        events = session.execute(select(DeliveryEvent.event, func.count()).group_by(DeliveryEvent.event)).all()
    assert {r.state for r in rows} == {InvitationState.SENT}
    assert all(r.attempts == 1 and r.claimed_by is None and r.lease_until is None and r.sent_at == now for r in rows)
    assert all(r.provider_id and r.expires_at == now + timedelta(hours=48) and r.updated_at == now for r in rows)
    assert dict(events) == {"sending": 25, "sent": 25}


# -- API keys -----------------------------------------------------------------------------------------------------


def test_a_revoked_key_stops_working_within_the_cache_time(app, client, auth, runtime):
    clock = {"now": 1000.0}
    ttl = runtime.settings.api_key_cache_seconds
    assert ttl > 0
    app.extensions["survey_engine.verified_keys"] = api_auth.VerifiedKeys(ttl, clock=lambda: clock["now"])
    assert post(client, tx("KEY-1"), auth).status_code == 200
    with unit_of_work(runtime.sessions) as session:
        session.execute(update(ApiKey).values(revoked_at=datetime.now(UTC)))
    clock["now"] += ttl / 2
    assert post(client, tx("KEY-2"), auth).status_code == 200  # still trusted: the documented price of the cache
    clock["now"] += ttl
    response = post(client, tx("KEY-3"), auth)
    assert response.status_code == 401 and response.mimetype == "application/problem+json"


def test_an_unknown_key_is_never_cached(client, runtime):
    statements: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    bad = {"Authorization": "Bearer se_" + uuid.uuid4().hex}
    for _ in range(2):
        assert post(client, tx("KEY-X"), bad).status_code == 401
    assert sum("api_keys" in s for s in statements) == 2  # one joined lookup each time


def test_the_key_cache_time_is_a_setting(tmp_path):
    base = {"SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path)}
    assert load_settings(base).api_key_cache_seconds == 5.0
    assert load_settings({**base, "SURVEY_ENGINE_API_KEY_CACHE_SECONDS": "0"}).api_key_cache_seconds == 0.0
    with pytest.raises(ConfigError):
        load_settings({**base, "SURVEY_ENGINE_API_KEY_CACHE_SECONDS": "-1"})
