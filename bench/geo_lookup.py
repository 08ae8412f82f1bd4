"""Benchmark the jurisdiction index on the whole country.

Run: .venv/bin/python bench/geo_lookup.py [--points N] [--seed S]

Prints the layer load time, the index build time (median of 3), single-thread lookups/s, per-lookup p50/p90/p99/
max (each lookup timed on its own with perf_counter_ns), for points given in GCJ-02 and in WGS-84, and the
throughput of the vectorised lookup_many. Points: 90 % uniformly inside China (sampled inside province bounding
boxes, kept only if they fall in a province polygon), 10 % uniformly over a box around China (mostly outside).
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import shapely

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.geo.datum import Datum, gcj02_to_wgs84_np  # noqa: E402
from app.geo.geojson import JurisdictionFeature  # noqa: E402
from app.geo.index import JurisdictionIndex, load_county_layer  # noqa: E402

DATA = REPO / ".." / "shared" / "data" / "geo" / "china-counties"


def sample_points(features: list[JurisdictionFeature], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    provinces = np.array([f.geometry for f in features if f.level == "province"], dtype=object)
    shapely.prepare(provinces)
    union_bounds = shapely.total_bounds(provinces)
    n_inside = n * 9 // 10
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    while sum(len(x) for x in xs) < n_inside:
        x = rng.uniform(union_bounds[0], union_bounds[2], n)
        y = rng.uniform(union_bounds[1], union_bounds[3], n)
        inside = np.zeros(n, dtype=bool)
        for province in provinces:
            inside |= shapely.intersects_xy(province, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
    x_in = np.concatenate(xs)[:n_inside]
    y_in = np.concatenate(ys)[:n_inside]
    x_out = rng.uniform(60.0, 150.0, n - n_inside)
    y_out = rng.uniform(-5.0, 60.0, n - n_inside)
    order = rng.permutation(n)
    return np.r_[x_in, x_out][order], np.r_[y_in, y_out][order]


def time_build(features: list[JurisdictionFeature], repeats: int = 3) -> tuple[float, JurisdictionIndex]:
    timings = []
    index = None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        index = JurisdictionIndex(features)
        timings.append(time.perf_counter() - start)
    assert index is not None
    return statistics.median(timings), index


def time_lookups(index: JurisdictionIndex, xs: list[float], ys: list[float], datum: Datum) -> None:
    lookup = index.lookup
    clock = time.perf_counter_ns
    for x, y in zip(xs[:2000], ys[:2000], strict=True):  # warm caches
        lookup(x, y, datum)
    per_call = np.empty(len(xs), dtype=np.int64)
    gc.disable()
    try:
        total_start = time.perf_counter()
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            start = clock()
            lookup(x, y, datum)
            per_call[i] = clock() - start
        total = time.perf_counter() - total_start
        # A second pass without per-call timers gives the plain throughput.
        plain_start = time.perf_counter()
        for x, y in zip(xs, ys, strict=True):
            lookup(x, y, datum)
        plain = time.perf_counter() - plain_start
    finally:
        gc.enable()
    p50, p90, p99 = np.percentile(per_call, [50, 90, 99]) / 1000.0
    print(
        f"  lookup({datum.value}): {len(xs) / plain:,.0f} lookups/s single thread "
        f"({len(xs) / total:,.0f}/s with per-call timers); per lookup µs: p50 {p50:.1f}  p90 {p90:.1f}  "
        f"p99 {p99:.1f}  max {per_call.max() / 1000.0:.0f}"
    )


def time_lookup_many(index: JurisdictionIndex, xs: np.ndarray, ys: np.ndarray, datum: Datum) -> None:
    start = time.perf_counter()
    results = index.lookup_many(xs, ys, datum)
    elapsed = time.perf_counter() - start
    assert len(results) == len(xs)
    print(f"  lookup_many({datum.value}): {len(xs) / elapsed:,.0f} points/s ({elapsed * 1000:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()

    start = time.perf_counter()
    features = load_county_layer(args.data)
    print(f"load {len(features)} features from GeoJSON: {time.perf_counter() - start:.2f} s")

    build, index = time_build(features)
    print(f"index build (median of 3): {build:.2f} s; {len(index.leaf_units)} smallest units")
    print(f"  {index.stats()}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS after load + 3 builds: {peak_mb:.0f} MB")

    gx, gy = sample_points(features, args.points, args.seed)
    wx, wy = gcj02_to_wgs84_np(gx, gy)
    print(f"{args.points:,} random points (90 % inside China), each lookup timed on its own:")
    time_lookups(index, gx.tolist(), gy.tolist(), Datum.GCJ02)
    time_lookups(index, wx.tolist(), wy.tolist(), Datum.WGS84)
    time_lookup_many(index, gx, gy, Datum.GCJ02)
    time_lookup_many(index, wx, wy, Datum.WGS84)


if __name__ == "__main__":
    main()
