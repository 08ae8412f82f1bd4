"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) under /open311, and the admin's partner keys.

Every /open311 route answers `.json` or `.xml` (the path's extension), errors included, in the spec's error format.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from app.core.context import AppContext, get_context
from app.core.errors import DomainError, PayloadTooLarge
from app.core.http import cacheable_response, error_responses, http_error
from app.core.session import DbSession
from app.identity.dependencies import StaffPrincipal, requires
from app.identity.roles import Permission
from app.intake.schemas import HazardKind
from app.open311 import formats, service
from app.open311.errors import FormRequired, InvalidParameter, UnknownResource
from app.open311.schemas import (
    Open311Discovery,
    Open311Error,
    Open311Receipt,
    Open311Request,
    Open311Service,
    Open311ServiceDefinition,
    PartnerCreate,
    PartnerCreated,
    PartnerView,
)
from app.publication.service import PUBLIC_MAX_AGE_SECONDS

MAX_FORM_BYTES = 16_384
SPEC_STATUSES = {401: 403, 403: 403, 404: 404}  # anything else under 500 is the spec's 400


def spec_error(request: Request, status: int, code: str, description: str) -> Response:
    fmt = formats.format_of_path(request.url.path)
    status = SPEC_STATUSES.get(status, 400) if status < 500 else status
    body = formats.render([{"code": code, "description": description}], "errors", fmt)
    return Response(body, status_code=status, media_type=formats.MEDIA_TYPES[fmt])


class Open311Route(APIRoute):
    """Answers domain errors and invalid parameters in the spec's format, in the format the path asked for."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except DomainError as exc:
                return spec_error(request, exc.status, exc.code, exc.detail_message)
            except RequestValidationError as exc:
                problem = exc.errors()[0] if exc.errors() else {}
                field = ".".join(str(p) for p in problem.get("loc", ()) if p not in ("query", "path", "body"))
                return spec_error(request, 400, InvalidParameter.code, f"参数不合法：{field}")

        return handler


router = APIRouter(prefix="/open311", tags=["open311"], route_class=Open311Route)
Context = Annotated[AppContext, Depends(get_context)]
# The schema names the two formats; the route answers any other with the spec's 404 (unknown_resource), not a 400.
Format = Annotated[str, Path(description="json 或 xml", examples=["json"], json_schema_extra={"enum": ["json", "xml"]})]
QueryText = Annotated[str | None, Query(max_length=4000)]
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# What the service parses, stated for the schema (an empty value is no filter, as partners send them).
RequestIds = Annotated[
    str | None,
    Query(
        max_length=4000,
        pattern=f"^(?:{_UUID}(?:,{_UUID}){{0,99}})?$",
        description="逗号分隔，最多 100 个；给出时忽略其他条件",
    ),
]
Statuses = Annotated[str | None, Query(pattern="^(?:(?:open|closed)(?:,(?:open|closed))*)?$")]
Moment = Annotated[
    str | None,
    Query(
        max_length=64,
        json_schema_extra={
            "anyOf": [
                {"type": "string", "format": "date-time", "maxLength": 64},
                {"type": "string", "maxLength": 0},
                {"type": "null"},
            ]
        },
        description="W3C 日期时间，须带时区；与另一端相隔不超过 90 天",
    ),
]
ServiceCode = Annotated[str | None, Query(pattern=r"^(?:[a-z0-9][a-z0-9_-]{0,39})?$")]


def _responses(model: Any, errors: str) -> dict[int | str, dict[str, Any]]:
    """The answer and the spec's errors; one "4XX" entry, since the spec answers only 400, 403 and 404. 400 is named
    too, since the app documents 400 (a body that is not even JSON) in its own error shape for every other route."""
    spec_errors = {"model": list[Open311Error], "content": {"text/xml": {}}, "description": errors}
    return {
        200: {"model": model, "content": {"text/xml": {}}, "description": "JSON 或 XML（见路径扩展名）"},
        400: spec_errors,
        "4XX": spec_errors,
    }


NOT_FOUND = "404 资源或格式不存在"
BAD_INPUT = "400 参数不合法；" + NOT_FOUND


def _cached(request: Request, document: Any, root: str, fmt: str) -> Response:
    body = formats.render(document, root, fmt)
    return cacheable_response(request, body, formats.MEDIA_TYPES[fmt], PUBLIC_MAX_AGE_SECONDS)


@router.get(
    "/discovery.{fmt}",
    operation_id="open311_discovery",
    summary="Open311 服务发现",
    response_class=Response,
    responses=_responses(Open311Discovery, NOT_FOUND),
)
async def discovery(fmt: Format, request: Request, context: Context) -> Response:
    return _cached(request, service.discovery(context), "discovery", formats.checked(fmt))


@router.get(
    "/v2/services.{fmt}",
    operation_id="open311_list_services",
    summary="Open311 服务列表（即行业领域）",
    response_class=Response,
    responses=_responses(list[Open311Service], BAD_INPUT),
)
async def list_services(
    fmt: Format, request: Request, session: DbSession, jurisdiction_id: QueryText = None
) -> Response:
    fmt = formats.checked(fmt)
    return _cached(request, await service.services(session), "services", fmt)


@router.get(
    "/v2/services/{service_code}.{fmt}",
    operation_id="open311_get_service_definition",
    summary="Open311 服务定义（附加字段：举报类型、被举报单位、发现时间）",
    response_class=Response,
    responses=_responses(Open311ServiceDefinition, BAD_INPUT),
)
async def get_service_definition(
    service_code: Annotated[str, Path(max_length=40)],
    fmt: Format,
    request: Request,
    session: DbSession,
    jurisdiction_id: QueryText = None,
) -> Response:
    fmt = formats.checked(fmt)
    return _cached(request, await service.service_definition(session, service_code), "service_definition", fmt)


STATUS_NOTE = (
    "只列出已在警示曝光栏公开的案件，去除一切举报人信息，坐标为所在乡镇（或县）的中心点。"
    "状态对应：已办结、不予受理、已合并、核查不属实为 closed，其余为 open；"
    "案件只在办结后公开，所以列出的都是 closed。"
)


@router.get(
    "/v2/requests.{fmt}",
    operation_id="open311_list_requests",
    summary="Open311 服务请求列表（仅公开案件）",
    description=STATUS_NOTE + " 不带日期时返回最新的 1000 条；start_date 与 end_date 相隔不超过 90 天。",
    response_class=Response,
    responses=_responses(list[Open311Request], BAD_INPUT),
)
async def list_requests(
    fmt: Format,
    request: Request,
    session: DbSession,
    context: Context,
    service_request_id: RequestIds = None,
    service_code: ServiceCode = None,
    start_date: Moment = None,
    end_date: Moment = None,
    status: Statuses = None,
    jurisdiction_id: QueryText = None,
) -> Response:
    fmt = formats.checked(fmt)
    query = {
        "service_request_id": service_request_id,
        "service_code": service_code,
        "start_date": start_date,
        "end_date": end_date,
        "status": status,
    }
    found = await service.requests(session, context, {k: v for k, v in query.items() if v})
    return _cached(request, found, "service_requests", fmt)


@router.get(
    "/v2/requests/{service_request_id}.{fmt}",
    operation_id="open311_get_request",
    summary="Open311 单个服务请求（仅公开案件）",
    description=STATUS_NOTE,
    response_class=Response,
    responses=_responses(list[Open311Request], BAD_INPUT),
)
async def get_request(
    service_request_id: Annotated[str, Path(max_length=64)],
    fmt: Format,
    request: Request,
    session: DbSession,
    context: Context,
    jurisdiction_id: QueryText = None,
) -> Response:
    fmt = formats.checked(fmt)
    return _cached(request, await service.request(session, context, service_request_id), "service_requests", fmt)


_TEXT = {"type": "string"}
_LATITUDE = r"^-?(?:[0-8]?[0-9](?:\.[0-9]{1,10})?|90(?:\.0{1,10})?)$"
_LONGITUDE = r"^-?(?:(?:1[0-7][0-9]|[0-9]?[0-9])(?:\.[0-9]{1,10})?|180(?:\.0{1,10})?)$"
# The form as the partner intake reads it (app/open311/service.py and the report it becomes), stated for the schema.
FORM_FIELDS: dict[str, dict[str, Any]] = {
    "api_key": {"type": "string", "minLength": 1, "maxLength": 200},
    "service_code": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]{0,39}$"},
    "lat": {"type": "string", "pattern": _LATITUDE, "description": "WGS-84 纬度（十进制度）"},
    "long": {"type": "string", "pattern": _LONGITUDE, "description": "WGS-84 经度（十进制度）"},
    # Values are trimmed before they are read, so the first and last characters are not white space.
    "description": {"type": "string", "minLength": 5, "maxLength": 1000, "pattern": r"^\S[\s\S]*\S$"},
    "attribute[hazard_kind]": {"type": "string", "enum": [kind.value for kind in HazardKind]},
    "attribute[enterprise_name]": {"type": "string", "maxLength": 200},
    "attribute[observed_at]": {"type": "string", "format": "date-time", "description": "含时区；不填为提交时间"},
    "first_name": {"type": "string", "maxLength": 20},
    "last_name": {"type": "string", "maxLength": 20},
    "phone": {"type": "string", "pattern": r"^\+?[0-9\- ]{5,20}$"},
    "email": _TEXT,
    "device_id": _TEXT,
    "account_id": _TEXT,
    "media_url": {"type": "string", "maxLength": 0, "description": "不接受（照片须经上传检查）"},
    "jurisdiction_id": _TEXT,
}
FORM_REQUIRED = ["api_key", "service_code", "lat", "long", "description", "attribute[hazard_kind]"]


@router.post(
    "/v2/requests.{fmt}",
    operation_id="open311_create_request",
    summary="Open311 提交服务请求（合作平台，须 api_key）",
    description=(
        "表单（application/x-www-form-urlencoded）。lat/long 为 WGS-84；不支持仅凭地址定位；不接受 media_url。"
        "first_name/last_name/phone 作为来电人信息加密保存，仅受理员可依法查看；email、device_id、account_id 不保存。"
    ),
    status_code=201,
    response_class=Response,
    responses=_responses(list[Open311Receipt], "403 api_key 缺失或无效；" + BAD_INPUT),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "required": FORM_REQUIRED, "properties": FORM_FIELDS}
                }
            },
        }
    },
)
async def create_request(fmt: Format, request: Request, session: DbSession, context: Context) -> Response:
    fmt = formats.checked(fmt)
    form = await _form(request)
    partner = await service.partner_of(session, context, form.get("api_key"))
    receipt = await service.submit(session, context, partner, form)
    return Response(
        formats.render(receipt, "service_requests", fmt), status_code=201, media_type=formats.MEDIA_TYPES[fmt]
    )


async def _form(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise FormRequired()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(field="body")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormRequired() from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value.strip())
    return form


async def not_found(request: Request, exc: Exception) -> Response:
    """The app's 404 for a path no route serves: in the spec's format under /open311, our own shape elsewhere. (A
    catch-all route did this before, and made POST look like a method of every Open311 path to the 405's Allow.)"""
    if request.url.path.startswith(router.prefix + "/"):
        return spec_error(request, 404, UnknownResource.code, UnknownResource.message)
    return await http_error(request, exc)


# --- the admin's partner keys --------------------------------------------------------------------------------------

admin_router = APIRouter(prefix="/v1/admin/partners", tags=["open311"])
PartnerAdmin = Annotated[StaffPrincipal, Depends(requires(Permission.MANAGE_PARTNERS))]


@admin_router.post(
    "",
    operation_id="create_partner",
    summary="新增 Open311 合作平台并发放 api_key（只显示一次）",
    status_code=201,
    responses=error_responses(401, 403, 422),
)
async def create_partner(
    body: PartnerCreate, admin: PartnerAdmin, session: DbSession, context: Context
) -> PartnerCreated:
    return await service.create_partner(session, context, body.name, admin.key)


@admin_router.get("", operation_id="list_partners", summary="Open311 合作平台", responses=error_responses(401, 403))
async def list_partners(_admin: PartnerAdmin, session: DbSession) -> list[PartnerView]:
    return await service.list_partners(session)


@admin_router.post(
    "/{partner_id}/revoke",
    operation_id="revoke_partner",
    summary="停用合作平台的 api_key",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def revoke_partner(partner_id: uuid.UUID, admin: PartnerAdmin, session: DbSession) -> PartnerView:
    return await service.revoke_partner(session, admin, partner_id)
