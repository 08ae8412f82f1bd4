"""Staff views of cases, the triage queue, and the two routing commands after submission: a dispatcher's
re-route and a department's hand-back. Every change appends a routing decision with its reason."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.errors import UnknownCategory, UnknownDepartment
from app.catalog.models import Category, Department
from app.core.context import AppContext
from app.core.pagination import encode_cursor, newest_first
from app.geo.datum import Datum
from app.identity.dependencies import StaffPrincipal
from app.identity.roles import Permission, has_permission
from app.intake import service as intake_service
from app.intake.models import Report
from app.intake.schemas import CategoryRef, Enterprise, HazardKind, Location
from app.routing import service as routing_service
from app.routing.models import RoutingDecision
from app.routing.rules import RoutingReason
from app.workflow.errors import CaseNotFound, NothingToReroute, NotYourDepartment
from app.workflow.schemas import CasePage, CaseSummary, CaseView, DepartmentRef, HandBackRequest, RerouteRequest


async def scoped_case(
    session: AsyncSession, staff: StaffPrincipal, report_id: uuid.UUID, *, for_update: bool = False
) -> Report:
    """The report, if this staff member may see it; otherwise exactly what a missing report looks like."""
    query = select(Report).where(Report.id == report_id)
    if not has_permission(staff.role, Permission.VIEW_ALL_REPORTS):
        query = query.where(Report.department_id == staff.department_id, Report.department_id.is_not(None))
    report = await session.scalar(query.with_for_update() if for_update else query)
    if report is None:
        raise CaseNotFound()
    return report


async def case_view(session: AsyncSession, context: AppContext, staff: StaffPrincipal, report: Report) -> CaseView:
    category_name = await session.scalar(select(Category.name).where(Category.code == report.category_code))
    department = await session.get(Department, report.department_id) if report.department_id else None
    dispatcher_view = has_permission(staff.role, Permission.VIEW_ALL_REPORTS)
    return CaseView(
        id=report.id,
        number=report.number,
        state=report.state,
        category=CategoryRef(code=report.category_code, name=category_name or report.category_code),
        hazard_kind=HazardKind(report.hazard_kind),
        description=report.description,
        location=Location(
            longitude=report.longitude,
            latitude=report.latitude,
            datum=Datum(report.datum),
            accuracy_m=report.accuracy_m,
            address=report.address,
        ),
        observed_at=report.observed_at,
        submitted_at=report.created_at,
        channel=report.channel,
        enterprise=(
            Enterprise(name=report.enterprise_name, credit_code=report.enterprise_credit_code)
            if report.enterprise_name
            else None
        ),
        department=DepartmentRef(id=department.id, name=department.name) if department else None,
        jurisdiction_adcode=report.jurisdiction_adcode,
        photos=await intake_service.report_photos(session, context, report.id),
        routing=await routing_service.decisions_of(session, report.id),
        reporter_is_employee=report.reporter_is_employee if dispatcher_view else None,
        flags=list(report.flags) if dispatcher_view else None,
    )


async def triage_queue(session: AsyncSession, cursor: str | None, limit: int) -> CasePage:
    latest = (
        select(RoutingDecision.report_id, func.max(RoutingDecision.created_at).label("at"))
        .group_by(RoutingDecision.report_id)
        .subquery()
    )
    query = (
        select(Report, Category.name, RoutingDecision)
        .join(Category, Category.code == Report.category_code)
        .join(latest, latest.c.report_id == Report.id)
        .join(RoutingDecision, (RoutingDecision.report_id == Report.id) & (RoutingDecision.created_at == latest.c.at))
        .where(Report.department_id.is_(None))
    )
    rows = (await session.execute(newest_first(query, Report.created_at, Report.id, cursor, limit))).all()
    page = rows[:limit]
    items = [
        CaseSummary(
            id=r.id,
            number=r.number,
            category=CategoryRef(code=r.category_code, name=name),
            submitted_at=r.created_at,
            department=None,
            routing_reason=d.reason,
            routing_explanation=d.explanation,
            ambiguous=d.ambiguous,
        )
        for r, name, d in page
    ]
    next_cursor = encode_cursor(page[-1][0].created_at, page[-1][0].id) if len(rows) > limit else None
    return CasePage(items=items, next_cursor=next_cursor)


async def reroute(
    session: AsyncSession, context: AppContext, staff: StaffPrincipal, report: Report, body: RerouteRequest
) -> None:
    if body.category is None and body.department_code is None:
        raise NothingToReroute()
    if body.category is not None:
        if not await session.scalar(select(Category.is_active).where(Category.code == body.category)):
            raise UnknownCategory(field="category")
        report.category_code = body.category
    if body.department_code is not None:
        outcome = await _manual_outcome(session, report, body.department_code, body.reason)
    else:
        outcome = await routing_service.route(
            session, context, report.category_code, report.longitude, report.latitude, Datum(report.datum)
        )
    report.department_id = outcome.department_id
    session.add(routing_service.decision_row(report.id, outcome, "reroute", staff.staff_id, body.reason))
    await session.flush()


async def _manual_outcome(
    session: AsyncSession, report: Report, department_code: str, reason: str
) -> routing_service.RoutingOutcome:
    department = await session.scalar(
        select(Department).where(Department.code == department_code, Department.is_active)
    )
    if department is None:
        raise UnknownDepartment(field="department_code")
    version = await routing_service.current_version(session)
    return routing_service.RoutingOutcome(
        category_code=report.category_code,
        reason=RoutingReason.MANUAL,
        explanation=f"安委办改派至 {department.name}：{reason}",
        department_id=department.id,
        department_name=department.name,
        rule_id=None,
        reference_version=version,
    )


async def hand_back(session: AsyncSession, staff: StaffPrincipal, report: Report, body: HandBackRequest) -> None:
    if report.department_id is None or report.department_id != staff.department_id:
        raise NotYourDepartment()
    department = await session.get(Department, report.department_id)
    name = department.name if department else "承办部门"
    outcome = routing_service.RoutingOutcome(
        category_code=report.category_code,
        reason=RoutingReason.HANDED_BACK,
        explanation=f"{name} 退回安委办：{body.reason}",
        department_id=None,
        department_name=None,
        rule_id=None,
        reference_version=await routing_service.current_version(session),
    )
    report.department_id = None
    session.add(routing_service.decision_row(report.id, outcome, "hand_back", staff.staff_id, body.reason))
    await session.flush()
