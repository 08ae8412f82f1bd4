from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from app.geo.datum import (
    Datum,
    gcj02_to_wgs84,
    gcj02_to_wgs84_np,
    in_china_bbox,
    to_datum,
    to_datum_np,
    wgs84_to_gcj02,
    wgs84_to_gcj02_np,
)
from app.geo.geojson import load_geojson

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "geo" / "china-counties"
M_PER_DEG = 6_371_008.8 * math.pi / 180.0

# Published test vectors of the reference implementation (googollee/eviltransform, go/transform_test.go):
# (wgs lat, wgs lon) -> (gcj lat, gcj lon).
EVILTRANSFORM_VECTORS = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
]

# Points inside the offset box but kept ≥ 0.05° from its edges, where the forward map is continuous.
china_lon = st.floats(min_value=73.0, max_value=135.0, allow_nan=False)
china_lat = st.floats(min_value=3.0, max_value=53.6, allow_nan=False)


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return math.hypot((lon2 - lon1) * M_PER_DEG * math.cos(math.radians(lat1)), (lat2 - lat1) * M_PER_DEG)


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM_VECTORS)
def test_forward_matches_published_vectors(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    lon, lat = wgs84_to_gcj02(wgs[1], wgs[0])
    assert lon == pytest.approx(gcj[1], abs=1e-9)
    assert lat == pytest.approx(gcj[0], abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM_VECTORS)
def test_inverse_recovers_published_vectors(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    lon, lat = gcj02_to_wgs84(gcj[1], gcj[0])
    assert metres(lon, lat, wgs[1], wgs[0]) < 1e-4
    assert abs(lon - wgs[1]) < 1e-9 and abs(lat - wgs[0]) < 1e-9


@settings(max_examples=500, deadline=None)
@given(china_lon, china_lat)
def test_round_trip_error_is_far_below_a_centimetre(lon: float, lat: float) -> None:
    gcj = wgs84_to_gcj02(lon, lat)
    back = gcj02_to_wgs84(*gcj)
    assert metres(lon, lat, *back) < 0.01
    # And the other way round: a GCJ point maps back onto itself.
    wgs = gcj02_to_wgs84(lon, lat)
    assert metres(lon, lat, *wgs84_to_gcj02(*wgs)) < 0.01


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=100.0, max_value=135.0), st.floats(min_value=18.0, max_value=50.0))
def test_offset_is_50_to_700_m_over_eastern_china(lon: float, lat: float) -> None:
    assert 50.0 <= metres(lon, lat, *wgs84_to_gcj02(lon, lat)) <= 700.0


def test_offset_over_chinese_territory() -> None:
    """Inside the province polygons the offset is 50–700 m except a strip of Gansu/Qinghai where the formula's
    offset passes close to zero (down to ~17 m); measured, not assumed."""
    provinces = np.array([f.geometry for f in load_geojson(DATA / "100000_full.json", skip=_not_a_unit)])
    shapely.prepare(provinces)
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(73.0, 135.0, 200_000), rng.uniform(3.0, 54.0, 200_000)
    inside = np.zeros(len(lon), dtype=bool)
    for province in provinces:
        inside |= shapely.intersects_xy(province, lon, lat)
    lon, lat = lon[inside], lat[inside]
    glon, glat = wgs84_to_gcj02_np(lon, lat)
    offset = np.hypot((glon - lon) * M_PER_DEG * np.cos(np.radians(lat)), (glat - lat) * M_PER_DEG)
    assert len(offset) > 40_000
    assert offset.min() > 10.0 and offset.max() < 710.0
    assert np.mean((offset >= 50.0) & (offset <= 700.0)) > 0.99


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(0.0, 0.0), (-74.0, 40.7), (139.69, 35.69), (151.2, -33.9), (72.0, 30.0), (100.0, 0.5), (100.0, 56.0)],
)
def test_identity_outside_the_offset_box(lon: float, lat: float) -> None:
    assert not in_china_bbox(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_inverse_converges_next_to_the_box_edge() -> None:
    # The iteration uses the smooth offset, so it terminates with a finite answer even where the forward map
    # jumps (at the box edge, far from any Chinese territory).
    lon, lat = gcj02_to_wgs84(72.0045, 30.0)
    assert math.isfinite(lon) and math.isfinite(lat)
    assert metres(72.0045, 30.0, lon, lat) < 1000.0


def test_to_datum_dispatch() -> None:
    point = (113.2644, 23.1291)
    assert to_datum(*point, Datum.WGS84, Datum.WGS84) == point
    assert to_datum(*point, "gcj02", "gcj02") == point
    assert to_datum(*point, "wgs84", "gcj02") == wgs84_to_gcj02(*point)
    assert to_datum(*point, Datum.GCJ02, Datum.WGS84) == gcj02_to_wgs84(*point)
    with pytest.raises(ValueError):
        to_datum(*point, "bd09", "wgs84")


def test_datum_is_a_str_enum() -> None:
    assert Datum("wgs84") is Datum.WGS84
    assert Datum.GCJ02 == "gcj02"


def test_numpy_variants_match_scalar() -> None:
    rng = np.random.default_rng(3)
    lon = np.r_[rng.uniform(73.0, 135.0, 500), [0.0, -120.0, 150.0]]
    lat = np.r_[rng.uniform(3.0, 53.6, 500), [0.0, 45.0, -30.0]]
    forward = wgs84_to_gcj02_np(lon, lat)
    inverse = gcj02_to_wgs84_np(lon, lat)
    for i in range(len(lon)):
        assert np.allclose(forward[0][i], wgs84_to_gcj02(lon[i], lat[i])[0], rtol=0, atol=1e-11)
        assert np.allclose(forward[1][i], wgs84_to_gcj02(lon[i], lat[i])[1], rtol=0, atol=1e-11)
        assert np.allclose(inverse[0][i], gcj02_to_wgs84(lon[i], lat[i])[0], rtol=0, atol=1e-11)
        assert np.allclose(inverse[1][i], gcj02_to_wgs84(lon[i], lat[i])[1], rtol=0, atol=1e-11)
    same = to_datum_np(lon, lat, "gcj02", Datum.GCJ02)
    assert np.array_equal(same[0], lon) and np.array_equal(same[1], lat)
    assert np.array_equal(to_datum_np(lon, lat, "wgs84", "gcj02")[0], forward[0])


def test_numpy_round_trip_over_china() -> None:
    rng = np.random.default_rng(11)
    lon, lat = rng.uniform(73.0, 135.0, 100_000), rng.uniform(3.0, 53.6, 100_000)
    back_lon, back_lat = gcj02_to_wgs84_np(*wgs84_to_gcj02_np(lon, lat))
    error = np.hypot((back_lon - lon) * M_PER_DEG * np.cos(np.radians(lat)), (back_lat - lat) * M_PER_DEG)
    assert error.max() < 0.01


def _not_a_unit(properties: Mapping[str, Any]) -> bool:
    return not str(properties.get("adcode", "")).isdigit()  # the decorative dash-line feature
