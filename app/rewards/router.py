"""Reward routes: the department's confirmation, the auditors' decisions, payments and questions, the reporter's
claim and appeal, and the reward policies. Money-moving commands require an Idempotency-Key."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import RootModel

from app.core import audit
from app.core.context import AppContext, get_context
from app.core.http import error_responses
from app.core.idempotency import required_idempotency_key_header
from app.core.session import DbSession
from app.core.validation import IsoDate
from app.identity.dependencies import CurrentReporter, CurrentStaff, StaffPrincipal, requires, requires_any
from app.identity.roles import Permission
from app.rewards import exports, service
from app.rewards.lifecycle import RewardState
from app.rewards.schemas import (
    AppealRewardBody,
    ClaimByCodeBody,
    ConfirmBody,
    DecisionBody,
    LedgerPage,
    PayBody,
    PayeeBody,
    PolicyVersionView,
    RejectRewardBody,
    ReporterReward,
    RevealedPayee,
    RevealPayeeBody,
    ReversePaymentBody,
    RewardPage,
    RewardTotals,
    RewardView,
)
from app.routing.schemas import CODE_PATTERN

router = APIRouter(prefix="/v1/staff/rewards", tags=["rewards"])
reporter_router = APIRouter(prefix="/v1/me/rewards", tags=["rewards (reporter)"])
public_router = APIRouter(prefix="/v1/rewards", tags=["rewards (reporter)"])
admin_router = APIRouter(prefix="/v1/admin/reward-policies", tags=["admin"])

Context = Annotated[AppContext, Depends(get_context)]
# Money-moving commands: the key is required (documented as such; a request without one is a 422).
IdempotencyKey = Annotated[str, Depends(required_idempotency_key_header)]
RewardViewer = Annotated[
    StaffPrincipal, Depends(requires_any(Permission.VIEW_REWARDS, Permission.VIEW_DEPARTMENT_REWARDS))
]
COMMAND_ERRORS = error_responses(401, 403, 404, 409, 422)
QUERY_ERRORS = error_responses(401, 403, 422)


async def reward_filter(
    state: Annotated[list[RewardState] | None, Query(max_length=10, description="状态，可多选")] = None,
    stage: Annotated[Literal["verification", "penalty"] | None, Query()] = None,
    department_id: uuid.UUID | None = None,
    category: Annotated[str | None, Query(pattern=CODE_PATTERN, description="行业领域代码")] = None,
    policy_code: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] = None,
    amount_min_fen: Annotated[int | None, Query(ge=0, le=10**12)] = None,
    amount_max_fen: Annotated[int | None, Query(ge=0, le=10**12)] = None,
    date_field: Annotated[Literal["created", "approved", "paid"], Query(description="按哪个日期筛选")] = "created",
    date_from: Annotated[IsoDate | None, Query(description="起始日（北京时间，含）")] = None,
    date_to: Annotated[IsoDate | None, Query(description="截止日（北京时间，含）")] = None,
    payee_name: Annotated[str | None, Query(min_length=2, max_length=30, description="领奖人姓名（精确匹配）")] = None,
    payee_id_number: Annotated[str | None, Query(min_length=18, max_length=18, description="领奖人身份证号")] = None,
) -> service.RewardFilter:
    return service.RewardFilter(
        states=tuple(s.value for s in state or ()),
        stage=stage,
        department_id=department_id,
        category=category,
        policy_code=policy_code,
        amount_min_fen=amount_min_fen,
        amount_max_fen=amount_max_fen,
        date_field=date_field,
        date_from=date_from,
        date_to=date_to,
        payee_name=payee_name,
        payee_id_number=payee_id_number,
    )


Filter = Annotated[service.RewardFilter, Depends(reward_filter)]


@router.get(
    "",
    operation_id="search_rewards",
    summary="查询奖励（按期间、部门、领域、政策、状态、金额、领奖人）",
    responses=QUERY_ERRORS,
)
async def search_rewards(
    staff: RewardViewer,
    session: DbSession,
    context: Context,
    filters: Filter,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RewardPage:
    return await service.search(session, context, staff, filters, cursor, limit)


@router.get(
    "/totals",
    operation_id="reward_totals",
    summary="奖励合计：笔数、金额、按状态分组、账目净额",
    responses=QUERY_ERRORS,
)
async def reward_totals(staff: RewardViewer, session: DbSession, context: Context, filters: Filter) -> RewardTotals:
    return await service.totals(session, context, staff, filters)


@router.get(
    "/ledger", operation_id="reward_ledger", summary="奖励资金账目（只增不改，更正为冲销行）", responses=QUERY_ERRORS
)
async def reward_ledger(
    staff: RewardViewer,
    session: DbSession,
    context: Context,
    filters: Filter,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> LedgerPage:
    return await service.ledger_page(session, context, staff, filters, cursor, limit)


def _export(
    session_staff: StaffPrincipal, context: AppContext, filters: service.RewardFilter, kind: str
) -> StreamingResponse:
    batches = service.export_batches(context, session_staff, filters)
    if kind == "csv":
        return StreamingResponse(
            exports.csv_stream(batches),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="rewards.csv"'},
        )
    return StreamingResponse(
        exports.xlsx_stream(batches),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="rewards.xlsx"'},
    )


async def _audit_export(session: DbSession, staff: StaffPrincipal, filters: service.RewardFilter, kind: str) -> None:
    audit.record(
        session,
        actor_id=staff.key,
        actor_role=staff.role.value,
        action="rewards_exported",
        target_type="rewards",
        target_id=kind,
        detail={k: str(v) for k, v in vars(filters).items() if v not in (None, (), "")},
    )


EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
    **QUERY_ERRORS,
}


@router.get(
    "/export.csv",
    operation_id="export_rewards_csv",
    summary="导出奖励（CSV，流式）",
    response_class=StreamingResponse,
    responses=EXPORT_RESPONSES,
)
async def export_rewards_csv(
    staff: RewardViewer, session: DbSession, context: Context, filters: Filter
) -> StreamingResponse:
    await _audit_export(session, staff, filters, "csv")
    return _export(staff, context, filters, "csv")


@router.get(
    "/export.xlsx",
    operation_id="export_rewards_xlsx",
    summary="导出奖励（XLSX，流式）",
    response_class=StreamingResponse,
    responses=EXPORT_RESPONSES,
)
async def export_rewards_xlsx(
    staff: RewardViewer, session: DbSession, context: Context, filters: Filter
) -> StreamingResponse:
    await _audit_export(session, staff, filters, "xlsx")
    return _export(staff, context, filters, "xlsx")


@router.get(
    "/{reward_id}",
    operation_id="get_reward",
    summary="奖励详情：核定说明、账目、付款",
    responses=error_responses(401, 403, 404, 422),
)
async def get_reward(reward_id: uuid.UUID, staff: RewardViewer, session: DbSession) -> RewardView:
    return await service.reward_view(session, staff, await service.scoped_reward(session, staff, reward_id))


async def _command(
    session: DbSession,
    context: AppContext,
    staff: StaffPrincipal,
    reward_id: uuid.UUID,
    name: str,
    key: str,
    body: Any,
    run: Any,
) -> Any:
    async def action() -> RewardView:
        return await service.reward_view(session, staff, await run())

    return await service.idempotent(session, context, staff.key, f"reward_{name}:{reward_id}", key, body, action)


@router.post(
    "/{reward_id}/confirm",
    operation_id="confirm_reward",
    summary="承办部门负责人确认奖励建议",
    responses=COMMAND_ERRORS,
)
async def confirm_reward(
    reward_id: uuid.UUID,
    body: ConfirmBody,
    staff: CurrentStaff,
    session: DbSession,
    context: Context,
    key: IdempotencyKey,
) -> RewardView:
    return await _command(
        session,
        context,
        staff,
        reward_id,
        "confirm",
        key,
        body,
        lambda: service.confirm(session, staff, reward_id, body),
    )


@router.post(
    "/{reward_id}/approve", operation_id="approve_reward", summary="奖励审核通过（非确认人）", responses=COMMAND_ERRORS
)
async def approve_reward(
    reward_id: uuid.UUID,
    body: DecisionBody,
    staff: CurrentStaff,
    session: DbSession,
    context: Context,
    key: IdempotencyKey,
) -> RewardView:
    return await _command(
        session,
        context,
        staff,
        reward_id,
        "approve",
        key,
        body,
        lambda: service.approve(session, context, staff, reward_id, body.note),
    )


@router.post(
    "/{reward_id}/reject",
    operation_id="reject_reward",
    summary="奖励审核不通过（须说明理由）",
    responses=COMMAND_ERRORS,
)
async def reject_reward(
    reward_id: uuid.UUID,
    body: RejectRewardBody,
    staff: CurrentStaff,
    session: DbSession,
    context: Context,
    key: IdempotencyKey,
) -> RewardView:
    return await _command(
        session,
        context,
        staff,
        reward_id,
        "reject",
        key,
        body,
        lambda: service.reject(session, staff, reward_id, body.reason),
    )


@router.post(
    "/{reward_id}/pay", operation_id="pay_reward", summary="登记奖励发放（仅一次；非审核人）", responses=COMMAND_ERRORS
)
async def pay_reward(
    reward_id: uuid.UUID, body: PayBody, staff: CurrentStaff, session: DbSession, context: Context, key: IdempotencyKey
) -> RewardView:
    return await _command(
        session,
        context,
        staff,
        reward_id,
        "pay",
        key,
        body,
        lambda: service.pay(session, context, staff, reward_id, body),
    )


@router.post(
    "/{reward_id}/reverse-payment",
    operation_id="reverse_reward_payment",
    summary="冲正发放记录（款项退回时）",
    responses=COMMAND_ERRORS,
)
async def reverse_reward_payment(
    reward_id: uuid.UUID,
    body: ReversePaymentBody,
    staff: CurrentStaff,
    session: DbSession,
    context: Context,
    key: IdempotencyKey,
) -> RewardView:
    return await _command(
        session,
        context,
        staff,
        reward_id,
        "reverse",
        key,
        body,
        lambda: service.reverse_payment(session, staff, reward_id, body.reason),
    )


@router.post(
    "/{reward_id}/reveal-payee",
    operation_id="reveal_payee",
    summary="查看领奖人完整信息（须说明理由，留痕）",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def reveal_payee(
    reward_id: uuid.UUID,
    body: RevealPayeeBody,
    staff: Annotated[StaffPrincipal, Depends(requires(Permission.REVEAL_PAYEE))],
    session: DbSession,
    context: Context,
) -> RevealedPayee:
    reward = await service.scoped_reward(session, staff, reward_id)
    return await service.reveal_payee(session, context, staff, reward, body.reason)


# --- the reporter --------------------------------------------------------------------------------------------------


@reporter_router.get("", operation_id="list_my_rewards", summary="我的举报奖励", responses=error_responses(401))
async def list_my_rewards(reporter: CurrentReporter, session: DbSession) -> list[ReporterReward]:
    return await service.my_rewards(session, reporter)


@reporter_router.get(
    "/{reward_id}", operation_id="get_my_reward", summary="我的一项奖励", responses=error_responses(401, 404, 422)
)
async def get_my_reward(reward_id: uuid.UUID, reporter: CurrentReporter, session: DbSession) -> ReporterReward:
    return await service.my_reward(session, reporter, reward_id)


@reporter_router.post(
    "/{reward_id}/claim",
    operation_id="claim_my_reward",
    summary="领取奖励：填写实名、身份证号和收款账户",
    responses=COMMAND_ERRORS,
)
async def claim_my_reward(
    reward_id: uuid.UUID,
    body: PayeeBody,
    reporter: CurrentReporter,
    session: DbSession,
    context: Context,
    key: IdempotencyKey,
) -> ReporterReward:
    async def action() -> ReporterReward:
        await service.claim(session, context, reporter, reward_id, body)
        return await service.my_reward(session, reporter, reward_id)

    return await service.idempotent(session, context, reporter.key, f"reward_claim:{reward_id}", key, body, action)


@reporter_router.post(
    "/{reward_id}/appeal",
    operation_id="appeal_my_reward",
    summary="对不予奖励或审核不通过申诉（一次，15 日内）",
    responses=COMMAND_ERRORS,
)
async def appeal_my_reward(
    reward_id: uuid.UUID, body: AppealRewardBody, reporter: CurrentReporter, session: DbSession
) -> ReporterReward:
    await service.appeal(session, reporter, reward_id, body.reason)
    return await service.my_reward(session, reporter, reward_id)


@public_router.post(
    "/claim-by-code",
    operation_id="claim_reward_by_code",
    summary="凭举报编号和查询码领取奖励（匿名举报、电话举报）",
    responses=error_responses(404, 409, 422),
)
async def claim_reward_by_code(
    body: ClaimByCodeBody, session: DbSession, context: Context, key: IdempotencyKey
) -> list[ReporterReward]:
    async def action() -> RootModel[list[ReporterReward]]:
        rewards = await service.claim_by_code(session, context, body.number, body.query_code, body)
        now = service.utcnow()
        return RootModel[list[ReporterReward]]([service.reporter_reward(r, body.number, now) for r in rewards])

    return await service.idempotent(session, context, f"code:{body.number}", "reward_claim_by_code", key, body, action)


# --- policies --------------------------------------------------------------------------------------------------------

PolicyAdmin = Annotated[StaffPrincipal, Depends(requires(Permission.MANAGE_REWARD_POLICIES))]


@admin_router.get(
    "", operation_id="list_reward_policies", summary="奖励政策（全部版本）", responses=error_responses(401, 403)
)
async def list_reward_policies(_staff: PolicyAdmin, session: DbSession) -> list[PolicyVersionView]:
    return [service.policy_view(row) for row, _ in await service.policy_versions(session)]


# What a schema can say of a policy document; app/rewards/policy.py parses the rest (every rule's own fields, a
# minimum not above its maximum, an end not before the start), refusing unknown keys at every level.
POLICY_DOCUMENT_SCHEMA: dict[str, Any] = {
    "required": ["code", "name", "version", "effective_from", "rules"],
    "properties": {
        "code": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"},
        "name": {"type": "string", "minLength": 1, "pattern": "[^\\s]"},
        "version": {"type": "integer", "minimum": 1},
        "effective_from": {"type": "string", "format": "date"},
        "effective_to": {"type": ["string", "null"], "format": "date"},
        "jurisdiction_scope": {"type": ["string", "null"], "pattern": "^[0-9]{6}(?:[0-9]{3}){0,2}$"},
        "rules": {"type": "object", "description": "举报类别 → 规则（见 app/rewards/policy.py 的 policy_to_data）"},
    },
}


@admin_router.post(
    "",
    operation_id="add_reward_policy",
    summary="新增奖励政策或其新版本（已有版本不可修改）",
    status_code=201,
    responses=error_responses(401, 403, 409, 422),
)
async def add_reward_policy(
    staff: PolicyAdmin,
    session: DbSession,
    document: Annotated[dict[str, Any], Body(json_schema_extra=POLICY_DOCUMENT_SCHEMA)],
) -> PolicyVersionView:
    return await service.add_policy_version(session, staff, document)
