"""Migration hygiene: one Alembic head, and the models match the migrations on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from engine.store import migrate
from engine.store.db import make_engine
from tests import conftest


def test_single_head(database_url):
    engine = make_engine(database_url)
    heads = ScriptDirectory.from_config(migrate.alembic_config(engine)).get_heads()
    assert len(heads) == 1
    assert migrate.is_current(engine)
    engine.dispose()


def test_models_match_migrations(database_url):
    """`alembic check`: a model changed without a migration fails here."""
    engine = make_engine(database_url)
    cfg = migrate.alembic_config(engine)
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.check(cfg)
    engine.dispose()


def test_readyz_reports_pending_migrations(tmp_path, settings, stub_channel):
    from dataclasses import replace

    from engine.app import create_app
    from engine.channels import load_channels
    from engine.runtime import build_runtime

    fresh = replace(settings, database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    channels = load_channels(fresh)
    channels.register(stub_channel)
    client = create_app(runtime=build_runtime(fresh, channels=channels)).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503 and "db upgrade" in response.get_json()["detail"]
    assert int(response.headers["Retry-After"]) > 0
    assert client.get("/healthz").status_code == 200


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database of its own (not the shared, migrated one), dropped afterwards."""
    with conftest.own_database(request.param, tmp_path, "survey_engine_mig") as (_, url, _admin):
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def _suppression(conn: Connection, contact: str, channel: str, minute: int, restored: bool = False) -> int:
    at = datetime(2026, 11, 1, 12, minute, tzinfo=UTC)
    values = {"h": contact, "k": "email" if channel == "email" else "phone", "c": channel, "at": at,
              "r": at + timedelta(hours=1) if restored else None}  # fmt: skip
    return int(
        conn.execute(
            text(
                "INSERT INTO suppressions (contact_hash, contact_kind, channel, reason, source, created_at, restored_at)"
                " VALUES (:h, :k, :c, 'opted_out', 'api-key:k', :at, :r) RETURNING id"
            ),
            values,
        ).scalar_one()
    )


def test_0011_keeps_the_earliest_active_suppression_and_restores_its_duplicates(fresh_engine):
    """Rows stored twice by the opt-out race before 0011: the earliest of each contact and channel stays in force,
    the others are marked restored by the migration (naming the row kept) and audited; restored rows and single
    ones are untouched. Then a second active row is refused, and a downgrade drops only the index."""
    engine = fresh_engine
    migrate.upgrade(engine, "0010_wider_actors")
    with engine.begin() as conn:
        later = _suppression(conn, "a" * 64, "sms", 5)
        kept = _suppression(conn, "a" * 64, "sms", 1)
        latest = _suppression(conn, "a" * 64, "sms", 9)
        old = _suppression(conn, "a" * 64, "sms", 0, restored=True)
        single = _suppression(conn, "a" * 64, "ivr", 2)
        mail_kept = _suppression(conn, "b" * 64, "email", 3)
        mail_twin = _suppression(conn, "b" * 64, "email", 3)  # the same moment: the lower id is kept
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text("SELECT * FROM suppressions"))}
        audits = conn.execute(text("SELECT actor, action, subject, detail FROM audit_log ORDER BY subject")).all()
    assert {i for i, r in rows.items() if r.restored_at is None} == {kept, single, mail_kept}
    for duplicate, original in ((later, kept), (latest, kept), (mail_twin, mail_kept)):
        assert rows[duplicate].restored_by == "migration:0011_one_active_suppression"
        assert (
            rows[duplicate].restore_reason
            == f"duplicate of suppression {original}, recorded while that one was in force"
        )
    assert rows[old].restored_by is None and rows[old].restored_at is not None
    assert [(a.actor, a.action, a.subject) for a in audits] == [
        ("migration:0011_one_active_suppression", "suppression.restore", "email:" + "b" * 12),
        ("migration:0011_one_active_suppression", "suppression.restore", "phone:" + "a" * 12),
    ]
    details = {a.subject: a.detail if isinstance(a.detail, dict) else json.loads(a.detail) for a in audits}
    assert details == {
        "email:" + "b" * 12: {"channels": ["email"], "ids": [mail_twin],
                              "reason": "a duplicate of a suppression in force (the earliest is kept)"},
        "phone:" + "a" * 12: {"channels": ["sms"], "ids": [later, latest],
                              "reason": "a duplicate of a suppression in force (the earliest is kept)"},
    }  # fmt: skip
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _suppression(conn, "a" * 64, "sms", 20)
    with engine.begin() as conn:
        _suppression(conn, "a" * 64, "sms", 21, restored=True)  # restored rows: as many as history holds

    cfg = migrate.alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0010_wider_actors")
    assert "uq_suppressions_active" not in {i["name"] for i in inspect(engine).get_indexes("suppressions")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM suppressions WHERE restored_at IS NULL")).scalar_one() == 3
    migrate.upgrade(engine)
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.check(cfg)
