"""Queues, deadlines on the official calendar, escalation, identity reveals and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from app.core.db import unit_of_work, utcnow
from app.deadlines.models import CaseDeadline
from app.workflow.escalation import escalate_overdue
from tests.support.api import Api
from tests.support.images import small_jpeg


def _case(api: Api, name: str, category: str = "hazardous_chemicals", **overrides: Any) -> str:
    reporter = api.reporter(name)
    upload = api.upload_id(reporter, data=small_jpeg(sum(map(ord, name)) % 251))
    response = api.submit(reporter, [upload], category=category, **overrides)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _age_deadlines(api: Api, case_id: str, days: int) -> None:
    context = api.client.app.state.context  # type: ignore[attr-defined]

    async def age() -> None:
        async with unit_of_work(context.sessions) as session:
            await session.execute(
                update(CaseDeadline)
                .where(CaseDeadline.report_id == uuid.UUID(case_id))
                .values(due_at=utcnow() - timedelta(days=days))
            )

    api.client.portal.call(age)  # type: ignore[union-attr]


def test_queue_filters_keyset_pages_and_counts(api: Api) -> None:
    ids = [_case(api, f"r{i}", category="hazardous_chemicals" if i % 2 else "fire_safety") for i in range(5)]
    dispatcher = api.staff("dispatcher")
    api.accept_and_assign(ids[1])
    page = api.client.get("/v1/staff/cases", headers=dispatcher, params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert page["counts"] == {"submitted": 4, "assigned": 1}
    rest = api.client.get(
        "/v1/staff/cases", headers=dispatcher, params={"limit": 10, "cursor": page["next_cursor"]}
    ).json()
    seen = [i["id"] for i in page["items"] + rest["items"]]
    assert seen == list(reversed(ids))
    rejected = _case(api, "rejected")
    refer = {"reason": "outside_jurisdiction", "refer_to": "清远市清城区应急管理局"}
    assert api.command(dispatcher, rejected, "reject", refer).status_code == 200
    # Finished cases are listed but not counted: the counts are the work in hand.
    with_rejected = api.client.get("/v1/staff/cases", headers=dispatcher, params={"limit": 2}).json()
    assert with_rejected["items"][0]["id"] == rejected
    assert with_rejected["counts"] == {"submitted": 4, "assigned": 1}
    chemicals = api.client.get(
        "/v1/staff/cases", headers=dispatcher, params={"category": "hazardous_chemicals", "state": ["submitted"]}
    ).json()
    assert {i["id"] for i in chemicals["items"]} == {ids[3]}
    assert chemicals["counts"] == {"submitted": 1, "assigned": 1}
    inspector_view = api.client.get("/v1/staff/cases", headers=api.staff("inspector")).json()
    assert [i["id"] for i in inspector_view["items"]] == [ids[1]]
    assert inspector_view["items"][0]["flags"] == []


def test_queue_items_say_what_the_case_says(api: Api) -> None:
    """Each item's department, next deadline, overdue mark and flags are the case's own, whoever asks."""
    ids = [_case(api, f"item{i}", category="hazardous_chemicals") for i in range(3)]  # one point: duplicates
    api.accept_and_assign(ids[0])
    api.accept_and_assign(ids[1], department_code="441881-fire")
    _age_deadlines(api, ids[1], days=1)
    dispatcher, inspector = api.staff("dispatcher"), api.staff("fire-inspector")
    for headers, shows_flags in ((dispatcher, True), (inspector, False)):
        items = api.client.get("/v1/staff/cases", headers=headers).json()["items"]
        assert items
        for item in items:
            view = api.client.get(f"/v1/staff/cases/{item['id']}", headers=dispatcher).json()
            unmet = [d["due_at"] for d in view["deadlines"] if d["met_at"] is None]
            assert item["department"] == view["department"]
            assert item["category"] == view["category"]
            assert (item["next_due_at"] is None) == (not unmet)
            if unmet:
                assert _instant(item["next_due_at"]) == min(map(_instant, unmet))
            assert item["overdue"] is (item["id"] == ids[1])
            assert item["flags"] == ([f["code"] for f in view["flags"]] if shows_flags else [])
    listed = {i["id"]: i for i in api.client.get("/v1/staff/cases", headers=dispatcher).json()["items"]}
    assert listed[ids[0]]["department"]["name"] != listed[ids[1]]["department"]["name"]
    assert "possible_duplicate" in listed[ids[2]]["flags"]


def test_every_queue_filter_selects_what_it_names(api: Api) -> None:
    """Each filter, alone and with a cursor, lists exactly the cases whose own view matches it, newest first; the
    counts ignore the state filter and the cursor, and an empty page still has them."""
    ids = [_case(api, f"filter{i}", category="fire_safety" if i % 2 else "hazardous_chemicals") for i in range(4)]
    api.accept_and_assign(ids[0])
    api.accept_and_assign(ids[1], department_code="441881-fire")
    fire_inspector, dispatcher = api.staff("fire-inspector"), api.staff("dispatcher")
    assert api.command(fire_inspector, ids[1], "start-verification").status_code == 200
    _age_deadlines(api, ids[1], days=1)
    views = {i: api.client.get(f"/v1/staff/cases/{i}", headers=dispatcher).json() for i in ids}
    newest_first = list(reversed(ids))
    middle = views[ids[1]]["submitted_at"]
    fire = views[ids[1]]["department"]["id"]
    adcode = views[ids[0]]["jurisdiction_adcode"]
    flag = next(f["code"] for f in views[ids[2]]["flags"])
    expectations: list[tuple[dict[str, Any], list[str]]] = [
        ({}, newest_first),
        ({"state": ["assigned", "submitted"]}, [i for i in newest_first if views[i]["state"] != "verifying"]),
        ({"category": "fire_safety"}, [ids[3], ids[1]]),
        ({"jurisdiction": adcode}, newest_first),
        ({"jurisdiction": "441882"}, []),
        ({"department_id": fire}, [i for i in newest_first if (views[i]["department"] or {}).get("id") == fire]),
        ({"submitted_from": middle}, [ids[3], ids[2], ids[1]]),
        ({"submitted_to": middle}, [ids[0]]),
        ({"overdue": "true"}, [ids[1]]),
        ({"overdue": "false"}, [ids[3], ids[2], ids[0]]),
        ({"flag": flag}, [i for i in newest_first if flag in {f["code"] for f in views[i]["flags"]}]),
        ({"state": ["closed"]}, []),
    ]
    everything = api.client.get("/v1/staff/cases", headers=dispatcher).json()["counts"]
    for params, expected in expectations:
        page = api.client.get("/v1/staff/cases", headers=dispatcher, params=params)
        assert page.status_code == 200, (params, page.text)
        assert [i["id"] for i in page.json()["items"]] == expected, params
        if "state" in params:
            assert page.json()["counts"] == everything
        walked, cursor = [], None
        while True:
            following = {"cursor": cursor} if cursor else {}
            step = api.client.get(
                "/v1/staff/cases", headers=dispatcher, params={**params, "limit": 1, **following}
            ).json()
            walked += [i["id"] for i in step["items"]]
            assert step["counts"] == page.json()["counts"]
            if not (cursor := step["next_cursor"]):
                break
        assert walked == expected, params
    mine = api.client.get("/v1/staff/cases", headers=fire_inspector, params={"mine": "true"}).json()["items"]
    assert [i["id"] for i in mine] == [ids[1]]
    assert api.client.get("/v1/staff/cases", headers=dispatcher, params={"mine": "true"}).json()["items"] == []


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_overdue_cases_surface_in_supervision_and_are_escalated_once(api: Api) -> None:
    late, on_time = _case(api, "late"), _case(api, "ontime", category="fire_safety")
    _age_deadlines(api, late, days=1)
    dispatcher = api.staff("dispatcher")
    listed = api.client.get("/v1/staff/supervision", headers=dispatcher).json()["items"]
    assert [i["id"] for i in listed] == [late] and listed[0]["overdue"] is True
    overdue = api.client.get("/v1/staff/cases", headers=dispatcher, params={"overdue": "true"}).json()["items"]
    assert [i["id"] for i in overdue] == [late]
    context = api.client.app.state.context  # type: ignore[attr-defined]
    assert api.client.portal.call(escalate_overdue, context) == 1  # type: ignore[union-attr]
    assert api.client.portal.call(escalate_overdue, context) == 0  # type: ignore[union-attr]
    timeline = api.client.get(f"/v1/staff/cases/{late}/timeline", headers=dispatcher).json()
    assert [e["command"] for e in timeline] == ["escalate"]
    assert api.client.get(f"/v1/staff/cases/{on_time}/timeline", headers=dispatcher).json() == []


def test_working_day_deadlines_are_provisional_until_the_year_is_loaded(api: Api) -> None:
    admin = api.staff("admin")
    policy = api.client.put(
        "/v1/admin/deadline-policies", headers=admin, json={"step": "verification", "days": 200, "count": "working"}
    )
    assert policy.status_code == 200, policy.text
    case_id = _case(api, "longcase")
    api.accept_and_assign(case_id)
    view = api.client.get(f"/v1/staff/cases/{case_id}", headers=api.staff("dispatcher")).json()
    verification = next(d for d in view["deadlines"] if d["step"] == "verification")
    assert verification["count"] == "working" and verification["provisional"] is True  # 200 working days reach 2027
    year = {"year": 2027, "holidays": ["2027-01-01", "2027-02-08", "2027-02-09", "2027-02-10"], "workdays": []}
    loaded = api.client.post("/v1/admin/calendar-years", headers=admin, json=year)
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["recomputed_deadlines"] >= 1
    after = api.client.get(f"/v1/staff/cases/{case_id}", headers=api.staff("dispatcher")).json()
    recomputed = next(d for d in after["deadlines"] if d["step"] == "verification")
    assert recomputed["provisional"] is False and recomputed["due_at"] > verification["due_at"]
    bad = api.client.post(
        "/v1/admin/calendar-years", headers=admin, json={"year": 2028, "holidays": ["2027-05-01"], "workdays": []}
    )
    assert bad.status_code == 422


def _acceptance(api: Api, case_id: str) -> dict[str, Any]:
    view = api.client.get(f"/v1/staff/cases/{case_id}", headers=api.staff("dispatcher")).json()
    return next(d for d in view["deadlines"] if d["step"] == "acceptance")


def test_a_policy_or_calendar_change_reaches_the_next_submission_of_a_process_that_cached_the_old(api: Api) -> None:
    """Submissions keep the deadline policies and the calendar in memory, keyed by the reference-data version."""
    before = _acceptance(api, _case(api, "cached"))  # this process now holds the policies of this version
    assert (before["days"], before["count"]) == (3, "working")
    admin = api.staff("admin")
    policy = {"step": "acceptance", "days": 10, "count": "calendar", "category_code": "hazardous_chemicals"}
    assert api.client.put("/v1/admin/deadline-policies", headers=admin, json=policy).status_code == 200
    after = _acceptance(api, _case(api, "fresh"))
    assert (after["days"], after["count"]) == (10, "calendar")
    year = {"year": 2027, "holidays": ["2027-01-01"], "workdays": []}
    assert api.client.post("/v1/admin/calendar-years", headers=admin, json=year).status_code == 200
    kinds = [c["kind"] for c in api.client.get("/v1/admin/reference-changes", headers=admin).json()]
    assert kinds[:2] == ["calendar", "deadline_policies"]


def test_identity_is_masked_revealed_only_with_a_reason_and_every_reveal_is_audited(api: Api) -> None:
    operator = api.staff("hotline")
    upload = api.upload_id(operator, data=small_jpeg(7))
    filed = api.submit(operator, [upload], channel="hotline", caller={"name": "张三丰", "phone": "13812345678"})
    case_id = filed.json()["id"]
    anonymous = _case(api, "anon", hide_identity=True)
    dispatcher, auditor, inspector = api.staff("dispatcher"), api.staff("auditor"), api.staff("inspector")
    view = api.client.get(f"/v1/staff/cases/{case_id}", headers=dispatcher).json()
    assert view["contact"] == {"anonymous": False, "channel_account": False, "name": "张**", "phone": "138****5678"}
    assert "13812345678" not in str(view)
    revealed = api.client.post(
        f"/v1/staff/cases/{case_id}/reveal-identity", headers=auditor, json={"reason": "发放奖励需核对身份"}
    )
    assert revealed.status_code == 200 and revealed.json()["phone"] == "13812345678"
    refused = api.client.post(
        f"/v1/staff/cases/{anonymous}/reveal-identity", headers=dispatcher, json={"reason": "想联系举报人"}
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "identity_hidden_by_reporter"
    api.accept_and_assign(case_id)
    assert (
        api.client.post(
            f"/v1/staff/cases/{case_id}/reveal-identity", headers=inspector, json={"reason": "看看"}
        ).status_code
        == 403
    )
    log = api.client.get(
        "/v1/admin/audit-log", headers=api.staff("admin"), params={"action": "reveal_identity"}
    ).json()["items"]
    assert {(e["target_id"], e["reason"]) for e in log} == {
        (case_id, "发放奖励需核对身份"),
        (anonymous, "想联系举报人"),
    }
    actions = api.client.get("/v1/admin/audit-log", headers=api.staff("admin"), params={"target": case_id}).json()
    assert {"accept", "assign", "reveal_identity"} <= {e["action"] for e in actions["items"]}
    assert api.client.get("/v1/admin/audit-log", headers=dispatcher).status_code == 403


def test_an_empty_code_in_a_deadline_policy_is_refused_not_stored(api: Api) -> None:
    # Found by schemathesis: "" passed the existence check (falsy) and failed the foreign key as a 500.
    admin = api.staff("admin")
    for field in ("category_code", "department_code"):
        body = {"step": "acceptance", "days": 5, "count": "calendar", field: ""}
        response = api.client.put("/v1/admin/deadline-policies", headers=admin, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == response.json()["error"] | {"code": "validation_error", "field": field}
    unknown = api.client.put(
        "/v1/admin/deadline-policies",
        headers=admin,
        json={"step": "acceptance", "days": 5, "count": "calendar", "category_code": "no-such-category"},
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_category"
