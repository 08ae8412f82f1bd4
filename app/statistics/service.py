"""The dashboard and the campaign statistics, computed in SQL.

Every figure is over a *cohort*: the reports received (submitted) in the chosen period, in China time, narrowed by
category, department and place, and scoped like every other staff query (a department sees its own cases). Rates
and durations of that cohort are what leaders ask of a campaign ("of what we received in June, how much was
verified on time?"); money is the net of the ledger for the cohort's cases.

Durations come from the case deadlines, which record when each step started and when it was met (受理: submission →
acceptance; 核查: acceptance → verification; 整改: order → reported done; and 办结: submission → closure).
Percentiles are nearest-rank (the smallest value with at least p of the values at or below it), the same on both
databases: ``percentile_disc`` on PostgreSQL, a window function on SQLite.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Float, Select, and_, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.catalog.models import Category, Department
from app.core.db import is_postgresql, utcnow
from app.deadlines.calendar import CHINA_TZ
from app.deadlines.models import CaseDeadline
from app.identity.dependencies import StaffPrincipal
from app.identity.roles import Permission, has_permission
from app.intake.models import Report
from app.rewards.models import Reward, RewardLedgerEntry
from app.routing.models import Jurisdiction
from app.statistics.schemas import (
    CampaignRow,
    CampaignTable,
    CountRow,
    Counts,
    DurationRow,
    Durations,
    OverdueRow,
    Overdues,
    Rates,
    RewardRow,
    RewardTotalsByDepartment,
)
from app.workflow.models import CaseVerification, Rectification
from app.workflow.transitions import OPEN

# Not decided on acceptance: still waiting, or merged into another (duplicates follow their primary).
UNDECIDED = ("submitted", "merged")
NOT_ACCEPTED = ("submitted", "rejected", "merged")
TRUE_OUTCOMES = ("true", "partly_true")
DIMENSIONS = ("period", "category", "department", "jurisdiction", "state")
GRANULARITIES = ("day", "week", "month")


@dataclass(frozen=True)
class StatsFilter:
    date_from: date
    date_to: date
    category: str | None = None
    department_id: uuid.UUID | None = None
    jurisdiction: str | None = None  # an adcode: the place and everything below it


def _bounds(f: StatsFilter) -> tuple[datetime, datetime]:
    return (
        datetime.combine(f.date_from, time.min, CHINA_TZ),
        datetime.combine(f.date_to, time(23, 59, 59, 999999), CHINA_TZ),
    )


def cohort(query: Select[Any], staff: StaffPrincipal, f: StatsFilter) -> Select[Any]:
    """``query`` over reports narrowed to the cohort and to what ``staff`` may see."""
    start, end = _bounds(f)
    conditions: list[ColumnElement[bool]] = [Report.created_at >= start, Report.created_at <= end]
    if not has_permission(staff.role, Permission.VIEW_ALL_REPORTS):
        conditions.append(Report.department_id == staff.department_id)
    if f.category:
        conditions.append(Report.category_code == f.category)
    if f.department_id:
        conditions.append(Report.department_id == f.department_id)
    if f.jurisdiction:
        conditions.append(Report.jurisdiction_adcode.startswith(f.jurisdiction, autoescape=True))
    return query.where(and_(*conditions))


def _period(session: AsyncSession, granularity: str) -> ColumnElement[str]:
    if is_postgresql(session):
        local = func.timezone("Asia/Shanghai", Report.created_at)
        if granularity == "week":
            return func.to_char(func.date_trunc("week", local), "YYYY-MM-DD")
        return func.to_char(local, "YYYY-MM" if granularity == "month" else "YYYY-MM-DD")
    if granularity == "week":  # Monday of the week: the next Sunday (or today), six days back
        return func.date(Report.created_at, "+8 hours", "weekday 0", "-6 days")
    return func.strftime("%Y-%m" if granularity == "month" else "%Y-%m-%d", Report.created_at, "+8 hours")


def _seconds(session: AsyncSession, later: Any, earlier: Any) -> ColumnElement[float]:
    if is_postgresql(session):
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


# --- counts ----------------------------------------------------------------------------------------------------------


async def counts(
    session: AsyncSession, staff: StaffPrincipal, f: StatsFilter, group_by: list[str], granularity: str
) -> Counts:
    columns: dict[str, ColumnElement[Any]] = {
        "period": _period(session, granularity),
        "category": Report.category_code,
        "department": Report.department_id,
        "jurisdiction": Report.jurisdiction_adcode,
        "state": Report.state,
    }
    chosen = [columns[d].label(d) for d in group_by]
    query = cohort(select(*chosen, func.count().label("n")).select_from(Report), staff, f)
    if chosen:
        query = query.group_by(*chosen).order_by(*chosen)
    rows = (await session.execute(query)).all()
    names = await _names(session)
    items = []
    for row in rows:
        values = dict(zip(group_by, row[:-1], strict=True))
        items.append(
            CountRow(
                period=values.get("period"),
                category=values.get("category"),
                category_name=names["category"].get(values.get("category")),
                department_id=values.get("department"),
                department_name=names["department"].get(values.get("department")),
                jurisdiction=values.get("jurisdiction"),
                jurisdiction_name=names["jurisdiction"].get(values.get("jurisdiction")),
                state=values.get("state"),
                count=int(row[-1]),
            )
        )
    return Counts(group_by=group_by, granularity=granularity, total=sum(i.count for i in items), rows=items)


async def _names(session: AsyncSession) -> dict[str, dict[Any, str]]:
    """The small reference tables, to label rows: categories, departments, jurisdictions (township and up)."""
    return {
        "category": dict((await session.execute(select(Category.code, Category.name))).all()),
        "department": dict((await session.execute(select(Department.id, Department.name))).all()),
        "jurisdiction": dict((await session.execute(select(Jurisdiction.adcode, Jurisdiction.name))).all()),
    }


# --- rates -----------------------------------------------------------------------------------------------------------


def _tally(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def rates(session: AsyncSession, staff: StaffPrincipal, f: StatsFilter) -> Rates:
    report_row = (
        await session.execute(
            cohort(
                select(
                    func.count(),
                    _tally(Report.state.not_in(UNDECIDED)),
                    _tally(Report.state.not_in(NOT_ACCEPTED)),
                    _tally(Report.state == "closed"),
                    func.count(Report.satisfaction_score),
                    _tally(Report.satisfaction_score >= 4),
                    func.avg(cast(Report.satisfaction_score, Float)),
                ).select_from(Report),
                staff,
                f,
            )
        )
    ).one()
    received, decided, accepted, closed, rated, satisfied, mean_score = report_row
    verification_row = (
        await session.execute(
            cohort(
                select(func.count(), _tally(CaseDeadline.met_at <= CaseDeadline.due_at))
                .select_from(CaseDeadline)
                .join(Report, Report.id == CaseDeadline.report_id)
                .where(CaseDeadline.step == "verification", CaseDeadline.met_at.is_not(None)),
                staff,
                f,
            )
        )
    ).one()
    verified, on_time = verification_row
    return Rates(
        received=int(received),
        accepted=int(accepted),
        verified=int(verified),
        verified_on_time=int(on_time),
        closed=int(closed),
        rated=int(rated),
        acceptance_rate=_share(int(accepted), int(decided)),
        on_time_verification_rate=_share(int(on_time), int(verified)),
        closure_rate=_share(int(closed), int(accepted)),
        satisfaction_rate=_share(int(satisfied), int(rated)),
        mean_satisfaction=round(float(mean_score), 2) if mean_score is not None else None,
    )


# --- durations -------------------------------------------------------------------------------------------------------


async def durations(session: AsyncSession, staff: StaffPrincipal, f: StatsFilter) -> Durations:
    seconds = _seconds(session, CaseDeadline.met_at, CaseDeadline.started_at)
    steps = cohort(
        select(CaseDeadline.step.label("step"), seconds.label("seconds"))
        .select_from(CaseDeadline)
        .join(Report, Report.id == CaseDeadline.report_id)
        .where(CaseDeadline.met_at.is_not(None)),
        staff,
        f,
    )
    closure = cohort(
        select(
            literal("closure").label("step"), _seconds(session, Report.finished_at, Report.created_at).label("seconds")
        )
        .select_from(Report)
        .where(Report.state == "closed", Report.finished_at.is_not(None)),
        staff,
        f,
    )
    spans = steps.union_all(closure).subquery()
    if is_postgresql(session):
        query = select(
            spans.c.step,
            func.count(),
            func.percentile_disc(0.5).within_group(spans.c.seconds),
            func.percentile_disc(0.9).within_group(spans.c.seconds),
        ).group_by(spans.c.step)
    else:
        ranked = select(
            spans.c.step,
            spans.c.seconds,
            func.row_number().over(partition_by=spans.c.step, order_by=spans.c.seconds).label("rank"),
            func.count().over(partition_by=spans.c.step).label("n"),
        ).subquery()
        query = select(
            ranked.c.step,
            func.max(ranked.c.n),
            func.min(case((ranked.c.rank >= ranked.c.n * 0.5, ranked.c.seconds))),
            func.min(case((ranked.c.rank >= ranked.c.n * 0.9, ranked.c.seconds))),
        ).group_by(ranked.c.step)
    found = {step: (n, p50, p90) for step, n, p50, p90 in (await session.execute(query)).all()}
    order = ("acceptance", "verification", "rectification", "closure")
    return Durations(
        steps=[
            DurationRow(
                step=step,
                count=int(found[step][0]) if step in found else 0,
                median_hours=round(float(found[step][1]) / 3600, 2) if step in found else None,
                p90_hours=round(float(found[step][2]) / 3600, 2) if step in found else None,
            )
            for step in order
        ]
    )


# --- overdue ---------------------------------------------------------------------------------------------------------


async def overdue(session: AsyncSession, staff: StaffPrincipal, f: StatsFilter) -> Overdues:
    """Deadlines passed and not met, of open cases of the cohort, by department and step."""
    query = cohort(
        select(Report.department_id, CaseDeadline.step, func.count(), func.min(CaseDeadline.due_at))
        .select_from(CaseDeadline)
        .join(Report, Report.id == CaseDeadline.report_id)
        .where(
            CaseDeadline.met_at.is_(None),
            CaseDeadline.due_at < utcnow(),
            Report.state.in_([s.value for s in OPEN]),
        )
        .group_by(Report.department_id, CaseDeadline.step)
        .order_by(func.count().desc()),
        staff,
        f,
    )
    names = await _names(session)
    rows = [
        OverdueRow(
            department_id=department,
            department_name=names["department"].get(department),
            step=step,
            count=int(n),
            oldest_due_at=oldest,
        )
        for department, step, n, oldest in (await session.execute(query)).all()
    ]
    return Overdues(total=sum(r.count for r in rows), rows=rows)


# --- rewards ---------------------------------------------------------------------------------------------------------


async def reward_totals(session: AsyncSession, staff: StaffPrincipal, f: StatsFilter) -> RewardTotalsByDepartment:
    """The ledger's net for the cohort's cases, by the department that rewards them."""
    approved = func.coalesce(func.sum(case((RewardLedgerEntry.account == "approved", RewardLedgerEntry.amount_fen))), 0)
    paid = func.coalesce(func.sum(case((RewardLedgerEntry.account == "paid", RewardLedgerEntry.amount_fen))), 0)
    query = cohort(
        select(Reward.department_id, func.count(func.distinct(Reward.id)), approved, paid)
        .select_from(RewardLedgerEntry)
        .join(Reward, Reward.id == RewardLedgerEntry.reward_id)
        .join(Report, Report.id == Reward.case_id)
        .group_by(Reward.department_id),
        staff,
        f,
    )
    names = await _names(session)
    rows = [
        RewardRow(
            department_id=department,
            department_name=names["department"].get(department),
            rewards=int(n),
            approved_fen=int(a),
            paid_fen=int(p),
        )
        for department, n, a, p in (await session.execute(query)).all()
    ]
    return RewardTotalsByDepartment(
        approved_fen=sum(r.approved_fen for r in rows), paid_fen=sum(r.paid_fen for r in rows), rows=rows
    )


# --- the campaign table (统计表) --------------------------------------------------------------------------------------


async def campaign_table(session: AsyncSession, staff: StaffPrincipal, f: StatsFilter, by: str) -> CampaignTable:
    """Reports received, accepted, verified true, rectified, closed and rewards paid, by department or by township,
    for the reports received in the period."""
    rectified = (
        select(Rectification.report_id)
        .where(Rectification.passed.is_(True))
        .group_by(Rectification.report_id)
        .subquery()
    )
    paid = (
        select(RewardLedgerEntry.case_id, func.sum(RewardLedgerEntry.amount_fen).label("fen"))
        .where(RewardLedgerEntry.account == "paid")
        .group_by(RewardLedgerEntry.case_id)
        .subquery()
    )
    key = Report.department_id if by == "department" else Report.jurisdiction_adcode

    query = cohort(
        select(
            key,
            func.count(),
            _tally(Report.state.not_in(NOT_ACCEPTED)),
            _tally(CaseVerification.outcome.in_(TRUE_OUTCOMES)),
            _tally(rectified.c.report_id.is_not(None)),
            _tally(Report.state == "closed"),
            _tally(and_(paid.c.fen.is_not(None), paid.c.fen > 0)),
            func.coalesce(func.sum(paid.c.fen), 0),
        )
        .select_from(Report)
        .outerjoin(CaseVerification, CaseVerification.report_id == Report.id)
        .outerjoin(rectified, rectified.c.report_id == Report.id)
        .outerjoin(paid, paid.c.case_id == Report.id)
        .group_by(key),
        staff,
        f,
    )
    names = await _names(session)
    label = names["department"] if by == "department" else names["jurisdiction"]
    rows = [
        CampaignRow(
            key=str(k) if k is not None else None,
            name=label.get(k) or ("待分派" if by == "department" else "辖区外"),
            received=int(n),
            accepted=int(acc),
            verified_true=int(ver),
            rectified=int(rect),
            closed=int(cl),
            rewards_paid=int(rp),
            rewards_paid_fen=int(fen),
        )
        for k, n, acc, ver, rect, cl, rp, fen in (await session.execute(query)).all()
    ]
    rows.sort(key=lambda r: (-r.received, r.name))
    return CampaignTable(by=by, date_from=f.date_from, date_to=f.date_to, rows=rows, total=_total(rows))


def _total(rows: list[CampaignRow]) -> CampaignRow:
    return CampaignRow(
        key=None,
        name="合计",
        received=sum(r.received for r in rows),
        accepted=sum(r.accepted for r in rows),
        verified_true=sum(r.verified_true for r in rows),
        rectified=sum(r.rectified for r in rows),
        closed=sum(r.closed for r in rows),
        rewards_paid=sum(r.rewards_paid for r in rows),
        rewards_paid_fen=sum(r.rewards_paid_fen for r in rows),
    )
