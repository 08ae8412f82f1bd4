"""A database that is down answers 503 ``database_unavailable`` in the error shape, never a 500, and the same
process answers normally once the database is back."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import URL, make_url

from app.core.config import DatabaseSettings, Settings
from app.demo.seed import DEMO_STAFF
from app.main import create_app
from tests.support.servers import free_port

DISPATCHER = next(s for s in DEMO_STAFF if s.username == "dispatcher")


def test_a_refused_database_connection_is_a_503_and_the_process_recovers(settings: Settings) -> None:
    down = settings.model_copy(
        update={"database": DatabaseSettings(url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")}
    )
    login = {"username": DISPATCHER.username, "password": DISPATCHER.password}
    with TestClient(create_app(down)) as client:
        refused = client.post("/v1/auth/staff/login", json=login)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "5"
        assert refused.json() == {"error": {"code": "database_unavailable", "message": "数据库暂时不可用，请稍后重试"}}

        # The database comes back: the same process, with a new engine on a reachable URL, answers normally.
        from app.core.db import create_engine, create_session_factory

        context = client.app.state.context  # type: ignore[attr-defined]
        context.engine = create_engine(settings.database)
        context.sessions = create_session_factory(context.engine)
        assert client.post("/v1/auth/staff/login", json=login).status_code == 200


def test_a_connection_the_server_dropped_is_one_503_then_the_pool_recovers(settings: Settings) -> None:
    """No ping before each checkout (it cost three round trips on every transaction): a pooled connection the
    server dropped fails its first statement, which is a 503 the client retries, and SQLAlchemy then replaces every
    connection of the pool, so the next request succeeds."""
    url = make_url(settings.database.url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("dropping the server side of pooled connections is a PostgreSQL fault")
    login = {"username": DISPATCHER.username, "password": DISPATCHER.password}
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            assert client.post("/v1/auth/staff/login", json=login).status_code == 200
        assert asyncio.run(_terminate_backends(url)) >= 1

        dropped = client.post("/v1/auth/staff/login", json=login)
        assert dropped.status_code == 503, dropped.text
        assert dropped.json()["error"]["code"] == "database_unavailable"
        for _ in range(3):
            assert client.post("/v1/auth/staff/login", json=login).status_code == 200


async def _terminate_backends(url: URL) -> int:
    """Ends every other session on the test database, as a server restart or a failover would."""
    connection = await _connect(url, "postgres")
    try:
        return int(
            await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1", url.database
            )
        )
    finally:
        await connection.close()


def _postgres_only(settings: Settings) -> URL:
    url = make_url(settings.database.url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("statement and response timeouts are PostgreSQL settings")
    return url


def test_a_statement_blocked_past_the_statement_timeout_is_a_503(settings: Settings) -> None:
    """A request blocked on a lock (a migration, a stuck transaction) is cancelled by the server after
    statement_timeout_s and answered 503, not held for as long as the lock is."""
    url = _postgres_only(settings)
    quick = settings.model_copy(update={"database": settings.database.model_copy(update={"statement_timeout_s": 0.3})})
    login = {"username": DISPATCHER.username, "password": DISPATCHER.password}
    with TestClient(create_app(quick)) as client, _LockedTable(url, "staff_users"):
        started = time.monotonic()
        blocked = client.post("/v1/auth/staff/login", json=login)
        assert blocked.status_code == 503, blocked.text
        assert blocked.json()["error"]["code"] == "database_unavailable"
        assert time.monotonic() - started < 5
    with TestClient(create_app(quick)) as client:
        assert client.post("/v1/auth/staff/login", json=login).status_code == 200


def test_a_server_that_stops_answering_is_a_503_and_the_pool_recovers(settings: Settings) -> None:
    """A hung server (or a network that drops packets) is given up after response_timeout_s: 503, and the next
    requests once it answers again succeed."""
    url = _postgres_only(settings)
    with _FreezableProxy(url.port or 5432) as proxy:
        through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        hanging = settings.model_copy(
            update={
                "database": settings.database.model_copy(
                    update={"url": through_proxy, "statement_timeout_s": 30.0, "response_timeout_s": 0.5}
                )
            }
        )
        login = {"username": DISPATCHER.username, "password": DISPATCHER.password}
        with TestClient(create_app(hanging)) as client:
            assert client.post("/v1/auth/staff/login", json=login).status_code == 200
            proxy.freeze()
            started = time.monotonic()
            hung = client.post("/v1/auth/staff/login", json=login)
            assert hung.status_code == 503, hung.text
            assert hung.json()["error"]["code"] == "database_unavailable"
            assert time.monotonic() - started < 10
            proxy.thaw()
            answered = [client.post("/v1/auth/staff/login", json=login).status_code for _ in range(3)]
            assert answered[-1] == 200 and set(answered) <= {200, 503}, answered


class _LockedTable:
    """Holds an ACCESS EXCLUSIVE lock on a table from another connection until the block ends."""

    def __init__(self, url: URL, table: str) -> None:
        self.url, self.table = url, table
        self._locked, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._hold()), daemon=True)

    async def _hold(self) -> None:
        connection = await _connect(self.url, self.url.database)
        try:
            async with connection.transaction():
                await connection.execute(f"LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE")
                self._locked.set()
                await asyncio.to_thread(self._release.wait)
        finally:
            await connection.close()

    def __enter__(self) -> _LockedTable:
        self._thread.start()
        assert self._locked.wait(10), "the lock was not taken"
        return self

    def __exit__(self, *_exc: object) -> None:
        self._release.set()
        self._thread.join(10)


class _FreezableProxy:
    """A TCP proxy to PostgreSQL in a thread of its own. Between ``freeze`` and ``thaw`` it holds every byte in both
    directions (a hung server, or a network that stopped delivering), and delivers them once thawed."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._thawed = threading.Event()
        self._thawed.set()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._ready.set()
        async with server:
            await asyncio.to_thread(self._stop.wait)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await source.read(65536):
                    if not self._thawed.is_set():
                        await asyncio.to_thread(self._thawed.wait)
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(Exception):
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def __enter__(self) -> _FreezableProxy:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def freeze(self) -> None:
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    def __exit__(self, *_exc: object) -> None:
        self.thaw()
        self._stop.set()
        self._thread.join(10)


async def _connect(url: URL, database: str | None) -> Any:
    return await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=database
    )
