from __future__ import annotations

import json
from typing import Any

import pytest

from app.demo.seed import DEMO_RULES
from app.geo.datum import gcj02_to_wgs84
from tests.support.api import YINGDE, Api

# GCJ-02 points: 英城街道（示意） holds the city centre; 大站镇（示意） is the west of the county.
YINGCHENG = {"longitude": 113.405, "latitude": 24.186, "datum": "gcj02"}
DAZHAN = {"longitude": 113.10, "latitude": 24.30, "datum": "gcj02"}
QINGCHENG = {"longitude": 113.05, "latitude": 23.70, "datum": "gcj02"}  # 清城区: a county with no rules here
BEIJING = {"longitude": 116.397, "latitude": 39.909, "datum": "gcj02"}
DEPARTMENTS = {
    "441881-emergency": "英德市应急管理局",
    "441881-fire": "英德市消防救援大队",
    "441881-housing": "英德市住房和城乡建设局",
    "441881-traffic-police": "英德市公安局交通警察大队",
    "441881-transport": "英德市交通运输局",
    "441881-agriculture": "英德市农业农村局",
    "441881-market": "英德市市场监督管理局",
    "441881-education": "英德市教育局",
    "441881-culture-tourism": "英德市文化广电旅游体育局",
    "441881-commerce": "英德市科工商务局",
}


def preview(api: Api, headers: dict[str, str], category: str, location: dict[str, Any]) -> dict[str, Any]:
    response = api.client.post(
        "/v1/admin/routing/preview", headers=headers, json={"category": category, "location": location}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def case(api: Api, headers: dict[str, str], report_id: str) -> Any:
    return api.client.get(f"/v1/staff/cases/{report_id}", headers=headers)


def test_every_category_of_the_demo_county_routes_to_its_department(api: Api) -> None:
    admin = api.staff("admin")
    categories = [c["code"] for c in api.client.get("/v1/categories").json()]
    assert set(categories) == set(DEMO_RULES)
    for category in categories:
        for place in (YINGCHENG, DAZHAN):
            decision = preview(api, admin, category, place)
            expected = DEMO_RULES[category]
            if category == "e_bike_charging" and place is YINGCHENG:
                expected = "441881-yingcheng"
            assert decision["outcome"] == "routed", (category, decision)
            assert decision["department_name"] == DEPARTMENTS.get(expected, "英城街道办事处（示意）")
            assert decision["reason"] == "rule_matched"
            assert [p["adcode"] for p in decision["jurisdiction_path"]][:2] == ["441800", "441881"]


def test_the_decision_is_recorded_with_its_rule_version_and_path(api: Api) -> None:
    reporter = api.reporter("alice")
    receipt = api.submit(reporter, category="fire_safety", location=dict(YINGDE)).json()
    assert receipt["number"].split("-")[1] == "441881"
    assert receipt["status"]["label"] == "已转至 英德市消防救援大队 核查"
    view = case(api, api.staff("dispatcher"), receipt["id"])
    assert view.status_code == 200
    body = view.json()
    assert body["department"]["name"] == "英德市消防救援大队"
    [decision] = body["routing"]
    assert decision["kind"] == "automatic" and decision["rule_id"] and decision["reference_version"] > 0
    assert [p["name"] for p in decision["jurisdiction_path"]] == ["清远市", "英德市", "英城街道（示意）"]
    assert "消防" in decision["explanation"] and "英德市" in decision["explanation"]
    rules = api.client.get("/v1/admin/routing-rules", headers=api.staff("admin")).json()
    assert decision["rule_id"] in {r["id"] for r in rules if r["category_code"] == "fire_safety"}


def test_wgs84_points_are_converted_before_the_lookup(api: Api) -> None:
    lon, lat = gcj02_to_wgs84(YINGCHENG["longitude"], YINGCHENG["latitude"])
    admin = api.staff("admin")
    wgs = preview(api, admin, "e_bike_charging", {"longitude": lon, "latitude": lat, "datum": "wgs84"})
    assert wgs["department_name"] == "英城街道办事处（示意）"
    # The same numbers taken as GCJ-02 land several hundred metres away: the datum matters.
    assert preview(api, admin, "gas", {"longitude": lon, "latitude": lat, "datum": "gcj02"})["jurisdiction_path"]


@pytest.mark.parametrize(
    ("place", "reason", "region"),
    [
        (BEIJING, "outside_all_jurisdictions", "441881"),
        (QINGCHENG, "no_rule_for_category_and_place", "441802"),
    ],
)
def test_points_without_a_department_go_to_triage_with_the_reason(
    api: Api, place: dict[str, Any], reason: str, region: str
) -> None:
    reporter = api.reporter("alice")
    receipt = api.submit(reporter, location=dict(place)).json()
    assert receipt["number"].split("-")[1] == region
    assert receipt["status"]["label"] == "已提交，待受理"
    dispatcher = api.staff("dispatcher")
    queue = api.client.get("/v1/staff/triage", headers=dispatcher).json()["items"]
    [item] = [i for i in queue if i["id"] == receipt["id"]]
    assert item["routing_reason"] == reason and item["routing_explanation"]
    assert case(api, dispatcher, receipt["id"]).json()["department"] is None


def test_a_category_without_rules_goes_to_triage(api: Api) -> None:
    admin = api.staff("admin")
    created = api.client.post("/v1/admin/categories", headers=admin, json={"code": "drones", "name": "无人机"})
    assert created.status_code == 204
    decision = preview(api, admin, "drones", YINGCHENG)
    assert decision["outcome"] == "triage" and decision["reason"] == "no_rule_for_category_and_place"
    assert "无人机" in decision["explanation"]


def test_rule_changes_take_effect_at_once_and_are_versioned(api: Api) -> None:
    admin = api.staff("admin")
    before = preview(api, admin, "gas", DAZHAN)
    assert before["department_name"] == "英德市住房和城乡建设局"
    created = api.client.post(
        "/v1/admin/routing-rules",
        headers=admin,
        json={"category_code": "gas", "jurisdiction_adcode": "441881101", "department_code": "441881-emergency"},
    )
    assert created.status_code == 201, created.text
    after = preview(api, admin, "gas", DAZHAN)
    assert after["department_name"] == "英德市应急管理局"
    assert after["rule_id"] == created.json()["id"]
    assert after["reference_version"] > before["reference_version"]
    assert preview(api, admin, "gas", YINGCHENG)["department_name"] == "英德市住房和城乡建设局"

    retired = api.client.post(f"/v1/admin/routing-rules/{created.json()['id']}/retire", headers=admin)
    assert retired.json()["is_active"] is False
    assert preview(api, admin, "gas", DAZHAN)["department_name"] == "英德市住房和城乡建设局"
    changes = api.client.get("/v1/admin/reference-changes", headers=admin).json()
    assert changes[0]["kind"] == "rules" and "停用" in changes[0]["summary"]


def test_a_point_near_a_border_is_marked_ambiguous(api: Api) -> None:
    # 英城街道（示意） is the box 113.35–113.47 × 24.13–24.25 cut from the county: its west edge is at 113.35.
    near = {"longitude": 113.35 + 0.00005, "latitude": 24.19, "datum": "gcj02"}
    decision = preview(api, api.staff("admin"), "gas", near)
    assert decision["ambiguous"] is True
    assert decision["distance_to_border_m"] is not None and decision["distance_to_border_m"] < 30
    assert "边界" in decision["explanation"]
    assert preview(api, api.staff("admin"), "gas", YINGCHENG)["ambiguous"] is False


def test_reference_data_is_for_admins(api: Api) -> None:
    dispatcher = api.staff("dispatcher")
    rule = {"category_code": "gas", "department_code": "441881-emergency"}
    assert api.client.post("/v1/admin/routing-rules", headers=dispatcher, json=rule).status_code == 403
    assert api.client.post("/v1/admin/routing-rules", headers=api.reporter("x"), json=rule).status_code == 401
    assert (
        api.client.post(
            "/v1/admin/routing/preview", headers=api.staff("inspector"), json={"category": "gas", "location": YINGCHENG}
        ).status_code
        == 403
    )


def test_bad_rules_are_refused(api: Api) -> None:
    admin = api.staff("admin")
    for body, field in [
        ({"category_code": "nope", "department_code": "441881-fire"}, "category_code"),
        ({"category_code": "gas", "department_code": "nope"}, "department_code"),
        (
            {"category_code": "gas", "jurisdiction_adcode": "999999", "department_code": "441881-fire"},
            "jurisdiction_adcode",
        ),
    ]:
        response = api.client.post("/v1/admin/routing-rules", headers=admin, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field


def _collection(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, ensure_ascii=False).encode()


def _feature(adcode: int, name: str, coordinates: Any, parent: int | None = 441881, kind: str = "Polygon") -> Any:
    return {
        "type": "Feature",
        "properties": {
            "adcode": adcode,
            "name": name,
            "level": "township",
            "parent": {"adcode": parent} if parent else None,
        },
        "geometry": {"type": kind, "coordinates": coordinates},
    }


SQUARE = [[[113.50, 24.40], [113.60, 24.40], [113.60, 24.50], [113.50, 24.50], [113.50, 24.40]]]


def _import(api: Api, data: bytes, **params: str) -> Any:
    return api.client.post(
        "/v1/admin/jurisdictions/import",
        headers=api.staff("admin"),
        params=params,
        files={"file": ("towns.geojson", data, "application/geo+json")},
    )


def test_jurisdiction_import_is_all_or_nothing_and_names_the_bad_feature(api: Api) -> None:
    broken = _feature(441881902, "坏乡", None)
    response = _import(api, _collection(_feature(441881901, "好镇", SQUARE), broken))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_geojson" and "441881902" in json.dumps(error, ensure_ascii=False)
    listed = api.client.get("/v1/admin/jurisdictions", headers=api.staff("admin"), params={"parent": "441881"})
    assert "441881901" not in {j["adcode"] for j in listed.json()}


def test_jurisdiction_import_with_bom_repair_and_immediate_effect(api: Api) -> None:
    bowtie = [[[113.50, 24.40], [113.60, 24.50], [113.60, 24.40], [113.50, 24.50], [113.50, 24.40]]]
    data = b"\xef\xbb\xbf" + _collection(_feature(441881903, "蝴蝶镇", bowtie))
    response = _import(api, data, illustrative="true")
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 1
    decision = preview(api, api.staff("admin"), "gas", {"longitude": 113.52, "latitude": 24.45, "datum": "gcj02"})
    assert decision["jurisdiction_path"][-1]["adcode"] == "441881903"


def test_jurisdiction_import_refuses_unknown_parents(api: Api) -> None:
    response = _import(api, _collection(_feature(999999001, "孤镇", SQUARE, parent=999999)))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "missing_parent_jurisdiction"
