"""The case state machine, checked against a second, independent statement of the brief's rules (below), without a
database: every move, every illegal move, every role, scope, every guard, and random lives of a case."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import Conflict, DomainError, InvalidInput
from app.identity.roles import Role
from app.workflow import transitions
from app.workflow.errors import CaseNotFound
from app.workflow.transitions import (
    Actor,
    AfterPhotosRequired,
    AlreadyRated,
    AppealAlreadyUsed,
    AppealWindowPassed,
    CaseFacts,
    CaseOutOfScope,
    CaseState,
    Command,
    CommandNotAllowedForRole,
    ExtensionAlreadyUsed,
    GuardFailed,
    IllegalTransition,
    NoExtensionRequest,
    OutcomeRequired,
    Policy,
    RectificationRoundsExhausted,
    ReviewResultRequired,
    SamePersonReview,
    VerificationOutcome,
    allowed_commands,
    decide,
    replay,
    reporter_label,
)

S, C, V = CaseState, Command, VerificationOutcome
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DEPT, OTHER_DEPT = "dept-fire", "dept-housing"
REPORTER_ID, ORDERER = "reporter-1", "staff-orderer"
FINISHED = {S.CLOSED, S.REJECTED, S.MERGED}

# --- the brief, restated by hand: (command, from, inputs, to) and who ---------------------------------------------

EXPECTED_MOVES: list[tuple[Command, CaseState, dict[str, Any], CaseState]] = [
    (C.ACCEPT, S.SUBMITTED, {}, S.ACCEPTED),
    (C.REJECT, S.SUBMITTED, {}, S.REJECTED),
    (C.MERGE, S.SUBMITTED, {}, S.MERGED),
    (C.MERGE, S.ACCEPTED, {}, S.MERGED),
    (C.ASSIGN, S.ACCEPTED, {}, S.ASSIGNED),
    (C.RETURN_CASE, S.ASSIGNED, {}, S.ACCEPTED),
    (C.START_VERIFICATION, S.ASSIGNED, {}, S.VERIFYING),
    (C.VERIFY, S.VERIFYING, {"outcome": V.TRUE}, S.VERIFIED_TRUE),
    (C.VERIFY, S.VERIFYING, {"outcome": V.PARTLY_TRUE}, S.VERIFIED_TRUE),
    (C.VERIFY, S.VERIFYING, {"outcome": V.FALSE}, S.VERIFIED_FALSE),
    (C.ORDER_RECTIFICATION, S.VERIFIED_TRUE, {}, S.RECTIFYING),
    (C.REPORT_RECTIFIED, S.RECTIFYING, {}, S.RECTIFIED),
    (C.REVIEW_RECTIFICATION, S.RECTIFIED, {"review_passed": True}, S.CLOSED),
    (C.REVIEW_RECTIFICATION, S.RECTIFIED, {"review_passed": False}, S.RECTIFYING),
    (C.CLOSE, S.VERIFIED_FALSE, {}, S.CLOSED),
    (C.APPEAL, S.CLOSED, {}, S.ACCEPTED),
    (C.APPEAL, S.REJECTED, {}, S.SUBMITTED),
    (C.REQUEST_EXTENSION, S.VERIFYING, {}, S.VERIFYING),
    (C.APPROVE_EXTENSION, S.VERIFYING, {}, S.VERIFYING),
    (C.RATE, S.CLOSED, {}, S.CLOSED),
    *[(C.SUPERVISE, state, {}, state) for state in S if state not in FINISHED],
    *[(C.RECORD_PENALTY, state, {}, state) for state in (S.VERIFIED_TRUE, S.RECTIFYING, S.RECTIFIED, S.CLOSED)],
]
LEGAL = {(command, source) for command, source, _, _ in EXPECTED_MOVES}
EDGES = {(command, source, target) for command, source, _, target in EXPECTED_MOVES}
ILLEGAL = [(command, state) for command in C for state in S if (command, state) not in LEGAL]

DEPARTMENT = {Role.INSPECTOR, Role.DEPARTMENT_HEAD}
WHO: dict[Command, set[Role | str]] = {
    C.ACCEPT: {Role.DISPATCHER},
    C.REJECT: {Role.DISPATCHER},
    C.MERGE: {Role.DISPATCHER},
    C.ASSIGN: {Role.DISPATCHER},
    C.SUPERVISE: {Role.DISPATCHER},
    C.RETURN_CASE: DEPARTMENT,
    C.REVIEW_RECTIFICATION: DEPARTMENT,
    C.START_VERIFICATION: {Role.INSPECTOR},
    C.VERIFY: {Role.INSPECTOR},
    C.ORDER_RECTIFICATION: {Role.INSPECTOR},
    C.REPORT_RECTIFIED: {Role.INSPECTOR},
    C.CLOSE: {Role.INSPECTOR},
    C.REQUEST_EXTENSION: {Role.INSPECTOR},
    C.APPROVE_EXTENSION: {Role.DEPARTMENT_HEAD},
    C.APPEAL: {"reporter"},
    C.RATE: {"reporter"},
    C.RECORD_PENALTY: DEPARTMENT,
}
PARTIES: list[Role | str] = [*Role, "reporter"]


def actor(party: Role | str, department: str | None = DEPT, staff_id: str | None = None) -> Actor:
    if party == "reporter":
        return Actor("reporter", REPORTER_ID)
    return Actor("staff", staff_id or f"staff-{party}", Role(party), department)


def facts(state: CaseState, **changes: Any) -> CaseFacts:
    """A case in `state` on which every guard holds (except approve_extension's: see `ready_for`)."""
    base = CaseFacts(
        state=state,
        department_id=DEPT,
        rectification_round=1,
        rectification_ordered_by=ORDERER,
        after_photo_count=1,
        appeals_used=0,
        finished_at=NOW - timedelta(days=1),
        extension_requested=False,
        extension_granted=False,
        rated=False,
        reporter_id=REPORTER_ID,
        verified_true=True,
    )
    return replace(base, **changes)


def ready_for(command: Command, state: CaseState) -> CaseFacts:
    return facts(state, extension_requested=command is C.APPROVE_EXTENSION)


def inputs_for(command: Command) -> dict[str, Any]:
    return {C.VERIFY: {"outcome": V.TRUE}, C.REVIEW_RECTIFICATION: {"review_passed": True}}.get(command, {})


def legal_source(command: Command) -> CaseState:
    return next(source for c, source, _, _ in EXPECTED_MOVES if c is command)


def test_the_restated_rules_cover_every_command_and_state() -> None:
    assert set(WHO) == set(C)
    assert {source for _, source, _, _ in EXPECTED_MOVES} | {target for *_, target in EXPECTED_MOVES} == set(S)


def test_the_table_has_exactly_the_expected_moves() -> None:
    table = {(t.command, source, t.target or source) for t in transitions.TRANSITIONS for source in t.sources}
    assert table == EDGES
    assert {command: set(parties) for command, parties in transitions.PARTIES.items()} == WHO


# --- moves ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "source", "inputs", "target"), EXPECTED_MOVES)
def test_every_legal_move_by_every_party_allowed_to_make_it(
    command: Command, source: CaseState, inputs: dict[str, Any], target: CaseState
) -> None:
    for party in WHO[command]:
        assert decide(ready_for(command, source), command, actor(party), now=NOW, **inputs) is target


@pytest.mark.parametrize(("command", "state"), ILLEGAL)
def test_every_illegal_move_is_a_409_naming_the_state(command: Command, state: CaseState) -> None:
    for party in WHO[command]:
        for inputs in ({}, inputs_for(command)):  # the state is checked before any input
            with pytest.raises(IllegalTransition) as refused:
                decide(ready_for(command, state), command, actor(party), now=NOW, **inputs)
            error = refused.value
            assert (error.status, error.code) == (409, "illegal_transition")
            assert error.details == {"current_state": state.value, "command": command.value}
            assert isinstance(error, Conflict)


def test_the_refusal_names_the_state_in_chinese() -> None:
    with pytest.raises(IllegalTransition, match=r"核查中.*受理"):
        decide(facts(S.VERIFYING), C.ACCEPT, actor(Role.DISPATCHER), now=NOW)


# --- roles --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", list(C))
@pytest.mark.parametrize("party", PARTIES)
def test_role_matrix(party: Role | str, command: Command) -> None:
    source = legal_source(command)
    if party in WHO[command]:
        decide(ready_for(command, source), command, actor(party), now=NOW, **inputs_for(command))
        return
    with pytest.raises(CommandNotAllowedForRole) as refused:
        decide(ready_for(command, source), command, actor(party), now=NOW, **inputs_for(command))
    assert (refused.value.status, refused.value.code) == (403, "command_not_allowed")
    assert refused.value.details["command"] == command.value
    # The role is checked first: also on a case out of scope, in a state that forbids the command.
    stranger = facts(S.MERGED, department_id=OTHER_DEPT, reporter_id="someone-else")
    with pytest.raises(CommandNotAllowedForRole):
        decide(stranger, command, actor(party, department=None), now=NOW)


def test_roles_without_case_work_can_do_nothing() -> None:
    for role in (Role.HOTLINE_OPERATOR, Role.REWARD_AUDITOR, Role.ADMIN):
        for state in S:
            assert allowed_commands(facts(state), actor(role), now=NOW) == []


def test_actors_are_well_formed() -> None:
    with pytest.raises(ValueError):
        Actor("staff", "s", None, DEPT)
    with pytest.raises(ValueError):
        Actor("reporter", "r", Role.INSPECTOR)
    with pytest.raises(ValueError):
        Actor("reporter", "r", None, DEPT)


# --- scope --------------------------------------------------------------------------------------------------------

DEPARTMENT_COMMANDS = [(c, p) for c in C for p in sorted(WHO[c]) if p in DEPARTMENT]
REPORTER_COMMANDS = [c for c in C if "reporter" in WHO[c]]


def assert_looks_like_not_found(error: CaseOutOfScope) -> None:
    assert isinstance(error, CaseNotFound)
    assert (error.status, error.code) == (404, "case_not_found")
    assert error.body() == CaseNotFound().body()


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize(("command", "party"), DEPARTMENT_COMMANDS)
def test_a_department_role_on_another_departments_case_gets_404(
    command: Command, party: Role, state: CaseState
) -> None:
    # Checked before the state, so a 409 cannot tell an outsider that the case exists or what state it is in.
    for case in (ready_for(command, state), replace(ready_for(command, state), department_id=None)):
        for outsider in (actor(party, department=OTHER_DEPT), actor(party, department=None)):
            with pytest.raises(CaseOutOfScope) as refused:
                decide(case, command, outsider, now=NOW, **inputs_for(command))
            assert_looks_like_not_found(refused.value)
            assert allowed_commands(case, outsider, now=NOW) == []


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("command", REPORTER_COMMANDS)
def test_a_reporter_on_someone_elses_case_gets_404(command: Command, state: CaseState) -> None:
    for reporter_id in ("someone-else", None):
        with pytest.raises(CaseOutOfScope) as refused:
            decide(facts(state, reporter_id=reporter_id), command, actor("reporter"), now=NOW)
        assert_looks_like_not_found(refused.value)


def test_a_dispatcher_acts_on_every_departments_case_and_on_unrouted_ones() -> None:
    for department in (DEPT, OTHER_DEPT, None):
        case = facts(S.SUBMITTED, department_id=department)
        assert decide(case, C.ACCEPT, actor(Role.DISPATCHER, department=None), now=NOW) is S.ACCEPTED


# --- the order of the checks: role, scope, state, guards -----------------------------------------------------------


def test_scope_comes_before_state_and_state_before_guards() -> None:
    inspector = actor(Role.INSPECTOR)
    wrong_everything = facts(S.SUBMITTED, department_id=OTHER_DEPT, after_photo_count=0)
    with pytest.raises(CaseOutOfScope):
        decide(wrong_everything, C.REPORT_RECTIFIED, inspector, now=NOW)
    with pytest.raises(IllegalTransition):
        decide(replace(wrong_everything, department_id=DEPT), C.REPORT_RECTIFIED, inspector, now=NOW)
    with pytest.raises(AfterPhotosRequired):
        decide(facts(S.RECTIFYING, after_photo_count=0), C.REPORT_RECTIFIED, inspector, now=NOW)


# --- guards -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (SamePersonReview, 409, "reviewer_ordered_rectification"),
        (AfterPhotosRequired, 422, "after_photos_required"),
        (RectificationRoundsExhausted, 409, "rectification_rounds_exhausted"),
        (AppealWindowPassed, 409, "appeal_window_passed"),
        (AppealAlreadyUsed, 409, "appeal_already_used"),
        (ExtensionAlreadyUsed, 409, "extension_already_used"),
        (NoExtensionRequest, 409, "no_extension_request"),
        (AlreadyRated, 409, "already_rated"),
        (OutcomeRequired, 422, "outcome_required"),
        (ReviewResultRequired, 422, "review_result_required"),
    ],
)
def test_guard_refusals_have_stable_codes(error: type[DomainError], status: int, code: str) -> None:
    assert issubclass(error, GuardFailed)
    assert issubclass(error, Conflict if status == 409 else InvalidInput)
    assert (error.status, error.code) == (status, code)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error.message)


def test_rectified_needs_an_after_photo() -> None:
    inspector = actor(Role.INSPECTOR)
    with pytest.raises(AfterPhotosRequired) as refused:
        decide(facts(S.RECTIFYING, after_photo_count=0), C.REPORT_RECTIFIED, inspector, now=NOW)
    assert refused.value.field == "after_photos"
    assert C.REPORT_RECTIFIED not in allowed_commands(facts(S.RECTIFYING, after_photo_count=0), inspector, now=NOW)
    assert decide(facts(S.RECTIFYING, after_photo_count=3), C.REPORT_RECTIFIED, inspector, now=NOW) is S.RECTIFIED


@pytest.mark.parametrize("passed", [True, False])
@pytest.mark.parametrize("role", [Role.INSPECTOR, Role.DEPARTMENT_HEAD])
def test_whoever_ordered_the_round_cannot_review_it(role: Role, passed: bool) -> None:
    case = facts(S.RECTIFIED, rectification_ordered_by="staff-x")
    with pytest.raises(SamePersonReview):
        decide(case, C.REVIEW_RECTIFICATION, actor(role, staff_id="staff-x"), now=NOW, review_passed=passed)
    assert allowed_commands(case, actor(role, staff_id="staff-x"), now=NOW) == [C.RECORD_PENALTY]
    expected = S.CLOSED if passed else S.RECTIFYING
    assert decide(case, C.REVIEW_RECTIFICATION, actor(role), now=NOW, review_passed=passed) is expected


def test_failed_reviews_start_new_rounds_up_to_the_maximum() -> None:
    head = actor(Role.DEPARTMENT_HEAD)
    for round_ in (1, 2):
        case = facts(S.RECTIFIED, rectification_round=round_)
        assert decide(case, C.REVIEW_RECTIFICATION, head, now=NOW, review_passed=False) is S.RECTIFYING
    last = facts(S.RECTIFIED, rectification_round=3)
    with pytest.raises(RectificationRoundsExhausted) as refused:
        decide(last, C.REVIEW_RECTIFICATION, head, now=NOW, review_passed=False)
    assert refused.value.details == {"round": 3, "max_rounds": 3}
    # The reviewer can still pass it once the hazard is gone, and the dispatcher can still supervise it.
    assert decide(last, C.REVIEW_RECTIFICATION, head, now=NOW, review_passed=True) is S.CLOSED
    assert allowed_commands(last, head, now=NOW) == [C.REVIEW_RECTIFICATION, C.RECORD_PENALTY]
    assert allowed_commands(last, actor(Role.DISPATCHER), now=NOW) == [C.SUPERVISE]


def test_the_maximum_number_of_rounds_is_policy() -> None:
    head = actor(Role.DEPARTMENT_HEAD)
    with pytest.raises(RectificationRoundsExhausted):
        decide(facts(S.RECTIFIED), C.REVIEW_RECTIFICATION, head, now=NOW, review_passed=False, policy=Policy(1))
    case = facts(S.RECTIFIED, rectification_round=4)
    assert decide(case, C.REVIEW_RECTIFICATION, head, now=NOW, review_passed=False, policy=Policy(5)) is S.RECTIFYING
    with pytest.raises(ValueError):
        Policy(max_rectification_rounds=0)


@pytest.mark.parametrize("state", [S.CLOSED, S.REJECTED])
def test_one_appeal_per_case(state: CaseState) -> None:
    with pytest.raises(AppealAlreadyUsed):
        decide(facts(state, appeals_used=1), C.APPEAL, actor("reporter"), now=NOW)
    assert C.APPEAL not in allowed_commands(facts(state, appeals_used=1), actor("reporter"), now=NOW)


@pytest.mark.parametrize("state", [S.CLOSED, S.REJECTED])
def test_appeals_only_within_the_window(state: CaseState) -> None:
    reporter, reopened = actor("reporter"), {S.CLOSED: S.ACCEPTED, S.REJECTED: S.SUBMITTED}[state]
    case = facts(state, finished_at=NOW - timedelta(days=15))
    assert decide(case, C.APPEAL, reporter, now=NOW) is reopened
    late = NOW + timedelta(microseconds=1)
    with pytest.raises(AppealWindowPassed) as refused:
        decide(case, C.APPEAL, reporter, now=late)
    assert refused.value.details == {"deadline": NOW.isoformat()}
    assert C.APPEAL not in allowed_commands(case, reporter, now=late)
    assert decide(case, C.APPEAL, reporter, now=late, policy=Policy(appeal_days=30)) is reopened


def test_an_appeal_without_a_finishing_time_is_a_broken_record_not_a_refusal() -> None:
    with pytest.raises(ValueError):
        decide(facts(S.CLOSED, finished_at=None), C.APPEAL, actor("reporter"), now=NOW)


def test_one_extension_per_case_approved_by_the_head() -> None:
    inspector, head = actor(Role.INSPECTOR), actor(Role.DEPARTMENT_HEAD)
    assert decide(facts(S.VERIFYING), C.REQUEST_EXTENSION, inspector, now=NOW) is S.VERIFYING
    with pytest.raises(NoExtensionRequest):
        decide(facts(S.VERIFYING), C.APPROVE_EXTENSION, head, now=NOW)
    requested = facts(S.VERIFYING, extension_requested=True)
    with pytest.raises(ExtensionAlreadyUsed):
        decide(requested, C.REQUEST_EXTENSION, inspector, now=NOW)
    assert decide(requested, C.APPROVE_EXTENSION, head, now=NOW) is S.VERIFYING
    granted = replace(requested, extension_granted=True)
    with pytest.raises(NoExtensionRequest):
        decide(granted, C.APPROVE_EXTENSION, head, now=NOW)
    with pytest.raises(ExtensionAlreadyUsed):
        decide(granted, C.REQUEST_EXTENSION, inspector, now=NOW)


def test_a_case_is_rated_once() -> None:
    assert decide(facts(S.CLOSED), C.RATE, actor("reporter"), now=NOW) is S.CLOSED
    with pytest.raises(AlreadyRated):
        decide(facts(S.CLOSED, rated=True), C.RATE, actor("reporter"), now=NOW)


@pytest.mark.parametrize("outcome", [None, "maybe"])
def test_verifying_needs_an_outcome(outcome: Any) -> None:
    with pytest.raises(OutcomeRequired) as refused:
        decide(facts(S.VERIFYING), C.VERIFY, actor(Role.INSPECTOR), now=NOW, outcome=outcome)
    assert (refused.value.status, refused.value.field) == (422, "outcome")


def test_a_review_needs_a_result() -> None:
    with pytest.raises(ReviewResultRequired) as refused:
        decide(facts(S.RECTIFIED), C.REVIEW_RECTIFICATION, actor(Role.INSPECTOR), now=NOW)
    assert (refused.value.status, refused.value.field) == (422, "review_passed")


# --- allowed_commands, replay, labels -----------------------------------------------------------------------------


def test_allowed_commands_for_the_buttons() -> None:
    inspector, head, dispatcher = actor(Role.INSPECTOR), actor(Role.DEPARTMENT_HEAD), actor(Role.DISPATCHER)
    assert allowed_commands(facts(S.SUBMITTED), dispatcher, now=NOW) == [C.ACCEPT, C.REJECT, C.MERGE, C.SUPERVISE]
    assert allowed_commands(facts(S.ASSIGNED), inspector, now=NOW) == [C.RETURN_CASE, C.START_VERIFICATION]
    assert allowed_commands(facts(S.ASSIGNED), head, now=NOW) == [C.RETURN_CASE]
    assert allowed_commands(facts(S.VERIFYING), inspector, now=NOW) == [C.VERIFY, C.REQUEST_EXTENSION]
    requested = facts(S.VERIFYING, extension_requested=True)
    assert allowed_commands(requested, inspector, now=NOW) == [C.VERIFY]
    assert allowed_commands(requested, head, now=NOW) == [C.APPROVE_EXTENSION]
    assert allowed_commands(facts(S.CLOSED), actor("reporter"), now=NOW) == [C.APPEAL, C.RATE]
    assert allowed_commands(facts(S.CLOSED), dispatcher, now=NOW) == []
    assert allowed_commands(facts(S.MERGED), actor("reporter"), now=NOW) == []


def test_replay_follows_a_whole_life() -> None:
    timeline: list[tuple[Command, dict[str, Any]]] = [
        (C.ACCEPT, {}),
        (C.ASSIGN, {"department_id": DEPT}),
        (C.RETURN_CASE, {"note": "非本部门职责"}),
        (C.ASSIGN, {}),
        (C.START_VERIFICATION, {}),
        (C.REQUEST_EXTENSION, {}),
        (C.APPROVE_EXTENSION, {}),
        (C.VERIFY, {"outcome": "partly_true"}),  # payloads come back from JSON as plain strings
        (C.ORDER_RECTIFICATION, {}),
        (C.REPORT_RECTIFIED, {}),
        (C.REVIEW_RECTIFICATION, {"review_passed": False}),
        (C.REPORT_RECTIFIED, {}),
        (C.SUPERVISE, {}),
        (C.REVIEW_RECTIFICATION, {"review_passed": True}),
        (C.RATE, {"score": 2}),
        (C.APPEAL, {}),
    ]
    expected = [S.ACCEPTED, S.ASSIGNED, S.ACCEPTED, S.ASSIGNED, S.VERIFYING, S.VERIFYING, S.VERIFYING]
    expected += [S.VERIFIED_TRUE, S.RECTIFYING, S.RECTIFIED, S.RECTIFYING, S.RECTIFIED, S.RECTIFIED, S.CLOSED]
    expected += [S.CLOSED, S.ACCEPTED]
    assert replay([]) is S.SUBMITTED
    assert [replay(timeline[: i + 1]) for i in range(len(timeline))] == expected
    assert replay([("reject", {}), ("appeal", {})]) is S.SUBMITTED


def test_replay_refuses_an_impossible_timeline() -> None:
    with pytest.raises(IllegalTransition) as refused:
        replay([(C.ACCEPT, {}), (C.START_VERIFICATION, {})])
    assert refused.value.details == {"current_state": "accepted", "command": "start_verification"}
    with pytest.raises(OutcomeRequired):
        replay([(C.ACCEPT, {}), (C.ASSIGN, {}), (C.START_VERIFICATION, {}), (C.VERIFY, {})])


@pytest.mark.parametrize(
    ("state", "label"),
    [
        (S.SUBMITTED, "已提交，待受理"),
        (S.ACCEPTED, "已受理"),
        (S.ASSIGNED, "已转办"),
        (S.VERIFYING, "核查中"),
        (S.VERIFIED_TRUE, "整改中"),
        (S.RECTIFYING, "整改中"),
        (S.RECTIFIED, "整改中"),
        (S.VERIFIED_FALSE, "已办结（经核查不属实）"),
        (S.CLOSED, "已办结"),
        (S.REJECTED, "不予受理"),
        (S.MERGED, "已合并办理"),
    ],
)
def test_reporter_labels(state: CaseState, label: str) -> None:
    assert reporter_label(state) == label


def test_the_module_is_pure() -> None:
    source = Path(transitions.__file__).read_text(encoding="utf-8")
    imported = {
        name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in ([node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names])
    }
    assert imported <= {"__future__", "collections", "dataclasses", "datetime", "enum", "typing", "app"}
    probe = (
        "import sys, app.workflow.transitions; print(sorted({'fastapi', 'sqlalchemy', 'starlette'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- properties ---------------------------------------------------------------------------------------------------

STAFF = [
    Actor("staff", "dispatcher-1", Role.DISPATCHER, None),
    Actor("staff", "inspector-a", Role.INSPECTOR, DEPT),
    Actor("staff", "inspector-b", Role.INSPECTOR, DEPT),
    Actor("staff", "head-1", Role.DEPARTMENT_HEAD, DEPT),
    Actor("staff", "inspector-z", Role.INSPECTOR, OTHER_DEPT),
    Actor("staff", "head-z", Role.DEPARTMENT_HEAD, OTHER_DEPT),
    Actor("staff", "operator-1", Role.HOTLINE_OPERATOR, None),
    Actor("staff", "auditor-1", Role.REWARD_AUDITOR, None),
    Actor("staff", "admin-1", Role.ADMIN, None),
]
ACTORS = [*STAFF, Actor("reporter", REPORTER_ID), Actor("reporter", "reporter-2")]
INPUT_DEPENDENT = (OutcomeRequired, ReviewResultRequired, RectificationRoundsExhausted)


class CaseLife:
    """One case, its facts kept the way a service keeps them, and the timeline of the commands it accepted."""

    def __init__(self) -> None:
        self.now = NOW
        self.facts = CaseFacts(S.SUBMITTED, DEPT, 0, None, 0, 0, None, False, False, False, REPORTER_ID)
        self.timeline: list[tuple[Command, dict[str, Any]]] = []

    def attempt(self, command: Command, who: Actor, outcome: V | None, review_passed: bool | None) -> None:
        before = self.facts
        offered = allowed_commands(before, who, now=self.now)
        try:
            after = decide(before, command, who, now=self.now, outcome=outcome, review_passed=review_passed)
        except CommandNotAllowedForRole:
            assert who.party not in WHO[command]
            return
        except CaseOutOfScope:
            assert who.kind == "reporter" or before.department_id is None or who.department_id != before.department_id
            assert command not in offered
            return
        except IllegalTransition as error:
            assert (command, before.state) not in LEGAL
            assert error.details["current_state"] == before.state.value
            assert command not in offered
            return
        except INPUT_DEPENDENT:  # another input (outcome, pass or fail) could have been accepted
            return
        except DomainError:
            assert command not in offered
            return
        assert who.party in WHO[command]
        assert (command, before.state, after) in EDGES
        assert command in offered
        self.timeline.append((command, {"outcome": outcome, "review_passed": review_passed}))
        self.facts = self.kept(before, command, who, after, review_passed)

    def kept(
        self, before: CaseFacts, command: Command, who: Actor, after: CaseState, review_passed: bool | None
    ) -> CaseFacts:
        facts = replace(before, state=after)
        if after in (S.CLOSED, S.REJECTED) and before.state is not after:
            facts = replace(facts, finished_at=self.now)
        if command is C.RETURN_CASE:
            facts = replace(facts, department_id=None)
        elif command is C.ASSIGN:
            facts = replace(facts, department_id=DEPT)
        elif command is C.VERIFY:
            facts = replace(facts, verified_true=after is S.VERIFIED_TRUE)
        elif command is C.ORDER_RECTIFICATION:
            facts = replace(facts, rectification_round=1, rectification_ordered_by=who.id, after_photo_count=0)
        elif command is C.REVIEW_RECTIFICATION and review_passed is False:
            round_ = before.rectification_round + 1
            facts = replace(facts, rectification_round=round_, rectification_ordered_by=who.id, after_photo_count=0)
        elif command is C.APPEAL:
            facts = replace(facts, appeals_used=before.appeals_used + 1, finished_at=None)
        elif command is C.REQUEST_EXTENSION:
            facts = replace(facts, extension_requested=True)
        elif command is C.APPROVE_EXTENSION:
            facts = replace(facts, extension_granted=True)
        elif command is C.RATE:
            facts = replace(facts, rated=True)
        return facts


STEP = st.tuples(
    st.integers(0, 24 * 6),  # hours that pass before the step
    st.integers(0, 2),  # after-photos attached when rectifying
    st.sampled_from(["forward", "forward", "offered", "anything"]),
    st.integers(0, 10**6),  # which offered move
    st.sampled_from(C),  # or which command, by whom, for "anything"
    st.sampled_from(ACTORS),
    st.none() | st.sampled_from(V),
    st.none() | st.booleans(),
)
DEAD_ENDS = {C.MERGE, C.REJECT, C.SUPERVISE, C.RECORD_PENALTY}  # offered, but they end a life early or go nowhere


@settings(max_examples=80, deadline=None)
@given(st.lists(STEP, min_size=40, max_size=40))
def test_random_lives_reach_states_only_by_legal_moves_and_replay_to_them(steps: list[Any]) -> None:
    """Random commands by random actors: half the time a move `allowed_commands` offers that is not a dead end (so
    lives get deep: rounds of rectification, extensions, appeals), a quarter any offered move, a quarter anything at
    all. Every accepted command is a listed move by a listed party and was offered; every refusal was not offered
    (unless another input would have passed); the timeline always replays to the state reached."""
    life = CaseLife()
    for hours, photos, mode, pick, command, who, outcome, review_passed in steps:
        life.now += timedelta(hours=hours)
        if life.facts.state is S.RECTIFYING:
            life.facts = replace(life.facts, after_photo_count=photos)
        offered = [(w, c) for w in ACTORS for c in allowed_commands(life.facts, w, now=life.now)]
        if not offered:
            break  # the end of this life; refusals in final states are covered above
        if mode != "anything":
            forward = [(w, c) for w, c in offered if c not in DEAD_ENDS]
            choices = forward if mode == "forward" and forward else offered
            who, command = choices[pick % len(choices)]
            outcome = outcome or list(V)[pick % len(V)]
            review_passed = pick % 2 == 0 if review_passed is None else review_passed
        life.attempt(command, who, outcome, review_passed)
        assert replay(life.timeline) is life.facts.state
        assert life.facts.rectification_round <= Policy().max_rectification_rounds
        assert life.facts.appeals_used <= 1


@settings(max_examples=300, deadline=None)
@given(
    state=st.sampled_from(S),
    command=st.sampled_from(C),
    who=st.sampled_from(ACTORS),
    department=st.sampled_from([DEPT, OTHER_DEPT, None]),
    round_=st.integers(0, 4),
    ordered_by=st.sampled_from([None, "inspector-a", "inspector-b", "head-1"]),
    flags=st.tuples(st.integers(0, 2), st.integers(0, 2), st.booleans(), st.booleans(), st.booleans()),
    days_ago=st.integers(0, 40),
    outcome=st.none() | st.sampled_from(V),
    review_passed=st.none() | st.booleans(),
)
def test_any_decision_is_a_listed_move_or_a_domain_refusal(
    state: CaseState,
    command: Command,
    who: Actor,
    department: str | None,
    round_: int,
    ordered_by: str | None,
    flags: tuple[int, int, bool, bool, bool],
    days_ago: int,
    outcome: VerificationOutcome | None,
    review_passed: bool | None,
) -> None:
    photos, appeals, requested, granted, rated = flags
    case = CaseFacts(
        state, department, round_, ordered_by, photos, appeals, NOW - timedelta(days=days_ago), requested, granted,
        rated, REPORTER_ID,
    )  # fmt: skip
    offered = allowed_commands(case, who, now=NOW)
    try:
        after = decide(case, command, who, now=NOW, outcome=outcome, review_passed=review_passed)
    except DomainError as error:
        assert error.status in (403, 404, 409, 422)
        assert command not in offered or isinstance(error, INPUT_DEPENDENT)
        return
    assert (command, state, after) in EDGES
    assert command in offered
