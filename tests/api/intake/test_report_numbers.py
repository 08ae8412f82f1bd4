"""Report numbers on PostgreSQL: taken from the county's free slots, so submissions of one county do not wait for
each other's commit, and still gap-free (every number up to the counter's is a report's or a free slot)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.core.config import Settings
from app.intake.service import NUMBER_BLOCK, _numbered
from tests.support.api import Api
from tests.support.databases import backend_name
from tests.support.images import small_jpeg

pytestmark = pytest.mark.skipif(
    backend_name() != "postgresql", reason="SQLite admits one writer at a time: its counter row gives each number"
)
COUNTY = {"year": 2026, "region_code": "441881"}


def _take() -> Any:
    value, refill = _numbered()
    return select(value).add_cte(refill)


async def _taken(connection: AsyncConnection) -> int:
    return int((await connection.execute(_take(), COUNTY)).scalar_one())


async def _state(connection: AsyncConnection, county: dict[str, Any] = COUNTY) -> tuple[int, list[int]]:
    counter = (
        await connection.execute(
            text("SELECT last_value FROM report_number_counters WHERE year = :year AND region_code = :region_code"),
            county,
        )
    ).scalar_one()
    free = (
        await connection.execute(
            text(
                "SELECT value FROM report_number_slots WHERE year = :year AND region_code = :region_code ORDER BY value"
            ),
            county,
        )
    ).scalars()
    return int(counter), [int(v) for v in free]


def _county_state(url: str, number: str) -> tuple[int, list[int]]:
    """The counter and the free slots of the year and county a report number names."""
    year, region, _ = number.split("-")

    async def read() -> tuple[int, list[int]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await _state(connection, {"year": int(year), "region_code": region})
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_numbers_come_a_block_at_a_time_and_a_rolled_back_one_is_given_again(database_url: str) -> None:
    async def scenario() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as first:
                assert await _taken(first) == 1  # no slot yet: a block from the counter
            async with engine.connect() as connection:
                assert await _state(connection) == (NUMBER_BLOCK, list(range(2, NUMBER_BLOCK + 1)))
            async with engine.connect() as b, engine.connect() as c:
                await b.begin()
                await c.begin()
                assert await _taken(b) == 2
                # Not waiting for b's commit: the locked slot is skipped.
                assert await asyncio.wait_for(_taken(c), 5) == 3
                await b.rollback()
                await c.commit()
            async with engine.begin() as d:
                assert await _taken(d) == 2  # b's number, back with its rollback
            async with engine.connect() as connection:
                assert await _state(connection) == (NUMBER_BLOCK, list(range(4, NUMBER_BLOCK + 1)))
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_concurrent_submissions_of_one_county_get_distinct_gap_free_numbers(api: Api, database_url: str) -> None:
    reporters = [api.reporter(f"r{n}") for n in range(6)]
    uploads = [
        (headers, api.upload_id(headers, data=small_jpeg(100 + 8 * r + n)))
        for r, headers in enumerate(reporters)
        for n in range(8)
    ]

    async def submit_all() -> list[str]:
        def one(headers: dict[str, str], upload_id: str) -> str:
            response = api.submit(headers, [upload_id])
            assert response.status_code == 201, response.text
            return str(response.json()["number"])

        return list(await asyncio.gather(*(asyncio.to_thread(one, h, u) for h, u in uploads)))

    numbers = asyncio.run(submit_all())
    assert len(set(numbers)) == len(uploads)
    taken = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)

    counter, free = _county_state(database_url, numbers[0])
    # Gap-free: every number up to the counter's is a report's or a free slot, none both.
    assert sorted(taken + free) == list(range(1, counter + 1))


def test_downgrading_gives_the_free_numbers_back_to_the_counter(api: Api, settings: Settings) -> None:
    from alembic import command

    from app.core.migrate import alembic_config, upgrade

    reporter = api.reporter("downgrade")
    numbers = [
        api.submit(reporter, [api.upload_id(reporter, data=small_jpeg(200 + n))]).json()["number"] for n in range(3)
    ]
    year, region, last = numbers[-1].split("-")
    assert last == "000003"

    assert _county_state(settings.database.url, numbers[-1])[0] == NUMBER_BLOCK
    command.downgrade(alembic_config(settings.database.url), "0012")
    upgrade(settings.database.url)
    assert _county_state(settings.database.url, numbers[-1])[0] == 3  # no gap: the 29 free numbers went back
    following = api.submit(reporter, [api.upload_id(reporter, data=small_jpeg(300))]).json()["number"]
    assert following == f"{year}-{region}-000004"
