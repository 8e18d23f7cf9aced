"""Coverage checks: a perfect tiling passes; each kind of problem is found, measured and drawn."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry.base import BaseGeometry

from geodata.coverage import PROBLEM_LABELS, CoverageReport, Problem, validate_cells
from geodata.errors import GeodataError

UTM50 = 32650  # the metric CRS validate_cells picks near Nanjing
X0, Y0 = 668_000.0, 3_547_000.0  # about 118.78 E, 32.04 N
STEP = 100.0  # metres


def to_deg(geoms: list[BaseGeometry] | BaseGeometry) -> gpd.GeoSeries:
    """Geometries drawn in UTM 50N metres, as EPSG:4326 (shared vertices stay shared)."""
    if isinstance(geoms, BaseGeometry):
        geoms = [geoms]
    return gpd.GeoSeries(geoms, crs=UTM50).to_crs(4326)


def square(i: float, j: float, w: float = 1.0, h: float = 1.0) -> BaseGeometry:
    """A box of w × h grid steps whose lower-left corner is grid point (i, j), in metres."""
    return shapely.box(X0 + i * STEP, Y0 + j * STEP, X0 + (i + w) * STEP, Y0 + (j + h) * STEP)


def code(k: int) -> str:
    """A cell code of the usual shape."""
    return f"320102001001{k + 1:03d}"


def grid(nx: int = 4, ny: int = 3) -> tuple[BaseGeometry, list[BaseGeometry]]:
    """(community, cells) in metres: nx × ny squares tiling a rectangle, row by row."""
    cells = [square(i, j) for j in range(ny) for i in range(nx)]
    return square(0, 0, nx, ny), cells


def make_cells(cells_m: list[BaseGeometry], **columns: list[object]) -> gpd.GeoDataFrame:
    """A cells GeoDataFrame in EPSG:4326 from metre geometries."""
    data = {"code": [code(k) for k in range(len(cells_m))], **columns}
    return gpd.GeoDataFrame(data, geometry=to_deg(cells_m).to_numpy(), crs=4326)


def check(community_m: BaseGeometry, cells: gpd.GeoDataFrame, **kwargs: object) -> CoverageReport:
    """validate_cells with the community given in metres."""
    return validate_cells(to_deg(community_m).iloc[0], cells, **kwargs)


def of_kind(report: CoverageReport, kind: str) -> list[Problem]:
    """The report's problems of one kind."""
    return [p for p in report.problems if p.kind == kind]


def test_perfect_tiling_is_ok() -> None:
    community, cells = grid()
    report = check(community, make_cells(cells))
    assert report.ok
    assert report.problems == []
    assert report.cells_checked == 12
    assert report.counts() == dict.fromkeys(PROBLEM_LABELS, 0)
    assert report.as_dict()["ok"] is True
    assert report.to_geojson() == {"type": "FeatureCollection", "features": []}


def test_labels_cover_every_kind() -> None:
    assert set(PROBLEM_LABELS) == {
        "gap",
        "overlap",
        "outside",
        "not_contiguous",
        "sliver",
        "invalid_geometry",
        "building_unassigned",
        "no_leader",
        "households_out_of_band",
    }
    assert PROBLEM_LABELS["gap"] == "空白区域"
    assert PROBLEM_LABELS["households_out_of_band"] == "户数超出范围"


def test_removed_cell_is_a_gap_of_its_area() -> None:
    community, cells = grid()
    removed = cells.pop(5)  # an inner cell
    report = check(community, make_cells(cells))
    assert [p.kind for p in report.problems] == ["gap"]
    gap = report.problems[0]
    assert gap.cells == ()
    assert gap.area_m2 == pytest.approx(removed.area, rel=0.01)
    assert gap.detail.startswith("空白区域")
    # drawn in EPSG:4326 where the cell was
    assert gap.geometry.equals_exact(to_deg(removed).iloc[0], tolerance=1e-7) or (
        gap.geometry.symmetric_difference(to_deg(removed).iloc[0]).area < 1e-12
    )


def test_enlarged_cell_overlaps_its_neighbour() -> None:
    community, cells = grid()
    cells[5] = square(1, 1, 1.25, 1)  # 25 m into cell 6 (index 6, east of it)
    report = check(community, make_cells(cells))
    overlaps = of_kind(report, "overlap")
    assert len(overlaps) == 1
    assert overlaps[0].cells == (code(5), code(6))
    assert overlaps[0].area_m2 == pytest.approx(25 * 100, rel=0.01)
    assert code(5) in overlaps[0].detail and code(6) in overlaps[0].detail
    assert "m²" in overlaps[0].detail
    assert report.counts()["overlap"] == 1
    assert not of_kind(report, "gap") and not of_kind(report, "outside")


def test_duplicate_cell_overlaps_completely() -> None:
    community, cells = grid(2, 1)
    report = check(community, make_cells([*cells, cells[0]]))
    overlaps = of_kind(report, "overlap")
    assert len(overlaps) == 1
    assert overlaps[0].cells == (code(0), code(2))
    assert overlaps[0].area_m2 == pytest.approx(STEP * STEP, rel=0.01)


def test_cell_sticking_out_is_outside() -> None:
    community, cells = grid()
    cells[3] = square(3, 0, 1.4, 1)  # the south-east cell reaches 40 m past the east edge
    report = check(community, make_cells(cells))
    assert [p.kind for p in report.problems] == ["outside"]
    outside = report.problems[0]
    assert outside.cells == (code(3),)
    assert outside.area_m2 == pytest.approx(40 * 100, rel=0.01)
    assert outside.detail.startswith("超出社区")


def test_two_part_cell_is_not_contiguous() -> None:
    community, _ = grid(3, 1)
    cells = [shapely.union_all([square(0, 0), square(2, 0)]), square(1, 0)]
    report = check(community, make_cells(cells))
    assert [p.kind for p in report.problems] == ["not_contiguous"]
    problem = report.problems[0]
    assert problem.cells == (code(0),)
    assert "2" in problem.detail
    assert problem.area_m2 == pytest.approx(2 * STEP * STEP, rel=0.01)


def test_tiny_extra_part_is_a_sliver_not_a_second_part() -> None:
    community, cells = grid(2, 1)
    speck = shapely.box(X0 + 40, Y0 + 40, X0 + 45, Y0 + 45)  # 25 m² inside cell 0
    cells[0] = cells[0].difference(speck)  # cell 0 has a hole ...
    cells[1] = shapely.union_all([cells[1], speck])  # ... filled by a stray part of cell 1
    report = check(community, make_cells(cells))
    assert [p.kind for p in report.problems] == ["sliver"]
    sliver = report.problems[0]
    assert sliver.cells == (code(1),)
    assert sliver.area_m2 == pytest.approx(25, rel=0.01)
    assert sliver.geometry.area < to_deg(cells[1]).iloc[0].area / 100  # the speck, not the cell
    # under a smaller threshold the 25 m² part counts: the cell is in two pieces
    report = check(community, make_cells(cells), sliver_m2=10)
    assert [p.kind for p in report.problems] == ["not_contiguous"]


def test_tiny_whole_cell_is_a_sliver() -> None:
    community, cells = grid(2, 1)
    tiny = shapely.box(X0 + 95, Y0, X0 + 100, Y0 + 5)  # 25 m² corner of cell 0
    cells[0] = cells[0].difference(tiny)
    report = check(community, make_cells([*cells, tiny]))
    assert [p.kind for p in report.problems] == ["sliver"]
    assert report.problems[0].cells == (code(2),)
    assert "only" in report.problems[0].detail


def test_bow_tie_is_invalid_and_still_checked() -> None:
    community, cells = grid(2, 1)
    a, b = X0 + STEP, X0 + 2 * STEP
    cells[1] = shapely.Polygon([(a, Y0), (b, Y0 + STEP), (b, Y0), (a, Y0 + STEP)])
    report = check(community, make_cells(cells))
    invalid = of_kind(report, "invalid_geometry")
    assert len(invalid) == 1
    assert invalid[0].cells == (code(1),)
    assert "Self-intersection" in invalid[0].detail
    assert invalid[0].geometry.geom_type == "Point"  # where it crosses itself
    # repaired (two triangles): the uncovered triangles of its square are found as gaps
    gaps = of_kind(report, "gap")
    assert sum(g.area_m2 for g in gaps) == pytest.approx(STEP * STEP / 2, rel=0.01)


def test_missing_and_non_polygon_geometry_are_invalid() -> None:
    community, cells = grid(2, 1)
    frame = make_cells(cells)
    frame.loc[1, "geometry"] = None
    report = check(community, frame)
    assert [p.kind for p in report.problems] == ["gap", "invalid_geometry"]
    assert "no geometry" in of_kind(report, "invalid_geometry")[0].detail
    frame.loc[1, "geometry"] = shapely.Point(118.78, 32.04)
    report = check(community, frame)
    assert "not a polygon" in of_kind(report, "invalid_geometry")[0].detail


def test_buildings_without_a_cell() -> None:
    community, cells = grid(2, 1)
    frame = make_cells(cells)
    houses = to_deg(
        [square(0.2, 0.2, 0.1, 0.1), square(1.2, 0.2, 0.1, 0.1), square(1.5, 0.5, 0.1, 0.1)]
    )
    buildings = gpd.GeoDataFrame(
        {"id": [101, 102, 103], "cell_code": [code(0), None, "999"]}, geometry=houses, crs=4326
    )
    report = check(community, frame, buildings=buildings)
    unassigned = of_kind(report, "building_unassigned")
    assert [p.building for p in unassigned] == ["102", "103"]
    assert all(p.geometry is not None for p in unassigned)
    assert "楼栋未入格" in unassigned[0].detail


def test_buildings_checked_geometrically_without_cell_code() -> None:
    community, cells = grid(2, 1)
    houses = to_deg([square(0.2, 0.2, 0.1, 0.1), square(3, 3, 0.1, 0.1)])  # the second: nowhere
    buildings = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=houses, crs=4326)
    report = check(community, make_cells(cells), buildings=buildings)
    assert [(p.kind, p.building) for p in report.problems] == [("building_unassigned", "b")]


def test_leader_and_household_band() -> None:
    community, cells = grid(2, 2)
    frame = make_cells(
        cells,
        has_leader=[True, False, True, True],
        households=pd.array([300, 320, 150, None], dtype="Int64"),
    )
    report = check(community, frame)
    assert report.counts()["no_leader"] == 1
    assert of_kind(report, "no_leader")[0].cells == (code(1),)
    band = of_kind(report, "households_out_of_band")
    assert [p.cells for p in band] == [(code(2),)]
    assert "150" in band[0].detail and "200" in band[0].detail and "500" in band[0].detail
    assert band[0].geometry is not None
    skipped = check(community, frame, band=None)
    assert skipped.counts()["households_out_of_band"] == 0
    assert check(community, frame, band=(100, 400)).counts()["households_out_of_band"] == 0


def test_thin_gap_obeys_the_tolerance() -> None:
    community, cells = grid()
    cells[5] = square(1, 1).difference(shapely.box(X0 + STEP, Y0, X0 + STEP + 0.3, Y0 + 3 * STEP))
    frame = make_cells(cells)
    assert check(community, frame, tolerance_m=1.0).ok
    report = check(community, frame, tolerance_m=0.1)
    assert [p.kind for p in report.problems] == ["gap"]
    assert report.problems[0].area_m2 == pytest.approx(0.3 * STEP, rel=0.01)
    assert report.tolerance_m == 0.1


def test_thin_overlap_and_outside_obey_the_tolerance() -> None:
    community, cells = grid()
    cells[5] = square(1, 1, 1.003, 1)  # 0.3 m into the neighbour
    cells[3] = square(3, 0, 1.003, 1)  # 0.3 m past the edge
    frame = make_cells(cells)
    assert check(community, frame).ok
    report = check(community, frame, tolerance_m=0.1)
    assert report.counts()["overlap"] == 1 and report.counts()["outside"] == 1


def test_unmatched_vertices_without_overlap_are_fine() -> None:
    """Cells meeting at a T-junction fail coverage_is_valid but tile their community."""
    x, y, d = 118.78, 32.04, 0.001
    community = shapely.box(x, y, x + 2 * d, y + 2 * d)
    boxes = [
        shapely.box(x, y, x + 2 * d, y + d),
        shapely.box(x, y + d, x + d, y + 2 * d),  # (x + d, y + d) lies on the first box's edge
        shapely.box(x + d, y + d, x + 2 * d, y + 2 * d),
    ]
    assert not shapely.coverage_is_valid(boxes)
    frame = gpd.GeoDataFrame({"code": ["a", "b", "c"]}, geometry=boxes, crs=4326)
    assert validate_cells(community, frame).ok


def test_cells_in_another_crs_are_reprojected() -> None:
    community, cells = grid()
    frame = make_cells(cells).to_crs(3857)
    assert check(community, frame).ok


def test_multipolygon_community() -> None:
    community = shapely.union_all([square(0, 0), square(3, 0)])
    cells = [square(0, 0), square(3, 0)]
    assert check(community, make_cells(cells)).ok


def test_bad_input_raises() -> None:
    community, cells = grid()
    frame = make_cells(cells)
    with pytest.raises(GeodataError, match="code"):
        check(community, frame.drop(columns="code"))
    with pytest.raises(GeodataError, match="no geometry"):
        validate_cells(shapely.Polygon(), frame)
    with pytest.raises(GeodataError, match="band"):
        check(community, frame, band=(500, 200))
    with pytest.raises(GeodataError, match="negative"):
        check(community, frame, tolerance_m=-1)


def test_geojson_and_dict_are_json() -> None:
    community, cells = grid()
    cells.pop(5)
    cells[0] = square(0, 0, 1.2, 1)
    frame = make_cells(cells, has_leader=[True] * 10 + [False])
    report = check(community, frame)
    collection = report.to_geojson()
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == len(report.problems)
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        assert set(feature) >= {"type", "geometry", "properties"}
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon", "Point")
        assert set(feature["properties"]) == {
            "kind",
            "label",
            "cells",
            "detail",
            "area_m2",
            "building",
            "location",
        }
        assert feature["properties"]["label"] == PROBLEM_LABELS[feature["properties"]["kind"]]
        ring = feature["geometry"]["coordinates"][0]
        assert all(c == round(c, 7) for point in ring for c in point)
        assert shapely.geometry.shape(feature["geometry"]).is_valid
    text = json.dumps(collection, ensure_ascii=False)
    assert "空白区域" in text and "重叠" in text and "无格长" in text
    summary = report.as_dict()
    json.dumps(summary)
    assert summary["ok"] is False
    assert summary["counts"]["gap"] == 1 and summary["counts"]["overlap"] == 1
    assert all("geometry" not in p for p in summary["problems"])
    assert summary["cells_checked"] == 11 and summary["tolerance_m"] == 1.0


# -- real data ------------------------------------------------------------------------------


def real_grid(
    folder: Path, step: float, community: BaseGeometry | None = None
) -> tuple[BaseGeometry, gpd.GeoDataFrame]:
    """The community (default: the extract's extent), and step° squares over it clipped to it."""
    if community is None:
        community = gpd.read_file(folder / "extent.geojson").geometry.iloc[0]
    minx, miny, maxx, maxy = community.bounds
    xs = np.arange(minx, maxx, step)
    ys = np.arange(miny, maxy, step)
    boxes = [shapely.box(x, y, x + step, y + step) for y in ys for x in xs]
    clipped = shapely.intersection(np.array(boxes, dtype=object), community)
    clipped = clipped[shapely.area(clipped) > 0]
    frame = gpd.GeoDataFrame(
        {"code": [f"320102001001{k + 1:03d}" for k in range(len(clipped))]},
        geometry=clipped,
        crs=4326,
    )
    return community, frame


def test_real_nanjing_grid_is_ok_then_a_shifted_cell_is_found(nanjing: Path) -> None:
    community, cells = real_grid(nanjing, 0.0023)  # about 217 × 255 m; edge cells clipped
    assert len(cells) > 100
    report = validate_cells(community, cells)
    assert report.ok, report.problems[:3]
    buildings = gpd.read_file(nanjing / "buildings.geojson")[["geometry"]]
    assert validate_cells(community, cells, buildings).ok  # every building lies in some cell

    k = len(cells) // 2 + 3  # an inner cell
    original = cells.geometry.iloc[k]
    moved = cells.copy()
    shift = 5 / (111_320 * np.cos(np.radians(original.centroid.y)))  # 5 m east, in degrees
    moved.loc[moved.index[k], "geometry"] = shapely.affinity.translate(original, xoff=shift)
    report = validate_cells(community, moved)
    overlaps, gaps = of_kind(report, "overlap"), of_kind(report, "gap")
    assert overlaps and gaps
    assert all(cells.code.iloc[k] in p.cells for p in overlaps)
    near = original.buffer(1e-4)
    assert all(p.geometry.within(near) for p in overlaps + gaps)
    height_m = (original.bounds[3] - original.bounds[1]) * 111_000
    assert sum(p.area_m2 for p in gaps) == pytest.approx(5 * height_m, rel=0.05)
    assert sum(p.area_m2 for p in overlaps) == pytest.approx(5 * height_m, rel=0.05)


def test_real_nanjing_grid_clipped_to_an_irregular_outline_is_ok(nanjing: Path) -> None:
    buildings = gpd.read_file(nanjing / "buildings.geojson")
    outline = buildings.geometry.union_all().convex_hull  # slanted edges cut the border cells
    community, cells = real_grid(nanjing, 0.0023, outline)
    report = validate_cells(community, cells, buildings[["geometry"]])
    # the tiling is exact; clipping leaves a few tiny corner cells, which are slivers
    assert {p.kind for p in report.problems} <= {"sliver"}
    assert all(p.area_m2 < 50 and "only" in p.detail for p in report.problems)
    assert validate_cells(community, cells, sliver_m2=0).ok
    cells.loc[cells.index[0], "geometry"] = cells.geometry.iloc[0].buffer(0.0002)
    report = validate_cells(community, cells)
    assert report.counts()["outside"] == 1
    assert of_kind(report, "outside")[0].cells == (cells.code.iloc[0],)
    assert report.counts()["overlap"] >= 1


def test_real_beijing_removed_cell_leaves_its_buildings_without_a_cell(beijing: Path) -> None:
    community, cells = real_grid(beijing, 0.002)
    buildings = gpd.read_file(beijing / "buildings.geojson")
    buildings = gpd.GeoDataFrame({"id": buildings["osm_id"]}, geometry=buildings.geometry)
    assert validate_cells(community, cells, buildings).ok
    inside = buildings.geometry.intersects(cells.geometry.iloc[12])
    alone = inside & ~buildings.geometry.intersects(cells.drop(index=12).geometry.union_all())
    report = validate_cells(community, cells.drop(index=12), buildings)
    assert report.counts()["gap"] == 1
    unassigned = {p.building for p in of_kind(report, "building_unassigned")}
    assert unassigned == {str(v) for v in buildings.loc[alone, "id"]}


def test_thousand_cell_grid_is_valid() -> None:
    """The benchmark's 40 × 25 grid is a valid tiling (its speed: bench/bench_validate.py)."""
    community, cells = grid(40, 25)
    report = check(community, make_cells(cells))
    assert report.ok and report.cells_checked == 1000
