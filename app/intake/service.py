"""Report submission and the reporter's own views of their reports."""

from __future__ import annotations

import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, String, cast, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Category, Department
from app.core import idempotency
from app.core.context import AppContext
from app.core.db import dialect_insert, is_postgresql, utcnow
from app.core.pagination import encode_cursor, newest_first
from app.core.security import request_fingerprint
from app.deadlines import service as deadline_service
from app.geo.datum import Datum, to_datum
from app.identity.dependencies import PartnerPrincipal, Principal, ReporterPrincipal, StaffPrincipal
from app.identity.roles import Permission
from app.intake import duplicates, evidence
from app.intake.errors import (
    ChannelNotAllowed,
    ReportNotFound,
    UploadAlreadyAttached,
    UploadNotFound,
)
from app.intake.models import Report, ReportContact, ReportNumberCounter, Upload
from app.intake.schemas import (
    REPORTER_CHANNELS,
    STAFF_CHANNELS,
    CategoryRef,
    Channel,
    Enterprise,
    HazardKind,
    Location,
    PhotoView,
    ReportDetail,
    ReportLookupResult,
    ReportPage,
    ReportReceipt,
    ReportStatus,
    ReportSubmission,
    ReportSummary,
)
from app.intake.status import reporter_label
from app.intake.uploads import CHINA_TZ
from app.routing import service as routing_service

SUBMIT_OPERATION = "submit_report"
QUERY_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read out over the phone
QUERY_CODE_LENGTH = 8
QUERY_CODE_PURPOSE = "query_code"
# Table-level statements where no ORM object is involved: the ORM's bulk UPDATE path costs more CPU than the query.
REPORTS, UPLOADS = Report.__table__, Upload.__table__


def reporter_status(state: str, department_name: str | None = None) -> ReportStatus:
    return ReportStatus(code=state, label=reporter_label(state, department_name))


async def submit_report(
    session: AsyncSession,
    context: AppContext,
    principal: Principal | PartnerPrincipal,
    body: ReportSubmission,
    idempotency_key: str | None,
) -> ReportReceipt:
    _check_channel(principal, body)
    claim = idempotency.IdempotencyClaim(principal.key, SUBMIT_OPERATION, idempotency_key) if idempotency_key else None
    if claim is not None:
        fingerprint = request_fingerprint(body.model_dump_json().encode())
        replay = await idempotency.claim(session, context.cipher, claim, fingerprint)
        if replay is not None:
            receipt = ReportReceipt.model_validate(replay.body)
            # The answer was recorded before the number was taken (see below): the report holds it.
            number = await session.scalar(select(Report.number).where(Report.id == receipt.id))
            return receipt.model_copy(update={"number": number})

    receipt, year, region_code = await _create_report(session, context, principal, body)
    if claim is not None:
        # Recorded before the number is taken, so that taking it is the last statement before the commit: the
        # county's counter row stays locked for one statement and the commit, not for this write as well.
        await idempotency.record(session, context.cipher, claim, 201, receipt.model_dump(mode="json"))
    number = await _assign_number(session, receipt.id, year, region_code)
    return receipt.model_copy(update={"number": number})


def _check_channel(principal: Principal | PartnerPrincipal, body: ReportSubmission) -> None:
    if isinstance(principal, PartnerPrincipal):
        if body.channel is not Channel.PARTNER:
            raise ChannelNotAllowed(field="channel")
        return
    if isinstance(principal, StaffPrincipal):
        principal.require(Permission.FILE_REPORT_FOR_CALLER)
        if body.channel not in STAFF_CHANNELS:
            raise ChannelNotAllowed(field="channel")
        return
    if body.channel not in REPORTER_CHANNELS or body.caller is not None:
        raise ChannelNotAllowed(field="channel" if body.caller is None else "caller")


async def _create_report(
    session: AsyncSession, context: AppContext, principal: Principal | PartnerPrincipal, body: ReportSubmission
) -> tuple[ReportReceipt, int, str]:
    """The report and everything that comes with it, under a placeholder number; answers the receipt, and the year
    and county whose counter gives the number."""
    location = body.location
    # Routing also checks the category against the active ones.
    routing = await routing_service.route(
        session, context, body.category, location.longitude, location.latitude, location.datum
    )
    uploads = await _claimable_uploads(session, principal.key, body.upload_ids)
    now = utcnow()
    report_id = uuid.uuid4()
    query_code = "".join(secrets.choice(QUERY_CODE_ALPHABET) for _ in range(QUERY_CODE_LENGTH))
    region_code = routing.county_adcode or context.settings.intake.default_region_code
    wgs84 = to_datum(location.longitude, location.latitude, location.datum, Datum.WGS84)
    reuse = await _reused_elsewhere(session, [u.sha256 for u in uploads])
    flags = _evidence_flags(context, uploads, body, now, reuse)
    candidates = await duplicates.find_candidates(
        session,
        context.settings.intake,
        category_code=body.category,
        longitude=wgs84[0],
        latitude=wgs84[1],
        region_code=region_code,
        now=now,
        photo_hashes=[u.perceptual_hash for u in uploads],
        same_photo={report_id: number for found in reuse.values() for report_id, number in found},
    )
    if candidates:
        flags.append({"code": "possible_duplicate", "reports": [c.number for c in candidates]})
    report = Report(
        id=report_id,
        number=report_id.hex,  # a unique placeholder until _assign_number, the last statement
        reporter_id=principal.reporter_id if isinstance(principal, ReporterPrincipal) else None,
        filed_by_staff_id=principal.staff_id if isinstance(principal, StaffPrincipal) else None,
        channel=body.channel.value,
        state="submitted",
        category_code=body.category,
        hazard_kind=body.hazard_kind.value,
        description=body.description,
        longitude=body.location.longitude,
        latitude=body.location.latitude,
        wgs84_longitude=wgs84[0],
        wgs84_latitude=wgs84[1],
        datum=body.location.datum.value,
        accuracy_m=body.location.accuracy_m,
        address=body.location.address,
        region_code=region_code,
        jurisdiction_adcode=routing.jurisdiction_adcode,
        department_id=routing.department_id,
        observed_at=body.observed_at,
        enterprise_name=body.enterprise.name if body.enterprise else None,
        enterprise_credit_code=body.enterprise.credit_code if body.enterprise else None,
        reporter_is_employee=body.reporter_is_employee,
        identity_hidden=body.hide_identity,
        query_code_hash=_query_code_hash(context, report_id, query_code),
        flags=flags,
        created_at=now,
        received_on=now.astimezone(CHINA_TZ).date(),
    )
    deadlines = await deadline_service.reference_at(session, context, routing.reference_version)
    days, count = deadlines.rule_for(deadline_service.ACCEPTANCE, routing.department_id, body.category)
    session.add(report)
    await session.flush()  # first: the rows below refer to it, and the models declare no relationships to order by
    session.add(routing_service.decision_row(report_id, routing, "automatic"))
    session.add_all(duplicates.candidate_rows(report_id, candidates))
    session.add(deadline_service.first_deadline(deadlines, report_id, deadline_service.ACCEPTANCE, now, days, count))
    if body.caller is not None and (body.caller.name or body.caller.phone):
        session.add(_contact(context, report_id, body.caller.name, body.caller.phone))
    await session.flush()
    await _attach_uploads(session, report_id, body.upload_ids)
    receipt = ReportReceipt(
        id=report_id,
        number=report.number,
        query_code=query_code,
        status=reporter_status(report.state, routing.department_name),
        submitted_at=now,
    )
    return receipt, now.astimezone(CHINA_TZ).year, region_code


# What submission reads of its uploads: plain rows, not ORM objects (the hot path of the service).
CLAIMABLE = select(
    Upload.id,
    Upload.sha256,
    Upload.perceptual_hash,
    Upload.exif_captured_at,
    Upload.exif_longitude,
    Upload.exif_latitude,
    Upload.report_id,
)


async def _claimable_uploads(session: AsyncSession, owner: str, upload_ids: list[uuid.UUID]) -> list[Row[Any]]:
    rows = (
        await session.execute(CLAIMABLE.where(Upload.id.in_(upload_ids), Upload.owner == owner).with_for_update())
    ).all()
    by_id = {row.id: row for row in rows}
    missing = [str(i) for i in upload_ids if i not in by_id]
    if missing:
        # Another reporter's upload looks exactly like one that does not exist.
        raise UploadNotFound(field="upload_ids", missing=missing)
    attached = [str(row.id) for row in rows if row.report_id is not None]
    if attached:
        raise UploadAlreadyAttached(field="upload_ids", attached=attached)
    return [by_id[i] for i in upload_ids]


async def _attach_uploads(session: AsyncSession, report_id: uuid.UUID, upload_ids: list[uuid.UUID]) -> None:
    for position, upload_id in enumerate(upload_ids):
        # The report_id IS NULL guard makes a concurrent double attach fail instead of silently moving a photo.
        result = await session.execute(
            update(UPLOADS)
            .where(UPLOADS.c.id == upload_id, UPLOADS.c.report_id.is_(None))
            .values(report_id=report_id, position=position)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise UploadAlreadyAttached(field="upload_ids", attached=[str(upload_id)])


def _evidence_flags(
    context: AppContext,
    uploads: list[Row[Any]],
    body: ReportSubmission,
    now: datetime,
    reuse: dict[str, list[tuple[uuid.UUID, str]]],
) -> list[dict[str, object]]:
    photos = [
        evidence.PhotoEvidence(
            u.id,
            u.exif_captured_at,
            u.exif_longitude,
            u.exif_latitude,
            tuple(number for _, number in reuse.get(u.sha256, ())),
        )
        for u in uploads
    ]
    intake = context.settings.intake
    thresholds = evidence.EvidenceThresholds(
        max_distance_m=intake.photo_distance_flag_m, max_age=timedelta(hours=intake.photo_age_flag_hours)
    )
    place = evidence.ReportedPlace(body.location.longitude, body.location.latitude, body.location.datum)
    return evidence.evidence_flags(photos, place, now, thresholds)


async def _reused_elsewhere(session: AsyncSession, hashes: list[str]) -> dict[str, list[tuple[uuid.UUID, str]]]:
    """The reports that already hold each photo, byte for byte."""
    rows = await session.execute(
        select(Upload.sha256, Report.id, Report.number)
        .join(Report, Report.id == Upload.report_id)
        .where(Upload.sha256.in_(hashes))
    )
    found: dict[str, list[tuple[uuid.UUID, str]]] = {}
    for sha256, report_id, number in rows:
        found.setdefault(sha256, []).append((report_id, number))
    return found


async def _assign_number(session: AsyncSession, report_id: uuid.UUID, year: int, region_code: str) -> str:
    """Take the county's next number and write it on the report, as the last statement before the commit.

    Numbers are gap-free per year and county, so the counter row stays locked until the commit; taking it last
    keeps that to one statement and the commit, rather than the whole submission, which would serialise every
    report of the county behind each other.
    """
    counter = (
        dialect_insert(session)(ReportNumberCounter)
        .values(year=year, region_code=region_code, last_value=1)
        .on_conflict_do_update(
            index_elements=["year", "region_code"], set_={"last_value": ReportNumberCounter.last_value + 1}
        )
        .returning(ReportNumberCounter.last_value)
    )
    prefix = f"{year}-{region_code}-"
    if is_postgresql(session):
        taken = counter.cte("taken")
        value = select(taken.c.last_value).scalar_subquery()
        number = literal(prefix) + func.lpad(cast(value, String), 6, "0")
        statement = update(REPORTS).where(REPORTS.c.id == report_id).values(number=number).returning(REPORTS.c.number)
        return str((await session.execute(statement.add_cte(taken))).scalar_one())
    # SQLite has no DML in CTEs; it admits one writer at a time anyway, so two statements cost no contention.
    number_text = f"{prefix}{(await session.execute(counter)).scalar_one():06d}"
    await session.execute(update(REPORTS).where(REPORTS.c.id == report_id).values(number=number_text))
    return number_text


def _query_code_hash(context: AppContext, report_id: uuid.UUID, code: str) -> str:
    # A keyed hash rather than a slow password hash: the code has 40 bits of entropy, finding it from a stolen
    # database also needs the server's key, and online guessing is bounded by the API, not by hash cost.
    return context.blind_index.digest(f"{report_id}:{code}", QUERY_CODE_PURPOSE)


def _contact(context: AppContext, report_id: uuid.UUID, name: str | None, phone: str | None) -> ReportContact:
    return ReportContact(
        report_id=report_id,
        name_encrypted=context.cipher.encrypt(name) if name else None,
        phone_encrypted=context.cipher.encrypt(phone) if phone else None,
        phone_index=context.blind_index.digest(phone, "phone") if phone else None,
    )


def _reports_with_names() -> Select[tuple[Report, str, str | None]]:
    return (
        select(Report, Category.name, Department.name)
        .join(Category, Category.code == Report.category_code)
        .outerjoin(Department, Department.id == Report.department_id)
    )


# --- the reporter's views ---------------------------------------------------------------------------------


async def list_my_reports(
    session: AsyncSession, context: AppContext, reporter: ReporterPrincipal, cursor: str | None, limit: int
) -> ReportPage:
    query = newest_first(
        _reports_with_names().where(Report.reporter_id == reporter.reporter_id),
        Report.created_at,
        Report.id,
        cursor,
        limit,
    )
    rows = (await session.execute(query)).all()
    page = rows[:limit]
    thumbnails = await _first_thumbnails(session, context, [report.id for report, _, _ in page])
    items = [_summary(report, name, department, thumbnails.get(report.id)) for report, name, department in page]
    next_cursor = encode_cursor(page[-1][0].created_at, page[-1][0].id) if len(rows) > limit else None
    return ReportPage(items=items, next_cursor=next_cursor)


async def _first_thumbnails(
    session: AsyncSession, context: AppContext, report_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not report_ids:
        return {}
    rows = await session.execute(
        select(Upload.report_id, Upload.thumbnail_key).where(Upload.report_id.in_(report_ids), Upload.position == 0)
    )
    return {
        report_id: await context.storage.signed_url(key, context.signed_url_lifetime)
        for report_id, key in rows
        if report_id is not None
    }


def _summary(
    report: Report, category_name: str, department_name: str | None, thumbnail_url: str | None
) -> ReportSummary:
    return ReportSummary(
        id=report.id,
        number=report.number,
        category=CategoryRef(code=report.category_code, name=category_name),
        hazard_kind=HazardKind(report.hazard_kind),
        status=reporter_status(report.state, department_name),
        submitted_at=report.created_at,
        thumbnail_url=thumbnail_url,
        handling_department=department_name,
    )


async def get_my_report(
    session: AsyncSession, context: AppContext, reporter: ReporterPrincipal, report_id: uuid.UUID
) -> ReportDetail:
    row = (
        await session.execute(
            _reports_with_names().where(Report.id == report_id, Report.reporter_id == reporter.reporter_id)
        )
    ).first()
    if row is None:
        raise ReportNotFound()
    report, category_name, department_name = row
    photos = await report_photos(session, context, report.id)
    thumbnail = photos[0].thumbnail_url if photos else None
    return ReportDetail(
        **_summary(report, category_name, department_name, thumbnail).model_dump(),
        description=report.description,
        location=Location(
            longitude=report.longitude,
            latitude=report.latitude,
            datum=report.datum,
            accuracy_m=report.accuracy_m,
            address=report.address,
        ),
        observed_at=report.observed_at,
        channel=Channel(report.channel),
        enterprise=(
            Enterprise(name=report.enterprise_name, credit_code=report.enterprise_credit_code)
            if report.enterprise_name
            else None
        ),
        reporter_is_employee=report.reporter_is_employee,
        hide_identity=report.identity_hidden,
        photos=photos,
    )


async def report_photos(session: AsyncSession, context: AppContext, report_id: uuid.UUID) -> list[PhotoView]:
    uploads = (
        await session.scalars(select(Upload).where(Upload.report_id == report_id).order_by(Upload.position))
    ).all()
    lifetime = context.signed_url_lifetime
    return [
        PhotoView(
            id=u.id,
            display_url=await context.storage.signed_url(u.display_key, lifetime),
            thumbnail_url=await context.storage.signed_url(u.thumbnail_key, lifetime),
            width=u.width,
            height=u.height,
        )
        for u in uploads
    ]


def check_query_code(context: AppContext, report: Report | None, query_code: str) -> Report:
    """The report if ``query_code`` is its code; a wrong code answers exactly like an unknown number (404), so
    numbers cannot be probed."""
    expected = _query_code_hash(context, report.id, query_code.strip().upper()) if report else "x"
    if report is None or not hmac.compare_digest(expected, report.query_code_hash):
        raise ReportNotFound()
    return report


async def lookup_report(session: AsyncSession, context: AppContext, number: str, query_code: str) -> ReportLookupResult:
    row = (await session.execute(_reports_with_names().where(Report.number == number))).first()
    check_query_code(context, row[0] if row else None, query_code)
    assert row is not None
    report, category_name, department_name = row
    return ReportLookupResult(
        number=report.number,
        category=CategoryRef(code=report.category_code, name=category_name),
        hazard_kind=HazardKind(report.hazard_kind),
        status=reporter_status(report.state, department_name),
        handling_department=department_name,
        submitted_at=report.created_at,
    )
