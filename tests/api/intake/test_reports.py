from __future__ import annotations

import re

import pytest

from app.core.validation import credit_code_check_char
from tests.support.api import PHOTO_DIR, Api, random_uuid
from tests.support.images import small_jpeg


def test_submit_and_follow_a_report(api: Api) -> None:
    headers = api.reporter("alice")
    upload_id = api.upload_id(headers)
    response = api.submit(headers, [upload_id])
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["number"].startswith("2026-441881-") or receipt["number"][5:11] == "441881"
    assert len(receipt["query_code"]) == 8
    assert receipt["status"] == {"code": "submitted", "label": "已转至 英德市住房和城乡建设局 核查"}

    page = api.client.get("/v1/me/reports", headers=headers).json()
    assert [item["number"] for item in page["items"]] == [receipt["number"]]
    detail = api.client.get(f"/v1/me/reports/{receipt['id']}", headers=headers).json()
    assert detail["photos"][0]["id"] == upload_id
    display_url = detail["photos"][0]["display_url"]
    assert "original" not in display_url
    photo = api.client.get(display_url.removeprefix("http://testserver"))
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert b"Exif" not in photo.content[:4096]


def test_lookup_by_number_and_query_code(api: Api) -> None:
    headers = api.reporter("alice")
    receipt = api.submit(headers).json()
    found = api.client.post(
        "/v1/reports/lookup", json={"number": receipt["number"], "query_code": receipt["query_code"]}
    )
    assert found.status_code == 200
    assert found.json()["status"]["label"] == "已转至 英德市住房和城乡建设局 核查"
    assert found.json()["handling_department"] == "英德市住房和城乡建设局"
    wrong = api.client.post("/v1/reports/lookup", json={"number": receipt["number"], "query_code": "AAAAAAAA"})
    unknown = api.client.post("/v1/reports/lookup", json={"number": "2026-441881-999999", "query_code": "AAAAAAAA"})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()


def test_report_numbers_count_up(api: Api) -> None:
    headers = api.reporter("alice")
    photos = sorted((PHOTO_DIR / "jpg" / "orientation").glob("*.jpg"))[:3]
    numbers = [api.submit(headers, [api.upload_id(headers, p)]).json()["number"] for p in photos]
    sequence = [int(n.rsplit("-", 1)[1]) for n in numbers]
    assert sequence == [sequence[0], sequence[0] + 1, sequence[0] + 2]


def test_my_reports_paginate_newest_first(api: Api) -> None:
    headers = api.reporter("alice")
    photos = sorted((PHOTO_DIR / "jpg" / "orientation").glob("*.jpg"))[:5]
    numbers = [api.submit(headers, [api.upload_id(headers, p)]).json()["number"] for p in photos]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/v1/me/reports", headers=headers, params=params).json()
        seen.extend(item["number"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(numbers))
    bad = api.client.get("/v1/me/reports", headers=headers, params={"cursor": "!!!"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"


def test_reporters_cannot_see_or_use_each_others_things(api: Api) -> None:
    alice, mallory = api.reporter("alice"), api.reporter("mallory")
    upload_id = api.upload_id(alice)
    receipt = api.submit(alice, [api.upload_id(alice, PHOTO_DIR / "jpg" / "gps" / "DSCN0012.jpg")]).json()

    assert api.client.get(f"/v1/uploads/{upload_id}", headers=mallory).status_code == 404
    assert api.client.get(f"/v1/me/reports/{receipt['id']}", headers=mallory).status_code == 404
    assert api.client.get("/v1/me/reports", headers=mallory).json()["items"] == []
    stolen = api.submit(mallory, [upload_id])
    assert stolen.status_code == 404
    assert stolen.json()["error"]["code"] == "upload_not_found"
    assert api.client.get(f"/v1/me/reports/{random_uuid()}", headers=alice).status_code == 404


def test_an_upload_serves_one_report_only(api: Api) -> None:
    headers = api.reporter("alice")
    upload_id = api.upload_id(headers)
    assert api.submit(headers, [upload_id]).status_code == 201
    again = api.submit(headers, [upload_id])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "upload_already_attached"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"category": "no-such-category"}, "category"),
        ({"hazard_kind": "rumour"}, "hazard_kind"),
        ({"description": "短"}, "description"),
        ({"description": "x" * 1001}, "description"),
        ({"description": "有控制字符\x07的描述内容"}, "description"),
        ({"location": {"longitude": 200, "latitude": 24, "datum": "gcj02"}}, "location.longitude"),
        ({"location": {"longitude": 113.4, "latitude": 24.1, "datum": "bd09"}}, "location.datum"),
        ({"location": {"longitude": False, "latitude": 24.1, "datum": "gcj02"}}, "location.longitude"),
        ({"location": {"longitude": "113.4", "latitude": 24.1, "datum": "gcj02"}}, "location.longitude"),
        ({"observed_at": "2026-11-20T09:30:00"}, "observed_at"),
        ({"observed_at": 1763600000}, "observed_at"),
        ({"upload_ids": []}, "upload_ids"),
        ({"enterprise": {"name": "某化工厂", "credit_code": "91441881MA4UXXXXX1"}}, "enterprise.credit_code"),
        ({"reporter_is_employee": "yes"}, "reporter_is_employee"),
        ({"status": "closed"}, "status"),
        ({"channel": "hotline"}, "channel"),
    ],
)
def test_bad_submissions_name_the_field(api: Api, overrides: dict[str, object], field: str) -> None:
    headers = api.reporter("alice")
    upload_id = api.upload_id(headers)
    body = {**api.report_body([upload_id]), **overrides}
    response = api.client.post("/v1/reports", headers=headers, json=body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["field"] == field, error
    assert error["message"]
    # Nothing was made: the upload is still free for a correct submission.
    assert api.submit(headers, [upload_id]).status_code == 201


def test_too_many_photos(api: Api) -> None:
    headers = api.reporter("alice")
    response = api.submit(headers, [random_uuid() for _ in range(10)])
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "upload_ids"


def test_valid_enterprise_credit_code_is_kept(api: Api) -> None:
    headers = api.reporter("alice")
    code = "91441881MA4UL3001"
    code += credit_code_check_char(code)
    receipt = api.submit(headers, enterprise={"name": "英德某陶瓷厂", "credit_code": code}).json()
    detail = api.client.get(f"/v1/me/reports/{receipt['id']}", headers=headers).json()
    assert detail["enterprise"] == {"name": "英德某陶瓷厂", "credit_code": code}


def test_hotline_operator_files_for_a_caller(api: Api) -> None:
    operator = api.staff("hotline")
    upload_id = api.upload_id(operator)
    response = api.submit(operator, [upload_id], channel="hotline", caller={"name": "张三", "phone": "13800000000"})
    assert response.status_code == 201, response.text
    assert "13800000000" not in response.text
    inspector = api.staff("inspector")
    assert api.submit(inspector, [api.upload_id(inspector)], channel="hotline").status_code == 403
    mini = api.submit(operator, [api.upload_id(operator, PHOTO_DIR / "jpg" / "gps" / "DSCN0012.jpg")])
    assert mini.status_code == 403 and mini.json()["error"]["code"] == "channel_not_allowed"


def test_reporters_cannot_name_a_caller(api: Api) -> None:
    headers = api.reporter("alice")
    response = api.submit(headers, caller={"name": "李四"})
    assert response.status_code == 403
    assert response.json()["error"]["field"] == "caller"


def test_categories_are_listed(api: Api) -> None:
    categories = api.client.get("/v1/categories").json()
    assert len(categories) == 21
    assert {"code": "gas", "name": "燃气"} in categories


def test_photo_lists_that_cannot_make_a_report_change_nothing(api: Api) -> None:
    """Ten photos, one photo twice, another reporter's or a staff member's photo, one that does not exist: refused
    with the field named and a Chinese message, no report made and every photo still free."""
    alice, mallory = api.reporter("alice"), api.reporter("mallory")
    own = [api.upload_id(alice, data=small_jpeg(500 + n)) for n in range(10)]
    foreign = api.upload_id(mallory, data=small_jpeg(600))
    evidence = api.upload_id(api.staff("inspector"), data=small_jpeg(601))
    cases = [
        ("ten photos", own, 422, "validation_error"),
        ("the same photo twice", [own[0], own[1], own[0]], 422, "validation_error"),
        ("another reporter's photo among mine", [own[0], foreign], 404, "upload_not_found"),
        ("a staff member's photo", [evidence], 404, "upload_not_found"),
        ("a photo that does not exist", [own[0], random_uuid()], 404, "upload_not_found"),
        ("not an id", [own[0], "../uploads/x"], 422, "validation_error"),
    ]
    for name, ids, status, code in cases:
        response = api.submit(alice, ids)
        assert response.status_code == status, (name, response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["field"].startswith("upload_ids"), (name, error)
        assert re.search(r"[\u4e00-\u9fff]", error["message"]), (name, error)
    assert api.client.get("/v1/me/reports", headers=alice).json()["items"] == []
    for upload_id, owner in [*((u, alice) for u in own), (foreign, mallory)]:
        assert api.client.get(f"/v1/uploads/{upload_id}", headers=owner).json()["attached"] is False
    receipt = api.submit(alice, own[:9])
    assert receipt.status_code == 201, receipt.text
    detail = api.client.get(f"/v1/me/reports/{receipt.json()['id']}", headers=alice).json()
    assert [photo["id"] for photo in detail["photos"]] == own[:9]
