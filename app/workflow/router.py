"""Staff-facing case routes. Each case loaded by id goes through one scoping dependency: out of scope looks
exactly like not found."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.core.context import AppContext, get_context
from app.core.errors import DomainError
from app.core.http import error_responses
from app.core.session import DbSession, ReadSession
from app.core.validation import IsoDateTime
from app.deadlines import service as deadline_service
from app.deadlines.calendar import parse_year_schedule
from app.deadlines.schemas import DeadlinePolicyBody, DeadlinePolicyView
from app.identity.dependencies import CurrentReporter, CurrentStaff, StaffPrincipal, requires, requires_any
from app.identity.roles import Permission
from app.intake.models import Report
from app.routing.schemas import CODE_PATTERN
from app.workflow import commands, service, transitions
from app.workflow.errors import CaseNotFound, HazardLevelRequired, ReferralRequired
from app.workflow.models import CaseEvent
from app.workflow.schemas import (
    AppealBody,
    AssignBody,
    AuditPage,
    CasePage,
    CaseView,
    CommandResult,
    EventView,
    ExtensionRequestBody,
    MergeBody,
    NoteBody,
    OrderRectificationBody,
    PenaltyBody,
    QueueFilter,
    QueuePage,
    RatingBody,
    ReasonBody,
    RejectBody,
    RejectionReason,
    ReporterStatus,
    ReporterTimelineEntry,
    ReportRectifiedBody,
    RerouteRequest,
    RevealRequest,
    ReviewBody,
    VerifyBody,
    YearScheduleBody,
    YearScheduleResult,
)
from app.workflow.transitions import CaseState, VerificationOutcome

router = APIRouter(prefix="/v1/staff", tags=["cases"])
Context = Annotated[AppContext, Depends(get_context)]


async def _case(
    report_id: uuid.UUID,
    staff: Annotated[
        StaffPrincipal, Depends(requires_any(Permission.VIEW_ALL_REPORTS, Permission.VIEW_DEPARTMENT_REPORTS))
    ],
    session: DbSession,
) -> Report:
    return await service.scoped_case(session, staff, report_id, for_update=True)


ScopedCase = Annotated[Report, Depends(_case)]


@router.get(
    "/cases/{report_id}",
    operation_id="get_case",
    summary="案件详情（不含举报人身份）",
    responses=error_responses(401, 403, 404, 422),
)
async def get_case(case: ScopedCase, staff: CurrentStaff, session: DbSession, context: Context) -> CaseView:
    return await service.case_view(session, context, staff, case)


@router.get(
    "/triage", operation_id="list_triage", summary="待人工分派队列（含原因）", responses=error_responses(401, 403, 422)
)
async def list_triage(
    _staff: Annotated[StaffPrincipal, Depends(requires(Permission.VIEW_TRIAGE))],
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> CasePage:
    return await service.triage_queue(session, cursor, limit)


@router.post(
    "/cases/{report_id}/reroute",
    operation_id="reroute_case",
    summary="改派：改正行业领域或指定承办部门",
    responses=error_responses(401, 403, 404, 422),
)
async def reroute_case(
    # The permission is checked before the case is looked up: lacking the function is a 403 on any case.
    staff: Annotated[StaffPrincipal, Depends(requires(Permission.REROUTE))],
    body: RerouteRequest,
    case: ScopedCase,
    session: DbSession,
    context: Context,
) -> CaseView:
    await service.reroute(session, context, staff, case, body)
    return await service.case_view(session, context, staff, case)


def _result(case: Report, event: CaseEvent) -> CommandResult:
    return CommandResult(case_id=case.id, state=case.state, event=service.event_view(event))


Staff = CurrentStaff
COMMAND_ERRORS = error_responses(401, 403, 404, 409, 422)


@router.post("/cases/{report_id}/accept", operation_id="accept_case", summary="受理", responses=COMMAND_ERRORS)
async def accept_case(body: NoteBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    return _result(case, await commands.accept(session, case, staff, body.note))


@router.post(
    "/cases/{report_id}/reject",
    operation_id="reject_case",
    summary="不予受理（理由取自固定列表）",
    responses=COMMAND_ERRORS,
)
async def reject_case(body: RejectBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    if body.reason is RejectionReason.OUTSIDE_JURISDICTION and not body.refer_to:
        raise ReferralRequired(field="refer_to")
    extra = {"refer_to": body.refer_to, "duplicate_of": body.duplicate_of}
    event = await commands.reject(
        session, case, staff, body.reason.value, body.note, {k: v for k, v in extra.items() if v}
    )
    return _result(case, event)


@router.post("/cases/{report_id}/merge", operation_id="merge_case", summary="合并到主案件", responses=COMMAND_ERRORS)
async def merge_case(body: MergeBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    return _result(case, await commands.merge(session, case, staff, body.primary_id, body.note))


@router.post("/cases/{report_id}/assign", operation_id="assign_case", summary="转办承办部门", responses=COMMAND_ERRORS)
async def assign_case(body: AssignBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    return _result(case, await commands.assign(session, case, staff, body.department_code, body.note))


@router.post("/cases/{report_id}/supervise", operation_id="supervise_case", summary="督办", responses=COMMAND_ERRORS)
async def supervise_case(body: ReasonBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    return _result(case, await commands.supervise(session, case, staff, body.reason))


@router.post(
    "/cases/{report_id}/return",
    operation_id="return_case",
    summary="退回安委办（非本部门职责）",
    responses=COMMAND_ERRORS,
)
async def return_case(body: ReasonBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    return _result(case, await commands.return_case(session, case, staff, body.reason))


@router.post(
    "/cases/{report_id}/start-verification",
    operation_id="start_verification",
    summary="开始核查",
    responses=COMMAND_ERRORS,
)
async def start_verification(body: NoteBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    return _result(case, await commands.start_verification(session, case, staff, body.note))


@router.post("/cases/{report_id}/verify", operation_id="verify_case", summary="认定核查结论", responses=COMMAND_ERRORS)
async def verify_case(body: VerifyBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    if body.outcome is not VerificationOutcome.FALSE and body.hazard_level is None:
        raise HazardLevelRequired(field="hazard_level")
    enterprise = body.enterprise
    event = await commands.verify(
        session,
        case,
        staff,
        outcome=body.outcome,
        hazard_level=body.hazard_level.value if body.hazard_level else None,
        enterprise_name=enterprise.name if enterprise else None,
        credit_code=enterprise.credit_code if enterprise else None,
        penalty_fen=body.penalty_fen,
        standard_items=body.standard_items,
        findings=body.findings,
        attachments=body.attachments,
    )
    return _result(case, event)


@router.post(
    "/cases/{report_id}/record-penalty",
    operation_id="record_penalty",
    summary="登记行政处罚决定（核查属实的案件；据此提出处罚阶段的举报奖励）",
    responses=COMMAND_ERRORS,
)
async def record_penalty(body: PenaltyBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    event = await commands.record_penalty(session, case, staff, body.penalty_fen, body.decision_number, body.note)
    return _result(case, event)


@router.post(
    "/cases/{report_id}/order-rectification",
    operation_id="order_rectification",
    summary="责令整改",
    responses=COMMAND_ERRORS,
)
async def order_rectification(
    body: OrderRectificationBody, case: ScopedCase, staff: Staff, session: DbSession
) -> CommandResult:
    return _result(case, await commands.order_rectification(session, case, staff, body.measures, body.deadline_days))


@router.post(
    "/cases/{report_id}/report-rectified",
    operation_id="report_rectified",
    summary="报告整改完成（须附整改后照片）",
    responses=COMMAND_ERRORS,
)
async def report_rectified(
    body: ReportRectifiedBody, case: ScopedCase, staff: Staff, session: DbSession
) -> CommandResult:
    return _result(case, await commands.report_rectified(session, case, staff, body.note, body.after_photos))


@router.post(
    "/cases/{report_id}/review-rectification",
    operation_id="review_rectification",
    summary="整改复查（复查人不得为责令整改人）",
    responses=COMMAND_ERRORS,
)
async def review_rectification(body: ReviewBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    return _result(case, await commands.review_rectification(session, case, staff, body.passed, body.note))


@router.post(
    "/cases/{report_id}/close", operation_id="close_case", summary="办结（核查不属实）", responses=COMMAND_ERRORS
)
async def close_case(body: NoteBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    return _result(case, await commands.close(session, case, staff, body.note))


@router.post(
    "/cases/{report_id}/request-extension",
    operation_id="request_extension",
    summary="申请延期核查（一次，至多 30 日）",
    responses=COMMAND_ERRORS,
)
async def request_extension(
    body: ExtensionRequestBody, case: ScopedCase, staff: Staff, session: DbSession
) -> CommandResult:
    return _result(case, await commands.request_extension(session, case, staff, body.days, body.reason))


@router.post(
    "/cases/{report_id}/approve-extension",
    operation_id="approve_extension",
    summary="批准延期（部门负责人）",
    responses=COMMAND_ERRORS,
)
async def approve_extension(body: NoteBody, case: ScopedCase, staff: Staff, session: DbSession) -> CommandResult:
    return _result(case, await commands.approve_extension(session, case, staff, body.note))


@router.get(
    "/cases/{report_id}/timeline",
    operation_id="get_case_timeline",
    summary="案件时间线",
    responses=error_responses(401, 403, 404, 422),
)
async def get_case_timeline(case: ScopedCase, session: DbSession) -> list[EventView]:
    return [service.event_view(e) for e in await service.events_of(session, case.id)]


@router.post(
    "/cases/{report_id}/reveal-identity",
    operation_id="reveal_identity",
    summary="查看举报人身份（须说明理由，记入审计）",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def reveal_identity(
    staff: Annotated[StaffPrincipal, Depends(requires(Permission.REVEAL_IDENTITY))],
    body: RevealRequest,
    case: ScopedCase,
    session: DbSession,
    context: Context,
) -> Any:
    outcome = await service.reveal_identity(session, context, staff, case, body.reason)
    if isinstance(outcome, DomainError):
        return JSONResponse(outcome.body(), status_code=outcome.status)
    return outcome


@router.get(
    "/cases",
    operation_id="list_cases",
    summary="案件队列（筛选、键集分页、按状态计数）",
    responses=error_responses(401, 403, 422),
)
async def list_cases(
    staff: Annotated[
        StaffPrincipal, Depends(requires_any(Permission.VIEW_ALL_REPORTS, Permission.VIEW_DEPARTMENT_REPORTS))
    ],
    session: ReadSession,
    state: Annotated[list[str] | None, Query(max_length=11)] = None,
    category: Annotated[str | None, Query(pattern=CODE_PATTERN, description="行业领域代码")] = None,
    jurisdiction: Annotated[str | None, Query(pattern=r"^[0-9]{6,12}$")] = None,
    department_id: uuid.UUID | None = None,
    overdue: bool | None = None,
    submitted_from: IsoDateTime | None = None,
    submitted_to: IsoDateTime | None = None,
    flag: Annotated[str | None, Query(pattern=r"^[a-z_]{1,40}$")] = None,
    mine: bool = False,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> QueuePage:
    filters = QueueFilter(
        state=state,
        category=category,
        jurisdiction=jurisdiction,
        department_id=department_id,
        overdue=overdue,
        submitted_from=submitted_from,
        submitted_to=submitted_to,
        flag=flag,
        mine=mine,
    )
    return await service.queue(session, staff, filters, cursor, limit)


@router.get(
    "/supervision",
    operation_id="list_supervision",
    summary="督办：逾期未办结的案件",
    responses=error_responses(401, 403, 422),
)
async def list_supervision(
    staff: Annotated[StaffPrincipal, Depends(requires(Permission.VIEW_TRIAGE))],
    session: ReadSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> QueuePage:
    return await service.supervision_list(session, staff, cursor, limit)


# --- the reporter's side -----------------------------------------------------------------------------------------

reporter_router = APIRouter(prefix="/v1/me/reports", tags=["intake"])


async def _own_report(report_id: uuid.UUID, reporter: CurrentReporter, session: DbSession) -> Report:
    report = await session.scalar(
        select(Report).where(Report.id == report_id, Report.reporter_id == reporter.reporter_id).with_for_update()
    )
    if report is None:
        raise CaseNotFound()
    return report


OwnReport = Annotated[Report, Depends(_own_report)]


@reporter_router.get(
    "/{report_id}/timeline",
    operation_id="get_my_report_timeline",
    summary="我的举报进度",
    responses=error_responses(401, 404, 422),
)
async def get_my_report_timeline(report: OwnReport, session: DbSession) -> list[ReporterTimelineEntry]:
    return await service.reporter_timeline(session, report)


@reporter_router.post(
    "/{report_id}/appeal",
    operation_id="appeal_report",
    summary="申诉（办结或不予受理后一次）",
    responses=COMMAND_ERRORS,
)
async def appeal_report(
    body: AppealBody, report: OwnReport, reporter: CurrentReporter, session: DbSession
) -> ReporterStatus:
    await commands.appeal(session, report, reporter, body.reason)
    return ReporterStatus(state=report.state, label=transitions.reporter_label(CaseState(report.state)))


@reporter_router.post(
    "/{report_id}/rating", operation_id="rate_report", summary="满意度评价（办结后）", responses=COMMAND_ERRORS
)
async def rate_report(
    body: RatingBody, report: OwnReport, reporter: CurrentReporter, session: DbSession
) -> ReporterStatus:
    await commands.rate(session, report, reporter, body.score, body.comment)
    return ReporterStatus(state=report.state, label=transitions.reporter_label(CaseState(report.state)))


# --- the admin's calendar, deadline policies and audit log ---------------------------------------------------------

admin_router = APIRouter(prefix="/v1/admin", tags=["cases"])
Admin = Annotated[StaffPrincipal, Depends(requires(Permission.MANAGE_REFERENCE_DATA))]


@admin_router.post(
    "/calendar-years",
    operation_id="load_calendar_year",
    summary="载入某年法定节假日与调休安排（重算未定期限）",
    responses=error_responses(401, 403, 422),
)
async def load_calendar_year(body: YearScheduleBody, admin: Admin, session: DbSession) -> YearScheduleResult:
    schedule = parse_year_schedule(body.model_dump())
    changed = await deadline_service.load_year(session, schedule, admin.key)
    return YearScheduleResult(year=schedule.year, recomputed_deadlines=changed)


@admin_router.put(
    "/deadline-policies",
    operation_id="set_deadline_policy",
    summary="设置办理期限（按部门、行业领域）",
    responses=error_responses(401, 403, 422),
)
async def set_deadline_policy(body: DeadlinePolicyBody, admin: Admin, session: DbSession) -> DeadlinePolicyView:
    return await deadline_service.set_policy(session, body, admin.key)


@admin_router.get(
    "/deadline-policies",
    operation_id="list_deadline_policies",
    summary="办理期限设置",
    responses=error_responses(401, 403),
)
async def list_deadline_policies(_admin: Admin, session: DbSession) -> list[DeadlinePolicyView]:
    return await deadline_service.list_policies(session)


@admin_router.get(
    "/audit-log",
    operation_id="list_audit_log",
    summary="审计日志（工作人员操作与身份查看）",
    responses=error_responses(401, 403, 422),
)
async def list_audit_log(
    _admin: Annotated[StaffPrincipal, Depends(requires(Permission.VIEW_AUDIT_LOG))],
    session: DbSession,
    actor: Annotated[str | None, Query(max_length=80)] = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    target: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditPage:
    return await service.audit_log(session, actor=actor, action=action, target=target, cursor=cursor, limit=limit)
