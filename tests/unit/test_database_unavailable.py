"""Which database errors mean "unavailable, retry" (503) and which are bugs (500)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.core.db import is_database_unavailable


class _DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _wrapped(sqlstate: str | None, *, invalidated: bool = False, kind: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return kind("SELECT 1", None, _DriverError(sqlstate), connection_invalidated=invalidated)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        _wrapped("57P03"),  # the database system is starting up / not yet accepting connections
        _wrapped("57P01"),  # terminating connection due to administrator command
        _wrapped("08006"),  # connection failure
        _wrapped(None, invalidated=True),  # the connection was lost mid-statement
        _wrapped("57014"),  # statement_timeout: blocked on a lock, or the server overloaded
        TimeoutError(),  # asyncpg's command_timeout: the server said nothing at all
    ],
)
def test_unavailable(error: BaseException) -> None:
    assert is_database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [_wrapped("23505", kind=IntegrityError), _wrapped("42P01"), _wrapped(None), ValueError("bad"), OSError(2, "x")],
)
def test_not_unavailable(error: BaseException) -> None:
    assert not is_database_unavailable(error)
