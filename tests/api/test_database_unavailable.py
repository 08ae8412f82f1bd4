"""A database that is down answers 503 ``database_unavailable`` in the error shape, never a 500, and the same
process answers normally once the database is back."""

from __future__ import annotations

import asyncio

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
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database="postgres"
    )
    try:
        return int(
            await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1", url.database
            )
        )
    finally:
        await connection.close()
