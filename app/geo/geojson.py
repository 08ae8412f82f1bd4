"""Parse jurisdiction boundaries from a GeoJSON FeatureCollection.

Every feature becomes a :class:`JurisdictionFeature` with a valid shapely ``MultiPolygon``. The import is
all-or-nothing: every feature is parsed and checked first and one :class:`GeoJSONImportError` lists the
problems (each naming the feature's index, adcode and name), so a half-loaded layer can never route reports.
Coordinates are kept as they are (the caller knows the layer's datum); only longitude and latitude are kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from app.core.errors import InvalidInput

__all__ = [
    "FeatureFilter",
    "GeoJSONImportError",
    "JurisdictionFeature",
    "load_geojson",
    "parse_geojson",
]

# Only the first problems are listed in the error; a broken file usually repeats one mistake.
_MAX_LISTED_PROBLEMS = 20

FeatureFilter = Callable[[Mapping[str, Any]], bool]


class GeoJSONImportError(InvalidInput):
    code = "invalid_geojson"
    message = "行政区划边界文件（GeoJSON）格式有误，未导入任何区划"


@dataclass(frozen=True, slots=True)
class JurisdictionFeature:
    adcode: str
    name: str
    level: str
    parent_adcode: str | None
    geometry: MultiPolygon


class _FeatureProblem(Exception):
    """One feature's defect; collected, then reported together."""


def load_geojson(path: Path, *, skip: FeatureFilter | None = None) -> list[JurisdictionFeature]:
    return parse_geojson(Path(path).read_bytes(), skip=skip, source=str(path))


def parse_geojson(
    data: bytes | str, *, skip: FeatureFilter | None = None, source: str | None = None
) -> list[JurisdictionFeature]:
    """Parse a FeatureCollection (UTF-8, with or without BOM) into features, or raise GeoJSONImportError.

    ``skip`` is called with each feature's properties; features it accepts are left out (e.g. the decorative
    South China Sea dash line that atlases ship as a feature without a level).
    """
    features = _feature_list(_decode(data, source), source)
    parsed: list[JurisdictionFeature] = []
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(features):
        props = raw.get("properties") if isinstance(raw, Mapping) else None
        props = props if isinstance(props, Mapping) else {}
        if skip is not None and skip(props):
            continue
        try:
            feature = _parse_feature(raw, props)
        except _FeatureProblem as problem:
            problems.append(_describe(index, props, str(problem)))
            continue
        if feature.adcode in seen:
            reason = f"adcode 与第 {seen[feature.adcode]} 个要素重复"
            problems.append(_describe(index, props, reason))
            continue
        seen[feature.adcode] = index
        parsed.append(feature)
    if problems:
        raise _import_error(problems, source)
    return parsed


# ---- document level ------------------------------------------------------------------------------------------


def _decode(data: bytes | str, source: str | None) -> Any:
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes | bytearray) else data.lstrip("\ufeff")
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GeoJSONImportError(f"无法解析 GeoJSON 文件：{exc}", source=source, reason="not_json") from exc


def _feature_list(document: Any, source: str | None) -> list[Any]:
    is_collection = isinstance(document, Mapping) and document.get("type") == "FeatureCollection"
    features = document.get("features") if is_collection else None
    if not isinstance(features, list):
        raise GeoJSONImportError(
            "GeoJSON 顶层必须是含 features 数组的 FeatureCollection", source=source, reason="not_collection"
        )
    return features


def _import_error(problems: list[dict[str, Any]], source: str | None) -> GeoJSONImportError:
    first = problems[0]
    message = (
        f"第 {first['index']} 个要素（adcode={first['adcode']}，名称={first['name']}）：{first['reason']}"
        f"；共 {len(problems)} 个要素有误，未导入任何区划"
    )
    return GeoJSONImportError(
        message, source=source, problem_count=len(problems), problems=problems[:_MAX_LISTED_PROBLEMS]
    )


def _describe(index: int, props: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {"index": index, "adcode": props.get("adcode"), "name": props.get("name"), "reason": reason}


# ---- feature level -------------------------------------------------------------------------------------------


def _parse_feature(raw: Any, props: Mapping[str, Any]) -> JurisdictionFeature:
    if not isinstance(raw, Mapping) or raw.get("type") != "Feature":
        raise _FeatureProblem("不是 GeoJSON Feature")
    return JurisdictionFeature(
        adcode=_code(props.get("adcode"), "adcode"),
        name=_text(props.get("name"), "name"),
        level=_text(props.get("level"), "level"),
        parent_adcode=_parent(props.get("parent")),
        geometry=_geometry(raw.get("geometry")),
    )


def _code(value: Any, field: str) -> str:
    # bool is an int subclass; True as an adcode is a data error, not 1.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _FeatureProblem(f"缺少属性 {field}（应为整数或字符串）")
    code = str(value).strip()
    if not code:
        raise _FeatureProblem(f"属性 {field} 为空")
    return code


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _FeatureProblem(f"缺少属性 {field}")
    return value.strip()


def _parent(value: Any) -> str | None:
    # Atlas files carry {"adcode": 440000}; hand-made files often just the code.
    if isinstance(value, Mapping):
        value = value.get("adcode")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _code(value, "parent")


def _geometry(raw: Any) -> MultiPolygon:
    if raw is None:
        raise _FeatureProblem("几何为空（geometry 为 null）")
    if not isinstance(raw, Mapping):
        raise _FeatureProblem("geometry 不是对象")
    kind = raw.get("type")
    coords = raw.get("coordinates")
    if kind == "Polygon":
        polygons = [_polygon(coords)]
    elif kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise _FeatureProblem("MultiPolygon 坐标为空或格式有误")
        polygons = [_polygon(part) for part in coords]
    else:
        raise _FeatureProblem(f"几何类型 {kind!r} 不是 Polygon 或 MultiPolygon")
    return _valid_multipolygon(polygons)


def _polygon(rings: Any) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise _FeatureProblem("Polygon 坐标格式有误")
    try:
        shell, *holes = (_ring(ring) for ring in rings)
    except (TypeError, ValueError) as exc:
        raise _FeatureProblem(f"坐标格式有误：{exc}") from exc
    return shapely.polygons(shell, holes=holes or None)


def _ring(ring: Any) -> shapely.LinearRing:
    coords = np.asarray(ring, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] < 2:
        raise ValueError("环的坐标应为 [经度, 纬度] 数组")
    coords = coords[:, :2]
    if not np.isfinite(coords).all():
        raise ValueError("坐标含非有限数值")
    if len(coords) < 3:
        raise ValueError("环至少需要 3 个不同的点")
    return shapely.linearrings(coords)


def _valid_multipolygon(polygons: list[Polygon]) -> MultiPolygon:
    geometry = shapely.multipolygons(polygons)
    if not shapely.is_valid(geometry):
        # "structure" unions overlapping parts (atlas islands often overlap their mainland part), where the
        # default "linework" method would cut the overlap out as a hole; it is also ~5x faster here. It turns
        # a bow-tie into its two triangles; anything non-polygonal left over is dropped, only area counts.
        repaired = shapely.make_valid(geometry, method="structure", keep_collapsed=False)
        geometry = _polygonal_part(repaired)
    if geometry.is_empty:
        raise _FeatureProblem("几何无有效面（修复后不含任何多边形）")
    return geometry


def _polygonal_part(geometry: shapely.Geometry) -> MultiPolygon:
    parts: Iterable[shapely.Geometry] = shapely.get_parts(geometry)
    polygons: list[Polygon] = []
    for part in parts:
        if isinstance(part, Polygon) and not part.is_empty:
            polygons.append(part)
        elif isinstance(part, MultiPolygon | shapely.GeometryCollection):
            polygons.extend(_polygonal_part(part).geoms)
    return shapely.multipolygons(polygons) if polygons else MultiPolygon()
