"""Rebuilding the monthly rollups. One pass reads every report once through the statistics index (a million in a
few seconds on PostgreSQL) and replaces the rollups in one transaction, so readers see the old or the new, never
half. Several workers may run it: on PostgreSQL an advisory lock lets one at a time through (the others skip);
SQLite serialises writers anyway."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import AppContext
from app.core.db import insert_or_ignore, is_postgresql, unit_of_work, utcnow
from app.intake.models import Report
from app.statistics import facts
from app.statistics.models import MonthlyCounts, MonthlyDurations, RollupRefresh

log = logging.getLogger(__name__)
PERIOD_SECONDS = 300.0
MEASURES = (
    "reports",
    "rated",
    "satisfied",
    "score_sum",
    "verified",
    "verified_on_time",
    "verified_true",
    "rectified",
)
KEYS = ("month", "department_id", "category_code", "jurisdiction_adcode", "state")


async def refresh(context: AppContext) -> bool:
    """Rebuild the rollups; False when another process is already doing it."""
    async with unit_of_work(context.sessions) as session:
        if is_postgresql(session) and not await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(hashtext('statistics_rollup'))")
        ):
            return False
        await session.execute(delete(MonthlyCounts))
        await session.execute(delete(MonthlyDurations))
        await _insert(session, MonthlyCounts, await _monthly_counts(session))
        await _insert(session, MonthlyDurations, await _monthly_durations(session))
        now = utcnow()
        if not await insert_or_ignore(session, RollupRefresh, {"name": "monthly", "refreshed_at": now}, ["name"]):
            row = await session.get(RollupRefresh, "monthly")
            assert row is not None
            row.refreshed_at = now
    return True


async def _monthly_counts(session: AsyncSession) -> list[dict[str, Any]]:
    source = facts.report_facts(session, None, None, None).subquery()
    keys = [source.c[k] for k in KEYS]
    query = select(*keys, *(func.sum(source.c[m]) for m in MEASURES)).group_by(*keys)
    return [
        {
            **dict(zip(KEYS, row[: len(KEYS)], strict=True)),
            **{m: int(v) for m, v in zip(MEASURES, row[len(KEYS) :], strict=True)},
        }
        for row in (await session.execute(query)).all()
    ]


async def _monthly_durations(session: AsyncSession) -> list[dict[str, Any]]:
    month = facts.month_of(session, Report.received_on)
    rows: list[dict[str, Any]] = []
    for step, hours in facts.step_hours(session).items():
        bucket = facts.bucket_of(session, hours)
        query = select(month, Report.department_id, bucket, func.count()).where(hours.is_not(None))
        for m, department, b, n in (await session.execute(query.group_by(month, Report.department_id, bucket))).all():
            rows.append({"month": m, "department_id": department, "step": step, "bucket": int(b), "reports": int(n)})
    return rows


async def _insert(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 5000):
        chunk = [{"id": uuid.uuid4(), **row} for row in rows[start : start + 5000]]
        await session.execute(insert(model), chunk)


async def run_periodically(context: AppContext, period: float = PERIOD_SECONDS) -> None:
    while True:
        try:
            await refresh(context)
        except Exception:
            log.exception("statistics rollup refresh failed; will retry")
        await asyncio.sleep(period)
