"""Coverage validation (geodata.coverage.validate_cells) of 1,000 cells, and of 50,000.

Cells are a 40 × 25 grid of ≈ 380 × 445 m quadrilaterals whose shared vertices are jittered
(neighbours share them exactly, so the coverage is valid); the community is their union.
Runs: the valid grid (fast path: coverage_is_valid holds), the same grid with about 20
injected problems (removed, shifted, bow-tie, protruding, two-part and sliver cells, leaders
and household counts), and a worst case where no shared edge matches vertex for vertex (every
cell is flagged by coverage_invalid_edges, so every neighbouring pair is intersected).
"""

from __future__ import annotations

import argparse
import time

import geopandas as gpd
import numpy as np
import shapely

from bench.common import describe, machine, timed
from geodata.coverage import validate_cells

X0, Y0, STEP = 118.70, 32.00, 0.004  # degrees; ≈ 378 m east-west, 445 m north-south
M = 1 / 111_320  # one metre of latitude, in degrees (longitude: / cos 32°)


def jittered_grid(nx: int, ny: int, seed: int = 7) -> tuple[shapely.Geometry, gpd.GeoDataFrame]:
    """(community, cells): nx × ny quadrilaterals over a lattice with jittered inner vertices."""
    rng = np.random.default_rng(seed)
    gx, gy = np.meshgrid(X0 + STEP * np.arange(nx + 1), Y0 + STEP * np.arange(ny + 1))
    jitter = rng.uniform(-0.25, 0.25, (2, ny + 1, nx + 1)) * STEP
    jitter[:, [0, -1], :] = 0.0  # the outline stays straight
    jitter[:, :, [0, -1]] = 0.0
    gx, gy = gx + jitter[0], gy + jitter[1]
    rings = []
    for j in range(ny):
        for i in range(nx):
            corners = [(j, i), (j, i + 1), (j + 1, i + 1), (j + 1, i), (j, i)]
            rings.append([(gx[a, b], gy[a, b]) for a, b in corners])
    cells = shapely.polygons(rings)
    frame = gpd.GeoDataFrame(
        {
            "code": [f"320102001001{k + 1:04d}" for k in range(len(cells))],
            "households": rng.integers(220, 480, len(cells)),
            "has_leader": np.ones(len(cells), dtype=bool),
        },
        geometry=cells,
        crs=4326,
    )
    return shapely.coverage_union_all(cells), frame


def inject_problems(cells: gpd.GeoDataFrame, nx: int) -> tuple[gpd.GeoDataFrame, int]:
    """A copy with 20 problems planted in inner cells (and a list of what was planted)."""
    out = cells.copy()
    geoms = out.geometry.to_numpy().copy()
    east = 5 * M / np.cos(np.radians(Y0))

    def inner(row: int, col: int) -> int:
        return row * nx + col

    planted = 0
    for k in (inner(3, 5), inner(10, 20), inner(18, 30)):  # shifted 5 m east: overlap + gap
        geoms[k] = shapely.affinity.translate(geoms[k], xoff=east)
        planted += 1
    for k in (inner(6, 12), inner(20, 8)):  # bow-tie: invalid (and then gaps)
        x = shapely.get_coordinates(geoms[k])
        geoms[k] = shapely.Polygon([x[0], x[2], x[1], x[3]])
        planted += 1
    edge = inner(0, 17)  # a south edge cell protrudes 30 m: outside
    minx, miny, maxx, _ = geoms[edge].bounds
    geoms[edge] = shapely.union_all([geoms[edge], shapely.box(minx, miny - 30 * M, maxx, miny)])
    planted += 1
    for k in (inner(12, 3), inner(15, 25)):  # a 20 m square of the next cell: two parts
        c = shapely.centroid(geoms[k + 1])
        speck = shapely.box(c.x, c.y, c.x + 20 * M, c.y + 20 * M)
        geoms[k] = shapely.union_all([geoms[k], speck])
        geoms[k + 1] = geoms[k + 1].difference(speck)
        planted += 1
    for k in (inner(8, 30), inner(22, 14)):  # a 3 m square of the next cell: sliver
        c = shapely.centroid(geoms[k + 1])
        speck = shapely.box(c.x, c.y, c.x + 3 * M, c.y + 3 * M)
        geoms[k] = shapely.union_all([geoms[k], speck])
        geoms[k + 1] = geoms[k + 1].difference(speck)
        planted += 1
    out = out.set_geometry(geoms)
    drop = [inner(5, 33), inner(16, 2)]  # removed: gap
    planted += len(drop)
    out.loc[out.index[[40, 400, 800]], "has_leader"] = False
    out.loc[out.index[[41, 401, 801]], "households"] = [150, 520, 90]
    planted += 6
    return out.drop(index=out.index[drop]), planted


def unmatched(cells: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy where every cell has an extra vertex on its east edge its neighbour lacks."""
    rings = []
    for geom in cells.geometry:
        x = shapely.get_coordinates(geom)
        mid = (x[1] + x[2]) / 2
        rings.append([x[0], x[1], mid, x[2], x[3], x[0]])
    return cells.set_geometry(shapely.polygons(rings))


def run(label: str, community: shapely.Geometry, cells: gpd.GeoDataFrame, repeat: int) -> None:
    """Time validate_cells and print the figures and what it found."""
    report = validate_cells(community, cells)  # warm-up (and the result to print)
    times = timed(lambda: validate_cells(community, cells), repeat=repeat)
    found = {k: v for k, v in report.counts().items() if v} or "ok"
    print(f"{label:<44} {len(cells):>6} cells  {describe(times)}  → {found}")


def main() -> None:
    """Build the grids and time each run (best / median of 5)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-large", action="store_true", help="skip the 50,000-cell run")
    args = parser.parse_args()
    print(f"machine: {machine()}; shapely {shapely.__version__}, GEOS {shapely.geos_version}")
    nx, ny = 40, 25
    t = time.perf_counter()
    community, cells = jittered_grid(nx, ny)
    print(f"built the 40 × 25 grid in {(time.perf_counter() - t) * 1000:.0f} ms")
    assert shapely.coverage_is_valid(cells.geometry.to_numpy())
    run("valid grid (fast path)", community, cells, 5)
    broken, planted = inject_problems(cells, nx)
    run(f"with {planted} injected problems", community, broken, 5)
    run("no edge matches (every pair intersected)", community, unmatched(cells), 5)
    if not args.no_large:
        community, cells = jittered_grid(250, 200)
        t = time.perf_counter()
        valid = shapely.coverage_is_valid(cells.geometry.to_numpy())
        print(f"coverage_is_valid alone, 50,000 cells: {time.perf_counter() - t:.2f} s ({valid})")
        run("valid grid, 250 × 200", community, cells, 3)
        broken, planted = inject_problems(cells, 250)
        run(f"250 × 200 with {planted} injected problems", community, broken, 3)


if __name__ == "__main__":
    main()
