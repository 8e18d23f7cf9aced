"""Coverage checks: do a community's cells tile it (no gaps, overlaps, outside parts, slivers)?

Pure: GeoDataFrames and shapely geometries in EPSG:4326 in, a :class:`CoverageReport` out.
Every measurement is made in the local metric CRS (:func:`geodata.crs.metric_crs`); the
overlays (gaps, overlaps, parts outside) are made in EPSG:4326, where the cells were drawn:
projected, a long straight edge bends away from a chord (≈ 0.1 m over 3 km at 32° N), which
would show as false gaps. ``min_area_m2`` drops pieces of that area or less.

How thin pieces are ignored (``tolerance_m``): a gap, overlap or outside piece is kept only
when it is at least ``tolerance_m`` wide somewhere, i.e. when an inward buffer of
``tolerance_m / 2`` (a morphological erosion) leaves something of it. A 0.3 m wide strip
vanishes under a 0.5 m erosion however long it is, while a 2 m × 2 m hole survives; floating
point noise along shared or clipped edges (nanometres wide) is always dropped. The reported
geometry and area are those of the whole piece, not of the eroded remainder.

Fast path: one ``shapely.coverage_invalid_edges`` pass (GEOS ≥ 3.12; it costs the same as
``coverage_is_valid`` and also says where). When no cell has an invalid edge the coverage is
valid (neighbours' edges match, nothing overlaps), so the pairwise work is skipped and the union
is ``coverage_union_all``. Otherwise every overlapping pair contains at least one flagged cell,
so only pairs involving flagged cells (found with an STRtree) are intersected, and the union is
``coverage_union_all`` of the unflagged cells (still a valid coverage) overlaid with the
flagged ones. Gaps are then ``community − union`` and outside parts ``union − community``,
split into pieces, thin pieces dropped; outside pieces are attributed to the cells they touch.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from geodata.crs import STORAGE_CRS, metric_crs
from geodata.errors import GeodataError

__all__ = ["PROBLEM_LABELS", "CoverageReport", "Problem", "clean_coverage", "validate_cells"]

logger = logging.getLogger(__name__)

#: Problem kind → Chinese label, in the order problems are reported.
PROBLEM_LABELS: dict[str, str] = {
    "gap": "空白区域",
    "overlap": "重叠",
    "outside": "超出社区",
    "not_contiguous": "不连续",
    "sliver": "碎片",
    "invalid_geometry": "无效几何",
    "building_unassigned": "楼栋未入格",
    "no_leader": "无格长",
    "households_out_of_band": "户数超出范围",
}
_KIND_ORDER = {kind: i for i, kind in enumerate(PROBLEM_LABELS)}
_POLYGON, _MULTIPOLYGON = 3, 6  # shapely.get_type_id codes
_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    4: "MultiPoint",
    5: "MultiLineString",
    7: "GeometryCollection",
}
_EMPTY = shapely.Polygon()
_LOCATION = re.compile(r"\[\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)")
_MAX_NEIGHBOURS = 5  # cell codes named in a gap's detail
_LOCATED = frozenset({"gap", "overlap", "outside"})  # kinds whose detail says where they lie


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a community's cells, with where to draw it (EPSG:4326)."""

    kind: str
    cells: tuple[str, ...]
    detail: str
    geometry: BaseGeometry | None
    area_m2: float | None = None
    building: str | None = None
    #: a point inside the problem (lon, lat) for gaps, overlaps and parts outside
    location: tuple[float, float] | None = None

    @property
    def label(self) -> str:
        """The Chinese label of the problem's kind."""
        return PROBLEM_LABELS.get(self.kind, self.kind)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready properties of the problem (no geometry)."""
        return {
            "kind": self.kind,
            "label": self.label,
            "cells": list(self.cells),
            "detail": self.detail,
            "area_m2": None if self.area_m2 is None else round(float(self.area_m2), 2),
            "building": self.building,
            "location": None if self.location is None else list(self.location),
        }


@dataclass
class CoverageReport:
    """The problems found in one community's cells, and what was checked."""

    problems: list[Problem] = field(default_factory=list)
    cells_checked: int = 0
    tolerance_m: float = 1.0
    min_area_m2: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing at all was found."""
        return not self.problems

    def counts(self) -> dict[str, int]:
        """Number of problems per kind (every kind of PROBLEM_LABELS, zeros included)."""
        out = dict.fromkeys(PROBLEM_LABELS, 0)
        for problem in self.problems:
            out[problem.kind] = out.get(problem.kind, 0) + 1
        return out

    def to_geojson(self) -> dict[str, Any]:
        """RFC 7946 FeatureCollection of the problems that have a geometry (7 decimals)."""
        located = [p for p in self.problems if p.geometry is not None and not p.geometry.is_empty]
        geoms = np.array([p.geometry for p in located], dtype=object)
        if len(geoms):
            geoms = shapely.orient_polygons(geoms, exterior_cw=False)  # right-hand rule
            geoms = shapely.transform(geoms, lambda xy: np.round(xy, 7))
            texts = shapely.to_geojson(geoms)
        else:
            texts = []
        features = [
            {"type": "Feature", "geometry": json.loads(text), "properties": p.as_dict()}
            for p, text in zip(located, texts, strict=True)
        ]
        return {"type": "FeatureCollection", "features": features}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary: ok, counts, problems (without geometry), cells_checked, tolerance_m."""
        return {
            "ok": self.ok,
            "counts": self.counts(),
            "problems": [p.as_dict() for p in self.problems],
            "cells_checked": self.cells_checked,
            "tolerance_m": self.tolerance_m,
            "min_area_m2": self.min_area_m2,
        }


# -- helpers ------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _transformers(epsg: int) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    """(to metric, back to EPSG:4326) transformers for one metric CRS."""
    forward = pyproj.Transformer.from_crs(STORAGE_CRS, epsg, always_xy=True)
    back = pyproj.Transformer.from_crs(epsg, STORAGE_CRS, always_xy=True)
    return forward, back


def _apply(transformer: pyproj.Transformer, geoms: np.ndarray) -> np.ndarray:
    """Transform an array of geometries (None stays None) with one vectorised call."""

    def func(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, func)


def _polygon_parts(geoms: Any) -> tuple[np.ndarray, np.ndarray]:
    """Non-empty Polygon parts of geometries (recursing into collections), with row indices."""
    arr = np.atleast_1d(np.asarray(geoms, dtype=object))
    parts, index = shapely.get_parts(arr, return_index=True)
    while len(parts):
        nested = shapely.get_type_id(parts) > _POLYGON
        if not nested.any():
            break
        sub, sub_index = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], sub])
        index = np.concatenate([index[~nested], index[nested][sub_index]])
    keep = (shapely.get_type_id(parts) == _POLYGON) & ~shapely.is_empty(parts)
    parts, index = parts[keep], index[keep]
    order = np.argsort(index, kind="stable")
    return parts[order], index[order]


def _thick(parts: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Mask of the polygons at least tolerance_m wide somewhere (they survive erosion by t/2)."""
    if len(parts) == 0:
        return np.zeros(0, dtype=bool)
    if tolerance_m <= 0:
        return shapely.area(parts) > 0
    eroded = shapely.buffer(parts, -tolerance_m / 2.0, quad_segs=2)
    return ~shapely.is_empty(eroded)


def _thick_pieces(
    geoms: Any, tolerance_m: float, min_area_m2: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Polygon parts of geometries wider than the tolerance and above the area, with row indices."""
    parts, index = _polygon_parts(geoms)
    keep = _thick(parts, tolerance_m)
    if min_area_m2 > 0 and len(parts):
        keep &= shapely.area(parts) > min_area_m2
    return parts[keep], index[keep]


def _runs(index: np.ndarray) -> Iterator[tuple[int, slice]]:
    """(row, slice) for each run of equal values in a sorted index array."""
    rows, starts = np.unique(index, return_index=True)
    ends = np.append(starts[1:], len(index))[: len(starts)]
    for row, start, end in zip(rows, starts, ends, strict=True):
        yield int(row), slice(int(start), int(end))


def _grouped(parts: np.ndarray, index: np.ndarray) -> dict[int, tuple[BaseGeometry, float]]:
    """Row → (its parts as one geometry, total area); index must be sorted."""
    areas = shapely.area(parts)
    out: dict[int, tuple[BaseGeometry, float]] = {}
    for row, run in _runs(index):
        geom = parts[run][0] if run.stop - run.start == 1 else shapely.multipolygons(parts[run])
        out[row] = (geom, float(areas[run].sum()))
    return out


def _codes_list(codes: np.ndarray, idx: Any) -> str:
    """Up to a few cell codes, comma separated."""
    names = [str(codes[i]) for i in idx]
    if len(names) > _MAX_NEIGHBOURS:
        names = [*names[:_MAX_NEIGHBOURS], "…"]
    return ", ".join(names)


def _to_storage(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The data in EPSG:4326 (no CRS is taken as EPSG:4326)."""
    if gdf.crs is None:
        return gdf.set_crs(STORAGE_CRS)
    if gdf.crs.equals(STORAGE_CRS, ignore_axis_order=True):
        return gdf
    return gdf.to_crs(STORAGE_CRS)


def _invalid_location(reason: str) -> BaseGeometry | None:
    """The point named in a GEOS validity reason ("Self-intersection[x y]"), if any."""
    match = _LOCATION.search(reason)
    if not match:
        return None
    try:
        return shapely.Point(float(match.group(1)), float(match.group(2)))
    except ValueError:
        return None


@dataclass
class _Collector:
    """Problems gathered during a run; metric geometries are converted back in one call."""

    problems: list[Problem] = field(default_factory=list)
    pending: list[tuple[str, tuple[str, ...], str, BaseGeometry, float | None]] = field(
        default_factory=list
    )

    def add(self, kind: str, cells: tuple[str, ...], detail: str, **kwargs: Any) -> None:
        """A problem whose geometry (if any) is already in EPSG:4326."""
        self.problems.append(Problem(kind, cells, f"{PROBLEM_LABELS[kind]} {detail}", **kwargs))

    def add_metric(
        self,
        kind: str,
        cells: tuple[str, ...],
        detail: str,
        geometry: BaseGeometry,
        area: float | None,
    ) -> None:
        """A problem whose geometry is in the metric CRS."""
        self.pending.append((kind, cells, f"{PROBLEM_LABELS[kind]} {detail}", geometry, area))

    def finish(self, back: pyproj.Transformer) -> list[Problem]:
        """All problems, metric geometries in EPSG:4326, sorted by kind then cells."""
        if self.pending:
            geoms = _apply(back, np.array([p[3] for p in self.pending], dtype=object))
            for (kind, cells, detail, _, area), geom in zip(self.pending, geoms, strict=True):
                location = None
                if kind in _LOCATED and geom is not None and not geom.is_empty:
                    point = shapely.point_on_surface(geom)
                    location = (round(point.x, 7), round(point.y, 7))
                    detail = f"{detail} at ({location[0]:.7f}, {location[1]:.7f})"
                self.problems.append(Problem(kind, cells, detail, geom, area, location=location))
        return sorted(
            self.problems, key=lambda p: (_KIND_ORDER.get(p.kind, 99), p.cells, p.building or "")
        )


# -- the checks ---------------------------------------------------------------------------


def _cell_geometries(geoms: np.ndarray, codes: np.ndarray, out: _Collector) -> np.ndarray:
    """Report missing, invalid or non-polygonal cells; return valid (Multi)Polygons (EPSG:4326).

    Invalid ones are repaired with make_valid ("structure" method) so the other checks still
    see them; a cell with no area left becomes an empty polygon.
    """
    fixed = np.array(geoms, dtype=object)
    missing = shapely.is_missing(fixed) | shapely.is_empty(fixed)
    reported = set(np.flatnonzero(missing).tolist())
    for i in sorted(reported):
        detail = f"invalid geometry: {codes[i]} has no geometry"
        out.add("invalid_geometry", (codes[i],), detail, geometry=None)
        fixed[i] = _EMPTY
    invalid = np.flatnonzero(~missing & ~shapely.is_valid(fixed))
    if len(invalid):
        reasons = shapely.is_valid_reason(fixed[invalid])
        fixed[invalid] = shapely.make_valid(
            fixed[invalid], method="structure", keep_collapsed=False
        )
        for i, reason in zip(invalid, reasons, strict=True):
            where = _invalid_location(str(reason))
            out.add(
                "invalid_geometry",
                (codes[i],),
                f"invalid geometry: {codes[i]}: {reason}",
                geometry=where if where is not None else geoms[i],
            )
        reported.update(invalid.tolist())
    odd = np.flatnonzero(~np.isin(shapely.get_type_id(fixed), (_POLYGON, _MULTIPOLYGON)))
    for i in odd:
        if i not in reported:
            name = _TYPE_NAMES.get(int(shapely.get_type_id(fixed[i])), "geometry")
            detail = f"invalid geometry: {codes[i]} is a {name}, not a polygon"
            out.add("invalid_geometry", (codes[i],), detail, geometry=geoms[i])
        parts, _ = _polygon_parts(fixed[i])
        fixed[i] = shapely.union_all(parts) if len(parts) else _EMPTY
    return fixed


def _check_parts(
    fixed: np.ndarray, cells_m: np.ndarray, codes: np.ndarray, sliver_m2: float, out: _Collector
) -> None:
    """Slivers (parts, or whole cells, under sliver_m2) and cells of several real parts."""
    parts, index = _polygon_parts(cells_m)
    if len(parts) == 0:
        return
    areas = shapely.area(parts)
    small = areas < sliver_m2
    n_main = np.bincount(index[~small], minlength=len(cells_m))
    small_parts, small_areas, small_index = parts[small], areas[small], index[small]
    for i, run in _runs(small_index):
        total = float(small_areas[run].sum())
        if n_main[i] == 0:
            detail = f"sliver: {codes[i]} is only {total:.1f} m² (below {sliver_m2:g} m²)"
            out.add("sliver", (codes[i],), detail, geometry=fixed[i], area_m2=total)
            continue
        count = run.stop - run.start
        sizes = ", ".join(f"{a:.1f}" for a in small_areas[run][:_MAX_NEIGHBOURS])
        detail = (
            f"sliver: {codes[i]} has {count} stray part{'s' if count > 1 else ''} "
            f"of {sizes} m² (below {sliver_m2:g} m²)"
        )
        geom = small_parts[run][0] if count == 1 else shapely.multipolygons(small_parts[run])
        out.add_metric("sliver", (codes[i],), detail, geom, total)
    cell_area = np.bincount(index, weights=areas, minlength=len(cells_m))
    several = ~small & (n_main[index] > 1)
    main_areas, main_index = areas[several], index[several]
    for i, run in _runs(main_index):
        sizes = ", ".join(f"{a:.1f}" for a in sorted(main_areas[run], reverse=True))
        detail = f"not contiguous: {codes[i]} has {n_main[i]} separate parts ({sizes} m²)"
        out.add("not_contiguous", (codes[i],), detail, geometry=fixed[i], area_m2=cell_area[i])


def _check_overlaps(
    cells: np.ndarray,
    codes: np.ndarray,
    tree: shapely.STRtree,
    tolerance_m: float,
    min_area_m2: float,
    forward: pyproj.Transformer,
    out: _Collector,
) -> BaseGeometry:
    """Overlapping pairs beyond the tolerances; returns the union of all cells (EPSG:4326).

    The overlay is made in EPSG:4326, where the cells were drawn (projected, a straight edge
    of many vertices bends away from one of two), and only its pieces are measured in metres.
    """
    has_area = ~shapely.is_empty(cells)
    # One GEOS pass gives both answers: the coverage is valid iff no cell has an invalid edge.
    edges = shapely.coverage_invalid_edges(cells)
    bad = ~shapely.is_empty(edges) & has_area
    if not bad.any():
        logger.debug("coverage is valid: no pairwise overlap check")
        return shapely.coverage_union_all(cells[has_area])
    flagged = np.flatnonzero(bad)
    logger.debug("%d of %d cells have invalid coverage edges", len(flagged), len(cells))
    query, hit = tree.query(tree.geometries[flagged], predicate="intersects")
    a, b = flagged[query], hit
    pairs = np.unique(np.column_stack([np.minimum(a, b), np.maximum(a, b)])[a != b], axis=0)
    if len(pairs):
        inter = _apply(forward, shapely.intersection(cells[pairs[:, 0]], cells[pairs[:, 1]]))
        pieces, index = _thick_pieces(inter, tolerance_m, min_area_m2)
        for k, (geom, area) in _grouped(pieces, index).items():
            pair = tuple(sorted((codes[pairs[k, 0]], codes[pairs[k, 1]])))
            detail = f"overlap between {pair[0]} and {pair[1]}: {area:.2f} m²"
            out.add_metric("overlap", pair, detail, geom, area)
    # The unflagged cells are a valid coverage on their own: union them the fast way (15× faster
    # than union_all on 50 k cells) and overlay only the flagged ones.
    valid_part = shapely.coverage_union_all(cells[has_area & ~bad])
    return shapely.union_all(np.concatenate([[valid_part], cells[flagged]]))


def _check_gaps(
    community: BaseGeometry,
    union: BaseGeometry,
    codes: np.ndarray,
    tree: shapely.STRtree,
    tolerance_m: float,
    min_area_m2: float,
    forward: pyproj.Transformer,
    out: _Collector,
) -> None:
    """Pieces of the community no cell covers, beyond the tolerances (overlay in EPSG:4326)."""
    missing = _apply(forward, np.array([shapely.difference(community, union)], dtype=object))
    pieces, _ = _thick_pieces(missing, tolerance_m, min_area_m2)
    if len(pieces) == 0:
        return
    query, hit = tree.query(pieces, predicate="dwithin", distance=max(tolerance_m, 0.01))
    order = np.lexsort((hit, query))
    query, hit = query[order], hit[order]
    neighbours = {k: hit[run] for k, run in _runs(query)}
    areas = shapely.area(pieces)
    for k, piece in enumerate(pieces):
        near = neighbours.get(k, ())
        where = f" next to {_codes_list(codes, near)}" if len(near) else ""
        detail = f"gap: {areas[k]:.2f} m² not covered by any cell{where}"
        out.add_metric("gap", (), detail, piece, float(areas[k]))


def _check_outside(
    community: BaseGeometry,
    union: BaseGeometry,
    cells: np.ndarray,
    codes: np.ndarray,
    tree: shapely.STRtree,
    tolerance_m: float,
    min_area_m2: float,
    forward: pyproj.Transformer,
    out: _Collector,
) -> None:
    """Parts of cells outside the community, beyond the tolerances (per cell, in EPSG:4326)."""
    beyond = _apply(forward, np.array([shapely.difference(union, community)], dtype=object))
    pieces, _ = _thick_pieces(beyond, tolerance_m, min_area_m2)
    if len(pieces) == 0:
        return
    candidates = np.unique(tree.query(pieces, predicate="intersects")[1])
    diffs = _apply(forward, shapely.difference(cells[candidates], community))
    parts, index = _thick_pieces(diffs, tolerance_m, min_area_m2)
    for k, (geom, area) in _grouped(parts, index).items():
        code = codes[candidates[k]]
        detail = f"outside: {area:.1f} m² of {code} lies outside the community"
        out.add_metric("outside", (code,), detail, geom, area)


def _check_attributes(
    cells: gpd.GeoDataFrame,
    fixed: np.ndarray,
    codes: np.ndarray,
    band: tuple[int, int] | None,
    out: _Collector,
) -> None:
    """Cells without a leader, and cells whose households fall outside the band."""

    def where(i: int) -> BaseGeometry | None:
        return None if shapely.is_empty(fixed[i]) else fixed[i]

    if "has_leader" in cells.columns:
        leader = cells["has_leader"].astype(object).where(cells["has_leader"].notna(), False)
        for i in np.flatnonzero(~leader.astype(bool).to_numpy()):
            out.add(
                "no_leader", (codes[i],), f"no leader: {codes[i]} has no 格长", geometry=where(i)
            )
    if band is not None and "households" in cells.columns:
        low, high = band
        households = pd.to_numeric(cells["households"], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            outside = (households < low) | (households > high)
        for i in np.flatnonzero(outside):
            count = int(households[i])
            detail = (
                f"households out of band: {codes[i]} has {count} households (band {low}–{high})"
            )
            out.add("households_out_of_band", (codes[i],), detail, geometry=where(i))


def _check_buildings(
    buildings: gpd.GeoDataFrame, fixed: np.ndarray, codes: np.ndarray, out: _Collector
) -> None:
    """Buildings with no cell: null cell_code (or an unknown one), else none intersecting them."""
    if len(buildings) == 0:
        return
    buildings = _to_storage(buildings)
    ids = buildings["id"] if "id" in buildings.columns else pd.Series(buildings.index)
    ids = [str(v) for v in ids]
    geoms = np.asarray(buildings.geometry.array, dtype=object)
    if "cell_code" in buildings.columns:
        assigned = buildings["cell_code"]
        null = assigned.isna().to_numpy() | (assigned.astype(str).str.strip() == "").to_numpy()
        unknown = ~null & ~assigned.astype(str).isin(set(codes.tolist())).to_numpy()
        for i in np.flatnonzero(null):
            detail = f"building {ids[i]} is not assigned to any cell"
            out.add("building_unassigned", (), detail, geometry=geoms[i], building=ids[i])
        for i in np.flatnonzero(unknown):
            detail = (
                f"building {ids[i]} is assigned to {assigned.iloc[i]}, which is not a cell here"
            )
            out.add("building_unassigned", (), detail, geometry=geoms[i], building=ids[i])
        return
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    rows = np.flatnonzero(present)
    found = shapely.STRtree(fixed).query(geoms[rows], predicate="intersects")[0]
    hit = np.zeros(len(geoms), dtype=bool)
    hit[rows[found]] = True
    for i in np.flatnonzero(present & ~hit):
        detail = f"building {ids[i]} lies in no cell"
        out.add("building_unassigned", (), detail, geometry=geoms[i], building=ids[i])


def _community_geometry(community: BaseGeometry) -> BaseGeometry:
    """The community as a valid (Multi)Polygon; GeodataError when it has no area."""
    if community is None or not isinstance(community, BaseGeometry) or community.is_empty:
        raise GeodataError("the community has no geometry")
    if not community.is_valid:
        logger.warning(
            "community geometry invalid (%s): repaired", shapely.is_valid_reason(community)
        )
        community = shapely.make_valid(community, method="structure", keep_collapsed=False)
    parts, _ = _polygon_parts(community)
    if len(parts) == 0:
        raise GeodataError(f"the community is a {community.geom_type}, not a polygon")
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def _cell_codes(cells: gpd.GeoDataFrame) -> np.ndarray:
    """The cells' codes as strings (a missing code becomes "(row N)")."""
    if "code" not in cells.columns:
        raise GeodataError("the cells need a 'code' column")
    raw = cells["code"]
    missing = raw.isna().to_numpy()
    codes = raw.astype(str).to_numpy(dtype=object)
    codes[missing] = [f"(row {k})" for k in np.flatnonzero(missing)]
    return codes


def validate_cells(
    community: BaseGeometry,
    cells: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None = None,
    *,
    tolerance_m: float = 1.0,
    sliver_m2: float = 50.0,
    band: tuple[int, int] | None = (200, 500),
    min_area_m2: float = 0.0,
) -> CoverageReport:
    """Check that the cells tile the community; report every gap, overlap and other problem.

    ``community`` is a (Multi)Polygon and ``cells`` a GeoDataFrame (columns code, geometry;
    optional households, has_leader), both EPSG:4326 (cells in another CRS are reprojected).
    Gaps, overlaps and outside parts narrower than ``tolerance_m`` everywhere (0: no width
    rule), or of ``min_area_m2`` or less, are ignored; each one reported says where it lies
    (lon, lat) in its detail. Polygon parts under ``sliver_m2`` are slivers; ``band`` bounds
    the households per cell.
    Raises GeodataError for a community without area, a missing code column or bad options.
    """
    started = time.perf_counter()
    if tolerance_m < 0 or sliver_m2 < 0 or min_area_m2 < 0:
        raise GeodataError("tolerance_m, sliver_m2 and min_area_m2 must not be negative")
    if band is not None and band[0] > band[1]:
        raise GeodataError(f"households band {band} is empty (low above high)")
    community = _community_geometry(community)
    codes = _cell_codes(cells)
    cells = _to_storage(cells)
    out = _Collector()
    fixed = _cell_geometries(np.asarray(cells.geometry.array, dtype=object), codes, out)
    crs = metric_crs(np.array([community], dtype=object))
    forward, back = _transformers(int(crs.to_epsg()))
    cells_m = _apply(forward, fixed)
    warped = np.flatnonzero(~shapely.is_valid(cells_m))  # rare: valid in degrees, not in metres
    if len(warped):
        logger.debug("%d cells invalid after projection: repaired", len(warped))
        repaired = shapely.make_valid(cells_m[warped], method="structure", keep_collapsed=False)
        for k, geom in zip(warped, repaired, strict=True):
            parts, _ = _polygon_parts(geom)
            cells_m[k] = shapely.union_all(parts) if len(parts) else _EMPTY
    tree = shapely.STRtree(cells_m)
    _check_parts(fixed, cells_m, codes, sliver_m2, out)
    union = _check_overlaps(
        fixed, codes, shapely.STRtree(fixed), tolerance_m, min_area_m2, forward, out
    )
    _check_gaps(community, union, codes, tree, tolerance_m, min_area_m2, forward, out)
    _check_outside(community, union, fixed, codes, tree, tolerance_m, min_area_m2, forward, out)
    _check_attributes(cells, fixed, codes, band, out)
    if buildings is not None:
        _check_buildings(buildings, fixed, codes, out)
    report = CoverageReport(
        out.finish(back),
        cells_checked=len(cells),
        tolerance_m=tolerance_m,
        min_area_m2=min_area_m2,
    )
    logger.debug(
        "validated %d cells in %.0f ms: %s",
        len(cells),
        (time.perf_counter() - started) * 1000,
        {k: v for k, v in report.counts().items() if v} or "ok",
    )
    return report


# -- cleaning a set of cells as one coverage -------------------------------------------------


def clean_coverage(cells: Any, community: BaseGeometry, *, fill_m2: float = 1.0) -> np.ndarray:
    """The cells as one clean coverage of the community: shared edges with the same vertices.

    Cells that already form a valid coverage inside the community are returned unchanged (so
    a committed proposal is exactly the previewed one). Otherwise every cell boundary and the
    community's boundary are noded together and polygonized once: each face inside the
    community goes to the cell covering it (an overlap to the cell listed first), and a gap of
    at most ``fill_m2`` to the cell it shares the longest edge with, so neighbours share their
    edges vertex for vertex. Larger gaps stay gaps (validation reports them). Input and output
    are arrays of (Multi)Polygons in EPSG:4326, in the same order; a cell left with no face
    is an empty Polygon.
    """
    geoms = np.asarray(cells, dtype=object)
    community = _community_geometry(community)
    fixed = geoms.copy()
    for k, g in enumerate(geoms):
        if g is None or g.is_empty:
            fixed[k] = _EMPTY
        elif not g.is_valid or shapely.get_type_id(g) not in (_POLYGON, _MULTIPOLYGON):
            parts, _ = _polygon_parts(shapely.make_valid(g))
            fixed[k] = shapely.union_all(parts) if len(parts) else _EMPTY
    outside = shapely.area(shapely.difference(fixed, community))
    if (
        shapely.coverage_is_valid(fixed)
        and (outside <= 1e-12 * community.area).all()
        and shapely.area(shapely.coverage_union_all(fixed)) >= community.area * (1 - 1e-12)
    ):
        return fixed  # already one clean coverage of the community, without gaps
    crs = metric_crs(np.array([community], dtype=object))
    forward, _ = _transformers(int(crs.to_epsg()))
    linework = np.concatenate(
        [shapely.get_parts(shapely.boundary(fixed[~shapely.is_empty(fixed)])), [community.boundary]]
    )
    noded = shapely.union_all(shapely.get_parts(linework))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 0]
    shapely.prepare(community)
    faces = faces[shapely.contains(community, shapely.point_on_surface(faces))]
    points = shapely.point_on_surface(faces)
    owner = np.full(len(faces), -1, dtype=np.int64)
    fi, ci = shapely.STRtree(fixed).query(points, predicate="within")
    order = np.lexsort((ci, fi))  # the first cell listed wins an overlap
    fi, ci = fi[order], ci[order]
    first = np.r_[True, fi[1:] != fi[:-1]] if len(fi) else np.zeros(0, dtype=bool)
    owner[fi[first]] = ci[first]
    faces_m = _apply(forward, faces)
    gaps = np.flatnonzero((owner < 0) & (shapely.area(faces_m) <= fill_m2))
    tree = shapely.STRtree(faces_m)
    for _ in range(3):  # a gap between gaps is filled on a later round
        pending = []
        for g in gaps.tolist():
            best, best_len = -1, 0.0
            for n in tree.query(faces_m[g], predicate="touches").tolist():
                if owner[n] < 0:
                    continue
                shared = shapely.length(shapely.intersection(faces_m[g].boundary, faces_m[n]))
                if shared > best_len:
                    best, best_len = int(owner[n]), float(shared)
            if best >= 0:
                owner[g] = best
            else:
                pending.append(g)
        if not pending:
            break
        gaps = np.array(pending, dtype=np.int64)
    _give_away_crumbs(faces, faces_m, owner, tree, fill_m2)
    out = np.empty(len(fixed), dtype=object)
    for c in range(len(fixed)):
        mine = faces[owner == c]
        out[c] = shapely.coverage_union_all(mine) if len(mine) else _EMPTY
    logger.info(
        "coverage cleaned: %d cells, %d faces, %d small gaps filled",
        len(fixed),
        len(faces),
        int(((owner >= 0) & ~np.isin(np.arange(len(faces)), fi[first])).sum()),
    )
    return out


def _give_away_crumbs(
    faces: np.ndarray,
    faces_m: np.ndarray,
    owner: np.ndarray,
    tree: shapely.STRtree,
    fill_m2: float,
) -> None:
    """Detached parts of a cell of at most ``fill_m2`` go to the neighbour sharing most edge.

    ``owner`` (the cell of each face, -1 for a gap) is changed in place.
    """
    for c in np.unique(owner[owner >= 0]).tolist():
        idx = np.flatnonzero(owner == c)
        if len(idx) < 2:
            continue
        parts = shapely.get_parts(shapely.coverage_union_all(faces_m[idx]))
        if len(parts) < 2:
            continue
        areas = shapely.area(parts)
        part_of = np.full(len(idx), -1)
        fi, pi = shapely.STRtree(parts).query(
            shapely.point_on_surface(faces_m[idx]), predicate="within"
        )
        part_of[fi] = pi
        for p in np.flatnonzero(areas <= fill_m2).tolist():
            if p == int(np.argmax(areas)):
                continue
            crumb = idx[part_of == p]
            shared: dict[int, float] = {}
            for f in crumb.tolist():
                for n in tree.query(faces_m[f], predicate="touches").tolist():
                    if owner[n] >= 0 and owner[n] != c:
                        line = shapely.intersection(faces_m[f].boundary, faces_m[n])
                        shared[int(owner[n])] = shared.get(int(owner[n]), 0.0) + line.length
            if shared:
                owner[crumb] = max(shared, key=lambda k: (shared[k], -k))
