"""Migration hygiene: one Alembic head, and the models match the migrations on both backends."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory

from engine.store import migrate
from engine.store.db import make_engine


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
