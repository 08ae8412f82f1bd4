"""Database engine, sessions and the declarative base.

One async engine per process, made by the app factory (never at import). SQLite is the embedded default: every
transaction starts with ``BEGIN IMMEDIATE`` so a transaction that reads and then writes cannot fail with
"database is locked" half-way (SQLite has no ``SELECT ... FOR UPDATE``; taking the write lock up front is its
equivalent), and the transactions of one process queue for that lock in turn (``_WriterGate``) rather than poll for
it. PostgreSQL is used in production.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import aiosqlite
import sqlalchemy.exc
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Executable,
    MetaData,
    Select,
    TypeDecorator,
    bindparam,
    event,
    inspect,
    make_url,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.util import await_

from app.core.config import DatabaseSettings

# How long a transaction waits for the SQLite write lock before failing as "database is locked".
SQLITE_BUSY_SECONDS = 30
SQLITE_POOL_SIZE = 4
# The longest pause between two tries of BEGIN IMMEDIATE while another process holds the write lock.
SQLITE_BUSY_PAUSE_MAX = 0.02
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class CreatedAt:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# SQLSTATE classes that mean "the server is not there for us right now": 08 connection exceptions; 57P01-57P03
# admin shutdown, crash shutdown and cannot connect now (starting up, shutting down, in recovery).
# 57014 a statement cancelled: by statement_timeout (blocked on a lock, or the server overloaded) or by an operator.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "57014")


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database is unreachable (down, restarting, the connection lost), not that a
    statement was wrong: the first is a 503 the caller may retry, the second a bug.

    asyncpg raises a refused or reset connection as a plain ``ConnectionError`` (SQLAlchemy wraps only DBAPI
    errors), and a connect or a statement the server did not answer in time as ``TimeoutError``; the server's own
    refusals carry a SQLSTATE.
    """
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
    return sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    if settings.is_sqlite:
        return _create_sqlite_engine(settings)
    return create_async_engine(
        settings.url,
        echo=settings.echo,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        # No ping before each checkout: it cost three round trips (BEGIN, the ping, ROLLBACK) on every transaction.
        # A connection the server dropped (a restart, a failover) fails its next statement instead, which answers
        # 503 database_unavailable for the client to retry, and SQLAlchemy then replaces the whole pool.
        # JIT compilation costs 50–100 ms on every query the planner finds expensive (the dashboard's scans) and
        # never pays back on the short queries of this service.
        connect_args={
            "server_settings": {
                "jit": "off",
                "statement_timeout": str(round((settings.statement_timeout_s or 0) * 1000)),
            },
            "command_timeout": settings.response_timeout_s,
            "timeout": settings.connect_timeout_s,
        },
    )


def _create_sqlite_engine(settings: DatabaseSettings) -> AsyncEngine:
    database = make_url(settings.url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    location = database or ":memory:"

    async def connect() -> aiosqlite.Connection:
        # No busy timeout in SQLite itself: a statement run on the event loop must not sleep in its busy handler.
        # The one wait for another process's write lock is at BEGIN (``_begin_immediate``), and it is awaited.
        connector = functools.partial(sqlite3.connect, location, timeout=0, check_same_thread=False)
        return await _InlineConnection(connector)

    engine = create_async_engine(
        settings.url,
        echo=settings.echo,
        async_creator=connect,
        # A few kept connections: opening one (four PRAGMAs) cost about 3 ms of CPU on every transaction with no
        # pool. One writer at a time either way (the gate below).
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_SIZE,
    )
    synchronous = settings.sqlite_synchronous

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (the pysqlite/aiosqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    gate = _WriterGate()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        gate.enter(connection.connection.dbapi_connection)
        _begin_immediate(connection)

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        gate.leave(dbapi_connection)

    return engine


class _InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run at once on the event loop's thread, not on a thread of its own.

    aiosqlite hands every call (cursor, execute, fetch, close: four per statement) to its thread and back, and each
    hand-over waits for the GIL, which the event loop, busy with other requests, gives up only every few
    milliseconds; meanwhile the transaction holds SQLite's write lock, and so every other writer of the process.
    The statements of this service take microseconds on SQLite, less than the hand-over itself; run inline, the
    write lock is held for the transaction's own work (the embedded mode went from 188 to 352 submissions/s). The
    price: a slow query holds up the process's other requests while it runs, as it already held up their
    transactions (one writer).
    """

    def __init__(self, connector: Any) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    def __await__(self) -> Any:
        return self._connect().__await__()  # no thread to start


class _RunAtOnce:
    """Stands in for the queue to aiosqlite's thread: runs each call as it is put, and settles its future."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Any]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the caller through its future, as aiosqlite does
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


def _begin_immediate(connection: Any) -> None:
    """BEGIN IMMEDIATE, waiting (awaited, the event loop free) while another process holds SQLite's write lock."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    pause = 0.001
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except sqlalchemy.exc.OperationalError as exc:
            if "database is locked" not in str(exc.orig) or time.monotonic() + pause > deadline:
                raise
        await_(asyncio.sleep(pause))
        pause = min(pause * 2, SQLITE_BUSY_PAUSE_MAX)


class _WriterGate:
    """The one SQLite writer of this process, handed over in turn.

    Every transaction begins IMMEDIATE, so SQLite admits one at a time; left to itself, a waiting connection polls
    (its busy handler sleeps 1, 2, 5 … 100 ms between tries), so under load the unlucky wait seconds while others
    overtake them. Here the transactions of one process queue on an asyncio lock instead, in arrival order, and the
    next begins as soon as the last connection is handed back after its commit or rollback. Other processes (a
    separate worker) still meet at SQLite's own lock and its busy timeout.

    Entered from inside SQLAlchemy's greenlet (the "begin" event), hence ``await_``; a connection that already holds
    the gate (several transactions on one connection) does not wait for itself.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._holder: int | None = None

    def enter(self, dbapi_connection: Any) -> None:
        if self._holder == id(dbapi_connection):
            return
        try:
            await_(asyncio.wait_for(self._lock.acquire(), SQLITE_BUSY_SECONDS))
        except TimeoutError:
            # What SQLite itself answers when its busy timeout runs out.
            raise sqlalchemy.exc.OperationalError("BEGIN IMMEDIATE", None, Exception("database is locked")) from None
        self._holder = id(dbapi_connection)

    def leave(self, dbapi_connection: Any) -> None:
        if self._holder == id(dbapi_connection):
            self._holder = None
            self._lock.release()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A unit of work: commit on success, roll back on any exception. Used by requests and workers alike."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def dialect_insert(session: AsyncSession) -> Any:
    """The INSERT construct of the session's dialect, which knows ON CONFLICT (SQLite and PostgreSQL alike)."""
    return dialect_insert_for("postgresql" if is_postgresql(session) else "sqlite")


def dialect_insert_for(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def insert_values(row: Base) -> dict[str, Any]:
    """An ORM object that is not in a session, as the column values of its INSERT, Python-side defaults filled in
    and every other column present: for Core statements on hot paths, where rows of one table go in one VALUES."""
    return column_values(type(row), row.__dict__)


def column_values(model: type[Base], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (attribute → value) as the column values of an INSERT into the model's table, as
    ``insert_values`` does, without making the ORM object (building one costs more than the INSERT's values)."""
    values: dict[str, Any] = {}
    for key, name, default in _insert_columns(model):
        if key in given:
            values[name] = given[key]
        elif default is not _SERVER_DEFAULT:
            values[name] = default() if callable(default) else default
    return values


_SERVER_DEFAULT = object()


@functools.cache
def _insert_columns(model: type[Base]) -> tuple[tuple[str, str, Any], ...]:
    """(attribute, column, default) of each column: the default a value, a callable, None, or _SERVER_DEFAULT."""
    columns = []
    for prop in inspect(model).column_attrs:
        column = prop.columns[0]
        default: Any = None
        if column.default is not None and column.default.is_scalar:
            default = column.default.arg  # type: ignore[attr-defined]
        elif column.default is not None and column.default.is_callable:
            default = functools.partial(column.default.arg, None)  # type: ignore[attr-defined]
        elif column.server_default is not None:
            default = _SERVER_DEFAULT
        columns.append((prop.key, column.name, default))
    return tuple(columns)


def is_postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


async def insert_or_ignore(
    session: AsyncSession, model: type[Base], values: dict[str, Any], conflict_columns: list[str]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike; True when this call inserted the row.

    On PostgreSQL a concurrent uncommitted insert of the same key makes this wait for that transaction, so the
    loser sees the winner's committed row afterwards instead of failing.
    """
    dialect = "postgresql" if is_postgresql(session) else "sqlite"
    values = column_values(model, values)  # the Python-side defaults too: fetch_all does not run them
    statement = _insert_or_ignore(dialect, model, tuple(values), tuple(conflict_columns))
    return bool(await fetch_all(session, statement, values))


@functools.lru_cache(maxsize=64)
def _insert_or_ignore(dialect: str, model: type[Base], columns: tuple[str, ...], conflict: tuple[str, ...]) -> Any:
    # Built once with bound parameters: building it per call (its values coerced, then its cache key) cost more
    # CPU than the database spent on it, on the hot paths (idempotency claims, uploads).
    insert = dialect_insert_for(dialect)
    primary_key = next(iter(model.__table__.primary_key.columns))
    return (
        insert(model.__table__)  # the table, not the model: the ORM's bulk insert path costs more CPU than the query
        .values({column: bindparam(column) for column in columns})
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(primary_key)
    )


class not_indexed(FunctionElement[Any]):
    """A column, told apart for SQLite's planner: there it is written ``+column``, which keeps the planner from
    reading the rows through an index on it; elsewhere it is the column itself.

    SQLite has no statistics unless ANALYZE ran, and where an index on the column would also give the ORDER BY it
    prefers that index to a narrower one (the nearby reports: every report of the category in the window, read to
    keep the few inside the box). PostgreSQL's planner has statistics and needs no hint.
    """

    inherit_cache = True
    name = "not_indexed"

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(not_indexed)
def _column_itself(element: not_indexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(not_indexed, "sqlite")
def _column_with_unary_plus(element: not_indexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


async def fetch_all(session: AsyncSession, statement: Executable, parameters: Mapping[str, Any]) -> Sequence[Any]:
    """The rows of a statement built once with bound parameters, each with its columns as attributes (as a Row).

    On PostgreSQL the statement runs straight on the driver's cursor of the session's connection, in the session's
    transaction: a statement through SQLAlchemy's execution layer (its compiled cache, parameter processing,
    execution context and result objects) cost about 135 µs of CPU on top of the driver's 60 µs, and the hottest
    write, a submission, runs five. Parameters and results are processed by the statements' own types, as
    SQLAlchemy would. Errors come out as SQLAlchemy's, and a lost connection is invalidated as SQLAlchemy would
    (``DBAPIError.connection_invalidated``). Refused: statements whose SQL depends on their values (expanding IN
    lists) and INSERTs or UPDATEs that leave a column to a Python-side default (``column_values`` gives them all).
    Not run: event listeners and echo. Elsewhere (SQLite): ``session.execute``.
    """
    if not is_postgresql(session):
        return (await session.execute(statement, parameters)).all()
    connection, raw = await _session_connection(session)
    dialect = connection.dialect
    plan = _direct_plan(statement, dialect)
    arguments = plan.arguments(parameters)
    cursor = raw.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        # The adapted cursor's own coroutine (what its execute() awaits from a greenlet): the connection's mutex,
        # BEGIN when the transaction has not started, the prepared statement cache, the driver's errors made DBAPI
        # errors. SQLAlchemy is pinned: tests/contract/test_direct_statements.py guards this use.
        await cursor._prepare_and_execute(plan.sql, arguments)
        records, description = cursor.fetchall(), cursor.description
    except plan.dbapi_error as error:
        session.info.pop(_DIRECT_CONNECTION, None)
        disconnected = dialect.is_disconnect(error, raw.dbapi_connection, cursor)
        if disconnected:
            await connection.invalidate(error)
        raise DBAPIError.instance(
            plan.sql, arguments, error, plan.dbapi_error, connection_invalidated=disconnected, dialect=dialect
        ) from error
    finally:
        cursor.close()
    return plan.rows(records, description)


_DIRECT_CONNECTION = "fetch_all.connection"


async def _session_connection(session: AsyncSession) -> tuple[AsyncConnection, PoolProxiedConnection]:
    """The session's connection and its pooled DBAPI connection, remembered for the rest of the transaction:
    asking the session for them again (two hops into SQLAlchemy's greenlet) cost 22 µs a statement."""
    transaction = session.sync_session.get_transaction()
    remembered = session.info.get(_DIRECT_CONNECTION)
    if remembered is not None and remembered[0] is transaction and transaction is not None and transaction.is_active:
        connection, raw = remembered[1], remembered[2]
        if not connection.invalidated and raw.dbapi_connection is not None:
            return connection, raw
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    session.info[_DIRECT_CONNECTION] = (session.sync_session.get_transaction(), connection, raw)
    return connection, raw


class _DirectPlan:
    """A statement compiled once for one dialect: its SQL, its parameters in order with their processors, and how
    to make its rows."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.post_compile_params or compiled.positiontup is None:
            raise ValueError("fetch_all needs SQL that does not depend on the values (no expanding parameters)")
        if compiled.insert_prefetch or compiled.update_prefetch:
            # SQLAlchemy's execution context computes those; give every column's value instead (column_values).
            raise ValueError("fetch_all runs no Python-side column defaults: give every column a value")
        self.sql = compiled.string
        self.dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        self._binds = [
            (bind.key, bind, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for bind in (compiled.binds[name] for name in compiled.positiontup)
        ]
        self._dialect = dialect
        selected = statement.selected_columns if isinstance(statement, Select) else statement.exported_columns
        self._columns = list(selected)
        self._row: type[Any] = collections.namedtuple("Row", [c.key for c in self._columns], rename=True)
        self._processors: list[Any] | None = None  # known at the first execution: they depend on the driver's types

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for key, bind, processor in self._binds:
            if key in parameters:
                value = parameters[key]
            elif bind.required:
                raise sqlalchemy.exc.InvalidRequestError(f"A value is required for bind parameter {key!r}")
            else:
                value = bind.effective_value
            arguments.append(processor(value) if processor is not None else value)
        return arguments

    def rows(self, records: Sequence[Any], description: Sequence[Any] | None) -> list[Any]:
        processors = self._processors
        if processors is None:
            if len(description or ()) != len(self._columns):
                raise ValueError("fetch_all needs a statement whose rows are its selected or returned columns")
            processors = self._processors = [
                column.type.dialect_impl(self._dialect).result_processor(self._dialect, entry[1])
                for column, entry in zip(self._columns, description or (), strict=True)
            ]
        make = self._row._make
        if not any(processors):
            return [make(record) for record in records]
        return [
            make([value if p is None else p(value) for p, value in zip(processors, record, strict=True)])
            for record in records
        ]


@functools.lru_cache(maxsize=256)
def _direct_plan(statement: Executable, dialect: Dialect) -> _DirectPlan:
    return _DirectPlan(statement, dialect)
