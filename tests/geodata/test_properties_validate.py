"""Properties of geometry repair (hypothesis): repair never loses a building.

Random footprints on a small integer grid (so self-intersections, spikes, repeated and collinear
points, holes outside or across their shell and overlapping parts are common), in batches with
nulls, empties, Z values and GeometryCollections. For every batch: each row is either kept
(valid, non-empty MultiPolygon, same index label and attributes) or rejected with a reason;
a row is rejected only when nothing with area is in it; a valid footprint is kept unchanged; a
repaired one keeps at least what its shell encloses minus its holes, and invents nothing beyond
what its rings enclose.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geodata.validate import repair_geometries
from tests.geodata.strategies import examples

coordinate = st.integers(0, 12).map(float)
ring = st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=8).map(
    lambda pts: [*pts, pts[0]]
)


@st.composite
def footprints(draw: st.DrawFn) -> shapely.Geometry | None:
    """A polygon-ish geometry, valid or not (never a point or line only)."""
    kind = draw(
        st.sampled_from(["box", "polygon", "holed", "multi", "collection", "z", "null", "empty"])
    )
    if kind == "null":
        return None
    if kind == "empty":
        return shapely.Polygon()
    if kind == "box":
        x, y = draw(coordinate), draw(coordinate)
        return shapely.box(x, y, x + draw(st.integers(1, 5)), y + draw(st.integers(1, 5)))
    shell = draw(ring)
    if kind == "polygon":
        return shapely.Polygon(shell)
    if kind == "z":
        return shapely.Polygon([(x, y, 3.0) for x, y in shell])
    if kind == "holed":
        return shapely.Polygon(shell, holes=draw(st.lists(ring, min_size=1, max_size=2)))
    parts = [shapely.Polygon(r) for r in draw(st.lists(ring, min_size=1, max_size=3))]
    if kind == "multi":
        return shapely.MultiPolygon(parts)
    extra = shapely.LineString([(0, 0), (draw(coordinate), draw(coordinate))])
    return shapely.GeometryCollection([*parts, extra, shapely.Point(1, 1)])


def _region(ring: shapely.Geometry) -> shapely.Geometry:
    """Everything a closed ring encloses: the faces of its noded line work."""
    return shapely.union_all(shapely.get_parts(shapely.polygonize([shapely.union_all([ring])])))


def _polygons(geom: shapely.Geometry) -> list[shapely.Polygon]:
    parts = shapely.get_parts(shapely.get_parts(geom))
    return [shapely.force_2d(p) for p in parts if p.geom_type == "Polygon" and not p.is_empty]


def area_bounds(geom: shapely.Geometry | None) -> tuple[float | None, float]:
    """Bounds on the area a repair may give, computed from the rings, not with make_valid.

    Lower (only when every ring is simple, else None): what each part's shell encloses minus
    what its holes enclose: nothing drawn as building is lost. Upper: everything any ring
    encloses: nothing is invented (a "hole" outside its shell may become a part of its own, as
    GEOS reads mis-ordered rings).
    """
    polygons = _polygons(geom) if geom is not None else []
    if not polygons:
        return 0.0, 0.0
    lower, upper, simple = [], [], True
    for polygon in polygons:
        rings = [polygon.exterior, *polygon.interiors]
        simple &= bool(shapely.is_simple(rings).all())
        shell = _region(polygon.exterior)
        holes = shapely.union_all([_region(h) for h in polygon.interiors])
        lower.append(shell.difference(holes))
        upper.append(shell.union(holes))
    low = float(shapely.union_all(lower).area) if simple else None
    return low, float(shapely.union_all(upper).area)


def even_odd_area(geom: shapely.Geometry | None) -> float:
    """Area by the even-odd rule (a point is inside when a ray from it crosses rings oddly).

    Faces of all rings noded together, each tested at an interior point by counting ring
    crossings of a horizontal ray; independent of the repair under test.
    """
    polygons = _polygons(geom) if geom is not None else []
    if not polygons:
        return 0.0
    total = 0.0
    for polygon in polygons:
        rings = [polygon.exterior, *polygon.interiors]
        faces = shapely.get_parts(shapely.polygonize([shapely.union_all(rings)]))
        for face in faces:
            x, y = shapely.get_coordinates(shapely.point_on_surface(face))[0]
            crossings = 0
            for ring in rings:
                xy = shapely.get_coordinates(ring)
                (x0, y0), (x1, y1) = xy[:-1].T, xy[1:].T
                with np.errstate(divide="ignore", invalid="ignore"):
                    straddle = (y0 > y) != (y1 > y)
                    at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
                crossings += int((straddle & (at > x)).sum())
            if crossings % 2:
                total += face.area
    return total


@settings(max_examples=examples(150))
@given(st.lists(footprints(), min_size=1, max_size=6))
@example([shapely.from_wkt("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))")])  # bow tie: both halves kept
@example(
    [shapely.from_wkt("POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (20 20, 21 20, 21 21, 20 20))")]
)
@example([shapely.from_wkt("POLYGON ((0 0, 0 0, 0 0, 0 0), (0 0, 0 1, 1 0, 0 0))")])  # was lost
@example([shapely.from_wkt("POLYGON ((0 0, 0 0, 0 1, 0 0), (1 0, 0 0, 1 0, 0 1, 1 0))")])
def test_repair_never_loses_a_building(geoms: list[shapely.Geometry | None]) -> None:
    n = len(geoms)
    gdf = gpd.GeoDataFrame(
        {"source_id": [f"b{i}" for i in range(n)], "levels": np.arange(n)},
        geometry=geoms,
        index=np.arange(n) * 10 + 5,
        crs=4326,
    )
    out, notes = repair_geometries(gdf, "polygon")
    rejected = {note.index for note in notes if note.action == "rejected"}
    repaired = {note.index for note in notes if note.action == "repaired"}
    # every row is accounted for: kept, or rejected with a reason, never both
    kept_positions = [gdf.index.get_loc(label) for label in out.index]
    assert sorted([*kept_positions, *rejected]) == list(range(n))
    assert not repaired & rejected
    assert all(note.reason for note in notes)
    assert all(note.source_id == f"b{note.index}" for note in notes)
    # kept rows: valid, non-empty, 2D MultiPolygons with their own attributes
    assert (out.geom_type == "MultiPolygon").all()
    assert out.is_valid.all() and not out.is_empty.any() and not out.has_z.any()
    assert (out["levels"].to_numpy() == np.array(kept_positions)).all()
    for position, geom in zip(kept_positions, out.geometry, strict=True):
        original = geoms[position]
        low, high = area_bounds(original)
        assert geom.area <= high + 1e-9
        if low is not None:
            assert geom.area >= low - 1e-9
        if original.is_valid and position not in repaired:
            assert geom.equals(shapely.force_2d(original))  # a valid footprint is not touched
    # a row is rejected only when nothing in it has area by the even-odd rule
    for position in rejected:
        assert even_odd_area(geoms[position]) == 0.0
    assert out.crs == gdf.crs


def test_a_collapsed_shell_with_a_real_hole_keeps_the_hole_and_says_so() -> None:
    """The regression above, as the user sees it in the import report."""
    gdf = gpd.GeoDataFrame(
        {"source_id": ["楼1"]},
        geometry=[shapely.from_wkt("POLYGON ((0 0, 0 0, 0 0, 0 0), (0 0, 0 2, 2 0, 0 0))")],
    )
    out, notes = repair_geometries(gdf, "polygon")
    assert len(out) == 1 and out.geometry.iloc[0].area == 2.0
    assert [(n.action, n.source_id) for n in notes] == [("repaired", "楼1")]
    assert notes[0].reason.endswith("the shell has no area: its holes are the outline")
