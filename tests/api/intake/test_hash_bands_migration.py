"""Migrations 0009 and 0012 give the uploads already stored their hash bands, as new uploads get them."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import select

from app.core.config import Settings
from app.core.context import build_context, close_context
from app.core.db import unit_of_work
from app.core.migrate import alembic_config, upgrade
from app.intake.duplicates import hash_bands
from app.intake.models import PhotoHashBand, Upload
from tests.support.api import Api
from tests.support.images import small_jpeg


async def _bands(settings: Settings) -> tuple[dict[str, list[tuple[int, int]]], dict[str, list[tuple[int, int]]]]:
    context = build_context(settings)
    try:
        async with unit_of_work(context.sessions) as session:
            hashes = dict((await session.execute(select(Upload.id, Upload.perceptual_hash))).all())
            rows = (await session.execute(select(PhotoHashBand).order_by(PhotoHashBand.band))).scalars().all()
    finally:
        await close_context(context)
    stored: dict[str, list[tuple[int, int]]] = {}
    for row in rows:
        stored.setdefault(str(row.upload_id), []).append((row.band, row.value))
    return stored, {str(upload_id): hash_bands(value) for upload_id, value in hashes.items()}


def test_uploads_get_their_bands_and_the_migration_backfills_them(api: Api, settings: Settings) -> None:
    reporter = api.reporter("bands")
    for seed in (1, 2, 3):
        api.upload_id(reporter, data=small_jpeg(seed))
    stored, expected = asyncio.run(_bands(settings))
    assert len(expected) == 3 and stored == expected
    command.downgrade(alembic_config(settings.database.url), "0008")
    upgrade(settings.database.url)
    stored, expected = asyncio.run(_bands(settings))
    assert len(expected) == 3 and stored == expected
