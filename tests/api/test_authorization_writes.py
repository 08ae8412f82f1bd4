"""Every write route with a real body (issue 7's authorization matrix, second part).

`test_authorization_matrix.py` sends writes with empty bodies, where a 422 could hide a missing permission check.
Here each write carries a body that succeeds for a caller who may make it, against an object in the state the
command needs. Every caller the matrix's WRITES table does not allow sends it first, against the same object:
none may get a 2xx, none a 5xx, every refusal has the house error shape, and the whole database (every table but
the audit log, which records refused identity reveals on purpose) and the stored photos are unchanged after
them. Then the allowed caller sends the same body and must succeed, which shows the body was valid, and (for a
command that changes something) the state must change, which shows the comparison can see a change. A refusal
must be about the caller (401, 403, or 404 for the object in the path): a 409 or a 422 would mean the state or
the body was judged first, which is what an empty body could not show.

Own and foreign objects: the case, its reward and its photo belong to alice and to 应急管理局 (inspector, head);
mallory is another reporter and fire-inspector and fire-head are another department's staff, so each of them
tries someone else's object with the right role.

One database per group of routes: a case is walked along its life and each command is tried in the state it
needs, the last caller (the allowed one) moving the case on to the next.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.core.config import Settings
from app.core.db import Base, unit_of_work
from tests.api.rewards.flow import PAYEE, PAYMENT, command, new_case, ok, rewards_of, verify
from tests.api.rewards.test_rewards import YINGDE_POLICY
from tests.api.test_authorization_matrix import EVERYONE, REPORTERS, WRITES
from tests.support.api import Api
from tests.support.identity_scan import SCAN
from tests.support.images import small_jpeg

# Writes open to everyone (the body's secret, or the partner key, is the credential): nobody to refuse. Each is
# tested where it lives (tests/api/identity, intake, rewards, open311).
PUBLIC_WRITES = {
    "login_reporter_wechat",
    "login_staff",
    "lookup_report",
    "claim_reward_by_code",
    "open311_create_request",
}
UNCOMPARED_TABLES = {"audit_log"}  # refused identity reveals are audited on purpose
UNCOMPARED_COLUMNS = {"geometry_wkb"}  # megabytes of polygons; a jurisdiction's other columns show any change
OUT_OF_SCOPE = {"case_not_found", "reward_not_found"}  # the object in the path, as if it did not exist
# Commands whose success writes only the audit log (or nothing): the allowed call leaves the state as it was.
READ_ONLY_WRITES = {"reveal_identity", "reveal_payee", "preview_routing"}


@dataclass
class Write:
    operation: str
    path: str
    allowed: str  # the caller who may make it, sent last
    json: Any = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    method: str = "POST"


@dataclass
class Matrix:
    api: Api
    objects: Path
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    refused: int = 0
    probed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for who in EVERYONE:
            if who == "anonymous":
                self.headers[who] = {}
            elif who in REPORTERS:
                self.headers[who] = self.api.reporter(who)
            else:
                self.headers[who] = self.api.staff(who)

    def send(self, write: Write, who: str) -> Any:
        headers = {**self.headers[who], "Idempotency-Key": uuid.uuid4().hex}
        if write.files is not None:
            return self.api.client.request(write.method, write.path, headers=headers, files=write.files)
        return self.api.client.request(write.method, write.path, headers=headers, json=write.json)

    def check(self, write: Write) -> Any:
        """Every caller who may not, then the allowed one; the allowed caller's answer."""
        assert write.allowed in WRITES[write.operation], write
        before = self.state()
        refused: list[str] = []
        for who in sorted(EVERYONE - WRITES[write.operation]):
            response = self.send(write, who)
            where = f"{write.operation} as {who}: {response.status_code} {response.text[:200]}"
            # Refused for who they are: not logged in or the wrong kind of login (401), the wrong role (403), or
            # the object out of their scope (404, as if missing). A 409 or 422 would mean the state or the body
            # was judged before the caller, and an upload's 404 that the photos were.
            assert response.status_code in (401, 403, 404), where
            error = response.json()["error"]
            assert response.status_code != 404 or error["code"] in OUT_OF_SCOPE, where
            assert re.search(r"[\u4e00-\u9fff]", error["message"]), where
            refused.append(who)
        # Once for all the refusals of this write (a snapshot after each would double the test's time).
        assert self.state() == before, f"{write.operation}: a refusal changed the state ({', '.join(refused)})"
        self.refused += len(refused)
        response = self.send(write, write.allowed)
        assert 200 <= response.status_code < 300, f"{write.operation} as {write.allowed}: {response.text}"
        if write.operation not in READ_ONLY_WRITES:
            assert self.state() != before, f"{write.operation} changed nothing the comparison sees"
        self.probed.add(write.operation)
        return response.json() if response.content else None

    def state(self) -> tuple[dict[str, list[str]], list[str]]:
        """Every row of every table (the audit log and polygons aside) and every stored object."""
        context = self.api.client.app.state.context  # type: ignore[attr-defined]
        rows = self.api.client.portal.call(_rows, context)  # type: ignore[union-attr]
        return rows, sorted(str(p.relative_to(self.objects)) for p in self.objects.rglob("*") if p.is_file())


async def _rows(context: Any) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    async with unit_of_work(context.sessions) as session:
        for table in Base.metadata.sorted_tables:
            if table.name in UNCOMPARED_TABLES:
                continue
            columns = [column for column in table.columns if column.name not in UNCOMPARED_COLUMNS]
            result = await session.execute(select(*columns))
            rows[table.name] = sorted(repr(tuple(row)) for row in result.all())
    return rows


@pytest.fixture
def matrix(api: Api, settings: Settings) -> Matrix:
    assert settings.storage.local_root is not None
    return Matrix(api, Path(settings.storage.local_root))


def _cases(case_id: str, command: str) -> str:
    return f"/v1/staff/cases/{case_id}/{command}"


CASE_WRITES = {
    "reroute_case",
    "reject_case",
    "merge_case",
    "supervise_case",
    "reveal_identity",
    "accept_case",
    "assign_case",
    "return_case",
    "start_verification",
    "request_extension",
    "approve_extension",
    "verify_case",
    "record_penalty",
    "order_rectification",
    "report_rectified",
    "review_rectification",
    "rate_report",
    "publish_case",
    "withdraw_publication",
    "appeal_report",
    "close_case",
}


def test_case_commands_with_real_bodies(api: Api, matrix: Matrix) -> None:
    _, case = new_case(api, "alice")
    _, other = new_case(api, "alice")
    _, duplicate = new_case(api, "alice")
    _, unfounded = new_case(api, "alice")
    case_id = case["id"]
    dispatcher, inspector = matrix.headers["dispatcher"], matrix.headers["inspector"]

    # Submitted.
    reroute = {"department_code": "441881-fire", "reason": "液化气瓶在餐饮场所，属消防检查"}
    matrix.check(Write("reroute_case", _cases(other["id"], "reroute"), "dispatcher", reroute))
    matrix.check(Write("reject_case", _cases(other["id"], "reject"), "dispatcher", {"reason": "not_safety_matter"}))
    matrix.check(Write("merge_case", _cases(duplicate["id"], "merge"), "dispatcher", {"primary_id": case_id}))
    matrix.check(Write("supervise_case", _cases(case_id, "supervise"), "dispatcher", {"reason": "请加快办理"}))
    matrix.check(
        Write("reveal_identity", _cases(case_id, "reveal-identity"), "dispatcher", {"reason": "核实举报内容需要回访"})
    )
    matrix.check(Write("accept_case", _cases(case_id, "accept"), "dispatcher", {"note": "受理"}))
    # Accepted, then assigned (and back, and assigned again).
    matrix.check(Write("assign_case", _cases(case_id, "assign"), "dispatcher", {"department_code": "441881-emergency"}))
    matrix.check(Write("return_case", _cases(case_id, "return"), "head", {"reason": "请安委办重新研判"}))
    ok(api.command(dispatcher, case_id, "assign", {"department_code": "441881-emergency"}))
    matrix.check(Write("start_verification", _cases(case_id, "start-verification"), "inspector", {"note": "到场"}))
    # Verifying.
    extension = {"days": 20, "reason": "需等待第三方检测报告"}
    matrix.check(Write("request_extension", _cases(case_id, "request-extension"), "inspector", extension))
    matrix.check(Write("approve_extension", _cases(case_id, "approve-extension"), "head", {"note": "同意"}))
    inspection = api.upload_id(inspector, data=small_jpeg(4400))
    verdict = {"outcome": "true", "hazard_level": "major", "penalty_fen": 10_000_000, "findings": "现场查实"}
    verdict["attachments"] = [inspection]
    matrix.check(Write("verify_case", _cases(case_id, "verify"), "inspector", verdict))
    # Verified true.
    penalty = {"penalty_fen": 10_000_000, "decision_number": "英应急罚〔2026〕12号"}
    matrix.check(Write("record_penalty", _cases(case_id, "record-penalty"), "inspector", penalty))
    matrix.check(
        Write("order_rectification", _cases(case_id, "order-rectification"), "inspector", {"measures": "立即整改"})
    )
    # Rectifying, rectified, closed.
    photo = api.upload_id(inspector, data=small_jpeg(4401))
    matrix.check(Write("report_rectified", _cases(case_id, "report-rectified"), "inspector", {"after_photos": [photo]}))
    matrix.check(Write("review_rectification", _cases(case_id, "review-rectification"), "head", {"passed": True}))
    matrix.check(Write("rate_report", f"/v1/me/reports/{case_id}/rating", "alice", {"score": 5, "comment": "满意"}))
    summary = {"summary": "某企业储罐区重大隐患已整改到位。"}
    matrix.check(Write("publish_case", _cases(case_id, "publish"), "dispatcher", summary))
    withdrawal = {"reason": "企业提出异议，复核中"}
    matrix.check(Write("withdraw_publication", _cases(case_id, "withdraw-publication"), "dispatcher", withdrawal))
    matrix.check(Write("appeal_report", f"/v1/me/reports/{case_id}/appeal", "alice", {"reason": "隐患仍然存在"}))
    # Verified false, then closed.
    verify(api, unfounded["id"], outcome="false", penalty_fen=None)
    matrix.check(Write("close_case", _cases(unfounded["id"], "close"), "inspector", {"note": "核查不属实"}))
    assert matrix.probed == CASE_WRITES


REWARD_WRITES = {
    "confirm_reward",
    "approve_reward",
    "claim_my_reward",
    "reveal_payee",
    "pay_reward",
    "reverse_reward_payment",
    "reject_reward",
    "appeal_my_reward",
}


def _rewards(reward_id: str, command: str) -> str:
    return f"/v1/staff/rewards/{reward_id}/{command}"


def test_reward_commands_with_real_bodies(api: Api, matrix: Matrix) -> None:
    _, case = new_case(api, "alice")
    verify(api, case["id"])
    [paid] = rewards_of(api, case["number"])
    _, other = new_case(api, "alice")
    verify(api, other["id"])
    [refused] = rewards_of(api, other["number"])

    matrix.check(Write("confirm_reward", _rewards(paid["id"], "confirm"), "head", {"note": "同意建议金额"}))
    matrix.check(Write("approve_reward", _rewards(paid["id"], "approve"), "auditor", {"note": "符合政策"}))
    matrix.check(Write("claim_my_reward", f"/v1/me/rewards/{paid['id']}/claim", "alice", PAYEE))
    matrix.check(Write("reveal_payee", _rewards(paid["id"], "reveal-payee"), "auditor", {"reason": "核对收款账户"}))
    matrix.check(Write("pay_reward", _rewards(paid["id"], "pay"), "payer", PAYMENT))
    reversal = {"reason": "银行退票：户名不符"}
    matrix.check(Write("reverse_reward_payment", _rewards(paid["id"], "reverse-payment"), "payer", reversal))

    ok(command(api, "head", refused["id"], "confirm"))
    matrix.check(
        Write("reject_reward", _rewards(refused["id"], "reject"), "auditor", {"reason": "举报人系被举报单位负责人"})
    )
    appeal = {"reason": "我不是该单位负责人"}
    matrix.check(Write("appeal_my_reward", f"/v1/me/rewards/{refused['id']}/appeal", "alice", appeal))
    assert matrix.probed == REWARD_WRITES


REFERENCE_WRITES = {
    "import_jurisdictions",
    "create_department",
    "create_category",
    "create_routing_rule",
    "retire_routing_rule",
    "preview_routing",
    "load_calendar_year",
    "set_deadline_policy",
    "add_reward_policy",
    "create_partner",
    "revoke_partner",
    "upload_photo",
    "submit_report",
    "record_subscriptions",
}

SQUARE = [[[113.50, 24.40], [113.60, 24.40], [113.60, 24.50], [113.50, 24.50], [113.50, 24.40]]]
TOWNSHIP = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"adcode": 441881901, "name": "好镇", "level": "township", "parent": {"adcode": 441881}},
            "geometry": {"type": "Polygon", "coordinates": SQUARE},
        }
    ],
}


def test_reference_data_and_intake_writes_with_real_bodies(api: Api, matrix: Matrix) -> None:
    geojson = json.dumps(TOWNSHIP, ensure_ascii=False).encode()
    files = {"file": ("towns.geojson", geojson, "application/geo+json")}
    matrix.check(Write("import_jurisdictions", "/v1/admin/jurisdictions/import", "admin", files=files))
    department = {"code": "441881-drones", "name": "英德市无人机管理办公室", "jurisdiction_adcode": "441881"}
    matrix.check(Write("create_department", "/v1/admin/departments", "admin", department))
    matrix.check(Write("create_category", "/v1/admin/categories", "admin", {"code": "drones", "name": "无人机"}))
    rule = {"category_code": "drones", "jurisdiction_adcode": "441881", "department_code": "441881-drones"}
    created = matrix.check(Write("create_routing_rule", "/v1/admin/routing-rules", "admin", rule))
    matrix.check(Write("retire_routing_rule", f"/v1/admin/routing-rules/{created['id']}/retire", "admin"))
    place = {"longitude": 113.405, "latitude": 24.186, "datum": "gcj02"}
    matrix.check(
        Write("preview_routing", "/v1/admin/routing/preview", "dispatcher", {"category": "gas", "location": place})
    )
    year = {"year": 2027, "holidays": ["2027-01-01", "2027-02-08", "2027-02-09"], "workdays": []}
    matrix.check(Write("load_calendar_year", "/v1/admin/calendar-years", "admin", year))
    deadline = {"step": "verification", "days": 45, "count": "calendar"}
    matrix.check(Write("set_deadline_policy", "/v1/admin/deadline-policies", "admin", deadline, method="PUT"))
    matrix.check(Write("add_reward_policy", "/v1/admin/reward-policies", "admin", YINGDE_POLICY))
    partner = matrix.check(Write("create_partner", "/v1/admin/partners", "admin", {"name": "某平台"}))
    matrix.check(Write("revoke_partner", f"/v1/admin/partners/{partner['id']}/revoke", "admin"))

    photo = {"file": ("photo.jpg", small_jpeg(4402), "image/jpeg")}
    upload = matrix.check(Write("upload_photo", "/v1/uploads", "alice", files=photo))
    body = api.report_body([upload["id"]])
    matrix.check(Write("submit_report", "/v1/reports", "alice", body))
    hotline_photo = api.upload_id(matrix.headers["hotline"], data=small_jpeg(4403))
    caller = {"name": "张三", "phone": "13800000000"}
    SCAN.secrets.update(caller.values())
    on_the_phone = api.report_body([hotline_photo], channel="hotline", caller=caller)
    matrix.check(Write("submit_report", "/v1/reports", "hotline", on_the_phone))
    opt_in = {"asked": ["accepted", "result"], "accepted": ["accepted"]}
    matrix.check(Write("record_subscriptions", "/v1/me/subscriptions", "alice", opt_in))
    assert matrix.probed == REFERENCE_WRITES


def test_every_write_with_a_caller_to_refuse_is_probed() -> None:
    assert set(WRITES) == CASE_WRITES | REWARD_WRITES | REFERENCE_WRITES | PUBLIC_WRITES
    assert all(WRITES[operation] == EVERYONE for operation in PUBLIC_WRITES)
