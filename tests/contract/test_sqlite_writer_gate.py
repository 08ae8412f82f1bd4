"""The embedded SQLite database: the transactions of one process take the write lock in arrival order."""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import db
from app.core.config import DatabaseSettings
from app.core.db import create_engine, create_session_factory, unit_of_work


def _engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    return create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'gate.sqlite'}"))


def test_concurrent_transactions_run_one_at_a_time(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        engine = _engine(tmp_path)
        sessions = create_session_factory(engine)
        events: list[str] = []
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))

        async def writer(n: int) -> None:
            async with unit_of_work(sessions) as session:
                await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})  # begins: takes the gate
                events.append(f"begin {n}")
                await asyncio.sleep(0.05)  # hold the transaction while the others arrive
                events.append(f"end {n}")

        await asyncio.gather(*(writer(n) for n in range(8)))
        async with unit_of_work(sessions) as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 8
        await engine.dispose()
        return events

    events = asyncio.run(scenario())
    # Never two at once: each transaction ends before the next begins (without the gate they interleave, the
    # waiting ones polling in SQLite's busy handler).
    order = [event.split()[1] for event in events[::2]]
    assert events == [f"{step} {n}" for n in order for step in ("begin", "end")]
    assert sorted(order) == [str(n) for n in range(8)]


def test_a_connection_may_run_several_transactions_without_waiting_for_itself(tmp_path: Path) -> None:
    async def scenario() -> int:
        engine = _engine(tmp_path)
        async with engine.connect() as connection:
            for n in range(3):
                async with connection.begin():
                    await connection.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
                    await connection.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            total = (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one()
        await engine.dispose()
        return int(total)

    assert asyncio.run(scenario()) == 3


def test_a_writer_that_waits_too_long_fails_as_sqlite_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)

    async def scenario() -> str:
        engine = _engine(tmp_path)
        sessions = create_session_factory(engine)
        holding = asyncio.Event()

        async def holder() -> None:
            async with unit_of_work(sessions) as session:
                await session.execute(text("CREATE TABLE t (n INTEGER)"))
                holding.set()
                await asyncio.sleep(0.6)

        async def waiter() -> str:
            await holding.wait()
            try:
                async with unit_of_work(sessions) as session:
                    await session.execute(text("SELECT 1"))
            except OperationalError as exc:
                return str(exc)
            return "no error"

        _, outcome = await asyncio.gather(holder(), waiter())
        # The gate is free again afterwards.
        async with unit_of_work(sessions) as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
        await engine.dispose()
        return outcome

    assert "database is locked" in asyncio.run(scenario())


async def _gap_after_commit(sessions: async_sessionmaker[AsyncSession]) -> float:
    """Seconds from one writer's commit to the begin of the one that was waiting for it."""
    holding, committed = asyncio.Event(), [0.0]

    async def holder() -> None:
        async with unit_of_work(sessions) as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            await asyncio.sleep(0.3)
        committed[0] = time.perf_counter()

    async def waiter() -> float:
        await holding.wait()
        async with unit_of_work(sessions) as session:
            await session.execute(text("INSERT INTO t VALUES (2)"))
            return time.perf_counter()

    _, began = await asyncio.gather(holder(), waiter())
    return began - committed[0]


def test_the_next_writer_begins_as_soon_as_the_last_one_commits(tmp_path: Path) -> None:
    """Without the gate the waiting connection polls in SQLite's busy handler, which sleeps 25–100 ms between tries
    once it has waited a while (a median gap of about 40 ms here); with it, the next begins at once."""

    async def scenario() -> list[float]:
        engine = _engine(tmp_path)
        sessions = create_session_factory(engine)
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
        gaps = [await _gap_after_commit(sessions) for _ in range(5)]
        await engine.dispose()
        return gaps

    assert statistics.median(asyncio.run(scenario())) < 0.02


def _other_process_holds_the_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another writer of the file (a CLI command, a second process): its own connection, its own thread."""
    holding = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        holding.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait()
    return thread


def test_waiting_for_another_process_leaves_the_event_loop_free(tmp_path: Path) -> None:
    """Statements run on the event loop's thread (no aiosqlite thread); the wait for another process's write lock is
    awaited, not slept in SQLite's busy handler: the loop goes on serving while it lasts, and the transaction then
    runs."""

    async def scenario() -> tuple[int, float, int]:
        engine = _engine(tmp_path)
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
        sessions = create_session_factory(engine)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        other = _other_process_holds_the_write_lock(tmp_path / "gate.sqlite", 0.4)
        started = time.perf_counter()
        async with unit_of_work(sessions) as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
        waited = time.perf_counter() - started
        ticking.cancel()
        other.join()
        async with unit_of_work(sessions) as session:
            count = (await session.execute(text("SELECT count(*) FROM t"))).scalar_one()
        await engine.dispose()
        return ticks, waited, count

    ticks, waited, count = asyncio.run(scenario())
    assert waited >= 0.3 and count == 1
    assert ticks >= 15  # about 40 in 0.4 s; none while a blocking busy handler held the loop


def test_another_process_holding_the_lock_too_long_fails_as_sqlite_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)

    async def scenario() -> str:
        engine = _engine(tmp_path)
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
        sessions = create_session_factory(engine)
        other = _other_process_holds_the_write_lock(tmp_path / "gate.sqlite", 0.6)
        try:
            async with unit_of_work(sessions) as session:
                await session.execute(text("INSERT INTO t VALUES (1)"))
        except OperationalError as exc:
            outcome = str(exc)
        else:
            outcome = "no error"
        other.join()
        async with unit_of_work(sessions) as session:  # the gate and the pool are whole again
            await session.execute(text("INSERT INTO t VALUES (2)"))
        await engine.dispose()
        return outcome

    assert "database is locked" in asyncio.run(scenario())
