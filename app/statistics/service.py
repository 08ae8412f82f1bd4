"""The dashboard and the campaign statistics, computed in SQL.

Every figure is over a *cohort*: the reports received (submitted) in the chosen period, in China time, narrowed by
category, department and place, and scoped like every other staff query (a department sees its own cases). Rates
and durations of that cohort are what leaders ask of a campaign ("of what we received in June, how much was
verified on time?"); money is the net of the ledger for the cohort's cases.

The figures are read from the report rows alone: the commands keep on each report the day it was received (China
time), each step's duration as its deadline is met (受理: submission → acceptance; 核查: acceptance → verification;
整改: order → reported done) and the verification's outcome; 办结 is submission → closure. Two covering indexes
(by day, and by department and day) hold every column read here, so on PostgreSQL each query is one index-only
scan of the cohort (see bench/dashboard.py). Percentiles are nearest-rank over six-minute buckets: a grouped scan,
the same on both databases, instead of sorting a million values.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Date, Float, Select, and_, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.catalog.models import Category, Department
from app.core.db import is_postgresql, utcnow
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


def cohort(query: Select[Any], staff: StaffPrincipal, f: StatsFilter) -> Select[Any]:
    """``query`` over reports narrowed to the cohort and to what ``staff`` may see."""
    conditions: list[ColumnElement[bool]] = [Report.received_on >= f.date_from, Report.received_on <= f.date_to]
    if not has_permission(staff.role, Permission.VIEW_ALL_REPORTS):
        conditions.append(Report.department_id == staff.department_id)
    if f.category:
        conditions.append(Report.category_code == f.category)
    if f.department_id:
        conditions.append(Report.department_id == f.department_id)
    if f.jurisdiction:
        conditions.append(Report.jurisdiction_adcode.startswith(f.jurisdiction, autoescape=True))
    return query.where(and_(*conditions))


def _period(session: AsyncSession, granularity: str) -> ColumnElement[Any]:
    if granularity == "day":
        return Report.received_on
    if is_postgresql(session):
        return cast(func.date_trunc(granularity, Report.received_on), Date)
    if granularity == "week":  # Monday of the week: the next Sunday (or today), six days back
        return func.date(Report.received_on, "weekday 0", "-6 days")
    return func.strftime("%Y-%m-01", Report.received_on)


def _period_label(value: Any, granularity: str) -> str:
    text = value.isoformat() if isinstance(value, date) else str(value)
    return text[:7] if granularity == "month" else text


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
                period=_period_label(values["period"], granularity) if "period" in values else None,
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
    verified, on_time = (
        await session.execute(
            cohort(
                select(func.count(Report.verification_hours), _tally(Report.verified_on_time.is_(True))).select_from(
                    Report
                ),
                staff,
                f,
            )
        )
    ).one()
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


DURATION_STEPS = ("acceptance", "verification", "rectification", "closure")
BUCKET_HOURS = 0.1  # durations are counted in buckets of six minutes


async def durations(session: AsyncSession, staff: StaffPrincipal, f: StatsFilter) -> Durations:
    """Median and 90th percentile of each step, nearest-rank over six-minute buckets: each step is one grouped
    scan of the statistics index, not a sort of a million values."""
    spans = {
        "acceptance": Report.acceptance_hours,
        "verification": Report.verification_hours,
        "rectification": Report.rectification_hours,
        "closure": _hours(session, Report.finished_at, Report.created_at),
    }
    rows = []
    for step in DURATION_STEPS:
        hours = spans[step]
        bucket = func.round(hours / BUCKET_HOURS)
        query = cohort(select(bucket, func.count()).select_from(Report).where(hours.is_not(None)), staff, f)
        if step == "closure":
            query = query.where(Report.state == "closed")
        histogram = sorted((float(b), int(n)) for b, n in (await session.execute(query.group_by(bucket))).all())
        rows.append(_percentiles(step, histogram))
    return Durations(steps=rows)


def _hours(session: AsyncSession, later: Any, earlier: Any) -> ColumnElement[float]:
    if is_postgresql(session):
        return func.extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def _percentiles(step: str, histogram: list[tuple[float, int]]) -> DurationRow:
    total = sum(n for _, n in histogram)
    if not total:
        return DurationRow(step=step, count=0, median_hours=None, p90_hours=None)

    def nearest_rank(p: float) -> float:
        running = 0
        for bucket, n in histogram:
            running += n
            if running >= p * total:
                return round(bucket * BUCKET_HOURS, 1)
        return round(histogram[-1][0] * BUCKET_HOURS, 1)

    return DurationRow(step=step, count=total, median_hours=nearest_rank(0.5), p90_hours=nearest_rank(0.9))


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
            _tally(Report.verification_outcome.in_(TRUE_OUTCOMES)),
            _tally(Report.rectified_at.is_not(None)),
            _tally(Report.state == "closed"),
            _tally(and_(paid.c.fen.is_not(None), paid.c.fen > 0)),
            func.coalesce(func.sum(paid.c.fen), 0),
        )
        .select_from(Report)
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
