"""Report submission and the reporter's own views of their reports."""

from __future__ import annotations

import functools
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    Row,
    Select,
    String,
    Table,
    Update,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Category, Department
from app.core import idempotency
from app.core.context import AppContext
from app.core.db import Base, column_values, dialect_insert_for, fetch_all, insert_values, is_postgresql, utcnow
from app.core.pagination import encode_cursor, newest_first
from app.core.security import request_fingerprint
from app.deadlines import service as deadline_service
from app.deadlines.models import CaseDeadline
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
from app.intake.models import (
    DuplicateCandidate,
    Report,
    ReportContact,
    ReportNumberCounter,
    ReportNumberSlot,
    Upload,
)
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
from app.routing.models import RoutingDecision

SUBMIT_OPERATION = "submit_report"
QUERY_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read out over the phone
QUERY_CODE_LENGTH = 8
QUERY_CODE_PURPOSE = "query_code"
# Submission writes with Core statements on the tables: the ORM's unit of work costs more CPU than the queries.
REPORTS, UPLOADS = Report.__table__, Upload.__table__
ROUTING_DECISIONS, CASE_DEADLINES = RoutingDecision.__table__, CaseDeadline.__table__
DUPLICATE_CANDIDATES, REPORT_CONTACTS = DuplicateCandidate.__table__, ReportContact.__table__


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
            # The answer was recorded without the number, which is taken in the same statement (see _store): the
            # report holds it.
            number = await session.scalar(select(Report.number).where(Report.id == receipt.id))
            return receipt.model_copy(update={"number": number})

    new = await _new_report(session, context, principal, body)
    recorded = None
    if claim is not None:
        recorded = idempotency.record_parameters(context.cipher, claim, 201, new.receipt.model_dump(mode="json"))
    number = await _store(session, new, recorded)
    return new.receipt.model_copy(update={"number": number})


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


@dataclass
class _NewReport:
    """Everything a submission writes, read and decided before the first write."""

    receipt: ReportReceipt  # its number a placeholder until _store takes the county's next one
    report: dict[str, Any]
    rows: list[tuple[Table, list[dict[str, Any]]]]  # the rows that refer to the report, by table
    upload_ids: list[uuid.UUID]
    year: int
    region_code: str


async def _new_report(
    session: AsyncSession, context: AppContext, principal: Principal | PartnerPrincipal, body: ReportSubmission
) -> _NewReport:
    """The report and everything that comes with it, as rows to write; only reads (routing, the uploads, the
    duplicate lookup)."""
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
    found = await duplicates.look_up(
        session,
        context.settings.intake,
        category_code=body.category,
        longitude=wgs84[0],
        latitude=wgs84[1],
        region_code=region_code,
        now=now,
        photos=[(u.sha256, u.perceptual_hash) for u in uploads],
    )
    flags = _evidence_flags(context, uploads, body, now, found.same_photo)
    if found.candidates:
        flags.append({"code": "possible_duplicate", "reports": [c.number for c in found.candidates]})
    report = dict(
        id=report_id,
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
    acceptance = deadline_service.first_deadline(deadlines, report_id, deadline_service.ACCEPTANCE, now, days, count)
    rows = [
        (ROUTING_DECISIONS, [insert_values(routing_service.decision_row(report_id, routing, "automatic"))]),
        (CASE_DEADLINES, [insert_values(acceptance)]),
        (DUPLICATE_CANDIDATES, duplicates.candidate_rows(report_id, found.candidates, now)),
    ]
    if body.caller is not None and (body.caller.name or body.caller.phone):
        contact = _contact(context, report_id, body.caller.name, body.caller.phone)
        rows.append((REPORT_CONTACTS, [insert_values(contact)]))
    receipt = ReportReceipt(
        id=report_id,
        number=report_id.hex,  # a placeholder: _store writes the county's next number
        query_code=query_code,
        status=reporter_status("submitted", routing.department_name),
        submitted_at=now,
    )
    year = now.astimezone(CHINA_TZ).year
    return _NewReport(receipt, column_values(Report, report), rows, body.upload_ids, year, region_code)


async def _claimable_uploads(session: AsyncSession, owner: str, upload_ids: list[uuid.UUID]) -> list[Row[Any]]:
    if not upload_ids:
        return []  # a report without photos (hotline, partners): nothing to read
    parameters = {"owner": owner} | {f"upload_{index}": upload_id for index, upload_id in enumerate(upload_ids)}
    rows = await fetch_all(session, _claimable(len(upload_ids)), parameters)
    by_id = {row.id: row for row in rows}
    missing = [str(i) for i in upload_ids if i not in by_id]
    if missing:
        # Another reporter's upload looks exactly like one that does not exist.
        raise UploadNotFound(field="upload_ids", missing=missing)
    attached = [str(row.id) for row in rows if row.report_id is not None]
    if attached:
        raise UploadAlreadyAttached(field="upload_ids", attached=attached)
    return [by_id[i] for i in upload_ids]


@functools.lru_cache(maxsize=16)
def _claimable(count: int) -> Select[Any]:
    """What submission reads of its uploads, locked: plain rows, not ORM objects (the hot path of the service)."""
    return (
        select(
            UPLOADS.c.id,
            UPLOADS.c.sha256,
            UPLOADS.c.perceptual_hash,
            UPLOADS.c.exif_captured_at,
            UPLOADS.c.exif_longitude,
            UPLOADS.c.exif_latitude,
            UPLOADS.c.report_id,
        )
        .where(UPLOADS.c.id.in_([bindparam(f"upload_{index}", type_=UPLOADS.c.id.type) for index in range(count)]))
        .where(UPLOADS.c.owner == bindparam("owner"))
        .with_for_update()
    )


def _evidence_flags(
    context: AppContext,
    uploads: list[Row[Any]],
    body: ReportSubmission,
    now: datetime,
    same_photo: dict[str, list[str]],
) -> list[dict[str, object]]:
    photos = [
        evidence.PhotoEvidence(
            u.id,
            u.exif_captured_at,
            u.exif_longitude,
            u.exif_latitude,
            tuple(same_photo.get(u.sha256, ())),
        )
        for u in uploads
    ]
    intake = context.settings.intake
    thresholds = evidence.EvidenceThresholds(
        max_distance_m=intake.photo_distance_flag_m, max_age=timedelta(hours=intake.photo_age_flag_hours)
    )
    place = evidence.ReportedPlace(body.location.longitude, body.location.latitude, body.location.datum)
    return evidence.evidence_flags(photos, place, now, thresholds)


async def _store(session: AsyncSession, new: _NewReport, recorded: dict[str, Any] | None) -> str:
    """Write the report under the county's next number, the rows that refer to it, its photos and the recorded
    answer (``recorded``: ``idempotency.record_parameters``); return the number.

    Numbers are gap-free per year and county. On PostgreSQL the write is one statement (data-modifying CTEs): one
    round trip for every write of a submission, its number taken from the county's free slots (``_numbered``). On
    SQLite, one writer at a time, the counter row gives the next number.
    """
    counter = {"year": new.year, "region_code": new.region_code, "prefix": f"{new.year}-{new.region_code}-"}
    if is_postgresql(session):
        shape = _Shape(
            tuple(new.report),
            tuple((table.name, tuple(rows[0]), len(rows) > 1) for table, rows in new.rows if rows),
            len(new.upload_ids),
            recorded is not None,
        )
        attach = {f"upload_{index}": upload_id for index, upload_id in enumerate(new.upload_ids)}
        parameters = counter | attach | {"attach_to": new.receipt.id}
        parameters |= {f"report_{key}": value for key, value in new.report.items()}
        for table, rows in new.rows:
            if len(rows) > 1:
                parameters |= {f"{table.name}_{key}": [row[key] for row in rows] for key in rows[0]}
            elif rows:
                parameters |= {f"{table.name}_{key}": value for key, value in rows[0].items()}
        ((number, attached),) = await fetch_all(session, _postgresql_statement(shape), parameters | (recorded or {}))
    else:
        # SQLite has no DML in CTEs; it admits one writer at a time anyway, so the order costs no contention.
        taken = (await session.execute(_SQLITE_COUNTER, counter)).scalar_one()
        number = f"{counter['prefix']}{taken:06d}"
        await session.execute(insert(REPORTS), new.report | {"number": number})
        for table, rows in new.rows:
            if rows:
                await session.execute(insert(table), rows)
        attached = 0
        for position, upload_id in enumerate(new.upload_ids):
            parameters = {"attach_to": new.receipt.id, "upload": upload_id, "position": position}
            attached += (await session.execute(_ATTACH, parameters)).rowcount  # type: ignore[attr-defined]
        if recorded is not None:
            await session.execute(idempotency.RECORD, recorded)
    if attached != len(new.upload_ids):
        raise UploadAlreadyAttached(field="upload_ids", attached=[str(i) for i in new.upload_ids])
    return str(number)


def _counter(insert_of: Any) -> Any:
    counters = ReportNumberCounter.__table__
    return (
        insert_of(counters)
        .values(year=bindparam("year"), region_code=bindparam("region_code"), last_value=1)
        .on_conflict_do_update(index_elements=["year", "region_code"], set_={"last_value": counters.c.last_value + 1})
        .returning(counters.c.last_value)
    )


# Statements built once with bound parameters: building one per submission (a hundred values coerced, then its
# cache key) cost more CPU than the database spent on it.
_SQLITE_COUNTER = _counter(dialect_insert_for("sqlite"))


def _attach(upload: str, position: Any) -> Update:
    # The report_id IS NULL guard makes a concurrent double attach fail instead of silently moving a photo.
    return (
        update(UPLOADS)
        .where(UPLOADS.c.id == bindparam(upload), UPLOADS.c.report_id.is_(None))
        .values(report_id=bindparam("attach_to"), position=position)
    )


_ATTACH = _attach("upload", bindparam("position"))


@dataclass(frozen=True)
class _Shape:
    """What the PostgreSQL statement of a submission depends on, besides the values."""

    report: tuple[str, ...]  # the columns of the report
    rows: tuple[tuple[str, tuple[str, ...], bool], ...]  # per table: its columns, and whether it has several rows
    uploads: int
    recorded: bool


# How many numbers PostgreSQL takes from a county's counter at a time (``_numbered``).
NUMBER_BLOCK = 32
_SLOTS = ReportNumberSlot.__table__
_COUNTERS = ReportNumberCounter.__table__


def _numbered() -> tuple[ColumnElement[int], CTE]:
    """The county's next number on PostgreSQL, without holding the counter row until the commit.

    The counter row, locked from the submission's write to its commit and the commit's flush to disk, made every
    submission of a county wait for the one before: about 400 a second per county on the load test's machine,
    whatever the cores. Instead the counter hands out a block of numbers at a time, and the numbers no report holds
    yet wait as rows of ``report_number_slots``: a submission deletes the lowest one no other transaction has
    locked (``FOR UPDATE SKIP LOCKED``), so submissions of one county proceed side by side. A submission that rolls
    back puts its slot back with it, and the next submission takes it: numbers stay gap-free (every number up to
    the counter's is a report's or a free slot), though not always in the order of the commits. Only when no slot
    is free does a submission take the counter row, for a new block: this one number for itself, the rest as slots.
    """
    year, region = bindparam("year", type_=Integer), bindparam("region_code", type_=String)
    of_county = (_SLOTS.c.year == year, _SLOTS.c.region_code == region)
    free = select(_SLOTS.c.value).where(*of_county).order_by(_SLOTS.c.value).limit(1)
    free = free.with_for_update(skip_locked=True).cte("free_slot")
    slot = delete(_SLOTS).where(*of_county, _SLOTS.c.value == select(free.c.value).scalar_subquery())
    slot = slot.returning(_SLOTS.c.value).cte("slot")
    block = (
        postgresql.insert(_COUNTERS)
        .from_select(
            ["year", "region_code", "last_value"],
            select(year, region, literal(NUMBER_BLOCK)).where(~exists(select(slot.c.value))),
        )
        .on_conflict_do_update(
            index_elements=["year", "region_code"], set_={"last_value": _COUNTERS.c.last_value + NUMBER_BLOCK}
        )
        .returning(_COUNTERS.c.last_value)
        .cte("block")
    )
    rest = func.generate_series(block.c.last_value - NUMBER_BLOCK + 2, block.c.last_value)
    refill = insert(_SLOTS).from_select(["year", "region_code", "value"], select(year, region, rest)).cte("refill")
    first_of_block = select(block.c.last_value - NUMBER_BLOCK + 1).scalar_subquery()
    return func.coalesce(select(slot.c.value).scalar_subquery(), first_of_block), refill


@functools.lru_cache(maxsize=512)
def _postgresql_statement(shape: _Shape) -> Select[Any]:
    value, refill = _numbered()
    number = bindparam("prefix", type_=String) + func.lpad(cast(value, String), 6, "0")
    values = {key: bindparam(f"report_{key}", type_=REPORTS.c[key].type) for key in shape.report}
    report = insert(REPORTS).values(values | {"number": number}).returning(REPORTS.c.number).cte("report")
    others = []
    for name, keys, several in shape.rows:
        table = Base.metadata.tables[name]
        if several:
            # Several rows (duplicate candidates, up to 20): one array per column, unnested side by side. One
            # statement whatever the count, and SQLAlchemy caches it (it does not cache a multi-row VALUES).
            arrays = [func.unnest(bindparam(f"{name}_{key}", type_=ARRAY(table.c[key].type))) for key in keys]
            others.append(insert(table).from_select(list(keys), select(*arrays)).cte(f"new_{name}"))
        else:
            row = {key: bindparam(f"{name}_{key}", type_=table.c[key].type) for key in keys}
            others.append(insert(table).values(row).cte(f"new_{name}"))
    attached = [
        _attach(f"upload_{index}", index).returning(UPLOADS.c.id).cte(f"attached_{index}")
        for index in range(shape.uploads)
    ]
    if shape.recorded:
        others.append(idempotency.RECORD.cte("recorded"))
    attached_count = sum((select(func.count()).select_from(a).scalar_subquery() for a in attached), literal(0))
    return select(report.c.number, attached_count).add_cte(refill, *others)


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
