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
