"""Geometry repair: invalid, empty, wrong-kind and 3D input, and real OSM footprints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely import wkt

from geodata.errors import GeodataError
from geodata.validate import RepairNote, parse_kind, repair_geometries

BOWTIE = "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"


def frame(*geoms: str | None, ids: list[str] | None = None) -> gpd.GeoDataFrame:
    """A GeoDataFrame of WKT geometries (None for a null geometry) with source ids a, b, c …"""
    values = [wkt.loads(g) if g is not None else None for g in geoms]
    ids = ids or [chr(ord("a") + i) for i in range(len(values))]
    return gpd.GeoDataFrame({"source_id": ids, "n": range(len(values))}, geometry=values, crs=4326)


def test_bowtie_is_repaired_and_reported() -> None:
    out, notes = repair_geometries(frame(BOWTIE, "POLYGON ((0 0, 1 0, 1 1, 0 0))"), "polygon")
    assert notes == [RepairNote(0, "a", "repaired", "Self-intersection[0.5 0.5]")]
    fixed = out.geometry.iloc[0]
    assert fixed.geom_type == "MultiPolygon" and fixed.is_valid
    assert len(fixed.geoms) == 2
    assert fixed.area == pytest.approx(0.5)  # both triangles kept, nothing invented


def test_empty_and_null_geometries_are_rejected_not_dropped_silently() -> None:
    gdf = frame("POLYGON EMPTY", None, "POLYGON ((0 0, 1 0, 1 1, 0 0))")
    out, notes = repair_geometries(gdf, "polygon")
    assert notes == [
        RepairNote(0, "a", "rejected", "empty geometry"),
        RepairNote(1, "b", "rejected", "missing geometry"),
    ]
    assert list(out.index) == [2] and list(out["source_id"]) == ["c"]


def test_collapsed_polygon_is_rejected_with_the_reason() -> None:
    out, notes = repair_geometries(frame("POLYGON ((0 0, 1 0, 2 0, 0 0))"), "polygon")
    assert len(out) == 0
    assert notes[0].action == "rejected"
    assert (
        notes[0].reason.startswith("Self-intersection") and "no polygon is left" in notes[0].reason
    )


def test_wrong_kind_is_rejected() -> None:
    gdf = frame("POINT (1 2)", "LINESTRING (0 0, 1 1)", "POLYGON ((0 0, 1 0, 1 1, 0 0))")
    out, notes = repair_geometries(gdf, "polygon")
    assert [n.reason for n in notes] == [
        "Point where a polygon was expected",
        "LineString where a polygon was expected",
    ]
    assert len(out) == 1


def test_polygons_are_promoted_to_multipolygons_and_made_2d() -> None:
    gdf = frame(
        "POLYGON Z ((0 0 5, 1 0 5, 1 1 5, 0 0 5))",
        "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))",
    )
    out, notes = repair_geometries(gdf, "polygon")
    assert notes == []
    assert list(out.geom_type) == ["MultiPolygon", "MultiPolygon"]
    assert not out.has_z.any()
    assert out.geometry.iloc[1].equals(gdf.geometry.iloc[1])


def test_collection_keeps_its_polygons() -> None:
    gdf = frame(
        "GEOMETRYCOLLECTION (POLYGON ((0 0, 1 0, 1 1, 0 0)), POINT (5 5), "
        "LINESTRING (0 0, 9 9), MULTIPOLYGON (((2 2, 3 2, 3 3, 2 2))))"
    )
    out, notes = repair_geometries(gdf, "polygon")
    assert notes == [RepairNote(0, "a", "repaired", "dropped 2 part(s) that are not a polygon")]
    result = out.geometry.iloc[0]
    assert result.geom_type == "MultiPolygon" and len(result.geoms) == 2


def test_overlapping_collection_members_are_merged_into_a_valid_multipolygon() -> None:
    gdf = frame(
        "GEOMETRYCOLLECTION (POLYGON ((0 0, 2 0, 2 2, 0 2, 0 0)), "
        "POLYGON ((1 1, 3 1, 3 3, 1 3, 1 1)))"
    )
    out, notes = repair_geometries(gdf, "polygon")
    assert out.geometry.iloc[0].is_valid
    assert out.geometry.iloc[0].area == pytest.approx(7.0)
    assert notes[0].action == "repaired"


def test_invalid_multipolygon_with_overlapping_parts() -> None:
    gdf = frame("MULTIPOLYGON (((0 0, 2 0, 2 2, 0 2, 0 0)), ((1 1, 3 1, 3 3, 1 3, 1 1)))")
    out, notes = repair_geometries(gdf, "polygon")
    assert notes[0].reason.startswith("Self-intersection")
    assert out.geometry.iloc[0].is_valid and out.geometry.iloc[0].area == pytest.approx(7.0)


def test_hole_outside_shell_and_spike() -> None:
    gdf = frame(
        "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (20 20, 21 20, 21 21, 20 20))",
        "POLYGON ((0 0, 10 0, 10 10, 10 20, 10 10, 0 10, 0 0))",
    )
    out, notes = repair_geometries(gdf, "polygon")
    assert [n.action for n in notes] == ["repaired", "repaired"]
    assert out.is_valid.all()
    assert out.geometry.iloc[1].area == pytest.approx(100.0)


def test_non_finite_coordinates_are_rejected() -> None:
    gdf = gpd.GeoDataFrame(
        {"source_id": ["x"]},
        geometry=[shapely.Polygon([(0, 0), (float("inf"), 0), (1, 1), (0, 0)])],
    )
    out, notes = repair_geometries(gdf, "polygon")
    assert len(out) == 0
    assert notes[0].action == "rejected" and notes[0].reason.startswith("Invalid Coordinate")


def test_lines() -> None:
    gdf = frame(
        "LINESTRING (0 0, 1 1)",
        "MULTILINESTRING ((0 0, 1 1), (2 2, 3 3))",
        "LINESTRING (0 0, 0 0)",
        "POLYGON ((0 0, 1 0, 1 1, 0 0))",
        "LINESTRING Z (0 0 1, 1 1 1)",
    )
    out, notes = repair_geometries(gdf, "line")
    assert list(out.geom_type) == ["MultiLineString"] * 3
    assert not out.has_z.any()
    assert [(n.index, n.action) for n in notes] == [(2, "rejected"), (3, "rejected")]
    assert notes[1].reason == "Polygon where a line was expected"


def test_points() -> None:
    gdf = frame(
        "POINT (1 2)",
        "MULTIPOINT ((3 4))",
        "MULTIPOINT ((1 1), (2 2))",
        "POINT Z (1 2 3)",
        "POLYGON ((0 0, 1 0, 1 1, 0 0))",
    )
    out, notes = repair_geometries(gdf, "point")
    assert list(out.geom_type) == ["Point", "Point", "Point"]
    assert out.geometry.iloc[1].equals(shapely.Point(3, 4))
    assert [(n.index, n.reason) for n in notes] == [
        (2, "2 points where a single point was expected"),
        (4, "Polygon where a point was expected"),
    ]


def test_index_and_input_are_preserved() -> None:
    gdf = frame(BOWTIE, "POLYGON EMPTY", "POLYGON ((0 0, 1 0, 1 1, 0 0))")
    gdf.index = [10, 20, 30]
    before = gdf.copy()
    out, notes = repair_geometries(gdf, "polygon")
    assert list(out.index) == [10, 30]
    assert [n.index for n in notes] == [0, 1]  # positions, not labels
    assert out.crs == gdf.crs and list(out.columns) == list(gdf.columns)
    assert gdf.geometry.iloc[0].equals(before.geometry.iloc[0])  # input untouched


def test_notes_without_ids_and_are_frozen() -> None:
    gdf = gpd.GeoDataFrame(geometry=[wkt.loads(BOWTIE)])
    _, notes = repair_geometries(gdf, "polygon")
    assert notes[0].source_id is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        notes[0].reason = "x"  # type: ignore[misc]


def test_parse_kind() -> None:
    assert parse_kind("Polygons") == "polygon"
    assert parse_kind("line") == "line"
    with pytest.raises(GeodataError, match="unknown geometry kind"):
        parse_kind("raster")


@pytest.mark.parametrize("city", ["nanjing_xinjiekou", "beijing_haidian_xueyuanlu"])
def test_real_osm_buildings_are_all_valid(shared_data: Path, city: str) -> None:
    buildings = gpd.read_file(shared_data / city / "buildings.geojson")
    out, notes = repair_geometries(buildings, "polygon")
    # Both extracts are clean: no footprint needs repair and none is rejected.
    assert notes == []
    assert len(out) == len(buildings) and out.is_valid.all()
    assert (out.geom_type == "MultiPolygon").all()
    assert shapely.equals(out.geometry.values, buildings.geometry.values).all()
