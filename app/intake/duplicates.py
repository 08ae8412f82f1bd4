"""Duplicate candidates at submission: open reports of the same category near the same point within a window,
and any report that used the same photo (byte-identical, or a re-encoded copy by perceptual hash).

The dispatcher decides; nothing here merges. Points are compared in WGS-84 whatever datum they came in.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Float,
    Select,
    String,
    and_,
    bindparam,
    cast,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import IntakeSettings
from app.core.db import fetch_all, not_indexed
from app.intake.evidence import haversine_m
from app.intake.models import PhotoHashBand, Report, Upload

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


BANDS_PER_HASH = 4
BAND_BITS = 16


def hash_bands(perceptual_hash: str) -> list[tuple[int, int]]:
    """A 64-bit hash as four 16-bit bands, (position, value): the rows stored for an upload.

    Two hashes at most 7 bits apart have a band in which they differ by one bit at most (were every band two or
    more bits apart, the hashes would be 8 or more apart), so looking up each of our bands and its 16 one-bit
    neighbours finds every similar photo (``probe_bands``). Eight 8-bit bands (exact matches only) needed no
    neighbours, but each byte value is shared by one upload in 256: at a few hundred thousand uploads that was
    thousands of rows read for every photo of every submission. A 16-bit value is shared by one in 65,536; with 17
    probes a band, 68 a photo, about one upload in a thousand is read.
    """
    digits = BAND_BITS // 4
    return [(band, int(perceptual_hash[digits * band : digits * (band + 1)], 16)) for band in range(BANDS_PER_HASH)]


def probe_bands(perceptual_hash: str) -> list[tuple[int, list[int]]]:
    """For each band of a hash, the values a stored hash within 7 bits may have there: its own and its 16 one-bit
    neighbours (``hash_bands``)."""
    return [
        (band, [value, *(value ^ (1 << bit) for bit in range(BAND_BITS))])
        for band, value in hash_bands(perceptual_hash)
    ]


def band_rows(upload_id: uuid.UUID, perceptual_hash: str, created_at: datetime) -> list[dict[str, object]]:
    return [
        {"upload_id": upload_id, "band": band, "value": value, "created_at": created_at}
        for band, value in hash_bands(perceptual_hash)
    ]


@dataclass(frozen=True)
class Found:
    candidates: list[Candidate]
    # Each of the new report's photos (by SHA-256) that other reports already hold byte for byte: their numbers.
    same_photo: dict[str, list[str]]


async def look_up(
    session: AsyncSession,
    settings: IntakeSettings,
    *,
    category_code: str,
    longitude: float,
    latitude: float,
    region_code: str,
    now: datetime,
    photos: Sequence[tuple[str, str]],
) -> Found:
    """The duplicate candidates of a new report, and the reports that already hold its photos, in one statement.

    ``photos``: (SHA-256, perceptual hash) of each photo. Three kinds of row come back, told apart by ``kind``: open
    reports of the category near the point (``near``, with their point), any report holding one of the photos byte
    for byte (``same``, with that photo's SHA-256; closed reports too, for the evidence flag), and open reports of
    the county with a photo sharing a byte of a perceptual hash (``similar``, with that hash; see ``hash_bands``).
    """
    since = now - timedelta(days=settings.duplicate_window_days)
    radius, bits = settings.duplicate_radius_m, settings.similar_photo_bits
    dlat = radius / METRES_PER_DEGREE
    dlon = radius / (METRES_PER_DEGREE * max(math.cos(math.radians(latitude)), 0.01))
    parameters: dict[str, Any] = {
        "category": category_code,
        "since": since,
        "west": longitude - dlon,
        "east": longitude + dlon,
        "south": latitude - dlat,
        "north": latitude + dlat,
        "region": region_code,
        # A photo is uploaded at most the unattached lifetime before the report that uses it.
        "uploaded_since": since - timedelta(hours=settings.unattached_upload_hours),
    }
    for index, (sha256, perceptual_hash) in enumerate(photos):
        parameters[f"sha256_{index}"] = sha256
        for band, values in probe_bands(perceptual_hash):
            parameters |= {f"band_{index}_{band}_{n}": value for n, value in enumerate(values)}
    rows = await fetch_all(session, _statement(len(photos)), parameters)

    hashes = [phash for _, phash in photos]
    numbers: dict[uuid.UUID, str] = {}
    near: dict[uuid.UUID, float] = {}
    same: set[uuid.UUID] = set()
    similar: set[uuid.UUID] = set()
    same_photo: dict[str, list[str]] = {}
    for kind, report_id, number, lon, lat, photo in rows:
        if kind == NEAR:
            distance = haversine_m(longitude, latitude, lon, lat)
            if distance > radius:
                continue
            near[report_id] = round(distance, 1)
        elif kind == SAME:
            same.add(report_id)
            same_photo.setdefault(photo, []).append(number)
        elif any(hamming(photo, mine) <= bits for mine in hashes):
            similar.add(report_id)
        else:
            continue
        numbers[report_id] = number
    found = [
        Candidate(report_id, number, near.get(report_id), report_id in same, report_id in similar)
        for report_id, number in numbers.items()
    ]
    found.sort(key=lambda c: (not c.same_photo, not c.similar_photo, c.distance_m or 0.0, c.number))
    return Found(sorted(found[:MAX_CANDIDATES], key=lambda c: c.number), same_photo)


NEAR, SAME, SIMILAR = "near", "same", "similar"
# Core statements on the tables: the ORM's compile and row-loading steps cost more CPU than these queries.
REPORTS, UPLOADS, BANDS = Report.__table__, Upload.__table__, PhotoHashBand.__table__


@functools.lru_cache(maxsize=16)
def _statement(photos: int) -> CompoundSelect | Select[Any]:
    """The lookup for a report with this many photos, built once with bound parameters (building it on every
    submission cost more CPU than the database spent on it)."""
    parts = [_nearby()]
    if photos:
        parts += [_same_photo(photos), _similar_photo(photos)]
    return union_all(*parts) if len(parts) > 1 else parts[0]


def _kind(kind: str) -> ColumnElement[str]:
    return literal_column(f"'{kind}'", String).label("kind")


def _no(type_: Any, name: str) -> ColumnElement[Any]:
    return cast(null(), type_).label(name)


def _open(created_at: ColumnElement[datetime] = REPORTS.c.created_at) -> ColumnElement[bool]:
    # The states as SQL literals: a list of values would be an "expanding" parameter, rendered on every execution.
    finished = [literal_column(f"'{state}'", String) for state in FINISHED_STATES]
    return and_(created_at >= bindparam("since"), REPORTS.c.state.not_in(finished))


def _nearby() -> Select[Any]:
    newest = (
        select(
            _kind(NEAR),
            REPORTS.c.id,
            REPORTS.c.number,
            REPORTS.c.wgs84_longitude.label("lon"),
            REPORTS.c.wgs84_latitude.label("lat"),
            _no(String, "photo"),
        )
        .where(
            REPORTS.c.category_code == bindparam("category"),
            # Read through ix_reports_nearby (the box), not the category's index by time (every report of the window).
            _open(not_indexed(REPORTS.c.created_at)),
            REPORTS.c.wgs84_longitude.between(bindparam("west"), bindparam("east")),
            REPORTS.c.wgs84_latitude.between(bindparam("south"), bindparam("north")),
        )
        .order_by(REPORTS.c.created_at.desc())
        .limit(MAX_NEARBY_ROWS)
        .subquery("near")
    )
    # A subquery, so that its ORDER BY and LIMIT stay its own inside the UNION on both databases.
    return select(newest)


def _same_photo(photos: int) -> Select[Any]:
    return (
        select(_kind(SAME), REPORTS.c.id, REPORTS.c.number, _no(Float, "lon"), _no(Float, "lat"), UPLOADS.c.sha256)
        .select_from(UPLOADS)
        .join(REPORTS, REPORTS.c.id == UPLOADS.c.report_id)
        .where(
            UPLOADS.c.sha256.in_([bindparam(f"sha256_{index}", type_=UPLOADS.c.sha256.type) for index in range(photos)])
        )
    )


def _similar_photo(photos: int) -> Select[Any]:
    # Only photos with a band equal to one of our probes can be within 7 bits (``hash_bands``).
    probes = 1 + BAND_BITS
    near_a_band = or_(
        *(
            and_(
                BANDS.c.band == band,
                BANDS.c.value.in_(
                    [bindparam(f"band_{index}_{band}_{n}") for index in range(photos) for n in range(probes)]
                ),
            )
            for band in range(BANDS_PER_HASH)
        )
    )
    return (
        select(
            _kind(SIMILAR),
            REPORTS.c.id,
            REPORTS.c.number,
            _no(Float, "lon"),
            _no(Float, "lat"),
            UPLOADS.c.perceptual_hash,
        )
        .select_from(BANDS)
        .join(UPLOADS, UPLOADS.c.id == BANDS.c.upload_id)
        .join(REPORTS, REPORTS.c.id == UPLOADS.c.report_id)
        .where(
            near_a_band,
            BANDS.c.created_at >= bindparam("uploaded_since"),
            REPORTS.c.region_code == bindparam("region"),
            _open(),
        )
    )


def candidate_rows(report_id: uuid.UUID, candidates: list[Candidate], now: datetime) -> list[dict[str, Any]]:
    """The rows of ``duplicate_candidates`` (as column values: submission inserts them with Core)."""
    return [
        {
            "id": uuid.uuid4(),
            "report_id": report_id,
            "candidate_id": c.report_id,
            "distance_m": c.distance_m,
            "same_photo": c.same_photo,
            "similar_photo": c.similar_photo,
            "created_at": now,
        }
        for c in candidates
    ]
