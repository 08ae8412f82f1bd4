"""Publishing cases on the exposure board and reading them back for the public.

What the public sees is built here and only here (the Open311 facade reuses it): category, the township-level
place and its centroid, the dates, the verification outcome, the dispatcher's summary and the chosen photos'
EXIF-free derivatives. The queries select those columns by name, never the report's description, point, number or
reporter.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import shapely
from sqlalchemy import Row, Select, and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Category, Department
from app.core import audit
from app.core.context import AppContext
from app.core.db import utcnow
from app.core.pagination import encode_cursor, newest_first
from app.geo.datum import Datum, to_datum
from app.identity.dependencies import StaffPrincipal
from app.intake.models import Report, Upload
from app.intake.schemas import CategoryRef
from app.publication.errors import (
    CaseNotPublishable,
    NotPublished,
    PhotoNotOfCase,
    PublicationNotFound,
    PublicCaseNotFound,
)
from app.publication.models import CasePublication
from app.publication.schemas import (
    PublicationView,
    PublicCase,
    PublicCasePage,
    PublicOutcome,
    PublicPhoto,
    PublicPlace,
    PublishBody,
)
from app.routing.models import Jurisdiction
from app.workflow.models import CaseVerification, Rectification
from app.workflow.transitions import CaseState, VerificationOutcome

PUBLISHABLE_OUTCOMES = (VerificationOutcome.TRUE.value, VerificationOutcome.PARTLY_TRUE.value)
OUTCOME_LABELS = {"true": "属实", "partly_true": "部分属实"}
HAZARD_LEVEL_LABELS = {"general": "一般事故隐患", "major": "重大事故隐患"}
# Shared caches keep a public answer this long.
PUBLIC_MAX_AGE_SECONDS = 60
# Public answers sign their photo URLs as of the start of a window of this length, so the same data gives the same
# bytes (and ETag) for the whole window; each URL stays valid for the window plus the usual lifetime, so a URL taken
# from any answer (or a revalidated copy) still works for at least that lifetime.
SIGNING_WINDOW_SECONDS = 300
PLACE_DECIMALS = 2  # about 1 km
TOWNSHIP_LEVEL, COUNTY_LEVELS = "township", ("district", "city")
PUBLISH_ACTION, WITHDRAW_ACTION = "publish_case", "withdraw_publication"


# --- the dispatcher's commands -------------------------------------------------------------------------------------


async def publish(session: AsyncSession, staff: StaffPrincipal, case: Report, body: PublishBody) -> PublicationView:
    """Publish the case, or replace the summary and photos of its publication. Audited."""
    verification = await session.get(CaseVerification, case.id)
    if case.state != CaseState.CLOSED.value or verification is None or verification.outcome not in PUBLISHABLE_OUTCOMES:
        raise CaseNotPublishable(current_state=case.state)
    photo_ids = await _chosen_photos(session, case.id, body.photo_ids)
    now = utcnow()
    publication = await session.scalar(
        select(CasePublication).where(CasePublication.report_id == case.id).with_for_update()
    )
    if publication is None:
        publication = CasePublication(report_id=case.id, created_at=now, published_at=now)
        await _fix_place(session, publication, case)
    elif publication.withdrawn_at is not None or _reopened_since(case, publication):
        publication.published_at = now
    publication.summary, publication.photo_ids = body.summary, [str(p) for p in photo_ids]
    publication.published_by, publication.updated_at = staff.staff_id, now
    publication.withdrawn_at = publication.withdrawn_by = publication.withdrawal_reason = None
    session.add(publication)
    await session.flush()
    audit.record(
        session,
        actor_id=staff.key,
        actor_role=staff.role.value,
        action=PUBLISH_ACTION,
        target_type="report",
        target_id=str(case.id),
        detail={"summary": body.summary, "photo_ids": publication.photo_ids},
    )
    return publication_view(case, publication)


async def withdraw(session: AsyncSession, staff: StaffPrincipal, case: Report, reason: str) -> PublicationView:
    publication = await session.scalar(
        select(CasePublication).where(CasePublication.report_id == case.id).with_for_update()
    )
    if publication is None or publication.withdrawn_at is not None:
        raise NotPublished()
    now = utcnow()
    publication.withdrawn_at, publication.withdrawn_by, publication.withdrawal_reason = now, staff.staff_id, reason
    publication.updated_at = now
    audit.record(
        session,
        actor_id=staff.key,
        actor_role=staff.role.value,
        action=WITHDRAW_ACTION,
        target_type="report",
        target_id=str(case.id),
        reason=reason,
    )
    return publication_view(case, publication)


async def get_publication(session: AsyncSession, case: Report) -> PublicationView:
    publication = await session.scalar(select(CasePublication).where(CasePublication.report_id == case.id))
    if publication is None:
        raise PublicationNotFound()
    return publication_view(case, publication)


def publication_view(case: Report, publication: CasePublication) -> PublicationView:
    if publication.withdrawn_at is not None:
        status = "withdrawn"
    elif case.state != CaseState.CLOSED.value or _reopened_since(case, publication):
        status = "hidden"
    else:
        status = "published"
    return PublicationView(
        case_id=case.id,
        status=status,
        summary=publication.summary,
        photo_ids=[uuid.UUID(p) for p in publication.photo_ids],
        place_name=publication.place_name,
        published_at=publication.published_at,
        updated_at=publication.updated_at,
        withdrawn_at=publication.withdrawn_at,
        withdrawal_reason=publication.withdrawal_reason,
    )


def _reopened_since(case: Report, publication: CasePublication) -> bool:
    return case.finished_at is None or case.finished_at > publication.published_at


async def _chosen_photos(session: AsyncSession, case_id: uuid.UUID, chosen: list[uuid.UUID] | None) -> list[uuid.UUID]:
    """The chosen photos, which must be the case's; by default the staff's inspection and after-photos (attached
    to the case without a position), never the reporter's own (which may show where or who they are)."""
    if chosen is None:
        rows = await session.scalars(
            select(Upload.id)
            .where(Upload.report_id == case_id, Upload.position.is_(None))
            .order_by(Upload.created_at, Upload.id)
        )
        return list(rows.all())
    found = set(
        (await session.scalars(select(Upload.id).where(Upload.report_id == case_id, Upload.id.in_(chosen)))).all()
    )
    missing = [str(p) for p in chosen if p not in found]
    if missing:
        raise PhotoNotOfCase(field="photo_ids", missing=missing)
    return chosen


async def _fix_place(session: AsyncSession, publication: CasePublication, case: Report) -> None:
    """The township the case lies in (or its county where there is no township), and that unit's centroid."""
    place = await _public_unit(session, case.jurisdiction_adcode or case.region_code)
    if place is None:
        return
    centroid = shapely.from_wkb(place.geometry_wkb).centroid
    longitude, latitude = to_datum(centroid.x, centroid.y, place.datum, Datum.WGS84)
    publication.place_adcode, publication.place_name, publication.place_level = place.adcode, place.name, place.level
    publication.place_longitude = round(longitude, PLACE_DECIMALS)
    publication.place_latitude = round(latitude, PLACE_DECIMALS)


async def _public_unit(session: AsyncSession, adcode: str) -> Jurisdiction | None:
    chain: list[Jurisdiction] = []
    next_code: str | None = adcode
    while next_code is not None and len(chain) < 10:
        unit = await session.get(Jurisdiction, next_code)
        if unit is None:
            break
        chain.append(unit)
        next_code = unit.parent_adcode
    for levels in ((TOWNSHIP_LEVEL,), COUNTY_LEVELS):
        for unit in chain:
            if unit.level in levels:
                return unit
    return None


# --- the public side -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicFilter:
    category: str | None = None
    township: str | None = None
    case_ids: tuple[uuid.UUID, ...] | None = None
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None


def _visible() -> Select[Any]:
    """Published, not withdrawn, and the case closed (not reopened since) with a true or partly true outcome."""
    rectified = exists().where(Rectification.report_id == Report.id, Rectification.passed.is_(True))
    return (
        select(
            CasePublication,
            Report.id,
            Report.created_at,
            Report.finished_at,
            Report.category_code,
            Category.name,
            Department.name,
            CaseVerification.outcome,
            CaseVerification.hazard_level,
            rectified.label("rectified"),
        )
        .join(Report, Report.id == CasePublication.report_id)
        .join(Category, Category.code == Report.category_code)
        .join(CaseVerification, CaseVerification.report_id == Report.id)
        .outerjoin(Department, Department.id == Report.department_id)
        .where(
            CasePublication.withdrawn_at.is_(None),
            Report.state == CaseState.CLOSED.value,
            Report.finished_at <= CasePublication.published_at,
            CaseVerification.outcome.in_(PUBLISHABLE_OUTCOMES),
        )
    )


def _filtered(query: Select[Any], wanted: PublicFilter) -> Select[Any]:
    if wanted.case_ids is not None:
        return query.where(Report.id.in_(wanted.case_ids))
    conditions = []
    if wanted.category is not None:
        conditions.append(Report.category_code == wanted.category)
    if wanted.township is not None:
        conditions.append(CasePublication.place_adcode == wanted.township)
    if wanted.submitted_from is not None:
        conditions.append(Report.created_at >= wanted.submitted_from)
    if wanted.submitted_to is not None:
        conditions.append(Report.created_at <= wanted.submitted_to)
    return query.where(and_(*conditions)) if conditions else query


async def list_public(
    session: AsyncSession, context: AppContext, wanted: PublicFilter, cursor: str | None, limit: int
) -> PublicCasePage:
    query = newest_first(_filtered(_visible(), wanted), CasePublication.published_at, CasePublication.id, cursor, limit)
    rows = (await session.execute(query)).all()
    page = rows[:limit]
    cases = await _public_cases(session, context, page)
    next_cursor = encode_cursor(page[-1][0].published_at, page[-1][0].id) if len(rows) > limit else None
    return PublicCasePage(items=cases, next_cursor=next_cursor)


async def get_public(session: AsyncSession, context: AppContext, case_id: uuid.UUID) -> PublicCase:
    row = (await session.execute(_visible().where(Report.id == case_id))).first()
    if row is None:
        raise PublicCaseNotFound()
    return (await _public_cases(session, context, [row]))[0]


async def _public_cases(session: AsyncSession, context: AppContext, rows: Sequence[Row[Any]]) -> list[PublicCase]:
    photos = await _photos(session, context, [pid for row in rows for pid in row[0].photo_ids])
    cases = []
    for publication, case_id, submitted, closed, code, category, department, outcome, level, rectified in rows:
        place = None
        if publication.place_adcode is not None:
            place = PublicPlace(
                adcode=publication.place_adcode,
                name=publication.place_name,
                level=publication.place_level,
                longitude=publication.place_longitude,
                latitude=publication.place_latitude,
            )
        cases.append(
            PublicCase(
                id=case_id,
                category=CategoryRef(code=code, name=category),
                place=place,
                department=department,
                submitted_at=submitted,
                closed_at=closed,
                published_at=publication.published_at,
                updated_at=publication.updated_at,
                outcome=PublicOutcome(
                    verification=outcome,
                    verification_label=OUTCOME_LABELS[outcome],
                    hazard_level=level,
                    hazard_level_label=HAZARD_LEVEL_LABELS.get(level) if level else None,
                    rectified=bool(rectified),
                ),
                summary=publication.summary,
                photos=[photos[p] for p in publication.photo_ids if p in photos],
            )
        )
    return cases


async def _photos(session: AsyncSession, context: AppContext, photo_ids: list[str]) -> dict[str, PublicPhoto]:
    if not photo_ids:
        return {}
    uploads = (
        await session.execute(
            select(Upload.id, Upload.display_key, Upload.thumbnail_key, Upload.width, Upload.height).where(
                Upload.id.in_([uuid.UUID(p) for p in photo_ids])
            )
        )
    ).all()
    issued_at, lifetime = _signing_instant()
    lifetime += context.signed_url_lifetime
    signed = {}
    for upload_id, display_key, thumbnail_key, width, height in uploads:
        signed[str(upload_id)] = PublicPhoto(
            display_url=await context.storage.signed_url(display_key, lifetime, issued_at=issued_at),
            thumbnail_url=await context.storage.signed_url(thumbnail_key, lifetime, issued_at=issued_at),
            width=width,
            height=height,
        )
    return signed


def _signing_instant() -> tuple[datetime, timedelta]:
    now = int(utcnow().timestamp())
    start = now - now % SIGNING_WINDOW_SECONDS
    return datetime.fromtimestamp(start, UTC), timedelta(seconds=SIGNING_WINDOW_SECONDS)
