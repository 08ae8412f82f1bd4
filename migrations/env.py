"""Alembic environment: async, the same engine setup as the app, SQLite in batch mode."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from app.core.config import DatabaseSettings, load_settings
from app.core.db import create_engine
from app.models import Base

target_metadata = Base.metadata


def _database_settings() -> DatabaseSettings:
    url = context.config.attributes.get("database_url")
    settings = DatabaseSettings(url=url) if url else load_settings().database
    # No statement limits: a migration may build an index over millions of rows.
    return settings.model_copy(update={"statement_timeout_s": None, "response_timeout_s": None})


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_database_settings())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_settings().url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
