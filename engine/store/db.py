"""Database plumbing: the typed declarative base, engine creation (SQLite pragmas), and sessions.

Everything is stored in UTC. SQLite keeps no time zone, so :class:`UTCDateTime` hands back aware UTC datetimes on
both backends.
"""

from __future__ import annotations

import enum
import functools
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Enum,
    MetaData,
    String,
    Table,
    Uuid,
    any_,
    bindparam,
    create_engine,
    event,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import CursorResult, Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.expression import FromClause, TextualSelect
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# The errors SQLAlchemy raises when the server (or the SQLite file) cannot be reached, was stopped, or the
# connection dropped: the statement never ran or was rolled back with its transaction. The web app answers them with
# a 503 (engine.webapp.request_checks), the commands with one line (engine.cli).
UNREACHABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


def unreachable_reason(url: str) -> str | None:
    """``None`` when the database at ``url`` answers, else one line saying why it cannot be reached."""
    from sqlalchemy import text

    options: dict[str, Any] = {} if url.startswith("sqlite") else {"connect_args": {"connect_timeout": 10}}
    engine = make_engine(url, **options)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except UNREACHABLE as exc:
        return unreachable_line(exc, url)
    finally:
        engine.dispose()
    return None


def unreachable_line(exc: BaseException, url: str) -> str:
    """One line for a person: which database (its password hidden) could not be reached, and the driver's reason
    (never the statement or its values)."""
    from sqlalchemy.engine import make_url

    detail = " ".join(str(getattr(exc, "orig", None) or exc).split()) or type(exc).__name__
    return f"the database at {make_url(url).render_as_string(hide_password=True)} cannot be reached: {detail}"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def str_enum(enum_class: type[enum.Enum]) -> Enum:
    """Store a StrEnum by its value, as a plain string column (no native enum type to migrate)."""
    return Enum(
        enum_class,
        native_enum=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
        uuid.UUID: Uuid(),
    }


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is switched off: ``_sqlite_begin`` opens every transaction as
    # BEGIN IMMEDIATE, so a read-then-write (intake's replay check, a claim) never fails on a stale snapshot
    # when another process wrote in between; it waits on ``busy_timeout`` instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def owner_only_sqlite_file(url: str) -> None:
    """Create the SQLite file of ``url`` readable by its owner alone (0600), with its -wal and -shm if present.

    SQLite gives the -wal and -shm files it creates later the mode of the database file.
    """
    from pathlib import Path

    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite reports the missing folder itself ("unable to open database file")
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))
        for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if name.exists():
                os.chmod(name, 0o600)
    except PermissionError:
        return  # not ours to change; SQLite says what it can or cannot open


# A pooled PostgreSQL connection idle longer than this is pinged before use (SURVEY_ENGINE_DATABASE_PING_SECONDS).
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Before a pooled connection that sat idle for ``idle_seconds`` or more is used, ask the server whether it is
    still there (one ``SELECT 1``); a dead one is replaced by a fresh connection, so the request it was meant for
    goes through rather than failing with a 503. A database restarted, failed over, or a proxy that dropped idle
    connections: the connections it cut were idle, and a steady load (whose connections are never idle that long)
    pays no round trip for it."""
    dialect = engine.dialect

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:  # the pool opens a new connection in its place
            raise sa_exc.DisconnectionError("an idle pooled connection no longer answers") from exc

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def make_engine(url: str, *, ping_after_idle: float = PING_AFTER_IDLE_SECONDS, **kwargs: Any) -> Engine:
    # A database error's message never carries the statement's values (a contact, an email, a hashed token):
    # an error that reaches a log or a traceback shows the SQL alone (SPEC §2 rule 12).
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        owner_only_sqlite_file(url)
        engine = create_engine(url, connect_args={"timeout": 10, "check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # No ``pool_pre_ping``: it costs a round trip at every checkout (one or two per API request). A connection idle
    # for ``ping_after_idle`` seconds is pinged instead (:func:`_ping_when_idle`), and connections are recycled
    # before a server or a proxy in between is likely to have dropped them; a connection that died while in steady
    # use fails that one request (a 503), and SQLAlchemy then discards the whole pool (it invalidates the pool on a
    # disconnect error), so the next checkouts get fresh connections.
    kwargs.setdefault("pool_recycle", 300)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 5)
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine, ping_after_idle)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@lru_cache(maxsize=8)
def _autocommitting(engine: Engine) -> Engine:
    return engine.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def unit_of_work(factory: sessionmaker[Session], *, one_write: bool = False) -> Iterator[Session]:
    """One database transaction: committed when the block ends normally, rolled back otherwise.

    ``one_write``: the block reads, then writes with **one** statement at most (which PostgreSQL applies whole or
    not at all; a statement that wrote nothing, such as a guarded INSERT its guard refused, does not count). On PostgreSQL its statements then run without ``BEGIN`` and ``COMMIT``, two round trips less,
    each in its own snapshot as under READ COMMITTED anyway (the single-transaction API: see
    ``bench/README.md``). Elsewhere, and for any block that writes twice, it is an ordinary transaction.
    """
    bind = factory.kw.get("bind")
    if one_write and isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        session = factory(bind=_autocommitting(bind))
    else:
        session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def insert_unless_present(
    table: FromClause, columns: Sequence[str], conflict: Sequence[str], returning: str
) -> TextualSelect:
    """``INSERT INTO table (columns) VALUES (:column, ...) ON CONFLICT (conflict) DO NOTHING RETURNING returning``.

    One row, or none where a row with the same ``conflict`` values exists: on PostgreSQL a concurrent insert of
    the same values waits for the other transaction to end. Written as a text statement (the same SQL on
    PostgreSQL and SQLite) with each parameter typed as its column: SQLAlchemy caches its compiled form, where the
    dialects' own ``insert().on_conflict_do_nothing()`` carries no cache key and is compiled anew at each execution.
    """
    assert isinstance(table, Table)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING {returning}"
    )
    return text(sql).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns)).columns(table.c[returning])


# -- set-based statements ---------------------------------------------------------------------------------------
#
# Two things make a large batch slow on PostgreSQL: a list of N values written as ``IN (:p1, ..., :pN)`` (a new
# statement text for every N, N parameters to send and plan) and a multi-row ``INSERT ... VALUES`` of N × columns
# parameters, which psycopg has to parse anew each time and PostgreSQL has to plan anew. An array parameter keeps
# the statement text the same whatever N is, so psycopg prepares it once and SQLAlchemy caches it.


SMALL_LIST = 16


def among(column: ColumnElement[Any] | InstrumentedAttribute[Any], name: str, array: bool) -> ColumnElement[bool]:
    """``column`` is one of the values of the list parameter ``name``.

    ``array`` (PostgreSQL only): ``= ANY(:name)``, one array parameter and the same statement text for any number
    of values; for large lists, in a transaction that called ``plans(session, "custom")`` first. Otherwise an expanding
    ``IN (:name_1, ...)``: on PostgreSQL, for a few values (up to ``SMALL_LIST``), an index condition even in a
    generic plan. Build statements with it once (module level) and pass the list as ``{name: [...]}``.
    """
    if array:
        item = String() if isinstance(column.type, String) else column.type  # no length: no cast of every value
        return column == any_(bindparam(name, type_=ARRAY(item)))
    return column.in_(bindparam(name, expanding=True))


def plans(session: Session, mode: str) -> None:
    """How PostgreSQL plans the next statements of this transaction: ``custom`` (with the parameters' values, each
    time) or ``generic`` (once for all values). No-op on other databases; ``SET LOCAL`` ends with the transaction.

    psycopg prepares a statement it has run five times, and PostgreSQL may then settle on a generic plan. For a
    lookup ``x = ANY($1)`` with a large array that is a trap: a generic plan cannot hash the array, and with the
    statistics of a table still filling up (the planner believing a service has 7 rows) it filters every row of the
    service against every value: 300 ms instead of 7 ms for the replay check of a batch of 900 (and an ``IN`` of
    900 parameters fares no better). Such lookups want ``custom`` plans. An ``INSERT ... SELECT FROM unnest(<arrays>)``
    wants the opposite: its plan does not depend on the values, and planning it with them copies the arrays around
    the planner: 38 ms instead of 26 ms for the transactions rows of a batch of 900, twice as long for 100 delivery
    events. Figures: ``bench/insert_variants.py``, ``bench/README.md``.
    """
    if session.get_bind().dialect.name == "postgresql":
        value = {"custom": "force_custom_plan", "generic": "force_generic_plan"}[mode]
        session.connection().exec_driver_sql(f"SET LOCAL plan_cache_mode = {value}")


_LENGTH = re.compile(r"\(\d+\)")


@lru_cache(maxsize=128)
def _source_sql(table: Table, columns: tuple[str, ...], prefix: str, alias: str, single: bool, dialect: Dialect) -> str:
    """A FROM item of rows for ``table``'s ``columns``, named ``alias``: for several rows
    ``unnest(%(<prefix><column>)b::<type>[], ...)``, one array parameter per column; for one row ``(VALUES
    (%(<prefix><column>)b::<type>, ...))``, scalars being cheaper for psycopg to send than one-element arrays."""
    casts = []
    for name in columns:
        # The type without a length: an explicit cast to varchar(n) would silently truncate, while the
        # assignment to the column refuses an over-long value exactly as a plain INSERT does. Binary parameters:
        # psycopg dumps lists 3-10 times faster than as text.
        sql_type = _LENGTH.sub("", table.c[name].type.compile(dialect=dialect))
        casts.append(f"%({prefix}{name})b::{sql_type}" + ("" if single else "[]"))
    source = f"(VALUES ({', '.join(casts)}))" if single else f"unnest({', '.join(casts)})"
    return f"{source} AS {alias}({_names(columns, dialect)})"


def _names(columns: Sequence[str], dialect: Dialect) -> str:
    return ", ".join(dialect.identifier_preparer.quote(c) for c in columns)


@lru_cache(maxsize=256)
def _bind_processors(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[Callable[[Any], Any] | None, ...]:
    return tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns)


def _same(value: Any) -> Any:
    return value


@lru_cache(maxsize=128)
def _python_defaults(table: Table, given: tuple[str, ...]) -> dict[str, Callable[[], Any]]:
    """The Python-side column defaults (``default=``) an ``insert(table)`` would fill in for the columns not given."""
    makers: dict[str, Callable[[], Any]] = {}
    for column in table.c:
        default = column.default
        if column.name in given or default is None:
            continue
        arg: Any = getattr(default, "arg", None)
        if getattr(default, "is_scalar", False):
            makers[column.name] = functools.partial(_same, arg)
        elif getattr(default, "is_callable", False):
            makers[column.name] = functools.partial(arg, None)  # SQLAlchemy's wrapper takes an execution context
        else:
            raise NotImplementedError(f"{table.name}.{column.name}: only scalar and callable defaults are filled in")
    return makers


def _columns(
    table: Table, rows: Sequence[Mapping[str, Any]], dialect: Dialect, defaults: bool = True
) -> tuple[tuple[str, ...], list[list[Any]]]:
    """The columns of ``rows`` (all with the same keys) and their values, column by column, as the driver wants them.

    Values are converted exactly as SQLAlchemy converts them for an ``insert(table)`` or ``update(table)``: the
    columns' own bind processors (UTC timestamps, enum values, UUIDs, JSON) and, with ``defaults``, the
    Python-side defaults of the columns not given. A timestamp shared by many rows (a batch's ``now``) is
    converted once.
    """
    given = tuple(rows[0])
    defaulted = _python_defaults(table, given) if defaults else {}
    columns = given + tuple(defaulted)
    lists = []
    for name, process in zip(columns, _bind_processors(table, columns, dialect), strict=True):
        if name in defaulted:
            make = defaulted[name]
            values = [make() for _ in rows]
        else:
            values = [row[name] for row in rows]
        if process is not None and len(values) == 1:
            values = [process(values[0])]
        elif process is not None:
            distinct = set(values) if isinstance(table.c[name].type, UTCDateTime) else None
            if distinct is not None and len(distinct) <= len(values) // 2:
                # Equal instants store the same UTC value, whatever their offset: convert each one once.
                done = {v: process(v) for v in distinct}
                values = [done[v] for v in values]
            else:
                values = [process(v) for v in values]
        lists.append(values)
    return columns, lists


def _rows_source(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    dialect: Dialect,
    params: dict[str, Any],
    prefix: str = "",
    alias: str = "r",
    defaults: bool = True,
) -> tuple[tuple[str, ...], str]:
    """Add the values of ``rows`` (all with the same keys) to ``params``; return their columns and the FROM item."""
    columns, lists = _columns(table, rows, dialect, defaults)
    single = len(rows) == 1
    for name, values in zip(columns, lists, strict=True):
        params[prefix + name] = values[0] if single else values
    return columns, _source_sql(table, columns, prefix, alias, single, dialect)


def pg_insert_rows(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], suffix: str = ""
) -> CursorResult[Any]:
    """Insert ``rows`` (all with the same keys) on PostgreSQL as one ``INSERT ... SELECT * FROM unnest(arrays)``.

    One statement and one round trip for any number of rows, one array parameter per column, so the statement text
    never changes and psycopg prepares it after a few runs. ``suffix`` is SQL appended as is (``ON CONFLICT ...``,
    ``RETURNING ...``): a constant, never data.
    """
    dialect = session.get_bind().dialect
    params: dict[str, Any] = {}
    columns, source = _rows_source(table, rows, dialect, params)
    target = dialect.identifier_preparer.format_table(table)
    sql = f"INSERT INTO {target} ({_names(columns, dialect)}) SELECT * FROM {source} {suffix}"
    return session.connection().exec_driver_sql(sql.rstrip(), params)


def insert_rows(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], skip_conflicts_on: Sequence[str] = ()
) -> int:
    """Insert ``rows`` (all with the same keys); return how many were written.

    ``skip_conflicts_on``: columns of a unique constraint; a row that would break it is skipped (``ON CONFLICT
    (...) DO NOTHING``). On PostgreSQL one ``unnest`` statement. On SQLite the driver's own executemany of values
    converted column by column (twice as fast as SQLAlchemy's row-by-row executemany for a batch; same values).
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect
    conflict = f"ON CONFLICT ({_names(skip_conflicts_on, dialect)}) DO NOTHING" if skip_conflicts_on else ""
    if dialect.name == "postgresql":
        return int(pg_insert_rows(session, table, rows, conflict).rowcount)
    if dialect.paramstyle != "qmark":
        raise NotImplementedError(f"insert_rows: SQLite and PostgreSQL only, not {dialect.name}")
    columns, lists = _columns(table, rows, dialect)
    sql = _qmark_insert(table, columns, conflict, dialect)
    return int(session.connection().exec_driver_sql(sql, list(zip(*lists, strict=True))).rowcount)


@lru_cache(maxsize=64)
def _qmark_insert(table: Table, columns: tuple[str, ...], suffix: str, dialect: Dialect) -> str:
    target = dialect.identifier_preparer.format_table(table)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {target} ({_names(columns, dialect)}) VALUES ({marks}) {suffix}".rstrip()


@lru_cache(maxsize=64)
def _executemany_update(
    table: Table, key: str, columns: tuple[str, ...], only: tuple[str, str] | None = None
) -> Update:
    # ``b_`` names: SQLAlchemy reserves the column names for the SET clause.
    values: dict[str, Any] = {name: bindparam(f"b_{name}") for name in columns if name != key}
    statement = update(table).where(table.c[key] == bindparam(f"b_{key}"))
    if only is not None:
        statement = statement.where(table.c[only[0]] == only[1])
    return statement.values(values)


def update_rows(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: str = "id",
    only: tuple[str, str] | None = None,
) -> int:
    """Set each row's values (all rows with the same keys, ``key`` among them) on the table row with its ``key``;
    return how many rows were written.

    ``only``: (column, stored value): a row is written only while that column holds that value (the lifecycle's
    guard on an invitation's state). On PostgreSQL one ``UPDATE ... FROM unnest(<arrays>) WHERE <key> = ...``,
    elsewhere an executemany.
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        statement = _executemany_update(table, key, tuple(rows[0]), only)
        result = session.connection().execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])
        return int(result.rowcount)
    params: dict[str, Any] = {}
    columns, source = _rows_source(table, rows, dialect, params, alias="u", defaults=False)
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    assignments = ", ".join(f"{quote(c)} = u.{quote(c)}" for c in columns if c != key)
    sql = f"UPDATE {target} SET {assignments} FROM {source} WHERE {target}.{quote(key)} = u.{quote(key)}"
    if only is not None:
        sql += f" AND {target}.{quote(only[0])} = %(only__value)s"
        params["only__value"] = only[1]
    return int(session.connection().exec_driver_sql(sql, params).rowcount)


def pg_insert_parents_and_children(
    session: Session,
    parent: Table,
    parent_rows: Sequence[Mapping[str, Any]],
    key: str,
    conflict: Sequence[str],
    children: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]],
    link: str,
    guard: tuple[str, Mapping[str, Any]] | None = None,
) -> list[Any]:
    """Insert parent rows and their children in one statement on PostgreSQL; return the parent keys written.

    ``WITH parent AS (INSERT ... ON CONFLICT (<conflict>) DO NOTHING RETURNING <key>), child_0 AS (INSERT ...
    WHERE <link> IN (SELECT <key> FROM parent)), ... SELECT <key> FROM parent``: a child row is written only with
    a parent row written by this very statement, so the children of a parent skipped for a conflict are skipped
    too. One round trip for all the rows of all the tables (foreign keys are checked at the end of the statement,
    when the parents are there).

    ``guard``: (an SQL condition, its parameters): the parents are written only where it holds when the statement
    runs, and nothing is written otherwise (a parent not written takes its children with it, as for a conflict).
    The condition is constant SQL, never data; its parameter names must not start with ``p__`` or ``c<n>__``.
    """
    dialect = session.get_bind().dialect
    params: dict[str, Any] = {}
    parent_sql = _rows_source(parent, parent_rows, dialect, params, prefix="p__")
    children_sql = tuple(
        (child, *_rows_source(child, rows, dialect, params, prefix=f"c{n}__"))
        for n, (child, rows) in enumerate(children)
        if rows
    )
    if guard:
        if clash := params.keys() & guard[1].keys():
            raise ValueError(f"a guard's parameters take the names of the rows' values: {sorted(clash)}")
        params.update(guard[1])
    sql = _family_sql(parent, *parent_sql, key, tuple(conflict), children_sql, link, dialect, guard[0] if guard else "")
    return list(session.connection().exec_driver_sql(sql, params).scalars().all())


@lru_cache(maxsize=64)
def _family_sql(
    parent: Table,
    columns: tuple[str, ...],
    source: str,
    key: str,
    conflict: tuple[str, ...],
    children: tuple[tuple[Table, tuple[str, ...], str], ...],
    link: str,
    dialect: Dialect,
    guard: str,
) -> str:
    quote = dialect.identifier_preparer.quote
    table_name = dialect.identifier_preparer.format_table
    key = quote(key)
    where = f"WHERE {guard} " if guard else ""
    parts = [
        f"parent AS (INSERT INTO {table_name(parent)} ({_names(columns, dialect)}) SELECT * FROM {source} {where}"
        f"ON CONFLICT ({_names(conflict, dialect)}) DO NOTHING RETURNING {key})"
    ]
    for n, (child, child_columns, child_source) in enumerate(children):
        parts.append(
            f"child_{n} AS (INSERT INTO {table_name(child)} ({_names(child_columns, dialect)}) "
            f"SELECT * FROM {child_source} WHERE r.{quote(link)} IN (SELECT {key} FROM parent))"
        )
    return f"WITH {', '.join(parts)} SELECT {key} FROM parent"
