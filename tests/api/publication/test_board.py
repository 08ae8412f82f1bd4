"""The exposure board: what a dispatcher publishes, what the public sees, and what it never sees."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.support.api import Api, random_uuid
from tests.support.images import small_jpeg
from tests.support.public import PRECISE, close_verified_case, ok, publish


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = dict(response.json()["error"])
    assert error["code"] == code, error
    return error


def test_a_published_case_shows_only_public_facts(api: Api) -> None:
    case = close_verified_case(api)
    assert ok(api.client.get("/v1/public/cases"))["items"] == []
    _error(api.client.get(f"/v1/public/cases/{case.id}"), 404, "public_case_not_found")

    view = ok(publish(api, case.id))
    assert view["status"] == "published" and view["place_name"] == "英城街道（示意）"
    # By default the staff's inspection and after-photos, never the reporter's own.
    assert view["photo_ids"] == [case.inspection_photo, case.after_photo]

    page = ok(api.client.get("/v1/public/cases"))
    assert [item["id"] for item in page["items"]] == [case.id] and page["next_cursor"] is None
    shown = ok(api.client.get(f"/v1/public/cases/{case.id}"))
    assert shown == page["items"][0]
    assert shown["category"] == {"code": "hazardous_chemicals", "name": "危险化学品"}
    assert shown["place"]["name"] == "英城街道（示意）" and shown["place"]["level"] == "township"
    # The township's centroid at 0.01°, not the report's point.
    assert (shown["place"]["longitude"], shown["place"]["latitude"]) == (113.40, 24.19)
    assert shown["place"]["longitude"] != round(PRECISE["longitude"], 2)
    assert shown["outcome"] == {
        "verification": "true",
        "verification_label": "属实",
        "hazard_level": "major",
        "hazard_level_label": "重大事故隐患",
        "rectified": True,
    }
    assert shown["department"] == "英德市应急管理局"
    assert shown["summary"].startswith("某化工企业")
    assert shown["submitted_at"] <= shown["closed_at"] <= shown["published_at"]
    assert set(shown) == {
        "id",
        "category",
        "place",
        "department",
        "submitted_at",
        "closed_at",
        "published_at",
        "updated_at",
        "outcome",
        "summary",
        "photos",
    }
    assert len(shown["photos"]) == 2
    for photo in shown["photos"]:
        assert "original" not in photo["display_url"] and "original" not in photo["thumbnail_url"]
        image = api.client.get(photo["display_url"])
        assert image.status_code == 200
        assert not Image.open(io.BytesIO(image.content)).getexif()


def test_the_dispatcher_may_choose_the_photos(api: Api) -> None:
    case = close_verified_case(api)
    chosen = ok(publish(api, case.id, photo_ids=[case.after_photo, case.reporter_photo]))
    assert chosen["photo_ids"] == [case.after_photo, case.reporter_photo]
    assert len(ok(api.client.get(f"/v1/public/cases/{case.id}"))["photos"]) == 2
    assert ok(publish(api, case.id, photo_ids=[]))["photo_ids"] == []
    assert ok(api.client.get(f"/v1/public/cases/{case.id}"))["photos"] == []

    other = close_verified_case(api, "bob", seed=7)
    _error(publish(api, case.id, photo_ids=[other.after_photo]), 422, "photo_not_of_case")
    _error(publish(api, case.id, photo_ids=[random_uuid()]), 422, "photo_not_of_case")


def test_public_answers_are_cacheable(api: Api) -> None:
    case = close_verified_case(api)
    ok(publish(api, case.id))
    for url in ("/v1/public/cases", f"/v1/public/cases/{case.id}"):
        first = api.client.get(url)
        assert first.headers["cache-control"] == "public, max-age=60"
        etag = first.headers["etag"]
        assert etag.startswith('"') and api.client.get(url).headers["etag"] == etag
        revalidated = api.client.get(url, headers={"If-None-Match": etag})
        assert revalidated.status_code == 304 and revalidated.content == b""
        assert revalidated.headers["etag"] == etag
        assert api.client.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
        assert api.client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200

    before = api.client.get(f"/v1/public/cases/{case.id}").headers["etag"]
    ok(publish(api, case.id, summary="修改后的公开摘要：储罐区已加装紧急切断装置。"))
    changed = api.client.get(f"/v1/public/cases/{case.id}", headers={"If-None-Match": before})
    assert changed.status_code == 200 and changed.headers["etag"] != before
    assert changed.json()["summary"].startswith("修改后")


def test_only_closed_true_cases_are_published_by_dispatchers(api: Api) -> None:
    reporter = api.reporter("carol")
    open_case = ok(api.submit(reporter), 201)["id"]
    error = _error(publish(api, open_case), 409, "case_not_publishable")
    assert error["details"]["current_state"] == "submitted"

    photo = api.upload_id(reporter, data=small_jpeg(99))
    false_case = ok(api.submit(reporter, [photo], category="hazardous_chemicals"), 201)["id"]
    inspector = api.staff("inspector")
    api.accept_and_assign(false_case)
    ok(api.command(inspector, false_case, "start-verification"))
    ok(api.command(inspector, false_case, "verify", {"outcome": "false", "findings": "现场未发现所述情况"}))
    ok(api.command(inspector, false_case, "close"))
    _error(publish(api, false_case), 409, "case_not_publishable")

    case = close_verified_case(api, "dave", seed=3, outcome="partly_true")
    body = {"summary": "某企业储罐区隐患已整改到位。"}
    for who in ("inspector", "head", "hotline", "auditor", "admin"):
        response = api.client.post(f"/v1/staff/cases/{case.id}/publish", headers=api.staff(who), json=body)
        assert response.status_code == 403, (who, response.text)
    _error(publish(api, random_uuid()), 404, "case_not_found")
    _error(publish(api, case.id, summary="太短"), 422, "validation_error")
    _error(publish(api, case.id, summary="含控制字符\x07的摘要内容内容"), 422, "validation_error")
    _error(
        api.client.post(
            f"/v1/staff/cases/{case.id}/publish",
            headers=api.staff("dispatcher"),
            json={"summary": "某企业储罐区隐患已整改到位。", "number": "x"},
        ),
        422,
        "validation_error",
    )
    assert ok(publish(api, case.id))["status"] == "published"
    shown = ok(api.client.get(f"/v1/public/cases/{case.id}"))
    assert shown["outcome"]["verification"] == "partly_true" and shown["outcome"]["verification_label"] == "部分属实"


def test_withdrawal_takes_a_case_off_the_board_and_is_audited(api: Api) -> None:
    case = close_verified_case(api)
    dispatcher = api.staff("dispatcher")
    withdraw_url = f"/v1/staff/cases/{case.id}/withdraw-publication"
    _error(api.client.post(withdraw_url, headers=dispatcher, json={"reason": "误发"}), 409, "not_published")
    _error(api.client.get(f"/v1/staff/cases/{case.id}/publication", headers=dispatcher), 404, "publication_not_found")
    ok(publish(api, case.id))
    _error(api.client.post(withdraw_url, headers=dispatcher, json={}), 422, "validation_error")
    withdrawn = ok(api.client.post(withdraw_url, headers=dispatcher, json={"reason": "企业提出异议，复核中"}))
    assert withdrawn["status"] == "withdrawn" and withdrawn["withdrawal_reason"] == "企业提出异议，复核中"
    _error(api.client.get(f"/v1/public/cases/{case.id}"), 404, "public_case_not_found")
    assert ok(api.client.get("/v1/public/cases"))["items"] == []
    _error(api.client.post(withdraw_url, headers=dispatcher, json={"reason": "再次撤回"}), 409, "not_published")

    assert ok(publish(api, case.id))["status"] == "published"
    assert ok(api.client.get(f"/v1/public/cases/{case.id}"))["id"] == case.id

    log = ok(api.client.get("/v1/admin/audit-log", headers=api.staff("admin"), params={"target": case.id}))
    actions = [(entry["action"], entry["reason"]) for entry in log["items"] if entry["action"] != "reveal_identity"]
    assert ("withdraw_publication", "企业提出异议，复核中") in actions
    assert [a for a, _ in actions].count("publish_case") == 2


def test_a_reopened_case_leaves_the_board_until_published_again(api: Api) -> None:
    case = close_verified_case(api)
    ok(publish(api, case.id))
    appeal = api.client.post(
        f"/v1/me/reports/{case.id}/appeal", headers=case.reporter, json={"reason": "整改后又恢复原状，请再次核查"}
    )
    assert appeal.status_code == 200, appeal.text
    _error(api.client.get(f"/v1/public/cases/{case.id}"), 404, "public_case_not_found")
    status = ok(api.client.get(f"/v1/staff/cases/{case.id}/publication", headers=api.staff("dispatcher")))
    assert status["status"] == "hidden"
    _error(publish(api, case.id), 409, "case_not_publishable")


def test_filters_and_pages(api: Api) -> None:
    first = close_verified_case(api, "erin", seed=11)
    second = close_verified_case(api, "frank", seed=12, location={**PRECISE, "longitude": 113.30123})
    third = close_verified_case(api, "grace", seed=13)
    for case in (first, second, third):
        ok(publish(api, case.id))

    page = ok(api.client.get("/v1/public/cases", params={"limit": 2}))
    assert [item["id"] for item in page["items"]] == [third.id, second.id]
    rest = ok(api.client.get("/v1/public/cases", params={"limit": 2, "cursor": page["next_cursor"]}))
    assert [item["id"] for item in rest["items"]] == [first.id] and rest["next_cursor"] is None

    townships = {item["place"]["adcode"] for item in page["items"] + rest["items"]}
    assert "441881001" in townships and len(townships) == 2
    in_town = ok(api.client.get("/v1/public/cases", params={"township": "441881001"}))
    assert {item["id"] for item in in_town["items"]} == {first.id, third.id}
    assert ok(api.client.get("/v1/public/cases", params={"category": "gas"}))["items"] == []
    by_category = ok(api.client.get("/v1/public/cases", params={"category": "hazardous_chemicals"}))
    assert len(by_category["items"]) == 3

    _error(api.client.get("/v1/public/cases", params={"cursor": "not-a-cursor"}), 422, "invalid_cursor")
    _error(api.client.get("/v1/public/cases", params={"township": "英城"}), 422, "validation_error")
    _error(api.client.get("/v1/public/cases", params={"limit": 500}), 422, "validation_error")
    _error(api.client.get("/v1/public/cases/not-a-uuid"), 422, "validation_error")
