"""Exactly once under concurrency (through a live server, on SQLite and PostgreSQL alike), and the auditors'
exports read back and checked against the database."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.context import build_context, close_context
from app.core.db import unit_of_work
from app.demo.seed import DEMO_STAFF
from app.main import create_app
from app.rewards.models import Reward, RewardLedgerEntry, RewardPayment
from tests.api.rewards.flow import PAYMENT, approved, claimed, command, new_case, ok, rewards_of, verify
from tests.support.api import Api
from tests.support.servers import serve_in_thread

RACERS = 20


@pytest.fixture
def live(settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(settings)) as url:
        yield url


def _staff_token(url: str, username: str) -> dict[str, str]:
    password = next(s.password for s in DEMO_STAFF if s.username == username)
    response = httpx.post(f"{url}/v1/auth/staff/login", json={"username": username, "password": password})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _race(url: str, headers: dict[str, str], path: str, body: dict[str, Any], keys: list[str]) -> list[httpx.Response]:
    def attempt(key: str) -> httpx.Response:
        return httpx.post(f"{url}{path}", headers={**headers, "Idempotency-Key": key}, json=body, timeout=120)

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(attempt, keys))


async def _counts(settings: Settings, reward_id: str) -> tuple[int, int, int]:
    context = build_context(settings)
    try:
        async with unit_of_work(context.sessions) as session:
            rid = uuid.UUID(reward_id)
            ledger_rows = await session.scalar(
                select(func.count()).select_from(RewardLedgerEntry).where(RewardLedgerEntry.reward_id == rid)
            )
            payments = await session.scalar(
                select(func.count()).select_from(RewardPayment).where(RewardPayment.reward_id == rid)
            )
            approvals = await session.scalar(
                select(func.count())
                .select_from(RewardLedgerEntry)
                .where(RewardLedgerEntry.reward_id == rid, RewardLedgerEntry.kind == "approval")
            )
            return int(ledger_rows or 0), int(payments or 0), int(approvals or 0)
    finally:
        await close_context(context)


@pytest.mark.slow
def test_twenty_concurrent_approvals_and_payments_give_one_of_each(api: Api, settings: Settings, live: str) -> None:
    reporter, receipt = new_case(api)
    verify(api, receipt["id"])
    [proposal] = rewards_of(api, receipt["number"])
    reward_id = proposal["id"]
    ok(command(api, "head", reward_id, "confirm"))

    auditor = _staff_token(live, "auditor")
    keys = [f"approve-{i}" for i in range(RACERS)]
    approvals = _race(live, auditor, f"/v1/staff/rewards/{reward_id}/approve", {"note": "并发审核"}, keys)
    statuses = sorted(r.status_code for r in approvals)
    assert statuses == [200] + [409] * (RACERS - 1), [r.text for r in approvals if r.status_code not in (200, 409)]
    assert {r.json()["error"]["code"] for r in approvals if r.status_code == 409} == {"illegal_reward_transition"}

    claimed(api, reporter, reward_id)
    payer = _staff_token(live, "payer")
    payments = _race(live, payer, f"/v1/staff/rewards/{reward_id}/pay", PAYMENT, [f"pay-{i}" for i in range(RACERS)])
    assert sorted(r.status_code for r in payments) == [200] + [409] * (RACERS - 1), [r.text for r in payments]
    ledger_rows, payment_rows, approval_rows = asyncio.run(_counts(settings, reward_id))
    assert (ledger_rows, payment_rows, approval_rows) == (2, 1, 1)


@pytest.mark.slow
def test_twenty_retries_with_one_key_all_get_the_one_payment(api: Api, settings: Settings, live: str) -> None:
    reporter, receipt = new_case(api)
    verify(api, receipt["id"])
    [proposal] = rewards_of(api, receipt["number"])
    reward_id = proposal["id"]
    approved(api, reward_id)
    claimed(api, reporter, reward_id)
    payer = _staff_token(live, "payer")
    payments = _race(live, payer, f"/v1/staff/rewards/{reward_id}/pay", PAYMENT, ["the-one-key"] * RACERS)
    assert {r.status_code for r in payments} == {200}, [r.text for r in payments]
    assert len({r.text for r in payments}) == 1
    assert asyncio.run(_counts(settings, reward_id))[:2] == (2, 1)


def _some_rewards(api: Api) -> None:
    """Three decided rewards in three states: paid, approved (unclaimed), not payable."""
    for name, level in (("ann", "major"), ("ben", "major"), ("cat", "general")):
        reporter, receipt = new_case(api, name)
        verify(api, receipt["id"], hazard_level=level, penalty_fen=30_000_000 if name == "ann" else 2_000_000)
        [proposal] = rewards_of(api, receipt["number"])
        if level == "general":
            continue
        approved(api, proposal["id"])
        if name == "ann":
            claimed(api, reporter, proposal["id"])
            ok(command(api, "payer", proposal["id"], "pay", PAYMENT))


async def _database_totals(settings: Settings) -> tuple[int, int, int]:
    context = build_context(settings)
    try:
        async with unit_of_work(context.sessions) as session:
            count = await session.scalar(select(func.count()).select_from(Reward))
            amount = await session.scalar(select(func.coalesce(func.sum(Reward.amount_fen), 0)))
            paid = await session.scalar(
                select(func.coalesce(func.sum(RewardLedgerEntry.amount_fen), 0)).where(
                    RewardLedgerEntry.account == "paid"
                )
            )
            return int(count or 0), int(amount or 0), int(paid or 0)
    finally:
        await close_context(context)


def test_the_exports_match_the_database_and_the_totals(api: Api, settings: Settings) -> None:
    _some_rewards(api)
    auditor = api.staff("auditor")
    count, amount, paid = asyncio.run(_database_totals(settings))
    assert count == 3
    totals = ok(api.client.get("/v1/staff/rewards/totals", headers=auditor))
    assert (totals["count"], totals["amount_fen"], totals["paid_fen"]) == (count, amount, paid)
    assert {t["state"]: t["count"] for t in totals["by_state"]} == {"paid": 1, "approved": 1, "not_payable": 1}

    response = api.client.get("/v1/staff/rewards/export.xlsx", headers=auditor)
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    amount_fen = header.index("核定金额（分）")
    amount_yuan = header.index("核定金额（元）")
    assert len(body) == count
    assert sum(row[amount_fen] or 0 for row in body) == amount
    assert all(row[amount_yuan] is None or round(row[amount_yuan] * 100) == row[amount_fen] for row in body)
    masked = [row[header.index("证件号（脱敏）")] for row in body if row[header.index("状态")] == "已发放"]
    assert masked == ["1101**********002X"]

    text = api.client.get("/v1/staff/rewards/export.csv", headers=auditor, params={"state": "paid"}).content
    assert text.startswith(b"\xef\xbb\xbf")
    csv_rows = list(csv.reader(io.StringIO(text.decode("utf-8-sig"))))
    assert len(csv_rows) == 2 and int(csv_rows[1][csv_rows[0].index("核准金额（分）")]) == paid

    # A department head exports its own department's rewards, with no payee columns filled.
    head_csv = api.client.get("/v1/staff/rewards/export.csv", headers=api.staff("head")).content.decode("utf-8-sig")
    head_rows = list(csv.reader(io.StringIO(head_csv)))
    assert len(head_rows) == 1 + count and all(row[-4:] == ["", "", "", ""] for row in head_rows[1:])
    assert api.client.get("/v1/staff/rewards/export.csv", headers=api.staff("fire-head")).text.count("\n") == 1


def test_search_filters_by_payee_amount_and_state(api: Api) -> None:
    _some_rewards(api)
    auditor = api.staff("auditor")

    def numbers(**params: Any) -> int:
        return len(ok(api.client.get("/v1/staff/rewards", headers=auditor, params=params))["items"])

    assert numbers() == 3
    assert numbers(payee_name="王小明") == 1 and numbers(payee_name="李四") == 0
    assert numbers(payee_id_number="11010519491231002x") == 1
    assert numbers(state=["approved", "paid"]) == 2
    assert numbers(amount_min_fen=1_000_000) == 1
    assert numbers(date_field="paid", date_from="2000-01-01") == 1
    assert numbers(policy_code="shenzhen") == 0
    bad = api.client.get("/v1/staff/rewards", headers=auditor, params={"state": "spent"})
    assert bad.status_code == 422
    assert api.client.get("/v1/staff/rewards", headers=api.staff("inspector")).status_code == 403


async def _batches(settings: Settings) -> list[int]:
    from app.identity.dependencies import StaffPrincipal
    from app.identity.models import StaffUser
    from app.identity.roles import Role
    from app.rewards import service

    context = build_context(settings)
    try:
        async with unit_of_work(context.sessions) as session:
            auditor = await session.scalar(select(StaffUser).where(StaffUser.username == "auditor"))
        assert auditor is not None
        staff = StaffPrincipal(auditor.id, auditor.username, Role.REWARD_AUDITOR, None)
        return [len(batch) async for batch in service.export_batches(context, staff, service.RewardFilter(), batch=2)]
    finally:
        await close_context(context)


def test_exports_read_in_batches(api: Api, settings: Settings) -> None:
    _some_rewards(api)
    assert asyncio.run(_batches(settings)) == [2, 1]
