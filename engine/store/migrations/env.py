"""Alembic environment: runs the engine's migrations on the connection or URL it is handed."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, pool

import engine.store.models  # noqa: F401  (registers every table on the metadata)
from engine.store.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    assert url, "no database URL given to the migrations"
    connectable = make_engine(url, poolclass=pool.NullPool)
    with connectable.connect() as conn:
        _run(conn)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `survey-engine db upgrade`")
run_migrations_online()
