"""Rewards as use cases: the proposal when a case's findings change, the commands of the lifecycle, the ledger rows
they write, and the views. Every command locks the reward row and re-checks its state inside the lock (on SQLite
the transaction's BEGIN IMMEDIATE is the lock), writes at most one ledger row through :mod:`app.rewards.ledger`,
an audit entry, and any message to the reporter, all in the caller's transaction."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Department
from app.core import audit, idempotency
from app.core.context import AppContext
from app.core.db import is_postgresql, unit_of_work, utcnow
from app.core.errors import InvalidInput
from app.core.pagination import encode_cursor, newest_first
from app.core.security import request_fingerprint
from app.core.validation import is_valid_resident_id
from app.deadlines.calendar import CHINA_TZ, china_day, end_of_china_day
from app.identity.dependencies import ReporterPrincipal, StaffPrincipal
from app.identity.roles import Permission, has_permission
from app.intake import service as intake_service
from app.intake.models import Report, ReportContact
from app.notifications import outbox
from app.rewards import ledger, lifecycle, policy
from app.rewards.channels import CHANNELS, ChannelCode, PaymentInstruction, out_bill_no
from app.rewards.errors import (
    EarlierStagePending,
    InvalidResidentId,
    NoPayeeOnFile,
    NoRewardToClaim,
    PolicyVersionExists,
)
from app.rewards.lifecycle import RewardActor, RewardCommand, RewardNotFound, RewardSnapshot, RewardState
from app.rewards.models import Reward, RewardLedgerEntry, RewardPayment, RewardPolicyVersion
from app.rewards.policy import CaseKind, Stage
from app.rewards.schemas import (
    BalanceView,
    ConfirmBody,
    ExplanationLineView,
    LedgerEntryView,
    LedgerPage,
    MaskedPayee,
    PayBody,
    PayeeBody,
    PaymentView,
    PolicyRef,
    PolicyVersionView,
    ReporterReward,
    RevealedPayee,
    RewardPage,
    RewardSummary,
    RewardTotals,
    RewardView,
    StateTotal,
)
from app.workflow import hooks
from app.workflow.models import CaseVerification
from app.workflow.schemas import DepartmentRef
from app.workflow.service import mask_name
from app.workflow.transitions import VerificationOutcome

log = logging.getLogger(__name__)

STAGE_SUFFIX = {Stage.VERIFICATION: "V", Stage.PENALTY: "P"}
# States in which the system may still replace its proposal (a new verification after an appeal, a new penalty).
REPROPOSABLE = frozenset({RewardState.PROPOSED, RewardState.AWAITING_PENALTY, RewardState.CONFIRMED})
# Stages whose approved amount counts as already awarded for the report (paid_for_this_report_fen).
AWARDED = frozenset({RewardState.APPROVED, RewardState.CLAIMED, RewardState.PAID, RewardState.LAPSED})
UNSETTLED = frozenset({RewardState.PROPOSED, RewardState.CONFIRMED, RewardState.APPEALED})
REPORTER_LABELS = {
    RewardState.PROPOSED: "审核中",
    RewardState.CONFIRMED: "审核中",
    RewardState.APPEALED: "申诉复核中",
    RewardState.AWAITING_PENALTY: "待处罚决定后核定",
    RewardState.NOT_PAYABLE: "不予奖励",
    RewardState.REJECTED: "未获批准",
    RewardState.APPROVED: "待领取",
    RewardState.CLAIMED: "发放中",
    RewardState.PAID: "已发放",
    RewardState.LAPSED: "已逾期",
}
# The reporter sees amounts and explanations only once the reward is decided.
DECIDED = frozenset(
    {
        RewardState.NOT_PAYABLE,
        RewardState.REJECTED,
        RewardState.APPROVED,
        RewardState.CLAIMED,
        RewardState.PAID,
        RewardState.LAPSED,
    }
)
_KIND_OF_HAZARD_LEVEL = {"general": CaseKind.GENERAL_HAZARD, "major": CaseKind.MAJOR_HAZARD}


def install() -> None:
    """Propose rewards when a case's findings change (called by the app factory)."""
    hooks.on_finding(on_finding)


def adcode_path(adcode: str | None) -> list[str]:
    """Province, city, county (and township) adcodes of a place, from the code's own structure."""
    if not adcode or len(adcode) < 6:
        return []
    candidates = [adcode[:2] + "0000", adcode[:4] + "00", adcode[:6], adcode]
    path: list[str] = []
    for code in candidates:
        if code not in path:
            path.append(code)
    return path


def _china_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    return datetime.combine(first, time.min, CHINA_TZ), end_of_china_day(last)


# --- policies ------------------------------------------------------------------------------------------------------


async def policy_versions(session: AsyncSession) -> list[tuple[RewardPolicyVersion, policy.RewardPolicy]]:
    rows = (await session.scalars(select(RewardPolicyVersion).order_by(RewardPolicyVersion.code, "version"))).all()
    return [(row, policy.parse_policy(row.document)) for row in rows]


async def add_policy_version(
    session: AsyncSession, staff: StaffPrincipal, document: dict[str, Any]
) -> PolicyVersionView:
    parsed = policy.parse_policy(document)
    exists = await session.scalar(
        select(RewardPolicyVersion.id).where(
            RewardPolicyVersion.code == parsed.code, RewardPolicyVersion.version == parsed.version
        )
    )
    if exists is not None:
        raise PolicyVersionExists(field="version", code=parsed.code, version=parsed.version)
    row = RewardPolicyVersion(
        code=parsed.code,
        version=parsed.version,
        name=parsed.name,
        effective_from=parsed.effective_from,
        effective_to=parsed.effective_to,
        jurisdiction_scope=parsed.jurisdiction_scope,
        document=policy.policy_to_data(parsed),
        created_by=staff.key,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        actor_id=staff.key,
        actor_role=staff.role.value,
        action="reward_policy_added",
        target_type="reward_policy",
        target_id=str(row.id),
        detail={"code": row.code, "version": row.version},
    )
    return policy_view(row)


def policy_view(row: RewardPolicyVersion) -> PolicyVersionView:
    return PolicyVersionView(
        id=row.id,
        code=row.code,
        version=row.version,
        name=row.name,
        effective_from=row.effective_from,
        effective_to=row.effective_to,
        jurisdiction_scope=row.jurisdiction_scope,
        document=row.document,
        created_at=row.created_at,
    )


async def _choose_policy(session: AsyncSession, beneficiary: Report) -> tuple[RewardPolicyVersion, policy.RewardPolicy]:
    versions = await policy_versions(session)
    chosen = policy.applicable(
        [p for _, p in versions], adcode_path(beneficiary.jurisdiction_adcode), china_day(beneficiary.created_at)
    )
    row = next(r for r, p in versions if p is chosen)
    return row, chosen


# --- the proposal --------------------------------------------------------------------------------------------------


async def on_finding(session: AsyncSession, case: Report, finding: hooks.Finding) -> None:
    verification = await session.get(CaseVerification, case.id)
    if verification is None:
        return
    if verification.outcome == VerificationOutcome.FALSE.value:
        # A new verification (after an appeal) found it false: undecided proposals become not payable, with why.
        stages = (await session.scalars(select(Reward.stage).where(Reward.case_id == case.id))).all()
        for stage in stages:
            await propose(session, case, Stage(stage))
        return
    if finding is hooks.Finding.PENALTY:
        await propose(session, case, Stage.PENALTY)
        return
    _, chosen = await propose(session, case, Stage.VERIFICATION)
    if chosen is not None and chosen.two_stage and verification.penalty_fen is not None:
        await propose(session, case, Stage.PENALTY)


async def first_reporter(session: AsyncSession, case: Report) -> Report:
    """The earliest submission of the case's merge group: only the first reporter of a matter is rewarded."""
    primary_id = case.merged_into_id or case.id
    first = await session.scalar(
        select(Report)
        .where(or_(Report.id == primary_id, Report.merged_into_id == primary_id))
        .order_by(Report.created_at, Report.id)
        .limit(1)
    )
    assert first is not None
    return first


async def propose(
    session: AsyncSession, case: Report, stage: Stage
) -> tuple[Reward | None, policy.RewardPolicy | None]:
    """The system's proposal for ``stage`` of the case's reward, made or refreshed (while no one has decided it)."""
    reward = await session.scalar(
        select(Reward).where(Reward.case_id == case.id, Reward.stage == stage.value).with_for_update()
    )
    if reward is not None and not _reproposable(reward):
        log.info("reward already decided; proposal not replaced", extra={"reward": str(reward.id)})
        return reward, None
    beneficiary = await first_reporter(session, case)
    try:
        policy_row, chosen = await _choose_policy(session, beneficiary)
    except (policy.NoRewardPolicy, policy.AmbiguousRewardPolicy) as problem:
        # The verification stands; the reward waits for an admin to fix the policies (and a later finding).
        log.warning(
            "no single reward policy for a verified case: %s", problem.detail_message, extra={"case": str(case.id)}
        )
        return None, None
    now = utcnow()
    if reward is None:
        reward = Reward(
            number=f"{case.number}-{STAGE_SUFFIX[stage]}",
            case_id=case.id,
            stage=stage.value,
            appeals_used=0,
            ledger_count=0,
            payment_attempts=0,
            inputs={},
            created_at=now,
        )
        session.add(reward)
    reward.report_id, reward.reporter_id = beneficiary.id, beneficiary.reporter_id
    reward.reporter_key = await _reporter_key(session, beneficiary)
    reward.anonymous = beneficiary.identity_hidden
    reward.department_id, reward.category_code = case.department_id, case.category_code
    reward.received_on = case.received_on
    reward.jurisdiction_adcode = case.jurisdiction_adcode  # the case's place, as the statistics count cases
    reward.policy_id, reward.policy_code, reward.policy_version = policy_row.id, chosen.code, chosen.version
    reward.case_kind = (await _case_kind(session, case)).value
    reward.confirmed_by, reward.confirmed_at = None, None
    try:
        decision = await _evaluate(session, reward, chosen, stage, inputs={})
    except InvalidInput as needs_input:  # a range to pick from, deaths to count: the department's to give
        _needs_input(reward, chosen, needs_input)
    else:
        _store_decision(reward, decision)
        if not decision.eligible:
            reward.state, reward.decided_at = RewardState.NOT_PAYABLE.value, now
        elif decision.awaiting_penalty:
            reward.state = RewardState.AWAITING_PENALTY.value
        else:
            reward.state = RewardState.PROPOSED.value
    reward.updated_at = now
    await session.flush()
    _audit_system(session, reward, "reward_proposed")
    return reward, chosen


def _reproposable(reward: Reward) -> bool:
    """Nobody has decided it yet: a proposal, one confirmed but not audited, or the system's own not-payable."""
    state = RewardState(reward.state)
    return state in REPROPOSABLE or (state is RewardState.NOT_PAYABLE and reward.decided_by is None)


def _needs_input(reward: Reward, chosen: policy.RewardPolicy, needs: InvalidInput) -> None:
    reward.eligible, reward.amount_fen, reward.total_fen = True, None, None
    reward.explanation = [
        {
            "code": policy.LineCode.POLICY.value,
            "text": f"适用政策：{chosen.name}（{chosen.code} 第 {chosen.version} 版）",
            "running_fen": 0,
        },
        {"code": "needs_department_input", "text": f"待承办部门确认：{needs.detail_message}", "running_fen": 0},
    ]
    reward.state = RewardState.PROPOSED.value


async def _case_kind(session: AsyncSession, case: Report) -> CaseKind:
    if case.hazard_kind == "illegal_production":
        return CaseKind.ILLEGAL_PRODUCTION
    if case.hazard_kind == "concealed_accident":
        return CaseKind.CONCEALED_ACCIDENT
    level = await session.scalar(select(CaseVerification.hazard_level).where(CaseVerification.report_id == case.id))
    return _KIND_OF_HAZARD_LEVEL.get(level or "general", CaseKind.GENERAL_HAZARD)


async def _reporter_key(session: AsyncSession, report: Report) -> str:
    """Who the per-reporter caps count against: the mini-program account, or a hotline caller's phone."""
    if report.reporter_id is not None:
        return f"reporter:{report.reporter_id}"
    phone_index = await session.scalar(select(ReportContact.phone_index).where(ReportContact.report_id == report.id))
    return f"phone:{phone_index}" if phone_index else f"report:{report.id}"


async def _evaluate(
    session: AsyncSession, reward: Reward, chosen: policy.RewardPolicy, stage: Stage, inputs: dict[str, Any]
) -> policy.RewardDecision:
    case = await session.get(Report, reward.case_id)
    beneficiary = await session.get(Report, reward.report_id)
    verification = await session.get(CaseVerification, reward.case_id)
    assert case is not None and beneficiary is not None and verification is not None
    kind = CaseKind(reward.case_kind)
    employee = inputs.get("employee_of_unit")
    facts = policy.RewardFacts(
        case_kind=kind,
        verification=VerificationOutcome(verification.outcome),
        stage=stage,
        first_reporter=beneficiary.id == (await first_reporter(session, case)).id,
        anonymous=beneficiary.identity_hidden,
        hazard_level=verification.hazard_level if kind in _KIND_OF_HAZARD_LEVEL.values() else None,
        penalty_fen=verification.penalty_fen,
        concealed_deaths=inputs.get("concealed_deaths", 0),
        accident_level=inputs.get("accident_level"),
        category=case.category_code,
        is_employee_of_unit=beneficiary.reporter_is_employee if employee is None else employee,
        is_regulator_staff_or_relative=inputs.get("regulator_staff_or_relative", False),
        excluded=inputs.get("excluded", False),
        excluded_reason=inputs.get("excluded_reason", ""),
        claim_by_code_possible=True,
        paid_in_period_fen=await _paid_in_period(session, reward, chosen, kind),
        paid_for_this_report_fen=await _awarded_other_stages(session, reward),
        discretionary_fen=inputs.get("discretionary_fen"),
        cap_override=inputs.get("cap_override", False),
        cap_override_reason=inputs.get("cap_override_reason", ""),
    )
    return policy.evaluate(chosen, facts)


def _store_decision(reward: Reward, decision: policy.RewardDecision) -> None:
    reward.eligible, reward.amount_fen, reward.total_fen = decision.eligible, decision.amount_fen, decision.total_fen
    reward.explanation = [
        {"code": line.code.value, "text": line.text, "running_fen": line.running_fen} for line in decision.lines
    ]


async def _paid_in_period(
    session: AsyncSession, reward: Reward, chosen: policy.RewardPolicy, kind: CaseKind
) -> dict[str, int]:
    """For each per-reporter cap of the policy that applies: what this reporter was awarded (approved, net of
    lapses) in the cap's period, by approval date in China time, other rewards than this one."""
    sums: dict[str, int] = {}
    today = china_day(utcnow())
    for cap in chosen.reporter_caps_for(kind, reward.category_code):
        first, last = cap.period_of(today)
        start, end = _china_bounds(first, last)
        query = (
            select(func.coalesce(func.sum(RewardLedgerEntry.amount_fen), 0))
            .join(Reward, Reward.id == RewardLedgerEntry.reward_id)
            .where(
                Reward.reporter_key == reward.reporter_key,
                Reward.id != reward.id,
                RewardLedgerEntry.account == ledger.Account.APPROVED.value,
                Reward.approved_at >= start,
                Reward.approved_at <= end,
            )
        )
        if cap.case_kind is not None:
            query = query.where(Reward.case_kind == cap.case_kind.value)
        if cap.category is not None:
            query = query.where(Reward.category_code == cap.category)
        sums[cap.key] = int(await session.scalar(query) or 0)
    return sums


async def _awarded_other_stages(session: AsyncSession, reward: Reward) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(Reward.approved_fen), 0)).where(
            Reward.case_id == reward.case_id,
            Reward.id != reward.id,
            Reward.state.in_([s.value for s in AWARDED]),
        )
    )
    return int(total or 0)


# --- loading and scope -----------------------------------------------------------------------------------------------


def snapshot(reward: Reward, *, reporter_id: str | None = None) -> RewardSnapshot:
    approver = reward.decided_by if reward.state in {s.value for s in AWARDED} else None
    return RewardSnapshot(
        state=RewardState(reward.state),
        department_id=str(reward.department_id) if reward.department_id else None,
        reporter_id=reporter_id or (str(reward.reporter_id) if reward.reporter_id else None),
        confirmed_by=str(reward.confirmed_by) if reward.confirmed_by else None,
        approved_by=str(approver) if approver else None,
        claim_deadline=reward.claim_deadline,
        decided_at=reward.decided_at,
        appeals_used=reward.appeals_used,
    )


def staff_actor(staff: StaffPrincipal) -> RewardActor:
    department = str(staff.department_id) if staff.department_id else None
    return RewardActor(kind="staff", id=str(staff.staff_id), role=staff.role, department_id=department)


def reporter_actor(reporter: ReporterPrincipal) -> RewardActor:
    return RewardActor(kind="reporter", id=str(reporter.reporter_id))


async def locked_reward(session: AsyncSession, reward_id: uuid.UUID) -> Reward:
    reward = await session.scalar(select(Reward).where(Reward.id == reward_id).with_for_update())
    if reward is None:
        raise RewardNotFound()
    return reward


async def scoped_reward(session: AsyncSession, staff: StaffPrincipal, reward_id: uuid.UUID) -> Reward:
    """The reward, if this staff member may see it; otherwise exactly what a missing reward looks like."""
    reward = await session.get(Reward, reward_id)
    if reward is None or not lifecycle.in_scope(snapshot(reward), staff_actor(staff)):
        raise RewardNotFound()
    return reward


# --- idempotent commands ---------------------------------------------------------------------------------------------


async def idempotent(
    session: AsyncSession,
    context: AppContext,
    principal_key: str,
    operation: str,
    key: str,
    body: BaseModel | None,
    action: Callable[[], Awaitable[BaseModel]],
) -> Any:
    """Run a money-moving command once per Idempotency-Key (required by the routes): a retry with the same key and
    body gets the first answer, a different body 422. The key's record commits with the command's effect, or not
    at all."""
    claim = idempotency.IdempotencyClaim(principal_key, operation, key)
    fingerprint = request_fingerprint(operation.encode(), (body.model_dump_json() if body else "").encode())
    replay = await idempotency.claim(session, context.cipher, claim, fingerprint)
    if replay is not None:
        return replay.body
    result = await action()
    answer = json.loads(result.model_dump_json())
    await idempotency.record(session, context.cipher, claim, 200, answer)
    return answer


# --- the department and the auditors ---------------------------------------------------------------------------------


async def confirm(session: AsyncSession, staff: StaffPrincipal, reward_id: uuid.UUID, body: ConfirmBody) -> Reward:
    reward = await locked_reward(session, reward_id)
    now = utcnow()
    lifecycle.decide(snapshot(reward), RewardCommand.CONFIRM, staff_actor(staff), now=now)
    chosen = await _policy_of(session, reward)
    inputs = body.model_dump(mode="json", exclude={"note"})
    _store_decision(reward, await _evaluate(session, reward, chosen, Stage(reward.stage), inputs))
    reward.inputs = inputs
    reward.state, reward.confirmed_by, reward.confirmed_at = RewardState.CONFIRMED.value, staff.staff_id, now
    reward.updated_at = now
    _audit_staff(session, staff, reward, "reward_confirmed", body.note, {"amount_fen": reward.amount_fen})
    await session.flush()
    return reward


async def _policy_of(session: AsyncSession, reward: Reward) -> policy.RewardPolicy:
    row = await session.get(RewardPolicyVersion, reward.policy_id)
    assert row is not None
    return policy.parse_policy(row.document)


async def _lock_reporter(session: AsyncSession, reporter_key: str) -> None:
    """Serialise approvals for one reporter, so two approvals cannot both fit under one per-reporter cap. SQLite's
    BEGIN IMMEDIATE already serialises every writer."""
    if is_postgresql(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"reward:{reporter_key}"})


async def approve(
    session: AsyncSession, context: AppContext, staff: StaffPrincipal, reward_id: uuid.UUID, note: str | None
) -> Reward:
    reward = await locked_reward(session, reward_id)
    now = utcnow()
    actor = staff_actor(staff)
    lifecycle.decide(snapshot(reward), RewardCommand.APPROVE, actor, now=now, payable=True)
    if reward.stage == Stage.PENALTY.value:
        earlier = await session.scalar(
            select(Reward.state).where(Reward.case_id == reward.case_id, Reward.stage == Stage.VERIFICATION.value)
        )
        if earlier is not None and RewardState(earlier) in UNSETTLED:
            raise EarlierStagePending()
    await _lock_reporter(session, reward.reporter_key)
    chosen = await _policy_of(session, reward)
    # Evaluated again under the lock: the per-reporter caps and earlier stages are as of now.
    decision = await _evaluate(session, reward, chosen, Stage(reward.stage), reward.inputs)
    _store_decision(reward, decision)
    payable = decision.eligible and decision.amount_fen > 0
    reward.state = lifecycle.decide(snapshot(reward), RewardCommand.APPROVE, actor, now=now, payable=payable).value
    reward.decided_by, reward.decided_at, reward.decision_note, reward.updated_at = staff.staff_id, now, note, now
    if payable:
        await _post(session, reward, ledger.EntryKind.APPROVAL, decision.amount_fen, staff.key, note)
        reward.approved_fen, reward.approved_at = decision.amount_fen, now
        reward.claim_deadline = end_of_china_day(china_day(now) + timedelta(days=chosen.claim_window_days))
        await _notify(session, reward, "待领取", f"reward:{reward.id}:approved")
    _audit_staff(session, staff, reward, "reward_approved", note, {"amount_fen": decision.amount_fen})
    await session.flush()
    return reward


async def reject(session: AsyncSession, staff: StaffPrincipal, reward_id: uuid.UUID, reason: str) -> Reward:
    reward = await locked_reward(session, reward_id)
    now = utcnow()
    reward.state = lifecycle.decide(snapshot(reward), RewardCommand.REJECT, staff_actor(staff), now=now).value
    reward.decided_by, reward.decided_at, reward.decision_note, reward.updated_at = staff.staff_id, now, reason, now
    await _notify(session, reward, "未获批准", f"reward:{reward.id}:rejected:{reward.appeals_used}")
    _audit_staff(session, staff, reward, "reward_rejected", reason, {})
    await session.flush()
    return reward


async def pay(
    session: AsyncSession, context: AppContext, staff: StaffPrincipal, reward_id: uuid.UUID, body: PayBody
) -> Reward:
    reward = await locked_reward(session, reward_id)
    now = utcnow()
    target = lifecycle.decide(snapshot(reward), RewardCommand.PAY, staff_actor(staff), now=now)
    if reward.payee_name_encrypted is None:
        raise NoPayeeOnFile()
    outstanding = ledger.balance(await _entries(session, reward)).outstanding_fen
    reward.payment_attempts += 1
    instruction = PaymentInstruction(
        out_bill_no=out_bill_no(reward.id, reward.payment_attempts),
        amount_fen=outstanding,
        payee_name=context.cipher.decrypt(reward.payee_name_encrypted),
        payee_account=context.cipher.decrypt(reward.payee_account_encrypted)
        if reward.payee_account_encrypted
        else None,
        payee_bank=reward.payee_bank,
    )
    outcome = CHANNELS[body.channel].pay(instruction, body.reference)
    payment = RewardPayment(
        reward_id=reward.id,
        attempt=reward.payment_attempts,
        out_bill_no=instruction.out_bill_no,
        channel=body.channel.value,
        reference=outcome.reference,
        amount_fen=outstanding,
        status=outcome.status.value,
        recorded_by=staff.staff_id,
        paid_on=body.paid_on,
        created_at=now,
    )
    session.add(payment)
    await session.flush()
    await _post(session, reward, ledger.EntryKind.PAYMENT, outstanding, staff.key, body.note, payment.id)
    reward.state, reward.paid_at, reward.paid_by, reward.updated_at = target.value, now, staff.staff_id, now
    await _notify(session, reward, "已发放", f"reward:{reward.id}:paid:{reward.payment_attempts}")
    _audit_staff(
        session, staff, reward, "reward_paid", body.note, {"amount_fen": outstanding, "channel": body.channel.value}
    )
    await session.flush()
    return reward


async def reverse_payment(session: AsyncSession, staff: StaffPrincipal, reward_id: uuid.UUID, reason: str) -> Reward:
    reward = await locked_reward(session, reward_id)
    now = utcnow()
    target = lifecycle.decide(snapshot(reward), RewardCommand.REVERSE_PAYMENT, staff_actor(staff), now=now)
    payment = await session.scalar(
        select(RewardPayment).where(RewardPayment.reward_id == reward.id, RewardPayment.status == "succeeded")
    )
    assert payment is not None, "a paid reward has its live payment"
    payment.status, payment.reversed_at, payment.reversal_reason = "reversed", now, reason
    await session.flush()  # the live-payment index must see the reversal before another payment is recorded
    await _post(session, reward, ledger.EntryKind.PAYMENT_REVERSAL, payment.amount_fen, staff.key, reason, payment.id)
    reward.state, reward.paid_at, reward.paid_by, reward.updated_at = target.value, None, None, now
    _audit_staff(session, staff, reward, "reward_payment_reversed", reason, {"amount_fen": payment.amount_fen})
    await session.flush()
    return reward


async def _ledger_rows(session: AsyncSession, reward: Reward) -> list[RewardLedgerEntry]:
    return list(
        (
            await session.scalars(
                select(RewardLedgerEntry)
                .where(RewardLedgerEntry.reward_id == reward.id)
                .order_by(RewardLedgerEntry.sequence)
            )
        ).all()
    )


def _entries_of(rows: list[RewardLedgerEntry]) -> list[ledger.Entry]:
    sequence_of = {row.id: row.sequence for row in rows}
    return [
        ledger.Entry(
            row.sequence,
            ledger.EntryKind(row.kind),
            row.amount_fen,
            sequence_of.get(row.reverses_id or uuid.UUID(int=0)),
        )
        for row in rows
    ]


async def _entries(session: AsyncSession, reward: Reward) -> list[ledger.Entry]:
    return _entries_of(await _ledger_rows(session, reward))


async def _post(
    session: AsyncSession,
    reward: Reward,
    kind: ledger.EntryKind,
    amount_fen: int,
    actor_key: str,
    note: str | None,
    payment_id: uuid.UUID | None = None,
) -> RewardLedgerEntry:
    """Append one money row, checked against the reward's rows so far (the caller holds the reward's lock)."""
    rows = await _ledger_rows(session, reward)
    entry = ledger.next_entry(_entries_of(rows), kind, amount_fen)
    reverses_id = next((row.id for row in rows if row.sequence == entry.reverses), None)
    row = RewardLedgerEntry(
        reward_id=reward.id,
        sequence=entry.sequence,
        kind=entry.kind.value,
        account=entry.account.value,
        amount_fen=entry.amount_fen,
        case_id=reward.case_id,
        policy_id=reward.policy_id,
        actor_id=actor_key,
        reverses_id=reverses_id,
        payment_id=payment_id,
        note=note,
        created_at=utcnow(),
    )
    session.add(row)
    reward.ledger_count = entry.sequence
    await session.flush()
    return row


# --- the reporter ----------------------------------------------------------------------------------------------------


def _payee_fields(context: AppContext, reward: Reward, body: PayeeBody) -> None:
    id_number = body.id_number.strip().upper()
    if not is_valid_resident_id(id_number):
        raise InvalidResidentId(field="id_number")
    cipher, index = context.cipher, context.blind_index
    reward.payee_name_encrypted = cipher.encrypt(body.real_name)
    reward.payee_id_number_encrypted = cipher.encrypt(id_number)
    reward.payee_account_encrypted = cipher.encrypt(body.account_number)
    reward.payee_bank = body.bank_name
    reward.payee_name_masked = mask_name(body.real_name)
    reward.payee_id_masked = id_number[:4] + "*" * 10 + id_number[-4:]
    reward.payee_account_masked = "*" * 4 + body.account_number[-4:]
    reward.payee_name_index = index.digest(body.real_name, "payee-name")
    reward.payee_id_index = index.digest(id_number, "payee-id")


async def _claim(
    session: AsyncSession,
    context: AppContext,
    reward: Reward,
    actor: RewardActor,
    reporter_id: str,
    via: str,
    body: PayeeBody,
) -> None:
    now = utcnow()
    target = lifecycle.decide(snapshot(reward, reporter_id=reporter_id), RewardCommand.CLAIM, actor, now=now)
    _payee_fields(context, reward, body)
    reward.state, reward.claimed_at, reward.claimed_via, reward.updated_at = target.value, now, via, now
    audit.record(
        session,
        actor_id=f"reporter:{actor.id}" if via == "account" else f"code:{reward.report_id}",
        actor_role=None,
        action="reward_claimed",
        target_type="reward",
        target_id=str(reward.id),
        detail={"via": via},
    )


async def claim(
    session: AsyncSession, context: AppContext, reporter: ReporterPrincipal, reward_id: uuid.UUID, body: PayeeBody
) -> Reward:
    reward = await locked_reward(session, reward_id)
    await _claim(session, context, reward, reporter_actor(reporter), str(reward.reporter_id), "account", body)
    await session.flush()
    return reward


async def claim_by_code(
    session: AsyncSession, context: AppContext, number: str, query_code: str, body: PayeeBody
) -> list[Reward]:
    """Anonymous and hotline reporters claim with the report number and the query code given at submission."""
    report = await session.scalar(select(Report).where(Report.number == number))
    report = intake_service.check_query_code(context, report, query_code)
    rewards = (
        await session.scalars(
            select(Reward)
            .where(Reward.report_id == report.id, Reward.state == RewardState.APPROVED.value)
            .order_by(Reward.stage.desc())
            .with_for_update()
        )
    ).all()
    if not rewards:
        raise NoRewardToClaim()
    holder = f"code:{report.id}"
    for reward in rewards:
        await _claim(session, context, reward, RewardActor(kind="reporter", id=holder), holder, "code", body)
    await session.flush()
    return list(rewards)


async def appeal(session: AsyncSession, reporter: ReporterPrincipal, reward_id: uuid.UUID, reason: str) -> Reward:
    reward = await locked_reward(session, reward_id)
    now = utcnow()
    reward.state = lifecycle.decide(snapshot(reward), RewardCommand.APPEAL, reporter_actor(reporter), now=now).value
    reward.appeals_used += 1
    reward.appeal_reason, reward.confirmed_by, reward.confirmed_at, reward.updated_at = reason, None, None, now
    audit.record(
        session,
        actor_id=reporter.key,
        actor_role=None,
        action="reward_appealed",
        target_type="reward",
        target_id=str(reward.id),
        reason=reason,
    )
    await session.flush()
    return reward


# --- lapse -----------------------------------------------------------------------------------------------------------

LAPSE_BATCH = 200


async def lapse_expired(context: AppContext, *, now: datetime | None = None) -> int:
    """One pass: approved rewards whose claim window has passed lapse, with a reversing row of their approval. Safe
    in several processes at once (SKIP LOCKED on PostgreSQL; SQLite serialises writers)."""
    moment = now or utcnow()
    lapsed = 0
    async with unit_of_work(context.sessions) as session:
        rewards = (
            await session.scalars(
                select(Reward)
                .where(Reward.state == RewardState.APPROVED.value, Reward.claim_deadline < moment)
                .limit(LAPSE_BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for reward in rewards:
            target = lifecycle.decide(snapshot(reward), RewardCommand.LAPSE, RewardActor(kind="system"), now=moment)
            approved = ledger.balance(await _entries(session, reward)).approved_fen
            await _post(session, reward, ledger.EntryKind.LAPSE, approved, "system", "逾期未领取，冲销核准金额")
            reward.state, reward.updated_at = target.value, moment
            _audit_system(session, reward, "reward_lapsed")
            lapsed += 1
    return lapsed


LAPSE_PERIOD_SECONDS = 300.0


async def run_periodically(context: AppContext, period: float = LAPSE_PERIOD_SECONDS) -> None:
    while True:
        try:
            count = await lapse_expired(context)
            if count:
                log.info("rewards lapsed", extra={"count": count})
        except Exception:
            log.exception("reward lapse pass failed; will retry")
        await asyncio.sleep(period)


# --- messages and audit ----------------------------------------------------------------------------------------------


async def _notify(session: AsyncSession, reward: Reward, status: str, dedupe_key: str) -> None:
    if reward.reporter_id is None:
        return
    amount = reward.approved_fen or 0
    await outbox.enqueue(
        session,
        reporter_id=reward.reporter_id,
        template_key="reward",
        page=f"pages/reward/detail?id={reward.id}",
        values={
            "character_string1": reward.number,
            "phrase2": status[:5],
            "amount3": f"¥{amount // 100}.{amount % 100:02d}",
            "time4": utcnow().astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M"),
        },
        dedupe_key=dedupe_key,
    )


def _audit_staff(
    session: AsyncSession,
    staff: StaffPrincipal,
    reward: Reward,
    action: str,
    reason: str | None,
    detail: dict[str, Any],
) -> None:
    audit.record(
        session,
        actor_id=staff.key,
        actor_role=staff.role.value,
        action=action,
        target_type="reward",
        target_id=str(reward.id),
        reason=reason,
        detail={"state": reward.state, **detail},
    )


def _audit_system(session: AsyncSession, reward: Reward, action: str) -> None:
    audit.record(
        session,
        actor_id="system",
        actor_role=None,
        action=action,
        target_type="reward",
        target_id=str(reward.id),
        detail={"state": reward.state, "amount_fen": reward.amount_fen},
    )


async def reveal_payee(
    session: AsyncSession, context: AppContext, staff: StaffPrincipal, reward: Reward, reason: str
) -> RevealedPayee:
    if reward.payee_name_encrypted is None:
        raise NoPayeeOnFile()
    audit.record(
        session,
        actor_id=staff.key,
        actor_role=staff.role.value,
        action="reveal_payee",
        target_type="reward",
        target_id=str(reward.id),
        reason=reason,
    )
    cipher = context.cipher
    assert reward.payee_id_number_encrypted and reward.payee_account_encrypted
    return RevealedPayee(
        name=cipher.decrypt(reward.payee_name_encrypted),
        id_number=cipher.decrypt(reward.payee_id_number_encrypted),
        bank_name=reward.payee_bank or "",
        account_number=cipher.decrypt(reward.payee_account_encrypted),
    )


# --- views -----------------------------------------------------------------------------------------------------------


def _masked_payee(reward: Reward) -> MaskedPayee | None:
    if reward.payee_name_masked is None:
        return None
    return MaskedPayee(
        name=reward.payee_name_masked,
        id_number=reward.payee_id_masked,
        bank_name=reward.payee_bank,
        account_number=reward.payee_account_masked,
    )


def summary_of(
    reward: Reward, case_number: str, department: DepartmentRef | None, *, with_payee: bool
) -> dict[str, Any]:
    return {
        "id": reward.id,
        "number": reward.number,
        "case_id": reward.case_id,
        "case_number": case_number,
        "stage": reward.stage,
        "state": reward.state,
        "state_label": lifecycle.STATE_NAMES[RewardState(reward.state)],
        "department": department,
        "category_code": reward.category_code,
        "case_kind": reward.case_kind,
        "policy": PolicyRef(code=reward.policy_code, version=reward.policy_version),
        "eligible": reward.eligible,
        "amount_fen": reward.amount_fen,
        "approved_fen": reward.approved_fen,
        "created_at": reward.created_at,
        "approved_at": reward.approved_at,
        "claim_deadline": reward.claim_deadline,
        "paid_at": reward.paid_at,
        "payee": _masked_payee(reward) if with_payee else None,
    }


def ledger_view(row: RewardLedgerEntry) -> LedgerEntryView:
    return LedgerEntryView(
        id=row.id,
        reward_id=row.reward_id,
        sequence=row.sequence,
        kind=row.kind,
        account=row.account,
        amount_fen=row.amount_fen,
        case_id=row.case_id,
        policy_id=row.policy_id,
        actor_id=row.actor_id,
        reverses_id=row.reverses_id,
        note=row.note,
        created_at=row.created_at,
    )


async def reward_view(session: AsyncSession, staff: StaffPrincipal, reward: Reward) -> RewardView:
    case_number = await session.scalar(select(Report.number).where(Report.id == reward.case_id))
    beneficiary_number = await session.scalar(select(Report.number).where(Report.id == reward.report_id))
    department = await session.get(Department, reward.department_id) if reward.department_id else None
    rows = await _ledger_rows(session, reward)
    payments = (
        await session.scalars(
            select(RewardPayment).where(RewardPayment.reward_id == reward.id).order_by(RewardPayment.attempt)
        )
    ).all()
    balance = ledger.balance(_entries_of(rows))
    auditor = has_permission(staff.role, Permission.VIEW_REWARDS)
    return RewardView(
        **summary_of(
            reward,
            case_number or "",
            DepartmentRef(id=department.id, name=department.name) if department else None,
            with_payee=auditor,
        ),
        beneficiary_report_number=beneficiary_number or "",
        total_fen=reward.total_fen,
        explanation=[ExplanationLineView(**line) for line in reward.explanation],
        inputs=reward.inputs,
        confirmed_at=reward.confirmed_at,
        decided_at=reward.decided_at,
        decision_note=reward.decision_note,
        claimed_at=reward.claimed_at,
        appeals_used=reward.appeals_used,
        appeal_reason=reward.appeal_reason,
        balance=BalanceView(
            approved_fen=balance.approved_fen, paid_fen=balance.paid_fen, outstanding_fen=balance.outstanding_fen
        ),
        payments=[
            PaymentView(
                id=p.id,
                attempt=p.attempt,
                out_bill_no=p.out_bill_no,
                channel=ChannelCode(p.channel),
                reference=p.reference,
                amount_fen=p.amount_fen,
                status=p.status,
                paid_on=p.paid_on,
                recorded_at=p.created_at,
                reversed_at=p.reversed_at,
                reversal_reason=p.reversal_reason,
            )
            for p in payments
        ]
        if auditor
        else [],
        ledger=[ledger_view(r) for r in rows],
        allowed_commands=[
            c.value for c in lifecycle.allowed_commands(snapshot(reward), staff_actor(staff), now=utcnow())
        ],
    )


def reporter_reward(reward: Reward, report_number: str, now: datetime) -> ReporterReward:
    state = RewardState(reward.state)
    decided = state in DECIDED
    amount = reward.approved_fen if state in AWARDED else None
    return ReporterReward(
        id=reward.id,
        number=reward.number,
        report_number=report_number,
        stage=reward.stage,
        state=reward.state,
        status_label=REPORTER_LABELS[state],
        amount_fen=amount,
        explanation=[line["text"] for line in reward.explanation] if decided else [],
        claim_deadline=reward.claim_deadline,
        claimed_at=reward.claimed_at,
        paid_at=reward.paid_at,
        can_claim=state is RewardState.APPROVED and reward.claim_deadline is not None and now <= reward.claim_deadline,
        can_appeal=state in (RewardState.REJECTED, RewardState.NOT_PAYABLE) and reward.appeals_used == 0,
    )


async def my_rewards(session: AsyncSession, reporter: ReporterPrincipal) -> list[ReporterReward]:
    rows = (
        await session.execute(
            select(Reward, Report.number)
            .join(Report, Report.id == Reward.report_id)
            .where(Reward.reporter_id == reporter.reporter_id)
            .order_by(Reward.created_at.desc(), Reward.id.desc())
            .limit(200)
        )
    ).all()
    now = utcnow()
    return [reporter_reward(reward, number, now) for reward, number in rows]


async def my_reward(session: AsyncSession, reporter: ReporterPrincipal, reward_id: uuid.UUID) -> ReporterReward:
    reward = await session.get(Reward, reward_id)
    if reward is None or reward.reporter_id != reporter.reporter_id:
        raise RewardNotFound()
    number = await session.scalar(select(Report.number).where(Report.id == reward.report_id))
    return reporter_reward(reward, number or "", utcnow())


# --- the auditors' questions -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardFilter:
    """The auditors' search; every field narrows. Dates are China-time days, inclusive, on ``date_field``."""

    states: tuple[str, ...] = ()
    stage: str | None = None
    department_id: uuid.UUID | None = None
    category: str | None = None
    policy_code: str | None = None
    amount_min_fen: int | None = None
    amount_max_fen: int | None = None
    date_field: str = "created"
    date_from: date | None = None
    date_to: date | None = None
    payee_name: str | None = None
    payee_id_number: str | None = None


_DATE_COLUMNS = {"created": Reward.created_at, "approved": Reward.approved_at, "paid": Reward.paid_at}


def filtered(query: Select[Any], context: AppContext, staff: StaffPrincipal, f: RewardFilter) -> Select[Any]:
    """``query`` over rewards narrowed by ``f`` and by what ``staff`` may see (a department its own rewards)."""
    if not has_permission(staff.role, Permission.VIEW_REWARDS):
        query = query.where(Reward.department_id == staff.department_id, Reward.department_id.is_not(None))
    conditions = []
    if f.states:
        conditions.append(Reward.state.in_(f.states))
    if f.stage:
        conditions.append(Reward.stage == f.stage)
    if f.department_id:
        conditions.append(Reward.department_id == f.department_id)
    if f.category:
        conditions.append(Reward.category_code == f.category)
    if f.policy_code:
        conditions.append(Reward.policy_code == f.policy_code)
    if f.amount_min_fen is not None:
        conditions.append(Reward.amount_fen >= f.amount_min_fen)
    if f.amount_max_fen is not None:
        conditions.append(Reward.amount_fen <= f.amount_max_fen)
    column = _DATE_COLUMNS[f.date_field]
    if f.date_from:
        conditions.append(column >= datetime.combine(f.date_from, time.min, CHINA_TZ))
    if f.date_to:
        conditions.append(column <= end_of_china_day(f.date_to))
    index = context.blind_index
    if f.payee_name:
        conditions.append(Reward.payee_name_index == index.digest(f.payee_name.strip(), "payee-name"))
    if f.payee_id_number:
        conditions.append(Reward.payee_id_index == index.digest(f.payee_id_number.strip().upper(), "payee-id"))
    return query.where(and_(*conditions)) if conditions else query


def _summary_query() -> Select[Any]:
    return (
        select(Reward, Report.number, Department.id, Department.name)
        .join(Report, Report.id == Reward.case_id)
        .outerjoin(Department, Department.id == Reward.department_id)
    )


def _summary(row: Any, with_payee: bool) -> RewardSummary:
    reward, case_number, department_id, department_name = row
    department = DepartmentRef(id=department_id, name=department_name) if department_id else None
    return RewardSummary(**summary_of(reward, case_number, department, with_payee=with_payee))


async def search(
    session: AsyncSession, context: AppContext, staff: StaffPrincipal, f: RewardFilter, cursor: str | None, limit: int
) -> RewardPage:
    query = newest_first(filtered(_summary_query(), context, staff, f), Reward.created_at, Reward.id, cursor, limit)
    rows = (await session.execute(query)).all()
    with_payee = has_permission(staff.role, Permission.VIEW_REWARDS)
    items = [_summary(row, with_payee) for row in rows[:limit]]
    more = len(rows) > limit
    return RewardPage(
        items=items, next_cursor=encode_cursor(rows[limit - 1][0].created_at, rows[limit - 1][0].id) if more else None
    )


async def totals(session: AsyncSession, context: AppContext, staff: StaffPrincipal, f: RewardFilter) -> RewardTotals:
    by_state_rows = (
        await session.execute(
            filtered(
                select(Reward.state, func.count(), func.coalesce(func.sum(Reward.amount_fen), 0)).group_by(
                    Reward.state
                ),
                context,
                staff,
                f,
            )
        )
    ).all()
    chosen = filtered(select(Reward.id), context, staff, f).subquery()
    accounts = dict(
        (
            await session.execute(
                select(RewardLedgerEntry.account, func.coalesce(func.sum(RewardLedgerEntry.amount_fen), 0))
                .where(RewardLedgerEntry.reward_id.in_(select(chosen.c.id)))
                .group_by(RewardLedgerEntry.account)
            )
        ).all()
    )
    approved = int(accounts.get(ledger.Account.APPROVED.value, 0))
    paid = int(accounts.get(ledger.Account.PAID.value, 0))
    by_state = [StateTotal(state=s, count=int(c), amount_fen=int(a)) for s, c, a in sorted(by_state_rows)]
    return RewardTotals(
        count=sum(t.count for t in by_state),
        amount_fen=sum(t.amount_fen for t in by_state),
        approved_fen=approved,
        paid_fen=paid,
        outstanding_fen=approved - paid,
        by_state=by_state,
    )


async def ledger_page(
    session: AsyncSession, context: AppContext, staff: StaffPrincipal, f: RewardFilter, cursor: str | None, limit: int
) -> LedgerPage:
    query = filtered(
        select(RewardLedgerEntry).join(Reward, Reward.id == RewardLedgerEntry.reward_id), context, staff, f
    )
    rows = (
        await session.scalars(newest_first(query, RewardLedgerEntry.created_at, RewardLedgerEntry.id, cursor, limit))
    ).all()
    more = len(rows) > limit
    return LedgerPage(
        items=[ledger_view(r) for r in rows[:limit]],
        next_cursor=encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if more else None,
    )


async def export_batches(context: AppContext, staff: StaffPrincipal, f: RewardFilter, batch: int = 1000) -> Any:
    """Rows for the exports, oldest first, in batches each read in its own short transaction (a large export
    never holds one transaction, and on SQLite never the write lock, for long)."""
    with_payee = has_permission(staff.role, Permission.VIEW_REWARDS)
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        query = filtered(_summary_query(), context, staff, f).order_by(Reward.created_at, Reward.id).limit(batch)
        if after is not None:
            query = query.where(
                or_(Reward.created_at > after[0], and_(Reward.created_at == after[0], Reward.id > after[1]))
            )
        async with unit_of_work(context.sessions) as session:
            rows = (await session.execute(query)).all()
        if not rows:
            return
        yield [_summary(row, with_payee) for row in rows]
        last = rows[-1][0]
        after = (last.created_at, last.id)
