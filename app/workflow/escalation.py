"""The periodic job that records an escalation (督办提醒) on the timeline when a deadline passes unmet."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from app.core.context import AppContext
from app.core.db import unit_of_work, utcnow
from app.deadlines.models import CaseDeadline
from app.intake.models import Report
from app.workflow.models import CaseEvent
from app.workflow.transitions import OPEN

BATCH = 200
log = logging.getLogger(__name__)


async def escalate_overdue(context: AppContext) -> int:
    """One pass: each passed, unmet, not yet escalated deadline of an open case gets one system event. Safe to run
    in several processes at once: the rows are locked (SKIP LOCKED on PostgreSQL; SQLite serialises writers)."""
    now = utcnow()
    escalated = 0
    async with unit_of_work(context.sessions) as session:
        rows = (
            await session.execute(
                select(CaseDeadline, Report)
                .join(Report, Report.id == CaseDeadline.report_id)
                .where(
                    CaseDeadline.met_at.is_(None),
                    CaseDeadline.escalated_at.is_(None),
                    CaseDeadline.due_at < now,
                    Report.state.in_([s.value for s in OPEN]),
                )
                .limit(BATCH)
                .with_for_update(skip_locked=True, of=[CaseDeadline, Report])
            )
        ).all()
        for deadline, report in rows:
            report.event_count += 1
            session.add(
                CaseEvent(
                    report_id=report.id,
                    sequence=report.event_count,
                    command="escalate",
                    from_state=report.state,
                    to_state=report.state,
                    actor_kind="system",
                    actor_id=None,
                    actor_role=None,
                    note=f"{deadline.step} 期限已过（{deadline.due_at.isoformat()}），转入督办",
                    payload={"step": deadline.step, "due_at": deadline.due_at.isoformat()},
                    attachments=[],
                    created_at=now,
                )
            )
            deadline.escalated_at = now
            escalated += 1
    return escalated


PERIOD_SECONDS = 60.0


async def run_periodically(context: AppContext, period: float = PERIOD_SECONDS) -> None:
    while True:
        try:
            count = await escalate_overdue(context)
            if count:
                log.info("deadlines escalated", extra={"count": count})
        except Exception:
            log.exception("escalation pass failed; will retry")
        await asyncio.sleep(period)
