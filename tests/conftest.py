"""Test set-up: the real stack on SQLite and on PostgreSQL, migrated once per backend, emptied between tests.

PostgreSQL is found at ``SURVEY_ENGINE_TEST_PG_URL`` (default: the local server, database ``test``); the suite
creates its own database there. Where no server answers, the PostgreSQL half is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from engine.api.auth import create_api_key
from engine.app import create_app
from engine.channels import load_channels
from engine.runtime import Runtime, build_runtime
from engine.settings import Settings, load_settings
from engine.store import migrate
from engine.store.db import Base, make_engine, unit_of_work
from tests.helpers import FAST_SENDING
from tests.stand_ins import ScriptedChannel

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
PG_URL = os.environ.get("SURVEY_ENGINE_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
SECRET = "test-secret-key-that-is-long-enough-0123456789"
ENCRYPTION = "test-encryption-key-that-is-long-enough-9876543210"
# The servers, workers and CLI commands tests start inherit this environment: paced, but never slowly.
for _name, _rate in FAST_SENDING.items():
    os.environ.setdefault(_name, _rate)


def _pg_admin_reachable() -> str | None:
    try:
        engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"PostgreSQL is not reachable at {PG_URL} ({type(exc).__name__}); the PostgreSQL half is skipped"


@contextmanager
def own_database(
    backend: str, tmp_path: Path, prefix: str = "survey_engine_own", password: str | None = None
) -> Iterator[tuple[str, str, Any]]:
    """An empty database of the caller's own, not the shared migrated one: its name, its URL and (PostgreSQL) an
    AUTOCOMMIT admin engine to act on it with, else None. Dropped afterwards, whatever the caller did to it.
    ``password`` goes into the URL only (the local server's trust authentication ignores it: a log must not show
    it). PostgreSQL unreachable: the test is skipped, saying why."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        yield name, f"sqlite:///{tmp_path / (name + '.db')}", None
        return
    reason = _pg_admin_reachable()
    if reason:
        pytest.skip(reason)
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name, password=password).render_as_string(hide_password=False)
    try:
        yield name, url, admin
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def flows_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped flows plus a copy of a11-standard whose PRA approval has expired."""
    target = tmp_path_factory.mktemp("flows")
    for source in sorted((ROOT / "flows").glob("*.yaml")):
        shutil.copy(source, target / source.name)
    expired = yaml.safe_load((ROOT / "flows" / "a11-standard.yaml").read_text())
    expired.update(id="expired-pra", title="Survey whose PRA approval expired")
    expired["pra"]["expiration_date"] = "2024-01-31"
    (target / "expired-pra.yaml").write_text(yaml.safe_dump(expired, sort_keys=False))
    return target


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    reason = _pg_admin_reachable()
    if reason:
        pytest.skip(reason)
    name = f"survey_engine_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"


_migrated: set[str] = set()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("pg_database" if request.param == "postgresql" else "sqlite_database")
    return prepared_database(url)


def prepared_database(url: str) -> str:
    """Migrate the database once per session and empty it before each test."""
    engine = make_engine(url)
    try:
        if url not in _migrated:
            migrate.upgrade(engine)
            _migrated.add(url)
        _empty(engine)
    finally:
        engine.dispose()
    return url


def _empty(engine: Any) -> None:
    tables = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def settings(database_url: str, flows_dir: Path, tmp_path: Path) -> Settings:
    return load_settings(
        {
            "SURVEY_ENGINE_DATABASE_URL": database_url,
            "SURVEY_ENGINE_INSTANCE_DIR": str(tmp_path / "instance"),
            "SURVEY_ENGINE_CONFIG_DIR": str(TESTS / "config"),
            "SURVEY_ENGINE_FLOWS_DIR": str(flows_dir),
            "SURVEY_ENGINE_SECRET_KEY": SECRET,
            "SURVEY_ENGINE_ENCRYPTION_KEY": ENCRYPTION,
            "SURVEY_ENGINE_PUBLIC_URL": "https://surveys.example.gov",
            "SURVEY_ENGINE_LOG_LEVEL": "INFO",
            **FAST_SENDING,
        }
    )


@pytest.fixture
def stub_channel() -> ScriptedChannel:
    return ScriptedChannel()


@pytest.fixture
def runtime(settings: Settings, stub_channel: ScriptedChannel) -> Iterator[Runtime]:
    channels = load_channels(settings)
    channels.register(stub_channel)
    rt = build_runtime(settings, channels=channels)
    rt.sync_catalog()
    yield rt
    rt.engine.dispose()


@pytest.fixture
def app(runtime: Runtime) -> Any:
    application = create_app(runtime=runtime)
    application.testing = True
    return application


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def make_key(runtime: Runtime) -> Any:
    def make(services: tuple[str, ...] = ("passport-renewal",), scopes: tuple[str, ...] = ("intake", "reports")) -> str:
        with unit_of_work(runtime.sessions) as session:
            return create_api_key(session, f"key-{uuid.uuid4().hex[:6]}", services, scopes)

    return make


@pytest.fixture
def api_key(make_key: Any, runtime: Runtime) -> str:
    return str(make_key(tuple(runtime.catalog.services)))


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    """The app on a live port (a real socket, Werkzeug's threaded server): its origin."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
