"""What a page of the hot lists costs the database: the statements each request runs, and on PostgreSQL that none of
them waits on a transaction (BEGIN and COMMIT are round trips of their own)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.support.api import Api
from tests.support.databases import backend_name
from tests.support.images import small_jpeg


@contextmanager
def statements(api: Api) -> Iterator[list[tuple[str, bool]]]:
    """The statements the app runs meanwhile, each with whether it ran in autocommit (outside any transaction)."""
    engine = api.client.app.state.context.engine.sync_engine  # type: ignore[attr-defined]
    seen: list[tuple[str, bool]] = []

    def record(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        autocommit = connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        seen.append((" ".join(statement.split())[:80], autocommit))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _selects(seen: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    # SQLite's engine begins every transaction with BEGIN IMMEDIATE, itself a statement (app.core.db).
    return [s for s in seen if s[0].upper().startswith("SELECT")]


def test_a_queue_page_is_the_staff_lookup_and_one_statement(api: Api) -> None:
    reporter = api.reporter("cost")
    for i in range(3):
        assert api.submit(reporter, [api.upload_id(reporter, data=small_jpeg(i))]).status_code == 201
    dispatcher = api.staff("dispatcher")
    first = api.client.get("/v1/staff/cases", headers=dispatcher, params={"limit": 2}).json()
    outside = backend_name() == "postgresql"
    for params in ({"limit": 2}, {"limit": 2, "cursor": first["next_cursor"]}, {"state": ["closed"]}):
        with statements(api) as seen:
            assert api.client.get("/v1/staff/cases", headers=dispatcher, params=params).status_code == 200
        selects = _selects(seen)
        assert len(selects) == 2, seen
        assert selects[0][0].startswith("SELECT staff_users.")
        # Autocommit: asyncpg sends no BEGIN before nor COMMIT after (neither passes through a cursor, so neither
        # would show here); SQLite's two transactions show as their BEGIN IMMEDIATE.
        assert all(autocommit is outside for _, autocommit in selects), seen
        assert len(seen) == (2 if outside else 4), seen


def test_my_reports_run_outside_a_transaction_on_postgresql(api: Api) -> None:
    reporter = api.reporter("mine")
    assert api.submit(reporter, [api.upload_id(reporter)]).status_code == 201
    with statements(api) as seen:
        page = api.client.get("/v1/me/reports", headers=reporter)
    assert page.status_code == 200 and len(page.json()["items"]) == 1
    outside = backend_name() == "postgresql"
    assert _selects(seen) and all(autocommit is outside for _, autocommit in _selects(seen)), seen
