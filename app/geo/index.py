"""Point → jurisdiction lookup over a layer of administrative polygons.

Strategy (measured on the 2,878 smallest units of China, ~1 M boundary vertices):

* A regular grid of 1/32° cells (≈3 km) is laid over the smallest units ("leaves"). At build time every leaf
  boundary segment marks the cells it passes within ``margin`` of (``margin`` ≥ the border tolerance in
  degrees at the layer's highest latitude); a cell no boundary comes near is wholly inside one leaf or in none,
  which one centre test per run of such cells along a row decides. About 85 % of points inside China land in
  such a "deep" cell: one array read and a precomputed answer.
* The other ("mixed") cells keep the few leaves touching them; the point is tested against those leaves'
  prepared polygons (``intersects_xy``, i.e. covers: a point on a shared border belongs to both).
* Border proximity is only computed where it can matter: each mixed cell is cut into 4×4 sub-cells (1/128°)
  and each sub-cell lists the boundary segments passing within ``margin`` of it (usually none, else a
  handful). The exact point-to-segment distance in metres (local equirectangular scale at the point's
  latitude) is computed over that short list only.
* A point in no leaf falls back to the non-leaf units (cities, provinces) through a coarser grid of the same
  kind: atlas province outlines are generalised differently from their counties, so a point can lie in a
  province polygon but in none of its counties; it then answers the smallest such unit, flagged ambiguous.

Why not an STRtree of the polygons: a tree query plus a point geometry costs ~10 µs per lookup here before
any containment test, and border distances need a second query; the grid answers most points with no
GEOS call at all and builds the whole country in 2–4 s.

The polygons' datum is the layer's (GCJ-02 for the atlas data); points are converted into it first.
Prepared geometries and the grids are read-only after construction, so one index can serve many threads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely import lib as _shapely_lib

from app.core.errors import InvalidInput
from app.geo.datum import Datum, gcj02_to_wgs84, to_datum_np, wgs84_to_gcj02
from app.geo.geojson import GeoJSONImportError, JurisdictionFeature, load_geojson

__all__ = [
    "InvalidCoordinates",
    "JurisdictionIndex",
    "JurisdictionUnit",
    "LookupReason",
    "LookupResult",
    "load_county_layer",
]

# Metres per degree of latitude on the mean-radius sphere; a degree of longitude is this times cos(latitude).
_M_PER_DEG = 6_371_008.8 * math.pi / 180.0
_LEAF_CELL_BITS = 5  # 2**5 cells per degree: 1/32°
_SUB_BITS = 2  # 2**2 × 2**2 border sub-cells (1/128°) per cell, one bit each in a mask
_PARENT_CELL_BITS = 3  # the fallback grid for non-leaf units is coarser: it is rarely consulted
_MIN_MARGIN_DEG = 1e-7  # keeps float rounding in cell arithmetic harmless even with a zero tolerance
_EMPTY = -1

# shapely's public wrappers add 1–3 µs of argument checking per call; the ufuncs underneath are the same
# functions, and a lookup makes one or two such calls.
_intersects_xy = _shapely_lib.intersects_xy


class InvalidCoordinates(InvalidInput):
    code = "invalid_coordinates"
    message = "位置坐标无效，请重新定位"


class LookupReason(StrEnum):
    INSIDE = "inside"
    # Inside a city/province polygon but in none of its smallest units: a gap between generalised outlines.
    INSIDE_PARENT_ONLY = "inside_parent_only"
    OUTSIDE = "outside_all_jurisdictions"


@dataclass(frozen=True, slots=True)
class JurisdictionUnit:
    adcode: str
    name: str
    level: str
    parent_adcode: str | None


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The smallest unit containing the point, the path from the top ancestor down to it, and how sure we are.

    ``ambiguous`` is set when the point is within the border tolerance of a unit boundary (its own or a
    neighbour's), lies in several overlapping units, or only in a parent unit; ``nearby`` then lists the other
    smallest units that contain the point or whose boundary is within the tolerance, nearest first, so a
    dispatcher can re-assign. ``distance_to_border_m`` is the distance to the nearest unit boundary, given only
    when it is within the tolerance.
    """

    unit: JurisdictionUnit | None
    path: tuple[JurisdictionUnit, ...]
    reason: LookupReason
    ambiguous: bool = False
    distance_to_border_m: float | None = None
    nearby: tuple[JurisdictionUnit, ...] = ()

    @property
    def ancestors(self) -> tuple[JurisdictionUnit, ...]:
        return self.path[:-1]

    @property
    def adcode(self) -> str | None:
        return self.unit.adcode if self.unit else None

    @property
    def adcode_path(self) -> tuple[str, ...]:
        return tuple(unit.adcode for unit in self.path)


_OUTSIDE = LookupResult(unit=None, path=(), reason=LookupReason.OUTSIDE)


# ---- the index -----------------------------------------------------------------------------------------------


class JurisdictionIndex:
    """Find the smallest administrative unit containing a point; build once, query from any thread."""

    def __init__(
        self,
        features: Iterable[JurisdictionFeature],
        *,
        datum: Datum | str = Datum.GCJ02,
        border_tolerance_m: float = 30.0,
    ) -> None:
        if not 0.0 <= border_tolerance_m <= 5_000.0:
            raise ValueError("border_tolerance_m must be between 0 and 5000 metres")
        self.datum = Datum(datum)
        self.border_tolerance_m = float(border_tolerance_m)
        self._hierarchy = _Hierarchy(list(features))
        leaves, parents = self._hierarchy.leaves, self._hierarchy.parents
        max_lat = _max_abs_lat([f.geometry for f in self._hierarchy.features])
        self._margin = max(_degrees_for(self.border_tolerance_m, max_lat) * 1.01, _MIN_MARGIN_DEG)
        self._leaf_grid = _CellGrid(
            [f.geometry for f in leaves], _LEAF_CELL_BITS, _SUB_BITS, self._margin, _area_rank(leaves)
        )
        self._parent_grid = _CellGrid(
            [f.geometry for f in parents], _PARENT_CELL_BITS, 0, _MIN_MARGIN_DEG, self._parent_rank(parents)
        )
        self._leaf_units = [self._hierarchy.unit(f.adcode) for f in leaves]
        self._parent_units = [self._hierarchy.unit(f.adcode) for f in parents]
        self._inside = [self._plain_result(unit, LookupReason.INSIDE) for unit in self._leaf_units]
        self._to_layer = self._converters()

    # -- public API --------------------------------------------------------------------------------------------

    @property
    def units(self) -> dict[str, JurisdictionUnit]:
        return dict(self._hierarchy.units)

    @property
    def leaf_units(self) -> list[JurisdictionUnit]:
        return list(self._leaf_units)

    def unit(self, adcode: str) -> JurisdictionUnit:
        return self._hierarchy.unit(adcode)

    def path(self, adcode: str) -> tuple[JurisdictionUnit, ...]:
        return self._hierarchy.path(adcode)

    def stats(self) -> dict[str, int]:
        """Sizes of the leaf grid, for benchmarks and logs."""
        grid = self._leaf_grid
        return {
            "leaf_units": len(self._leaf_units),
            "parent_units": len(self._parent_units),
            "deep_cells": int((grid._cells >= 0).sum()),
            "mixed_cells": grid.mixed_count,
            "distinct_unit_sets": len(grid.unit_sets),
            "boundary_segments": grid.segment_count,
            "sub_cell_segment_entries": len(grid._sub_segments),
        }

    def lookup(self, lon: float, lat: float, datum: Datum | str) -> LookupResult:
        convert = self._to_layer.get(datum)
        if convert is None:
            raise InvalidCoordinates(f"不支持的坐标系：{datum}", field="datum")
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):  # also refuses NaN
            raise InvalidCoordinates(field="location")
        x, y = convert(lon, lat)
        return self._lookup_layer(x, y)

    def lookup_many(self, lons: npt.ArrayLike, lats: npt.ArrayLike, datum: Datum | str) -> list[LookupResult]:
        """Vectorised lookup: conversion and the cell reads run in numpy, only mixed cells go point by point."""
        if datum not in self._to_layer:
            raise InvalidCoordinates(f"不支持的坐标系：{datum}", field="datum")
        lon = np.asarray(lons, dtype=np.float64).ravel()
        lat = np.asarray(lats, dtype=np.float64).ravel()
        if lon.shape != lat.shape:
            raise ValueError("lons and lats must have the same length")
        valid = (lon >= -180.0) & (lon <= 180.0) & (lat >= -90.0) & (lat <= 90.0)
        if not valid.all():
            raise InvalidCoordinates(field="location", index=int(np.flatnonzero(~valid)[0]))
        x, y = to_datum_np(lon, lat, datum, self.datum)
        values = self._leaf_grid.values_at(x, y)
        inside = self._inside
        results: list[LookupResult] = []
        for value, xi, yi in zip(values.tolist(), x.tolist(), y.tolist(), strict=True):
            results.append(inside[value] if value >= 0 else self._lookup_layer(xi, yi))
        return results

    # -- lookup internals --------------------------------------------------------------------------------------

    def _lookup_layer(self, x: float, y: float) -> LookupResult:
        grid = self._leaf_grid
        where = grid.locate(x, y)
        if where is None:
            return self._outside_leaves(x, y, [])
        value, sub = where
        if value >= 0:
            return self._inside[value]
        if value == _EMPTY:
            return self._outside_leaves(x, y, [])
        mixed = -2 - value
        units, geoms = grid.members(mixed)
        hits = [units[i] for i, hit in enumerate(_intersects_xy(geoms, x, y).tolist()) if hit]
        near = grid.near_units(x, y, mixed, sub, self.border_tolerance_m)
        if not hits:
            return self._outside_leaves(x, y, near)
        if len(hits) == 1 and not near:
            return self._inside[hits[0]]
        return self._ambiguous_result(hits, near)

    def _ambiguous_result(self, hits: list[int], near: list[tuple[float, int]]) -> LookupResult:
        rank = self._leaf_grid.rank
        chosen = min(hits, key=rank.__getitem__)
        others = _nearby_order(hits, near, exclude=chosen)
        unit = self._leaf_units[chosen]
        return LookupResult(
            unit=unit,
            path=self._hierarchy.path(unit.adcode),
            reason=LookupReason.INSIDE,
            ambiguous=True,
            distance_to_border_m=near[0][0] if near else None,
            nearby=tuple(self._leaf_units[i] for i in others),
        )

    def _outside_leaves(self, x: float, y: float, near: list[tuple[float, int]]) -> LookupResult:
        parent = self._smallest_parent(x, y)
        if parent is None and not near:
            return _OUTSIDE
        nearby = tuple(self._leaf_units[i] for _, i in near)
        distance = near[0][0] if near else None
        if parent is None:
            return replace(_OUTSIDE, ambiguous=True, distance_to_border_m=distance, nearby=nearby)
        unit = self._parent_units[parent]
        return LookupResult(
            unit=unit,
            path=self._hierarchy.path(unit.adcode),
            reason=LookupReason.INSIDE_PARENT_ONLY,
            ambiguous=True,
            distance_to_border_m=distance,
            nearby=nearby,
        )

    def _smallest_parent(self, x: float, y: float) -> int | None:
        grid = self._parent_grid
        where = grid.locate(x, y)
        if where is None or where[0] == _EMPTY:
            return None
        value = where[0]
        if value >= 0:
            return value
        units, geoms = grid.members(-2 - value)
        hits = [units[i] for i, hit in enumerate(_intersects_xy(geoms, x, y).tolist()) if hit]
        return min(hits, key=grid.rank.__getitem__) if hits else None

    # -- construction helpers ----------------------------------------------------------------------------------

    def _plain_result(self, unit: JurisdictionUnit, reason: LookupReason) -> LookupResult:
        return LookupResult(unit=unit, path=self._hierarchy.path(unit.adcode), reason=reason)

    def _parent_rank(self, parents: Sequence[JurisdictionFeature]) -> list[int]:
        # Deepest first (a city before its province), then smallest area.
        depth = [len(self._hierarchy.path(f.adcode)) for f in parents]
        order = sorted(range(len(parents)), key=lambda i: (-depth[i], parents[i].geometry.area, parents[i].adcode))
        return _positions(order)

    def _converters(self) -> dict[str, Any]:
        def identity(lon: float, lat: float) -> tuple[float, float]:
            return lon, lat

        if self.datum is Datum.GCJ02:
            return {Datum.GCJ02: identity, Datum.WGS84: wgs84_to_gcj02}
        return {Datum.WGS84: identity, Datum.GCJ02: gcj02_to_wgs84}


def _nearby_order(hits: list[int], near: list[tuple[float, int]], exclude: int) -> list[int]:
    ordered: list[int] = []
    for unit in [*hits, *(i for _, i in near)]:
        if unit != exclude and unit not in ordered:
            ordered.append(unit)
    distance = {i: d for d, i in near}
    return sorted(ordered, key=lambda i: distance.get(i, 0.0))


# ---- hierarchy -----------------------------------------------------------------------------------------------


class _Hierarchy:
    """Units by adcode, parent links, paths; leaves are the units nobody names as parent."""

    def __init__(self, features: list[JurisdictionFeature]) -> None:
        by_code: dict[str, JurisdictionFeature] = {}
        for feature in features:
            if feature.adcode in by_code:
                raise ValueError(f"duplicate adcode {feature.adcode} ({feature.name})")
            if feature.geometry.is_empty:
                raise ValueError(f"empty geometry for adcode {feature.adcode} ({feature.name})")
            by_code[feature.adcode] = feature
        self.features = features
        self.units = {code: JurisdictionUnit(code, f.name, f.level, f.parent_adcode) for code, f in by_code.items()}
        has_children = {f.parent_adcode for f in features if f.parent_adcode in by_code}
        self.leaves = [f for f in features if f.adcode not in has_children]
        self.parents = [f for f in features if f.adcode in has_children]
        self._paths = {code: self._walk(code) for code in self.units}

    def unit(self, adcode: str) -> JurisdictionUnit:
        return self.units[adcode]

    def path(self, adcode: str) -> tuple[JurisdictionUnit, ...]:
        return self._paths[adcode]

    def _walk(self, adcode: str) -> tuple[JurisdictionUnit, ...]:
        chain: list[JurisdictionUnit] = []
        code: str | None = adcode
        while code in self.units and len(chain) <= len(self.units):  # the bound stops a parent cycle
            unit = self.units[code]
            chain.append(unit)
            code = unit.parent_adcode
        return tuple(reversed(chain))


def _area_rank(features: Sequence[JurisdictionFeature]) -> list[int]:
    # Where leaves overlap (atlas data has slivers), the smaller unit is the more specific answer.
    order = sorted(range(len(features)), key=lambda i: (features[i].geometry.area, features[i].adcode))
    return _positions(order)


def _positions(order: list[int]) -> list[int]:
    rank = [0] * len(order)
    for position, index in enumerate(order):
        rank[index] = position
    return rank


def _max_abs_lat(geometries: Sequence[shapely.Geometry]) -> float:
    if not geometries:
        return 0.0
    bounds = shapely.bounds(np.asarray(geometries, dtype=object))
    return float(min(89.0, np.nanmax(np.abs(bounds[:, [1, 3]]))))


def _degrees_for(metres: float, max_lat: float) -> float:
    """An angle that covers ``metres`` in both axes anywhere up to ``max_lat`` (longitude degrees shrink)."""
    return metres / (_M_PER_DEG * math.cos(math.radians(max_lat)))


# ---- the cell grid -------------------------------------------------------------------------------------------


IntArray = npt.NDArray[np.int64]
# The units of a mixed cell (those whose boundary comes near it or that cover it) and their prepared polygons.
_UnitSet = tuple[tuple[int, ...], npt.NDArray[np.object_]]


class _CellGrid:
    """Grid of 2**cell_bits cells per degree over a set of polygons (see the module docstring).

    A cell's value is the unit index when one unit covers the cell widened by ``margin`` and no boundary comes
    within it, ``_EMPTY`` when no unit does, else ``-2 - i`` for mixed cell ``i``. With ``sub_bits`` the grid also
    lists, for each sub-cell of a mixed cell, the boundary segments that pass within ``margin`` of it.
    """

    def __init__(
        self, geoms: list[shapely.Geometry], cell_bits: int, sub_bits: int, margin: float, rank: list[int]
    ) -> None:
        self.rank = rank
        # Mixed cell i has units unit_sets[set_of[i]]; the ~15k distinct sets are shared by ~170k cells.
        self.unit_sets: list[_UnitSet] = []
        self.mixed_count = 0
        self._set_of = np.zeros(0, dtype=np.int32)
        self._sub_bits = sub_bits
        self._subs_per_cell = 1 << (2 * sub_bits)
        self._inv_cell = float(2**cell_bits)
        self._inv_sub = float(2 ** (cell_bits + sub_bits))
        self._geoms = np.asarray(geoms, dtype=object)
        shapely.prepare(self._geoms)
        bounds = shapely.total_bounds(self._geoms) if len(geoms) else np.array([0.0, 0.0, 1.0, 1.0])
        # Whole-degree origin one degree out, so margins never push a cell index below zero.
        self._origin = np.array([math.floor(bounds[0]) - 1.0, math.floor(bounds[1]) - 1.0])
        self._x0, self._y0 = float(self._origin[0]), float(self._origin[1])
        self._nx = math.ceil((float(bounds[2]) + 1.0 - self._x0) * self._inv_cell)
        self._ny = math.ceil((float(bounds[3]) + 1.0 - self._y0) * self._inv_cell)
        self._fx_max = self._nx * 2.0**sub_bits
        self._fy_max = self._ny * 2.0**sub_bits
        self._cells = np.full(self._nx * self._ny, _EMPTY, dtype=np.int32)
        # Near-border data: segment coordinates (x1, y1, x2, y2 flattened), owners, and per sub-cell lists.
        self.segment_count = 0
        self._coords = np.zeros(0)
        self._owner = np.zeros(0, dtype=np.int32)
        self._sub_offsets = np.zeros(1, dtype=np.int32)
        self._sub_segments = np.zeros(0, dtype=np.int32)
        if len(geoms):
            self._build(margin)
        # memoryviews: indexing one from Python is as fast as a list and yields plain ints/floats.
        self._cells_view = memoryview(self._cells)
        self._set_of_view = memoryview(self._set_of)
        self._coords_view = memoryview(self._coords)
        self._owner_view = memoryview(self._owner)
        self._sub_offsets_view = memoryview(self._sub_offsets)
        self._sub_segments_view = memoryview(self._sub_segments)
        self._warm_up()

    # -- queries -----------------------------------------------------------------------------------------------

    def locate(self, x: float, y: float) -> tuple[int, int] | None:
        """(cell value, sub-cell number) of the point, or None off the grid."""
        fx = (x - self._x0) * self._inv_sub
        fy = (y - self._y0) * self._inv_sub
        if not (0.0 <= fx < self._fx_max and 0.0 <= fy < self._fy_max):
            return None
        sx, sy = int(fx), int(fy)
        bits = self._sub_bits
        value = self._cells_view[(sx >> bits) * self._ny + (sy >> bits)]
        low = (1 << bits) - 1
        return value, ((sx & low) << bits) | (sy & low)

    def members(self, mixed: int) -> _UnitSet:
        return self.unit_sets[self._set_of_view[mixed]]

    def values_at(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.int32]:
        ix = np.floor((x - self._x0) * self._inv_cell)
        iy = np.floor((y - self._y0) * self._inv_cell)
        on_grid = (ix >= 0) & (ix < self._nx) & (iy >= 0) & (iy < self._ny)
        flat = np.where(on_grid, ix * self._ny + iy, 0).astype(np.int64)
        return np.where(on_grid, self._cells[flat], _EMPTY)

    def near_units(self, x: float, y: float, mixed: int, sub: int, tolerance_m: float) -> list[tuple[float, int]]:
        """(metres, unit) for each unit whose boundary is within the tolerance, nearest first.

        Exact point-to-segment distance on a local equirectangular projection at the point's latitude. The
        sub-cell's list holds every segment within ``margin`` of it, so none within tolerance is missed; it
        holds a handful, so plain Python beats numpy's per-call overhead here.
        """
        slot = mixed * self._subs_per_cell + sub
        offsets = self._sub_offsets_view
        start, end = offsets[slot], offsets[slot + 1]
        if start == end:
            return []
        kx = _M_PER_DEG * math.cos(math.radians(y))
        ky = _M_PER_DEG
        coords, owner, segments = self._coords_view, self._owner_view, self._sub_segments_view
        best: dict[int, float] = {}
        for j in range(start, end):
            segment = segments[j]
            o = 4 * segment
            ax = (coords[o] - x) * kx
            ay = (coords[o + 1] - y) * ky
            dx = (coords[o + 2] - x) * kx - ax
            dy = (coords[o + 3] - y) * ky - ay
            length2 = dx * dx + dy * dy
            t = -(ax * dx + ay * dy) / length2 if length2 > 0.0 else 0.0
            t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
            distance = math.hypot(ax + t * dx, ay + t * dy)
            if distance <= tolerance_m:
                unit = owner[segment]
                if distance < best.get(unit, math.inf):
                    best[unit] = distance
        return sorted((d, unit) for unit, d in best.items())

    # -- construction ------------------------------------------------------------------------------------------

    def _build(self, margin: float) -> None:
        a, b, owner = _boundary_segments(self._geoms)
        n_segments, n_units = len(a), len(self._geoms)
        ix, iy, seg = _marked_cells(a, b, margin, self._origin, self._inv_cell)
        border_pairs = _sorted_unique((ix * self._ny + iy) * n_units + owner[seg])
        members = self._classify(border_pairs, self._run_inside_pairs(border_pairs))
        self.mixed_count = len(members)
        set_ids: dict[tuple[int, ...], int] = {}
        set_of = []
        for units in members:
            set_id = set_ids.get(units)
            if set_id is None:
                set_id = set_ids[units] = len(self.unit_sets)
                self.unit_sets.append((units, self._geoms[list(units)]))
            set_of.append(set_id)
        self._set_of = np.array(set_of, dtype=np.int32)
        if self._sub_bits and members:
            # Only the leaf grid answers distances.
            self.segment_count = n_segments
            self._coords = np.hstack([a, b]).ravel()
            self._owner = owner.astype(np.int32)
            self._index_sub_cells(a, b, margin)

    def _run_inside_pairs(self, border_pairs: IntArray) -> IntArray:
        """(cell, unit) codes of the cells a unit covers that none of its boundary comes near.

        Along a row of cells, between two consecutive cells a unit's boundary marks, the unit either covers
        the whole run or none of it (crossing in or out would mark a cell), so one centre test per run decides.
        Outside the first and last marked cell of a row the unit is absent.
        """
        n_units = len(self._geoms)
        units, keys = border_pairs % n_units, border_pairs // n_units
        ix, iy = keys // self._ny, keys % self._ny
        order = np.lexsort((ix, iy, units))
        units, iy, ix = units[order], iy[order], ix[order]
        run = (units[1:] == units[:-1]) & (iy[1:] == iy[:-1]) & (ix[1:] - ix[:-1] > 1)
        unit, row, first, last = units[:-1][run], iy[:-1][run], ix[:-1][run] + 1, ix[1:][run] - 1
        cell = 1.0 / self._inv_cell
        covered = _intersects_xy(
            self._geoms[unit], self._x0 + (first + 0.5) * cell, self._y0 + (row + 0.5) * cell
        ).astype(bool)
        unit, row, first, last = unit[covered], row[covered], first[covered], last[covered]
        lengths = last - first + 1
        which = np.repeat(np.arange(len(unit)), lengths)
        offset = np.arange(len(which)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return ((first[which] + offset) * self._ny + row[which]) * n_units + unit[which]

    def _classify(self, border_pairs: IntArray, inside_pairs: IntArray) -> list[tuple[int, ...]]:
        """Write deep cells into the grid and number the mixed ones; returns each mixed cell's units."""
        n_units = len(self._geoms)
        codes = np.concatenate([border_pairs, inside_pairs])
        has_border = np.concatenate([np.ones(len(border_pairs), bool), np.zeros(len(inside_pairs), bool)])
        order = np.argsort(codes, kind="stable")
        codes, has_border = codes[order], has_border[order]
        keys, units = codes // n_units, codes % n_units
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        counts = np.diff(np.r_[starts, len(keys)])
        deep = (counts == 1) & ~has_border[starts]
        self._cells[keys[starts[deep]]] = units[starts[deep]]
        mixed_starts, mixed_counts = starts[~deep], counts[~deep]
        self._cells[keys[mixed_starts]] = -2 - np.arange(len(mixed_starts), dtype=np.int32)
        unit_list = units.tolist()
        return [
            tuple(unit_list[start : start + count])
            for start, count in zip(mixed_starts.tolist(), mixed_counts.tolist(), strict=True)
        ]

    def _index_sub_cells(self, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], margin: float) -> None:
        """CSR lists: segments near sub-cell ``sub`` of mixed cell ``m`` are at slot m * subs_per_cell + sub."""
        sx, sy, seg = _marked_cells(a, b, margin, self._origin, self._inv_sub)
        bits, low = self._sub_bits, (1 << self._sub_bits) - 1
        value = self._cells[(sx >> bits) * self._ny + (sy >> bits)]
        # Finer pieces can mark a sub-cell of a cell the coarse pass left deep/empty: nothing is near there.
        mixed = value <= -2
        slot = (-2 - value[mixed]).astype(np.int64) * self._subs_per_cell + (
            ((sx[mixed] & low) << bits) | (sy[mixed] & low)
        )
        codes = _sorted_unique(slot * len(a) + seg[mixed])
        slots = codes // len(a)
        self._sub_segments = (codes % len(a)).astype(np.int32)
        boundaries = np.arange(self.mixed_count * self._subs_per_cell + 1)
        self._sub_offsets = np.searchsorted(slots, boundaries, side="left").astype(np.int32)

    def _warm_up(self) -> None:
        # GEOS builds a prepared polygon's point locator lazily, on the first point inside the envelope; build
        # them all now, single-threaded, so concurrent lookups only ever read.
        if len(self._geoms):
            bounds = shapely.bounds(self._geoms)
            _intersects_xy(self._geoms, (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2)


def _marked_cells(
    a: npt.NDArray[np.float64],
    b: npt.NDArray[np.float64],
    margin: float,
    origin: npt.NDArray[np.float64],
    inv_cell: float,
) -> tuple[IntArray, IntArray, IntArray]:
    """(ix, iy, segment) for every cell that segment passes within ``margin`` of, or a few more.

    Segments are cut into pieces no longer than a cell; each piece marks the cells its bbox widened by
    ``margin`` overlaps. A superset is harmless (a cell merely becomes "mixed"); missing one is not.
    """
    start, end, seg = _pieces(a, b, inv_cell)
    low = np.floor((np.minimum(start, end) - margin - origin) * inv_cell).astype(np.int64)
    high = np.floor((np.maximum(start, end) + margin - origin) * inv_cell).astype(np.int64)
    lx, ly = low[:, 0], low[:, 1]
    wx, wy = high[:, 0] - lx, high[:, 1] - ly
    xs, ys, tags = [], [], []
    # Boxes are mostly 1×1 to 2×2 cells: one pass per offset, each over only the boxes that reach it.
    for ox in range(int(wx.max(initial=0)) + 1):
        reach = wx >= ox
        bx, by, bw, bseg = lx[reach], ly[reach], wy[reach], seg[reach]
        for oy in range(int(bw.max(initial=0)) + 1):
            if oy:
                reach = bw >= oy
                bx, by, bw, bseg = bx[reach], by[reach], bw[reach], bseg[reach]
            xs.append(bx + ox)
            ys.append(by + oy)
            tags.append(bseg)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(tags)


def _pieces(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], inv_cell: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], IntArray]:
    """Segments cut into equal pieces no longer than a cell in x or y: (start, end, segment index)."""
    pieces = np.maximum(1, np.ceil(np.abs(b - a).max(axis=1) * inv_cell)).astype(np.int64)
    long = np.flatnonzero(pieces > 1)
    if not len(long):
        return a, b, np.arange(len(a))
    counts = pieces[long]
    seg = np.repeat(long, counts)
    step = np.arange(len(seg)) - np.repeat(np.cumsum(counts) - counts, counts)
    total = pieces[seg]
    delta = (b - a)[seg]
    start = a[seg] + delta * (step / total)[:, None]
    end = a[seg] + delta * ((step + 1) / total)[:, None]
    short = np.flatnonzero(pieces == 1)
    return np.vstack([a[short], start]), np.vstack([b[short], end]), np.concatenate([short, seg])


def _sorted_unique(values: IntArray) -> IntArray:
    # np.unique in numpy 2.4 takes a hash-table path that is ~50x slower than sorting on these arrays.
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def _boundary_segments(
    geoms: npt.NDArray[np.object_],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], IntArray]:
    """Every boundary segment (start, end) of every polygon (shells and holes) with its polygon's index."""
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring_of_coord = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring_of_coord[1:] == ring_of_coord[:-1]
    owner = part_owner[ring_part[ring_of_coord[:-1][same_ring]]]
    return coords[:-1][same_ring], coords[1:][same_ring], owner


# ---- loading the atlas layer ---------------------------------------------------------------------------------


def load_county_layer(folder: Path) -> list[JurisdictionFeature]:
    """Provinces, cities and county-level units from an atlas folder of ``<adcode>_full.json`` files.

    ``100000_full.json`` lists the provinces, ``<province>_full.json`` its cities (or, for municipalities and
    province-administered cities, county-level units), ``<city>_full.json`` the city's county-level units. A
    unit's own children file decides the hierarchy; a file that holds only the unit itself (Dongguan, Taiwan)
    means it has no lower level, so it is a leaf.
    """
    folder = Path(folder)
    provinces = load_geojson(folder / "100000_full.json", skip=_is_decoration)
    features = list(provinces)
    for province in provinces:
        for child in _children(folder, province):
            features.append(child)
            features.extend(_children(folder, child))
    _refuse_duplicates(features, folder)
    return features


def _children(folder: Path, parent: JurisdictionFeature) -> list[JurisdictionFeature]:
    path = folder / f"{parent.adcode}_full.json"
    if not path.exists():
        return []
    children = load_geojson(path, skip=_is_decoration)
    return [replace(f, parent_adcode=parent.adcode) for f in children if f.adcode != parent.adcode]


def _is_decoration(properties: Any) -> bool:
    # The national file ships the South China Sea dash line as a feature with adcode "100000_JD" and no level.
    return not str(properties.get("adcode", "")).isdigit()


def _refuse_duplicates(features: list[JurisdictionFeature], folder: Path) -> None:
    seen: set[str] = set()
    for feature in features:
        if feature.adcode in seen:
            raise GeoJSONImportError(f"区划代码 {feature.adcode}（{feature.name}）在多个文件中重复", source=str(folder))
        seen.add(feature.adcode)
