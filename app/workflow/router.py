"""Staff-facing case routes. Each case loaded by id goes through one scoping dependency: out of scope looks
exactly like not found."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.core.context import AppContext, get_context
from app.core.errors import Forbidden
from app.core.http import error_responses
from app.core.session import DbSession
from app.identity.dependencies import CurrentStaff, StaffPrincipal, requires
from app.identity.roles import Permission, has_permission
from app.intake.models import Report
from app.workflow import service
from app.workflow.schemas import CasePage, CaseView, HandBackRequest, RerouteRequest

router = APIRouter(prefix="/v1/staff", tags=["cases"])
Context = Annotated[AppContext, Depends(get_context)]


async def _case(report_id: uuid.UUID, staff: CurrentStaff, session: DbSession) -> Report:
    if not (
        has_permission(staff.role, Permission.VIEW_ALL_REPORTS)
        or has_permission(staff.role, Permission.VIEW_DEPARTMENT_REPORTS)
    ):
        raise Forbidden()
    return await service.scoped_case(session, staff, report_id, for_update=True)


ScopedCase = Annotated[Report, Depends(_case)]


@router.get(
    "/cases/{report_id}",
    operation_id="get_case",
    summary="案件详情（不含举报人身份）",
    responses=error_responses(401, 403, 404, 422),
)
async def get_case(case: ScopedCase, staff: CurrentStaff, session: DbSession, context: Context) -> CaseView:
    return await service.case_view(session, context, staff, case)


@router.get(
    "/triage", operation_id="list_triage", summary="待人工分派队列（含原因）", responses=error_responses(401, 403, 422)
)
async def list_triage(
    _staff: Annotated[StaffPrincipal, Depends(requires(Permission.VIEW_TRIAGE))],
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> CasePage:
    return await service.triage_queue(session, cursor, limit)


@router.post(
    "/cases/{report_id}/reroute",
    operation_id="reroute_case",
    summary="改派：改正行业领域或指定承办部门",
    responses=error_responses(401, 403, 404, 422),
)
async def reroute_case(
    # The permission is checked before the case is looked up: lacking the function is a 403 on any case.
    staff: Annotated[StaffPrincipal, Depends(requires(Permission.REROUTE))],
    body: RerouteRequest,
    case: ScopedCase,
    session: DbSession,
    context: Context,
) -> CaseView:
    await service.reroute(session, context, staff, case, body)
    return await service.case_view(session, context, staff, case)


@router.post(
    "/cases/{report_id}/hand-back",
    operation_id="hand_back_case",
    summary="退回：非本部门职责",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def hand_back_case(
    staff: Annotated[StaffPrincipal, Depends(requires(Permission.HAND_BACK))],
    body: HandBackRequest,
    case: ScopedCase,
    session: DbSession,
    context: Context,
) -> dict[str, str]:
    await service.hand_back(session, staff, case, body)
    return {"status": "handed_back"}
