"""Duplicate candidates at submission: open reports of the same category near the same point within a window,
and any report that used the same photo (byte-identical, or a re-encoded copy by perceptual hash).

The dispatcher decides; nothing here merges. Points are compared in WGS-84 whatever datum they came in.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import IntakeSettings
from app.intake.evidence import haversine_m
from app.intake.models import DuplicateCandidate, PhotoHashBand, Report, Upload

FINISHED_STATES = ("closed", "rejected", "merged")
# A dispatcher reads a handful of candidates, not hundreds: where many reports pile up on one spot (a fire seen by a
# whole street) the most telling are kept: same photo first, then similar photo, then the nearest.
MAX_CANDIDATES = 20
MAX_NEARBY_ROWS = 200
METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class Candidate:
    report_id: uuid.UUID
    number: str
    distance_m: float | None
    same_photo: bool
    similar_photo: bool


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def hash_bands(perceptual_hash: str) -> list[tuple[int, int]]:
    """The eight bytes of a 64-bit hash as (position, value). Two hashes at most 7 bits apart differ in at most 7
    bytes, so they share at least one: looking up each byte by index finds every similar photo (pigeonhole)."""
    return [(band, int(perceptual_hash[2 * band : 2 * band + 2], 16)) for band in range(8)]


def band_rows(upload_id: uuid.UUID, perceptual_hash: str, created_at: datetime) -> list[dict[str, object]]:
    return [
        {"upload_id": upload_id, "band": band, "value": value, "created_at": created_at}
        for band, value in hash_bands(perceptual_hash)
    ]


async def find_candidates(
    session: AsyncSession,
    settings: IntakeSettings,
    *,
    category_code: str,
    longitude: float,
    latitude: float,
    region_code: str,
    now: datetime,
    photo_hashes: list[str],
    same_photo: dict[uuid.UUID, str],
) -> list[Candidate]:
    """``same_photo``: the reports that already hold one of these photos byte for byte (the caller has them)."""
    since = now - timedelta(days=settings.duplicate_window_days)
    nearby = await _nearby(session, settings, category_code, longitude, latitude, since)
    same = {report_id: (number, None) for report_id, number in same_photo.items()}
    similar = await _similar_photo(session, settings, region_code, since, photo_hashes)
    numbers: dict[uuid.UUID, str] = {}
    for found in (nearby, same, similar):
        numbers.update({report_id: number for report_id, (number, _) in found.items()})
    found = [
        Candidate(
            report_id,
            numbers[report_id],
            nearby[report_id][1] if report_id in nearby else None,
            report_id in same,
            report_id in similar,
        )
        for report_id in numbers
    ]
    found.sort(key=lambda c: (not c.same_photo, not c.similar_photo, c.distance_m or 0.0, c.number))
    return sorted(found[:MAX_CANDIDATES], key=lambda c: c.number)


async def _nearby(
    session: AsyncSession,
    settings: IntakeSettings,
    category_code: str,
    longitude: float,
    latitude: float,
    since: datetime,
) -> dict[uuid.UUID, tuple[str, float]]:
    radius = settings.duplicate_radius_m
    dlat = radius / METRES_PER_DEGREE
    dlon = radius / (METRES_PER_DEGREE * max(math.cos(math.radians(latitude)), 0.01))
    rows = (
        await session.execute(
            select(Report.id, Report.number, Report.wgs84_longitude, Report.wgs84_latitude)
            .where(
                Report.category_code == category_code,
                Report.created_at >= since,
                Report.state.not_in(FINISHED_STATES),
                Report.wgs84_longitude.between(longitude - dlon, longitude + dlon),
                Report.wgs84_latitude.between(latitude - dlat, latitude + dlat),
            )
            .order_by(Report.created_at.desc())
            .limit(MAX_NEARBY_ROWS)
        )
    ).all()
    found: dict[uuid.UUID, tuple[str, float]] = {}
    for report_id, number, lon, lat in rows:
        distance = haversine_m(longitude, latitude, lon, lat)
        if distance <= radius:
            found[report_id] = (number, round(distance, 1))
    return found


async def _similar_photo(
    session: AsyncSession, settings: IntakeSettings, region_code: str, since: datetime, hashes: list[str]
) -> dict[uuid.UUID, tuple[str, None]]:
    if not hashes:
        return {}
    # Only photos sharing a byte of the hash with one of ours can be within 7 bits (``hash_bands``); a photo is
    # uploaded at most the unattached lifetime before the report that uses it.
    uploaded_since = since - timedelta(hours=settings.unattached_upload_hours)
    bands = sorted({band for mine in hashes for band in hash_bands(mine)})
    rows = (
        await session.execute(
            select(Report.id, Report.number, Upload.perceptual_hash)
            .select_from(PhotoHashBand)
            .join(Upload, Upload.id == PhotoHashBand.upload_id)
            .join(Report, Report.id == Upload.report_id)
            .where(
                tuple_(PhotoHashBand.band, PhotoHashBand.value).in_(bands),
                PhotoHashBand.created_at >= uploaded_since,
                Report.region_code == region_code,
                Report.created_at >= since,
                Report.state.not_in(FINISHED_STATES),
            )
        )
    ).all()
    return {
        report_id: (number, None)
        for report_id, number, candidate_hash in rows
        if any(hamming(candidate_hash, mine) <= settings.similar_photo_bits for mine in hashes)
    }


def candidate_rows(report_id: uuid.UUID, candidates: list[Candidate]) -> list[DuplicateCandidate]:
    return [
        DuplicateCandidate(
            report_id=report_id,
            candidate_id=c.report_id,
            distance_m=c.distance_m,
            same_photo=c.same_photo,
            similar_photo=c.similar_photo,
        )
        for c in candidates
    ]
