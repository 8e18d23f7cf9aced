"""Cells cleaned as one coverage, and validation's area tolerance (issue 19, item 5)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geodata.coverage import clean_coverage, validate_cells
from tests.geodata.test_coverage import STEP, X0, Y0, grid, make_cells, square, to_deg


def _nudged_grid() -> tuple[shapely.Geometry, np.ndarray]:
    """A 2 × 1 grid (EPSG:4326) whose shared edge was cleaned cell by cell: the right cell's
    copy of it bends 0.5 m away in the middle, leaving a thin gap of 25 m²."""
    left, right = to_deg([square(0, 0), square(1, 0)]).to_numpy()
    community = shapely.coverage_union_all([left, right])
    mid = to_deg(shapely.Point(X0 + STEP + 0.5, Y0 + STEP / 2)).iloc[0]
    ring = list(right.exterior.coords)  # (maxx, miny), (maxx, maxy), (minx, maxy), (minx, miny)
    nudged = shapely.Polygon([*ring[:3], (mid.x, mid.y), *ring[3:]])
    return community, np.array([left, nudged], dtype=object)


def test_validation_reports_thin_gaps_above_the_area_tolerance_with_their_location() -> None:
    community, cells = _nudged_grid()
    frame = make_cells([shapely.Point(0, 0)] * 2).set_geometry(cells)
    # a 1 m width rule hides the 0.5 m wide gap; the area rule finds it, and says where
    assert validate_cells(community, frame, band=None).ok
    report = validate_cells(community, frame, band=None, tolerance_m=0.0, min_area_m2=0.01)
    (gap,) = report.problems
    assert gap.kind == "gap" and gap.area_m2 == pytest.approx(25.0, rel=0.01)
    assert gap.location is not None
    assert shapely.Point(gap.location).distance(gap.geometry) < 1e-6
    assert f"{gap.location[0]:.7f}" in gap.detail
    assert report.as_dict()["problems"][0]["location"] == list(gap.location)
    # a gap of the tolerance or less is not reported
    assert validate_cells(community, frame, band=None, tolerance_m=0.0, min_area_m2=30.0).ok


def test_long_straight_edges_are_not_false_gaps() -> None:
    """A community edge of 2 vertices against cells with many vertices on it: no gap.

    Projected, the densified edge bends away from the chord; the overlay in EPSG:4326 is exact.
    """
    x, y, d = 118.76, 32.03, 0.03  # about 2.8 km × 3.3 km
    community = shapely.box(x, y, x + d, y + d)
    xs = np.linspace(x, x + d, 31)
    cells = [shapely.box(xs[i], y, xs[i + 1], y + d) for i in range(30)]
    frame = make_cells([shapely.Point(0, 0)] * 30).set_geometry(cells)
    assert validate_cells(community, frame, band=None, tolerance_m=0.0, min_area_m2=0.01).ok


def test_clean_coverage_snaps_shared_edges_and_fills_the_thin_gap() -> None:
    community, cells = _nudged_grid()
    cleaned = clean_coverage(cells, community, fill_m2=50.0)
    assert shapely.coverage_is_valid(cleaned)
    assert shapely.union_all(cleaned).equals(community)
    frame = make_cells([shapely.Point(0, 0)] * 2).set_geometry(cleaned)
    assert validate_cells(community, frame, band=None, tolerance_m=0.0, min_area_m2=0.01).ok
    # with a smaller fill the gap stays a gap, for validation to report
    kept = clean_coverage(cells, community, fill_m2=1.0)
    assert shapely.coverage_is_valid(kept)
    frame = make_cells([shapely.Point(0, 0)] * 2).set_geometry(kept)
    report = validate_cells(community, frame, band=None, tolerance_m=0.0, min_area_m2=0.01)
    assert [p.kind for p in report.problems] == ["gap"]


def test_clean_coverage_keeps_a_valid_coverage_exactly_and_settles_overlaps() -> None:
    _, cells_m = grid(3, 2)
    cells = to_deg(cells_m).to_numpy()
    community = shapely.coverage_union_all(cells)
    same = clean_coverage(cells, community)
    assert all(a.equals_exact(b, 0.0) for a, b in zip(same, cells, strict=True))
    cells[0] = to_deg(square(0, 0, 1.2, 1)).iloc[0]  # 20 m over its neighbour
    cleaned = clean_coverage(cells, community)
    assert shapely.coverage_is_valid(cleaned)
    assert (shapely.get_type_id(cleaned) == 3).all()  # one polygon each: no crumbs left over
    assert shapely.union_all(cleaned).symmetric_difference(community).area < 1e-12 * community.area
    frame = make_cells([shapely.Point(0, 0)] * len(cells)).set_geometry(cleaned)
    assert validate_cells(community, frame, band=None, tolerance_m=0.0, min_area_m2=0.01).ok
