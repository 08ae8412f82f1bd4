"""Log in reporters (WeChat) and staff (password); create staff accounts."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.errors import UnknownDepartment
from app.catalog.models import Department
from app.core.context import AppContext
from app.core.db import utcnow
from app.core.security import hash_secret, verify_secret
from app.identity.errors import (
    BadCredentials,
    DepartmentRequired,
    StaffUsernameTaken,
)
from app.identity.models import Reporter, StaffUser
from app.identity.roles import DEPARTMENT_ROLES, ROLE_NAMES, Role
from app.identity.schemas import ReporterLoginResponse, StaffLoginResponse, StaffProfile
from app.identity.wechat import WeChatSession

OPENID_PURPOSE = "openid"


async def login_reporter(session: AsyncSession, context: AppContext, wechat: WeChatSession) -> ReporterLoginResponse:
    reporter = await find_or_create_reporter(session, context, wechat.openid)
    token, expires_at = context.tokens.issue(
        f"reporter:{reporter.id}",
        context.settings.security.reporter_audience,
        timedelta(minutes=context.settings.security.reporter_token_minutes),
    )
    return ReporterLoginResponse(access_token=token, expires_at=expires_at, reporter_id=reporter.id)


async def find_or_create_reporter(session: AsyncSession, context: AppContext, openid: str) -> Reporter:
    index = context.blind_index.digest(openid, OPENID_PURPOSE)
    reporter = await session.scalar(select(Reporter).where(Reporter.openid_index == index))
    now = utcnow()
    if reporter is None:
        reporter = Reporter(openid_index=index, openid_encrypted=context.cipher.encrypt(openid), last_login_at=now)
        try:
            async with session.begin_nested():
                session.add(reporter)
        except IntegrityError:
            # A first login raced with another one for the same openid: the other one made the row.
            reporter = await session.scalar(select(Reporter).where(Reporter.openid_index == index))
            assert reporter is not None
    reporter.last_login_at = now
    await session.flush()
    return reporter


async def login_staff(session: AsyncSession, context: AppContext, username: str, password: str) -> StaffLoginResponse:
    staff = await session.scalar(select(StaffUser).where(StaffUser.username == username))
    valid = verify_secret(staff.password_hash if staff else None, password)
    if staff is None or not valid or not staff.is_active:
        raise BadCredentials()
    token, expires_at = context.tokens.issue(
        f"staff:{staff.id}",
        context.settings.security.staff_audience,
        timedelta(minutes=context.settings.security.staff_token_minutes),
        role=staff.role,
    )
    return StaffLoginResponse(access_token=token, expires_at=expires_at, staff=staff_profile(staff))


def staff_profile(staff: StaffUser) -> StaffProfile:
    role = Role(staff.role)
    return StaffProfile(
        id=staff.id,
        username=staff.username,
        display_name=staff.display_name,
        role=role,
        role_name=ROLE_NAMES[role],
        department_id=staff.department_id,
    )


async def create_staff(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    display_name: str,
    role: Role,
    department_code: str | None = None,
) -> StaffUser:
    department_id = await _department_id(session, department_code)
    if role in DEPARTMENT_ROLES and department_id is None:
        raise DepartmentRequired()
    if await session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise StaffUsernameTaken()
    staff = StaffUser(
        username=username,
        display_name=display_name,
        password_hash=hash_secret(password),
        role=role.value,
        department_id=department_id,
    )
    session.add(staff)
    await session.flush()
    return staff


async def _department_id(session: AsyncSession, code: str | None) -> uuid.UUID | None:
    if code is None:
        return None
    department_id = await session.scalar(select(Department.id).where(Department.code == code))
    if department_id is None:
        raise UnknownDepartment(field="department_code")
    return department_id
