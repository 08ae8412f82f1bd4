from __future__ import annotations

from typing import Any

from tests.support.api import Api, random_uuid


def _submit(api: Api, category: str = "gas") -> tuple[dict[str, str], dict[str, Any]]:
    reporter = api.reporter("alice")
    receipt = api.submit(reporter, category=category).json()
    return reporter, receipt


def test_dispatcher_reroutes_to_a_department_with_a_reason(api: Api) -> None:
    reporter, receipt = _submit(api, "gas")
    dispatcher = api.staff("dispatcher")
    response = api.client.post(
        f"/v1/staff/cases/{receipt['id']}/reroute",
        headers=dispatcher,
        json={"department_code": "441881-fire", "reason": "液化气瓶在餐饮场所，属消防检查"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["department"]["name"] == "英德市消防救援大队"
    last = body["routing"][-1]
    assert last["kind"] == "reroute" and last["reason"] == "manual_reroute"
    assert last["note"] == "液化气瓶在餐饮场所，属消防检查"
    mine = api.client.get(f"/v1/me/reports/{receipt['id']}", headers=reporter).json()
    assert mine["handling_department"] == "英德市消防救援大队"
    assert mine["status"]["label"] == "已转至 英德市消防救援大队 核查"
    # Once assigned, the fire brigade sees it; the housing bureau does not.
    api.accept_and_assign(receipt["id"])
    assert api.client.get(f"/v1/staff/cases/{receipt['id']}", headers=api.staff("fire-inspector")).status_code == 200
    assert api.client.get(f"/v1/staff/cases/{receipt['id']}", headers=api.staff("housing-inspector")).status_code == 404


def test_correcting_the_category_reroutes_by_the_rules(api: Api) -> None:
    _, receipt = _submit(api, "gas")
    response = api.client.post(
        f"/v1/staff/cases/{receipt['id']}/reroute",
        headers=api.staff("dispatcher"),
        json={"category": "special_equipment", "reason": "实为电梯故障"},
    )
    body = response.json()
    assert body["category"]["code"] == "special_equipment"
    assert body["department"]["name"] == "英德市市场监督管理局"
    assert body["routing"][-1]["reason"] == "rule_matched" and body["routing"][-1]["rule_id"]


def test_reroute_needs_something_to_change_and_a_reason(api: Api) -> None:
    _, receipt = _submit(api)
    dispatcher = api.staff("dispatcher")
    url = f"/v1/staff/cases/{receipt['id']}/reroute"
    assert api.client.post(url, headers=dispatcher, json={"reason": "没有改动"}).json()["error"]["code"] == (
        "nothing_to_reroute"
    )
    assert api.client.post(url, headers=dispatcher, json={"department_code": "441881-fire"}).status_code == 422
    unknown = api.client.post(url, headers=dispatcher, json={"department_code": "ghost", "reason": "测试一下"})
    assert unknown.json()["error"]["field"] == "department_code"
    assert (
        api.client.post(
            url, headers=api.staff("inspector"), json={"department_code": "441881-fire", "reason": "越权"}
        ).status_code
        == 403
    )


def test_a_department_hands_a_case_back(api: Api) -> None:
    reporter, receipt = _submit(api, "gas")
    api.accept_and_assign(receipt["id"])
    housing = api.staff("housing-inspector")
    url = f"/v1/staff/cases/{receipt['id']}/return"
    assert api.client.post(url, headers=api.staff("inspector"), json={"reason": "不是我们的"}).status_code == 404
    response = api.client.post(url, headers=housing, json={"reason": "瓶装液化气经营属市场监管，非本局职责"})
    assert response.status_code == 200, response.text
    assert api.client.get(f"/v1/staff/cases/{receipt['id']}", headers=housing).status_code == 404
    dispatcher = api.staff("dispatcher")
    view = api.client.get(f"/v1/staff/cases/{receipt['id']}", headers=dispatcher).json()
    assert view["department"] is None
    assert view["routing"][-1]["kind"] == "hand_back"
    assert view["state"] == "accepted"
    assert "非本局职责" in view["routing"][-1]["explanation"]
    queue = api.client.get("/v1/staff/triage", headers=dispatcher).json()["items"]
    assert any(item["id"] == receipt["id"] and item["routing_reason"] == "handed_back" for item in queue)
    mine = api.client.get(f"/v1/me/reports/{receipt['id']}", headers=reporter).json()
    assert mine["handling_department"] is None


def test_staff_scope_and_roles(api: Api) -> None:
    _, receipt = _submit(api, "hazardous_chemicals")
    url = f"/v1/staff/cases/{receipt['id']}"
    # Before the dispatcher assigns it, the routed department does not see it yet.
    assert api.client.get(url, headers=api.staff("inspector")).status_code == 404
    api.accept_and_assign(receipt["id"])
    assert api.client.get(url, headers=api.staff("inspector")).status_code == 200
    assert api.client.get(url, headers=api.staff("head")).status_code == 200
    assert api.client.get(url, headers=api.staff("fire-inspector")).status_code == 404
    assert api.client.get(url, headers=api.staff("dispatcher")).status_code == 200
    assert api.client.get(url, headers=api.staff("auditor")).status_code == 200
    assert api.client.get(url, headers=api.staff("hotline")).status_code == 403
    assert api.client.get(url, headers=api.reporter("alice")).status_code == 401
    assert api.client.get(f"/v1/staff/cases/{random_uuid()}", headers=api.staff("dispatcher")).status_code == 404
    assert api.client.get("/v1/staff/triage", headers=api.staff("inspector")).status_code == 403


def test_inspectors_see_the_case_but_never_the_reporter(api: Api) -> None:
    reporter = api.reporter("whistleblower")
    me = api.client.post("/v1/auth/wechat/login", json={"code": "code-whistleblower"}).json()
    receipt = api.submit(reporter, category="hazardous_chemicals", reporter_is_employee=True, hide_identity=True)
    api.accept_and_assign(receipt.json()["id"])
    body = api.client.get(f"/v1/staff/cases/{receipt.json()['id']}", headers=api.staff("inspector"))
    text = body.text
    for secret in (me["reporter_id"], "openid-whistleblower", receipt.json()["query_code"]):
        assert secret not in text
    assert body.json()["reporter_is_employee"] is None and body.json()["flags"] is None
    dispatcher_view = api.client.get(f"/v1/staff/cases/{receipt.json()['id']}", headers=api.staff("dispatcher"))
    assert dispatcher_view.json()["reporter_is_employee"] is True
    assert me["reporter_id"] not in dispatcher_view.text
