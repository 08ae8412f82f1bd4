"""Demo data for `make run`: a few departments and one staff account per role, with known passwords.

Development only: the CLI refuses to seed outside the development environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.identity import service as identity_service
from app.identity.models import StaffUser
from app.identity.roles import Role

DEMO_DEPARTMENTS = [
    ("441881-emergency", "英德市应急管理局"),
    ("441881-fire", "英德市消防救援大队"),
    ("441881-housing", "英德市住房和城乡建设局"),
]


@dataclass(frozen=True)
class DemoStaff:
    username: str
    password: str
    display_name: str
    role: Role
    department_code: str | None


DEMO_STAFF = [
    DemoStaff("hotline", "demo-hotline-12350", "12350 接线员（演示）", Role.HOTLINE_OPERATOR, None),
    DemoStaff("dispatcher", "demo-dispatcher", "安委办受理员（演示）", Role.DISPATCHER, None),
    DemoStaff("inspector", "demo-inspector", "应急局核查员（演示）", Role.INSPECTOR, "441881-emergency"),
    DemoStaff("fire-inspector", "demo-fire-inspector", "消防核查员（演示）", Role.INSPECTOR, "441881-fire"),
    DemoStaff("head", "demo-head", "应急局负责人（演示）", Role.DEPARTMENT_HEAD, "441881-emergency"),
    DemoStaff("auditor", "demo-auditor", "奖励审核员（演示）", Role.REWARD_AUDITOR, None),
    DemoStaff("admin", "demo-admin", "管理员（演示）", Role.ADMIN, None),
]


async def seed_demo(session: AsyncSession) -> list[DemoStaff]:
    """Idempotent: running it again creates nothing twice."""
    for code, name in DEMO_DEPARTMENTS:
        await identity_service.ensure_department(session, code, name)
    existing = set((await session.scalars(select(StaffUser.username))).all())
    for staff in DEMO_STAFF:
        if staff.username in existing:
            continue
        await identity_service.create_staff(
            session,
            username=staff.username,
            password=staff.password,
            display_name=staff.display_name,
            role=staff.role,
            department_code=staff.department_code,
        )
    return DEMO_STAFF
