"""A reward's life through the API: proposal at verification and at the penalty decision, confirmation by the
accepting department, approval by someone else, the claim, exactly one payment, lapse, appeal, and the ledger."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.config import Settings
from app.core.context import build_context, close_context
from app.core.db import unit_of_work, utcnow
from app.deadlines.calendar import end_of_china_day
from app.notifications.models import OutboxMessage
from app.notifications.wechat import template_data
from app.rewards import service as rewards_service
from app.rewards.models import RewardLedgerEntry
from tests.api.rewards.flow import (
    PAYEE,
    PAYMENT,
    approved,
    claimed,
    command,
    error,
    key,
    new_case,
    ok,
    reward,
    rewards_of,
    verify,
)
from tests.support.api import Api
from tests.support.images import small_jpeg

YINGDE_POLICY: dict[str, Any] = {
    "code": "yingde-2026",
    "name": "英德市安全生产举报奖励（示例）",
    "version": 1,
    "effective_from": "2026-01-01",
    "jurisdiction_scope": "441881",
    "rules": {
        "general_hazard": {"mode": "fixed", "amount_fen": 60_000},
        "major_hazard": {"mode": "percent_of_penalty", "rate_bp": 1500, "min_fen": 300_000, "max_fen": 30_000_000},
    },
    "per_report_cap_fen": 30_000_000,
    "reporter_caps": [{"period": "month", "limit_fen": 100_000, "case_kind": "general_hazard"}],
    "anonymous": "claim_by_code",
    "claim_window_days": 60,
    "sources": ["示例：清远清城区 一般隐患每宗 200 元的做法"],
}


def _load_yingde_policy(api: Api) -> None:
    ok(api.client.post("/v1/admin/reward-policies", headers=api.staff("admin"), json=YINGDE_POLICY), 201)


def test_a_major_hazard_is_rewarded_once_under_the_national_policy(api: Api, settings: Settings) -> None:
    reporter, receipt = new_case(api)
    verify(api, receipt["id"], penalty_fen=10_000_000)  # 100,000 元 penalty → 15% = 15,000 元
    [proposal] = rewards_of(api, receipt["number"])
    assert proposal["state"] == "proposed" and proposal["stage"] == "verification"
    assert proposal["policy"] == {"code": "national-2018", "version": 1}
    assert proposal["amount_fen"] == 1_500_000
    reward_id = proposal["id"]
    detail = reward(api, reward_id)
    assert "10,000,000 分 × 15% = 1,500,000 分" in "\n".join(line["text"] for line in detail["explanation"])

    # Only the accepting department's head confirms; an auditor never confirms, an inspector never does anything.
    error(command(api, "auditor", reward_id, "confirm"), 403, "reward_command_not_allowed")
    error(command(api, "inspector", reward_id, "confirm"), 403, "reward_command_not_allowed")
    error(command(api, "fire-head", reward_id, "confirm"), 404, "reward_not_found")
    error(api.client.get(f"/v1/staff/rewards/{reward_id}", headers=api.staff("fire-head")), 404, "reward_not_found")
    # Money-moving commands need an Idempotency-Key.
    missing = api.client.post(f"/v1/staff/rewards/{reward_id}/confirm", headers=api.staff("head"), json={})
    assert error(missing, 422, "validation_error")["field"] == "Idempotency-Key"
    ok(command(api, "head", reward_id, "confirm"))
    error(command(api, "auditor", reward_id, "pay", PAYMENT), 409, "illegal_reward_transition")

    approval = command(api, "auditor", reward_id, "approve", {"note": "符合政策"}, **{"Idempotency-Key": "approve-1"})
    view = ok(approval)
    assert view["state"] == "approved" and view["approved_fen"] == 1_500_000
    assert view["balance"] == {"approved_fen": 1_500_000, "paid_fen": 0, "outstanding_fen": 1_500_000}
    # The same key replays the first answer; the same key with another body is refused.
    replay = command(api, "auditor", reward_id, "approve", {"note": "符合政策"}, **{"Idempotency-Key": "approve-1"})
    assert ok(replay) == view
    other = command(api, "auditor", reward_id, "approve", {"note": "别的"}, **{"Idempotency-Key": "approve-1"})
    error(other, 422, "idempotency_key_reused")
    error(command(api, "payer", reward_id, "approve"), 409, "illegal_reward_transition")

    mine = ok(api.client.get("/v1/me/rewards", headers=reporter))
    assert [(r["id"], r["status_label"], r["amount_fen"], r["can_claim"]) for r in mine] == [
        (reward_id, "待领取", 1_500_000, True)
    ]
    # Another reporter cannot see or claim it.
    stranger = api.reporter("mallory")
    error(api.client.get(f"/v1/me/rewards/{reward_id}", headers=stranger), 404, "reward_not_found")
    error(
        api.client.post(f"/v1/me/rewards/{reward_id}/claim", headers={**stranger, **key()}, json=PAYEE),
        404,
        "reward_not_found",
    )
    bad_id = {**PAYEE, "id_number": PAYEE["id_number"][:-1] + "1"}
    error(
        api.client.post(f"/v1/me/rewards/{reward_id}/claim", headers={**reporter, **key()}, json=bad_id),
        422,
        "invalid_resident_id",
    )
    assert claimed(api, reporter, reward_id)["status_label"] == "发放中"

    # Approval and payment are separate duties.
    error(command(api, "auditor", reward_id, "pay", PAYMENT), 409, "payer_approved_reward")
    error(command(api, "payer", reward_id, "pay", {**PAYMENT, "reference": "x"}), 422, "invalid_payment_reference")
    paid = ok(command(api, "payer", reward_id, "pay", PAYMENT))
    assert paid["state"] == "paid"
    assert paid["balance"] == {"approved_fen": 1_500_000, "paid_fen": 1_500_000, "outstanding_fen": 0}
    [payment] = paid["payments"]
    assert payment["amount_fen"] == 1_500_000 and payment["out_bill_no"].startswith("RW")
    assert paid["payee"] == {
        "name": "王**",
        "id_number": "1101**********002X",
        "bank_name": "中国农业银行英德支行",
        "account_number": "****8901",
    }
    error(command(api, "payer", reward_id, "pay", PAYMENT), 409, "illegal_reward_transition")
    assert [e["kind"] for e in paid["ledger"]] == ["approval", "payment"]

    # The department head sees its reward but nothing of the payee; the reporter hears of approval and payment.
    head_view = reward(api, reward_id, "head")
    assert head_view["payee"] is None and head_view["payments"] == []
    messages = asyncio.run(_reward_messages(settings))
    assert [m["phrase2"] for m in messages] == ["待领取", "已发放"]
    assert messages[0]["amount3"] == "¥15000.00"
    for values in messages:
        template_data(values)  # what WeChat accepts: raises on a value it would refuse


async def _reward_messages(settings: Settings) -> list[dict[str, str]]:
    context = build_context(settings)
    try:
        async with unit_of_work(context.sessions) as session:
            rows = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.template_key == "reward").order_by(OutboxMessage.created_at)
            )
            return [dict(row.values) for row in rows]
    finally:
        await close_context(context)


def test_a_percent_reward_waits_for_the_penalty_decision(api: Api) -> None:
    _, receipt = new_case(api)
    verify(api, receipt["id"], penalty_fen=None)
    [waiting] = rewards_of(api, receipt["number"])
    assert waiting["state"] == "awaiting_penalty" and waiting["amount_fen"] == 0
    inspector = api.staff("inspector")
    ok(
        api.command(
            inspector, receipt["id"], "record-penalty", {"penalty_fen": 0, "decision_number": "英应急罚〔2026〕12号"}
        )
    )
    verification_stage, penalty_stage = rewards_of(api, receipt["number"])
    assert verification_stage["state"] == "awaiting_penalty"
    # A decision not to fine is a decision: the national formula gives its minimum, 3,000 元.
    assert penalty_stage["stage"] == "penalty" and penalty_stage["amount_fen"] == 300_000
    timeline = ok(api.client.get(f"/v1/staff/cases/{receipt['id']}/timeline", headers=api.staff("dispatcher")))
    assert timeline[-1]["command"] == "record_penalty"


def test_record_penalty_needs_a_case_verified_true(api: Api) -> None:
    _, receipt = new_case(api)
    verify(api, receipt["id"], outcome="false", penalty_fen=None)
    ok(api.command(api.staff("inspector"), receipt["id"], "close"))
    body = {"penalty_fen": 100, "decision_number": "英应急罚〔2026〕13号"}
    error(api.command(api.staff("inspector"), receipt["id"], "record-penalty", body), 409, "not_verified_true")
    assert rewards_of(api, receipt["number"]) == []


def test_a_general_hazard_is_not_payable_nationally_and_the_appeal_is_heard_once(api: Api) -> None:
    reporter, receipt = new_case(api)
    verify(api, receipt["id"], hazard_level="general", penalty_fen=None)
    [proposal] = rewards_of(api, receipt["number"])
    assert proposal["state"] == "not_payable" and proposal["eligible"] is False
    mine = ok(api.client.get(f"/v1/me/rewards/{proposal['id']}", headers=reporter))
    assert mine["can_appeal"] and any("一般事故隐患" in line for line in mine["explanation"])
    appeal = {"reason": "隐患已造成危险，应当奖励"}
    assert ok(api.client.post(f"/v1/me/rewards/{proposal['id']}/appeal", headers=reporter, json=appeal))["state"] == (
        "appealed"
    )
    ok(command(api, "head", proposal["id"], "confirm", {"note": "复核：政策不奖励一般隐患"}))
    final = ok(command(api, "auditor", proposal["id"], "approve"))
    assert final["state"] == "not_payable" and final["ledger"] == []
    error(
        api.client.post(f"/v1/me/rewards/{proposal['id']}/appeal", headers=reporter, json=appeal),
        409,
        "reward_appeal_used",
    )


def test_only_the_first_reporter_of_a_merged_group_is_rewarded(api: Api) -> None:
    first, early = new_case(api, "alice")
    second, late = new_case(api, "bob")
    dispatcher = api.staff("dispatcher")
    ok(api.command(dispatcher, early["id"], "merge", {"primary_id": late["id"], "note": "同一隐患"}))
    verify(api, late["id"])
    [proposal] = rewards_of(api, late["number"])
    detail = reward(api, proposal["id"])
    assert detail["beneficiary_report_number"] == early["number"]
    assert [r["report_number"] for r in ok(api.client.get("/v1/me/rewards", headers=first))] == [early["number"]]
    assert ok(api.client.get("/v1/me/rewards", headers=second)) == []


def test_a_local_policy_caps_a_reporter_per_month_and_lets_anonymous_reporters_claim_by_code(api: Api) -> None:
    _load_yingde_policy(api)
    _, one = new_case(api, "carol")
    verify(api, one["id"], hazard_level="general", penalty_fen=None)
    [first] = rewards_of(api, one["number"])
    assert first["policy"] == {"code": "yingde-2026", "version": 1} and first["amount_fen"] == 60_000
    assert approved(api, first["id"])["approved_fen"] == 60_000

    _, two = new_case(api, "carol")
    verify(api, two["id"], hazard_level="general", penalty_fen=None)
    [second] = rewards_of(api, two["number"])
    decided = approved(api, second["id"])
    # 1,000 元 a month for general hazards: 600 already this month leaves 400.
    assert decided["approved_fen"] == 40_000
    assert decided["explanation"][-2]["code"] == "reporter_period_cap"

    _, anonymous = new_case(api, "dave", hide_identity=True)
    verify(api, anonymous["id"], hazard_level="general", penalty_fen=None)
    [third] = rewards_of(api, anonymous["number"])
    assert third["state"] == "proposed"
    approved(api, third["id"])
    wrong = {**PAYEE, "number": anonymous["number"], "query_code": "WRONGCODE"}
    error(api.client.post("/v1/rewards/claim-by-code", headers=key(), json=wrong), 404, "report_not_found")
    right = {**wrong, "query_code": anonymous["query_code"]}
    [claim] = ok(api.client.post("/v1/rewards/claim-by-code", headers=key(), json=right))
    assert claim["state"] == "claimed"
    error(api.client.post("/v1/rewards/claim-by-code", headers=key(), json=right), 409, "no_reward_to_claim")
    assert ok(command(api, "payer", third["id"], "pay", PAYMENT))["state"] == "paid"


def test_the_national_policy_refuses_anonymous_reporters(api: Api) -> None:
    _, receipt = new_case(api, "erin", hide_identity=True)
    verify(api, receipt["id"])
    [proposal] = rewards_of(api, receipt["number"])
    assert proposal["state"] == "not_payable"
    assert "anonymous_not_rewarded" in [line["code"] for line in reward(api, proposal["id"])["explanation"]]


def test_an_unclaimed_reward_lapses_with_a_reversing_row(api: Api, settings: Settings, client: TestClient) -> None:
    reporter, receipt = new_case(api)
    verify(api, receipt["id"])
    [proposal] = rewards_of(api, receipt["number"])
    decided = approved(api, proposal["id"])
    assert asyncio.run(_lapse(settings, utcnow())) == 0  # the window is still open
    deadline = end_of_china_day(utcnow().date()).astimezone()
    assert decided["claim_deadline"] > deadline.isoformat()
    assert asyncio.run(_lapse(settings, utcnow() + timedelta(days=62))) == 1
    lapsed = reward(api, proposal["id"])
    assert lapsed["state"] == "lapsed"
    assert [(e["kind"], e["amount_fen"]) for e in lapsed["ledger"]] == [("approval", 1_500_000), ("lapse", -1_500_000)]
    assert lapsed["ledger"][1]["reverses_id"] == lapsed["ledger"][0]["id"]
    assert lapsed["balance"]["approved_fen"] == 0
    error(
        api.client.post(f"/v1/me/rewards/{proposal['id']}/claim", headers={**reporter, **key()}, json=PAYEE),
        409,
        "illegal_reward_transition",
    )


async def _lapse(settings: Settings, now: Any) -> int:
    context = build_context(settings)
    try:
        return await rewards_service.lapse_expired(context, now=now)
    finally:
        await close_context(context)


def test_a_reversed_payment_can_be_paid_again_and_the_ledger_balances(api: Api, settings: Settings) -> None:
    reporter, receipt = new_case(api)
    verify(api, receipt["id"])
    [proposal] = rewards_of(api, receipt["number"])
    approved(api, proposal["id"])
    claimed(api, reporter, proposal["id"])
    ok(command(api, "payer", proposal["id"], "pay", PAYMENT))
    reversed_ = ok(command(api, "payer", proposal["id"], "reverse-payment", {"reason": "银行退票：户名不符"}))
    assert reversed_["state"] == "claimed" and reversed_["balance"]["paid_fen"] == 0
    again = ok(command(api, "payer", proposal["id"], "pay", {**PAYMENT, "reference": "ABC2026112800003"}))
    assert [p["status"] for p in again["payments"]] == ["reversed", "succeeded"]
    assert len({p["out_bill_no"] for p in again["payments"]}) == 2
    assert [e["kind"] for e in again["ledger"]] == ["approval", "payment", "payment_reversal", "payment"]
    assert again["balance"] == {"approved_fen": 1_500_000, "paid_fen": 1_500_000, "outstanding_fen": 0}
    totals = ok(api.client.get("/v1/staff/rewards/totals", headers=api.staff("auditor")))
    assert (totals["approved_fen"], totals["paid_fen"], totals["outstanding_fen"]) == (1_500_000, 1_500_000, 0)


def test_rejection_needs_another_person_and_a_reason(api: Api) -> None:
    _, receipt = new_case(api)
    verify(api, receipt["id"])
    [proposal] = rewards_of(api, receipt["number"])
    ok(command(api, "head", proposal["id"], "confirm"))
    error(command(api, "auditor", proposal["id"], "reject", {}), 422, "validation_error")
    error(command(api, "head", proposal["id"], "reject", {"reason": "自己驳回"}), 403, "reward_command_not_allowed")
    rejected = ok(command(api, "auditor", proposal["id"], "reject", {"reason": "举报人为企业安全管理人员"}))
    assert rejected["state"] == "rejected" and rejected["decision_note"] == "举报人为企业安全管理人员"


def test_a_range_rule_needs_the_departments_pick(api: Api) -> None:
    policy = {
        **YINGDE_POLICY,
        "code": "yingde-range",
        "effective_from": "2026-02-01",
        "rules": {"general_hazard": {"mode": "range", "min_fen": 50_000, "max_fen": 500_000}},
        "reporter_caps": [],
    }
    ok(api.client.post("/v1/admin/reward-policies", headers=api.staff("admin"), json=policy), 201)
    _, receipt = new_case(api)
    verify(api, receipt["id"], hazard_level="general", penalty_fen=None)
    [proposal] = rewards_of(api, receipt["number"])
    assert proposal["state"] == "proposed" and proposal["amount_fen"] is None
    error(command(api, "head", proposal["id"], "confirm"), 422, "discretionary_amount_required")
    error(
        command(api, "head", proposal["id"], "confirm", {"discretionary_fen": 600_000}),
        422,
        "discretionary_amount_out_of_range",
    )
    confirmed = ok(command(api, "head", proposal["id"], "confirm", {"discretionary_fen": 120_000}))
    assert confirmed["amount_fen"] == 120_000


def test_policy_versions_are_insert_only_and_checked(api: Api) -> None:
    admin = api.staff("admin")
    listed = ok(api.client.get("/v1/admin/reward-policies", headers=admin))
    assert {p["code"] for p in listed} >= {"national-2018", "shandong-2019", "shenzhen"}
    error(
        api.client.post("/v1/admin/reward-policies", headers=admin, json={**YINGDE_POLICY, "rules": {}}),
        422,
        "invalid_reward_policy",
    )
    typo = {**YINGDE_POLICY, "per_report_cap": 1}
    assert (
        error(api.client.post("/v1/admin/reward-policies", headers=admin, json=typo), 422, "invalid_reward_policy")[
            "field"
        ]
        == "per_report_cap"
    )
    ok(api.client.post("/v1/admin/reward-policies", headers=admin, json=YINGDE_POLICY), 201)
    error(
        api.client.post("/v1/admin/reward-policies", headers=admin, json=YINGDE_POLICY),
        409,
        "reward_policy_version_exists",
    )
    error(
        api.client.post("/v1/admin/reward-policies", headers=api.staff("auditor"), json=YINGDE_POLICY), 403, "forbidden"
    )


def test_the_ledger_is_insert_only_and_every_row_names_case_policy_and_actor(api: Api, settings: Settings) -> None:
    reporter, receipt = new_case(api)
    verify(api, receipt["id"])
    [proposal] = rewards_of(api, receipt["number"])
    approved(api, proposal["id"])
    claimed(api, reporter, proposal["id"])
    ok(command(api, "payer", proposal["id"], "pay", PAYMENT))
    page = ok(api.client.get("/v1/staff/rewards/ledger", headers=api.staff("auditor")))
    assert [e["kind"] for e in page["items"]] == ["payment", "approval"]
    assert all(
        e["case_id"] == receipt["id"] and e["policy_id"] and e["actor_id"].startswith("staff:") for e in page["items"]
    )
    rows = asyncio.run(_ledger_rows(settings))
    assert sum(amount for account, amount in rows if account == "approved") == 1_500_000


async def _ledger_rows(settings: Settings) -> list[tuple[str, int]]:
    context = build_context(settings)
    try:
        async with unit_of_work(context.sessions) as session:
            return [
                tuple(r)
                for r in (await session.execute(select(RewardLedgerEntry.account, RewardLedgerEntry.amount_fen))).all()
            ]  # type: ignore[misc]
    finally:
        await close_context(context)


def test_a_new_verification_after_an_appeal_proposes_again(api: Api) -> None:
    reporter, receipt = new_case(api)
    verify(api, receipt["id"], hazard_level="general", penalty_fen=None)
    [first] = rewards_of(api, receipt["number"])
    assert first["state"] == "not_payable"
    inspector = api.staff("inspector")
    ok(api.command(inspector, receipt["id"], "order-rectification", {"measures": "立即整改"}))
    photo = api.upload_id(inspector, data=small_jpeg(77))
    ok(api.command(inspector, receipt["id"], "report-rectified", {"after_photos": [photo]}))
    ok(api.command(api.staff("head"), receipt["id"], "review-rectification", {"passed": True}))
    appeal = {"reason": "这是重大隐患，核查定性有误"}
    ok(api.client.post(f"/v1/me/reports/{receipt['id']}/appeal", headers=reporter, json=appeal))
    ok(api.command(api.staff("dispatcher"), receipt["id"], "assign"))
    verify(api, receipt["id"], hazard_level="major", penalty_fen=2_000_000, assign=False)
    [again] = rewards_of(api, receipt["number"])
    assert again["id"] == first["id"] and again["state"] == "proposed" and again["amount_fen"] == 300_000
