"""SQLite reads the nearby reports through their box (ix_reports_nearby), not every report of the category in the
window through the index by time, which it preferred for the ORDER BY: a lookup that grew with every report stored
(2.8 ms at 7,000 reports, 0.03 ms through the box)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.intake import duplicates
from tests.support.databases import backend_name

pytestmark = pytest.mark.skipif(
    backend_name() != "sqlite", reason="PostgreSQL plans from its statistics (the 1M-case benchmark checks it)"
)


async def _plan(url: str, photos: int) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            compiled = duplicates._statement(photos).compile(dialect=connection.dialect)
            rows = await connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}", tuple(None for _ in compiled.positiontup or ())
            )
            return [str(row[3]) for row in rows]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("photos", [0, 1, 9])
def test_nearby_reports_are_read_through_their_box(settings: Settings, photos: int) -> None:
    plan = asyncio.run(_plan(settings.database.url, photos))
    reports = [step for step in plan if "reports USING" in step]
    assert reports[0].startswith("SEARCH reports USING INDEX ix_reports_nearby"), plan
    assert not any("ix_reports_category_code_created_at" in step for step in plan), plan
    if photos:
        assert any("photo_hash_bands USING INDEX ix_photo_hash_bands_lookup" in step for step in plan), plan
