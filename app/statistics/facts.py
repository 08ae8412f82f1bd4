"""Where the dashboard's numbers come from: the monthly rollups for the whole months of a period, the reports
themselves for the rest.

A query over "the reports received from 3 January to 20 December" reads the rollups for February–November
(a few thousand rows however many reports there are) and the reports of 3–31 January and 1–20 December through the
statistics index; one SQL statement adds both up (:func:`facts`). The rollups are rebuilt every few minutes
(:mod:`app.statistics.rollup`), so whole past months can be a few minutes behind; the edges, the current month
included, are live. Until the rollups have been built once, everything is read from the reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.core.db import is_postgresql
from app.identity.dependencies import StaffPrincipal
from app.identity.roles import Permission, has_permission
from app.intake.models import Report
from app.statistics.models import MonthlyCounts, MonthlyDurations, RollupRefresh

TRUE_OUTCOMES = ("true", "partly_true")
DURATION_STEPS = ("acceptance", "verification", "rectification", "closure")


@dataclass(frozen=True)
class StatsFilter:
    date_from: date
    date_to: date
    category: str | None = None
    department_id: Any = None
    jurisdiction: str | None = None  # an adcode: the place and everything below it


# --- the period, split -----------------------------------------------------------------------------------------------


def _month_end(day: date) -> date:
    following = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
    return following - timedelta(days=1)


def split(first: date, last: date) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """The whole months inside ``first``–``last`` (first day of the first, first day of the last) and the day
    ranges left over at either end. Pure."""
    start = first if first.day == 1 else _month_end(first) + timedelta(days=1)
    end = last if last == _month_end(last) else last.replace(day=1) - timedelta(days=1)
    if start > end:
        return None, [(first, last)]
    edges = []
    if first < start:
        edges.append((first, start - timedelta(days=1)))
    if end < last:
        edges.append((end + timedelta(days=1), last))
    return (start, end.replace(day=1)), edges


async def rollups_ready(session: AsyncSession) -> bool:
    return await session.get(RollupRefresh, "monthly") is not None


# --- the two sources ---------------------------------------------------------------------------------------------


def scope(staff: StaffPrincipal, f: StatsFilter, department: Any, category: Any, jurisdiction: Any) -> list[Any]:
    """What ``staff`` may see (a department its own) and the filters, on any table with these three columns."""
    conditions = []
    if not has_permission(staff.role, Permission.VIEW_ALL_REPORTS):
        conditions.append(department == staff.department_id)
    if f.category:
        conditions.append(category == f.category)
    if f.department_id:
        conditions.append(department == f.department_id)
    if f.jurisdiction:
        conditions.append(jurisdiction.startswith(f.jurisdiction, autoescape=True))
    return conditions


def month_of(session: AsyncSession, day: Any) -> ColumnElement[date]:
    if is_postgresql(session):  # date arithmetic: date_trunc would go through timestamptz for every row
        return day - (cast(func.extract("day", day), Integer) - 1)
    return type_coerce(func.date(day, "start of month"), Date)


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def report_facts(
    session: AsyncSession,
    ranges: list[tuple[date, date]] | None,
    staff: StaffPrincipal | None,
    f: StatsFilter | None,
    *,
    month: date | None = None,
) -> Select[Any]:
    """One row a report, with its measures, for the reports received in ``ranges`` that ``staff`` may see (every
    report when both are None: the rollup's own source); ``month`` when all of ``ranges`` lie in one month."""
    conditions = (
        [] if ranges is None else [or_(*(and_(Report.received_on >= a, Report.received_on <= b) for a, b in ranges))]
    )
    if staff is not None and f is not None:
        conditions += scope(staff, f, Report.department_id, Report.category_code, Report.jurisdiction_adcode)
    return (
        select(
            (month_of(session, Report.received_on) if month is None else literal(month, Date)).label("month"),
            Report.received_on.label("day"),
            Report.department_id.label("department_id"),
            Report.category_code.label("category_code"),
            Report.jurisdiction_adcode.label("jurisdiction_adcode"),
            Report.state.label("state"),
            literal(1).label("reports"),
            _flag(Report.satisfaction_score.is_not(None)).label("rated"),
            _flag(Report.satisfaction_score >= 4).label("satisfied"),
            func.coalesce(Report.satisfaction_score, 0).label("score_sum"),
            _flag(Report.verification_hours.is_not(None)).label("verified"),
            _flag(Report.verified_on_time.is_(True)).label("verified_on_time"),
            _flag(Report.verification_outcome.in_(TRUE_OUTCOMES)).label("verified_true"),
            _flag(Report.rectified_at.is_not(None)).label("rectified"),
        )
        .select_from(Report)
        .where(*conditions)
    )


def rollup_facts(months: tuple[date, date], staff: StaffPrincipal, f: StatsFilter) -> Select[Any]:
    m = MonthlyCounts
    return select(
        m.month.label("month"),
        cast(null(), Date).label("day"),
        m.department_id.label("department_id"),
        m.category_code.label("category_code"),
        m.jurisdiction_adcode.label("jurisdiction_adcode"),
        m.state.label("state"),
        m.reports,
        m.rated,
        m.satisfied,
        m.score_sum,
        m.verified,
        m.verified_on_time,
        m.verified_true,
        m.rectified,
    ).where(
        m.month >= months[0],
        m.month <= months[1],
        *scope(staff, f, m.department_id, m.category_code, m.jurisdiction_adcode),
    )


async def facts(session: AsyncSession, staff: StaffPrincipal, f: StatsFilter, *, by_day: bool = False) -> Any:
    """The period's facts as one subquery: rollup rows for whole months (unless days are needed), report rows for
    the rest."""
    months, edges = split(f.date_from, f.date_to)
    if by_day or months is None or not await rollups_ready(session):
        return report_facts(session, [(f.date_from, f.date_to)], staff, f).subquery()
    # Each edge lies within one month: one select an edge, so no row computes its month.
    parts = [rollup_facts(months, staff, f)]
    parts += [report_facts(session, [edge], staff, f, month=edge[0].replace(day=1)) for edge in edges]
    return union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()


# --- durations -------------------------------------------------------------------------------------------------------


def bucket_of(session: AsyncSession, hours: Any) -> ColumnElement[int]:
    """Six minutes under a day, an hour under ten days, a day beyond: about 600 buckets in all."""

    def whole(value: Any) -> ColumnElement[int]:
        return cast(func.floor(value), Integer) if is_postgresql(session) else cast(value, Integer)

    return case(
        (hours < 24, whole(hours * 10)),
        (hours < 240, 216 + whole(hours)),
        else_=455 + whole(hours / 24),
    )


def bucket_hours(bucket: int) -> float:
    """The middle of a bucket, in hours (the inverse of :func:`bucket_of`)."""
    if bucket < 240:
        return bucket / 10 + 0.05
    if bucket < 456:
        return bucket - 216 + 0.5
    return (bucket - 455) * 24 + 12


def hours_between(session: AsyncSession, later: Any, earlier: Any) -> ColumnElement[float]:
    if is_postgresql(session):
        return func.extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def step_hours(session: AsyncSession) -> dict[str, ColumnElement[float]]:
    """Each step's duration in hours, NULL where the step has not been met (closure: closed reports only)."""
    closure = hours_between(session, Report.finished_at, Report.created_at)
    return {
        "acceptance": Report.acceptance_hours,
        "verification": Report.verification_hours,
        "rectification": Report.rectification_hours,
        "closure": case((Report.state == "closed", closure)),
    }


async def report_durations(
    session: AsyncSession, ranges: list[tuple[date, date]], staff: StaffPrincipal, f: StatsFilter
) -> list[tuple[str, int, int]]:
    """(step, bucket, reports) for the reports received in ``ranges``: on PostgreSQL one scan grouped by the four
    steps' buckets as grouping sets; on SQLite one small query a step."""
    in_ranges = or_(*(and_(Report.received_on >= a, Report.received_on <= b) for a, b in ranges))
    visible = scope(staff, f, Report.department_id, Report.category_code, Report.jurisdiction_adcode)
    buckets = {step: bucket_of(session, hours) for step, hours in step_hours(session).items()}
    if is_postgresql(session):
        exprs = [buckets[step] for step in DURATION_STEPS]
        query = (
            select(*exprs, func.count(), *(func.grouping(e) for e in exprs))
            .where(in_ranges, *visible)
            .group_by(func.grouping_sets(*(tuple_(e) for e in exprs)))
        )
        found = []
        for row in (await session.execute(query)).all():
            values, n, flags = row[:4], row[4], row[5:]
            step_index = list(flags).index(0)
            if values[step_index] is not None:
                found.append((DURATION_STEPS[step_index], int(values[step_index]), int(n)))
        return found
    found = []
    for step, bucket in buckets.items():
        query = select(bucket, func.count()).where(in_ranges, bucket.is_not(None), *visible).group_by(bucket)
        found += [(step, int(b), int(n)) for b, n in (await session.execute(query)).all()]
    return found


async def duration_histograms(
    session: AsyncSession, staff: StaffPrincipal, f: StatsFilter
) -> dict[str, list[tuple[int, int]]]:
    """Per step, (bucket, reports) sorted by bucket."""
    months, edges = split(f.date_from, f.date_to)
    use_rollup = months is not None and not f.category and not f.jurisdiction and await rollups_ready(session)
    merged: dict[str, dict[int, int]] = {step: {} for step in DURATION_STEPS}
    found: list[tuple[str, int, int]] = []
    if use_rollup:
        assert months is not None
        d = MonthlyDurations
        query = (
            select(d.step, d.bucket, func.sum(d.reports))
            .where(d.month >= months[0], d.month <= months[1], *scope(staff, f, d.department_id, None, None))
            .group_by(d.step, d.bucket)
        )
        found += [(step, int(b), int(n)) for step, b, n in (await session.execute(query)).all()]
        ranges = edges
    else:
        ranges = [(f.date_from, f.date_to)]
    if ranges:
        found += await report_durations(session, ranges, staff, f)
    for step, bucket, n in found:
        merged[step][bucket] = merged[step].get(bucket, 0) + n
    return {step: sorted(counts.items()) for step, counts in merged.items()}
