"""GeoReport v2 over our data: services are the categories, requests are the exposure board's published cases
(read through ``app.publication``, so they carry exactly what the board shows), and a POST from a partner
platform files a real report through intake.

States map onto the spec's two: ``closed`` for a case that is finished one way or another (closed, rejected,
merged, verified false); ``open`` for everything else. Only published cases are listed at all, and a case is
published only while it is closed, so every listed request is ``closed`` today.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Category
from app.core import audit
from app.core.context import AppContext
from app.core.db import utcnow
from app.identity.dependencies import PartnerPrincipal, StaffPrincipal
from app.intake import service as intake_service
from app.intake.schemas import HazardKind, PartnerReportSubmission
from app.intake.uploads import CHINA_TZ
from app.open311.errors import (
    ControlCharacters,
    DateRangeReversed,
    DateRangeTooLong,
    InvalidApiKey,
    InvalidParameter,
    LocationRequired,
    MediaUrlNotSupported,
    PartnerAlreadyRevoked,
    PartnerNotFound,
    RequestNotFound,
    ServiceNotFound,
    UnknownServiceCode,
)
from app.open311.models import PartnerKey
from app.open311.schemas import PartnerCreated, PartnerView
from app.publication import service as publication
from app.publication.schemas import PublicCase
from app.workflow.transitions import CaseState

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-27T00:00:00+08:00"  # when this discovery document last changed
FINISHED_STATES = frozenset({CaseState.CLOSED, CaseState.REJECTED, CaseState.MERGED, CaseState.VERIFIED_FALSE})
MAX_RANGE = timedelta(days=90)
MAX_REQUESTS = 1000  # the spec's default window: the newest 1,000
MAX_IDS = 100
KEY_PREFIX = "p311-"
KEY_PURPOSE = "partner_api_key"
HAZARD_KIND_NAMES = {
    HazardKind.ACCIDENT_HAZARD: "事故隐患",
    HazardKind.ILLEGAL_PRODUCTION: "非法违法生产经营行为",
    HazardKind.CONCEALED_ACCIDENT: "瞒报谎报事故",
}
# Form fields → our fields, for naming the spec's field in a refusal.
SPEC_FIELDS = {
    "category": "service_code",
    "description": "description",
    "location.longitude": "long",
    "location.latitude": "lat",
    "hazard_kind": "attribute[hazard_kind]",
    "observed_at": "attribute[observed_at]",
    "enterprise.name": "attribute[enterprise_name]",
    "caller.name": "first_name",
    "caller.phone": "phone",
}


def open311_status(state: CaseState) -> str:
    return "closed" if state in FINISHED_STATES else "open"


def _w3c(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).isoformat(timespec="seconds")


# --- discovery and services ----------------------------------------------------------------------------------------


def discovery(context: AppContext) -> dict[str, Any]:
    base = context.settings.public_base_url.rstrip("/")
    return {
        "changeset": CHANGESET,
        "contact": "12350 安全生产举报投诉热线",
        "key_service": "合作平台的 api_key 由本服务管理员发放（POST /v1/admin/partners）",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": f"{base}/open311/v2",
                "changeset": CHANGESET,
                "type": "production" if context.settings.environment == "production" else "test",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


async def services(session: AsyncSession) -> list[dict[str, Any]]:
    categories = (
        await session.scalars(
            select(Category).where(Category.is_active.is_(True)).order_by(Category.sort_order, Category.code)
        )
    ).all()
    return [
        {
            "service_code": c.code,
            "service_name": c.name,
            "description": f"{c.name}领域的安全隐患或非法违法生产经营行为举报",
            "metadata": True,
            "type": "realtime",
            "keywords": c.name,
            "group": "安全生产",
        }
        for c in categories
    ]


async def service_definition(session: AsyncSession, service_code: str) -> dict[str, Any]:
    await _active_category(session, service_code)
    hazard_kinds = [{"key": kind.value, "name": name} for kind, name in HAZARD_KIND_NAMES.items()]
    return {
        "service_code": service_code,
        "attributes": [
            _attribute(1, "hazard_kind", "singlevaluelist", True, "举报类型", hazard_kinds),
            _attribute(2, "enterprise_name", "string", False, "被举报单位名称（如知道）"),
            _attribute(3, "observed_at", "datetime", False, "发现时间，W3C 日期时间（含时区）；不填为提交时间", None),
        ],
    }


def _attribute(
    order: int,
    code: str,
    datatype: str,
    required: bool,
    description: str,
    values: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "variable": True,
        "code": code,
        "datatype": datatype,
        "required": required,
        "datatype_description": None,
        "order": order,
        "description": description,
        "values": values or [],
    }


async def _active_category(session: AsyncSession, code: str) -> Category:
    category = await session.get(Category, code)
    if category is None or not category.is_active:
        raise ServiceNotFound(field="service_code")
    return category


# --- requests: the published cases ---------------------------------------------------------------------------------


async def requests(session: AsyncSession, context: AppContext, query: Mapping[str, str]) -> list[dict[str, Any]]:
    """GET requests with the spec's filters; ``service_request_id`` overrides all the others."""
    ids = _ids(query.get("service_request_id"))
    if ids is not None:
        wanted = publication.PublicFilter(case_ids=tuple(ids))
    else:
        if not _statuses(query.get("status")) & {open311_status(CaseState.CLOSED)}:
            return []  # every public case is closed (see the module doc)
        start, end = _moment(query, "start_date"), _moment(query, "end_date")
        if start is not None and end is not None:
            _check_range(start, end)
        code = query.get("service_code") or None
        if code is not None and await session.get(Category, code) is None:
            raise UnknownServiceCode(field="service_code")
        wanted = publication.PublicFilter(category=code, submitted_from=start, submitted_to=end)
    page = await publication.list_public(session, context, wanted, None, MAX_REQUESTS)
    return [_request(case) for case in page.items]


async def request(session: AsyncSession, context: AppContext, service_request_id: str) -> list[dict[str, Any]]:
    try:
        case_id = uuid.UUID(service_request_id)
    except ValueError as exc:
        raise RequestNotFound() from exc
    try:
        case = await publication.get_public(session, context, case_id)
    except publication.PublicCaseNotFound as exc:
        raise RequestNotFound() from exc
    return [_request(case)]


def _request(case: PublicCase) -> dict[str, Any]:
    outcome = case.outcome
    notes = f"经核查{outcome.verification_label}" + (
        f"，{outcome.hazard_level_label}" if outcome.hazard_level_label else ""
    )
    notes += "，已整改到位并办结" if outcome.rectified else "，已办结"
    place = case.place
    return {
        "service_request_id": str(case.id),
        "status": open311_status(CaseState.CLOSED),
        "status_notes": notes,
        "service_name": case.category.name,
        "service_code": case.category.code,
        "description": case.summary,
        "agency_responsible": case.department,
        "service_notice": None,
        "requested_datetime": _w3c(case.submitted_at),
        "updated_datetime": _w3c(case.updated_at),
        "expected_datetime": None,
        "address": place.name if place else None,
        "address_id": None,
        "zipcode": None,
        "lat": place.latitude if place else None,
        "long": place.longitude if place else None,
        "media_url": case.photos[0].display_url if case.photos else None,
    }


def _check_range(start: datetime, end: datetime) -> None:
    if end < start:
        raise DateRangeReversed(field="end_date")
    if end - start > MAX_RANGE:
        raise DateRangeTooLong(field="end_date")


def _ids(raw: str | None) -> list[uuid.UUID] | None:
    if not raw:
        return None
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if len(parts) > MAX_IDS:
        raise InvalidParameter(f"service_request_id 一次最多 {MAX_IDS} 个", field="service_request_id")
    try:
        return [uuid.UUID(part) for part in parts]
    except ValueError as exc:
        raise InvalidParameter("service_request_id 格式不正确", field="service_request_id") from exc


def _statuses(raw: str | None) -> set[str]:
    if not raw:
        return {"open", "closed"}
    statuses = {part.strip() for part in raw.split(",")}
    if not statuses <= {"open", "closed"}:
        raise InvalidParameter("status 只能是 open 或 closed", field="status")
    return statuses


def _moment(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip().replace(" ", "+"))
    except ValueError as exc:
        raise InvalidParameter(f"{name} 须为 W3C 日期时间，例如 2026-11-01T00:00:00+08:00", field=name) from exc
    if moment.tzinfo is None:
        raise InvalidParameter(f"{name} 须带时区，例如 2026-11-01T00:00:00+08:00", field=name)
    return moment


# --- POST requests: partner intake ---------------------------------------------------------------------------------


async def partner_of(session: AsyncSession, context: AppContext, api_key: str | None) -> PartnerPrincipal:
    if not api_key or len(api_key) > 200:
        raise InvalidApiKey(field="api_key")
    digest = context.blind_index.digest(api_key, KEY_PURPOSE)
    partner = await session.scalar(
        select(PartnerKey).where(PartnerKey.key_hash == digest, PartnerKey.revoked_at.is_(None))
    )
    if partner is None:
        raise InvalidApiKey(field="api_key")
    return PartnerPrincipal(partner.id, partner.name)


async def submit(
    session: AsyncSession, context: AppContext, partner: PartnerPrincipal, form: Mapping[str, str]
) -> list[dict[str, Any]]:
    """File a report for a partner: the same intake as the mini-program, channel ``partner``, no photos."""
    if form.get("media_url"):
        raise MediaUrlNotSupported(field="media_url")
    if not form.get("lat") or not form.get("long"):
        raise LocationRequired(field="lat")
    body = _submission(form)
    receipt = await intake_service.submit_report(session, context, partner, body, None)
    audit.record(
        session,
        actor_id=partner.key,
        actor_role="partner",
        action="open311_submit",
        target_type="report",
        target_id=str(receipt.id),
        detail={"partner": partner.name, "number": receipt.number},
    )
    notice = f"已登记，编号 {receipt.number}。核查属实并办结的案件经审核后在警示曝光栏公开，可按本 ID 查询。"
    return [{"service_request_id": str(receipt.id), "service_notice": notice, "account_id": None}]


def _submission(form: Mapping[str, str]) -> PartnerReportSubmission:
    name = " ".join(part for part in (form.get("last_name"), form.get("first_name")) if part) or None
    caller = {"name": name, "phone": form.get("phone") or None} if name or form.get("phone") else None
    enterprise = form.get("attribute[enterprise_name]")
    try:
        return PartnerReportSubmission.model_validate(
            {
                "category": form.get("service_code") or "",
                "hazard_kind": form.get("attribute[hazard_kind]"),
                "description": form.get("description") or "",
                "location": {
                    "longitude": _number(form, "long"),
                    "latitude": _number(form, "lat"),
                    "datum": "wgs84",
                },
                "observed_at": form.get("attribute[observed_at]") or _w3c(utcnow()),
                "enterprise": {"name": enterprise} if enterprise else None,
                "caller": caller,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        field = SPEC_FIELDS.get(path, path)
        # A control character is refused with a code of its own, as the rest of the API gives it a type of its own.
        refusal = ControlCharacters if first["type"] == "control_characters" else InvalidParameter
        raise refusal(f"参数不合法：{field}（{first['msg']}）", field=field) from exc


def _number(form: Mapping[str, str], name: str) -> float:
    try:
        value = float(form.get(name, ""))
    except ValueError as exc:
        raise InvalidParameter(f"{name} 须为数字（WGS-84 十进制度）", field=name) from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidParameter(f"{name} 须为有限数字", field=name)
    return value


# --- partner keys (admin) ------------------------------------------------------------------------------------------


async def create_partner(session: AsyncSession, context: AppContext, name: str, actor: str) -> PartnerCreated:
    api_key = KEY_PREFIX + secrets.token_urlsafe(24)
    partner = PartnerKey(
        name=name,
        key_hash=context.blind_index.digest(api_key, KEY_PURPOSE),
        key_hint=api_key[: len(KEY_PREFIX) + 4],
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(partner)
    await session.flush()
    audit.record(
        session,
        actor_id=actor,
        actor_role=None,
        action="create_partner",
        target_type="partner",
        target_id=str(partner.id),
        detail={"name": name},
    )
    return PartnerCreated(**_partner_view(partner).model_dump(), api_key=api_key)


async def list_partners(session: AsyncSession) -> list[PartnerView]:
    rows = (await session.scalars(select(PartnerKey).order_by(PartnerKey.created_at))).all()
    return [_partner_view(row) for row in rows]


async def revoke_partner(session: AsyncSession, staff: StaffPrincipal, partner_id: uuid.UUID) -> PartnerView:
    partner = await session.get(PartnerKey, partner_id, with_for_update=True)
    if partner is None:
        raise PartnerNotFound()
    if partner.revoked_at is not None:
        raise PartnerAlreadyRevoked()
    partner.revoked_at, partner.revoked_by = utcnow(), staff.staff_id
    audit.record(
        session,
        actor_id=staff.key,
        actor_role=staff.role.value,
        action="revoke_partner",
        target_type="partner",
        target_id=str(partner.id),
    )
    return _partner_view(partner)


def _partner_view(partner: PartnerKey) -> PartnerView:
    return PartnerView(
        id=partner.id,
        name=partner.name,
        key_hint=partner.key_hint,
        created_by=partner.created_by,
        created_at=partner.created_at,
        revoked_at=partner.revoked_at,
    )
