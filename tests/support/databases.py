"""Per-test databases made from a migrated template: every test gets its own real database, built by the
Alembic migrations, and nothing is cleaned up with DELETE.

SQLite (default): the template file is migrated once per session and copied for each test.
PostgreSQL (set TEST_DATABASE_URL, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres): a template
database is migrated once per session and each test gets ``CREATE DATABASE ... TEMPLATE``; all are dropped at the
end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import make_url

from app.core.migrate import upgrade

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


def backend_name() -> str:
    return "postgresql" if TEST_DATABASE_URL else "sqlite"


class SqliteTemplate:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.sqlite"
        self.url = f"sqlite+aiosqlite:///{self.path}"
        upgrade(self.url)

    @contextmanager
    def database(self, directory: Path) -> Iterator[str]:
        target = directory / "test.sqlite"
        shutil.copyfile(self.path, target)
        yield f"sqlite+aiosqlite:///{target}"


class PostgresTemplate:
    def __init__(self, url: str) -> None:
        self.base = make_url(url)
        self.prefix = f"hz_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.template = f"{self.prefix}_tmpl"
        self.created: list[str] = []
        asyncio.run(self._admin(f'CREATE DATABASE "{self.template}"'))
        self.url = self._url(self.template)
        upgrade(self.url)

    def _url(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)

    async def _admin(self, *statements: str) -> None:
        dsn = self.base.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    @contextmanager
    def database(self, _directory: Path) -> Iterator[str]:
        name = f"{self.prefix}_{len(self.created)}"
        self.created.append(name)
        asyncio.run(self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        try:
            yield self._url(name)
        finally:
            asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def drop(self) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))


def make_template(directory: Path) -> SqliteTemplate | PostgresTemplate:
    if TEST_DATABASE_URL:
        return PostgresTemplate(TEST_DATABASE_URL)
    return SqliteTemplate(directory)
