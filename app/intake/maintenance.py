"""Housekeeping: unattached uploads, orphaned objects and expired idempotency records.

Rows go before objects: a row is deleted (and committed) first and its objects after, so a crash in between
leaves an orphan object for the next sweep, never a row that points at nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from app.core import idempotency
from app.core.context import AppContext
from app.core.db import unit_of_work, utcnow
from app.intake.models import Upload
from app.intake.uploads import UPLOAD_PREFIX, upload_id_of_key

log = logging.getLogger(__name__)

# An object younger than this may belong to an upload whose row is about to be committed.
ORPHAN_GRACE = timedelta(hours=1)
BATCH = 500
PERIOD_SECONDS = 3600


@dataclass
class CleanupResult:
    uploads_removed: int = 0
    orphan_objects_removed: int = 0
    idempotency_records_purged: int = 0


async def cleanup(context: AppContext, orphan_grace: timedelta = ORPHAN_GRACE) -> CleanupResult:
    """``orphan_grace`` shorter than the default is for an operator who knows no upload is in flight (every API
    process stopped): an object younger than it may belong to a row about to be committed."""
    result = CleanupResult()
    result.uploads_removed = await _remove_unattached_uploads(context)
    result.orphan_objects_removed = await _remove_orphan_objects(context, orphan_grace)
    async with unit_of_work(context.sessions) as session:
        hours = context.settings.intake.idempotency_hours
        result.idempotency_records_purged = await idempotency.purge_expired(session, timedelta(hours=hours))
    log.info("cleanup done", extra=result.__dict__)
    return result


async def _remove_unattached_uploads(context: AppContext) -> int:
    cutoff = utcnow() - timedelta(hours=context.settings.intake.unattached_upload_hours)
    removed = 0
    while True:
        async with unit_of_work(context.sessions) as session:
            rows = (
                await session.execute(
                    select(Upload.id, Upload.original_key, Upload.display_key, Upload.thumbnail_key)
                    .where(Upload.report_id.is_(None), Upload.created_at < cutoff)
                    .limit(BATCH)
                )
            ).all()
            if rows:
                # The report_id guard: an upload attached since the select above is kept.
                await session.execute(
                    delete(Upload).where(Upload.id.in_([r.id for r in rows]), Upload.report_id.is_(None))
                )
        if not rows:
            return removed
        # Objects of rows that survived (attached meanwhile) must stay; recheck before deleting.
        async with unit_of_work(context.sessions) as session:
            kept = set((await session.scalars(select(Upload.id).where(Upload.id.in_([r.id for r in rows])))).all())
        for row in rows:
            if row.id in kept:
                continue
            for key in (row.original_key, row.display_key, row.thumbnail_key):
                await context.storage.delete(key)
            removed += 1
        if len(rows) < BATCH:
            return removed


async def _remove_orphan_objects(context: AppContext, grace: timedelta) -> int:
    objects = await context.storage.list(UPLOAD_PREFIX)
    cutoff = utcnow() - grace
    candidates = {}
    for stored in objects:
        upload_id = upload_id_of_key(stored.key)
        if upload_id is not None and stored.modified_at < cutoff:
            candidates.setdefault(upload_id, []).append(stored.key)
    if not candidates:
        return 0
    known: set[object] = set()
    ids = list(candidates)
    async with unit_of_work(context.sessions) as session:
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            known.update((await session.scalars(select(Upload.id).where(Upload.id.in_(chunk)))).all())
    removed = 0
    for upload_id, keys in candidates.items():
        if upload_id in known:
            continue
        for key in keys:
            await context.storage.delete(key)
            removed += 1
    return removed


async def run_periodically(context: AppContext) -> None:
    """The embedded mode's worker loop; production runs ``python -m app.cli cleanup`` on a schedule instead."""
    while True:
        try:
            await cleanup(context)
        except Exception:
            log.exception("cleanup failed; will retry")
        await asyncio.sleep(PERIOD_SECONDS)
