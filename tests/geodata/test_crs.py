"""CRS handling: local UTM for measurement, normalisation of input to EPSG:4326."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from geodata.crs import area_m2, metric_crs, normalize_crs, to_metric
from geodata.errors import GeodataError
from geodata.readers import read_features

GEOD = pyproj.Geod(ellps="WGS84")
NANJING_SQUARE = shapely.box(118.775, 32.040, 118.776, 32.041)


@pytest.fixture(scope="module")
def nanjing_buildings(nanjing: Path) -> gpd.GeoDataFrame:
    """The real Nanjing building footprints as geopandas reads them."""
    return gpd.read_file(nanjing / "buildings.geojson")


def test_metric_crs_is_the_local_utm_zone(nanjing_buildings: gpd.GeoDataFrame) -> None:
    assert metric_crs(nanjing_buildings).to_epsg() == 32650
    assert metric_crs(nanjing_buildings) == nanjing_buildings.estimate_utm_crs()
    assert metric_crs(shapely.Point(116.35, 40.0)).to_epsg() == 32650  # Beijing
    assert metric_crs(shapely.Point(121.47, 31.23)).to_epsg() == 32651  # Shanghai
    assert metric_crs(shapely.Point(87.6, 43.8)).to_epsg() == 32645  # Urumqi
    assert metric_crs(np.array([shapely.Point(-70.6, -33.4)])).to_epsg() == 32719  # Santiago


@pytest.mark.parametrize("lon", [73.5, 80.0, 96.1, 104.0, 110.3, 118.8, 122.0, 134.5])
def test_metric_crs_agrees_with_pyproj_estimate(lon: float) -> None:
    series = gpd.GeoSeries([shapely.Point(lon, 30.0)], crs=4326)
    assert metric_crs(series) == series.estimate_utm_crs()


def test_metric_crs_of_projected_data_uses_its_lonlat_position(
    nanjing_buildings: gpd.GeoDataFrame,
) -> None:
    assert metric_crs(nanjing_buildings.to_crs(3857)).to_epsg() == 32650


def test_metric_crs_of_empty_data_raises() -> None:
    with pytest.raises(GeodataError, match="no non-empty geometry"):
        metric_crs(gpd.GeoSeries([], crs=4326))


def test_area_m2_matches_geodesic_area(nanjing_buildings: gpd.GeoDataFrame) -> None:
    areas = area_m2(nanjing_buildings)
    geodesic = np.array(
        [abs(GEOD.geometry_area_perimeter(g)[0]) for g in nanjing_buildings.geometry]
    )
    assert areas.shape == (1277,)
    np.testing.assert_allclose(areas, geodesic, rtol=3e-4)
    assert 1.0e6 < areas.sum() < 1.3e6  # about 1.17 km² of footprint


def test_area_m2_of_a_known_square() -> None:
    # 0.001° × 0.001° at 32°N: 94.5 m × 110.9 m
    area = area_m2(gpd.GeoSeries([NANJING_SQUARE], crs=4326))[0]
    expected = abs(GEOD.geometry_area_perimeter(NANJING_SQUARE)[0])
    assert area == pytest.approx(expected, rel=3e-4)
    assert 10_300 < area < 10_600


def test_area_m2_in_a_metric_crs_and_empty() -> None:
    square = gpd.GeoSeries([shapely.box(0, 0, 100, 50)], crs=32650)
    assert area_m2(square)[0] == pytest.approx(5000.0)
    assert area_m2(gpd.GeoSeries([], crs=4326)).shape == (0,)
    assert area_m2(gpd.GeoSeries([None, shapely.Polygon()], crs=4326)).tolist() == [0.0, 0.0]


def test_to_metric(nanjing_buildings: gpd.GeoDataFrame) -> None:
    metric = to_metric(nanjing_buildings)
    assert metric.crs.to_epsg() == 32650
    assert metric.total_bounds[0] > 100_000  # metres, not degrees


def test_normalize_reprojects_web_mercator(nanjing_buildings: gpd.GeoDataFrame) -> None:
    out = normalize_crs(nanjing_buildings.to_crs(3857))
    assert out.crs.to_epsg() == 4326
    np.testing.assert_allclose(
        shapely.get_coordinates(out.geometry.values),
        shapely.get_coordinates(nanjing_buildings.geometry.values),
        atol=1e-9,
    )


def test_normalize_reprojects_a_gauss_kruger_zone(nanjing_buildings: gpd.GeoDataFrame) -> None:
    # CGCS2000 / 3-degree Gauss-Kruger CM 120E, common in Chinese surveying data.
    projected = nanjing_buildings.to_crs(4549)
    assert projected.total_bounds[0] > 300_000
    out = normalize_crs(projected)
    coords = shapely.get_coordinates(out.geometry.values)
    original = shapely.get_coordinates(nanjing_buildings.geometry.values)
    gap = np.abs(GEOD.inv(coords[:, 0], coords[:, 1], original[:, 0], original[:, 1])[2])
    assert gap.max() < 0.01


def test_normalize_relabels_cgcs2000_without_moving(nanjing_buildings: gpd.GeoDataFrame) -> None:
    labelled = nanjing_buildings.set_crs(4490, allow_override=True)
    out = normalize_crs(labelled)
    assert out.crs.to_epsg() == 4326
    assert shapely.equals_exact(out.geometry.values, nanjing_buildings.geometry.values, 0).all()


def test_normalize_assumes_lonlat_without_crs(nanjing_buildings: gpd.GeoDataFrame) -> None:
    bare = gpd.GeoDataFrame(geometry=nanjing_buildings.geometry.to_numpy(), crs=None)
    out = normalize_crs(bare)
    assert out.crs.to_epsg() == 4326
    assert shapely.equals_exact(out.geometry.values, bare.geometry.values, 0).all()


def test_normalize_refuses_projected_data_without_crs(nanjing_buildings: gpd.GeoDataFrame) -> None:
    bare = gpd.GeoDataFrame(geometry=nanjing_buildings.to_crs(32650).geometry.to_numpy(), crs=None)
    with pytest.raises(GeodataError, match=r"blocks\.shp: .*no coordinate reference system.*\.prj"):
        normalize_crs(bare, name="blocks.shp")


def test_normalize_hints_at_swapped_axes() -> None:
    swapped = gpd.GeoDataFrame(geometry=[shapely.Point(32.04, 118.77)], crs=None)
    with pytest.raises(GeodataError, match="swapped"):
        normalize_crs(swapped)


def test_normalize_with_a_given_crs(nanjing_buildings: gpd.GeoDataFrame) -> None:
    bare = gpd.GeoDataFrame(geometry=nanjing_buildings.to_crs(32650).geometry.to_numpy(), crs=None)
    out = normalize_crs(bare, "EPSG:32650")
    assert np.allclose(out.total_bounds, nanjing_buildings.total_bounds, atol=1e-8)
    with pytest.raises(GeodataError, match="unknown CRS"):
        normalize_crs(bare, "EPSG:999999")


def test_normalize_rejects_a_wrong_declared_crs() -> None:
    # metres labelled as degrees
    wrong = gpd.GeoDataFrame(geometry=[shapely.Point(661_000, 3_547_000)], crs=4326)
    with pytest.raises(GeodataError, match="declared CRS is probably wrong"):
        normalize_crs(wrong, name="x.geojson")


def test_reader_reprojects_utm_shapefile_and_3857_geopackage(
    tmp_path: Path, nanjing_buildings: gpd.GeoDataFrame
) -> None:
    subset = nanjing_buildings.iloc[:50][["osm_id", "geometry"]]
    subset.to_crs(32650).to_file(tmp_path / "utm.shp")
    subset.to_crs(3857).to_file(tmp_path / "merc.gpkg", layer="buildings")
    for name, label in (("utm.shp", "EPSG:32650"), ("merc.gpkg", "EPSG:3857")):
        result = read_features(tmp_path / name)
        assert result.source_crs == label
        assert result.gdf.crs.to_epsg() == 4326
        # shapefiles store rings clockwise: compare normalised geometries
        got = shapely.get_coordinates(shapely.normalize(result.gdf.geometry.values))
        want = shapely.get_coordinates(shapely.normalize(subset.geometry.values))
        np.testing.assert_allclose(got, want, atol=1e-8)


def test_reader_relabels_4490_geopackage(
    tmp_path: Path, nanjing_buildings: gpd.GeoDataFrame
) -> None:
    subset = nanjing_buildings.iloc[:20][["osm_id", "geometry"]]
    subset.set_crs(4490, allow_override=True).to_file(tmp_path / "cgcs.gpkg")
    result = read_features(tmp_path / "cgcs.gpkg")
    assert result.source_crs == "EPSG:4490"
    assert result.gdf.crs.to_epsg() == 4326
    got = shapely.get_coordinates(result.gdf.geometry.values)
    np.testing.assert_array_equal(got, shapely.get_coordinates(subset.geometry.values))


def test_reader_refuses_projected_shapefile_without_prj(
    tmp_path: Path, nanjing_buildings: gpd.GeoDataFrame
) -> None:
    nanjing_buildings.iloc[:5][["osm_id", "geometry"]].to_crs(32650).to_file(tmp_path / "b.shp")
    (tmp_path / "b.prj").unlink()
    with pytest.raises(GeodataError, match=r"b\.shp.*seems to be projected.*\.prj"):
        read_features(tmp_path / "b.shp")
    result = read_features(tmp_path / "b.shp", crs="EPSG:32650")
    assert result.source_crs == "EPSG:32650"
    assert result.gdf.total_bounds[0] == pytest.approx(nanjing_buildings.iloc[:5].total_bounds[0])
