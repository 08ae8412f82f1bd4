"""The life of a reward: which command moves a reward from which state to which, who may give it, and the rules
that must hold. Pure: no I/O, imports neither FastAPI nor SQLAlchemy.

One reward is one stage (核实 or 处罚决定) of the reward for one case, paid to the first reporter of the case's
merge group. The system proposes it when the case is verified true (and again when a penalty decision is
recorded); what the policy says without any human input decides where it starts:

```
                 ┌─ not eligible ──────────────▶ not_payable ─appeal─▶ appealed ─confirm─┐
  (proposal) ────┼─ needs a penalty decision ──▶ awaiting_penalty  (the penalty stage carries it on)
                 └─ eligible ──▶ proposed ─confirm─▶ confirmed ─approve─▶ approved ─claim─▶ claimed ─pay─▶ paid
                                                    │   ▲        │ (0 分: not_payable)  │                  │
                                                    │   └confirm─┤                       └─lapse─▶ lapsed  │
                                                    └reject─▶ rejected ─appeal─▶ appealed                  │
                                                                         claimed ◀─reverse-payment─────────┘
```

- ``confirm``: the head of the department that accepted the case (谁受理、谁奖励) confirms the proposal, giving
  what only the department knows (a discretionary amount, concealed deaths, exclusions).
- ``approve`` / ``reject``: a reward auditor, never the person who confirmed it (four eyes). Approving a decision
  worth 0 分 records it as not payable.
- ``claim``: the reporter, within the claim window, with real name, ID number and payee account.
- ``pay``: a reward auditor, never the one who approved it (approval and payment are separate duties).
- ``reverse-payment``: a correction when a recorded payment did not reach the payee; the reward can be paid again.
- ``lapse``: the system, once the claim window has passed unclaimed.
- ``appeal``: the reporter, once, within 15 days of a rejection or a not-payable decision.

:func:`decide` checks in a fixed order like the case machine: role (403), scope (404), state (409 with the
current state), then the guards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, Literal

from app.core.errors import Conflict, Forbidden, NotFound
from app.identity.roles import ROLE_NAMES, Role

APPEAL_DAYS = 15


class RewardState(StrEnum):
    PROPOSED = "proposed"
    AWAITING_PENALTY = "awaiting_penalty"
    NOT_PAYABLE = "not_payable"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    APPEALED = "appealed"
    APPROVED = "approved"
    CLAIMED = "claimed"
    PAID = "paid"
    LAPSED = "lapsed"


class RewardCommand(StrEnum):
    CONFIRM = "confirm"
    APPROVE = "approve"
    REJECT = "reject"
    CLAIM = "claim"
    PAY = "pay"
    REVERSE_PAYMENT = "reverse_payment"
    LAPSE = "lapse"
    APPEAL = "appeal"


STATE_NAMES: Mapping[RewardState, str] = {
    RewardState.PROPOSED: "待部门确认",
    RewardState.AWAITING_PENALTY: "待处罚决定",
    RewardState.NOT_PAYABLE: "不予奖励",
    RewardState.CONFIRMED: "待审核",
    RewardState.REJECTED: "审核未通过",
    RewardState.APPEALED: "申诉复核中",
    RewardState.APPROVED: "待领取",
    RewardState.CLAIMED: "待发放",
    RewardState.PAID: "已发放",
    RewardState.LAPSED: "逾期未领取",
}

COMMAND_NAMES: Mapping[RewardCommand, str] = {
    RewardCommand.CONFIRM: "确认奖励建议",
    RewardCommand.APPROVE: "审核通过",
    RewardCommand.REJECT: "审核不通过",
    RewardCommand.CLAIM: "领取奖励",
    RewardCommand.PAY: "登记发放",
    RewardCommand.REVERSE_PAYMENT: "冲正发放记录",
    RewardCommand.LAPSE: "逾期失效",
    RewardCommand.APPEAL: "申诉",
}

REPORTER: Final = "reporter"
SYSTEM: Final = "system"
Party = Role | Literal["reporter", "system"]


@dataclass(frozen=True)
class RewardActor:
    kind: Literal["staff", "reporter", "system"]
    id: str | None = None
    role: Role | None = None
    department_id: str | None = None

    @property
    def party(self) -> Party:
        if self.kind == "staff":
            assert self.role is not None
            return self.role
        return REPORTER if self.kind == "reporter" else SYSTEM


@dataclass(frozen=True)
class RewardSnapshot:
    """What the checks need, read from the reward by the caller."""

    state: RewardState
    department_id: str | None  # the department that accepted the case
    reporter_id: str | None  # the beneficiary's mini-program account, if any
    confirmed_by: str | None
    approved_by: str | None
    claim_deadline: datetime | None
    decided_at: datetime | None  # when it became rejected or not payable (the appeal window runs from here)
    appeals_used: int


# --- errors --------------------------------------------------------------------------------------------------------


class RewardNotFound(NotFound):
    code = "reward_not_found"
    message = "未找到该奖励"


class RewardCommandNotAllowed(Forbidden):
    code = "reward_command_not_allowed"
    message = "当前身份无权执行此奖励操作"


class IllegalRewardTransition(Conflict):
    code = "illegal_reward_transition"
    message = "奖励当前状态不允许此操作"


class RewardGuardFailed(Exception):
    """Marker for the refusals of the guards (each also a Conflict), as in the case machine."""


class SamePersonApproval(Conflict, RewardGuardFailed):
    code = "approver_confirmed_reward"
    message = "奖励审核须由确认奖励建议以外的人员进行"


class SamePersonPayment(Conflict, RewardGuardFailed):
    code = "payer_approved_reward"
    message = "奖励发放须由审核通过人以外的人员登记"


class ClaimWindowPassed(Conflict, RewardGuardFailed):
    code = "claim_window_passed"
    message = "已超过领奖期限"


class ClaimWindowOpen(Conflict, RewardGuardFailed):
    code = "claim_window_open"
    message = "领奖期限未到，不能作逾期处理"


class RewardAppealUsed(Conflict, RewardGuardFailed):
    code = "reward_appeal_used"
    message = "每项奖励只能申诉一次"


class RewardAppealWindowPassed(Conflict, RewardGuardFailed):
    code = "reward_appeal_window_passed"
    message = "已超过奖励申诉期限"


# --- guards ----------------------------------------------------------------------------------------------------------

Guard = Callable[[RewardSnapshot, RewardActor, datetime], None]


def not_the_confirmer(reward: RewardSnapshot, actor: RewardActor, now: datetime) -> None:
    if actor.id is not None and actor.id == reward.confirmed_by:
        raise SamePersonApproval()


def not_the_approver(reward: RewardSnapshot, actor: RewardActor, now: datetime) -> None:
    if actor.id is not None and actor.id == reward.approved_by:
        raise SamePersonPayment()


def within_claim_window(reward: RewardSnapshot, actor: RewardActor, now: datetime) -> None:
    if reward.claim_deadline is None or now > reward.claim_deadline:
        deadline = reward.claim_deadline.isoformat() if reward.claim_deadline else None
        raise ClaimWindowPassed(deadline=deadline)


def claim_window_passed(reward: RewardSnapshot, actor: RewardActor, now: datetime) -> None:
    if reward.claim_deadline is not None and now <= reward.claim_deadline:
        raise ClaimWindowOpen(deadline=reward.claim_deadline.isoformat())


def first_appeal_in_window(reward: RewardSnapshot, actor: RewardActor, now: datetime) -> None:
    if reward.appeals_used > 0:
        raise RewardAppealUsed()
    if reward.decided_at is not None and now > reward.decided_at + timedelta(days=APPEAL_DAYS):
        raise RewardAppealWindowPassed(deadline=(reward.decided_at + timedelta(days=APPEAL_DAYS)).isoformat())


# --- the table -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardTransition:
    command: RewardCommand
    sources: AbstractSet[RewardState]
    target: RewardState
    parties: frozenset[Party]
    payable: bool | None = None  # approve only: True picks approved, False not_payable
    guards: tuple[Guard, ...] = ()


BY_HEAD: frozenset[Party] = frozenset({Role.DEPARTMENT_HEAD})
BY_AUDITOR: frozenset[Party] = frozenset({Role.REWARD_AUDITOR})
BY_REPORTER: frozenset[Party] = frozenset({REPORTER})
BY_SYSTEM: frozenset[Party] = frozenset({SYSTEM})
S, C = RewardState, RewardCommand

# fmt: off
TRANSITIONS: tuple[RewardTransition, ...] = (
    RewardTransition(C.CONFIRM,         {S.PROPOSED, S.CONFIRMED, S.APPEALED}, S.CONFIRMED,   BY_HEAD),
    RewardTransition(C.APPROVE,         {S.CONFIRMED},               S.APPROVED,    BY_AUDITOR, payable=True,
                     guards=(not_the_confirmer,)),
    RewardTransition(C.APPROVE,         {S.CONFIRMED},               S.NOT_PAYABLE, BY_AUDITOR, payable=False,
                     guards=(not_the_confirmer,)),
    RewardTransition(C.REJECT,          {S.CONFIRMED},               S.REJECTED,    BY_AUDITOR,
                     guards=(not_the_confirmer,)),
    RewardTransition(C.CLAIM,           {S.APPROVED},                S.CLAIMED,     BY_REPORTER,
                     guards=(within_claim_window,)),
    RewardTransition(C.PAY,             {S.CLAIMED},                 S.PAID,        BY_AUDITOR,
                     guards=(not_the_approver,)),
    RewardTransition(C.REVERSE_PAYMENT, {S.PAID},                    S.CLAIMED,     BY_AUDITOR),
    RewardTransition(C.LAPSE,           {S.APPROVED},                S.LAPSED,      BY_SYSTEM,
                     guards=(claim_window_passed,)),
    RewardTransition(C.APPEAL,          {S.REJECTED, S.NOT_PAYABLE}, S.APPEALED,    BY_REPORTER,
                     guards=(first_appeal_in_window,)),
)
# fmt: on
del S, C

PARTIES: Mapping[RewardCommand, frozenset[Party]] = {
    command: frozenset(p for t in TRANSITIONS if t.command is command for p in t.parties) for command in RewardCommand
}


def decide(
    reward: RewardSnapshot, command: RewardCommand, actor: RewardActor, *, now: datetime, payable: bool | None = None
) -> RewardState:
    """The state after ``command``; raises the first refusal (role 403, scope 404, state 409, guards 409)."""
    if actor.party not in PARTIES[command]:
        who = {REPORTER: "举报人", SYSTEM: "系统"}.get(str(actor.party)) or ROLE_NAMES[Role(actor.party)]
        raise RewardCommandNotAllowed(f"{who}不能{COMMAND_NAMES[command]}", command=command.value)
    if not in_scope(reward, actor):
        raise RewardNotFound()
    rows = [t for t in TRANSITIONS if t.command is command and reward.state in t.sources]
    if command is RewardCommand.APPROVE:
        rows = [t for t in rows if t.payable is bool(payable)]
    if not rows:
        raise IllegalRewardTransition(
            f"奖励当前为「{STATE_NAMES[reward.state]}」，不能{COMMAND_NAMES[command]}",
            current_state=reward.state.value,
            command=command.value,
        )
    row = rows[0]
    for guard in row.guards:
        guard(reward, actor, now)
    return row.target


def in_scope(reward: RewardSnapshot, actor: RewardActor) -> bool:
    """A department head sees the rewards of its own department, a reporter their own; auditors and the system
    see all."""
    if actor.kind == "reporter":
        return reward.reporter_id is not None and reward.reporter_id == actor.id
    if actor.role is Role.DEPARTMENT_HEAD or actor.role is Role.INSPECTOR:
        return reward.department_id is not None and reward.department_id == actor.department_id
    return True


def allowed_commands(reward: RewardSnapshot, actor: RewardActor, *, now: datetime) -> list[RewardCommand]:
    """What this actor can do to this reward now, for the buttons of a console."""
    allowed = []
    for command in RewardCommand:
        for payable in (True, False) if command is RewardCommand.APPROVE else (None,):
            try:
                decide(reward, command, actor, now=now, payable=payable)
            except (RewardCommandNotAllowed, RewardNotFound, IllegalRewardTransition, RewardGuardFailed):
                continue
            allowed.append(command)
            break
    return allowed
