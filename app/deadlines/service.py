"""Deadlines of cases on the official calendar: which policy applies, opening, meeting, extending, recomputing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.errors import UnknownCategory, UnknownDepartment
from app.catalog.models import Category, Department
from app.core import audit
from app.core.context import AppContext
from app.core.db import utcnow
from app.deadlines.calendar import (
    DayCount,
    Deadline,
    WorkingCalendar,
    YearSchedule,
    compute_deadline,
    extend,
    parse_year_schedule,
)
from app.deadlines.models import CalendarYear, CaseDeadline, DeadlinePolicy
from app.deadlines.schemas import DeadlinePolicyBody, DeadlinePolicyView
from app.routing import service as reference_versions

ACCEPTANCE, VERIFICATION, RECTIFICATION = "acceptance", "verification", "rectification"
STEPS = (ACCEPTANCE, VERIFICATION, RECTIFICATION)
# Used where no policy row applies. Verification: 60 days by law (安全生产领域举报奖励办法, 自受理之日起 60 日内办结).
DEFAULTS: dict[str, tuple[int, DayCount]] = {
    ACCEPTANCE: (3, DayCount.WORKING),
    VERIFICATION: (60, DayCount.CALENDAR),
    RECTIFICATION: (30, DayCount.CALENDAR),
}


async def working_calendar(session: AsyncSession) -> WorkingCalendar:
    rows = (await session.scalars(select(CalendarYear))).all()
    return WorkingCalendar(
        parse_year_schedule({"year": r.year, "holidays": r.holidays, "workdays": r.workdays}) for r in rows
    )


async def rule_for(
    session: AsyncSession, step: str, department_id: uuid.UUID | None, category_code: str | None
) -> tuple[int, DayCount]:
    """The most specific policy: department and category, then department, then category, then any."""
    rows = (await session.scalars(select(DeadlinePolicy).where(DeadlinePolicy.step == step))).all()
    return _most_specific(
        {(row.department_id, row.category_code): (row.days, DayCount(row.count)) for row in rows},
        step,
        department_id,
        category_code,
    )


def _most_specific(
    by_scope: dict[tuple[uuid.UUID | None, str | None], tuple[int, DayCount]],
    step: str,
    department_id: uuid.UUID | None,
    category_code: str | None,
) -> tuple[int, DayCount]:
    for wanted in ((department_id, category_code), (department_id, None), (None, category_code), (None, None)):
        found = by_scope.get(wanted)
        if found is not None:
            return found
    return DEFAULTS[step]


@dataclass(frozen=True)
class DeadlineReference:
    """The policies and the calendar as of one reference-data version, kept in memory by each process.

    Policies and calendar years are reference data: changing either appends a reference change (see
    :func:`set_policy` and :func:`load_year`), so a process that reads the current version (as routing does at every
    submission) knows at once whether this copy is still the truth.
    """

    version: int
    policies: dict[str, dict[tuple[uuid.UUID | None, str | None], tuple[int, DayCount]]]
    calendar: WorkingCalendar

    def rule_for(self, step: str, department_id: uuid.UUID | None, category_code: str | None) -> tuple[int, DayCount]:
        return _most_specific(self.policies.get(step, {}), step, department_id, category_code)


CACHE_KEY = "deadlines"


async def reference_at(session: AsyncSession, context: AppContext, version: int) -> DeadlineReference:
    """The policies and calendar of reference version ``version`` (the current one, which the caller has read)."""
    cached: DeadlineReference | None = context.caches.get(CACHE_KEY)
    if cached is not None and cached.version == version:
        return cached
    policies: dict[str, dict[tuple[uuid.UUID | None, str | None], tuple[int, DayCount]]] = {}
    for row in (await session.scalars(select(DeadlinePolicy))).all():
        policies.setdefault(row.step, {})[(row.department_id, row.category_code)] = (row.days, DayCount(row.count))
    fresh = DeadlineReference(version, policies, await working_calendar(session))
    if cached is None or cached.version < version:
        context.caches[CACHE_KEY] = fresh
    return fresh


def first_deadline(
    reference: DeadlineReference, report_id: uuid.UUID, step: str, start: datetime, days: int, count: DayCount
) -> CaseDeadline:
    """The clock of a step of a case that has none yet (a new report's acceptance): a row to add, no reads."""
    deadline = compute_deadline(start, days, count, reference.calendar)
    return CaseDeadline(
        report_id=report_id,
        step=step,
        started_at=start,
        days=days,
        count=count.value,
        due_at=deadline.due_at,
        provisional=deadline.provisional,
        extended_days=0,
    )


async def open_deadline(
    session: AsyncSession, report_id: uuid.UUID, step: str, start: datetime, days: int, count: DayCount
) -> CaseDeadline:
    """Start (or restart) the clock of a step."""
    deadline = compute_deadline(start, days, count, await working_calendar(session))
    row = await session.scalar(
        select(CaseDeadline).where(CaseDeadline.report_id == report_id, CaseDeadline.step == step)
    )
    if row is None:
        row = CaseDeadline(report_id=report_id, step=step)
        session.add(row)
    row.started_at, row.days, row.count = start, days, count.value
    row.due_at, row.provisional = deadline.due_at, deadline.provisional
    row.extended_days, row.extension_reason, row.met_at, row.escalated_at = 0, None, None, None
    await session.flush()
    return row


async def meet(
    session: AsyncSession, report_id: uuid.UUID, step: str, at: datetime
) -> tuple[datetime, datetime] | None:
    """Mark the step's open deadline met; answers when it started and was due, or None if none was open."""
    row = (
        await session.execute(
            update(CaseDeadline)
            .where(CaseDeadline.report_id == report_id, CaseDeadline.step == step, CaseDeadline.met_at.is_(None))
            .values(met_at=at)
            .returning(CaseDeadline.started_at, CaseDeadline.due_at)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def extend_deadline(
    session: AsyncSession, report_id: uuid.UUID, step: str, extra_days: int, reason: str
) -> CaseDeadline | None:
    row = await session.scalar(
        select(CaseDeadline).where(CaseDeadline.report_id == report_id, CaseDeadline.step == step)
    )
    if row is None:
        return None
    current = Deadline(row.due_at, row.provisional, row.days, DayCount(row.count))
    extended = extend(current, extra_days, await working_calendar(session))
    row.due_at, row.provisional, row.days = extended.due_at, extended.provisional, extended.days
    row.extended_days, row.extension_reason, row.escalated_at = row.extended_days + extra_days, reason, None
    await session.flush()
    return row


async def load_year(session: AsyncSession, schedule: YearSchedule, actor: str) -> int:
    """Store a year's schedule and recompute every open provisional deadline; answers how many changed."""
    row = await session.get(CalendarYear, schedule.year)
    if row is None:
        row = CalendarYear(year=schedule.year)
        session.add(row)
    row.holidays = sorted(d.isoformat() for d in schedule.holidays)
    row.workdays = sorted(d.isoformat() for d in schedule.workdays)
    row.loaded_by, row.loaded_at = actor, utcnow()
    audit.record(
        session,
        actor_id=actor,
        actor_role="admin",
        action="load_calendar_year",
        target_type="calendar",
        target_id=str(schedule.year),
    )
    await reference_versions.new_version(session, "calendar", f"载入 {schedule.year} 年节假日安排", actor)
    await session.flush()
    calendar = await working_calendar(session)
    changed = 0
    provisional = (
        await session.scalars(select(CaseDeadline).where(CaseDeadline.provisional, CaseDeadline.met_at.is_(None)))
    ).all()
    for deadline in provisional:
        base = compute_deadline(
            deadline.started_at, deadline.days - deadline.extended_days, DayCount(deadline.count), calendar
        )
        fresh = extend(base, deadline.extended_days, calendar) if deadline.extended_days else base
        if (fresh.due_at, fresh.provisional) != (deadline.due_at, deadline.provisional):
            changed += 1
        deadline.due_at, deadline.provisional = fresh.due_at, fresh.provisional
    await session.flush()
    return changed


async def set_policy(session: AsyncSession, body: DeadlinePolicyBody, actor: str) -> DeadlinePolicyView:
    department_id = None
    if body.department_code is not None:
        department_id = await session.scalar(select(Department.id).where(Department.code == body.department_code))
        if department_id is None:
            raise UnknownDepartment(field="department_code")
    if body.category_code is not None and await session.get(Category, body.category_code) is None:
        raise UnknownCategory(field="category_code")
    row = await session.scalar(
        select(DeadlinePolicy).where(
            DeadlinePolicy.step == body.step,
            DeadlinePolicy.department_id.is_(department_id)
            if department_id is None
            else DeadlinePolicy.department_id == department_id,
            DeadlinePolicy.category_code.is_(None)
            if body.category_code is None
            else DeadlinePolicy.category_code == body.category_code,
        )
    )
    if row is None:
        row = DeadlinePolicy(
            step=body.step, department_id=department_id, category_code=body.category_code, created_at=utcnow()
        )
        session.add(row)
    row.days, row.count = body.days, body.count
    audit.record(
        session,
        actor_id=actor,
        actor_role="admin",
        action="set_deadline_policy",
        target_type="deadline_policy",
        target_id=body.step,
        detail=body.model_dump(),
    )
    scope = "、".join(x for x in (body.department_code, body.category_code) if x) or "全部"
    await reference_versions.new_version(
        session, "deadline_policies", f"期限规则 {body.step}（{scope}）：{body.days} 天（{body.count}）", actor
    )
    await session.flush()
    return _policy_view(row)


async def list_policies(session: AsyncSession) -> list[DeadlinePolicyView]:
    rows = (await session.scalars(select(DeadlinePolicy).order_by(DeadlinePolicy.step))).all()
    return [_policy_view(r) for r in rows]


def _policy_view(row: DeadlinePolicy) -> DeadlinePolicyView:
    return DeadlinePolicyView(
        id=row.id,
        step=row.step,
        department_id=row.department_id,
        category_code=row.category_code,
        days=row.days,
        count=row.count,
    )
