"""Photo uploads, one file per request as ``wx.uploadFile`` sends them.

The upload runs in two short database units of work around the slow part (decoding, re-encoding, writing three
objects), so that no transaction (on SQLite: the single write lock) is held across 50-250 ms of CPU and storage
I/O. Objects are written before the row that names them is committed: a crash leaves at most an orphan object,
which the cleanup command removes, and never a row that points at nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import anyio
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import idempotency
from app.core.context import AppContext
from app.core.db import insert_or_ignore, unit_of_work, utcnow
from app.intake import duplicates, imaging
from app.intake.errors import UploadNotFound
from app.intake.models import PhotoHashBand, Upload
from app.intake.schemas import UploadView
from app.storage.base import StorageUnavailable

log = logging.getLogger(__name__)

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
UPLOAD_PREFIX = "uploads/"
UPLOAD_OPERATION = "upload_photo"


@dataclass(frozen=True)
class ObjectKeys:
    original: str
    display: str
    thumbnail: str

    @classmethod
    def for_upload(cls, upload_id: uuid.UUID, image_format: str) -> ObjectKeys:
        base = f"{UPLOAD_PREFIX}{upload_id}"
        return cls(f"{base}/original.{image_format}", f"{base}/display.jpg", f"{base}/thumbnail.jpg")

    def all(self) -> list[str]:
        return [self.original, self.display, self.thumbnail]


def upload_id_of_key(key: str) -> uuid.UUID | None:
    """The upload an object key belongs to, for the orphan sweep."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != UPLOAD_PREFIX:
        return None
    try:
        return uuid.UUID(parts[1])
    except ValueError:
        return None


async def receive_upload(context: AppContext, owner: str, data: bytes, idempotency_key: str | None) -> UploadView:
    sha256 = hashlib.sha256(data).hexdigest()
    claim = idempotency.IdempotencyClaim(owner, UPLOAD_OPERATION, idempotency_key) if idempotency_key else None

    async with unit_of_work(context.sessions) as session:
        if claim is not None:
            await _check_key_reuse(session, claim, sha256)
        existing = await _find_by_hash(session, owner, sha256)
    if existing is not None:
        return await upload_view(context, existing)

    processed = await _process(context, data)
    upload_id = uuid.uuid4()
    keys = ObjectKeys.for_upload(upload_id, processed.format)
    await _store_objects(context, keys, data, processed)

    async with unit_of_work(context.sessions) as session:
        values = _row_values(upload_id, owner, sha256, data, keys, processed)
        inserted = await insert_or_ignore(session, Upload, values, ["owner", "sha256"])
        if inserted:
            bands = duplicates.band_rows(upload_id, processed.perceptual_hash, values["created_at"])
            await session.execute(insert(PhotoHashBand), bands)
        upload = await _find_by_hash(session, owner, sha256)
        assert upload is not None
        if claim is not None:
            await _record_key(session, context, claim, sha256, upload.id)
    if not inserted:
        # A concurrent retry of the same photo won; ours are surplus copies.
        await _delete_quietly(context, keys.all())
    return await upload_view(context, upload)


async def _check_key_reuse(session: AsyncSession, claim: idempotency.IdempotencyClaim, sha256: str) -> None:
    record = await idempotency.find(session, claim)
    if record is not None and record.fingerprint != sha256:
        raise idempotency.IdempotencyKeyReused()


async def _record_key(
    session: AsyncSession, context: AppContext, claim: idempotency.IdempotencyClaim, sha256: str, upload_id: uuid.UUID
) -> None:
    replay = await idempotency.claim(session, context.cipher, claim, sha256)
    if replay is None:
        await idempotency.record(session, context.cipher, claim, 201, {"upload_id": str(upload_id)})


async def _find_by_hash(session: AsyncSession, owner: str, sha256: str) -> Upload | None:
    return await session.scalar(select(Upload).where(Upload.owner == owner, Upload.sha256 == sha256))


async def _process(context: AppContext, data: bytes) -> imaging.ProcessedImage:
    limits = imaging.ImageLimits(
        max_pixels=context.settings.intake.max_pixels, max_side=context.settings.intake.max_side
    )
    # Decoding is CPU-bound: off the event loop, and no more at once than there are cores.
    return await anyio.to_thread.run_sync(imaging.process_image, io.BytesIO(data), limits, limiter=context.cpu_limiter)


async def _store_objects(context: AppContext, keys: ObjectKeys, data: bytes, processed: imaging.ProcessedImage) -> None:
    results = await asyncio.gather(
        context.storage.put(keys.original, data, processed.mime_type),
        context.storage.put(keys.display, processed.display.data, "image/jpeg"),
        context.storage.put(keys.thumbnail, processed.thumbnail.data, "image/jpeg"),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    if not failures:
        return
    await _delete_quietly(context, keys.all())
    if isinstance(failures[0], StorageUnavailable):
        raise failures[0]
    raise StorageUnavailable() from failures[0]


async def _delete_quietly(context: AppContext, keys: list[str]) -> None:
    for key in keys:
        try:
            await context.storage.delete(key)
        except Exception:
            log.warning("could not delete object", extra={"key": key})


def _row_values(
    upload_id: uuid.UUID, owner: str, sha256: str, data: bytes, keys: ObjectKeys, processed: imaging.ProcessedImage
) -> dict[str, object]:
    exif = processed.exif
    return {
        "id": upload_id,
        "owner": owner,
        "sha256": sha256,
        "perceptual_hash": processed.perceptual_hash,
        "size_bytes": len(data),
        "format": processed.format,
        "mime_type": processed.mime_type,
        "width": processed.width,
        "height": processed.height,
        "original_key": keys.original,
        "display_key": keys.display,
        "thumbnail_key": keys.thumbnail,
        "exif_captured_at": _as_utc(exif.captured_at),
        "exif_longitude": exif.longitude,
        "exif_latitude": exif.latitude,
        "created_at": utcnow(),
    }


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    # EXIF times without an offset are the camera's wall clock; in this service that is China time.
    return (value if value.tzinfo else value.replace(tzinfo=CHINA_TZ)).astimezone(UTC)


async def upload_view(context: AppContext, upload: Upload) -> UploadView:
    lifetime = context.signed_url_lifetime
    display_url, thumbnail_url = await asyncio.gather(
        context.storage.signed_url(upload.display_key, lifetime),
        context.storage.signed_url(upload.thumbnail_key, lifetime),
    )
    return UploadView(
        id=upload.id,
        sha256=upload.sha256,
        format=upload.format,
        width=upload.width,
        height=upload.height,
        size_bytes=upload.size_bytes,
        display_url=display_url,
        thumbnail_url=thumbnail_url,
        attached=upload.report_id is not None,
        created_at=upload.created_at,
    )


async def get_upload(context: AppContext, owner: str, upload_id: uuid.UUID) -> UploadView:
    async with unit_of_work(context.sessions) as session:
        upload = await session.scalar(select(Upload).where(Upload.id == upload_id, Upload.owner == owner))
    if upload is None:
        raise UploadNotFound()
    return await upload_view(context, upload)
