"""geodata.limits: the coordinate rule in every reader, zip checks from the directory alone."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from geodata.errors import GeodataError, InputTooLarge
from geodata.limits import DEFAULT_LIMITS, check_geojson_text, check_json_depth
from geodata.readers import read_features, read_table
from tests import bombs

SMALL = replace(DEFAULT_LIMITS, max_geometry_coordinates=20, max_file_coordinates=100)


def _ring(n: int) -> list[tuple[float, float]]:
    import math

    pts = [
        (
            118.9 + 0.001 * math.cos(2 * math.pi * k / n),
            32.1 + 0.001 * math.sin(2 * math.pi * k / n),
        )
        for k in range(n)
    ]
    return [*pts, pts[0]]


def _wkt(n: int) -> str:
    return "POLYGON((" + ",".join(f"{x:.7f} {y:.7f}" for x, y in _ring(n)) + "))"


def test_csv_wkt_row_over_the_coordinate_limit_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text(f'name,wkt\na,"{_wkt(8)}"\nb,"{_wkt(30)}"\n')
    with pytest.raises(
        GeodataError, match=r"b.csv: row 3: 31 coordinates; the limit per geometry is 20"
    ):
        read_features(path, limits=SMALL)
    assert len(read_features(path).gdf) == 2  # the default limits accept it


def test_shapefile_and_gpkg_obey_the_coordinate_limit(tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    gdf = gpd.GeoDataFrame(
        {"id": ["a", "big"]},
        geometry=[shapely.Polygon(_ring(8)), shapely.Polygon(_ring(40))],
        crs="EPSG:4326",
    )
    for name in ("b.shp", "b.gpkg"):
        gdf.to_file(tmp_path / name, engine="pyogrio")
        with pytest.raises(
            GeodataError, match=r"feature 'big': 41 coordinates; the limit per geometry is 20"
        ):
            read_features(tmp_path / name, limits=SMALL)


def test_coordinate_limit_per_file(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("lon,lat\n" + "118.9,32.1\n" * 101)
    with pytest.raises(GeodataError, match="101 coordinates in all; the limit per file is 100"):
        read_features(path, kind="point", limits=SMALL)


def test_geojson_text_is_counted_before_parsing() -> None:
    """Pretty-printed or compact, strings with brackets, numbers in properties: exact counts."""
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"note": "[1,2]]]", "levels": 6},
                "geometry": {"type": "Polygon", "coordinates": [_ring(8)]},
            },
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [_ring(20)]},
            },
        ],
    }
    for indent in (None, 2):
        data = json.dumps(fc, indent=indent).encode()
        with pytest.raises(GeodataError, match="feature #1: 21 coordinates"):
            check_geojson_text(data, SMALL)
        check_geojson_text(data, DEFAULT_LIMITS)


def test_json_depth() -> None:
    check_json_depth(
        b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',
        DEFAULT_LIMITS,
    )
    with pytest.raises(GeodataError, match="nested 65 levels deep; the limit is 64"):
        check_json_depth(b"[" * 65 + b"]" * 65, DEFAULT_LIMITS)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (replace(DEFAULT_LIMITS, max_zip_member_bytes=150), "unzips to"),
        (replace(DEFAULT_LIMITS, max_unzipped_bytes=400), "the archive unzips to more than"),
        (replace(DEFAULT_LIMITS, max_zip_members=3), "holds 4 entries; the limit is 3"),
    ],
)
def test_zip_limits_from_the_directory(tmp_path: Path, limits, message: str) -> None:
    parts = bombs.shapefile_members(tmp_path)
    path = tmp_path / "s.zip"
    path.write_bytes(bombs.write_zip(parts))
    assert len(read_features(path).gdf) == 1
    with pytest.raises(InputTooLarge, match=message):
        read_features(path, limits=limits)


def test_zip_ratio_limit(tmp_path: Path) -> None:
    parts = bombs.shapefile_members(tmp_path)
    path = tmp_path / "s.zip"
    path.write_bytes(bombs.write_zip([*parts, bombs.repeated("readme.txt", 8 * 1024 * 1024)]))
    with pytest.raises(
        InputTooLarge, match=r"readme.txt is compressed \d+:1 .* the limit is 100:1"
    ):
        read_features(path)


def test_workbook_part_limit(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    path.write_bytes(
        bombs.write_zip([*bombs.workbook_parts([["姓名"], ["张三"]]), bombs.shared_strings(50_000)])
    )
    assert read_table(path)["姓名"].tolist() == ["张三"]
    with pytest.raises(
        InputTooLarge, match=r"xl/sharedStrings.xml unzips to .* the limit for it is 20 KiB"
    ):
        read_table(path, limits=replace(DEFAULT_LIMITS, max_workbook_part_bytes=20 * 1024))
