"""`gridsvc outline` across a river: two parts, a meaningful name, one part on request."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
from typer.testing import CliRunner

from gridsvc.cli import app
from tests.geodata.test_partition_water import river_town

runner = CliRunner()


def test_outline_across_a_river_is_two_parts_named_after_the_file(tmp_path: Path) -> None:
    buildings, roads, water = river_town(300, 300)
    buildings.drop(columns="bank").to_file(tmp_path / "河畔.geojson", driver="GeoJSON")
    roads.to_file(tmp_path / "roads.geojson", driver="GeoJSON")
    water.to_file(tmp_path / "water.geojson", driver="GeoJSON")
    args = ["outline", str(tmp_path / "河畔.geojson"), "--roads", str(tmp_path / "roads.geojson")]
    result = runner.invoke(
        app,
        [
            *args,
            "--water",
            str(tmp_path / "water.geojson"),
            "-o",
            str(tmp_path / "outline.geojson"),
        ],
    )
    assert result.exit_code == 0, result.output
    written = gpd.read_file(tmp_path / "outline.geojson")
    assert written["name"].tolist() == ["河畔"]  # not "outline"
    assert (
        written.geom_type.tolist() == ["MultiPolygon"] and len(written.geometry.iloc[0].geoms) == 2
    )
    assert "2 part(s)" in result.output
    result = runner.invoke(
        app, [*args, "--single", "--name", "河畔社区", "-o", str(tmp_path / "one.geojson")]
    )
    assert result.exit_code == 0, result.output
    one = gpd.read_file(tmp_path / "one.geojson")
    assert one["name"].tolist() == ["河畔社区"] and one.geom_type.tolist() == ["Polygon"]
