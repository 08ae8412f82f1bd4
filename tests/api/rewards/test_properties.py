"""Random reward commands by random people through the HTTP API (hypothesis): after every one, the reward's ledger
has no negative balance, never pays more than was approved, has contiguous rows, and a refused command changed
nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.config import Settings
from app.core.context import build_context, close_context
from app.core.db import utcnow
from app.rewards import service as rewards_service
from tests.api.rewards.flow import PAYEE, PAYMENT, key, new_case, ok, reward, rewards_of, verify
from tests.support.api import Api

COMMANDS = ["confirm", "approve", "reject", "pay", "reverse-payment", "claim", "appeal", "lapse"]
PEOPLE = ["head", "fire-head", "auditor", "payer", "reporter"]
BODIES: dict[str, dict[str, Any]] = {
    "confirm": {},
    "approve": {"note": "随机审核"},
    "reject": {"reason": "随机驳回理由"},
    "pay": PAYMENT,
    "reverse-payment": {"reason": "随机冲正理由"},
    "claim": PAYEE,
    "appeal": {"reason": "随机申诉理由"},
}


async def _lapse(settings: Settings) -> None:
    context = build_context(settings)
    try:
        await rewards_service.lapse_expired(context, now=utcnow() + timedelta(days=90))
    finally:
        await close_context(context)


def _act(api: Api, settings: Settings, reporter: dict[str, str], reward_id: str, command: str, who: str) -> int:
    if command == "lapse":
        asyncio.run(_lapse(settings))
        return 200
    if command in ("claim", "appeal"):
        if who != "reporter":
            return 0
        headers = {**reporter, **key()}
        return api.client.post(
            f"/v1/me/rewards/{reward_id}/{command}", headers=headers, json=BODIES[command]
        ).status_code
    if who == "reporter":
        return 0
    headers = {**api.staff(who), **key()}
    response = api.client.post(f"/v1/staff/rewards/{reward_id}/{command}", headers=headers, json=BODIES[command])
    assert response.status_code < 500, response.text
    return response.status_code


steps = st.lists(st.tuples(st.sampled_from(COMMANDS), st.sampled_from(PEOPLE)), min_size=1, max_size=16)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(sequence=steps)
def test_random_reward_commands_keep_the_ledger_balanced(
    api: Api, settings: Settings, sequence: list[tuple[str, str]]
) -> None:
    reporter, receipt = new_case(api, "prop")
    verify(api, receipt["id"], penalty_fen=4_000_000)
    [proposal] = rewards_of(api, receipt["number"])
    reward_id = proposal["id"]
    before = reward(api, reward_id)
    for command, who in sequence:
        status = _act(api, settings, reporter, reward_id, command, who)
        after = reward(api, reward_id)
        balance = after["balance"]
        assert balance["approved_fen"] >= 0 and balance["paid_fen"] >= 0
        assert balance["paid_fen"] <= balance["approved_fen"] <= proposal["amount_fen"]
        assert [e["sequence"] for e in after["ledger"]] == list(range(1, len(after["ledger"]) + 1))
        assert sum(1 for p in after["payments"] if p["status"] == "succeeded") <= 1
        if status != 200:
            assert (after["state"], after["ledger"]) == (before["state"], before["ledger"]), (command, who, status)
        before = after
    ok(api.client.get("/v1/staff/rewards/totals", headers=api.staff("auditor")))
