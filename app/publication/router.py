"""The dispatcher's publication commands and the public, unauthenticated, cacheable exposure board."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.core.context import AppContext, get_context
from app.core.http import cacheable_response, error_responses
from app.core.session import DbSession
from app.identity.dependencies import StaffPrincipal, requires
from app.identity.roles import Permission
from app.intake.models import Report
from app.publication import service
from app.publication.schemas import PublicationView, PublicCase, PublicCasePage, PublishBody, WithdrawBody
from app.routing.schemas import ADCODE_PATTERN, CODE_PATTERN
from app.workflow import service as workflow_service

router = APIRouter(prefix="/v1/staff/cases", tags=["publication"])
public_router = APIRouter(prefix="/v1/public", tags=["public"])
Context = Annotated[AppContext, Depends(get_context)]
Publisher = Annotated[StaffPrincipal, Depends(requires(Permission.PUBLISH_CASES))]


async def _case(report_id: uuid.UUID, staff: Publisher, session: DbSession) -> Report:
    return await workflow_service.scoped_case(session, staff, report_id, for_update=True)


PublishableCase = Annotated[Report, Depends(_case)]


@router.post(
    "/{report_id}/publish",
    operation_id="publish_case",
    summary="警示曝光：发布或修改公开摘要与照片（仅限已办结、核查属实的案件）",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def publish_case(
    body: PublishBody, case: PublishableCase, staff: Publisher, session: DbSession
) -> PublicationView:
    return await service.publish(session, staff, case, body)


@router.post(
    "/{report_id}/withdraw-publication",
    operation_id="withdraw_publication",
    summary="撤回警示曝光（须说明理由，记入审计）",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def withdraw_publication(
    body: WithdrawBody, case: PublishableCase, staff: Publisher, session: DbSession
) -> PublicationView:
    return await service.withdraw(session, staff, case, body.reason)


@router.get(
    "/{report_id}/publication",
    operation_id="get_publication",
    summary="案件的公开状态",
    responses=error_responses(401, 403, 404, 422),
)
async def get_publication(case: PublishableCase, session: DbSession) -> PublicationView:
    return await service.get_publication(session, case)


CACHE_NOTE = (
    f"无需登录。响应带 `Cache-Control: public, max-age={service.PUBLIC_MAX_AGE_SECONDS}` 与 `ETag`；"
    "带 `If-None-Match` 的请求在内容未变时得到 304。"
)


@public_router.get(
    "/cases",
    operation_id="list_public_cases",
    summary="警示曝光：已公开的案例（最新在前，键集分页）",
    description=CACHE_NOTE,
    response_model=PublicCasePage,
    responses=error_responses(422),
)
async def list_public_cases(
    request: Request,
    session: DbSession,
    context: Context,
    category: Annotated[str | None, Query(pattern=CODE_PATTERN, description="行业领域代码")] = None,
    township: Annotated[str | None, Query(pattern=ADCODE_PATTERN, description="乡镇（或县）行政区划代码")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> Response:
    wanted = service.PublicFilter(category=category, township=township)
    page = await service.list_public(session, context, wanted, cursor, limit)
    return cacheable_response(
        request, page.model_dump_json().encode(), "application/json", service.PUBLIC_MAX_AGE_SECONDS
    )


@public_router.get(
    "/cases/{case_id}",
    operation_id="get_public_case",
    summary="警示曝光：一个已公开的案例",
    description=CACHE_NOTE,
    response_model=PublicCase,
    responses=error_responses(404, 422),
)
async def get_public_case(case_id: uuid.UUID, request: Request, session: DbSession, context: Context) -> Response:
    case = await service.get_public(session, context, case_id)
    return cacheable_response(
        request, case.model_dump_json().encode(), "application/json", service.PUBLIC_MAX_AGE_SECONDS
    )
