"""The dashboard and the campaign statistics, computed in SQL.

Every figure is over a *cohort*: the reports received (submitted) in the chosen period, in China time, narrowed by
category, department and place, and scoped like every other staff query (a department sees its own cases). Rates
and durations of that cohort are what leaders ask of a campaign ("of what we received in June, how much was
verified on time?"); money is the net of the ledger for the cohort's cases.

The figures are read from the report rows, never joined to the deadlines: the commands keep on each report the
day it was received (China time), each step's duration as its deadline is met (受理: submission → acceptance; 核查:
acceptance → verification; 整改: order → reported done) and the verification's outcome; 办结 is submission →
closure. Whole months come from the monthly rollups and the days at either end from the reports
(:mod:`app.statistics.facts`); money comes from the rewards and their ledger rows. Percentiles are nearest-rank
over buckets of six minutes, an hour or a day: a grouped scan, the same on both databases, instead of sorting a
million values (see bench/dashboard.py).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, Select, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.catalog.models import Category, Department
from app.core.db import is_postgresql, utcnow
from app.deadlines.models import CaseDeadline
from app.identity.dependencies import StaffPrincipal
from app.intake.models import Report
from app.rewards.models import Reward, RewardLedgerEntry
from app.routing.models import Jurisdiction
from app.statistics import facts
from app.statistics.facts import StatsFilter
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


def scoped(query: Select[Any], staff: StaffPrincipal, f: StatsFilter) -> Select[Any]:
    """``query`` over reports narrowed to what ``staff`` may see and by category, department and place."""
    return query.where(*facts.scope(staff, f, Report.department_id, Report.category_code, Report.jurisdiction_adcode))


def _period(session: AsyncSession, source: Any, granularity: str) -> ColumnElement[Any]:
    if granularity == "month":
        return source.c.month
    if granularity == "day":
        return source.c.day
    if is_postgresql(session):
        return cast(func.date_trunc("week", source.c.day), Date)
    return func.date(source.c.day, "weekday 0", "-6 days")  # Monday: the next Sunday (or today), six days back


def _period_label(value: Any, granularity: str) -> str:
    text = value.isoformat() if isinstance(value, date) else str(value)
    return text[:7] if granularity == "month" else text


# --- counts ----------------------------------------------------------------------------------------------------------


async def counts(
    session: AsyncSession, staff: StaffPrincipal, f: StatsFilter, group_by: list[str], granularity: str
) -> Counts:
    by_day = "period" in group_by and granularity != "month"
    source = await facts.facts(session, staff, f, by_day=by_day)
    columns: dict[str, ColumnElement[Any]] = {
        "period": _period(session, source, granularity),
        "category": source.c.category_code,
        "department": source.c.department_id,
        "jurisdiction": source.c.jurisdiction_adcode,
        "state": source.c.state,
    }
    chosen = [columns[d].label(d) for d in group_by]
    query = select(*chosen, func.coalesce(func.sum(source.c.reports), 0).label("n"))
    if chosen:
        query = query.group_by(*chosen).order_by(*chosen)
    rows = [row for row in (await session.execute(query)).all() if row[-1]]
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


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _sum(column: Any, condition: ColumnElement[bool] | None = None) -> ColumnElement[int]:
    value = column if condition is None else case((condition, column), else_=0)
    return func.coalesce(func.sum(value), 0)


async def rates(session: AsyncSession, staff: StaffPrincipal, f: StatsFilter) -> Rates:
    source = await facts.facts(session, staff, f)
    c = source.c
    row = (
        await session.execute(
            select(
                _sum(c.reports),
                _sum(c.reports, c.state.not_in(UNDECIDED)),
                _sum(c.reports, c.state.not_in(NOT_ACCEPTED)),
                _sum(c.reports, c.state == "closed"),
                _sum(c.rated),
                _sum(c.satisfied),
                _sum(c.score_sum),
                _sum(c.verified),
                _sum(c.verified_on_time),
            )
        )
    ).one()
    received, decided, accepted, closed, rated, satisfied, score_sum, verified, on_time = (int(v) for v in row)
    return Rates(
        received=received,
        accepted=accepted,
        verified=verified,
        verified_on_time=on_time,
        closed=closed,
        rated=rated,
        acceptance_rate=_share(accepted, decided),
        on_time_verification_rate=_share(on_time, verified),
        closure_rate=_share(closed, accepted),
        satisfaction_rate=_share(satisfied, rated),
        mean_satisfaction=round(score_sum / rated, 2) if rated else None,
    )


# --- durations -------------------------------------------------------------------------------------------------------


async def durations(session: AsyncSession, staff: StaffPrincipal, f: StatsFilter) -> Durations:
    """Median and 90th percentile of each step, nearest-rank over buckets of six minutes (under a day), an hour
    (under ten days) or a day: a grouped scan, not a sort of a million values."""
    histograms = await facts.duration_histograms(session, staff, f)
    return Durations(steps=[_percentiles(step, histograms[step]) for step in facts.DURATION_STEPS])


def _percentiles(step: str, histogram: list[tuple[int, int]]) -> DurationRow:
    total = sum(n for _, n in histogram)
    if not total:
        return DurationRow(step=step, count=0, median_hours=None, p90_hours=None)

    def nearest_rank(p: float) -> float:
        running = 0
        for bucket, n in histogram:
            running += n
            if running >= p * total:
                return round(facts.bucket_hours(bucket), 1)
        return round(facts.bucket_hours(histogram[-1][0]), 1)

    return DurationRow(step=step, count=total, median_hours=nearest_rank(0.5), p90_hours=nearest_rank(0.9))


# --- overdue ---------------------------------------------------------------------------------------------------------


async def overdue(session: AsyncSession, staff: StaffPrincipal, f: StatsFilter) -> Overdues:
    """Deadlines passed and not met now, of open cases, by department and step: supervision asks what is late
    today, whenever it was received, so the period does not narrow this one (category, department and place do)."""
    query = scoped(
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
    """The ledger's net for the cohort's cases, by the department that rewards them. A reward carries its case's
    day of receipt, category, place and department, so this reads the rewards and their ledger rows only."""
    approved = func.coalesce(func.sum(case((RewardLedgerEntry.account == "approved", RewardLedgerEntry.amount_fen))), 0)
    paid = func.coalesce(func.sum(case((RewardLedgerEntry.account == "paid", RewardLedgerEntry.amount_fen))), 0)
    conditions = [
        Reward.received_on >= f.date_from,
        Reward.received_on <= f.date_to,
        *facts.scope(staff, f, Reward.department_id, Reward.category_code, Reward.jurisdiction_adcode),
    ]
    query = (
        select(Reward.department_id, func.count(func.distinct(Reward.id)), approved, paid)
        .select_from(RewardLedgerEntry)
        .join(Reward, Reward.id == RewardLedgerEntry.reward_id)
        .where(*conditions)
        .group_by(Reward.department_id)
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
    for the reports received in the period. The money comes from the rewards and their ledger rows (a reward
    carries its case's day, department and place), not from a join of the ledger to every report."""
    source = await facts.facts(session, staff, f)
    c = source.c
    key = c.department_id if by == "department" else c.jurisdiction_adcode
    query = select(
        key,
        _sum(c.reports),
        _sum(c.reports, c.state.not_in(NOT_ACCEPTED)),
        _sum(c.verified_true),
        _sum(c.rectified),
        _sum(c.reports, c.state == "closed"),
    ).group_by(key)
    paid = await _paid_by(session, staff, f, by)
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
            rewards_paid=paid.get(k, (0, 0))[0],
            rewards_paid_fen=paid.get(k, (0, 0))[1],
        )
        for k, n, acc, ver, rect, cl in (await session.execute(query)).all()
        if n
    ]
    rows.sort(key=lambda r: (-r.received, r.name))
    return CampaignTable(by=by, date_from=f.date_from, date_to=f.date_to, rows=rows, total=_total(rows))


async def _paid_by(session: AsyncSession, staff: StaffPrincipal, f: StatsFilter, by: str) -> dict[Any, tuple[int, int]]:
    """Per department or place: how many of the period's cases have a reward paid (net), and how much."""
    key = Reward.department_id if by == "department" else Reward.jurisdiction_adcode
    per_case = (
        select(key.label("key"), func.sum(RewardLedgerEntry.amount_fen).label("fen"))
        .select_from(RewardLedgerEntry)
        .join(Reward, Reward.id == RewardLedgerEntry.reward_id)
        .where(
            RewardLedgerEntry.account == "paid",
            Reward.received_on >= f.date_from,
            Reward.received_on <= f.date_to,
            *facts.scope(staff, f, Reward.department_id, Reward.category_code, Reward.jurisdiction_adcode),
        )
        .group_by(key, Reward.case_id)
        .subquery()
    )
    query = select(per_case.c.key, _sum(literal(1), per_case.c.fen > 0), _sum(per_case.c.fen)).group_by(per_case.c.key)
    return {k: (int(n), int(fen)) for k, n, fen in (await session.execute(query)).all()}


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
