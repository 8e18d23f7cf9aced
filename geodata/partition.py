"""Propose balanced grid cells (网格) for a community: road blocks, graph partition, local moves.

The pipeline, for ``propose_partition``:

1. **Road blocks** (:func:`road_blocks`): the barrier roads (no footways, service roads, tunnels
   or bridges) and the area's boundary are noded and polygonized; the faces inside the area are
   blocks, and blocks under ``min_block_m2`` join their longest-shared-edge neighbour.
2. **Splitting**: a block whose households alone exceed the band's upper bound is split between
   groups of its buildings (recursive coordinate bisection, estates kept whole where they fit);
   the split lines are the boundaries between the groups' Voronoi regions, computed from points
   along the building outlines, so they run in the gaps between buildings.
3. **Atoms**: everything is polygonized once more so all pieces share exact vertices; the units
   (blocks, or block parts) form a graph whose edges are shared boundaries of positive length.
4. **Graph partition**: units of an estate that fits the band are contracted into one node; each
   connected piece is split by METIS (``pymetis``, contiguous parts, edge weights = shared metres)
   into k ≈ households / target parts, k adjusted so the band is reachable. Without pymetis a
   graph-growing recursive bisection is used.
5. **Local moves**: boundary units move between neighbouring cells to bring cells into the band
   (merging or bisecting cells where that helps), then to shorten the cells' shared boundary
   (compactness), always keeping every cell contiguous. Cells still outside the band say why.

All topology is computed in EPSG:4326, so the area's own vertices are kept exactly and the cells
tile it; lengths, areas and the Voronoi splits are measured in metres (a local frame for the
internal decisions, the UTM zone of :func:`geodata.crs.metric_crs` for the reported figures).
Each building belongs to the cell holding the largest share of its footprint. This module is
pure: no database, no HTTP, and it never imports ``gridsvc``.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import defaultdict, deque
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geodata.codes import reading_order
from geodata.crs import STORAGE_CRS, metric_crs
from geodata.errors import GeodataError

try:  # METIS through pymetis (wheels on PyPI); a slower pure-Python bisection otherwise
    import pymetis
except ImportError:  # pragma: no cover - exercised by monkeypatching _metis_parts in the tests
    pymetis = None

__all__ = [
    "NON_BARRIER_HIGHWAYS",
    "NON_BARRIER_RAILWAYS",
    "REASONS",
    "Proposal",
    "barrier_mask",
    "derive_outline",
    "outline_name",
    "propose_partition",
    "road_blocks",
    "water_areas",
    "water_mask",
]

logger = logging.getLogger(__name__)

#: ``highway`` values that do not bound blocks (paths through a block, not between blocks).
NON_BARRIER_HIGHWAYS: frozenset[str] = frozenset(
    {
        "footway",
        "path",
        "steps",
        "service",
        "cycleway",
        "bridleway",
        "corridor",
        "elevator",
        "platform",
        "proposed",
        "construction",
        "abandoned",
        "razed",
        "bus_stop",
        "rest_area",
        "services",
        "escape",
        "raceway",
        "ferry",  # foreign schemas' ferry routes, as gridsvc imports store them (OSM: route=ferry)
    }
)
#: ``railway`` values that do not bound blocks (not built, gone, or not a track on the ground).
NON_BARRIER_RAILWAYS: frozenset[str] = frozenset(
    {
        "abandoned",
        "construction",
        "disused",
        "dismantled",
        "platform",
        "proposed",
        "razed",
        "station",
        "stop",
        "subway_entrance",
        "halt",
    }
)
#: ``waterway`` values of water areas (OSM ``waterway=riverbank`` and river/canal areas).
WATER_WATERWAYS: frozenset[str] = frozenset({"riverbank", "river", "canal", "dock", "stream"})
_NO = frozenset({"", "no", "false", "0", "none", "nan"})

#: Why a cell lies outside the band (Chinese for the staff, English for the log).
REASONS: dict[str, str] = {
    "total": "社区住户总数不足 (the area has fewer households than the band's lower bound)",
    "building": (
        "单栋楼住户已超过上限，楼栋不可拆分 (one building alone has more households than the "
        "upper bound; buildings are never split)"
    ),
    "block": (
        "一个街区的住户已超过上限且无法沿楼栋拆分 (a road block alone exceeds the upper bound "
        "and cannot be split between buildings)"
    ),
    "isolated": "与其余部分不相连且住户不足 (a detached part of the area with too few households)",
    "empty": "无住户 (no households)",
    "under": (
        "相邻网格无法让出住户而不越出范围或断开网格 (neighbouring cells cannot give households "
        "without leaving the band or breaking a cell apart)"
    ),
    "over": (
        "无法在保持网格连片、楼栋与小区完整的情况下移出住户 (households cannot be moved out "
        "while keeping cells contiguous and buildings and estates whole)"
    ),
}

_EARTH_RADIUS_M = 6_371_008.8
_OUTLINE_REACH_M = 150.0  # a road face reaching further beyond the buildings does not enclose them
_OUTLINE_JOIN_M = 100.0  # outline parts nearer than this on land are one part (wider: open ground)
_MIN_SHARED_M = 1e-6  # shared boundary length that makes two pieces adjacent
_SPLIT_STUB_M = 0.05  # split lines overshoot their block by this much, so they are noded with it
_ESTATE_EDGE_BONUS = 1_000  # METIS edge weight added between units of one estate
_MIN_COMPACT_GAIN_M = 0.5  # a compactness move must shorten the cells' boundaries by this much
_MAX_GROUPS = 5_000  # groups tried per cell pair and size in a group move (bounds the work)
_TIE_SHARE = 0.1  # units holding this share of one building's footprint each go to one cell
_STRIP_WIDTH_M = 20.0  # an empty face narrower than this (2·area/perimeter) is road space …
_STRIP_MIN_LENGTH_M = 50.0  # … when it is at least this long (half its perimeter)


# ================================================================================ result =====


@dataclass
class Proposal:
    """A proposed partition: the cells, each building's cell, the target and the band."""

    cells: gpd.GeoDataFrame
    building_cell: pd.Series
    target: int
    band: tuple[int, int]
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts, min/max/mean households, share of cells in the band and mean compactness.

        ``share_in_band_divisible`` leaves out the cells that are one building (or one unit
        kept whole, such as an estate) above the band on its own: no partition can fix those.
        """
        cells = self.cells
        n = len(cells)
        hh = cells["households"].to_numpy(dtype=np.int64) if n else np.zeros(0, np.int64)
        pp = cells["polsby_popper"].to_numpy(dtype=float) if n else np.zeros(0)
        in_band = int(cells["in_band"].sum()) if n else 0
        reasons = cells.loc[~cells["in_band"], "reason"].value_counts() if n else pd.Series()
        # cells that are one building, or one unit kept whole, above the band on its own
        whole = int(cells["reason"].isin([REASONS["building"], REASONS["block"]]).sum()) if n else 0
        return {
            "cells": n,
            "households": int(hh.sum()),
            "buildings": len(self.building_cell),
            "target": self.target,
            "band": list(self.band),
            "min_households": int(hh.min()) if n else 0,
            "max_households": int(hh.max()) if n else 0,
            "mean_households": float(hh.mean()) if n else 0.0,
            "in_band": in_band,
            "share_in_band": in_band / n if n else 0.0,
            "share_in_band_divisible": in_band / (n - whole) if n > whole else 1.0,
            "mean_polsby_popper": float(pp.mean()) if n else 0.0,
            "min_polsby_popper": float(pp.min()) if n else 0.0,
            "out_of_band_reasons": {str(k): int(v) for k, v in reasons.items()},
        }


# ================================================================================ helpers =====


@dataclass(frozen=True)
class _Frame:
    """A local equirectangular frame in metres around (lon0, lat0), for internal decisions."""

    lon0: float
    lat0: float
    kx: float
    ky: float

    @classmethod
    def around(cls, geom: Any) -> _Frame:
        """The frame centred on the bounds of ``geom`` (degrees)."""
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(geom))
        lon0, lat0 = (minx + maxx) / 2.0, (miny + maxy) / 2.0
        ky = math.pi / 180.0 * _EARTH_RADIUS_M
        return cls(lon0, lat0, ky * math.cos(math.radians(lat0)), ky)

    def fwd(self, geoms: Any) -> Any:
        """Degrees → local metres."""
        origin, scale = np.array([self.lon0, self.lat0]), np.array([self.kx, self.ky])
        return shapely.transform(geoms, lambda c: (c - origin) * scale)

    def inv(self, geoms: Any) -> Any:
        """Local metres → degrees."""
        origin, scale = np.array([self.lon0, self.lat0]), np.array([self.kx, self.ky])
        return shapely.transform(geoms, lambda c: c / scale + origin)


def _in_storage_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> Any:
    """The frame in EPSG:4326 (no CRS is taken as 4326)."""
    if gdf.crs is None:
        return gdf.set_crs(STORAGE_CRS)
    if not gdf.crs.equals(STORAGE_CRS):
        return gdf.to_crs(STORAGE_CRS)
    return gdf


def _polygon_parts(geom: Any) -> np.ndarray:
    """The non-empty Polygon parts of a geometry (made valid first), recursing collections."""
    if geom is None or shapely.is_empty(geom):
        return np.zeros(0, dtype=object)
    if not shapely.is_valid(geom):
        geom = shapely.make_valid(geom)
    parts = shapely.get_parts(geom)
    while len(parts) and (shapely.get_type_id(parts) >= 4).any():
        nested = shapely.get_type_id(parts) >= 4
        parts = np.concatenate([parts[~nested], shapely.get_parts(parts[nested])])
    keep = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    return parts[keep]


def _as_area(area: Any) -> Any:
    """The area as one valid Polygon or MultiPolygon in EPSG:4326."""
    if isinstance(area, gpd.GeoDataFrame | gpd.GeoSeries):
        series = _in_storage_crs(area.geometry if isinstance(area, gpd.GeoDataFrame) else area)
        area = shapely.union_all(series.to_numpy()) if len(series) else None
    if area is not None and not isinstance(area, shapely.Geometry):
        raise GeodataError(f"the area must be a polygon, not {type(area).__name__}")
    parts = _polygon_parts(area)
    parts = parts[shapely.area(parts) > 0] if len(parts) else parts
    if not len(parts):
        raise GeodataError("the area is empty: it needs a polygon with a positive area")
    merged = parts[0] if len(parts) == 1 else shapely.union_all(parts)
    return merged


def _truthy(values: pd.Series) -> np.ndarray:
    """OSM-style yes/no tags: anything but missing, "no", "false", "0"."""
    text = values.astype(object).where(values.notna(), "")
    return np.array([str(v).strip().lower() not in _NO for v in text], dtype=bool)


def _tag_text(roads: gpd.GeoDataFrame, column: str) -> np.ndarray:
    """A tag column as stripped lower-case text ("" where the column or the value is missing)."""
    if column not in roads.columns:
        return np.full(len(roads), "", dtype=object)
    values = roads[column].astype(object)
    return np.array([str(v).strip().lower() if pd.notna(v) else "" for v in values], dtype=object)


def barrier_mask(
    roads: gpd.GeoDataFrame, barrier_highways: Collection[str] | None = None
) -> np.ndarray:
    """Which rows of OSM-tagged lines bound blocks (roads, rail, river lines) — one rule for all.

    A row is a barrier unless it is a ferry route (``route=ferry``), a tunnel, bridge or covered
    way, a ``highway`` in :data:`NON_BARRIER_HIGHWAYS` (or, with ``barrier_highways``, a
    ``highway`` not listed there) or a ``railway`` in :data:`NON_BARRIER_RAILWAYS`. Rows with
    neither tag (rail, waterway or untagged lines of a road layer) are barriers.
    """
    keep = np.ones(len(roads), dtype=bool)
    highway = _tag_text(roads, "highway")
    railway = _tag_text(roads, "railway")
    has_highway = highway != ""
    if barrier_highways is not None:
        wanted = [str(v).strip().lower() for v in barrier_highways]
        keep &= ~has_highway | np.isin(highway, wanted)
        keep &= has_highway | (railway != "") | ("highway" not in roads.columns)
    else:
        keep &= ~np.isin(highway, list(NON_BARRIER_HIGHWAYS))
    keep &= ~np.isin(railway, list(NON_BARRIER_RAILWAYS))
    keep &= _tag_text(roads, "route") != "ferry"
    for column in ("tunnel", "bridge", "covered"):
        if column in roads.columns:
            keep &= ~_truthy(roads[column])
    return keep


def _barrier_lines(
    roads: gpd.GeoDataFrame | None, barrier_highways: Collection[str] | None = None
) -> np.ndarray:
    """Single LineStrings of the roads that bound blocks, in EPSG:4326."""
    if roads is None or len(roads) == 0:
        return np.zeros(0, dtype=object)
    roads = _in_storage_crs(roads)
    geoms = roads.geometry.to_numpy()[barrier_mask(roads, barrier_highways)]
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if not len(geoms):
        return np.zeros(0, dtype=object)
    parts = shapely.get_parts(shapely.force_2d(geoms))
    while len(parts) and (shapely.get_type_id(parts) >= 4).any():
        nested = shapely.get_type_id(parts) >= 4
        parts = np.concatenate([parts[~nested], shapely.get_parts(parts[nested])])
    types = shapely.get_type_id(parts)
    lines = parts[(types == 1) | (types == 2)]
    return lines[shapely.length(lines) > 0]


#: Tag columns that say whether an OSM feature is water.
WATER_TAGS: tuple[str, ...] = ("natural", "waterway", "water", "landuse")


def water_mask(features: gpd.GeoDataFrame) -> np.ndarray:
    """Which features are water: ``natural=water``, ``waterway`` riverbank/river/canal/dock/
    stream, any ``water=*``, ``landuse`` reservoir/basin; all of them when the frame has none
    of these tag columns (a layer given as water)."""
    if not any(c in features.columns for c in WATER_TAGS):
        return np.ones(len(features), dtype=bool)
    return (
        (_tag_text(features, "natural") == "water")
        | np.isin(_tag_text(features, "waterway"), list(WATER_WATERWAYS))
        | (_tag_text(features, "water") != "")
        | np.isin(_tag_text(features, "landuse"), ["reservoir", "basin"])
    )


def water_areas(water: Any) -> Any:
    """The water (rivers, lakes, canals) as one (Multi)Polygon in EPSG:4326, or None.

    ``water`` is a polygon, or a GeoDataFrame/GeoSeries of features. A frame with OSM tags keeps
    the water features only — ``natural=water``, ``waterway`` riverbank/river/canal/dock,
    any ``water=*``, ``landuse`` reservoir/basin — and a frame without those columns is taken
    to be all water (a layer the user gave as water). Lines and points are ignored.
    """
    if water is None:
        return None
    if isinstance(water, gpd.GeoDataFrame):
        frame = _in_storage_crs(water)
        geoms = frame.geometry.to_numpy()[water_mask(frame)]
    elif isinstance(water, gpd.GeoSeries):
        geoms = _in_storage_crs(water).to_numpy()
    elif isinstance(water, shapely.Geometry):
        geoms = np.array([water], dtype=object)
    else:
        raise GeodataError(f"water must be polygons, not {type(water).__name__}")
    parts = np.concatenate([_polygon_parts(g) for g in geoms] or [np.zeros(0, dtype=object)])
    parts = parts[shapely.area(parts) > 0] if len(parts) else parts
    if not len(parts):
        return None
    merged = shapely.union_all(parts)
    shapely.prepare(merged)
    return merged


def _faces(area: Any, lines: np.ndarray) -> np.ndarray:
    """Polygonize the lines plus the area's boundary; the faces inside the area, in order."""
    near = lines[shapely.intersects(lines, area)] if len(lines) else lines
    linework = np.concatenate([near, [shapely.boundary(area)]])
    noded = shapely.union_all(linework)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if not len(faces):
        return faces
    faces = faces[shapely.area(faces) > 0]
    shapely.prepare(area)
    inside = shapely.contains(area, shapely.point_on_surface(faces))
    return faces[inside]


def _adjacency(local: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) of polygons sharing a boundary of positive length, and that length."""
    if len(local) < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    tree = shapely.STRtree(local)
    i, j = tree.query(local, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    bounds = shapely.boundary(local)
    shared = shapely.length(shapely.intersection(bounds[i], bounds[j]))
    ok = shared > _MIN_SHARED_M
    return i[ok].astype(np.int64), j[ok].astype(np.int64), shared[ok]


def _aggregate_edges(
    labels: np.ndarray, i: np.ndarray, j: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges between groups (labels of i and j), lengths summed, a < b, sorted."""
    a, b = labels[i], labels[j]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    if not keep.any():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    frame = pd.DataFrame({"a": lo[keep], "b": hi[keep], "len": length[keep]})
    summed = frame.groupby(["a", "b"], sort=True)["len"].sum()
    return (
        summed.index.get_level_values(0).to_numpy(np.int64),
        summed.index.get_level_values(1).to_numpy(np.int64),
        summed.to_numpy(float),
    )


def _neighbours(n: int, i: np.ndarray, j: np.ndarray, length: np.ndarray) -> list[dict[int, float]]:
    """Adjacency dicts (node → {neighbour: shared length})."""
    nbrs: list[dict[int, float]] = [{} for _ in range(n)]
    for a, b, ln in zip(i.tolist(), j.tolist(), length.tolist(), strict=True):
        nbrs[a][b] = nbrs[a].get(b, 0.0) + ln
        nbrs[b][a] = nbrs[b].get(a, 0.0) + ln
    return nbrs


def _merge_small(
    areas: np.ndarray, i: np.ndarray, j: np.ndarray, length: np.ndarray, min_m2: float
) -> np.ndarray:
    """Labels 0..m-1 after merging every group under ``min_m2`` into its longest-edge neighbour."""
    n = len(areas)
    parent = np.arange(n)
    size = areas.astype(float).copy()
    nbrs = _neighbours(n, i, j, length)
    heap = [(float(size[f]), f) for f in range(n) if size[f] < min_m2]
    heapq.heapify(heap)
    while heap:
        area, f = heapq.heappop(heap)
        if parent[f] != f or area != size[f] or size[f] >= min_m2 or not nbrs[f]:
            continue
        # the neighbour with the longest shared edge; ties: the larger, then the lower id
        g = max(nbrs[f], key=lambda v: (nbrs[f][v], size[v], -v))
        parent[f] = g
        size[g] += size[f]
        for v, ln in nbrs[f].items():
            del nbrs[v][f]
            if v != g:
                nbrs[g][v] = nbrs[g].get(v, 0.0) + ln
                nbrs[v][g] = nbrs[v].get(g, 0.0) + ln
        nbrs[f] = {}
        if size[g] < min_m2:
            heapq.heappush(heap, (float(size[g]), g))
    roots = parent.copy()
    for f in range(n):  # path compression to the final roots
        r = f
        while parent[r] != r:
            r = parent[r]
        roots[f] = r
    _, labels = np.unique(roots, return_inverse=True)
    return labels.astype(np.int64)


def _dissolve(geoms: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Union of the pieces of each label (they form a coverage, so coverage_union is exact)."""
    out = np.empty(count, dtype=object)
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(count + 1))
    for g in range(count):
        idx = order[starts[g] : starts[g + 1]]
        if len(idx) == 1:
            out[g] = geoms[idx[0]]
        elif len(idx):
            merged = shapely.coverage_union_all(geoms[idx])
            if shapely.get_type_id(merged) != 3:  # not a single Polygon: fall back to union
                merged = shapely.union_all(geoms[idx])
            out[g] = merged
        else:
            out[g] = shapely.Polygon()
    return out


def _overlay_pairs(
    bgeoms: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(building, target, shared area) for every intersecting pair; a lone pair gets area 1.

    Buildings meeting no target are paired with the nearest one (shared area 0).
    """
    nb = len(bgeoms)
    tree = shapely.STRtree(targets)
    bi, ti = tree.query(bgeoms, predicate="intersects")
    counts = np.bincount(bi, minlength=nb)
    share = np.ones(len(bi))
    multi = counts[bi] > 1
    if multi.any():
        share[multi] = shapely.area(shapely.intersection(bgeoms[bi[multi]], targets[ti[multi]]))
    lonely = np.flatnonzero(counts == 0)
    if len(lonely):
        ni, nt = tree.query_nearest(bgeoms[lonely], all_matches=False)
        bi = np.concatenate([bi, lonely[ni]])
        ti = np.concatenate([ti, nt])
        share = np.concatenate([share, np.zeros(len(ni))])
    return bi.astype(np.int64), ti.astype(np.int64), share


def _largest(bi: np.ndarray, key: np.ndarray, share: np.ndarray, nb: int) -> np.ndarray:
    """Per building, the key with the largest summed share (ties: the lowest key)."""
    frame = pd.DataFrame({"b": bi, "k": key, "s": share})
    summed = frame.groupby(["b", "k"], sort=True)["s"].sum().reset_index()
    summed = summed.sort_values(["b", "s", "k"], ascending=[True, False, True], kind="stable")
    first = summed.drop_duplicates("b")
    out = np.full(nb, -1, dtype=np.int64)
    out[first["b"].to_numpy()] = first["k"].to_numpy()
    return out


def _locate(points: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Index of the polygon holding each point (the nearest when none does)."""
    tree = shapely.STRtree(polygons)
    pi, gi = tree.query(points, predicate="within")
    out = np.full(len(points), -1, dtype=np.int64)
    order = np.lexsort((gi, pi))
    pi, gi = pi[order], gi[order]
    first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, dtype=bool)
    out[pi[first]] = gi[first]
    missing = np.flatnonzero(out < 0)
    if len(missing):
        ni, nt = tree.query_nearest(points[missing], all_matches=False)
        out[missing[ni]] = nt
    return out


# ============================================================================== outline =====


def derive_outline(
    buildings: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None = None,
    *,
    margin_m: float = 20.0,
    water: Any = None,
    single: bool = False,
    join_m: float = _OUTLINE_JOIN_M,
) -> shapely.Polygon | shapely.MultiPolygon:
    """A community/street outline when none is given, in EPSG:4326.

    It covers every building plus ``margin_m`` and follows the surrounding roads where they
    enclose the buildings. Groups of buildings stay separate parts (a MultiPolygon) where
    water or open ground wider than ``join_m`` without buildings lies between them; nearer
    groups are joined, never across ``water`` (polygons or OSM features, see
    :func:`water_areas`), and the outline leaves the water out. With ``single`` the parts
    are joined into one Polygon (a concave hull) even across water.
    """
    if not margin_m >= 0:
        raise GeodataError(f"margin_m must not be negative, not {margin_m}")
    if not join_m >= 0:
        raise GeodataError(f"join_m must not be negative, not {join_m}")
    if buildings is None or len(buildings) == 0:
        raise GeodataError("cannot derive an outline: there are no buildings")
    series = _in_storage_crs(buildings.geometry)
    geoms = series.to_numpy()
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if not len(geoms):
        raise GeodataError("cannot derive an outline: no building has a geometry")
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    crs = metric_crs(series)
    metric = gpd.GeoSeries(geoms, crs=STORAGE_CRS).to_crs(crs)
    pads_m = shapely.buffer(
        metric.to_numpy(), margin_m, quad_segs=2, join_style="mitre", mitre_limit=1.5
    )
    pad_union_m = shapely.union_all(pads_m)
    pieces = [gpd.GeoSeries([pad_union_m], crs=crs).to_crs(STORAGE_CRS).iloc[0]]

    lines = _barrier_lines(roads)
    if len(lines):
        reach_m = shapely.buffer(shapely.convex_hull(pad_union_m), _OUTLINE_REACH_M)
        reach = gpd.GeoSeries([reach_m], crs=crs).to_crs(STORAGE_CRS).iloc[0]
        shapely.prepare(reach)
        near = lines[shapely.intersects(reach, lines)]
        if len(near):
            noded = shapely.union_all(near)
            faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
            if len(faces):
                tree = shapely.STRtree(faces)
                _, fi = tree.query(shapely.point_on_surface(geoms), predicate="within")
                holding = faces[np.unique(fi)]
                enclosing = holding[shapely.contains(reach, holding)]
                pieces.extend(enclosing.tolist())
                logger.debug("outline: %d road faces enclose buildings", len(enclosing))
    merged = shapely.union_all(np.array(pieces, dtype=object))
    wet = water_areas(water)
    if single:
        outline = _one_polygon(merged)
    else:
        outline = _join_near_parts(merged, wet, join_m, _Frame.around(merged))
    if not shapely.covers(outline, geoms).all():  # numerical slivers: never leave a building out
        outline = _filled(shapely.union_all(np.concatenate([[outline], geoms])), single)
    if not outline.is_valid:
        outline = _filled(shapely.make_valid(outline), single)
    logger.info(
        "outline of %d buildings: %d parts, %.0f vertices",
        len(geoms),
        shapely.get_num_geometries(outline),
        shapely.get_num_coordinates(outline),
    )
    return outline


def outline_name(buildings: gpd.GeoDataFrame, fallback: str) -> str:
    """A name for a derived outline: the buildings' commonest ``addr:street`` (or
    ``addr:suburb``) + 社区, else ``fallback`` (say, the file's name) — never just "outline"."""
    for column in ("addr:suburb", "addr:street"):
        if column in buildings.columns:
            values = buildings[column].dropna().astype(str).str.strip()
            values = values[values != ""]
            if len(values):
                return f"{values.value_counts().sort_index().idxmax()}社区"
    return fallback


def _filled(geom: Any, single: bool) -> shapely.Polygon | shapely.MultiPolygon:
    """One Polygon without holes (``single``), or the parts without holes, as one geometry."""
    if single:
        return _one_polygon(geom)
    parts = _polygon_parts(geom)
    shells = shapely.union_all(shapely.polygons(shapely.get_exterior_ring(parts)))
    parts = _polygon_parts(shells)
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts.tolist())


def _join_near_parts(
    merged: Any, water: Any, join_m: float, frame: _Frame
) -> shapely.Polygon | shapely.MultiPolygon:
    """The parts of ``merged`` joined where they lie within ``join_m`` of each other on land.

    Two parts are joined (by the concave hull of the pair) when the shortest line between
    them is at most ``join_m`` long and crosses no water; the water is then cut out again,
    and every part has its holes filled (holes of water excepted).
    """
    parts = _filled(merged, single=False)
    parts = _polygon_parts(parts)
    if len(parts) > 1 and join_m > 0:
        local = frame.fwd(parts)
        i, j = shapely.STRtree(local).query(local, predicate="dwithin", distance=join_m)
        keep = i < j
        i, j = i[keep], j[keep]
        if len(i) and water is not None:
            bridge = frame.inv(shapely.shortest_line(local[i], local[j]))
            dry = ~shapely.intersects(water, bridge)
            i, j = i[dry], j[dry]
        groups = _connected_labels(np.zeros(len(parts), dtype=np.int64), i, j)
        joined = []
        for g in range(int(groups.max()) + 1):
            members = parts[groups == g]
            if len(members) == 1:
                joined.append(members[0])
            else:  # hull the parts as drawn (holes too), as for a single outline
                joined.append(
                    _one_polygon(shapely.intersection(merged, shapely.union_all(members)))
                )
        parts = np.array(joined, dtype=object)
    outline = shapely.union_all(parts)
    if water is not None:
        outline = shapely.difference(outline, water)
    pieces = _polygon_parts(outline)
    return pieces[0] if len(pieces) == 1 else shapely.MultiPolygon(pieces.tolist())


def _one_polygon(geom: Any) -> shapely.Polygon:
    """Join the parts of ``geom`` (or an array of polygons) into one Polygon without holes.

    The parts are joined by a concave hull of their vertices.
    """
    if isinstance(geom, np.ndarray):
        geom = shapely.union_all(geom)
    parts = _polygon_parts(geom)
    if len(parts) == 1:
        return shapely.Polygon(parts[0].exterior)
    union = shapely.union_all(parts)
    points = shapely.multipoints(shapely.get_coordinates(union))
    for ratio in (0.05, 0.1, 0.2, 0.4, 0.7, 1.0):
        hull = shapely.concave_hull(points, ratio=ratio) if ratio < 1 else points.convex_hull
        joined = _polygon_parts(shapely.union_all([union, hull]))
        if len(joined) == 1:
            return shapely.Polygon(joined[0].exterior)
    return shapely.Polygon(shapely.convex_hull(union).exterior)  # pragma: no cover


# =========================================================================== road blocks =====


def _water_lines(water: Any) -> np.ndarray:
    """The shore lines of the water (EPSG:4326), to node with the roads."""
    if water is None:
        return np.zeros(0, dtype=object)
    parts = shapely.get_parts(shapely.boundary(water))
    return parts[shapely.length(parts) > 0]


def _blocks(
    area: Any,
    lines: np.ndarray,
    min_block_m2: float,
    frame: _Frame,
    occupied: np.ndarray | None = None,
    water: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pieces of the area, the block of each piece, all the lines used to cut them, and water.

    Faces of the road network (and of the shore lines of ``water``); thin empty faces (between
    the carriageways of a dual road) and faces of water are split lengthwise between their
    neighbours, so a river's half goes to the block on its bank; then blocks under
    ``min_block_m2`` join their longest-shared-edge neighbour. A piece of water is adjacent to
    its own block only, so no block (and no cell) reaches across the water. ``occupied`` holds
    building footprints (EPSG:4326): a face holding part of one is never treated as a strip.
    The last array says which pieces are water.
    """
    shores = _water_lines(water)
    if len(shores):
        lines = np.concatenate([lines, shores])
    faces = _faces(area, lines)
    if not len(faces):
        raise GeodataError("the area could not be split into blocks (no face inside it)")
    local = frame.fwd(faces)
    i, j, length = _adjacency(local)
    record = np.arange(len(faces))
    held = np.zeros(len(faces), dtype=bool)
    if occupied is not None and len(occupied):
        oi, fi = shapely.STRtree(faces).query(occupied, predicate="intersects")
        overlap = shapely.area(shapely.intersection(occupied[oi], faces[fi])) > 0
        held[np.unique(fi[overlap])] = True
    wet = np.zeros(len(faces), dtype=bool)
    if water is not None:
        wet = shapely.contains(water, shapely.point_on_surface(faces))
    strip_lines, strips = _strips(local, i, j, length, held, wet)
    if strips:
        if len(strip_lines):
            lines = np.concatenate([lines, frame.inv(strip_lines)])
            pieces = _faces(area, lines)
            pieces_local = frame.fwd(pieces)
        else:
            pieces, pieces_local = faces, local
        points = shapely.point_on_surface(pieces_local)
        record = _locate(points, local)
        wet = wet[record]
        for f, (tree, owner) in strips.items():
            idx = np.flatnonzero(record == f)
            if len(idx):
                record[idx] = owner[0] if tree is None else _nearest_label(tree, points[idx], owner)
        faces, local = pieces, pieces_local
        i, j, length = _adjacency(local)
    if wet.any():  # water touches its own block only: nothing joins across it
        keep = ~((wet[i] | wet[j]) & (record[i] != record[j]))
        i, j, length = i[keep], j[keep], length[keep]
    record = _connected_labels(record, i, j)
    count = int(record.max()) + 1
    gi, gj, glen = _aggregate_edges(record, i, j, length)
    group_area = np.bincount(record, weights=shapely.area(local), minlength=count)
    labels = _merge_small(group_area, gi, gj, glen, min_block_m2)[record]
    return faces, labels, lines, wet


def _strips(
    local: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    length: np.ndarray,
    held: np.ndarray,
    wet: np.ndarray,
) -> tuple[np.ndarray, dict[int, tuple[shapely.STRtree | None, np.ndarray]]]:
    """Lines splitting each thin empty face, and each face of water, between its neighbours.

    The split is the Voronoi diagram of points along the face's shared edges. Returns the
    lines (local metres) and, per split face, the sites along its shared edges with the
    neighbour face each belongs to (a piece of the strip joins its nearest neighbour), or no
    sites and the one neighbour that takes the whole strip (for water that cannot be split,
    the neighbour with the longest shore).
    """
    area = shapely.area(local)
    perimeter = shapely.length(local)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(perimeter > 0, 2.0 * area / perimeter, 0.0)
    thin = (((width < _STRIP_WIDTH_M) & (perimeter / 2.0 >= _STRIP_MIN_LENGTH_M)) | wet) & ~held
    if not thin.any():
        return np.zeros(0, dtype=object), {}
    nbrs = _neighbours(len(local), i, j, length)
    bounds = shapely.boundary(local)
    out_lines: list[np.ndarray] = []
    strips: dict[int, tuple[shapely.STRtree | None, np.ndarray]] = {}
    for f in np.flatnonzero(thin).tolist():
        sides = sorted(g for g in nbrs[f] if not thin[g])
        if not sides:
            continue
        longest = np.array([max(sides, key=lambda g: (nbrs[f][g], -g))])
        if len(sides) == 1:  # one solid neighbour: the whole strip joins it
            strips[f] = (None, np.array(sides))
            continue
        shared = shapely.intersection(bounds[f], bounds[np.array(sides)])
        spacing = min(5.0, max(1.0, float(shapely.length(shared).sum()) / 1_000.0))
        coords, owner = shapely.get_coordinates(
            shapely.segmentize(shared, spacing), return_index=True
        )
        coords = np.round(coords, 2)
        _, first = np.unique(coords, axis=0, return_index=True)
        first.sort()
        coords, owner = coords[first], np.array(sides)[owner[first]]
        segments = (
            _voronoi_edges_between(coords, owner, reach=50.0)
            if len(np.unique(owner)) >= 2 and len(coords) >= 3
            else np.zeros((0, 2, 2))
        )
        if not len(segments):
            if wet[f]:
                strips[f] = (None, longest)
            continue
        cut = shapely.intersection(
            shapely.union_all(shapely.linestrings(segments)),
            shapely.buffer(local[f], _SPLIT_STUB_M),
        )
        parts = shapely.get_parts(cut)
        parts = parts[np.isin(shapely.get_type_id(parts), (1, 2))]
        if len(parts):
            out_lines.append(parts)
        strips[f] = (shapely.STRtree(shapely.points(coords)), owner)
    lines = np.concatenate(out_lines) if out_lines else np.zeros(0, dtype=object)
    return lines, strips


def road_blocks(
    area: shapely.Polygon | shapely.MultiPolygon,
    roads: gpd.GeoDataFrame | None,
    *,
    min_block_m2: float = 200.0,
    barrier_highways: Collection[str] | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    water: Any = None,
) -> gpd.GeoDataFrame:
    """Split the area into road-bounded blocks (noded roads + area boundary, polygonized).

    Blocks under ``min_block_m2`` join their longest-shared-edge neighbour. Roads that do not
    bound blocks are ignored: tunnels, bridges, covered ways and, by default, the ``highway``
    values in :data:`NON_BARRIER_HIGHWAYS` (footway, path, steps, service …), ferry routes and
    the ``railway`` values in :data:`NON_BARRIER_RAILWAYS` (see :func:`barrier_mask`); rail
    bounds blocks. ``barrier_highways`` lists the ``highway`` values that do bound blocks
    instead. ``water`` (polygons or OSM features, see :func:`water_areas`) bounds blocks too:
    each piece of it goes to the block on its nearest bank, and no block reaches across it.
    Thin empty faces (the
    space between the two carriageways of a dual road: narrower than 20 m, at least 50 m long)
    are split lengthwise between the blocks on either side, so boundaries run along the middle
    of the road; a face holding part of one of the optional ``buildings`` is never treated so.
    Blocks tile the area exactly and are numbered in reading order (north→south, west→east).
    Columns: block_id, geometry (Polygon), in EPSG:4326.
    """
    area = _as_area(area)
    frame = _Frame.around(area)
    lines = _barrier_lines(roads, barrier_highways)
    occupied = None
    if buildings is not None and len(buildings):
        footprints = _in_storage_crs(buildings.geometry).to_numpy()
        footprints = footprints[~(shapely.is_missing(footprints) | shapely.is_empty(footprints))]
        occupied = shapely.make_valid(footprints)
    faces, labels, _, _ = _blocks(area, lines, min_block_m2, frame, occupied, water_areas(water))
    count = int(labels.max()) + 1
    geoms = _dissolve(faces, labels, count)
    order = reading_order(geoms)
    logger.info("road blocks: %d faces → %d blocks", len(faces), count)
    return gpd.GeoDataFrame(
        {"block_id": np.arange(count, dtype=np.int64)},
        geometry=gpd.GeoSeries(geoms[order], crs=STORAGE_CRS),
    )


# ====================================================================== block splitting =====


def _rcb(xy: np.ndarray, weight: np.ndarray, parts: int) -> np.ndarray:
    """Recursive coordinate bisection: labels putting items into ``parts`` balanced groups."""
    labels = np.zeros(len(weight), dtype=np.int64)
    stack = [(np.arange(len(weight)), parts, 0)]
    while stack:
        idx, k, offset = stack.pop()
        if k <= 1 or len(idx) <= 1:
            labels[idx] = offset
            continue
        k1 = k // 2
        pts = xy[idx]
        axis = int(np.argmax(pts.max(axis=0) - pts.min(axis=0)))
        order = idx[np.lexsort((pts[:, 1 - axis], pts[:, axis]))]
        cum = np.cumsum(weight[order])
        goal = cum[-1] * k1 / k
        cut = int(np.argmin(np.abs(cum[:-1] - goal))) + 1
        stack.append((order[:cut], k1, offset))
        stack.append((order[cut:], k - k1, offset + k1))
    return labels


def _split_block(
    block: Any,
    bgeoms: np.ndarray,
    households: np.ndarray,
    estates: np.ndarray,
    target: int,
    upper: int,
    frame: _Frame,
    others: np.ndarray | None = None,
) -> tuple[np.ndarray, _Sites] | None:
    """Split lines (EPSG:4326) between building groups of one block, and the groups' sites.

    The buildings are grouped by recursive coordinate bisection (overlapping buildings, and
    the buildings of an estate that fits the band, move together). The split lines are the
    Voronoi edges between the groups (sites along the building outlines); where such an edge
    still crosses a building (touching or very close buildings), that building's outline is
    added, and the pieces inside it take its group, so no building is cut.
    """
    local_block = frame.fwd(block)
    pieces = shapely.intersection(frame.fwd(bgeoms), local_block)
    ok = shapely.area(pieces) > 0
    if ok.sum() < 2:
        return None
    pieces, households, estates = pieces[ok], households[ok], estates[ok]
    item_of = _items(pieces, households, estates, upper)
    n_items = int(item_of.max()) + 1
    centres = shapely.get_coordinates(shapely.centroid(pieces))
    areas = shapely.area(pieces)
    item_w = np.bincount(item_of, weights=households, minlength=n_items)
    item_a = np.bincount(item_of, weights=areas, minlength=n_items)
    item_xy = (
        np.column_stack(
            [np.bincount(item_of, weights=centres[:, d] * areas, minlength=n_items) for d in (0, 1)]
        )
        / item_a[:, None]
    )
    total = float(households.sum())
    parts = max(2, math.ceil(total / upper), round(total / target))
    parts = min(parts, int((item_w > 0).sum()))
    if parts < 2:
        return None
    labels = _rcb(item_xy, item_w, parts)[item_of]
    if len(np.unique(labels)) < 2:
        return None

    perimeter = float(shapely.length(pieces).sum())
    spacing = min(6.0, max(1.0, perimeter / 3_000.0))  # ≤ about 3,000 sites per block
    rings = shapely.segmentize(shapely.boundary(pieces), spacing)
    coords, owner = shapely.get_coordinates(rings, return_index=True)
    group = labels[owner]
    coords = np.round(coords, 2)  # centimetres: near-duplicate sites break the triangulation
    _, first = np.unique(coords, axis=0, return_index=True)
    first.sort()
    coords, group = coords[first], group[first]
    segments = _voronoi_edges_between(coords, group, reach=max(50.0, 10.0 * spacing))
    if not len(segments):
        return None
    clip = shapely.buffer(local_block, _SPLIT_STUB_M)
    inner = shapely.intersection(shapely.union_all(shapely.linestrings(segments)), clip)
    if inner.is_empty:
        return None
    # buildings the split lines still cross keep their outline and stay whole; buildings of
    # a neighbouring block reaching in (over a road) go with their nearest group
    whole = frame.fwd(bgeoms[ok])
    if others is not None and len(others):
        reach_in = frame.fwd(others)
        foreign = shapely.intersection(reach_in, local_block)
        inside = shapely.area(foreign) > 0
        foreign, reach_in = foreign[inside], reach_in[inside]
        foreign_group = _nearest_label(
            shapely.STRtree(shapely.points(coords)), shapely.point_on_surface(foreign), group
        )
        fi, mi = shapely.STRtree(pieces).query(foreign, predicate="intersects")
        if len(fi):  # one drawn over a member building goes with that building
            common = shapely.area(shapely.intersection(foreign[fi], pieces[mi]))
            order = np.lexsort((mi, -common, fi))
            fi, mi, common = fi[order], mi[order], common[order]
            first = np.r_[True, fi[1:] != fi[:-1]] & (common > 1e-6)
            foreign_group[fi[first]] = labels[mi[first]]
        pieces = np.concatenate([pieces, foreign])
        whole = np.concatenate([whole, reach_in])
        labels = np.concatenate([labels, foreign_group])
    buildings_tree = shapely.STRtree(pieces)
    crossed = np.unique(buildings_tree.query(inner, predicate="intersects"))
    parts_ = [shapely.get_parts(shapely.line_merge(inner))]
    if len(crossed):
        outlines = shapely.intersection(shapely.boundary(whole[crossed]), clip)
        parts_.append(shapely.get_parts(outlines))
    lines = np.concatenate(parts_)
    lines = lines[np.isin(shapely.get_type_id(lines), (1, 2))]
    lines = lines[shapely.length(lines) > 0]
    if not len(lines):
        return None
    sites = _Sites(shapely.STRtree(shapely.points(coords)), group, buildings_tree, labels)
    return frame.inv(lines), sites


def _items(
    pieces: np.ndarray, households: np.ndarray, estates: np.ndarray, upper: int
) -> np.ndarray:
    """Item of each building for the bisection: overlapping buildings and fitting estates join.

    Overlapping footprints (a tower drawn over its podium) stay together where the joined
    households fit the band, biggest overlap first: their common part could only go to one of
    them. An estate that fits the band is one item as well.
    """
    n = len(pieces)
    parent = list(range(n))
    weight = households.astype(np.int64).tolist()

    def root(a: int) -> int:
        while parent[a] != a:
            a = parent[a]
        return a

    def join(a: int, b: int, limit: float) -> None:
        a, b = root(a), root(b)
        if a != b and weight[a] + weight[b] <= limit:
            parent[max(a, b)] = min(a, b)
            weight[min(a, b)] += weight[max(a, b)]

    i, j = shapely.STRtree(pieces).query(pieces, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    if len(i):
        common = shapely.area(shapely.intersection(pieces[i], pieces[j]))
        order = np.lexsort((j, i, -common))
        for a, b, area in zip(
            i[order].tolist(), j[order].tolist(), common[order].tolist(), strict=True
        ):
            if area > 1e-6:  # m²: a real overlap, not just a shared wall
                join(a, b, upper)
    estate_hh: dict[Hashable, int] = defaultdict(int)
    first: dict[Hashable, int] = {}
    for n_, (e, h) in enumerate(zip(estates.tolist(), households.tolist(), strict=True)):
        if e is not None:
            estate_hh[e] += h
            first.setdefault(e, n_)
    for n_, e in enumerate(estates.tolist()):
        if e is not None and estate_hh[e] <= upper:
            join(first[e], n_, math.inf)
    roots = [root(x) for x in range(n)]
    return np.unique(np.array(roots), return_inverse=True)[1].astype(np.int64)


def _voronoi_edges_between(coords: np.ndarray, group: np.ndarray, reach: float) -> np.ndarray:
    """Voronoi edges (as (n, 2, 2) segments) separating sites of different groups.

    Computed as the dual of GEOS's Delaunay triangulation: the edge between two sites joins the
    circumcentres of the two triangles sharing them (a ray of length ``reach`` beyond the
    bounds on the hull).
    """
    tri = shapely.get_parts(shapely.delaunay_triangles(shapely.multipoints(coords)))
    if not len(tri):
        return np.zeros((0, 2, 2))
    corners = shapely.get_coordinates(tri).reshape(-1, 4, 2)[:, :3]
    keys = coords[:, 0] + 1j * coords[:, 1]
    order = np.argsort(keys)
    flat = corners.reshape(-1, 2)
    found = np.searchsorted(keys[order], flat[:, 0] + 1j * flat[:, 1])
    site = order[np.minimum(found, len(order) - 1)].reshape(-1, 3)
    # circumcentres, computed relative to the first corner for precision
    a = corners[:, 0]
    b, c = corners[:, 1] - a, corners[:, 2] - a
    d = 2.0 * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0])
    bb, cc = (b**2).sum(axis=1), (c**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = a + np.column_stack(
            [(c[:, 1] * bb - b[:, 1] * cc) / d, (b[:, 0] * cc - c[:, 0] * bb) / d]
        )
    t = np.repeat(np.arange(len(tri)), 3)
    ends = np.column_stack([site[:, [0, 1, 2]].reshape(-1), site[:, [1, 2, 0]].reshape(-1)])
    opposite = site[:, [2, 0, 1]].reshape(-1)
    lo, hi = ends.min(axis=1), ends.max(axis=1)
    differ = group[lo] != group[hi]
    t, lo, hi, opposite = t[differ], lo[differ], hi[differ], opposite[differ]
    order = np.lexsort((t, hi, lo))
    t, lo, hi, opposite = t[order], lo[order], hi[order], opposite[order]
    pair_next = np.r_[(lo[1:] == lo[:-1]) & (hi[1:] == hi[:-1]), False]
    pair_prev = np.r_[False, pair_next[:-1]]
    inner = np.flatnonzero(pair_next)
    segs = [np.stack([centre[t[inner]], centre[t[inner + 1]]], axis=1)]
    hull = np.flatnonzero(~pair_next & ~pair_prev)
    if len(hull):  # a ray from the circumcentre, away from the triangle's third corner
        p, q, r = coords[lo[hull]], coords[hi[hull]], coords[opposite[hull]]
        along = q - p
        normal = np.column_stack([along[:, 1], -along[:, 0]])
        flip = ((r - p) * normal).sum(axis=1) > 0
        normal[flip] *= -1
        normal /= np.maximum(np.hypot(*normal.T), 1e-12)[:, None]
        span = float(np.hypot(*(coords.max(axis=0) - coords.min(axis=0)))) + reach
        start = centre[t[hull]]
        segs.append(np.stack([start, start + normal * span], axis=1))
    out = np.concatenate(segs)
    ok = np.isfinite(out).all(axis=(1, 2)) & (np.abs(out - out[:, :1]).sum(axis=(1, 2)) > 0)
    return out[ok]


@dataclass(frozen=True)
class _Sites:
    """Where the groups of a split block lie (local metres): their buildings and outline sites."""

    tree: shapely.STRtree
    group: np.ndarray
    buildings: shapely.STRtree
    building_group: np.ndarray

    def label(self, atoms_local: np.ndarray) -> np.ndarray:
        """The group of each atom: of the building covering most of it, else of the nearest site."""
        out = _nearest_label(self.tree, shapely.point_on_surface(atoms_local), self.group)
        ai, bi = self.buildings.query(atoms_local, predicate="intersects")
        if len(ai):
            pieces = self.buildings.geometries[bi]
            inside = shapely.area(shapely.intersection(atoms_local[ai], pieces))
            frac = inside / np.maximum(shapely.area(atoms_local[ai]), 1e-12)
            keep = frac >= 0.5
            ai, bi, frac = ai[keep], bi[keep], frac[keep]
            order = np.lexsort((bi, -frac, ai))
            ai, bi = ai[order], bi[order]
            first = np.r_[True, ai[1:] != ai[:-1]] if len(ai) else np.zeros(0, dtype=bool)
            out[ai[first]] = self.building_group[bi[first]]
        return out


def _nearest_label(tree: shapely.STRtree, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Label of the nearest tree item to each point (ties: the lowest item)."""
    pi, ti = tree.query_nearest(points, all_matches=True)
    order = np.lexsort((ti, pi))
    pi, ti = pi[order], ti[order]
    first = np.r_[True, pi[1:] != pi[:-1]]
    out = np.full(len(points), -1, dtype=np.int64)
    out[pi[first]] = labels[ti[first]]
    return out


# ======================================================================= graph partition =====


def _components(nodes: Sequence[int] | np.ndarray, nbrs: list[dict[int, float]]) -> list[list[int]]:
    """Connected components of the subgraph induced by ``nodes`` (each sorted; by lowest node)."""
    inside = set(int(u) for u in nodes)
    seen: set[int] = set()
    out: list[list[int]] = []
    for start in sorted(inside):
        if start in seen:
            continue
        comp = [start]
        seen.add(start)
        queue = deque([start])
        while queue:
            u = queue.popleft()
            for v in nbrs[u]:
                if v in inside and v not in seen:
                    seen.add(v)
                    comp.append(v)
                    queue.append(v)
        out.append(sorted(comp))
    return out


def _connected_labels(key: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Labels 0..m-1 of the connected runs of items with equal key (edges i–j)."""
    n = len(key)
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    same = key[i] == key[j]
    for a, b in zip(i[same].tolist(), j[same].tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(x) for x in range(n)], dtype=np.int64)
    _, labels = np.unique(roots, return_inverse=True)
    return labels.astype(np.int64)


def _choose_k(total: float, target: int, lower: int, upper: int) -> int:
    """k ≈ total / target, adjusted into [⌈total/upper⌉, ⌊total/lower⌋] when that is not empty."""
    k = max(1, round(total / target))
    lo = max(1, math.ceil(total / upper))
    hi = math.floor(total / lower) if lower > 0 else k
    if lo <= hi:
        k = min(max(k, lo), hi)
    return max(1, k)


def _metis_parts(
    k: int,
    nodes: list[int],
    nbrs: list[dict[int, float]],
    weights: np.ndarray,
    edge_weight: dict[tuple[int, int], int],
    seed: int,
) -> np.ndarray | None:
    """METIS k-way contiguous partition of a connected subgraph; None when pymetis is missing."""
    if pymetis is None:
        return None
    pos = {u: n for n, u in enumerate(nodes)}
    xadj = [0]
    adjncy: list[int] = []
    eweights: list[int] = []
    for u in nodes:
        for v in sorted(nbrs[u]):
            if v in pos:
                adjncy.append(pos[v])
                eweights.append(edge_weight[(min(u, v), max(u, v))])
        xadj.append(len(adjncy))
    vweights = [int(weights[u]) for u in nodes]
    options = pymetis.Options(contig=1, seed=int(seed))
    try:
        if hasattr(pymetis, "CSRAdjacency"):  # pymetis ≥ 2025: xadj/adjncy are deprecated
            graph: dict[str, Any] = {"adjacency": pymetis.CSRAdjacency(xadj, adjncy)}
        else:  # pragma: no cover - older pymetis
            graph = {"xadj": xadj, "adjncy": adjncy}
        _, parts = pymetis.part_graph(
            k, **graph, vweights=vweights, eweights=eweights, options=options
        )
    except Exception as exc:  # METIS refuses some inputs: fall back, never fail
        logger.warning("METIS failed (%s); using recursive bisection", exc)
        return None
    return np.asarray(parts, dtype=np.int64)


def _bisect_parts(
    k: int, nodes: list[int], nbrs: list[dict[int, float]], weights: np.ndarray, xy: np.ndarray
) -> np.ndarray:
    """Recursive graph-growing bisection into k contiguous parts (the fallback without METIS)."""
    labels = dict.fromkeys(nodes, 0)
    stack: list[tuple[list[int], int, int]] = [(list(nodes), k, 0)]
    while stack:
        part, kk, offset = stack.pop()
        if kk <= 1 or len(part) <= 1:
            for u in part:
                labels[u] = offset
            continue
        k1 = kk // 2
        inside = set(part)
        total = float(sum(weights[u] for u in part))
        goal = total * k1 / kk
        pts = xy[part]
        axis = int(np.argmax(pts.max(axis=0) - pts.min(axis=0)))
        key = {u: (float(xy[u, axis]), float(xy[u, 1 - axis]), u) for u in part}
        start = min(part, key=key.__getitem__)
        grown = {start}
        acc = float(weights[start])
        frontier = [(key[v], v) for v in nbrs[start] if v in inside]
        heapq.heapify(frontier)
        while frontier and acc < goal and len(grown) < len(part) - 1:
            _, v = heapq.heappop(frontier)
            if v in grown:
                continue
            grown.add(v)
            acc += float(weights[v])
            for x in nbrs[v]:
                if x in inside and x not in grown:
                    heapq.heappush(frontier, (key[x], x))
        rest = [u for u in part if u not in grown]
        comps = _components(rest, nbrs)
        if len(comps) > 1:  # keep the heaviest remainder; enclosed pockets join the grown side
            comps.sort(key=lambda c: (-sum(weights[u] for u in c), -len(c), c[0]))
            for c in comps[1:]:
                grown.update(c)
            rest = comps[0]
        stack.append((sorted(grown), k1, offset))
        stack.append((sorted(rest), kk - k1, offset + k1))
    return np.array([labels[u] for u in nodes], dtype=np.int64)


class _Cells:
    """Mutable assignment of graph nodes to cells, with contiguity-preserving local moves."""

    def __init__(
        self, label: np.ndarray, nbrs: list[dict[int, float]], weights: np.ndarray, band: tuple
    ) -> None:
        self.label = [int(v) for v in label]
        self.nbrs = nbrs
        self.w = [int(v) for v in weights]
        self.lower, self.upper = band
        self.members: dict[int, set[int]] = defaultdict(set)
        for u, c in enumerate(self.label):
            self.members[c].add(u)
        self.h: dict[int, int] = {c: sum(self.w[u] for u in m) for c, m in self.members.items()}
        self.next_id = max(self.members, default=-1) + 1

    def viol(self, x: int) -> int:
        """How far a household count lies outside the band."""
        return max(0, self.lower - x) + max(0, x - self.upper)

    def cells(self) -> list[int]:
        """Current cell ids, sorted."""
        return sorted(c for c, m in self.members.items() if m)

    def can_remove(self, u: int) -> bool:
        """Whether the node's cell stays non-empty and contiguous without it."""
        cell = self.members[self.label[u]]
        if len(cell) <= 1:
            return False
        inner = [v for v in self.nbrs[u] if v in cell]
        if len(inner) <= 1:
            return bool(inner)
        seen = {inner[0]}
        queue = deque([inner[0]])
        while queue:
            x = queue.popleft()
            for y in self.nbrs[x]:
                if y != u and y in cell and y not in seen:
                    seen.add(y)
                    queue.append(y)
        return len(seen) == len(cell) - 1

    def move(self, u: int, cell: int) -> None:
        """Move node u into ``cell``."""
        old = self.label[u]
        self.members[old].discard(u)
        self.h[old] -= self.w[u]
        if not self.members[old]:
            del self.members[old]
            del self.h[old]
        self.label[u] = cell
        self.members[cell].add(u)
        self.h[cell] = self.h.get(cell, 0) + self.w[u]

    def shared(self, u: int) -> dict[int, float]:
        """Boundary length between node u and each cell it touches (its own included)."""
        out: dict[int, float] = defaultdict(float)
        for v, ln in self.nbrs[u].items():
            out[self.label[v]] += ln
        return out

    def _moves_out(self, a: int) -> list[tuple[int, int, float]]:
        """(node, to cell, cut gain) for every node of cell a on its boundary."""
        out = []
        for u in sorted(self.members[a]):
            shared = self.shared(u)
            own = shared.get(a, 0.0)
            for b, ln in shared.items():
                if b != a:
                    out.append((u, b, ln - own))
        return out

    def _moves_in(self, a: int) -> list[tuple[int, int, float]]:
        """(node, to cell a, cut gain) for every node of another cell touching cell a."""
        seen: set[int] = set()
        for u in self.members[a]:
            seen.update(v for v in self.nbrs[u] if self.label[v] != a)
        out = []
        for v in sorted(seen):
            shared = self.shared(v)
            out.append((v, a, shared.get(a, 0.0) - shared.get(self.label[v], 0.0)))
        return out

    def balance_pass(self) -> bool:
        """One round of single-node moves that lower the total band violation."""
        changed = False
        order = sorted(self.cells(), key=lambda c: (-self.viol(self.h[c]), c))
        for a in order:
            if a not in self.members or self.viol(self.h[a]) == 0:
                continue
            moves = self._moves_out(a) if self.h[a] > self.upper else self._moves_in(a)
            scored = []
            for u, b, gain in moves:
                src, wu = self.label[u], self.w[u]
                if wu == 0:
                    continue
                before = self.viol(self.h[src]) + self.viol(self.h[b])
                after = self.viol(self.h[src] - wu) + self.viol(self.h[b] + wu)
                if after < before:
                    scored.append((after - before, -gain, u, b))
            for _, _, u, b in sorted(scored):
                if self.can_remove(u):
                    self.move(u, b)
                    changed = True
                    break
        return changed

    def merge_pass(self) -> bool:
        """Merge an under-band cell into a neighbour where the pair's violation drops."""
        changed = False
        for a in self.cells():
            if a not in self.members or self.h[a] >= self.lower:
                continue
            touching: dict[int, float] = defaultdict(float)
            for u in self.members[a]:
                for v, ln in self.nbrs[u].items():
                    if self.label[v] != a:
                        touching[self.label[v]] += ln
            best = None
            for b, ln in touching.items():
                before = self.viol(self.h[a]) + self.viol(self.h[b])
                after = self.viol(self.h[a] + self.h[b])
                if after < before:
                    key = (after - before, -ln, b)
                    best = key if best is None or key < best else best
            if best is not None:
                b = best[2]
                for u in sorted(self.members[a]):
                    self.move(u, b)
                changed = True
        return changed

    def split_pass(self, xy: np.ndarray, seed: int) -> bool:
        """Bisect an over-band cell of several units where both halves lower the violation."""
        changed = False
        for a in self.cells():
            if a not in self.members or self.h[a] <= self.upper:
                continue
            nodes = sorted(self.members[a])
            if sum(1 for u in nodes if self.w[u] > 0) < 2:
                continue
            k = max(2, math.ceil(self.h[a] / self.upper))
            ew = {
                (min(u, v), max(u, v)): max(1, round(ln))
                for u in nodes
                for v, ln in self.nbrs[u].items()
            }
            weights = np.asarray(self.w)
            parts = _metis_parts(k, nodes, self.nbrs, weights, ew, seed)
            if parts is None:
                parts = _bisect_parts(k, nodes, self.nbrs, weights, xy)
            sums = np.bincount(parts, weights=[self.w[u] for u in nodes])
            if self.viol(self.h[a]) <= sum(self.viol(int(s)) for s in sums):
                continue
            groups = [[u for u, p in zip(nodes, parts, strict=True) if p == q] for q in set(parts)]
            groups.sort(key=lambda g: g[0])
            if any(len(_components(g, self.nbrs)) != 1 for g in groups):
                continue
            for g in groups[1:]:
                new = self.next_id
                self.next_id += 1
                for u in g:
                    self.move(u, new)
            changed = True
        return changed

    def _groups_toward(self, donor: int, receiver: int, size: int) -> list[tuple[int, ...]]:
        """Connected groups of up to ``size`` nodes of ``donor`` that touch ``receiver``."""
        inside = self.members[donor]
        seeds = sorted(u for u in inside if any(self.label[v] == receiver for v in self.nbrs[u]))
        found: set[tuple[int, ...]] = {(u,) for u in seeds}
        frontier = set(found)
        for _ in range(size - 1):
            grown: set[tuple[int, ...]] = set()
            for g in frontier:
                for u in g:
                    for v in self.nbrs[u]:
                        if v in inside and v not in g:
                            grown.add(tuple(sorted((*g, v))))
                if len(grown) > _MAX_GROUPS:
                    break
            found |= grown
            frontier = grown
        return sorted(found)

    def _stays_whole(self, cell: int, leaving: Collection[int], joining: Collection[int]) -> bool:
        """Whether ``cell`` stays non-empty and contiguous when nodes leave and join it."""
        after = (self.members[cell] - set(leaving)) | set(joining)
        return bool(after) and len(_components(sorted(after), self.nbrs)) == 1

    def group_pass(self, size: int = 3) -> bool:
        """For each cell outside the band: the best move of a connected group of up to ``size``
        nodes (an estate with the empty blocks beside it) to or from a neighbouring cell, or
        swap of one node for one, that lowers the pair's band violation and keeps both
        contiguous. Single moves cannot carry a group across; this pass can."""
        changed = False
        for a in self.cells():
            if a not in self.members or self.viol(self.h[a]) == 0:
                continue
            touching = sorted({self.label[v] for u in self.members[a] for v in self.nbrs[u]} - {a})
            best: tuple | None = None
            for b in touching:
                before = self.viol(self.h[a]) + self.viol(self.h[b])
                for donor, receiver in ((a, b), (b, a)):
                    for group in self._groups_toward(donor, receiver, size):
                        w = sum(self.w[u] for u in group)
                        if w == 0 or len(group) == len(self.members[donor]):
                            continue
                        after = self.viol(self.h[donor] - w) + self.viol(self.h[receiver] + w)
                        key = (after - before, len(group), group, receiver)
                        if (
                            after < before
                            and (best is None or key < best[0])
                            and self._stays_whole(donor, group, ())
                        ):
                            best = (key, [(u, receiver) for u in group])
                xs = [u for u in self.members[a] if any(self.label[v] == b for v in self.nbrs[u])]
                ys = [u for u in self.members[b] if any(self.label[v] == a for v in self.nbrs[u])]
                for x in sorted(xs):
                    for y in sorted(ys):
                        d = self.w[y] - self.w[x]
                        after = self.viol(self.h[a] + d) + self.viol(self.h[b] - d)
                        key = (after - before, 2, (x, y), b)
                        if (
                            after < before
                            and (best is None or key < best[0])
                            and self._stays_whole(a, [x], [y])
                            and self._stays_whole(b, [y], [x])
                        ):
                            best = (key, [(x, b), (y, a)])
            if best is not None:
                for u, cell in best[1]:
                    self.move(u, cell)
                changed = True
        return changed

    def compact_pass(self) -> int:
        """Moves of boundary nodes that shorten the cells' shared boundary without hurting balance."""
        moved = 0
        for u in range(len(self.label)):
            a = self.label[u]
            shared = self.shared(u)
            own = shared.get(a, 0.0)
            best = None
            for b, ln in shared.items():
                gain = ln - own
                if b == a or gain <= _MIN_COMPACT_GAIN_M:
                    continue
                wu = self.w[u]
                before = self.viol(self.h[a]) + self.viol(self.h[b])
                after = self.viol(self.h[a] - wu) + self.viol(self.h[b] + wu)
                if after > before:
                    continue
                key = (-gain, b)
                best = key if best is None or key < best else best
            if best is not None and self.can_remove(u):
                self.move(u, best[1])
                moved += 1
        return moved

    def repair(self) -> None:
        """Make every cell contiguous: stray pieces join the neighbour they share most with."""
        for _ in range(len(self.label) + 1):
            changed = False
            for a in self.cells():
                comps = _components(sorted(self.members[a]), self.nbrs)
                if len(comps) == 1:
                    continue
                comps.sort(key=lambda c: (-sum(self.w[u] for u in c), -len(c), c[0]))
                for comp in comps[1:]:
                    inside = set(comp)
                    touching: dict[int, float] = defaultdict(float)
                    for u in comp:
                        for v, ln in self.nbrs[u].items():
                            if v not in inside and self.label[v] != a:
                                touching[self.label[v]] += ln
                    if touching:
                        b = max(touching, key=lambda c: (touching[c], -c))
                    else:
                        b = self.next_id
                        self.next_id += 1
                    for u in comp:
                        self.move(u, b)
                    changed = True
            if not changed:
                return


@dataclass
class _Partition:
    """Node → cell labels, and one node of each detached piece too small for the band."""

    label: np.ndarray
    isolated: list[int]


def _partition_graph(
    nbrs: list[dict[int, float]],
    weights: np.ndarray,
    edge_weight: dict[tuple[int, int], int],
    xy: np.ndarray,
    target: int,
    band: tuple[int, int],
    seed: int,
) -> _Partition:
    """Cells of the node graph: METIS per connected piece, then contiguity and local moves."""
    lower, upper = band
    n = len(weights)
    label = np.full(n, -1, dtype=np.int64)
    next_cell = 0
    big = np.flatnonzero(weights > upper)
    for u in big:  # a unit over the band on its own (one building) is a cell of its own
        label[u] = next_cell
        next_cell += 1
    rest = np.flatnonzero(weights <= upper)
    orphans: list[list[int]] = []
    isolated_nodes: list[list[int]] = []
    for comp in _components(rest, nbrs):
        total = float(weights[comp].sum())
        members = set(comp)
        touches_other = any(v not in members for u in comp for v in nbrs[u])
        if total < lower and touches_other:
            orphans.append(comp)  # too few households alone: joins a neighbouring cell below
            continue
        if total < lower:
            isolated_nodes.append(comp)
        k = min(_choose_k(total, target, lower, upper), len(comp))
        if k <= 1:
            parts = np.zeros(len(comp), dtype=np.int64)
        else:
            parts = _metis_parts(k, comp, nbrs, weights, edge_weight, seed)
            if parts is None:
                parts = _bisect_parts(k, comp, nbrs, weights, xy)
        _, dense = np.unique(parts, return_inverse=True)
        label[comp] = next_cell + dense
        next_cell += int(dense.max()) + 1
    for _ in range(len(orphans) + 1):  # orphans join the neighbour they share most with
        pending = []
        for comp in orphans:
            touching: dict[int, float] = defaultdict(float)
            for u in comp:
                for v, ln in nbrs[u].items():
                    if label[v] >= 0:
                        touching[int(label[v])] += ln
            if touching:
                label[comp] = max(touching, key=lambda c: (touching[c], -c))
            else:
                pending.append(comp)
        if len(pending) == len(orphans):
            for comp in pending:  # only other orphans around: a cell of their own
                label[comp] = next_cell
                next_cell += 1
            break
        orphans = pending
        if not orphans:
            break

    label = _refine(label, nbrs, weights, xy, band, seed)
    return _Partition(label, [c[0] for c in isolated_nodes])


def _refine(
    label: np.ndarray,
    nbrs: list[dict[int, float]],
    weights: np.ndarray,
    xy: np.ndarray,
    band: tuple[int, int],
    seed: int,
    *,
    compact: bool = True,
) -> np.ndarray:
    """Contiguity repair, then balance moves (single moves, merges, splits), then compactness."""
    cells = _Cells(label, nbrs, weights, band)
    cells.repair()
    for _ in range(50):
        progress = False
        while cells.balance_pass():
            progress = True
        if cells.merge_pass():
            progress = True
        if cells.split_pass(xy, seed):
            progress = True
        if not progress and cells.group_pass():
            progress = True
        if not progress:
            break
    if compact:
        for _ in range(30):
            if not cells.compact_pass():
                break
        for _ in range(50):
            while cells.balance_pass():
                pass
            if not cells.group_pass():
                break
    return np.asarray(cells.label, dtype=np.int64)


# ============================================================================= proposal =====


def _check_band(target: int, band: tuple[int, int]) -> tuple[int, int]:
    """The band as (lower, upper) ints around the target."""
    try:
        lower, upper = (int(v) for v in band)
    except (TypeError, ValueError) as exc:
        raise GeodataError(
            f"band must be two household counts (lower, upper), not {band!r}"
        ) from exc
    if not 0 <= lower <= upper or upper <= 0:
        raise GeodataError(f"band must satisfy 0 ≤ lower ≤ upper and upper > 0, not {band!r}")
    if not (lower <= target <= upper and target > 0):
        raise GeodataError(
            f"target {target} must be positive and lie inside the band {lower}–{upper}"
        )
    return lower, upper


def _building_inputs(
    buildings: gpd.GeoDataFrame, households_column: str, estate_column: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Valid footprints (EPSG:4326), households (int) and estate labels (None where missing)."""
    if not isinstance(buildings, gpd.GeoDataFrame):
        raise GeodataError("buildings must be a GeoDataFrame")
    if len(buildings) == 0:
        raise GeodataError("there are no buildings to partition")
    gdf = _in_storage_crs(buildings)
    geoms = gdf.geometry.to_numpy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        raise GeodataError(
            f"{int(missing.sum())} buildings have no geometry (first: index "
            f"{gdf.index[np.flatnonzero(missing)[0]]!r}); repair or drop them first"
        )
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    if households_column not in gdf.columns:
        raise GeodataError(
            f"buildings have no {households_column!r} column; estimate one with "
            "geodata.estimate.estimate_households"
        )
    values = pd.to_numeric(gdf[households_column], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    nan = np.isnan(values)
    if nan.any():
        logger.warning("%d buildings have no household count; counted as 0", int(nan.sum()))
        values = np.where(nan, 0.0, values)
    if (values < 0).any():
        raise GeodataError(f"household counts must not be negative ({households_column!r})")
    households = np.floor(values + 0.5).astype(np.int64)
    if estate_column is None:
        estates = np.full(len(gdf), None, dtype=object)
    else:
        if estate_column not in gdf.columns:
            raise GeodataError(f"buildings have no estate column {estate_column!r}")
        col = gdf[estate_column].astype(object)
        estates = np.array(
            [None if pd.isna(v) or str(v).strip() == "" else v for v in col], dtype=object
        )
    return geoms, households, estates


def _building_ties(
    bi: np.ndarray, unit_of_pair: np.ndarray, share: np.ndarray, nb: int
) -> list[tuple[int, int]]:
    """Unit pairs that must share a cell: both hold ≥ 10 % of one building's footprint."""
    frame = pd.DataFrame({"b": bi, "u": unit_of_pair, "s": share})
    per = frame.groupby(["b", "u"], sort=True)["s"].sum().reset_index()
    total = per.groupby("b")["s"].transform("sum")
    big = per[(per["s"] >= _TIE_SHARE * total) & (total > 0)]
    counts = big.groupby("b")["u"].transform("size")
    big = big[counts > 1].sort_values(["b", "s", "u"], ascending=[True, False, True])
    ties = []
    for _, units in big.groupby("b", sort=True)["u"]:
        first, *others = units.tolist()
        ties.extend((first, u) for u in others)
    return ties


def _contract(
    unit_of_building: np.ndarray,
    households: np.ndarray,
    estates: np.ndarray,
    unit_hh: np.ndarray,
    ui: np.ndarray,
    uj: np.ndarray,
    ties: list[tuple[int, int]],
    upper: int,
) -> tuple[np.ndarray, set[tuple[int, int]]]:
    """Node of each unit after joining units that share a building, then those of an estate.

    Adjacent units holding big parts of one building join (so the building stays in one cell),
    and adjacent units of an estate that fits the band join, as long as the joined node stays
    within the band's upper bound. Also returns the unit edges inside an estate (for a METIS
    bonus where joining stopped).
    """
    n = len(unit_hh)
    parent = list(range(n))
    weight = unit_hh.astype(np.int64).tolist()

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    adjacent = set(zip(ui.tolist(), uj.tolist(), strict=True))
    for a, b in ties:
        if (min(a, b), max(a, b)) in adjacent:
            ra, rb = find(a), find(b)
            if ra != rb and weight[ra] + weight[rb] <= upper:
                parent[rb] = ra
                weight[ra] += weight[rb]

    has = np.array([e is not None for e in estates], dtype=bool)
    estate_edges: set[tuple[int, int]] = set()
    if not has.any():
        roots = np.array([find(u) for u in range(n)], dtype=np.int64)
        return np.unique(roots, return_inverse=True)[1].astype(np.int64), estate_edges
    frame = pd.DataFrame(
        {
            "estate": [repr(e) for e in estates[has]],
            "unit": unit_of_building[has],
            "hh": households[has],
        }
    )
    totals = frame.groupby("estate")["hh"].sum()
    units_of = frame.groupby("estate")["unit"].agg(lambda s: sorted(set(s.tolist())))
    edges_by_unit: dict[int, list[int]] = defaultdict(list)
    for a, b in zip(ui.tolist(), uj.tolist(), strict=True):
        edges_by_unit[a].append(b)
        edges_by_unit[b].append(a)
    order = sorted(totals.index, key=lambda e: (-int(totals[e]), e))
    for estate in order:
        units = units_of[estate]
        if len(units) < 2:
            continue
        members = set(units)
        pairs = sorted((a, b) for a in units for b in edges_by_unit[a] if b in members and a < b)
        estate_edges.update(pairs)
        if totals[estate] > upper:
            continue
        for a, b in pairs:
            ra, rb = find(a), find(b)
            if ra != rb and weight[ra] + weight[rb] <= upper:
                parent[rb] = ra
                weight[ra] += weight[rb]
    roots = np.array([find(u) for u in range(n)], dtype=np.int64)
    _, node = np.unique(roots, return_inverse=True)
    return node.astype(np.int64), estate_edges


def propose_partition(
    area: Any,
    buildings: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None = None,
    *,
    households_column: str = "households",
    estate_column: str | None = None,
    target: int = 300,
    band: tuple[int, int] = (200, 500),
    seed: int = 0,
    water: Any = None,
    current: Any = None,
) -> Proposal:
    """Propose cells that tile the area, follow roads, keep buildings whole and land in the band.

    ``area`` is the community (a Polygon/MultiPolygon, or a GeoSeries/GeoDataFrame to union) in
    EPSG:4326; ``buildings`` hold footprints and a ``households_column`` (estimate it with
    :func:`geodata.estimate.estimate_households`); ``roads`` are OSM-style lines (``highway``,
    ``tunnel``, ``bridge`` tags are read when present). With ``estate_column`` the buildings of
    one estate (小区) stay in one cell where its households fit the band. Cells number
    ``round(households / target)`` or so, adjusted so the ``band`` (lower, upper) is reachable;
    ``seed`` makes METIS's choices repeatable (the same inputs and seed give the same cells).
    ``water`` (polygons, or OSM features: see :func:`water_areas`) bounds blocks like a road,
    and no cell reaches across it. With ``current`` (today's cells: a GeoSeries or
    GeoDataFrame in EPSG:4326) the proposal starts from them and only moves what the band and
    contiguity require (stickiness), instead of partitioning afresh. Cells outside the band
    say why in ``reason``. Raises GeodataError for unusable input.
    """
    lower, upper = _check_band(target, band)
    area = _as_area(area)
    geoms, households, estates = _building_inputs(buildings, households_column, estate_column)
    nb = len(geoms)
    frame = _Frame.around(area)
    warnings: list[str] = []

    # 1. road blocks, and each building's block (largest share of its footprint)
    lines = _barrier_lines(roads)
    faces, face_block, lines, face_wet = _blocks(
        area, lines, 200.0, frame, geoms, water_areas(water)
    )
    n_blocks = int(face_block.max()) + 1
    bi, fi, share = _overlay_pairs(geoms, faces)
    block_of_building = _largest(bi, face_block[fi], share, nb)
    outside = np.setdiff1d(np.arange(nb), bi[share > 0])
    if len(outside):
        message = f"{len(outside)} buildings lie outside the area; each joins the nearest cell"
        warnings.append(message)
        logger.warning(message)
    block_hh = np.bincount(block_of_building, weights=households, minlength=n_blocks)

    # 2. split the blocks that alone exceed the band, between groups of their buildings
    split_lines: list[np.ndarray] = []
    regions: dict[int, _Sites] = {}
    block_geoms: np.ndarray | None = None
    reaching = share > 0
    for blk in np.flatnonzero(block_hh > upper):
        members = np.flatnonzero(block_of_building == blk)
        if (households[members] > 0).sum() < 2:
            continue
        if block_geoms is None:
            block_geoms = _dissolve(faces, face_block, n_blocks)
        others = np.unique(bi[reaching & (face_block[fi] == blk)])
        others = others[block_of_building[others] != blk]
        result = _split_block(
            block_geoms[blk],
            geoms[members],
            households[members],
            estates[members],
            target,
            upper,
            frame,
            geoms[others],
        )
        if result is not None:
            split_lines.append(result[0])
            regions[int(blk)] = result[1]

    # 3. atoms: one polygonization of roads, boundary and split lines; units = block parts
    if split_lines:
        atoms = _faces(area, np.concatenate([lines, *split_lines]))
        points = shapely.point_on_surface(atoms)
        atom_face = _locate(points, faces)
        atom_block, atom_wet = face_block[atom_face], face_wet[atom_face]
        atom_group = np.zeros(len(atoms), dtype=np.int64)
        for blk, sites in regions.items():
            idx = np.flatnonzero(atom_block == blk)
            if len(idx):
                atom_group[idx] = sites.label(frame.fwd(atoms[idx]))
    else:
        atoms = faces
        atom_block, atom_wet = face_block, face_wet
        atom_group = np.zeros(len(atoms), dtype=np.int64)
    atoms_local = frame.fwd(atoms)
    ai, aj, alen = _adjacency(atoms_local)
    if atom_wet.any():  # water touches its own block only: no cell reaches across it
        keep = ~((atom_wet[ai] | atom_wet[aj]) & (atom_block[ai] != atom_block[aj]))
        ai, aj, alen = ai[keep], aj[keep], alen[keep]
    # a unit is a connected run of atoms of one block part (a group's region may be in pieces)
    _, key = np.unique(np.column_stack([atom_block, atom_group]), axis=0, return_inverse=True)
    atom_unit = _connected_labels(key.reshape(-1), ai, aj)
    n_units = int(atom_unit.max()) + 1
    ui, uj, ulen = _aggregate_edges(atom_unit, ai, aj, alen)
    bi, ti, share = _overlay_pairs(geoms, atoms)
    unit_of_building = _largest(bi, atom_unit[ti], share, nb)
    unit_hh = np.bincount(unit_of_building, weights=households, minlength=n_units).astype(np.int64)
    logger.info(
        "partition: %d blocks (%d split), %d atoms, %d units, %d households",
        n_blocks,
        len(regions),
        len(atoms),
        n_units,
        int(households.sum()),
    )

    # 4. estates that fit stay whole: contract their units; then partition the node graph
    ties = _building_ties(bi, atom_unit[ti], share, nb)
    unit_node, estate_edges = _contract(
        unit_of_building, households, estates, unit_hh, ui, uj, ties, upper
    )
    n_nodes = int(unit_node.max()) + 1
    node_hh = np.bincount(unit_node, weights=unit_hh, minlength=n_nodes).astype(np.int64)
    bonus = np.array(
        [(a, b) in estate_edges for a, b in zip(ui.tolist(), uj.tolist(), strict=True)], bool
    )
    ni, nj, nlen = _aggregate_edges(unit_node, ui, uj, ulen)
    _, _, nbonus = _aggregate_edges(unit_node, ui, uj, bonus.astype(float))
    nbrs = _neighbours(n_nodes, ni, nj, nlen)
    edge_weight = {
        (a, b): max(1, round(ln)) + (_ESTATE_EDGE_BONUS if bo > 0 else 0)
        for a, b, ln, bo in zip(
            ni.tolist(), nj.tolist(), nlen.tolist(), nbonus.tolist(), strict=True
        )
    }
    atom_area = shapely.area(atoms_local)
    atom_xy = shapely.get_coordinates(shapely.centroid(atoms_local))
    node_of_atom = unit_node[atom_unit]
    node_area = np.bincount(node_of_atom, weights=atom_area, minlength=n_nodes)
    node_xy = (
        np.column_stack(
            [
                np.bincount(node_of_atom, weights=atom_xy[:, d] * atom_area, minlength=n_nodes)
                for d in (0, 1)
            ]
        )
        / np.maximum(node_area, 1e-12)[:, None]
    )
    if current is None:
        part = _partition_graph(nbrs, node_hh, edge_weight, node_xy, target, (lower, upper), seed)
    else:
        start = _current_labels(current, atoms, atom_area, node_of_atom, n_nodes)
        part = _Partition(
            _refine(start, nbrs, node_hh, node_xy, (lower, upper), seed, compact=False),
            [c[0] for c in _components(range(n_nodes), nbrs) if node_hh[c].sum() < lower],
        )
    label = part.label
    # A building goes to the cell holding the largest share of its footprint, which for a
    # building over several nodes depends on the cells: re-weigh the nodes and rebalance.
    node_of_pair = node_of_atom[ti]
    for _ in range(5):
        cell_of_pair = label[node_of_pair]
        winner = _largest(bi, cell_of_pair, share, nb)
        mine = cell_of_pair == winner[bi]
        weighed = _largest(bi[mine], node_of_pair[mine], share[mine], nb)
        effective = np.bincount(weighed, weights=households, minlength=n_nodes).astype(np.int64)
        if np.array_equal(effective, node_hh):
            break
        node_hh = effective
        label = _refine(label, nbrs, node_hh, node_xy, (lower, upper), seed, compact=False)

    # 5. cells: dissolve atoms; buildings to the cell holding the largest share; figures
    _, cell_of_node = np.unique(label, return_inverse=True)
    cell_of_atom = cell_of_node[node_of_atom]
    n_cells = int(cell_of_atom.max()) + 1
    cell_geoms = _dissolve(atoms, cell_of_atom, n_cells)
    order = reading_order(cell_geoms)
    rank = np.empty(n_cells, dtype=np.int64)
    rank[order] = np.arange(n_cells)
    cell_of_building = rank[_largest(bi, cell_of_atom[ti], share, nb)]
    cell_geoms = cell_geoms[order]
    isolated = {int(rank[cell_of_node[u]]) for u in part.isolated}
    whole_block = {int(rank[cell_of_node[u]]) for u in np.flatnonzero(node_hh > upper)}
    cells = _cell_table(
        cell_geoms,
        cell_of_building,
        households,
        (lower, upper),
        {"isolated": isolated, "block": whole_block},
        int(households.sum()),
    )
    multi = int((cells.geometry.geom_type != "Polygon").sum())
    if multi:  # pragma: no cover - contiguity on shared edges makes each cell one polygon
        logger.warning("%d cells are not a single polygon", multi)
    building_cell = pd.Series(cell_of_building, index=buildings.index, name="cell_index")
    proposal = Proposal(cells, building_cell, int(target), (lower, upper), warnings)
    logger.info("proposal: %s", {k: v for k, v in proposal.summary().items() if k != "band"})
    return proposal


def _current_labels(
    current: Any, atoms: np.ndarray, atom_area: np.ndarray, node_of_atom: np.ndarray, n: int
) -> np.ndarray:
    """Each node's cell today: the current cell holding most of its area (nearest if none)."""
    if isinstance(current, gpd.GeoDataFrame | gpd.GeoSeries):
        series = _in_storage_crs(
            current.geometry if isinstance(current, gpd.GeoDataFrame) else current
        )
        geoms = series.to_numpy()
    else:
        geoms = np.asarray(current, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if not len(geoms):
        raise GeodataError("the current cells have no geometry")
    cell_of_atom = _locate(shapely.point_on_surface(atoms), shapely.make_valid(geoms))
    return _largest(node_of_atom, cell_of_atom, atom_area, n)


def _cell_table(
    geoms: np.ndarray,
    cell_of_building: np.ndarray,
    households: np.ndarray,
    band: tuple[int, int],
    known: dict[str, set[int]],
    total: int,
) -> gpd.GeoDataFrame:
    """The cells' figures: households, buildings, area, Polsby-Popper, band check and reason.

    ``known`` names cells already known to be unfixable: "isolated" (a detached part of the area
    with too few households) and "block" (one unsplittable unit over the band).
    """
    lower, upper = band
    n = len(geoms)
    hh = np.bincount(cell_of_building, weights=households, minlength=n).astype(np.int64)
    count = np.bincount(cell_of_building, minlength=n).astype(np.int64)
    biggest = np.zeros(n, dtype=np.int64)
    np.maximum.at(biggest, cell_of_building, households)
    series = gpd.GeoSeries(geoms, crs=STORAGE_CRS)
    metric = series.to_crs(metric_crs(series))
    area = metric.area.to_numpy()
    perimeter = metric.length.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(perimeter > 0, 4.0 * math.pi * area / perimeter**2, 0.0)
    in_band = (hh >= lower) & (hh <= upper)
    reasons: list[str | None] = []
    for c in range(n):
        if in_band[c]:
            reasons.append(None)
        elif total < lower:
            reasons.append(REASONS["total"])
        elif hh[c] > upper and biggest[c] > upper:
            reasons.append(REASONS["building"])
        elif hh[c] > upper and c in known["block"]:
            reasons.append(REASONS["block"])
        elif c in known["isolated"]:
            reasons.append(REASONS["isolated"])
        elif hh[c] == 0:
            reasons.append(REASONS["empty"])
        elif hh[c] > upper:
            reasons.append(REASONS["over"])
        else:
            reasons.append(REASONS["under"])
    return gpd.GeoDataFrame(
        {
            "cell_index": np.arange(n, dtype=np.int64),
            "households": hh,
            "buildings": count,
            "area_m2": area,
            "polsby_popper": pp,
            "in_band": in_band,
            "reason": pd.Series(reasons, dtype=object),
        },
        geometry=series,
    )
