"""Database engine, sessions and the declarative base.

One async engine per process, made by the app factory (never at import). SQLite is the embedded default: every
transaction starts with ``BEGIN IMMEDIATE`` so a transaction that reads and then writes cannot fail with
"database is locked" half-way (SQLite has no ``SELECT ... FOR UPDATE``; taking the write lock up front is its
equivalent), and the transactions of one process queue for that lock in turn (``_WriterGate``) rather than poll for
it. PostgreSQL is used in production.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy.exc
from sqlalchemy import DateTime, MetaData, TypeDecorator, bindparam, event, inspect, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.util import await_

from app.core.config import DatabaseSettings

# How long a transaction waits for the SQLite write lock before failing as "database is locked".
SQLITE_BUSY_SECONDS = 30
SQLITE_POOL_SIZE = 4
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
    engine = create_async_engine(
        settings.url,
        echo=settings.echo,
        connect_args={"timeout": SQLITE_BUSY_SECONDS},
        # A few kept connections: opening one (a thread of aiosqlite's and four PRAGMAs) cost about 3 ms of CPU on
        # every transaction with no pool. One writer at a time either way (the gate below).
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
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cursor.close()

    gate = _WriterGate()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        gate.enter(connection.connection.dbapi_connection)
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        gate.leave(dbapi_connection)

    return engine


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
    statement = _insert_or_ignore(dialect, model, tuple(values), tuple(conflict_columns))
    return (await session.execute(statement, values)).first() is not None


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
