"""``db.fetch_all``: statements run straight on the driver's cursor on PostgreSQL, with SQLAlchemy's meaning kept:
the same rows and types as ``session.execute``, in the session's transaction, SQLAlchemy's errors, and a lost
connection invalidated and answered as "database unavailable". On SQLite it is ``session.execute``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import DatabaseSettings
from app.core.db import create_engine, create_session_factory, fetch_all, is_database_unavailable
from app.core.idempotency import IdempotencyRecord
from app.intake.models import Upload
from tests.support.databases import backend_name

on_postgresql = pytest.mark.skipif(backend_name() != "postgresql", reason="the direct path is PostgreSQL's")
UPLOADS, RECORDS = Upload.__table__, IdempotencyRecord.__table__
# Built once, as the service's statements are: the plan is cached per statement object.
UPLOAD_COLUMNS = select(
    UPLOADS.c.id,
    UPLOADS.c.owner,
    UPLOADS.c.size_bytes,
    UPLOADS.c.exif_captured_at,
    UPLOADS.c.exif_longitude,
    UPLOADS.c.report_id,
    UPLOADS.c.created_at,
).where(UPLOADS.c.owner == bindparam("owner"))
NEW_RECORD = (
    insert(RECORDS)
    .values(
        principal=bindparam("principal"),
        operation=bindparam("operation"),
        key=bindparam("key"),
        fingerprint=bindparam("fingerprint"),
        created_at=bindparam("created_at"),
    )
    .returning(RECORDS.c.principal, RECORDS.c.created_at)
)
COUNT_RECORDS = select(func.count()).select_from(RECORDS).where(RECORDS.c.principal == bindparam("principal"))


Sessions = async_sessionmaker[AsyncSession]


def _run(database_url: str, scenario: Callable[[Sessions], Awaitable[None]]) -> None:
    """``scenario`` with a session factory of the service's own engine for the test's database."""

    async def run() -> None:
        engine = create_engine(DatabaseSettings(url=database_url))
        try:
            await scenario(create_session_factory(engine))
        finally:
            await engine.dispose()

    asyncio.run(run())


def _record(principal: str, key: str = "k") -> dict[str, Any]:
    return {
        "principal": principal,
        "operation": "op",
        "key": key,
        "fingerprint": "f" * 64,
        "created_at": datetime(2026, 11, 28, 8, 30, tzinfo=UTC) + timedelta(microseconds=1),
    }


async def _uploads(sessions: Sessions, owner: str) -> None:
    async with sessions() as session, session.begin():
        for index in range(3):
            session.add(
                Upload(
                    owner=owner,
                    sha256=f"{index:064d}",
                    perceptual_hash=f"{index:016x}",
                    size_bytes=1000 + index,
                    format="jpeg",
                    mime_type="image/jpeg",
                    width=4,
                    height=3,
                    original_key=f"o{index}",
                    display_key=f"d{index}",
                    thumbnail_key=f"t{index}",
                    exif_captured_at=datetime(2026, 11, 27, 23, 0, tzinfo=UTC) if index else None,
                    exif_longitude=[None, 113.401, 113.402][index],
                )
            )


def test_rows_are_those_of_session_execute(database_url: str) -> None:
    async def scenario(sessions: Sessions) -> None:
        owner = f"reporter:{uuid.uuid4()}"
        await _uploads(sessions, owner)
        async with sessions() as session:
            direct = await fetch_all(session, UPLOAD_COLUMNS, {"owner": owner})
            through = (await session.execute(UPLOAD_COLUMNS, {"owner": owner})).all()
        assert len(direct) == 3
        assert sorted(tuple(row) for row in direct) == sorted(tuple(row) for row in through)
        for row in direct:
            assert isinstance(row.id, uuid.UUID)
            assert row.created_at.tzinfo is not None and row.created_at.utcoffset() == timedelta(0)
            assert row.owner == owner and row.report_id is None
        assert {row.exif_longitude for row in direct} == {None, 113.401, 113.402}

    _run(database_url, scenario)


def test_writes_are_the_sessions_transaction(database_url: str) -> None:
    async def scenario(sessions: Sessions) -> None:
        principal = f"reporter:{uuid.uuid4()}"
        async with sessions() as session:
            # One session, two transactions: the connection remembered for the first is not the second's.
            await fetch_all(session, NEW_RECORD, _record(principal, key="committed"))
            await session.commit()
            await fetch_all(session, NEW_RECORD, _record(principal, key="rolled back"))
            await session.rollback()
            assert (await fetch_all(session, COUNT_RECORDS, {"principal": principal}))[0][0] == 1
            await session.execute(text("DELETE FROM idempotency_records WHERE principal = :p"), {"p": principal})
            await session.commit()
        async with sessions() as session:
            # The first statement of the transaction is a direct one: it must begin the transaction, or the rollback
            # below would leave its row.
            (row,) = await fetch_all(session, NEW_RECORD, _record(principal))
            assert row.principal == principal
            assert row.created_at == _record(principal)["created_at"]
            assert (await fetch_all(session, COUNT_RECORDS, {"principal": principal}))[0][0] == 1
            await session.rollback()
        async with sessions() as session:
            assert (await fetch_all(session, COUNT_RECORDS, {"principal": principal}))[0][0] == 0
            await fetch_all(session, NEW_RECORD, _record(principal))
            await session.commit()
        async with sessions() as session:
            assert (await session.execute(COUNT_RECORDS, {"principal": principal})).scalar_one() == 1

    _run(database_url, scenario)


def test_errors_are_sqlalchemys(database_url: str) -> None:
    async def scenario(sessions: Sessions) -> None:
        principal = f"reporter:{uuid.uuid4()}"
        async with sessions() as session:
            await fetch_all(session, NEW_RECORD, _record(principal))
            with pytest.raises(IntegrityError) as raised:
                await fetch_all(session, NEW_RECORD, _record(principal))
            assert not raised.value.connection_invalidated
            assert not is_database_unavailable(raised.value)  # a bug, answered 500, not a 503 to retry
            await session.rollback()
            await fetch_all(session, NEW_RECORD, _record(principal, key="other"))  # the session goes on
            await session.commit()
        with pytest.raises(SQLAlchemyError, match="A value is required for bind parameter 'operation'"):
            async with sessions() as session:
                await fetch_all(session, NEW_RECORD, {"principal": principal})

    _run(database_url, scenario)


@on_postgresql
def test_a_lost_connection_is_unavailable_and_replaced(database_url: str) -> None:
    async def scenario(sessions: Sessions) -> None:
        async with sessions() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with sessions() as other, other.begin():
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(DBAPIError) as raised:
                await fetch_all(session, COUNT_RECORDS, {"principal": "x"})
            assert raised.value.connection_invalidated
            assert is_database_unavailable(raised.value)
            await session.rollback()
        for _ in range(3):  # the pool hands out working connections again
            async with sessions() as session:
                assert (await fetch_all(session, COUNT_RECORDS, {"principal": "x"}))[0][0] == 0

    _run(database_url, scenario)


@on_postgresql
def test_what_fetch_all_cannot_run_as_sqlalchemy_would_is_refused(database_url: str) -> None:
    expanding = select(UPLOADS.c.id).where(UPLOADS.c.id.in_(bindparam("ids", expanding=True)))
    # created_at left to its Python-side default, which SQLAlchemy's execution context would compute
    defaulted = insert(RECORDS).values({k: bindparam(k) for k in ("principal", "operation", "key", "fingerprint")})

    async def scenario(sessions: Sessions) -> None:
        async with sessions() as session:
            with pytest.raises(ValueError, match="expanding"):
                await fetch_all(session, expanding, {"ids": [uuid.uuid4()]})
            with pytest.raises(ValueError, match="Python-side column defaults"):
                await fetch_all(session, defaulted, _record("reporter:x"))

    _run(database_url, scenario)


@on_postgresql
def test_concurrent_statements_share_one_connection_safely(database_url: str) -> None:
    """Two statements of one session at once wait for each other on the connection (the driver's mutex), as
    through SQLAlchemy, instead of interleaving on the wire."""

    async def scenario(sessions: Sessions) -> None:
        owner = f"reporter:{uuid.uuid4()}"
        await _uploads(sessions, owner)
        async with sessions() as session:
            results = await asyncio.gather(*(fetch_all(session, UPLOAD_COLUMNS, {"owner": owner}) for _ in range(8)))
        assert all(len(rows) == 3 for rows in results)

    _run(database_url, scenario)
