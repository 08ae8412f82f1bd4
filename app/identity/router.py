from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.core.context import AppContext, get_context
from app.core.http import error_responses
from app.core.session import DbSession
from app.identity import service
from app.identity.dependencies import CurrentStaff
from app.identity.models import StaffUser
from app.identity.schemas import (
    ReporterLoginResponse,
    StaffLoginRequest,
    StaffLoginResponse,
    StaffProfile,
    WeChatLoginRequest,
)
from app.identity.wechat import WeChatAuthClient

router = APIRouter(prefix="/v1/auth", tags=["identity"])
Context = Annotated[AppContext, Depends(get_context)]


@router.post(
    "/wechat/login",
    operation_id="login_reporter_wechat",
    summary="举报人微信登录",
    responses=error_responses(401, 422, 503),
)
async def login_reporter_wechat(
    body: WeChatLoginRequest, session: DbSession, context: Context
) -> ReporterLoginResponse:
    wechat = await WeChatAuthClient(context.settings.wechat, context.http).code_to_session(body.code)
    return await service.login_reporter(session, context, wechat)


@router.post(
    "/staff/login",
    operation_id="login_staff",
    summary="工作人员登录",
    responses=error_responses(401, 422),
)
async def login_staff(body: StaffLoginRequest, session: DbSession, context: Context) -> StaffLoginResponse:
    return await service.login_staff(session, context, body.username, body.password)


@router.get("/staff/me", operation_id="get_staff_me", summary="当前工作人员", responses=error_responses(401))
async def get_staff_me(staff: CurrentStaff, session: DbSession) -> StaffProfile:
    row = await session.get(StaffUser, staff.staff_id)
    assert row is not None
    return service.staff_profile(row)
