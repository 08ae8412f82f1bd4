"""WGS-84 ↔ GCJ-02 conversion.

GCJ-02 is the obfuscated datum of Chinese web maps; it is WGS-84 plus a smooth offset of a few hundred metres
computed by a published formula (the Krasovsky-ellipsoid series below, as in eviltransform and its many ports).
The forward direction is that formula. There is no closed-form inverse, so ``gcj02_to_wgs84`` iterates the
forward formula (a fixed-point / Newton-like step, the offset changes by < 1e-4 per metre moved) until the
residual is below 1e-9 degrees (≈ 0.1 mm); it converges in 3–4 steps.

Written here rather than taken from PyPI: coordTransform and coord-convert ship only an approximate inverse
(1e-6° threshold or a single step, metre level), eviltransform 0.1.1 uses the WGS-84 semi-major axis instead
of Krasovsky's and stops at 1e-6°, prcoords stops at 1e-5°; none is maintained or offers numpy arrays.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
import numpy.typing as npt

__all__ = [
    "Datum",
    "gcj02_to_wgs84",
    "gcj02_to_wgs84_np",
    "in_china_bbox",
    "to_datum",
    "to_datum_np",
    "wgs84_to_gcj02",
    "wgs84_to_gcj02_np",
]


class Datum(StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"


FloatArray = npt.NDArray[np.float64]

# Krasovsky 1940 ellipsoid, as used by the published GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
_PI = math.pi
_DEG = 180.0 / math.pi

# The rough bounding box in which the offset applies (same box as eviltransform).
_MIN_LON, _MAX_LON = 72.004, 137.8347
_MIN_LAT, _MAX_LAT = 0.8293, 55.8271

_INVERSE_TOLERANCE_DEG = 1e-9
_INVERSE_MAX_ITERATIONS = 30


def in_china_bbox(lon: float, lat: float) -> bool:
    return _MIN_LON <= lon <= _MAX_LON and _MIN_LAT <= lat <= _MAX_LAT


def _offset(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 offset (dlon, dlat) in degrees at a WGS-84 point, without the bounding-box test."""
    x = lon - 105.0
    y = lat - 35.0
    x_pi = x * _PI
    y_pi = y * _PI
    common = (20.0 * math.sin(6.0 * x_pi) + 20.0 * math.sin(2.0 * x_pi)) * 2.0 / 3.0
    sqrt_abs_x = math.sqrt(abs(x))
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x + common
    dlat += (20.0 * math.sin(y_pi) + 40.0 * math.sin(y_pi / 3.0)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y_pi / 12.0) + 320.0 * math.sin(y_pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x + common
    dlon += (20.0 * math.sin(x_pi) + 40.0 * math.sin(x_pi / 3.0)) * 2.0 / 3.0
    dlon += (150.0 * math.sin(x_pi / 12.0) + 300.0 * math.sin(x_pi / 30.0)) * 2.0 / 3.0
    rad_lat = lat / _DEG
    magic = 1.0 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * _PI)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * _PI)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if not in_china_bbox(lon, lat):
        return lon, lat
    dlon, dlat = _offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Exact inverse of :func:`wgs84_to_gcj02` (residual < 1e-9°) inside the box, identity outside.

    The box test is made on the GCJ point and the iteration uses the unboxed offset, so the iteration is smooth
    even within a few hundred metres of the box edge (which is far from any Chinese territory).
    """
    if not in_china_bbox(lon, lat):
        return lon, lat
    dlon, dlat = _offset(lon, lat)
    w_lon, w_lat = lon - dlon, lat - dlat
    for _ in range(_INVERSE_MAX_ITERATIONS):
        dlon, dlat = _offset(w_lon, w_lat)
        err_lon = w_lon + dlon - lon
        err_lat = w_lat + dlat - lat
        w_lon -= err_lon
        w_lat -= err_lat
        if abs(err_lon) < _INVERSE_TOLERANCE_DEG and abs(err_lat) < _INVERSE_TOLERANCE_DEG:
            break
    return w_lon, w_lat


def to_datum(lon: float, lat: float, from_datum: Datum | str, to_datum: Datum | str) -> tuple[float, float]:
    source, target = Datum(from_datum), Datum(to_datum)
    if source is target:
        return lon, lat
    if source is Datum.WGS84:
        return wgs84_to_gcj02(lon, lat)
    return gcj02_to_wgs84(lon, lat)


# ---- numpy variants: same formulas, element-wise ------------------------------------------------------------


def _in_china_bbox_np(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    return (lon >= _MIN_LON) & (lon <= _MAX_LON) & (lat >= _MIN_LAT) & (lat <= _MAX_LAT)


def _offset_np(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    x = lon - 105.0
    y = lat - 35.0
    x_pi = x * _PI
    y_pi = y * _PI
    common = (20.0 * np.sin(6.0 * x_pi) + 20.0 * np.sin(2.0 * x_pi)) * 2.0 / 3.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x + common
    dlat += (20.0 * np.sin(y_pi) + 40.0 * np.sin(y_pi / 3.0)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y_pi / 12.0) + 320.0 * np.sin(y_pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x + common
    dlon += (20.0 * np.sin(x_pi) + 40.0 * np.sin(x_pi / 3.0)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x_pi / 12.0) + 300.0 * np.sin(x_pi / 30.0)) * 2.0 / 3.0
    rad_lat = lat / _DEG
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * _PI)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * _PI)
    return dlon, dlat


def _as_arrays(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon = np.asarray(lons, dtype=np.float64)
    lat = np.asarray(lats, dtype=np.float64)
    return np.broadcast_arrays(lon, lat)  # type: ignore[return-value]


def wgs84_to_gcj02_np(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = _as_arrays(lons, lats)
    out_lon, out_lat = lon.copy(), lat.copy()
    inside = _in_china_bbox_np(lon, lat)
    dlon, dlat = _offset_np(lon[inside], lat[inside])
    out_lon[inside] += dlon
    out_lat[inside] += dlat
    return out_lon, out_lat


def gcj02_to_wgs84_np(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = _as_arrays(lons, lats)
    out_lon, out_lat = lon.copy(), lat.copy()
    inside = _in_china_bbox_np(lon, lat)
    g_lon, g_lat = lon[inside], lat[inside]
    dlon, dlat = _offset_np(g_lon, g_lat)
    w_lon, w_lat = g_lon - dlon, g_lat - dlat
    for _ in range(_INVERSE_MAX_ITERATIONS):
        dlon, dlat = _offset_np(w_lon, w_lat)
        err_lon = w_lon + dlon - g_lon
        err_lat = w_lat + dlat - g_lat
        w_lon = w_lon - err_lon
        w_lat = w_lat - err_lat
        worst = max(float(np.max(np.abs(err_lon), initial=0.0)), float(np.max(np.abs(err_lat), initial=0.0)))
        if worst < _INVERSE_TOLERANCE_DEG:
            break
    out_lon[inside] = w_lon
    out_lat[inside] = w_lat
    return out_lon, out_lat


def to_datum_np(
    lons: npt.ArrayLike, lats: npt.ArrayLike, from_datum: Datum | str, to_datum: Datum | str
) -> tuple[FloatArray, FloatArray]:
    source, target = Datum(from_datum), Datum(to_datum)
    if source is target:
        return _as_arrays(lons, lats)
    if source is Datum.WGS84:
        return wgs84_to_gcj02_np(lons, lats)
    return gcj02_to_wgs84_np(lons, lats)
