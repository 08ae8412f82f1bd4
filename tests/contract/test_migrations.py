"""The schema is made only by the migrations: they must agree with the models, on the test's own backend."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from app.core.config import DatabaseSettings
from app.core.db import create_engine
from app.models import Base


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _compare(url: str) -> list[object]:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_diff)
    finally:
        await engine.dispose()


def test_models_and_migrations_agree(database_url: str) -> None:
    assert asyncio.run(_compare(database_url)) == []
