from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import MultiPolygon

from app.core.errors import InvalidInput
from app.geo.geojson import GeoJSONImportError, JurisdictionFeature, load_geojson, parse_geojson

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "geo" / "china-counties"

SQUARE = [[[113.0, 23.0], [113.1, 23.0], [113.1, 23.1], [113.0, 23.1], [113.0, 23.0]]]
OTHER_SQUARE = [[[114.0, 23.0], [114.1, 23.0], [114.1, 23.1], [114.0, 23.1], [114.0, 23.0]]]
BOW_TIE = [[[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]


def feature(geometry: Any, **properties: Any) -> dict[str, Any]:
    props = {"adcode": 441802, "name": "清城区", "level": "district", "parent": {"adcode": 441800}}
    props.update(properties)
    return {"type": "Feature", "properties": props, "geometry": geometry}


def polygon(coordinates: Any = SQUARE) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": coordinates}


def collection(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, ensure_ascii=False).encode()


def parse_one(geometry: Any, **properties: Any) -> JurisdictionFeature:
    (parsed,) = parse_geojson(collection(feature(geometry, **properties)))
    return parsed


def import_error(data: bytes | str) -> GeoJSONImportError:
    with pytest.raises(GeoJSONImportError) as caught:
        parse_geojson(data)
    return caught.value


# ---- encoding and document shape ------------------------------------------------------------------------------


def test_utf8_with_and_without_bom_parse_the_same() -> None:
    plain = collection(feature(polygon()))
    with_bom = b"\xef\xbb\xbf" + plain
    assert parse_geojson(with_bom) == parse_geojson(plain)
    assert parse_geojson("\ufeff" + plain.decode()) == parse_geojson(plain)
    assert parse_geojson(with_bom)[0].name == "清城区"


def test_real_province_file_with_bom() -> None:
    raw = (DATA / "100000_full.json").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    provinces = load_geojson(DATA / "100000_full.json", skip=lambda p: not str(p.get("adcode")).isdigit())
    assert len(provinces) == 34
    assert {p.level for p in provinces} == {"province"}
    assert provinces[0].adcode == "110000" and provinces[0].parent_adcode == "100000"
    assert all(isinstance(p.geometry, MultiPolygon) and p.geometry.is_valid for p in provinces)


def test_real_province_file_refuses_the_dash_line_feature_without_a_filter() -> None:
    # The atlas ships the South China Sea dash line as feature 34 without level or name: named, not guessed.
    error = import_error((DATA / "100000_full.json").read_bytes())
    assert error.details["problem_count"] == 1
    problem = error.details["problems"][0]
    assert (problem["index"], problem["adcode"]) == (34, "100000_JD")
    assert "100000_JD" in error.detail_message and "第 34 个要素" in error.detail_message


def test_not_json_and_not_a_collection_are_refused() -> None:
    assert import_error(b"\xff\xfe not utf-8").details["reason"] == "not_json"
    assert import_error(b"{not json").details["reason"] == "not_json"
    assert import_error(json.dumps({"type": "Feature"}).encode()).details["reason"] == "not_collection"
    assert import_error(b'{"type": "FeatureCollection", "features": {}}').details["reason"] == "not_collection"


def test_load_geojson_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "layer.json"
    path.write_bytes(b"\xef\xbb\xbf" + collection(feature(polygon())))
    assert [f.adcode for f in load_geojson(path)] == ["441802"]


# ---- geometry -------------------------------------------------------------------------------------------------


def test_polygon_and_multipolygon_both_become_multipolygons() -> None:
    from_polygon = parse_one(polygon())
    from_multi = parse_one({"type": "MultiPolygon", "coordinates": [SQUARE, OTHER_SQUARE]})
    assert isinstance(from_polygon.geometry, MultiPolygon) and len(from_polygon.geometry.geoms) == 1
    assert isinstance(from_multi.geometry, MultiPolygon) and len(from_multi.geometry.geoms) == 2
    assert from_polygon.geometry.area == pytest.approx(0.01)
    assert from_multi.geometry.area == pytest.approx(0.02)


def test_holes_are_kept() -> None:
    hole = [[113.02, 23.02], [113.08, 23.02], [113.08, 23.08], [113.02, 23.08], [113.02, 23.02]]
    parsed = parse_one(polygon([SQUARE[0], hole]))
    assert parsed.geometry.area == pytest.approx(0.01 - 0.0036)
    assert not parsed.geometry.covers(shapely.Point(113.05, 23.05))


def test_bow_tie_is_repaired_into_its_two_triangles() -> None:
    assert not shapely.is_valid(shapely.Polygon(BOW_TIE[0]))
    parsed = parse_one(polygon(BOW_TIE))
    assert parsed.geometry.is_valid
    assert isinstance(parsed.geometry, MultiPolygon) and len(parsed.geometry.geoms) == 2
    assert parsed.geometry.area == pytest.approx(0.5)
    assert parsed.geometry.covers(shapely.Point(0.1, 0.5)) and parsed.geometry.covers(shapely.Point(0.9, 0.5))


def test_overlapping_parts_are_unioned_not_cut_out() -> None:
    # Atlas islands often overlap their mainland part; the overlap must stay inside the unit.
    shifted = [[[113.05, 23.0], [113.15, 23.0], [113.15, 23.1], [113.05, 23.1], [113.05, 23.0]]]
    parsed = parse_one({"type": "MultiPolygon", "coordinates": [SQUARE, shifted]})
    assert parsed.geometry.is_valid
    assert parsed.geometry.area == pytest.approx(0.015)
    assert parsed.geometry.covers(shapely.Point(113.07, 23.05))


def test_third_coordinate_dropped_and_open_ring_closed() -> None:
    open_ring_3d = [[[113.0, 23.0, 5.0], [113.1, 23.0, 5.0], [113.1, 23.1, 5.0], [113.0, 23.1, 5.0]]]
    parsed = parse_one(polygon(open_ring_3d))
    assert not parsed.geometry.has_z
    assert parsed.geometry.area == pytest.approx(0.01)


# ---- properties -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("adcode", [441802, "441802", " 441802 "])
def test_adcode_int_or_str(adcode: Any) -> None:
    assert parse_one(polygon(), adcode=adcode).adcode == "441802"


@pytest.mark.parametrize(
    ("parent", "expected"),
    [
        ({"adcode": 441800}, "441800"),
        ({"adcode": "441800"}, "441800"),
        (441800, "441800"),
        ("441800", "441800"),
        (None, None),
        ("", None),
        ({"adcode": None}, None),
    ],
)
def test_parent_forms(parent: Any, expected: str | None) -> None:
    assert parse_one(polygon(), parent=parent).parent_adcode == expected


def test_missing_parent_is_none() -> None:
    data = feature(polygon())
    del data["properties"]["parent"]
    (parsed,) = parse_geojson(collection(data))
    assert parsed.parent_adcode is None


def test_skip_filter_leaves_features_out() -> None:
    data = collection(feature(polygon()), feature(polygon(OTHER_SQUARE), adcode="x_JD", name="", level=None))
    parsed = parse_geojson(data, skip=lambda props: props.get("adcode") == "x_JD")
    assert [f.adcode for f in parsed] == ["441802"]


# ---- refusals -------------------------------------------------------------------------------------------------


def test_null_geometry_is_refused_naming_the_feature() -> None:
    error = import_error(collection(feature(polygon()), feature(None, adcode=441803, name="清新区")))
    assert error.details["problems"] == [
        {"index": 1, "adcode": 441803, "name": "清新区", "reason": "几何为空（geometry 为 null）"}
    ]
    assert "第 1 个要素" in error.detail_message and "441803" in error.detail_message
    assert "清新区" in error.detail_message


def test_geometry_with_nothing_polygonal_after_repair_is_refused() -> None:
    collinear = [[[113.0, 23.0], [113.5, 23.5], [114.0, 24.0], [113.0, 23.0]]]
    error = import_error(collection(feature(polygon(collinear), adcode=441821, name="佛冈县")))
    (problem,) = error.details["problems"]
    assert (problem["index"], problem["adcode"], problem["name"]) == (0, 441821, "佛冈县")
    assert "不含任何多边形" in problem["reason"]


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"adcode": None}, "adcode"),
        ({"adcode": True}, "adcode"),
        ({"adcode": ""}, "adcode"),
        ({"name": None}, "name"),
        ({"name": "  "}, "name"),
        ({"level": None}, "level"),
        ({"parent": [1]}, "parent"),
    ],
)
def test_missing_or_bad_properties_are_refused(override: dict[str, Any], needle: str) -> None:
    error = import_error(collection(feature(polygon(), **override)))
    (problem,) = error.details["problems"]
    assert problem["index"] == 0 and needle in problem["reason"]


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Point", "coordinates": [113.0, 23.0]},
        {"type": "Polygon", "coordinates": []},
        {"type": "Polygon", "coordinates": [[["a", "b"], [1, 2], [3, 4]]]},
        {"type": "Polygon", "coordinates": [[[113.0, 23.0], [113.1, 23.0]]]},
        {"type": "Polygon", "coordinates": [[[113.0, 23.0], [113.1, float("nan")], [113.1, 23.1]]]},
        {"type": "MultiPolygon", "coordinates": []},
        {"type": "MultiPolygon", "coordinates": "x"},
        "not an object",
    ],
)
def test_malformed_geometry_is_refused(geometry: Any) -> None:
    error = import_error(collection(feature(geometry)))
    assert error.details["problems"][0]["index"] == 0


def test_feature_that_is_not_a_feature_is_refused() -> None:
    data = json.dumps({"type": "FeatureCollection", "features": [["not", "a", "feature"]]}).encode()
    assert "Feature" in import_error(data).details["problems"][0]["reason"]


def test_import_is_all_or_nothing_and_lists_every_problem() -> None:
    data = collection(
        feature(polygon(), adcode=441802),
        feature(None, adcode=441803, name="清新区"),
        feature(polygon(OTHER_SQUARE), adcode=441821),
        feature(polygon(), adcode=441825, level=None),
    )
    error = import_error(data)
    assert error.details["problem_count"] == 2
    assert [p["index"] for p in error.details["problems"]] == [1, 3]
    assert "共 2 个要素有误" in error.detail_message


def test_duplicate_adcode_is_refused() -> None:
    error = import_error(collection(feature(polygon()), feature(polygon(OTHER_SQUARE), adcode="441802")))
    (problem,) = error.details["problems"]
    assert problem["index"] == 1 and "第 0 个要素重复" in problem["reason"]


def test_error_is_an_invalid_input_with_a_stable_code() -> None:
    error = import_error(collection(feature(None)))
    assert isinstance(error, InvalidInput)
    assert error.status == 422 and error.code == "invalid_geojson"
    assert "GeoJSON" in GeoJSONImportError.message
    body = error.body()["error"]
    assert body["code"] == "invalid_geojson" and body["details"]["problems"][0]["adcode"] == 441802
