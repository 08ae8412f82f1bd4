"""The admin's reference data (jurisdictions, departments, categories, routing rules) and a routing preview."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from app.core.context import AppContext, get_context
from app.core.http import error_responses
from app.core.multipart import read_single_file
from app.core.session import DbSession
from app.geo.datum import Datum
from app.identity.dependencies import StaffPrincipal, requires
from app.identity.roles import Permission
from app.routing import service
from app.routing.schemas import (
    CategoryCreate,
    DecisionView,
    DepartmentCreate,
    DepartmentView,
    JurisdictionImportResult,
    JurisdictionView,
    ReferenceChangeView,
    RoutingPreviewRequest,
    RuleCreate,
    RuleView,
)

router = APIRouter(prefix="/v1/admin", tags=["routing"])
Context = Annotated[AppContext, Depends(get_context)]
Admin = Annotated[StaffPrincipal, Depends(requires(Permission.MANAGE_REFERENCE_DATA))]
Previewer = Annotated[StaffPrincipal, Depends(requires(Permission.PREVIEW_ROUTING))]

MAX_GEOJSON_BYTES = 64 * 1024 * 1024
_GEOJSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "GeoJSON FeatureCollection（UTF-8，可带 BOM）",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/jurisdictions/import",
    operation_id="import_jurisdictions",
    summary="导入行政区域边界（GeoJSON，全部成功或全部不导入）",
    openapi_extra=_GEOJSON_BODY,
    responses=error_responses(401, 403, 409, 413, 415, 422),
)
async def import_jurisdictions(
    request: Request,
    admin: Admin,
    session: DbSession,
    context: Context,
    datum: Annotated[Datum, Query(description="边界数据的坐标系")] = Datum.GCJ02,
    illustrative: Annotated[bool, Query(description="示意数据（非官方边界）")] = False,
) -> JurisdictionImportResult:
    received = await read_single_file(request, "file", MAX_GEOJSON_BYTES)
    return await service.import_jurisdictions(
        session,
        context,
        received.data,
        datum=datum,
        illustrative=illustrative,
        actor=admin.key,
        source=received.filename or "upload",
    )


@router.get(
    "/jurisdictions",
    operation_id="list_jurisdictions",
    summary="行政区域（不含边界）",
    responses=error_responses(401, 403, 422),
)
async def list_jurisdictions(
    _admin: Previewer,
    session: DbSession,
    parent: Annotated[str | None, Query(pattern=r"^[0-9]{6,12}$")] = None,
) -> list[JurisdictionView]:
    return await service.list_jurisdictions(session, parent)


@router.post(
    "/departments",
    operation_id="create_department",
    summary="新增部门",
    status_code=201,
    responses=error_responses(401, 403, 409, 422),
)
async def create_department(body: DepartmentCreate, admin: Admin, session: DbSession) -> DepartmentView:
    return await service.create_department(session, body.code, body.name, body.jurisdiction_adcode, admin.key)


@router.get("/departments", operation_id="list_departments", summary="部门", responses=error_responses(401, 403))
async def list_departments(_staff: Previewer, session: DbSession) -> list[DepartmentView]:
    return await service.list_departments(session)


@router.post(
    "/categories",
    operation_id="create_category",
    summary="新增行业领域",
    status_code=204,
    responses=error_responses(401, 403, 409, 422),
)
async def create_category(body: CategoryCreate, admin: Admin, session: DbSession) -> None:
    await service.create_category(session, body.code, body.name, admin.key)


@router.get(
    "/routing-rules", operation_id="list_routing_rules", summary="路由规则", responses=error_responses(401, 403, 422)
)
async def list_routing_rules(_staff: Previewer, session: DbSession, include_retired: bool = False) -> list[RuleView]:
    return await service.list_rules(session, include_retired)


@router.post(
    "/routing-rules",
    operation_id="create_routing_rule",
    summary="新增路由规则",
    status_code=201,
    responses=error_responses(401, 403, 409, 422),
)
async def create_routing_rule(body: RuleCreate, admin: Admin, session: DbSession) -> RuleView:
    return await service.create_rule(
        session,
        category_code=body.category_code,
        jurisdiction_adcode=body.jurisdiction_adcode,
        department_code=body.department_code,
        priority=body.priority,
        actor=admin.key,
    )


@router.post(
    "/routing-rules/{rule_id}/retire",
    operation_id="retire_routing_rule",
    summary="停用路由规则",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def retire_routing_rule(rule_id: uuid.UUID, admin: Admin, session: DbSession) -> RuleView:
    return await service.retire_rule(session, rule_id, admin.key)


@router.get(
    "/reference-changes",
    operation_id="list_reference_changes",
    summary="参考数据版本记录",
    responses=error_responses(401, 403),
)
async def list_reference_changes(_admin: Admin, session: DbSession) -> list[ReferenceChangeView]:
    return await service.list_changes(session)


@router.post(
    "/routing/preview",
    operation_id="preview_routing",
    summary="试算：某类别某位置将转给哪个部门",
    responses=error_responses(401, 403, 422),
)
async def preview_routing(
    body: RoutingPreviewRequest, _staff: Previewer, session: DbSession, context: Context
) -> DecisionView:
    location = body.location
    outcome = await service.route(
        session, context, body.category, location.longitude, location.latitude, location.datum
    )
    return service.outcome_view(outcome)
