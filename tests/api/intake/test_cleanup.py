from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.core.context import AppContext
from app.core.db import unit_of_work, utcnow
from app.core.idempotency import IdempotencyRecord
from app.intake.maintenance import cleanup
from app.intake.models import Upload
from tests.support.api import Api
from tests.support.images import small_jpeg


async def _age_everything(context: AppContext, hours: int) -> None:
    async with unit_of_work(context.sessions) as session:
        await session.execute(update(Upload).values(created_at=utcnow() - timedelta(hours=hours)))
        await session.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=hours)))


async def _upload_ids(context: AppContext) -> set[str]:
    async with unit_of_work(context.sessions) as session:
        return {str(i) for i in (await session.scalars(select(Upload.id))).all()}


def _object_files(context: AppContext) -> list[str]:
    root = context.settings.storage.local_root / "uploads"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_cleanup_removes_unattached_uploads_and_orphans_but_keeps_evidence(api: Api, client: TestClient) -> None:
    context: AppContext = client.app.state.context  # type: ignore[attr-defined]
    run = client.portal.call  # type: ignore[union-attr]  # the app's own event loop, where its pools live
    headers = api.reporter("alice")
    kept = api.upload_id(headers, data=small_jpeg(1))
    api.submit(headers, [kept], idempotency_key="once")
    abandoned = api.upload_id(headers, data=small_jpeg(2))
    # An orphan: objects written by an upload whose row never committed (a crash between the two).
    orphan_key = "uploads/00000000-0000-4000-8000-000000000001/original.jpeg"
    run(context.storage.put, orphan_key, b"orphan", "image/jpeg")
    fresh_files = _object_files(context)

    # Young things are left alone.
    result = run(cleanup, context)
    assert (result.uploads_removed, result.orphan_objects_removed) == (0, 0)
    assert _object_files(context) == fresh_files

    run(_age_everything, context, 25)
    old = time.time() - 2 * 3600
    for path in (context.settings.storage.local_root / "uploads").rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))
    result = run(cleanup, context)
    assert result.uploads_removed == 1
    assert result.orphan_objects_removed == 1
    assert result.idempotency_records_purged == 1
    assert run(_upload_ids, context) == {kept}
    remaining = _object_files(context)
    assert all(name.startswith(kept) for name in remaining) and len(remaining) == 3
    assert abandoned not in str(remaining)


def test_cleanup_command_with_no_grace_removes_young_orphans_only(api: Api, client: TestClient) -> None:
    """``cleanup --orphan-grace-minutes 0`` (every API process stopped, as bench/faults.py runs it): an orphan
    written a moment ago goes; the objects of an upload row, however young, stay."""
    context: AppContext = client.app.state.context  # type: ignore[attr-defined]
    headers = api.reporter("alice")
    kept = api.upload_id(headers, data=small_jpeg(3))
    orphan_key = "uploads/00000000-0000-4000-8000-000000000002/original.jpeg"
    client.portal.call(context.storage.put, orphan_key, b"orphan", "image/jpeg")  # type: ignore[union-attr]
    settings = context.settings
    environment = {
        **os.environ,
        "HAZARD_DATABASE__URL": settings.database.url,
        "HAZARD_STORAGE__LOCAL_ROOT": str(settings.storage.local_root),
        "HAZARD_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "app.cli", "cleanup"]

    default = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60, check=True)
    assert "0 orphan objects" in default.stdout
    swept = subprocess.run(
        [*command, "--orphan-grace-minutes", "0"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert swept.returncode == 0, swept.stderr
    assert "1 orphan objects" in swept.stdout
    remaining = _object_files(context)
    assert len(remaining) == 3 and all(name.startswith(kept) for name in remaining)
