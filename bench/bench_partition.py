"""Balanced partition proposals: real Nanjing 新街口 and Beijing 学院路, and 10,000 synthetic buildings.

For each data set: the time to propose (best and median of a few runs, outline excluded) and the
result — cells k, share of cells in the 200–500 band, min/max households, mean Polsby-Popper.
The real extracts have no households: they are estimated from footprint × levels, counting
OSM ``building=yes`` as residential (as the tests do). The synthetic community is a jittered grid
of road blocks (residential low-rise, high-rise, mixed and empty blocks) with 20 buildings each.

Run from the repository root: ``python -m bench.bench_partition``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import shapely

from bench.common import SHARED_DATA, machine
from geodata.estimate import RESIDENTIAL_BUILDING_VALUES, estimate_households
from geodata.partition import Proposal, derive_outline, propose_partition, road_blocks
from geodata.readers import read_features

TARGET, BAND = 300, (200, 500)


def synthetic_community(
    blocks_x: int = 25, blocks_y: int = 20, seed: int = 7
) -> tuple[shapely.Polygon, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A grid of road blocks with 20 buildings each: (area, buildings with households, roads)."""
    rng = np.random.default_rng(seed)
    lon0, lat0 = 118.80, 32.05
    ky = math.pi / 180.0 * 6_371_008.8
    kx = ky * math.cos(math.radians(lat0))
    width, height = 130.0, 110.0  # metres between road centre lines
    xs = np.arange(blocks_x + 1) * width
    ys = np.arange(blocks_y + 1) * height
    xs[1:-1] += rng.uniform(-8, 8, blocks_x - 1)
    ys[1:-1] += rng.uniform(-8, 8, blocks_y - 1)

    def deg(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return lon0 + x / kx, lat0 + y / ky

    road_geoms, road_kinds = [], []
    for n, x in enumerate(xs):
        lon, lat = deg(np.array([x, x]), np.array([ys[0] - 30, ys[-1] + 30]))
        road_geoms.append(shapely.LineString(np.column_stack([lon, lat])))
        road_kinds.append("secondary" if n % 5 == 0 else "residential")
    for n, y in enumerate(ys):
        lon, lat = deg(np.array([xs[0] - 30, xs[-1] + 30]), np.array([y, y]))
        road_geoms.append(shapely.LineString(np.column_stack([lon, lat])))
        road_kinds.append("secondary" if n % 5 == 0 else "residential")
    # footways across some blocks: paths inside blocks, never block boundaries
    for _ in range(blocks_x * blocks_y // 10):
        i, j = rng.integers(blocks_x), rng.integers(blocks_y)
        x = np.array([xs[i] + 10, xs[i + 1] - 10])
        y = np.array([ys[j] + 10, ys[j + 1] - 10])
        lon, lat = deg(x, y)
        road_geoms.append(shapely.LineString(np.column_stack([lon, lat])))
        road_kinds.append("footway")
    roads = gpd.GeoDataFrame({"highway": road_kinds}, geometry=road_geoms, crs=4326)

    # block kinds: 0 low-rise (2–6 floors), 1 high-rise (10–20), 2 mixed (half empty), 3 empty
    kinds = rng.choice(4, size=(blocks_x, blocks_y), p=[0.6, 0.25, 0.05, 0.10])
    floors = {0: (2, 7), 1: (10, 21), 2: (3, 10), 3: (1, 2)}
    boxes, households = [], []
    for i in range(blocks_x):
        for j in range(blocks_y):
            kind = int(kinds[i, j])
            x0, x1, y0, y1 = xs[i] + 12, xs[i + 1] - 12, ys[j] + 12, ys[j + 1] - 12
            cols, rows = 5, 4
            cw, rh = (x1 - x0) / cols, (y1 - y0) / rows
            for c in range(cols):
                for r in range(rows):
                    w = cw * rng.uniform(0.55, 0.8)
                    h = rh * rng.uniform(0.5, 0.75)
                    bx = x0 + c * cw + rng.uniform(0, cw - w)
                    by = y0 + r * rh + rng.uniform(0, rh - h)
                    lon, lat = deg(np.array([bx, bx + w]), np.array([by, by + h]))
                    boxes.append((lon[0], lat[0], lon[1], lat[1]))
                    levels = int(rng.integers(*floors[kind]))
                    empty = kind == 3 or (kind == 2 and rng.random() < 0.5)
                    households.append(0 if empty else int(np.rint(w * h * levels / 90.0)))
    b = np.array(boxes)
    buildings = gpd.GeoDataFrame({"households": households}, geometry=shapely.box(*b.T), crs=4326)
    lon, lat = deg(np.array([xs[0], xs[-1]]), np.array([ys[0], ys[-1]]))
    area = shapely.box(lon[0], lat[0], lon[1], lat[1])
    return area, buildings, roads


def _real(
    name: str,
) -> tuple[shapely.Geometry, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A real extract with estimated households (building=yes counted as residential), and
    the water polygons of its raw OSM file."""
    folder = SHARED_DATA / name
    buildings = read_features(folder / "buildings.geojson").gdf
    roads = read_features(folder / "roads.geojson", kind="line").gdf
    households, _ = estimate_households(
        buildings, residential_values=(*RESIDENTIAL_BUILDING_VALUES, "yes")
    )
    buildings["households"] = households
    raw = sorted((folder / "raw").iterdir())[0]
    water = read_features(raw, kind="polygon").gdf
    return derive_outline(buildings, roads, water=water), buildings, roads, water


def _timed(fn: Callable[[], Proposal], repeat: int) -> tuple[list[float], Proposal]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    assert result is not None
    return times, result


def _report(label: str, area, buildings, roads, repeat: int, water=None) -> None:
    blocks = road_blocks(area, roads, buildings=buildings, water=water)
    times, proposal = _timed(
        lambda: propose_partition(area, buildings, roads, target=TARGET, band=BAND, water=water),
        repeat,
    )
    s = proposal.summary()
    print(
        f"{label}: {len(buildings):,} buildings, {s['households']:,} households, "
        f"{len(blocks):,} road blocks"
    )
    print(
        f"  propose: best {min(times):.2f} s, median {statistics.median(times):.2f} s "
        f"({repeat} runs)"
    )
    print(
        f"  k = {s['cells']}, in band {s['in_band']}/{s['cells']} = {s['share_in_band']:.1%} "
        f"({s['share_in_band_divisible']:.1%} of the cells that are not one building or "
        "estate above the band), "
        f"households min {s['min_households']} / mean {s['mean_households']:.0f} / "
        f"max {s['max_households']}, Polsby-Popper mean {s['mean_polsby_popper']:.2f} "
        f"(min {s['min_polsby_popper']:.2f})"
    )
    for reason, count in s["out_of_band_reasons"].items():
        print(f"  outside the band: {count} × {reason}")


def main() -> None:
    """Print the figures for the real extracts and the synthetic community."""
    print(f"Machine: {machine()}")
    print(f"target {TARGET}, band {BAND[0]}–{BAND[1]} households")
    if (SHARED_DATA / "nanjing_xinjiekou" / "buildings.geojson").is_file():
        for label, name in (
            ("Nanjing 新街口", "nanjing_xinjiekou"),
            ("Beijing 学院路", "beijing_haidian_xueyuanlu"),
        ):
            start = time.perf_counter()
            area, buildings, roads, water = _real(name)
            print(f"{label}: read + estimate + outline {time.perf_counter() - start:.2f} s")
            _report(label, area, buildings, roads, repeat=5, water=water)
    else:
        print(f"(real extracts not found at {SHARED_DATA}; skipped)")
    area, buildings, roads = synthetic_community(15, 10)
    _report("Synthetic community (3,000 buildings)", area, buildings, roads, repeat=3)
    area, buildings, roads = synthetic_community()
    _report("Synthetic community", area, buildings, roads, repeat=3)


if __name__ == "__main__":
    main()
