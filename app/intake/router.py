from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from app.catalog.models import Category
from app.core.context import AppContext, get_context
from app.core.http import error_responses
from app.core.idempotency import idempotency_key_header
from app.core.multipart import read_single_file
from app.core.session import DbSession, ReadSession
from app.identity.dependencies import CurrentPrincipal, CurrentReporter, StaffPrincipal
from app.identity.roles import Permission
from app.intake import service, uploads
from app.intake.schemas import (
    CategoryRef,
    ReportDetail,
    ReportLookupRequest,
    ReportLookupResult,
    ReportPage,
    ReportReceipt,
    ReportSubmission,
    UploadView,
)

router = APIRouter(prefix="/v1", tags=["intake"])
Context = Annotated[AppContext, Depends(get_context)]
IdempotencyKey = Annotated[str | None, Depends(idempotency_key_header)]

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "JPEG、PNG、WebP 或 HEIC 照片"}
                    },
                    "additionalProperties": {"type": "string"},
                }
            }
        },
    }
}


@router.post(
    "/uploads",
    operation_id="upload_photo",
    summary="上传一张照片（wx.uploadFile，每次一个文件）",
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses=error_responses(401, 403, 413, 415, 422, 503),
)
async def upload_photo(
    request: Request, principal: CurrentPrincipal, context: Context, idempotency_key: IdempotencyKey
) -> UploadView:
    if isinstance(principal, StaffPrincipal):
        principal.require(Permission.UPLOAD_EVIDENCE)
    received = await read_single_file(request, "file", context.settings.intake.max_upload_bytes)
    return await uploads.receive_upload(context, principal.key, received.data, idempotency_key)


@router.get(
    "/uploads/{upload_id}",
    operation_id="get_upload",
    summary="查看自己上传的照片",
    responses=error_responses(401, 404, 422),
)
async def get_upload(upload_id: uuid.UUID, principal: CurrentPrincipal, context: Context) -> UploadView:
    return await uploads.get_upload(context, principal.key, upload_id)


@router.post(
    "/reports",
    operation_id="submit_report",
    summary="提交举报",
    status_code=201,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def submit_report(
    body: ReportSubmission,
    principal: CurrentPrincipal,
    session: DbSession,
    context: Context,
    idempotency_key: IdempotencyKey,
) -> ReportReceipt:
    return await service.submit_report(session, context, principal, body, idempotency_key)


@router.get(
    "/me/reports", operation_id="list_my_reports", summary="我的举报（最新在前）", responses=error_responses(401, 422)
)
async def list_my_reports(
    reporter: CurrentReporter,
    session: ReadSession,
    context: Context,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> ReportPage:
    return await service.list_my_reports(session, context, reporter, cursor, limit)


@router.get(
    "/me/reports/{report_id}",
    operation_id="get_my_report",
    summary="我的一条举报",
    responses=error_responses(401, 404, 422),
)
async def get_my_report(
    report_id: uuid.UUID, reporter: CurrentReporter, session: DbSession, context: Context
) -> ReportDetail:
    return await service.get_my_report(session, context, reporter, report_id)


@router.post(
    "/reports/lookup",
    operation_id="lookup_report",
    summary="凭举报编号和查询码查询进度",
    responses=error_responses(404, 422),
)
async def lookup_report(body: ReportLookupRequest, session: DbSession, context: Context) -> ReportLookupResult:
    return await service.lookup_report(session, context, body.number, body.query_code)


@router.get("/categories", operation_id="list_categories", summary="行业领域")
async def list_categories(session: DbSession) -> list[CategoryRef]:
    rows = await session.execute(
        select(Category.code, Category.name).where(Category.is_active).order_by(Category.sort_order, Category.code)
    )
    return [CategoryRef(code=code, name=name) for code, name in rows]
