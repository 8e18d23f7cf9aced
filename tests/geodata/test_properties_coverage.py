"""Properties of coverage checks (hypothesis) on random tilings.

A community of 100–400 m is tiled by random straight cuts (cells of at least 20 m). A perfect
tiling reports nothing; without one cell it reports one gap of that cell's area; with one cell
shifted by 2–15 m it reports overlaps with exactly the cells the shifted one now covers, of the
areas an independent intersection gives. Everything is drawn in UTM 50N metres and handed over
in EPSG:4326, as the service stores it.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geodata.coverage import validate_cells
from tests.geodata.strategies import examples, guillotine_m

UTM50 = 32650
X0, Y0 = 668_000.0, 3_547_000.0  # about 118.78 E, 32.04 N


def tiling(draw: st.DrawFn) -> tuple[shapely.Polygon, list[shapely.Polygon]]:
    """(community, cells) in UTM 50N metres."""
    width = draw(st.integers(100, 400))
    height = draw(st.integers(100, 400))
    boxes = draw(guillotine_m(width, height))
    cells = [shapely.box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes]
    return shapely.box(X0, Y0, X0 + width, Y0 + height), cells


@st.composite
def tilings(draw: st.DrawFn) -> tuple[shapely.Polygon, list[shapely.Polygon]]:
    """A community and cells tiling it."""
    return tiling(draw)


def to_4326(geoms: list[shapely.Geometry]) -> np.ndarray:
    """Metre geometries in EPSG:4326."""
    return gpd.GeoSeries(geoms, crs=UTM50).to_crs(4326).to_numpy()


def validate(community: shapely.Polygon, cells: list[shapely.Polygon]) -> object:
    """validate_cells on metre geometries, codes C000, C001 …; no band, no buildings."""
    frame = gpd.GeoDataFrame(
        {"code": [f"C{k:03d}" for k in range(len(cells))]}, geometry=to_4326(cells), crs=4326
    )
    return validate_cells(to_4326([community])[0], frame, band=None)


@settings(max_examples=examples(40))
@given(tilings())
def test_a_perfect_tiling_reports_no_problem(drawn: tuple) -> None:
    community, cells = drawn
    report = validate(community, cells)
    assert report.ok, report.as_dict()
    assert report.cells_checked == len(cells)


@settings(max_examples=examples(40))
@given(tilings(), st.data())
def test_removing_a_cell_leaves_one_gap_of_its_area(drawn: tuple, data: st.DataObject) -> None:
    community, cells = drawn
    if len(cells) < 2:
        cells = [shapely.box(*community.bounds[:2], community.centroid.x, community.bounds[3])]
        cells.append(community.difference(cells[0]))
    gone = data.draw(st.integers(0, len(cells) - 1))
    report = validate(community, cells[:gone] + cells[gone + 1 :])
    counts = report.counts()
    assert counts["gap"] == 1 and sum(counts.values()) == 1, report.as_dict()
    gap = report.problems[0]
    assert gap.area_m2 == pytest.approx(cells[gone].area, rel=1e-4)
    # drawn where the cell was (EPSG:4326 back to metres)
    where = gpd.GeoSeries([gap.geometry], crs=4326).to_crs(UTM50).iloc[0]
    assert where.symmetric_difference(cells[gone]).area <= 1e-4 * cells[gone].area


@settings(max_examples=examples(40))
@given(tilings(), st.data())
def test_shifting_a_cell_reports_the_overlaps_it_makes(drawn: tuple, data: st.DataObject) -> None:
    community, cells = drawn
    moved = data.draw(st.integers(0, len(cells) - 1))
    dx = data.draw(st.sampled_from([-1, 1])) * data.draw(st.integers(2, 15))
    dy = data.draw(st.sampled_from([-1, 0, 1])) * data.draw(st.integers(2, 15))
    shifted = list(cells)
    shifted[moved] = shapely.affinity.translate(cells[moved], dx, dy)
    report = validate(community, shifted)
    code = f"C{moved:03d}"
    overlaps = [p for p in report.problems if p.kind == "overlap"]
    # the overlaps are exactly the cells the shifted one now covers, with those areas
    expected = {
        f"C{k:03d}": shifted[moved].intersection(cell).area
        for k, cell in enumerate(cells)
        if k != moved and shifted[moved].intersection(cell).area > 0
    }
    found = {next(c for c in p.cells if c != code): p.area_m2 for p in overlaps}
    assert all(code in p.cells for p in overlaps)
    assert found.keys() == {k for k, a in expected.items() if a > 0}
    for other, area in expected.items():
        assert found[other] == pytest.approx(area, rel=1e-3)
    # and what it left uncovered is a gap; what it moved beyond the community is outside
    counts = report.counts()
    vacated = cells[moved].difference(shapely.union_all(shifted)).area
    beyond = shifted[moved].difference(community).area
    assert (counts["gap"] > 0) == (vacated > 0)
    assert (counts["outside"] > 0) == (beyond > 0)
    gaps = sum(p.area_m2 for p in report.problems if p.kind == "gap")
    assert gaps == pytest.approx(vacated, rel=1e-3)
