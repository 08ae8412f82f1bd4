"""Random command sequences through the HTTP API (hypothesis): states are reached only by legal moves, refused
commands change nothing, no event is lost, and the timeline replays to the stored state."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.identity.roles import Role
from app.workflow.transitions import PARTIES, TRANSITIONS, CaseState, Command, replay
from tests.support.api import Api
from tests.support.images import small_jpeg

SEEDS = itertools.count(1)
ACTORS = ["dispatcher", "inspector", "head", "fire-inspector", "reporter"]
ENDPOINTS: dict[Command, str] = {
    Command.ACCEPT: "accept",
    Command.REJECT: "reject",
    Command.ASSIGN: "assign",
    Command.RETURN_CASE: "return",
    Command.START_VERIFICATION: "start-verification",
    Command.VERIFY: "verify",
    Command.ORDER_RECTIFICATION: "order-rectification",
    Command.REPORT_RECTIFIED: "report-rectified",
    Command.REVIEW_RECTIFICATION: "review-rectification",
    Command.CLOSE: "close",
    Command.REQUEST_EXTENSION: "request-extension",
    Command.APPROVE_EXTENSION: "approve-extension",
    Command.SUPERVISE: "supervise",
    Command.RECORD_PENALTY: "record-penalty",
    Command.APPEAL: "appeal",
    Command.RATE: "rating",
}
REPORTER_COMMANDS = {Command.APPEAL: "appeal", Command.RATE: "rating"}


def _body(command: Command, api: Api, headers: dict[str, str], choice: int) -> dict[str, Any]:
    if command is Command.REJECT:
        return {"reason": "facts_unclear"}
    if command is Command.VERIFY:
        outcome = ["true", "partly_true", "false"][choice % 3]
        return {"outcome": outcome, "hazard_level": "general", "findings": "随机核查结论"}
    if command is Command.ORDER_RECTIFICATION:
        return {"measures": "随机整改措施"}
    if command is Command.REPORT_RECTIFIED:
        photos = (
            [api.upload_id(headers, data=small_jpeg(next(SEEDS), size=(32, 24 + next(SEEDS) % 40)))]
            if choice % 4
            else []
        )
        return {"after_photos": photos}
    if command is Command.REVIEW_RECTIFICATION:
        return {"passed": bool(choice % 2)}
    if command is Command.REQUEST_EXTENSION:
        return {"days": 10, "reason": "随机延期理由"}
    if command in (Command.RETURN_CASE, Command.SUPERVISE, Command.APPEAL):
        return {"reason": "随机理由"}
    if command is Command.RATE:
        return {"score": choice % 5 + 1}
    if command is Command.RECORD_PENALTY:
        return {"penalty_fen": choice * 1000, "decision_number": "随机处罚决定书"}
    return {}


def _state(api: Api, case_id: str) -> CaseState:
    view = api.client.get(f"/v1/staff/cases/{case_id}", headers=api.staff("dispatcher"))
    return CaseState(view.json()["state"])


steps = st.lists(
    st.tuples(st.sampled_from(list(ENDPOINTS)), st.sampled_from(ACTORS), st.integers(0, 1000)), min_size=1, max_size=14
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(sequence=steps)
def test_random_command_sequences_keep_the_invariants(api: Api, sequence: list[tuple[Command, str, int]]) -> None:
    reporter = api.reporter("prop")
    photo = small_jpeg(next(SEEDS), size=(64 + next(SEEDS) % 50, 48))
    submitted = api.submit(reporter, [api.upload_id(reporter, data=photo)], category="hazardous_chemicals")
    assert submitted.status_code == 201, submitted.text
    case_id = submitted.json()["id"]
    headers = {name: api.staff(name) for name in ACTORS if name != "reporter"} | {"reporter": reporter}
    state, accepted = CaseState.SUBMITTED, 0
    for command, actor, choice in sequence:
        body = _body(command, api, headers[actor], choice)
        if actor == "reporter":
            if command not in REPORTER_COMMANDS:
                continue
            response = api.client.post(
                f"/v1/me/reports/{case_id}/{REPORTER_COMMANDS[command]}", headers=headers[actor], json=body
            )
        else:
            response = api.command(headers[actor], case_id, ENDPOINTS[command], body)
        assert response.status_code < 500, response.text
        after = _state(api, case_id)
        if response.status_code == 200:
            accepted += 1
            legal = {t.target or state for t in TRANSITIONS if t.command is command and state in t.sources}
            assert after in legal, (command, state, after)
        else:
            assert after == state, (command, response.status_code, response.text)
        state = after
    events = api.client.get(f"/v1/staff/cases/{case_id}/timeline", headers=headers["dispatcher"]).json()
    moves = [e for e in events if e["command"] != "escalate"]
    assert len(moves) == accepted
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert replay((Command(e["command"]), e["payload"]) for e in moves) == state


def test_every_role_that_may_never_give_a_command_is_refused(api: Api) -> None:
    reporter = api.reporter("matrix")
    case_id = api.submit(
        reporter, [api.upload_id(reporter, data=small_jpeg(9))], category="hazardous_chemicals"
    ).json()["id"]
    api.accept_and_assign(case_id)
    staff = {
        Role.DISPATCHER: "dispatcher",
        Role.INSPECTOR: "inspector",
        Role.DEPARTMENT_HEAD: "head",
        Role.HOTLINE_OPERATOR: "hotline",
        Role.REWARD_AUDITOR: "auditor",
        Role.ADMIN: "admin",
    }
    checked = 0
    for role, username in staff.items():
        headers = api.staff(username)
        for command, endpoint in ENDPOINTS.items():
            if command in REPORTER_COMMANDS or role in PARTIES[command]:
                continue
            response = api.command(headers, case_id, endpoint, _body(command, api, headers, 4))
            assert response.status_code == 403, (role, command, response.text)
            checked += 1
    assert checked > 50
    assert _state(api, case_id) is CaseState.ASSIGNED
