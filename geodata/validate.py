"""Geometry repair: valid, one dimension, 2D, multi-part; and a note of what changed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry.base import BaseGeometry

from geodata.errors import GeodataError

__all__ = ["KINDS", "Kind", "RepairNote", "parse_kind", "repair_geometries"]

logger = logging.getLogger(__name__)

Kind = Literal["polygon", "point", "line"]
KINDS: tuple[Kind, ...] = ("polygon", "point", "line")
_KIND_ALIASES: dict[str, Kind] = {
    "polygon": "polygon",
    "polygons": "polygon",
    "multipolygon": "polygon",
    "area": "polygon",
    "point": "point",
    "points": "point",
    "line": "line",
    "lines": "line",
    "linestring": "line",
    "multilinestring": "line",
}
# shapely.get_type_id codes
_POINT, _LINESTRING, _LINEARRING, _POLYGON = 0, 1, 2, 3
_MULTI_OR_COLLECTION = 4  # 4 MultiPoint, 5 MultiLineString, 6 MultiPolygon, 7 GeometryCollection
#: shapely type id → geometry type name.
TYPE_NAMES = (
    "Point",
    "LineString",
    "LinearRing",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
    "GeometryCollection",
)
_FAMILY: dict[int, Kind | None] = {0: "point", 1: "line", 2: "line", 3: "polygon", -1: None}
_PART_TYPE: dict[Kind, int] = {"polygon": _POLYGON, "line": _LINESTRING, "point": _POINT}


@dataclass(frozen=True)
class RepairNote:
    """What happened to one feature: repaired (kept, changed) or rejected (left out), and why."""

    index: int
    source_id: str | None
    action: Literal["repaired", "rejected"]
    reason: str


def parse_kind(kind: str) -> Kind:
    """Read a geometry kind ("polygon", "point", "line"; plurals accepted)."""
    key = str(kind).strip().lower()
    if key not in _KIND_ALIASES:
        raise GeodataError(f"unknown geometry kind {kind!r}; expected one of {', '.join(KINDS)}")
    return _KIND_ALIASES[key]


def _make_valid(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """make_valid with the "structure" method where available; returns (result, failed mask)."""
    try:
        return shapely.make_valid(geoms, method="structure", keep_collapsed=False), np.zeros(
            len(geoms), dtype=bool
        )
    except TypeError:  # shapely < 2.1: no method argument
        pass
    except GEOSException:
        pass
    out = np.empty(len(geoms), dtype=object)
    failed = np.zeros(len(geoms), dtype=bool)
    for i, geom in enumerate(geoms):  # only reached when the vectorised call failed
        try:
            out[i] = shapely.make_valid(geom, method="structure", keep_collapsed=False)
        except TypeError:
            out[i] = shapely.make_valid(geom)
        except GEOSException:
            failed[i] = True
    return out, failed


def _explode(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All single parts of the geometries, recursing into nested collections, with row indices."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    while len(parts):
        nested = shapely.get_type_id(parts) >= _MULTI_OR_COLLECTION
        if not nested.any():
            break
        sub, sub_index = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], sub])
        index = np.concatenate([index[~nested], index[nested][sub_index]])
    order = np.argsort(index, kind="stable")
    return parts[order], index[order]


def _extract(geoms: np.ndarray, kind: Kind) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep only parts of the wanted dimension; returns (geometries, kept counts, dropped counts).

    Polygons become MultiPolygons and lines MultiLineStrings; a point stays a Point. Rows left with
    no part hold None.
    """
    n = len(geoms)
    result = np.full(n, None, dtype=object)
    parts, index = _explode(geoms)
    non_empty = ~shapely.is_empty(parts)
    wanted = non_empty & (shapely.get_type_id(parts) == _PART_TYPE[kind])
    kept = np.bincount(index[wanted], minlength=n)
    dropped = np.bincount(index[non_empty & ~wanted], minlength=n)
    if not wanted.any():
        return result, kept, dropped
    rows, dense = np.unique(index[wanted], return_inverse=True)
    if kind == "polygon":
        result[rows] = shapely.multipolygons(parts[wanted], indices=dense)
    elif kind == "line":
        result[rows] = shapely.multilinestrings(parts[wanted], indices=dense)
    else:
        single = kept == 1
        result[single] = parts[wanted][np.isin(index[wanted], np.flatnonzero(single))]
    return result, kept, dropped


def _type_name(geom: BaseGeometry) -> str:
    return TYPE_NAMES[int(shapely.get_type_id(geom))]


def _family(geom: object) -> Kind | None:
    """The kind of a geometry: its own for simple types, the kinds of its parts for collections."""
    families = {_FAMILY[int(t)] for t in shapely.get_type_id(_explode(np.array([geom]))[0])}
    families.discard(None)
    return families.pop() if len(families) == 1 else None


def _holes_as_shells(
    geoms: np.ndarray,
    fixable: np.ndarray,
    result: np.ndarray,
    kept: np.ndarray,
    dropped: np.ndarray,
) -> np.ndarray:
    """Where the repair left no polygon, read the holes of collapsed shells as outlines.

    The "structure" repair trusts the rings' roles, so a polygon whose shell has collapsed loses
    its holes too, even when a "hole" is the only real outline (a mis-ordered ring), and the
    building was rejected although area was drawn. Found by property testing:
    ``POLYGON ((0 0, 0 0, 0 0, 0 0), (0 0, 0 1, 1 0, 0 0))``. Each hole is then repaired as a
    polygon of its own (nothing is built from several degenerate rings together). Updates the
    arrays in place; returns the positions that have a polygon again.
    """
    lost = np.flatnonzero(fixable & shapely.is_missing(result))
    if len(lost) == 0:
        return lost
    parts, index = _explode(geoms[lost])
    polygons = shapely.get_type_id(parts) == _POLYGON
    holes: list[shapely.Polygon] = []
    owner: list[int] = []
    for part, row in zip(parts[polygons], index[polygons], strict=True):
        for ring in part.interiors:
            holes.append(shapely.Polygon(ring))
            owner.append(int(row))
    if not holes:
        return lost[:0]
    fixed, failed = _make_valid(np.array(holes, dtype=object))
    fixed[failed] = None
    rows = np.array(owner)
    merged = np.array(
        [shapely.GeometryCollection(list(fixed[(rows == r) & ~failed])) for r in range(len(lost))],
        dtype=object,
    )
    again, again_kept, again_dropped = _extract(merged, "polygon")
    found = ~shapely.is_missing(again)
    result[lost[found]] = again[found]
    kept[lost[found]] = again_kept[found]
    dropped[lost[found]] = again_dropped[found]
    return np.asarray(lost[found], dtype=np.int64)


def repair_geometries(
    gdf: gpd.GeoDataFrame, expected: str = "polygon", *, id_column: str = "source_id"
) -> tuple[gpd.GeoDataFrame, list[RepairNote]]:
    """Make every geometry valid, 2D and of the expected kind; list what was repaired or rejected.

    Invalid geometries are fixed with ``shapely.make_valid`` (method "structure"); only parts of
    the expected dimension are kept; polygons are stored as MultiPolygon and lines as
    MultiLineString; Z/M are dropped; coordinates keep full precision. Features that are null,
    empty or have nothing of the expected kind left are removed from the returned GeoDataFrame
    and reported as "rejected" notes; the notes' ``index`` is the 0-based row position in
    ``gdf`` and the returned frame keeps ``gdf``'s index labels.
    """
    kind = parse_kind(expected)
    n = len(gdf)
    geoms = shapely.force_2d(gdf.geometry.to_numpy())
    ids = _ids(gdf, id_column)

    missing = shapely.is_missing(geoms)
    empty = ~missing & shapely.is_empty(geoms)
    invalid = ~missing & ~empty & ~shapely.is_valid(geoms)
    reasons = np.full(n, None, dtype=object)
    reasons[missing] = "missing geometry"
    reasons[empty] = "empty geometry"
    if invalid.any():
        reasons[invalid] = shapely.is_valid_reason(geoms[invalid])
    # Non-finite coordinates cannot be repaired meaningfully (GEOS refuses): reject them.
    bad_coordinate = invalid & np.array(
        [r is not None and r.startswith("Invalid Coordinate") for r in reasons], dtype=bool
    )
    fixable = invalid & ~bad_coordinate
    work = geoms.copy()
    work[missing | empty | bad_coordinate] = None
    if fixable.any():
        fixed, failed = _make_valid(geoms[fixable])
        work[fixable] = fixed
        if failed.any():
            positions = np.flatnonzero(fixable)[failed]
            work[positions] = None
            bad_coordinate[positions] = True

    result, kept, dropped = _extract(work, kind)
    if kind == "polygon":
        for pos in _holes_as_shells(geoms, fixable, result, kept, dropped):
            reasons[pos] = f"{reasons[pos]}; the shell has no area: its holes are the outline"
    _repair_overlapping(result, kept, reasons, invalid, kind)
    rejected = shapely.is_missing(result)
    many = kept > 1 if kind == "point" else np.zeros(n, dtype=bool)
    rejected |= many
    notes = _notes(
        geoms,
        ids,
        kind,
        reasons,
        kept,
        dropped,
        rejected=rejected,
        invalid=invalid,
        many=many,
        unusable=missing | empty | bad_coordinate,
    )

    keep = ~rejected
    out = gdf.iloc[np.flatnonzero(keep)].copy()
    geometry_name = gdf.geometry.name
    out[geometry_name] = gpd.GeoSeries(result[keep], index=out.index, crs=gdf.crs)
    out = out.set_geometry(geometry_name)
    n_repaired = sum(note.action == "repaired" for note in notes)
    if notes:
        logger.info("%d feature(s) repaired, %d rejected", n_repaired, len(notes) - n_repaired)
    return out, notes


def _repair_overlapping(
    result: np.ndarray, kept: np.ndarray, reasons: np.ndarray, invalid: np.ndarray, kind: Kind
) -> None:
    """A GeometryCollection is valid even when its polygons overlap, but a MultiPolygon built from
    them is not: repair those once more, in place (the structure method unions overlapping
    parts)."""
    has_result = ~shapely.is_missing(result)
    still_invalid = has_result & ~shapely.is_valid(result)
    if not still_invalid.any():
        return
    refixed, failed = _make_valid(result[still_invalid])
    refixed[failed] = None
    again, again_kept, _ = _extract(refixed, kind)
    positions = np.flatnonzero(still_invalid)
    result[positions] = again
    kept[positions] = again_kept
    for pos in positions:
        if reasons[pos] is None:
            reasons[pos] = "overlapping parts"
    invalid[positions] = True


def _notes(
    geoms: np.ndarray,
    ids: list[str | None],
    kind: Kind,
    reasons: np.ndarray,
    kept: np.ndarray,
    dropped: np.ndarray,
    *,
    rejected: np.ndarray,
    invalid: np.ndarray,
    many: np.ndarray,
    unusable: np.ndarray,
) -> list[RepairNote]:
    """One note per feature that was rejected or repaired, saying why."""
    notes: list[RepairNote] = []
    for pos in np.flatnonzero(rejected | invalid | (dropped > 0)):
        sid = ids[pos]
        if rejected[pos]:
            if unusable[pos]:
                reason = reasons[pos]
            elif many[pos]:
                reason = f"{kept[pos]} points where a single point was expected"
            elif _family(geoms[pos]) != kind:
                reason = f"{_type_name(geoms[pos])} where a {kind} was expected"
            else:
                reason = f"{reasons[pos]}; no {kind} is left after repair"
            notes.append(RepairNote(int(pos), sid, "rejected", reason))
            continue
        parts = []
        if invalid[pos]:
            parts.append(str(reasons[pos]))
        if dropped[pos]:
            parts.append(f"dropped {dropped[pos]} part(s) that are not a {kind}")
        notes.append(RepairNote(int(pos), sid, "repaired", "; ".join(parts)))
    return notes


def _ids(gdf: gpd.GeoDataFrame, id_column: str) -> list[str | None]:
    if id_column not in gdf.columns:
        return [None] * len(gdf)
    return [None if _is_null(v) else str(v) for v in gdf[id_column].tolist()]


def _is_null(value: object) -> bool:
    try:
        return bool(value is None or value != value)  # NaN != NaN
    except (TypeError, ValueError):
        return False
