"""write_features round trips through read_features for every supported format."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely

from geodata.errors import GeodataError
from geodata.readers import read_features
from geodata.writers import write_features

NAMES = ["新街口社区", "华侨路二十六号小区", "五台山"]


@pytest.fixture
def cells() -> gpd.GeoDataFrame:
    """Three small cells in 新街口 with Chinese names."""
    geoms = [
        shapely.box(118.775 + 0.002 * i, 32.040, 118.776 + 0.002 * i, 32.041) for i in range(3)
    ]
    return gpd.GeoDataFrame(
        {"code": ["A01", "A02", "A03"], "name": NAMES, "households": [310, 288, 295]},
        geometry=geoms,
        crs=4326,
    )


@pytest.mark.parametrize("suffix", [".geojson", ".json", ".gpkg", ".shp", ".kml"])
def test_round_trip(cells: gpd.GeoDataFrame, tmp_path: Path, suffix: str) -> None:
    path = write_features(cells, tmp_path / f"cells{suffix}")
    assert path.exists()
    result = read_features(path)
    assert result.gdf["name"].tolist() == NAMES
    gap = shapely.hausdorff_distance(result.gdf.geometry.values, cells.geometry.values)
    assert gap.max() < 1e-9
    if suffix != ".kml":  # KML keeps only name and description as typed data
        assert result.gdf["households"].astype(int).tolist() == [310, 288, 295]


def test_shapefile_is_utf8_with_cpg(cells: gpd.GeoDataFrame, tmp_path: Path) -> None:
    write_features(cells, tmp_path / "cells.shp")
    assert (tmp_path / "cells.cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    assert pyogrio.read_info(tmp_path / "cells.shp")["encoding"] == "UTF-8"


def test_overwrite(cells: gpd.GeoDataFrame, tmp_path: Path) -> None:
    for suffix in (".geojson", ".gpkg", ".shp"):
        write_features(cells, tmp_path / f"c{suffix}")
        write_features(cells.iloc[:1], tmp_path / f"c{suffix}")
        assert len(read_features(tmp_path / f"c{suffix}").gdf) == 1


def test_geojson_is_written_in_4326(cells: gpd.GeoDataFrame, tmp_path: Path) -> None:
    path = write_features(cells.to_crs(32650), tmp_path / "utm.geojson")
    assert pyogrio.read_info(path)["crs"] == "EPSG:4326"
    assert read_features(path).gdf.total_bounds == pytest.approx(cells.total_bounds, abs=1e-9)


def test_geopackage_keeps_metric_crs_and_layer_name(
    cells: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    path = write_features(cells.to_crs(32650), tmp_path / "grid.gpkg", layer="cells")
    assert pyogrio.list_layers(path)[0][0] == "cells"
    assert pyogrio.read_info(path)["crs"] == "EPSG:32650"


def test_explicit_driver_and_unknown_suffix(cells: gpd.GeoDataFrame, tmp_path: Path) -> None:
    path = write_features(cells, tmp_path / "cells.data", driver="GeoJSON")
    assert read_features(path).gdf["code"].tolist() == ["A01", "A02", "A03"]
    with pytest.raises(GeodataError, match=r"cells\.txt: cannot write \.txt"):
        write_features(cells, tmp_path / "cells.txt")


def test_mixed_geometries_to_shapefile_is_a_geodata_error(tmp_path: Path) -> None:
    mixed = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1), shapely.Point(0, 0)], crs=4326)
    with pytest.raises(GeodataError, match=r"mixed\.shp: cannot write as ESRI Shapefile"):
        write_features(mixed, tmp_path / "mixed.shp")


def test_shapefile_names_are_mapped_never_cut(cells: gpd.GeoDataFrame, tmp_path: Path) -> None:
    long = cells.assign(community_code="320102001001")
    with pytest.raises(GeodataError, match="community_code"):
        write_features(long, tmp_path / "long.shp")
    path = write_features(long, tmp_path / "ok.shp", field_names={"community_code": "comm_code"})
    assert "comm_code" in pyogrio.read_info(path)["fields"]


def test_geopackage_is_version_1_2_with_aliases(cells: gpd.GeoDataFrame, tmp_path: Path) -> None:
    import sqlite3

    path = write_features(cells, tmp_path / "c.gpkg", layer="cells", aliases={"name": "名称"})
    write_features(cells, path, layer="more", add_layer=True, aliases={"code": "编码"})
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200
        rows = db.execute("SELECT table_name, column_name, name FROM gpkg_data_columns").fetchall()
    assert sorted(rows) == [("cells", "name", "名称"), ("more", "code", "编码")]
