"""The reward state machine, against the rules restated by hand: every move, every illegal move, every party,
scope, and each guard at its edge."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.identity.roles import Role
from app.rewards.lifecycle import (
    APPEAL_DAYS,
    ClaimWindowOpen,
    ClaimWindowPassed,
    IllegalRewardTransition,
    RewardActor,
    RewardAppealUsed,
    RewardAppealWindowPassed,
    RewardCommand,
    RewardCommandNotAllowed,
    RewardNotFound,
    RewardSnapshot,
    RewardState,
    SamePersonApproval,
    SamePersonPayment,
    allowed_commands,
    decide,
)

S, C = RewardState, RewardCommand
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
DEPT = "dept-emergency"

MOVES = {
    (C.CONFIRM, S.PROPOSED): S.CONFIRMED,
    (C.CONFIRM, S.CONFIRMED): S.CONFIRMED,
    (C.CONFIRM, S.APPEALED): S.CONFIRMED,
    (C.APPROVE, S.CONFIRMED): S.APPROVED,
    (C.REJECT, S.CONFIRMED): S.REJECTED,
    (C.CLAIM, S.APPROVED): S.CLAIMED,
    (C.PAY, S.CLAIMED): S.PAID,
    (C.REVERSE_PAYMENT, S.PAID): S.CLAIMED,
    (C.LAPSE, S.APPROVED): S.LAPSED,
    (C.APPEAL, S.REJECTED): S.APPEALED,
    (C.APPEAL, S.NOT_PAYABLE): S.APPEALED,
}
WHO = {
    C.CONFIRM: RewardActor("staff", "head-1", Role.DEPARTMENT_HEAD, DEPT),
    C.APPROVE: RewardActor("staff", "auditor-1", Role.REWARD_AUDITOR),
    C.REJECT: RewardActor("staff", "auditor-1", Role.REWARD_AUDITOR),
    C.PAY: RewardActor("staff", "payer-1", Role.REWARD_AUDITOR),
    C.REVERSE_PAYMENT: RewardActor("staff", "payer-1", Role.REWARD_AUDITOR),
    C.CLAIM: RewardActor("reporter", "reporter-1"),
    C.APPEAL: RewardActor("reporter", "reporter-1"),
    C.LAPSE: RewardActor("system"),
}
OTHERS = [RewardActor("staff", "x", role, DEPT) for role in Role] + [
    RewardActor("reporter", "reporter-1"),
    RewardActor("system"),
]


def reward(state: RewardState, **changes: object) -> RewardSnapshot:
    base = RewardSnapshot(
        state=state,
        department_id=DEPT,
        reporter_id="reporter-1",
        confirmed_by="head-1",
        approved_by="auditor-1",
        claim_deadline=NOW + timedelta(days=1),
        decided_at=NOW - timedelta(days=1),
        appeals_used=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("command", "state"), sorted(MOVES))
def test_every_move(command: RewardCommand, state: RewardState) -> None:
    snapshot = reward(state)
    if command is C.LAPSE:
        snapshot = replace(snapshot, claim_deadline=NOW - timedelta(seconds=1))
    assert decide(snapshot, command, WHO[command], now=NOW, payable=True) is MOVES[command, state]


@pytest.mark.parametrize(("command", "state"), [(c, s) for c in C for s in S if (c, s) not in MOVES])
def test_every_illegal_move_is_a_409_with_the_current_state(command: RewardCommand, state: RewardState) -> None:
    with pytest.raises(IllegalRewardTransition) as refused:
        decide(reward(state), command, WHO[command], now=NOW, payable=True)
    assert refused.value.details["current_state"] == state.value


@pytest.mark.parametrize("command", list(C))
def test_only_the_listed_party_may_give_each_command(command: RewardCommand) -> None:
    for actor in OTHERS:
        if actor.party == WHO[command].party:
            continue
        with pytest.raises(RewardCommandNotAllowed):
            decide(reward(S.CONFIRMED), command, actor, now=NOW, payable=True)


def test_a_zero_decision_is_recorded_as_not_payable() -> None:
    assert decide(reward(S.CONFIRMED), C.APPROVE, WHO[C.APPROVE], now=NOW, payable=False) is S.NOT_PAYABLE


def test_scope_another_department_or_reporter_sees_no_such_reward() -> None:
    with pytest.raises(RewardNotFound):
        decide(reward(S.PROPOSED), C.CONFIRM, RewardActor("staff", "h", Role.DEPARTMENT_HEAD, "other"), now=NOW)
    with pytest.raises(RewardNotFound):
        decide(reward(S.APPROVED), C.CLAIM, RewardActor("reporter", "someone-else"), now=NOW)
    with pytest.raises(RewardNotFound):
        decide(reward(S.APPROVED, reporter_id=None), C.CLAIM, RewardActor("reporter", "reporter-1"), now=NOW)


def test_four_eyes_the_confirmer_never_approves_or_rejects_and_the_approver_never_pays() -> None:
    same = RewardActor("staff", "head-1", Role.REWARD_AUDITOR)  # e.g. someone whose role changed
    for command in (C.APPROVE, C.REJECT):
        with pytest.raises(SamePersonApproval):
            decide(reward(S.CONFIRMED), command, same, now=NOW, payable=True)
    with pytest.raises(SamePersonPayment):
        decide(reward(S.CLAIMED), C.PAY, WHO[C.APPROVE], now=NOW)
    assert C.PAY not in allowed_commands(reward(S.CLAIMED), WHO[C.APPROVE], now=NOW)
    assert allowed_commands(reward(S.CLAIMED), WHO[C.PAY], now=NOW) == [C.PAY]


def test_the_claim_window_edges() -> None:
    deadline = NOW
    at_deadline = reward(S.APPROVED, claim_deadline=deadline)
    assert decide(at_deadline, C.CLAIM, WHO[C.CLAIM], now=deadline) is S.CLAIMED
    with pytest.raises(ClaimWindowPassed):
        decide(at_deadline, C.CLAIM, WHO[C.CLAIM], now=deadline + timedelta(microseconds=1))
    with pytest.raises(ClaimWindowOpen):
        decide(at_deadline, C.LAPSE, WHO[C.LAPSE], now=deadline)
    assert decide(at_deadline, C.LAPSE, WHO[C.LAPSE], now=deadline + timedelta(microseconds=1)) is S.LAPSED


def test_one_appeal_within_the_window() -> None:
    decided = NOW - timedelta(days=APPEAL_DAYS)
    assert decide(reward(S.REJECTED, decided_at=decided), C.APPEAL, WHO[C.APPEAL], now=NOW) is S.APPEALED
    with pytest.raises(RewardAppealWindowPassed):
        decide(reward(S.REJECTED, decided_at=decided - timedelta(seconds=1)), C.APPEAL, WHO[C.APPEAL], now=NOW)
    with pytest.raises(RewardAppealUsed):
        decide(reward(S.NOT_PAYABLE, appeals_used=1), C.APPEAL, WHO[C.APPEAL], now=NOW)


def test_the_module_is_pure() -> None:
    import ast
    from pathlib import Path

    import app.rewards.channels
    import app.rewards.ledger
    import app.rewards.lifecycle

    for module in (app.rewards.lifecycle, app.rewards.ledger, app.rewards.channels):
        tree = ast.parse(Path(module.__file__ or "").read_text())
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        } | {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not imported & {"fastapi", "sqlalchemy", "starlette"}, module.__name__
