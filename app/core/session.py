"""The request's unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from app.core.db import unit_of_work


async def get_session(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """One session per request, committed when the route function returns (before the response is sent:
    routes depend on this with ``scope="function"``, so a failed commit is still answered as an error)."""
    async with unit_of_work(connection.app.state.context.sessions) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """A session for a route that only reads. On PostgreSQL each statement runs on its own, outside any transaction
    (autocommit): no BEGIN and COMMIT, two round trips and two more statements for the server on every request of a
    hot list, but each statement sees its own snapshot. A route that writes, or whose reads must agree with each
    other, takes ``DbSession``."""
    async with connection.app.state.context.read_sessions() as session:
        yield session


ReadSession = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
