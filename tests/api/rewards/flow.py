"""Bringing a case to a reward through the API, as the dispatcher, inspector, head, auditors and reporter do."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from tests.support.api import Api
from tests.support.identity_scan import SCAN
from tests.support.images import small_jpeg

_seeds = itertools.count(300)
# A valid 18-digit resident id (GB 11643 check digit) and a payee, reused by tests; registered as identity values.
ID_NUMBER = "11010519491231002X"
PAYEE = {
    "real_name": "王小明",
    "id_number": ID_NUMBER,
    "bank_name": "中国农业银行英德支行",
    "account_number": "6228480012345678901",
}
SCAN.secrets.update({PAYEE["real_name"], ID_NUMBER, PAYEE["account_number"]})


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = dict(response.json()["error"])
    assert body["code"] == code, body
    return body


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def new_case(
    api: Api, name: str = "alice", *, category: str = "hazardous_chemicals", **overrides: Any
) -> tuple[dict[str, str], dict[str, Any]]:
    reporter = api.reporter(name)
    upload = api.upload_id(reporter, data=small_jpeg(next(_seeds)))
    receipt = api.submit(reporter, [upload], category=category, **overrides)
    assert receipt.status_code == 201, receipt.text
    return reporter, receipt.json()


def verify(
    api: Api,
    case_id: str,
    *,
    hazard_level: str = "major",
    penalty_fen: int | None = 10_000_000,
    outcome: str = "true",
    assign: bool = True,
) -> None:
    inspector = api.staff("inspector")
    if assign:
        api.accept_and_assign(case_id)
    ok(api.command(inspector, case_id, "start-verification"))
    body: dict[str, Any] = {"outcome": outcome, "findings": "现场查实"}
    if outcome != "false":
        body["hazard_level"] = hazard_level
    if penalty_fen is not None:
        body["penalty_fen"] = penalty_fen
    ok(api.command(inspector, case_id, "verify", body))


def rewards_of(api: Api, case_number: str) -> list[dict[str, Any]]:
    page = ok(api.client.get("/v1/staff/rewards", headers=api.staff("auditor"), params={"limit": 200}))
    return sorted((r for r in page["items"] if r["case_number"] == case_number), key=lambda r: r["stage"], reverse=True)


def reward(api: Api, reward_id: str, who: str = "auditor") -> dict[str, Any]:
    return ok(api.client.get(f"/v1/staff/rewards/{reward_id}", headers=api.staff(who)))


def command(api: Api, who: str, reward_id: str, name: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return api.client.post(
        f"/v1/staff/rewards/{reward_id}/{name}", headers={**api.staff(who), **key(), **headers}, json=body or {}
    )


def approved(api: Api, reward_id: str, confirm: dict[str, Any] | None = None) -> dict[str, Any]:
    ok(command(api, "head", reward_id, "confirm", confirm))
    return ok(command(api, "auditor", reward_id, "approve", {"note": "符合政策"}))


def claimed(api: Api, reporter: dict[str, str], reward_id: str) -> dict[str, Any]:
    return ok(api.client.post(f"/v1/me/rewards/{reward_id}/claim", headers={**reporter, **key()}, json=PAYEE))


PAYMENT = {"channel": "bank_transfer", "reference": "ABC2026112700017", "paid_on": "2026-11-27"}
