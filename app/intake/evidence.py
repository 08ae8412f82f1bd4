"""Flags for the dispatcher from the photos' own EXIF evidence. Pure: no I/O.

A photo taken far from the reported point, or long before the report, or already used in another report, does not
make a report false (phones strip or misreport EXIF, people report what they saw last week), so such a report is
flagged for the dispatcher, never refused.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.geo.datum import Datum, to_datum

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class PhotoEvidence:
    upload_id: uuid.UUID
    captured_at: datetime | None
    longitude: float | None  # WGS-84, as EXIF GPS records it
    latitude: float | None
    reused_in_reports: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportedPlace:
    longitude: float
    latitude: float
    datum: Datum


@dataclass(frozen=True)
class EvidenceThresholds:
    max_distance_m: float
    max_age: timedelta


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def evidence_flags(
    photos: list[PhotoEvidence], place: ReportedPlace, submitted_at: datetime, thresholds: EvidenceThresholds
) -> list[dict[str, object]]:
    lon, lat = to_datum(place.longitude, place.latitude, place.datum, Datum.WGS84)
    flags: list[dict[str, object]] = []
    for photo in photos:
        flags.extend(_photo_flags(photo, lon, lat, submitted_at, thresholds))
    return flags


def _photo_flags(
    photo: PhotoEvidence, lon: float, lat: float, submitted_at: datetime, thresholds: EvidenceThresholds
) -> list[dict[str, object]]:
    flags: list[dict[str, object]] = []
    upload = str(photo.upload_id)
    if photo.longitude is not None and photo.latitude is not None:
        distance = haversine_m(lon, lat, photo.longitude, photo.latitude)
        if distance > thresholds.max_distance_m:
            flags.append({"code": "photo_far_from_location", "upload_id": upload, "distance_m": round(distance)})
    if photo.captured_at is not None and submitted_at - photo.captured_at > thresholds.max_age:
        hours = (submitted_at - photo.captured_at).total_seconds() / 3600
        flags.append({"code": "photo_taken_long_before", "upload_id": upload, "hours_before": round(hours, 1)})
    if photo.reused_in_reports:
        flags.append({"code": "photo_reused", "upload_id": upload, "other_reports": list(photo.reused_in_reports)})
    return flags
