"""A case's life through the API: the commands, their guards, deadlines, the timelines and the reporter's side."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.notifications.models import OutboxMessage
from tests.support.api import Api
from tests.support.images import small_jpeg


def _new_case(api: Api, category: str = "hazardous_chemicals", name: str = "alice") -> tuple[dict[str, str], str]:
    reporter = api.reporter(name)
    receipt = api.submit(reporter, [api.upload_id(reporter, data=small_jpeg(hash(name) % 97))], category=category)
    assert receipt.status_code == 201, receipt.text
    return reporter, receipt.json()["id"]


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = dict(response.json()["error"])
    assert error["code"] == code, error
    return error


def _verify_true(api: Api, case_id: str, inspector: dict[str, str]) -> None:
    _ok(api.command(inspector, case_id, "start-verification"))
    _ok(
        api.command(
            inspector,
            case_id,
            "verify",
            {
                "outcome": "true",
                "hazard_level": "major",
                "penalty_fen": 2_000_000,
                "enterprise": {"name": "英德某化工有限公司"},
                "standard_items": ["化工和危险化学品生产经营单位重大生产安全事故隐患判定标准 第十条"],
                "findings": "现场查实：储罐区未设置紧急切断装置",
            },
        )
    )


def test_the_whole_life_of_a_true_report(api: Api) -> None:
    reporter, case_id = _new_case(api)
    inspector, head = api.staff("inspector"), api.staff("head")
    api.accept_and_assign(case_id)
    _verify_true(api, case_id, inspector)
    _ok(
        api.command(
            inspector, case_id, "order-rectification", {"measures": "七日内加装紧急切断装置", "deadline_days": 7}
        )
    )
    after = api.upload_id(inspector, data=small_jpeg(50))
    _error(api.command(inspector, case_id, "report-rectified", {"after_photos": []}), 422, "after_photos_required")
    _ok(api.command(inspector, case_id, "report-rectified", {"after_photos": [after], "note": "已加装"}))
    # Four eyes: whoever ordered the rectification does not review it.
    _error(
        api.command(inspector, case_id, "review-rectification", {"passed": True}), 409, "reviewer_ordered_rectification"
    )
    closed = _ok(api.command(head, case_id, "review-rectification", {"passed": True, "note": "复查合格"}))
    assert closed["state"] == "closed"

    view = _ok(api.client.get(f"/v1/staff/cases/{case_id}", headers=api.staff("dispatcher")))
    assert view["verification"]["penalty_fen"] == 2_000_000 and view["verification"]["hazard_level"] == "major"
    assert view["rectifications"][0]["passed"] is True
    assert {d["step"] for d in view["deadlines"]} == {"acceptance", "verification", "rectification"}
    assert all(d["met_at"] for d in view["deadlines"])

    timeline = _ok_list(api.client.get(f"/v1/me/reports/{case_id}/timeline", headers=reporter))
    labels = [entry["label"] for entry in timeline]
    assert labels[:3] == ["已提交", "已受理", "已转办 英德市应急管理局"]
    assert "核查完成" in labels and labels[-1] == "整改复查"
    assert "inspector" not in str(timeline) and "应急局核查员" not in str(timeline)
    rated = api.client.post(f"/v1/me/reports/{case_id}/rating", headers=reporter, json={"score": 5, "comment": "很快"})
    assert rated.status_code == 200
    _error(
        api.client.post(f"/v1/me/reports/{case_id}/rating", headers=reporter, json={"score": 4}), 409, "already_rated"
    )

    staff_timeline = api.client.get(f"/v1/staff/cases/{case_id}/timeline", headers=api.staff("dispatcher")).json()
    assert [e["sequence"] for e in staff_timeline] == list(range(1, len(staff_timeline) + 1))
    assert [e["command"] for e in staff_timeline][:3] == ["accept", "assign", "start_verification"]


def _ok_list(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return list(response.json())


def test_failed_reviews_alternate_and_are_bounded(api: Api) -> None:
    _, case_id = _new_case(api)
    inspector, head = api.staff("inspector"), api.staff("head")
    api.accept_and_assign(case_id)
    _verify_true(api, case_id, inspector)
    _ok(api.command(inspector, case_id, "order-rectification", {"measures": "整改"}))
    reviewers = [head, inspector, head]
    for round_, reviewer in enumerate(reviewers, start=1):
        photo = api.upload_id(inspector, data=small_jpeg(100 + round_))
        _ok(api.command(inspector, case_id, "report-rectified", {"after_photos": [photo]}))
        response = api.command(reviewer, case_id, "review-rectification", {"passed": False, "note": "仍未到位"})
        if round_ < 3:
            assert _ok(response)["state"] == "rectifying"
        else:
            _error(response, 409, "rectification_rounds_exhausted")
    view = api.client.get(f"/v1/staff/cases/{case_id}", headers=api.staff("dispatcher")).json()
    assert [r["round"] for r in view["rectifications"]] == [1, 2, 3]


def test_illegal_moves_roles_and_scope(api: Api) -> None:
    _, case_id = _new_case(api)
    dispatcher = api.staff("dispatcher")
    _ok(api.command(dispatcher, case_id, "accept"))
    error = _error(api.command(dispatcher, case_id, "accept"), 409, "illegal_transition")
    assert error["details"]["current_state"] == "accepted"
    _error(
        api.command(
            dispatcher, case_id, "verify", {"outcome": "true", "hazard_level": "general", "findings": "越权核查"}
        ),
        403,
        "command_not_allowed",
    )
    _ok(api.command(dispatcher, case_id, "assign"))
    _error(api.command(api.staff("inspector"), case_id, "accept"), 403, "command_not_allowed")
    assert api.command(api.staff("fire-inspector"), case_id, "start-verification").status_code == 404
    _error(api.command(api.staff("head"), case_id, "start-verification"), 403, "command_not_allowed")


def test_false_report_closes_and_can_be_appealed_once(api: Api) -> None:
    reporter, case_id = _new_case(api)
    inspector = api.staff("inspector")
    api.accept_and_assign(case_id)
    _ok(api.command(inspector, case_id, "start-verification"))
    _error(
        api.command(inspector, case_id, "verify", {"outcome": "true", "findings": "缺隐患等级"}),
        422,
        "hazard_level_required",
    )
    _ok(api.command(inspector, case_id, "verify", {"outcome": "false", "findings": "现场无此情况"}))
    _ok(api.command(inspector, case_id, "close", {"note": "不属实，办结"}))
    appeal = api.client.post(f"/v1/me/reports/{case_id}/appeal", headers=reporter, json={"reason": "照片里明明有"})
    assert appeal.status_code == 200 and appeal.json()["state"] == "accepted"
    other = api.reporter("mallory")
    assert (
        api.client.post(f"/v1/me/reports/{case_id}/appeal", headers=other, json={"reason": "冒充"}).status_code == 404
    )
    api.command(api.staff("dispatcher"), case_id, "assign")
    _ok(api.command(inspector, case_id, "start-verification"))
    _ok(api.command(inspector, case_id, "verify", {"outcome": "false", "findings": "复核仍不属实"}))
    _ok(api.command(inspector, case_id, "close"))
    _error(
        api.client.post(f"/v1/me/reports/{case_id}/appeal", headers=reporter, json={"reason": "再申诉"}),
        409,
        "appeal_already_used",
    )


def test_rejection_uses_the_fixed_list_and_tells_where_to_go(api: Api) -> None:
    reporter, case_id = _new_case(api)
    dispatcher = api.staff("dispatcher")
    _error(api.command(dispatcher, case_id, "reject", {"reason": "outside_jurisdiction"}), 422, "referral_required")
    assert api.command(dispatcher, case_id, "reject", {"reason": "i_dont_like_it"}).status_code == 422
    _ok(
        api.command(
            dispatcher, case_id, "reject", {"reason": "outside_jurisdiction", "refer_to": "清远市清城区应急管理局"}
        )
    )
    timeline = api.client.get(f"/v1/me/reports/{case_id}/timeline", headers=reporter).json()
    assert timeline[-1]["label"] == "不予受理"
    assert "不属于本地管辖" in timeline[-1]["detail"] and "清城区应急管理局" in timeline[-1]["detail"]
    mine = api.client.get(f"/v1/me/reports/{case_id}", headers=reporter).json()
    assert mine["status"]["code"] == "rejected"


def test_duplicates_are_found_and_merged(api: Api) -> None:
    _, first = _new_case(api, name="alice")
    second_reporter, second = _new_case(api, name="bob")  # same category, same point
    dispatcher = api.staff("dispatcher")
    view = api.client.get(f"/v1/staff/cases/{second}", headers=dispatcher).json()
    assert [d["case_id"] for d in view["duplicates"]] == [first]
    assert view["duplicates"][0]["distance_m"] == 0
    assert any(f["code"] == "possible_duplicate" for f in view["flags"])
    _ok(api.command(dispatcher, second, "merge", {"primary_id": first, "note": "同一储罐区"}))
    group = api.client.get(f"/v1/staff/cases/{first}", headers=dispatcher).json()["merge_group"]
    assert [(m["case_id"], m["primary"], m["first_reporter"]) for m in group] == [
        (first, True, True),
        (second, False, False),
    ]
    timeline = api.client.get(f"/v1/me/reports/{second}/timeline", headers=second_reporter).json()
    assert timeline[-1]["label"] == "已合并办理"
    _error(api.command(dispatcher, first, "merge", {"primary_id": second}), 409, "primary_not_open")


def test_every_nearby_open_report_is_a_candidate_in_one_write(api: Api) -> None:
    """Several candidates go in as one INSERT of unnested arrays on PostgreSQL (a row each on SQLite): all of them
    are stored, each with its distance, and named in the flag; a finished report is not a candidate."""
    earlier = [_new_case(api, name=name)[1] for name in ("alice", "bob", "carol")]
    finished = _new_case(api, name="dave")[1]
    dispatcher = api.staff("dispatcher")
    _ok(api.command(dispatcher, finished, "reject", {"reason": "not_safety_matter", "note": "不属于安全隐患"}))
    _, newest = _new_case(api, name="erin")
    view = api.client.get(f"/v1/staff/cases/{newest}", headers=dispatcher).json()
    assert sorted(d["case_id"] for d in view["duplicates"]) == sorted(earlier)
    assert {(d["distance_m"], d["same_photo"]) for d in view["duplicates"]} == {(0, False)}
    flagged = next(f for f in view["flags"] if f["code"] == "possible_duplicate")
    assert sorted(flagged["reports"]) == sorted(d["number"] for d in view["duplicates"])


def test_the_same_photo_re_encoded_is_a_duplicate_candidate(api: Api) -> None:
    """Found whichever of the new report's photos it is (here the second, after an unrelated one)."""
    import io

    from PIL import Image

    from tests.support.api import DEFAULT_PHOTO
    from tests.support.images import small_jpeg

    alice, bob = api.reporter("alice"), api.reporter("bob")
    first = api.submit(alice, [api.upload_id(alice)], category="fire_safety").json()["id"]
    copy = io.BytesIO()
    Image.open(DEFAULT_PHOTO).resize((320, 240)).save(copy, "JPEG", quality=60)
    far = {"longitude": 113.10, "latitude": 24.30, "datum": "gcj02"}
    photos = [api.upload_id(bob, data=small_jpeg(7)), api.upload_id(bob, data=copy.getvalue())]
    second = api.submit(bob, photos, category="gas", location=far).json()["id"]
    view = api.client.get(f"/v1/staff/cases/{second}", headers=api.staff("dispatcher")).json()
    assert [(d["case_id"], d["similar_photo"], d["same_photo"]) for d in view["duplicates"]] == [(first, True, False)]


def test_extension_once_with_approval_and_the_reason_shown_to_the_reporter(api: Api) -> None:
    reporter, case_id = _new_case(api)
    inspector, head = api.staff("inspector"), api.staff("head")
    api.accept_and_assign(case_id)
    _ok(api.command(inspector, case_id, "start-verification"))
    before = _deadline(api, case_id, "verification")
    _error(api.command(head, case_id, "approve-extension"), 409, "no_extension_request")
    assert api.command(inspector, case_id, "request-extension", {"days": 31, "reason": "太长"}).status_code == 422
    _ok(api.command(inspector, case_id, "request-extension", {"days": 20, "reason": "需等待第三方检测报告"}))
    _error(api.command(inspector, case_id, "approve-extension"), 403, "command_not_allowed")
    _ok(api.command(head, case_id, "approve-extension", {"note": "同意"}))
    after = _deadline(api, case_id, "verification")
    assert after["days"] == before["days"] + 20 and after["extension_reason"] == "需等待第三方检测报告"
    _error(
        api.command(inspector, case_id, "request-extension", {"days": 5, "reason": "再延"}),
        409,
        "extension_already_used",
    )
    timeline = api.client.get(f"/v1/me/reports/{case_id}/timeline", headers=reporter).json()
    assert timeline[-1]["label"] == "核查期限延长" and "第三方检测报告" in timeline[-1]["detail"]


def _deadline(api: Api, case_id: str, step: str) -> dict[str, Any]:
    view = api.client.get(f"/v1/staff/cases/{case_id}", headers=api.staff("dispatcher")).json()
    return next(d for d in view["deadlines"] if d["step"] == step)


def test_notifications_are_written_with_the_change(api: Api) -> None:
    _, case_id = _new_case(api)
    api.accept_and_assign(case_id)
    context = api.client.app.state.context  # type: ignore[attr-defined]

    async def count() -> dict[str, int]:
        from app.core.db import unit_of_work

        async with unit_of_work(context.sessions) as session:
            rows = await session.execute(
                select(OutboxMessage.template_key, func.count()).group_by(OutboxMessage.template_key)
            )
            return {key: int(n) for key, n in rows}

    assert api.client.portal.call(count) == {"accepted": 1}  # type: ignore[union-attr]
