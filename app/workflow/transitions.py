"""The case state machine: which command moves a case from which state to which, who may give it, and the rules
that must hold. Pure: no I/O, imports neither FastAPI nor SQLAlchemy.

The service reads a case into `CaseFacts`, asks `decide`, stores the state it returns and appends the event;
`replay` derives the state again from the events, so the stored state can be checked against the timeline.

`decide` checks in a fixed order and answers with the first failure:
1. role   403 command_not_allowed   the actor's role can never give this command;
2. scope  404 case_not_found        a department role on another department's case, a reporter on someone else's
                                    case; out of scope looks exactly like a case that does not exist;
3. state  409 illegal_transition    no move for this command from the case's state;
4. guards 409/422, own codes        the rules on the move itself (inputs, four-eyes review, one appeal, ...).

Rectification rounds are bounded. `order_rectification` starts round 1 and each failed review starts the next one.
Once round `max_rectification_rounds` is reached, a failed review is refused (409 rectification_rounds_exhausted)
and the case stays `rectified`. We deliberately add no escape state: either the hazard is gone and the review passes,
or it is not and the department must enforce (penalty, suspension of production) outside the rectification loop
while the dispatcher supervises (督办, allowed in every open state) until it is. So there is no endless loop of
rounds and no case closed with the hazard still there.

Four eyes: the reviewer must not be the staff member who ordered the current round. The caller records as
`rectification_ordered_by` whoever gave `order_rectification` for round 1 and, for later rounds, the reviewer
whose failed review started the round, so two people alternate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Literal

from app.core.errors import Conflict, Forbidden, InvalidInput
from app.identity.roles import DEPARTMENT_ROLES, ROLE_NAMES, Role
from app.intake.status import REPORTER_LABELS as INTAKE_LABELS
from app.workflow.errors import CaseNotFound


class CaseState(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    MERGED = "merged"
    ASSIGNED = "assigned"
    VERIFYING = "verifying"
    VERIFIED_TRUE = "verified_true"
    VERIFIED_FALSE = "verified_false"
    RECTIFYING = "rectifying"
    RECTIFIED = "rectified"
    CLOSED = "closed"


class Command(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    MERGE = "merge"
    ASSIGN = "assign"
    RETURN_CASE = "return_case"
    START_VERIFICATION = "start_verification"
    VERIFY = "verify"
    ORDER_RECTIFICATION = "order_rectification"
    REPORT_RECTIFIED = "report_rectified"
    REVIEW_RECTIFICATION = "review_rectification"
    CLOSE = "close"
    APPEAL = "appeal"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    RATE = "rate"
    SUPERVISE = "supervise"
    RECORD_PENALTY = "record_penalty"


class VerificationOutcome(StrEnum):
    TRUE = "true"
    PARTLY_TRUE = "partly_true"
    FALSE = "false"


REPORTER: Final = "reporter"
Party = Role | Literal["reporter"]  # who gives a command: a staff role, or the reporter


@dataclass(frozen=True)
class Actor:
    kind: Literal["staff", "reporter"]
    id: str  # staff id or reporter id
    role: Role | None = None  # staff only
    department_id: str | None = None  # staff only

    def __post_init__(self) -> None:
        if self.kind == "staff" and self.role is None:
            raise ValueError("a staff actor has a role")
        if self.kind == "reporter" and (self.role is not None or self.department_id is not None):
            raise ValueError("a reporter has no staff role or department")

    @property
    def party(self) -> Party:
        return REPORTER if self.role is None else self.role  # only a reporter has no role, see __post_init__


@dataclass(frozen=True)
class CaseFacts:
    """What the checks need, read from the case by the caller."""

    state: CaseState
    department_id: str | None  # the assigned department
    rectification_round: int  # 0 before any order
    rectification_ordered_by: str | None  # staff id who ordered the current round (see the module doc)
    after_photo_count: int  # after-photos attached to the current round's report
    appeals_used: int
    finished_at: datetime | None  # when it was closed or rejected (for the appeal window)
    extension_requested: bool
    extension_granted: bool
    rated: bool
    reporter_id: str | None  # the case's reporter
    verified_true: bool = False  # the current verification found the report true or partly true


@dataclass(frozen=True)
class Policy:
    max_rectification_rounds: int = 3
    appeal_days: int = 15  # counted as whole 24-hour days from `finished_at`, the last instant included

    def __post_init__(self) -> None:
        if self.max_rectification_rounds < 1 or self.appeal_days < 0:
            raise ValueError("at least one rectification round and a non-negative appeal window")


# --- errors ------------------------------------------------------------------------------------------------------


class CommandNotAllowedForRole(Forbidden):
    code = "command_not_allowed"
    message = "当前身份无权执行此操作"


class CaseOutOfScope(CaseNotFound):
    """Same code, status and message as a missing case, on purpose."""


class IllegalTransition(Conflict):
    code = "illegal_transition"
    message = "案件当前状态不允许此操作"


class GuardFailed(Exception):
    """A rule of the move refused it. Each subclass is also a Conflict or an InvalidInput; this marker is not a
    DomainError so that the walk over DomainError subclasses meets each refusal once, under its status class."""


class SamePersonReview(Conflict, GuardFailed):
    code = "reviewer_ordered_rectification"
    message = "整改复查须由责令整改人以外的人员进行"


class AfterPhotosRequired(InvalidInput, GuardFailed):
    code = "after_photos_required"
    message = "请至少上传一张整改后照片"


class RectificationRoundsExhausted(Conflict, GuardFailed):
    code = "rectification_rounds_exhausted"
    message = "整改已达最多轮次，不能再退回整改：整改到位的请复查通过，仍未到位的请报安委办督办"


class AppealWindowPassed(Conflict, GuardFailed):
    code = "appeal_window_passed"
    message = "已超过申诉期限"


class AppealAlreadyUsed(Conflict, GuardFailed):
    code = "appeal_already_used"
    message = "每件举报只能申诉一次"


class ExtensionAlreadyUsed(Conflict, GuardFailed):
    code = "extension_already_used"
    message = "核查期限只能延长一次"


class NoExtensionRequest(Conflict, GuardFailed):
    code = "no_extension_request"
    message = "没有待批准的延期申请"


class AlreadyRated(Conflict, GuardFailed):
    code = "already_rated"
    message = "已评价过，不能重复评价"


class OutcomeRequired(InvalidInput, GuardFailed):
    code = "outcome_required"
    message = "请填写核查结论：属实、部分属实或不属实"


class NotVerifiedTrue(Conflict, GuardFailed):
    code = "not_verified_true"
    message = "只有核查属实的案件才能登记行政处罚决定"


class ReviewResultRequired(InvalidInput, GuardFailed):
    code = "review_result_required"
    message = "请填写复查结论：通过或不通过"


# --- guards: each raises its refusal or returns ------------------------------------------------------------------

Guard = Callable[[CaseFacts, Actor, datetime, Policy], None]


def after_photos(facts: CaseFacts, actor: Actor, now: datetime, policy: Policy) -> None:
    if facts.after_photo_count < 1:
        raise AfterPhotosRequired(field="after_photos")


def not_the_orderer(facts: CaseFacts, actor: Actor, now: datetime, policy: Policy) -> None:
    if actor.id == facts.rectification_ordered_by:
        raise SamePersonReview()


def rounds_left(facts: CaseFacts, actor: Actor, now: datetime, policy: Policy) -> None:
    if facts.rectification_round >= policy.max_rectification_rounds:
        raise RectificationRoundsExhausted(round=facts.rectification_round, max_rounds=policy.max_rectification_rounds)


def first_appeal(facts: CaseFacts, actor: Actor, now: datetime, policy: Policy) -> None:
    if facts.appeals_used > 0:
        raise AppealAlreadyUsed()


def in_appeal_window(facts: CaseFacts, actor: Actor, now: datetime, policy: Policy) -> None:
    if facts.finished_at is None:
        raise ValueError(f"a {facts.state} case has no finished_at")  # a broken record, not a refusal
    deadline = facts.finished_at + timedelta(days=policy.appeal_days)
    if now > deadline:
        raise AppealWindowPassed(deadline=deadline.isoformat())


def first_extension(facts: CaseFacts, actor: Actor, now: datetime, policy: Policy) -> None:
    if facts.extension_requested:
        raise ExtensionAlreadyUsed()


def extension_pending(facts: CaseFacts, actor: Actor, now: datetime, policy: Policy) -> None:
    if not facts.extension_requested or facts.extension_granted:
        raise NoExtensionRequest()


def verified_as_true(facts: CaseFacts, actor: Actor, now: datetime, policy: Policy) -> None:
    if not facts.verified_true:
        raise NotVerifiedTrue()


def not_rated(facts: CaseFacts, actor: Actor, now: datetime, policy: Policy) -> None:
    if facts.rated:
        raise AlreadyRated()


# --- the table ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    command: Command
    sources: AbstractSet[CaseState]
    target: CaseState | None  # None: the case stays where it is
    parties: frozenset[Party]
    when: tuple[VerificationOutcome | bool, ...] = ()  # the decision input (see DECIDED_BY) that picks this row
    guards: tuple[Guard, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", frozenset(self.sources))


BY_DISPATCHER: frozenset[Party] = frozenset({Role.DISPATCHER})
BY_INSPECTOR: frozenset[Party] = frozenset({Role.INSPECTOR})
BY_HEAD: frozenset[Party] = frozenset({Role.DEPARTMENT_HEAD})
BY_DEPARTMENT: frozenset[Party] = BY_INSPECTOR | BY_HEAD
BY_REPORTER: frozenset[Party] = frozenset({REPORTER})

FINISHED: Final = frozenset({CaseState.CLOSED, CaseState.REJECTED, CaseState.MERGED})
OPEN: Final = frozenset(CaseState) - FINISHED
S, C, V = CaseState, Command, VerificationOutcome  # short names for the table, deleted after it
PASSED, FAILED = True, False  # review_passed

# fmt: off
TRANSITIONS: tuple[Transition, ...] = (
    #          command                  from                        to                who
    #          (next line: the input that picks the row, the guards, in the order they run)
    Transition(C.ACCEPT,                {S.SUBMITTED},              S.ACCEPTED,       BY_DISPATCHER),
    Transition(C.REJECT,                {S.SUBMITTED},              S.REJECTED,       BY_DISPATCHER),
    Transition(C.MERGE,                 {S.SUBMITTED, S.ACCEPTED},  S.MERGED,         BY_DISPATCHER),
    Transition(C.ASSIGN,                {S.ACCEPTED},               S.ASSIGNED,       BY_DISPATCHER),
    Transition(C.RETURN_CASE,           {S.ASSIGNED},               S.ACCEPTED,       BY_DEPARTMENT),
    Transition(C.START_VERIFICATION,    {S.ASSIGNED},               S.VERIFYING,      BY_INSPECTOR),
    Transition(C.VERIFY,                {S.VERIFYING},              S.VERIFIED_TRUE,  BY_INSPECTOR,
               when=(V.TRUE, V.PARTLY_TRUE)),
    Transition(C.VERIFY,                {S.VERIFYING},              S.VERIFIED_FALSE, BY_INSPECTOR,
               when=(V.FALSE,)),
    Transition(C.ORDER_RECTIFICATION,   {S.VERIFIED_TRUE},          S.RECTIFYING,     BY_INSPECTOR),
    Transition(C.REPORT_RECTIFIED,      {S.RECTIFYING},             S.RECTIFIED,      BY_INSPECTOR,
               guards=(after_photos,)),
    Transition(C.REVIEW_RECTIFICATION,  {S.RECTIFIED},              S.CLOSED,         BY_DEPARTMENT,
               when=(PASSED,), guards=(not_the_orderer,)),
    Transition(C.REVIEW_RECTIFICATION,  {S.RECTIFIED},              S.RECTIFYING,     BY_DEPARTMENT,
               when=(FAILED,), guards=(not_the_orderer, rounds_left)),
    Transition(C.CLOSE,                 {S.VERIFIED_FALSE},         S.CLOSED,         BY_INSPECTOR),
    Transition(C.APPEAL,                {S.CLOSED},                 S.ACCEPTED,       BY_REPORTER,
               guards=(first_appeal, in_appeal_window)),
    Transition(C.APPEAL,                {S.REJECTED},               S.SUBMITTED,      BY_REPORTER,
               guards=(first_appeal, in_appeal_window)),
    Transition(C.REQUEST_EXTENSION,     {S.VERIFYING},              None,             BY_INSPECTOR,
               guards=(first_extension,)),
    Transition(C.APPROVE_EXTENSION,     {S.VERIFYING},              None,             BY_HEAD,
               guards=(extension_pending,)),
    Transition(C.RATE,                  {S.CLOSED},                 None,             BY_REPORTER,
               guards=(not_rated,)),
    Transition(C.SUPERVISE,             OPEN,                       None,             BY_DISPATCHER),
    Transition(C.RECORD_PENALTY,        {S.VERIFIED_TRUE, S.RECTIFYING, S.RECTIFIED, S.CLOSED},
                                                                    None,             BY_DEPARTMENT,
               guards=(verified_as_true,)),
)
# fmt: on
del S, C, V, PASSED, FAILED

# Commands whose target depends on an input: the input's name (as in `decide` and in a replayed payload) and the
# refusal when it is missing or not one of the row's `when` values.
DECIDED_BY: Mapping[Command, tuple[str, type[InvalidInput]]] = {
    Command.VERIFY: ("outcome", OutcomeRequired),
    Command.REVIEW_RECTIFICATION: ("review_passed", ReviewResultRequired),
}

ROWS: Mapping[Command, tuple[Transition, ...]] = {
    command: tuple(t for t in TRANSITIONS if t.command is command) for command in Command
}
PARTIES: Mapping[Command, frozenset[Party]] = {
    command: frozenset(party for t in rows for party in t.parties) for command, rows in ROWS.items()
}

REPORTER_LABELS: Mapping[CaseState, str] = {state: INTAKE_LABELS[state.value] for state in CaseState}

STATE_NAMES: Mapping[CaseState, str] = {  # for staff, in refusals
    CaseState.SUBMITTED: "待受理",
    CaseState.ACCEPTED: "已受理",
    CaseState.REJECTED: "不予受理",
    CaseState.MERGED: "已合并",
    CaseState.ASSIGNED: "已转办",
    CaseState.VERIFYING: "核查中",
    CaseState.VERIFIED_TRUE: "核查属实",
    CaseState.VERIFIED_FALSE: "核查不属实",
    CaseState.RECTIFYING: "整改中",
    CaseState.RECTIFIED: "整改待复查",
    CaseState.CLOSED: "已办结",
}

COMMAND_NAMES: Mapping[Command, str] = {
    Command.ACCEPT: "受理",
    Command.REJECT: "不予受理",
    Command.MERGE: "合并",
    Command.ASSIGN: "转办",
    Command.RETURN_CASE: "退回",
    Command.START_VERIFICATION: "开始核查",
    Command.VERIFY: "认定核查结论",
    Command.ORDER_RECTIFICATION: "责令整改",
    Command.REPORT_RECTIFIED: "报告整改完成",
    Command.REVIEW_RECTIFICATION: "整改复查",
    Command.CLOSE: "办结",
    Command.APPEAL: "申诉",
    Command.REQUEST_EXTENSION: "申请延期",
    Command.APPROVE_EXTENSION: "批准延期",
    Command.RATE: "评价",
    Command.SUPERVISE: "督办",
    Command.RECORD_PENALTY: "登记行政处罚决定",
}


# --- deciding ----------------------------------------------------------------------------------------------------


def decide(
    facts: CaseFacts,
    command: Command,
    actor: Actor,
    *,
    now: datetime,
    outcome: VerificationOutcome | None = None,
    review_passed: bool | None = None,
    policy: Policy = Policy(),  # frozen, so one shared default is safe
) -> CaseState:
    """The state after `command`: the same state for commands that do not move the case. Raises the first refusal."""
    if actor.party not in PARTIES[command]:
        who = "举报人" if actor.role is None else ROLE_NAMES[actor.role]
        raise CommandNotAllowedForRole(f"{who}不能{COMMAND_NAMES[command]}", command=command.value, role=actor.party)
    if not _in_scope(facts, actor):
        raise CaseOutOfScope()
    row = _move(facts.state, command, {"outcome": outcome, "review_passed": review_passed})
    for guard in row.guards:
        guard(facts, actor, now, policy)
    return row.target or facts.state


def allowed_commands(facts: CaseFacts, actor: Actor, *, now: datetime, policy: Policy = Policy()) -> list[Command]:
    """What this actor can do to this case now, in `Command` order: for the buttons of a UI. A command whose move
    depends on an input (verify, review) is listed when some input would be accepted."""
    if not _in_scope(facts, actor):
        return []
    return [
        command
        for command in Command
        if actor.party in PARTIES[command]
        and any(facts.state in row.sources and _guards_hold(row, facts, actor, now, policy) for row in ROWS[command])
    ]


def replay(events: Iterable[tuple[Command, Mapping[str, Any]]]) -> CaseState:
    """The state a timeline leads to from `submitted`, each event a command and its payload (which carries `outcome`
    for verify and `review_passed` for a review). Only the moves are checked: who gave them and the guards were
    checked when they happened. An impossible timeline raises IllegalTransition."""
    state = CaseState.SUBMITTED
    for command, payload in events:
        row = _move(state, Command(command), payload)
        state = row.target or state
    return state


def reporter_label(state: CaseState) -> str:
    """The plain Chinese status the reporter sees."""
    return REPORTER_LABELS[state]


def _in_scope(facts: CaseFacts, actor: Actor) -> bool:
    if actor.kind == "reporter":
        return facts.reporter_id is not None and facts.reporter_id == actor.id
    if actor.role in DEPARTMENT_ROLES:
        return facts.department_id is not None and facts.department_id == actor.department_id
    return True


def _move(state: CaseState, command: Command, inputs: Mapping[str, Any]) -> Transition:
    rows = [t for t in ROWS[command] if state in t.sources]
    if not rows:
        raise IllegalTransition(
            f"案件当前为「{STATE_NAMES[state]}」，不能{COMMAND_NAMES[command]}",
            current_state=state.value,
            command=command.value,
        )
    if command not in DECIDED_BY:
        return rows[0]
    name, missing = DECIDED_BY[command]
    value = inputs.get(name)
    for row in rows:
        if value is not None and value in row.when:
            return row
    raise missing(field=name)


def _guards_hold(row: Transition, facts: CaseFacts, actor: Actor, now: datetime, policy: Policy) -> bool:
    try:
        for guard in row.guards:
            guard(facts, actor, now, policy)
    except GuardFailed:
        return False
    return True
