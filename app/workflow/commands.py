"""The case commands: each reads the case's facts, asks the state machine, applies its own effects, and appends one
immutable event, one audit entry (staff) and any message to the reporter, all in the request's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog
from app.catalog.models import Department
from app.core.audit import AuditEntry
from app.core.db import utcnow
from app.deadlines import service as deadlines
from app.deadlines.calendar import CHINA_TZ
from app.identity.dependencies import ReporterPrincipal, StaffPrincipal
from app.intake.errors import UploadAlreadyAttached, UploadNotFound
from app.intake.models import Report, Upload
from app.notifications import outbox
from app.routing import service as routing_service
from app.routing.rules import RoutingReason
from app.workflow import hooks, transitions
from app.workflow.errors import CaseNotFound, DepartmentRequired, PrimaryNotOpen
from app.workflow.models import CaseEvent, CaseVerification, Rectification
from app.workflow.transitions import Actor, CaseFacts, CaseState, Command, VerificationOutcome

FINISHED = {CaseState.CLOSED, CaseState.REJECTED, CaseState.MERGED}


def staff_actor(staff: StaffPrincipal) -> Actor:
    department = str(staff.department_id) if staff.department_id else None
    return Actor(kind="staff", id=str(staff.staff_id), role=staff.role, department_id=department)


def reporter_actor(reporter: ReporterPrincipal) -> Actor:
    return Actor(kind="reporter", id=str(reporter.reporter_id))


async def facts_of(session: AsyncSession, report: Report, *, after_photo_count: int = 0) -> CaseFacts:
    round_ = await current_round(session, report)
    outcome = await session.scalar(select(CaseVerification.outcome).where(CaseVerification.report_id == report.id))
    return CaseFacts(
        state=CaseState(report.state),
        department_id=str(report.department_id) if report.department_id else None,
        rectification_round=report.rectification_round,
        rectification_ordered_by=str(round_.ordered_by) if round_ else None,
        after_photo_count=after_photo_count,
        appeals_used=report.appeals_used,
        finished_at=report.finished_at,
        extension_requested=report.extension in ("requested", "granted"),
        extension_granted=report.extension == "granted",
        rated=report.satisfaction_score is not None,
        reporter_id=str(report.reporter_id) if report.reporter_id else None,
        verified_true=outcome is not None and outcome != VerificationOutcome.FALSE.value,
    )


async def current_round(session: AsyncSession, report: Report) -> Rectification | None:
    if report.rectification_round == 0:
        return None
    return await session.scalar(
        select(Rectification).where(
            Rectification.report_id == report.id, Rectification.round == report.rectification_round
        )
    )


async def execute(
    session: AsyncSession,
    report: Report,
    actor: Actor,
    command: Command,
    *,
    note: str | None = None,
    payload: Mapping[str, Any] | None = None,
    attachments: list[str] | None = None,
    outcome: VerificationOutcome | None = None,
    review_passed: bool | None = None,
    after_photo_count: int = 0,
) -> CaseEvent:
    """Decide, move, record. Effects specific to the command are the caller's, in the same transaction."""
    now = utcnow()
    facts = await facts_of(session, report, after_photo_count=after_photo_count)
    target = transitions.decide(facts, command, actor, now=now, outcome=outcome, review_passed=review_passed)
    event = CaseEvent(
        report_id=report.id,
        sequence=report.event_count + 1,
        command=command.value,
        from_state=report.state,
        to_state=target.value,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_role=actor.role.value if actor.role else None,
        note=note,
        payload=dict(payload or {}),
        attachments=list(attachments or []),
        created_at=now,
    )
    if target.value != report.state:
        report.state, report.state_changed_at = target.value, now
    report.event_count += 1
    session.add(event)
    if actor.kind == "staff":
        session.add(
            AuditEntry(
                actor_id=f"staff:{actor.id}",
                actor_role=actor.role.value if actor.role else None,
                action=command.value,
                target_type="case",
                target_id=str(report.id),
                reason=note,
                detail={"from": event.from_state, "to": event.to_state},
                created_at=now,
            )
        )
    await session.flush()
    return event


async def meet(session: AsyncSession, report: Report, step: str, at: datetime) -> None:
    """Meet the step's deadline and keep its duration (and, for verification, whether it was on time) on the
    report for the statistics."""
    met = await deadlines.meet(session, report.id, step, at)
    if met is None:
        return
    started_at, due_at = met
    hours = (at - started_at).total_seconds() / 3600
    if step == deadlines.ACCEPTANCE:
        report.acceptance_hours = hours
    elif step == deadlines.VERIFICATION:
        report.verification_hours, report.verified_on_time = hours, at <= due_at
    else:
        report.rectification_hours = hours


async def notify_reporter(
    session: AsyncSession, report: Report, event: CaseEvent, template_key: str, status: str
) -> None:
    """A subscription message to the reporter, sent after the commit by the outbox worker."""
    if report.reporter_id is None:
        return
    values = {
        "character_string1": report.number,
        "phrase2": status[:5],
        "time3": event.created_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M"),
        "thing4": transitions.reporter_label(CaseState(report.state)),
    }
    await outbox.enqueue(
        session,
        reporter_id=report.reporter_id,
        template_key=template_key,
        page=f"pages/report/detail?id={report.id}",
        values=values,
        dedupe_key=f"{report.id}:{event.sequence}",
    )


# --- the dispatcher ------------------------------------------------------------------------------------------------


async def accept(session: AsyncSession, report: Report, staff: StaffPrincipal, note: str | None) -> CaseEvent:
    event = await execute(session, report, staff_actor(staff), Command.ACCEPT, note=note)
    await meet(session, report, deadlines.ACCEPTANCE, event.created_at)
    days, count = await deadlines.rule_for(session, deadlines.VERIFICATION, report.department_id, report.category_code)
    await deadlines.open_deadline(session, report.id, deadlines.VERIFICATION, event.created_at, days, count)
    await notify_reporter(session, report, event, "accepted", "已受理")
    return event


async def reject(
    session: AsyncSession,
    report: Report,
    staff: StaffPrincipal,
    reason_code: str,
    note: str | None,
    payload: dict[str, Any],
) -> CaseEvent:
    event = await execute(
        session, report, staff_actor(staff), Command.REJECT, note=note, payload={"reason": reason_code, **payload}
    )
    report.rejection_reason, report.finished_at = reason_code, event.created_at
    await meet(session, report, deadlines.ACCEPTANCE, event.created_at)
    await notify_reporter(session, report, event, "result", "不予受理")
    return event


async def merge(
    session: AsyncSession, report: Report, staff: StaffPrincipal, primary_id: uuid.UUID, note: str | None
) -> CaseEvent:
    primary = await session.get(Report, primary_id)
    if primary is None or primary.id == report.id:
        raise CaseNotFound(field="primary_id")
    if CaseState(primary.state) in FINISHED:
        raise PrimaryNotOpen(field="primary_id")
    event = await execute(
        session,
        report,
        staff_actor(staff),
        Command.MERGE,
        note=note,
        payload={"primary_id": str(primary.id), "primary_number": primary.number},
    )
    report.merged_into_id, report.finished_at = primary.id, event.created_at
    # Reports merged into this one now follow the new primary too.
    await session.execute(update(Report).where(Report.merged_into_id == report.id).values(merged_into_id=primary.id))
    await meet(session, report, deadlines.ACCEPTANCE, event.created_at)
    await notify_reporter(session, report, event, "result", "已合并")
    return event


async def assign(
    session: AsyncSession, report: Report, staff: StaffPrincipal, department_code: str | None, note: str | None
) -> CaseEvent:
    department = await _department(session, department_code, report.department_id)
    event = await execute(
        session,
        report,
        staff_actor(staff),
        Command.ASSIGN,
        note=note,
        payload={"department_id": str(department.id), "department_name": department.name},
    )
    if report.department_id != department.id:
        await routing_service.record_manual(
            session,
            report_id=report.id,
            category_code=report.category_code,
            reason=RoutingReason.MANUAL,
            explanation=f"受理员转办 {department.name}" + (f"：{note}" if note else ""),
            department=department,
            kind="reroute",
            actor_staff_id=staff.staff_id,
            note=note,
        )
    report.department_id = department.id
    return event


async def _department(session: AsyncSession, code: str | None, current: uuid.UUID | None) -> Department:
    if code is not None:
        return await catalog.active_department(session, code)
    if current is None:
        raise DepartmentRequired(field="department_code")
    department = await session.get(Department, current)
    assert department is not None
    return department


async def supervise(session: AsyncSession, report: Report, staff: StaffPrincipal, note: str) -> CaseEvent:
    return await execute(session, report, staff_actor(staff), Command.SUPERVISE, note=note)


# --- the department ------------------------------------------------------------------------------------------------


async def return_case(session: AsyncSession, report: Report, staff: StaffPrincipal, reason: str) -> CaseEvent:
    department = await session.get(Department, report.department_id) if report.department_id else None
    event = await execute(session, report, staff_actor(staff), Command.RETURN_CASE, note=reason)
    name = department.name if department else "承办部门"
    await routing_service.record_manual(
        session,
        report_id=report.id,
        category_code=report.category_code,
        reason=RoutingReason.HANDED_BACK,
        explanation=f"{name} 退回安委办：{reason}",
        department=None,
        kind="hand_back",
        actor_staff_id=staff.staff_id,
        note=reason,
    )
    report.department_id, report.assignee_id = None, None
    return event


async def start_verification(
    session: AsyncSession, report: Report, staff: StaffPrincipal, note: str | None
) -> CaseEvent:
    event = await execute(session, report, staff_actor(staff), Command.START_VERIFICATION, note=note)
    report.assignee_id = staff.staff_id
    return event


async def verify(
    session: AsyncSession,
    report: Report,
    staff: StaffPrincipal,
    *,
    outcome: VerificationOutcome,
    hazard_level: str | None,
    enterprise_name: str | None,
    credit_code: str | None,
    penalty_fen: int | None,
    standard_items: list[str],
    findings: str,
    attachments: list[uuid.UUID],
) -> CaseEvent:
    event = await execute(
        session,
        report,
        staff_actor(staff),
        Command.VERIFY,
        note=findings,
        outcome=outcome,
        payload={"outcome": outcome.value, "hazard_level": hazard_level, "penalty_fen": penalty_fen},
        attachments=[str(a) for a in attachments],
    )
    # After the decision, so that a caller who may not verify hears so (403), not about the photos named.
    await attach_staff_uploads(session, report, staff, attachments)
    # One current verification per case (an appeal can lead to a second one); each is on the timeline too.
    verification = await session.get(CaseVerification, report.id) or CaseVerification(report_id=report.id)
    verification.outcome, verification.hazard_level = outcome.value, hazard_level
    verification.enterprise_name, verification.enterprise_credit_code = enterprise_name, credit_code
    verification.penalty_fen, verification.standard_items, verification.findings = penalty_fen, standard_items, findings
    verification.verified_by, verification.verified_at = staff.staff_id, event.created_at
    session.add(verification)
    report.verification_outcome = outcome.value
    await meet(session, report, deadlines.VERIFICATION, event.created_at)
    if outcome is not VerificationOutcome.FALSE:
        await notify_reporter(session, report, event, "progress", "核查属实")
    await session.flush()
    await hooks.finding_recorded(session, report, hooks.Finding.VERIFIED)
    return event


async def record_penalty(
    session: AsyncSession,
    report: Report,
    staff: StaffPrincipal,
    penalty_fen: int,
    decision_number: str,
    note: str | None,
) -> CaseEvent:
    """The administrative penalty decision (行政处罚决定) of a case verified true; the reward's penalty stage follows
    from it. A later decision (after a review or a court) replaces the amount; each is on the timeline."""
    event = await execute(
        session,
        report,
        staff_actor(staff),
        Command.RECORD_PENALTY,
        note=note,
        payload={"penalty_fen": penalty_fen, "decision_number": decision_number},
    )
    verification = await session.get(CaseVerification, report.id)
    assert verification is not None  # the guard checked it
    verification.penalty_fen = penalty_fen
    await session.flush()
    await hooks.finding_recorded(session, report, hooks.Finding.PENALTY)
    return event


async def order_rectification(
    session: AsyncSession, report: Report, staff: StaffPrincipal, measures: str, days: int | None
) -> CaseEvent:
    event = await execute(session, report, staff_actor(staff), Command.ORDER_RECTIFICATION, note=measures)
    await _new_round(session, report, staff.staff_id, measures, days, event.created_at)
    return event


async def _new_round(
    session: AsyncSession, report: Report, ordered_by: uuid.UUID, measures: str, days: int | None, at: datetime
) -> None:
    default_days, count = await deadlines.rule_for(
        session, deadlines.RECTIFICATION, report.department_id, report.category_code
    )
    if days is not None:
        count = deadlines.DayCount.CALENDAR
    deadline = await deadlines.open_deadline(
        session, report.id, deadlines.RECTIFICATION, at, days or default_days, count
    )
    report.rectification_round += 1
    session.add(
        Rectification(
            report_id=report.id,
            round=report.rectification_round,
            measures=measures,
            due_at=deadline.due_at,
            due_provisional=deadline.provisional,
            ordered_by=ordered_by,
            ordered_at=at,
        )
    )
    await session.flush()


async def report_rectified(
    session: AsyncSession, report: Report, staff: StaffPrincipal, note: str | None, after_photos: list[uuid.UUID]
) -> CaseEvent:
    event = await execute(
        session,
        report,
        staff_actor(staff),
        Command.REPORT_RECTIFIED,
        note=note,
        attachments=[str(p) for p in after_photos],
        after_photo_count=len(after_photos),
    )
    await attach_staff_uploads(session, report, staff, after_photos)  # after the decision, as in verify
    round_ = await current_round(session, report)
    assert round_ is not None
    round_.reported_at, round_.after_photo_ids = event.created_at, [str(p) for p in after_photos]
    await meet(session, report, deadlines.RECTIFICATION, event.created_at)
    return event


async def review_rectification(
    session: AsyncSession, report: Report, staff: StaffPrincipal, passed: bool, note: str | None
) -> CaseEvent:
    event = await execute(
        session,
        report,
        staff_actor(staff),
        Command.REVIEW_RECTIFICATION,
        note=note,
        review_passed=passed,
        payload={"passed": passed, "review_passed": passed},
    )
    round_ = await current_round(session, report)
    assert round_ is not None
    round_.reviewed_by, round_.reviewed_at, round_.passed, round_.review_note = (
        staff.staff_id,
        event.created_at,
        passed,
        note,
    )
    if passed:
        report.finished_at = report.rectified_at = event.created_at
        await notify_reporter(session, report, event, "result", "已办结")
    else:
        # The reviewer who failed the round orders the next one; the four-eyes rule then needs someone else.
        await _new_round(session, report, staff.staff_id, note or "复查未通过，继续整改", None, event.created_at)
    return event


async def close(session: AsyncSession, report: Report, staff: StaffPrincipal, note: str | None) -> CaseEvent:
    event = await execute(session, report, staff_actor(staff), Command.CLOSE, note=note)
    report.finished_at = event.created_at
    await notify_reporter(session, report, event, "result", "已办结")
    return event


async def request_extension(
    session: AsyncSession, report: Report, staff: StaffPrincipal, days: int, reason: str
) -> CaseEvent:
    event = await execute(
        session, report, staff_actor(staff), Command.REQUEST_EXTENSION, note=reason, payload={"days": days}
    )
    report.extension = "requested"
    return event


async def approve_extension(
    session: AsyncSession, report: Report, staff: StaffPrincipal, note: str | None
) -> CaseEvent:
    request = await session.scalar(
        select(CaseEvent)
        .where(CaseEvent.report_id == report.id, CaseEvent.command == Command.REQUEST_EXTENSION.value)
        .order_by(CaseEvent.sequence.desc())
        .limit(1)
    )
    days = int(request.payload["days"]) if request else 0
    reason = request.note if request and request.note else ""
    event = await execute(
        session,
        report,
        staff_actor(staff),
        Command.APPROVE_EXTENSION,
        note=note,
        payload={"days": days, "reason": reason},
    )
    await deadlines.extend_deadline(session, report.id, deadlines.VERIFICATION, days, reason)
    report.extension = "granted"
    await notify_reporter(session, report, event, "progress", "延期核查")
    return event


# --- the reporter --------------------------------------------------------------------------------------------------


async def appeal(session: AsyncSession, report: Report, reporter: ReporterPrincipal, reason: str) -> CaseEvent:
    event = await execute(session, report, reporter_actor(reporter), Command.APPEAL, note=reason)
    report.appeals_used += 1
    report.finished_at, report.rejection_reason = None, None
    return event


async def rate(
    session: AsyncSession, report: Report, reporter: ReporterPrincipal, score: int, comment: str | None
) -> CaseEvent:
    event = await execute(
        session, report, reporter_actor(reporter), Command.RATE, note=comment, payload={"score": score}
    )
    report.satisfaction_score, report.satisfaction_comment = score, comment
    return event


# --- evidence from staff -------------------------------------------------------------------------------------------


async def attach_staff_uploads(
    session: AsyncSession, report: Report, staff: StaffPrincipal, upload_ids: list[uuid.UUID]
) -> None:
    """Inspection photos and after-photos: the staff member's own uploads, joined to the case but not to the
    reporter's photos (no position)."""
    if not upload_ids:
        return
    rows = (
        await session.scalars(
            select(Upload).where(Upload.id.in_(upload_ids), Upload.owner == f"staff:{staff.staff_id}").with_for_update()
        )
    ).all()
    if len(rows) != len(set(upload_ids)):
        raise UploadNotFound(field="attachments")
    if any(row.report_id is not None for row in rows):
        raise UploadAlreadyAttached(field="attachments")
    for row in rows:
        row.report_id = report.id
