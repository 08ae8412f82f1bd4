from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, box

from app.core.errors import InvalidInput
from app.geo.datum import Datum, gcj02_to_wgs84, gcj02_to_wgs84_np, wgs84_to_gcj02
from app.geo.geojson import JurisdictionFeature
from app.geo.index import (
    InvalidCoordinates,
    JurisdictionIndex,
    LookupReason,
    LookupResult,
    load_county_layer,
)

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "geo" / "china-counties"
M_PER_DEG = 6_371_008.8 * math.pi / 180.0
TOLERANCE = 30.0


def metres_east(lat: float, metres: float) -> float:
    """Degrees of longitude spanning ``metres`` at ``lat`` (local equirectangular scale)."""
    return metres / (M_PER_DEG * math.cos(math.radians(lat)))


# ---- a small synthetic layer: province P ⊃ city C ⊃ counties A | B, plus an enclave D overlapping A ------------


def unit(adcode: str, geometry: shapely.Geometry, level: str, parent: str | None) -> JurisdictionFeature:
    multi = geometry if isinstance(geometry, MultiPolygon) else MultiPolygon([geometry])
    return JurisdictionFeature(adcode, f"unit {adcode}", level, parent, multi)


def small_layer() -> list[JurisdictionFeature]:
    return [
        unit("440000", box(112.9, 22.9, 114.1, 24.3), "province", "100000"),
        unit("441800", box(113.0, 23.0, 114.0, 24.2), "city", "440000"),  # the counties stop at 24.0
        unit("441801", box(113.0, 23.0, 113.5, 24.0), "district", "441800"),
        unit("441802", box(113.5, 23.0, 114.0, 24.0), "district", "441800"),
        unit("441803", box(113.2, 23.2, 113.3, 23.3), "district", "441800"),  # overlaps 441801 (bad data)
    ]


@pytest.fixture(scope="module")
def small() -> JurisdictionIndex:
    return JurisdictionIndex(small_layer())


def test_point_deep_inside_a_county(small: JurisdictionIndex) -> None:
    result = small.lookup(113.25, 23.6, Datum.GCJ02)
    assert result.adcode == "441801" and result.reason is LookupReason.INSIDE
    assert result.adcode_path == ("440000", "441800", "441801")
    assert [u.adcode for u in result.ancestors] == ["440000", "441800"]
    assert not result.ambiguous and result.distance_to_border_m is None and result.nearby == ()


def test_point_near_a_shared_border_is_ambiguous_with_its_distance(small: JurisdictionIndex) -> None:
    result = small.lookup(113.5 - metres_east(23.5, 10.0), 23.5, "gcj02")
    assert result.adcode == "441801" and result.ambiguous
    assert result.distance_to_border_m == pytest.approx(10.0, abs=1e-6)
    assert [u.adcode for u in result.nearby] == ["441802"]
    far = small.lookup(113.5 + metres_east(23.5, 31.0), 23.5, "gcj02")
    assert far.adcode == "441802" and not far.ambiguous and far.distance_to_border_m is None


def test_tolerance_is_configurable() -> None:
    wide = JurisdictionIndex(small_layer(), border_tolerance_m=50.0)
    result = wide.lookup(113.5 + metres_east(23.5, 40.0), 23.5, "gcj02")
    assert result.ambiguous and result.distance_to_border_m == pytest.approx(40.0, abs=1e-6)
    exact = JurisdictionIndex(small_layer(), border_tolerance_m=0.0)
    assert not exact.lookup(113.5 + metres_east(23.5, 1.0), 23.5, "gcj02").ambiguous
    with pytest.raises(ValueError):
        JurisdictionIndex(small_layer(), border_tolerance_m=-1.0)


def test_point_exactly_on_a_shared_border_belongs_to_both(small: JurisdictionIndex) -> None:
    # Both counties cover it; equal areas, so the lower adcode wins and the other is offered.
    result = small.lookup(113.5, 23.5, "gcj02")
    assert result.adcode == "441801" and result.ambiguous and result.distance_to_border_m == 0.0
    assert [u.adcode for u in result.nearby] == ["441802"]


def test_overlapping_units_answer_the_smaller(small: JurisdictionIndex) -> None:
    result = small.lookup(113.25, 23.25, "gcj02")
    assert result.adcode == "441803" and result.ambiguous
    assert "441801" in [u.adcode for u in result.nearby]


def test_point_in_a_city_but_no_county_answers_the_city(small: JurisdictionIndex) -> None:
    result = small.lookup(113.5, 24.1, "gcj02")
    assert result.reason is LookupReason.INSIDE_PARENT_ONLY
    assert result.adcode == "441800" and result.adcode_path == ("440000", "441800") and result.ambiguous
    only_province = small.lookup(112.95, 24.25, "gcj02")
    assert only_province.adcode == "440000" and only_province.reason is LookupReason.INSIDE_PARENT_ONLY


def test_point_outside_everything(small: JurisdictionIndex) -> None:
    for lon, lat in [(0.0, 0.0), (-120.0, 45.0), (150.0, -30.0), (113.5, 30.0)]:
        result = small.lookup(lon, lat, "wgs84")
        assert result.unit is None and result.path == () and result.reason is LookupReason.OUTSIDE
        assert result.reason == "outside_all_jurisdictions" and not result.ambiguous


def test_point_just_outside_reports_the_units_nearby() -> None:
    counties_only = JurisdictionIndex([f for f in small_layer() if f.level == "district"])
    result = counties_only.lookup(113.0 - metres_east(23.5, 12.0), 23.5, "gcj02")
    assert result.unit is None and result.reason is LookupReason.OUTSIDE and result.ambiguous
    assert result.distance_to_border_m == pytest.approx(12.0, abs=1e-6)
    assert [u.adcode for u in result.nearby] == ["441801"]


def test_wgs84_points_are_converted_to_the_layer_datum(small: JurisdictionIndex) -> None:
    # Here GCJ-02 lies ~545 m east of WGS-84. A point 100 m east of the border (GCJ) is in 441802; its WGS-84
    # coordinates, if wrongly read as GCJ-02, fall ~445 m west of the border, in 441801.
    gcj_point = (113.5 + metres_east(23.5, 100.0), 23.5)
    wgs_point = gcj02_to_wgs84(*gcj_point)
    assert small.lookup(*gcj_point, Datum.GCJ02).adcode == "441802"
    assert small.lookup(*wgs_point, Datum.WGS84).adcode == "441802"
    assert small.lookup(*wgs_point, Datum.GCJ02).adcode == "441801"


def test_layer_in_wgs84_converts_gcj02_points() -> None:
    layer = JurisdictionIndex(small_layer(), datum=Datum.WGS84)
    wgs_point = (113.5 - metres_east(23.5, 100.0), 23.5)
    gcj_point = wgs84_to_gcj02(*wgs_point)
    assert layer.lookup(*gcj_point, "gcj02").adcode == "441801"
    assert layer.lookup(*wgs_point, "wgs84").adcode == "441801"


@pytest.mark.parametrize(
    ("lon", "lat", "datum"),
    [
        (math.nan, 23.0, "gcj02"),
        (113.0, math.nan, "gcj02"),
        (200.0, 23.0, "wgs84"),
        (113.0, -91.0, "wgs84"),
        (113.0, 23.0, "bd09"),
    ],
)
def test_invalid_coordinates_are_refused(small: JurisdictionIndex, lon: float, lat: float, datum: str) -> None:
    with pytest.raises(InvalidCoordinates) as caught:
        small.lookup(lon, lat, datum)
    assert isinstance(caught.value, InvalidInput) and caught.value.code == "invalid_coordinates"
    with pytest.raises(InvalidCoordinates):
        small.lookup_many([lon], [lat], datum)


def test_duplicate_adcodes_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate adcode"):
        JurisdictionIndex([*small_layer(), unit("441801", box(0, 0, 1, 1), "district", "441800")])


def test_empty_geometry_is_refused() -> None:
    with pytest.raises(ValueError, match="empty geometry"):
        JurisdictionIndex([unit("441899", MultiPolygon(), "district", "441800")])


def test_empty_index_answers_outside() -> None:
    empty = JurisdictionIndex([])
    assert empty.lookup(113.0, 23.0, "gcj02").reason is LookupReason.OUTSIDE
    assert [r.reason for r in empty.lookup_many([113.0], [23.0], "gcj02")] == [LookupReason.OUTSIDE]


def test_lookup_many_equals_lookup_on_the_small_layer(small: JurisdictionIndex) -> None:
    rng = np.random.default_rng(5)
    lons, lats = rng.uniform(112.8, 114.2, 3000), rng.uniform(22.8, 24.4, 3000)
    for datum in ("gcj02", "wgs84"):
        batch = small.lookup_many(lons, lats, datum)
        assert batch == [small.lookup(x, y, datum) for x, y in zip(lons.tolist(), lats.tolist(), strict=True)]
    with pytest.raises(ValueError):
        small.lookup_many([113.0, 113.1], [23.0], "gcj02")


# ---- the whole country ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def layer() -> list[JurisdictionFeature]:
    return load_county_layer(DATA)


@pytest.fixture(scope="module")
def country(layer: list[JurisdictionFeature]) -> JurisdictionIndex:
    return JurisdictionIndex(layer, border_tolerance_m=TOLERANCE)


def _raw_features() -> Iterator[tuple[str, dict]]:
    for path in sorted(DATA.glob("*_full.json")):
        for raw in json.loads(path.read_text(encoding="utf-8-sig"))["features"]:
            yield path.name, raw


def test_layer_has_every_county_unit_and_every_countyless_city(
    layer: list[JurisdictionFeature], country: JurisdictionIndex
) -> None:
    leaves = {u.adcode: u for u in country.leaf_units}
    raw = list(_raw_features())
    counties = {str(f["properties"]["adcode"]) for _, f in raw if f["properties"].get("level") == "district"}
    assert len(counties) == 2843
    assert counties <= leaves.keys()
    # A city is county-less when no file lists units under it: no <adcode>_full.json, or one holding only itself.
    files = {path.name: path for path in DATA.glob("*_full.json")}
    cities = {str(f["properties"]["adcode"]) for name, f in raw if f["properties"].get("level") == "city"}
    countyless = set()
    for city in cities:
        own = files.get(f"{city}_full.json")
        members = [] if own is None else json.loads(own.read_text(encoding="utf-8-sig"))["features"]
        if all(str(m["properties"]["adcode"]) == city for m in members):
            countyless.add(city)
    assert {"441900", "442000", "460400", "620200", "429004", "419001", "659001"} <= countyless
    assert countyless <= leaves.keys()
    assert leaves.keys() == counties | countyless | {"710000"}  # Taiwan has no lower level in this atlas
    assert len(leaves) == 2843 + len(countyless) + 1
    assert {u.level for u in country.units.values()} == {"province", "city", "district"}


@pytest.mark.parametrize(
    ("adcode", "names"),
    [
        ("441881", ("广东省", "清远市", "英德市")),
        ("441900", ("广东省", "东莞市")),
        ("110101", ("北京市", "东城区")),
        ("429004", ("湖北省", "仙桃市")),
        ("810005", ("香港特别行政区", "油尖旺区")),
    ],
)
def test_paths_follow_the_hierarchy(country: JurisdictionIndex, adcode: str, names: tuple[str, ...]) -> None:
    assert tuple(u.name for u in country.path(adcode)) == names


@pytest.mark.parametrize(
    ("lon", "lat", "datum", "adcode"),
    [
        (116.397026, 39.918058, "gcj02", "110101"),  # 故宫, 东城区
        (114.0553, 22.5211, "gcj02", "440304"),  # 福田区
        (113.4152, 24.1862, "gcj02", "441881"),  # 英德市
        (113.7518, 23.0205, "gcj02", "441900"),  # 东莞市 (no county level)
        (121.5654, 25.0330, "wgs84", "710000"),  # 台北
        (125.0, 30.0, "gcj02", None),  # East China Sea
    ],
)
def test_known_places(country: JurisdictionIndex, lon: float, lat: float, datum: str, adcode: str | None) -> None:
    assert country.lookup(lon, lat, datum).adcode == adcode


@dataclass
class Sample:
    lon: np.ndarray
    lat: np.ndarray
    kind: np.ndarray  # "inside", "bbox", "wide", "vertex", "near"


@pytest.fixture(scope="module")
def sample(layer: list[JurisdictionFeature]) -> Sample:
    """GCJ-02 points: 10,000 uniform over China's provinces, 1,000 in province bboxes, 1,000 over a wide box
    (mostly outside), 500 exact boundary vertices, 1,000 within ±60 m of a county boundary."""
    rng = np.random.default_rng(20240601)
    provinces = np.array([f.geometry for f in layer if f.level == "province"], dtype=object)
    shapely.prepare(provinces)
    bounds = shapely.bounds(provinces)
    lon, lat = rng.uniform(73.0, 135.5, 60_000), rng.uniform(3.0, 54.0, 60_000)
    inside = np.zeros(len(lon), dtype=bool)
    for province in provinces:
        inside |= shapely.intersects_xy(province, lon, lat)
    inside_lon, inside_lat = lon[inside][:10_000], lat[inside][:10_000]
    assert len(inside_lon) == 10_000
    pick = rng.integers(0, len(bounds), 1000)
    bbox_lon = rng.uniform(bounds[pick, 0], bounds[pick, 2])
    bbox_lat = rng.uniform(bounds[pick, 1], bounds[pick, 3])
    wide_lon, wide_lat = rng.uniform(60.0, 150.0, 1000), rng.uniform(-5.0, 60.0, 1000)
    leaves = [f.geometry for f in layer if f.level == "district"]
    vertices = np.vstack([shapely.get_coordinates(leaves[i])[:1_000] for i in rng.integers(0, len(leaves), 500)])
    vertex = vertices[rng.integers(0, len(vertices), 500)]
    near_lon, near_lat = _near_border_points(leaves, rng, 1000)
    kinds = ["inside"] * 10_000 + ["bbox"] * 1000 + ["wide"] * 1000 + ["vertex"] * 500 + ["near"] * 1000
    return Sample(
        np.r_[inside_lon, bbox_lon, wide_lon, vertex[:, 0], near_lon],
        np.r_[inside_lat, bbox_lat, wide_lat, vertex[:, 1], near_lat],
        np.array(kinds),
    )


def _near_border_points(leaves: list[MultiPolygon], rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Points on random boundary segments, pushed sideways by -60..60 m (local metres)."""
    lons, lats = [], []
    for i in rng.integers(0, len(leaves), n):
        lines = shapely.get_parts(shapely.boundary(leaves[i]))
        ring = shapely.get_coordinates(lines[rng.integers(0, len(lines))])
        k = int(rng.integers(0, len(ring) - 1))
        (x1, y1), (x2, y2) = ring[k], ring[k + 1]
        t = rng.uniform()
        x, y = x1 + t * (x2 - x1), y1 + t * (y2 - y1)
        kx = M_PER_DEG * math.cos(math.radians(y))
        ex, ey = (x2 - x1) * kx, (y2 - y1) * M_PER_DEG
        length = math.hypot(ex, ey) or 1.0
        push = rng.uniform(-60.0, 60.0)
        lons.append(x - ey / length * push / kx)
        lats.append(y + ex / length * push / M_PER_DEG)
    return np.array(lons), np.array(lats)


class BruteForce:
    """Expected answers from plain shapely ``covers`` (intersects_xy) over every polygon; bboxes only skip
    polygons that cannot contain a point. Rule: the covering leaf with the smallest area (then adcode); if none,
    the deepest covering city/province (then smallest area)."""

    def __init__(self, country: JurisdictionIndex, layer: list[JurisdictionFeature]) -> None:
        leaf_codes = {u.adcode for u in country.leaf_units}
        self.leaves = [f for f in layer if f.adcode in leaf_codes]
        self.parents = [f for f in layer if f.adcode not in leaf_codes]
        self.depth = {f.adcode: len(country.path(f.adcode)) for f in layer}

    def covering(self, features: list[JurisdictionFeature], lon: np.ndarray, lat: np.ndarray) -> list[list[int]]:
        hits: list[list[int]] = [[] for _ in range(len(lon))]
        for index, feature in enumerate(features):
            minx, miny, maxx, maxy = feature.geometry.bounds
            candidates = np.flatnonzero((lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy))
            if not len(candidates):
                continue
            inside = shapely.intersects_xy(feature.geometry, lon[candidates], lat[candidates])
            for point in candidates[inside]:
                hits[point].append(index)
        return hits

    def expected(self, lon: np.ndarray, lat: np.ndarray) -> list[tuple[str | None, int]]:
        """(adcode, number of covering leaves) per point."""
        leaf_hits = self.covering(self.leaves, lon, lat)
        parent_hits = self.covering(self.parents, lon, lat)
        answers: list[tuple[str | None, int]] = []
        for leaves, parents in zip(leaf_hits, parent_hits, strict=True):
            if leaves:
                best = min(leaves, key=lambda i: (self.leaves[i].geometry.area, self.leaves[i].adcode))
                answers.append((self.leaves[best].adcode, len(leaves)))
            elif parents:
                f = min((self.parents[i] for i in parents), key=lambda f: (-self.depth[f.adcode], f.geometry.area))
                answers.append((f.adcode, 0))
            else:
                answers.append((None, 0))
        return answers


@pytest.fixture(scope="module")
def expected(country: JurisdictionIndex, layer: list[JurisdictionFeature], sample: Sample) -> list:
    return BruteForce(country, layer).expected(sample.lon, sample.lat)


@pytest.fixture(scope="module")
def gcj_results(country: JurisdictionIndex, sample: Sample) -> list[LookupResult]:
    return [country.lookup(x, y, "gcj02") for x, y in zip(sample.lon.tolist(), sample.lat.tolist(), strict=True)]


def test_gcj02_lookups_agree_with_brute_force(sample: Sample, expected: list, gcj_results: list) -> None:
    mismatches = [
        (i, sample.kind[i], exp, got.adcode)
        for i, ((exp, _), got) in enumerate(zip(expected, gcj_results, strict=True))
        if exp != got.adcode
    ]
    assert mismatches == []
    inside = [r for r, kind in zip(gcj_results, sample.kind, strict=True) if kind == "inside"]
    # Province outlines are generalised differently from county outlines, so a few points inside a province
    # polygon are in no county: they get the province/city (INSIDE_PARENT_ONLY), also checked above.
    assert sum(r.reason is LookupReason.INSIDE for r in inside) > 9_900
    assert sum(r.unit is None for r in gcj_results) > 800  # the wide box is mostly outside


def test_border_points_are_flagged(sample: Sample, expected: list, gcj_results: list) -> None:
    for i, ((_, covering), result) in enumerate(zip(expected, gcj_results, strict=True)):
        if covering > 1:
            assert result.ambiguous and len(result.nearby) >= covering - 1
        if sample.kind[i] == "vertex":
            assert result.ambiguous and result.distance_to_border_m == 0.0


def test_distance_to_border_is_exact_in_metres(
    country: JurisdictionIndex, layer: list[JurisdictionFeature], sample: Sample, gcj_results: list
) -> None:
    """Independent check on the near-border points: every leaf boundary projected to local metres around the
    point with shapely, then shapely's distance."""
    leaves = {u.adcode for u in country.leaf_units}
    boundaries = np.array([f.geometry.boundary for f in layer if f.adcode in leaves], dtype=object)
    codes = [f.adcode for f in layer if f.adcode in leaves]
    tree = shapely.STRtree(boundaries)
    flagged = 0
    for i in np.flatnonzero(sample.kind == "near"):
        x, y = float(sample.lon[i]), float(sample.lat[i])
        kx = M_PER_DEG * math.cos(math.radians(y))
        near = tree.query(box(x - 0.01, y - 0.01, x + 0.01, y + 0.01))
        distances = {}
        for j in near:
            local = shapely.transform(
                shapely.clip_by_rect(boundaries[j], x - 0.01, y - 0.01, x + 0.01, y + 0.01),
                lambda c, x=x, y=y, kx=kx: (c - [x, y]) * [kx, M_PER_DEG],
            )
            if not local.is_empty:
                distances[codes[j]] = shapely.distance(local, shapely.Point(0.0, 0.0))
        within = {code: d for code, d in distances.items() if d <= TOLERANCE}
        result = gcj_results[i]
        if not within:
            assert result.distance_to_border_m is None
            continue
        flagged += 1
        assert result.ambiguous
        assert result.distance_to_border_m == pytest.approx(min(within.values()), abs=1e-6)
        others = {u.adcode for u in result.nearby} | {result.adcode}
        assert set(within) <= others
    assert flagged > 300  # half the pushes are within 30 m


def test_wgs84_lookups_agree_with_brute_force_on_the_gcj_points(
    country: JurisdictionIndex, sample: Sample, expected: list, gcj_results: list
) -> None:
    """GCJ points → WGS-84 with the exact inverse → lookup(wgs84), which converts forward again. The round trip
    moves a point by well under a micrometre, so only a point closer than that to a border could flip."""
    keep = sample.kind != "vertex"  # exactly-on-border points cannot survive any float round trip
    lon, lat = sample.lon[keep], sample.lat[keep]
    wlon, wlat = gcj02_to_wgs84_np(lon, lat)
    drift = []
    mismatches = []
    for k, i in enumerate(np.flatnonzero(keep)):
        x, y = float(wlon[k]), float(wlat[k])
        back = wgs84_to_gcj02(x, y)
        drift.append(
            math.hypot((back[0] - lon[k]) * M_PER_DEG * math.cos(math.radians(lat[k])), (back[1] - lat[k]) * M_PER_DEG)
        )
        got = country.lookup(x, y, Datum.WGS84)
        if got.adcode != expected[i][0]:
            mismatches.append((i, gcj_results[i].distance_to_border_m))
    max_drift = max(drift)
    assert max_drift < 1e-6
    # Quantified: a mismatch is only allowed for a point within the round-trip drift of a border.
    assert all(d is not None and d <= max_drift for _, d in mismatches)
    assert len(mismatches) == 0


def test_lookup_many_equals_lookup_on_the_country(
    country: JurisdictionIndex, sample: Sample, gcj_results: list
) -> None:
    assert country.lookup_many(sample.lon, sample.lat, "gcj02") == gcj_results
    wlon, wlat = gcj02_to_wgs84_np(sample.lon[:3000], sample.lat[:3000])
    one_by_one = [country.lookup(x, y, "wgs84") for x, y in zip(wlon.tolist(), wlat.tolist(), strict=True)]
    assert country.lookup_many(wlon, wlat, "wgs84") == one_by_one
