"""Demo data for `make run`: 英德市 (adcode 441881) inside the real Qingyuan boundaries, its departments under
三管三必须, a routing rule for every category, and one staff account per role with known passwords.

The township polygons are illustrative, drawn for the demo inside the real county outline, and are marked so in
the data (``illustrative``) and in their names (（示意）). Development only: the CLI refuses to seed elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Department
from app.core.context import AppContext
from app.geo.datum import Datum
from app.identity import service as identity_service
from app.identity.models import StaffUser
from app.identity.roles import Role
from app.routing import service as routing_service
from app.routing.models import Jurisdiction, RoutingRule

DATA = Path(__file__).resolve().parent / "data"
ACTOR = "demo-seed"
YINGDE = "441881"
YINGCHENG = "441881001"  # 英城街道（示意）

# (code, name) of the county's departments that lead for some category (reference/domain-research.md §4).
DEMO_DEPARTMENTS = [
    ("441881-emergency", "英德市应急管理局"),
    ("441881-fire", "英德市消防救援大队"),
    ("441881-housing", "英德市住房和城乡建设局"),
    ("441881-traffic-police", "英德市公安局交通警察大队"),
    ("441881-transport", "英德市交通运输局"),
    ("441881-agriculture", "英德市农业农村局"),
    ("441881-market", "英德市市场监督管理局"),
    ("441881-education", "英德市教育局"),
    ("441881-culture-tourism", "英德市文化广电旅游体育局"),
    ("441881-commerce", "英德市科工商务局"),
    ("441881-yingcheng", "英城街道办事处（示意）"),
]

# Category → lead department in 英德市 under 三管三必须. 其他 goes to 应急管理局, whose 安委办 coordinates.
DEMO_RULES = {
    "hazardous_chemicals": "441881-emergency",
    "fireworks": "441881-emergency",
    "coal_mine": "441881-emergency",
    "non_coal_mine": "441881-emergency",
    "construction": "441881-housing",
    "road_traffic": "441881-traffic-police",
    "waterway_traffic": "441881-transport",
    "gas": "441881-housing",
    "fire_safety": "441881-fire",
    "tourism": "441881-culture-tourism",
    "campus": "441881-education",
    "commerce": "441881-commerce",
    "special_equipment": "441881-market",
    "self_built_housing": "441881-housing",
    "e_bike_charging": "441881-fire",
    "confined_space": "441881-emergency",
    "industry_dust": "441881-emergency",
    "metallurgy": "441881-emergency",
    "agricultural_machinery": "441881-agriculture",
    "fishing_vessels": "441881-agriculture",
    "other": "441881-emergency",
}
# A township-level rule, to show that the most specific rule wins: e-bike charging in 英城街道 goes to the
# street office (属地管理), everywhere else in 英德 to the fire brigade.
DEMO_LOCAL_RULES = [("e_bike_charging", YINGCHENG, "441881-yingcheng")]


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
    DemoStaff("housing-inspector", "demo-housing-inspector", "住建核查员（演示）", Role.INSPECTOR, "441881-housing"),
    DemoStaff("head", "demo-head", "应急局负责人（演示）", Role.DEPARTMENT_HEAD, "441881-emergency"),
    DemoStaff("auditor", "demo-auditor", "奖励审核员（演示）", Role.REWARD_AUDITOR, None),
    # Approval and payment are separate duties: the payer is a second reward auditor.
    DemoStaff("payer", "demo-payer", "奖励发放员（演示）", Role.REWARD_AUDITOR, None),
    DemoStaff("fire-head", "demo-fire-head", "消防大队负责人（演示）", Role.DEPARTMENT_HEAD, "441881-fire"),
    DemoStaff("admin", "demo-admin", "管理员（演示）", Role.ADMIN, None),
]


async def seed_demo(session: AsyncSession, context: AppContext) -> list[DemoStaff]:
    """Idempotent: running it again creates nothing twice."""
    await _jurisdictions(session, context)
    existing = set((await session.scalars(select(Department.code))).all())
    for code, name in DEMO_DEPARTMENTS:
        if code not in existing:
            await routing_service.create_department(
                session, code, name, YINGCHENG if "yingcheng" in code else YINGDE, ACTOR
            )
    await _rules(session)
    await _staff(session)
    return DEMO_STAFF


async def _jurisdictions(session: AsyncSession, context: AppContext) -> None:
    if await session.get(Jurisdiction, YINGDE) is not None:
        return
    await routing_service.import_jurisdictions(
        session,
        context,
        (DATA / "qingyuan.geojson").read_bytes(),
        datum=Datum.GCJ02,
        illustrative=False,
        actor=ACTOR,
        source="qingyuan.geojson",
    )
    await routing_service.import_jurisdictions(
        session,
        context,
        (DATA / "yingde-townships-illustrative.geojson").read_bytes(),
        datum=Datum.GCJ02,
        illustrative=True,
        actor=ACTOR,
        source="yingde-townships-illustrative.geojson",
    )


async def _rules(session: AsyncSession) -> None:
    if await session.scalar(select(RoutingRule.id).limit(1)) is not None:
        return
    wanted = [(category, YINGDE, department) for category, department in DEMO_RULES.items()]
    for category, place, department in [*wanted, *DEMO_LOCAL_RULES]:
        await routing_service.create_rule(
            session,
            category_code=category,
            jurisdiction_adcode=place,
            department_code=department,
            priority=0,
            actor=ACTOR,
        )


async def _staff(session: AsyncSession) -> None:
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
