"""GCJ-02 / BD-09 datum shifts: against the published formula, round trips, China box."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import ArrayLike

from geodata.china import (
    Datum,
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert_geometries,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    parse_datum,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geodata.errors import GeodataError

GEOD = pyproj.Geod(ellps="WGS84")


def metres(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray:
    """Geodesic distance in metres between point arrays."""
    return np.abs(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def reference_wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """The widely published scalar algorithm (coordTransform, eviltransform), written with math."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlon += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    radlat = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (a / sqrtmagic * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


def reference_gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Baidu's published GCJ-02 → BD-09 formula."""
    x_pi = math.pi * 3000.0 / 180.0
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * x_pi)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * x_pi)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


CHINA_POINTS = [
    (118.7770, 32.0440),  # 南京 新街口
    (116.3520, 40.0030),  # 北京 学院路
    (121.4737, 31.2304),  # 上海
    (91.1172, 29.6469),  # 拉萨
    (87.6168, 43.8256),  # 乌鲁木齐
    (126.6424, 45.7567),  # 哈尔滨
    (109.5120, 18.2528),  # 三亚
    (114.1694, 22.3193),  # 香港 (inside the box: shifted like every implementation does)
]
OUTSIDE = [
    (2.3522, 48.8566),  # Paris
    (139.6917, 35.6895),  # Tokyo: east of 137.8347°E
    (-74.0060, 40.7128),  # New York
    (151.2093, -33.8688),  # Sydney
    (37.6173, 55.7558),  # Moscow: west of 72.004°E
    (100.0, 60.0),  # Siberia: north of 55.8271°N
]


@pytest.mark.parametrize(("lon", "lat"), CHINA_POINTS)
def test_forward_shifts_match_the_published_formulas(lon: float, lat: float) -> None:
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert (glon, glat) == pytest.approx(reference_wgs84_to_gcj02(lon, lat), abs=1e-12)
    blon, blat = gcj02_to_bd09(glon, glat)
    assert (blon, blat) == pytest.approx(reference_gcj02_to_bd09(glon, glat), abs=1e-12)
    assert wgs84_to_bd09(lon, lat) == pytest.approx((blon, blat), abs=1e-12)


def test_known_value_beijing() -> None:
    # Tiananmen example used across GCJ-02 libraries (eviltransform, coordtransform).
    assert wgs84_to_gcj02(116.404, 39.915) == pytest.approx(
        (116.41024449916938, 39.91640428150164), abs=1e-12
    )


def test_shift_is_hundreds_of_metres_in_china() -> None:
    lon, lat = np.array(CHINA_POINTS).T
    glon, glat = wgs84_to_gcj02(lon, lat)
    blon, blat = wgs84_to_bd09(lon, lat)
    assert np.all((metres(lon, lat, glon, glat) > 100) & (metres(lon, lat, glon, glat) < 1000))
    assert np.all(metres(lon, lat, blon, blat) > 500)


def test_scalars_give_floats_and_arrays_keep_shape() -> None:
    lon, lat = wgs84_to_gcj02(118.777, 32.044)
    assert isinstance(lon, float) and isinstance(lat, float)
    grid_lon, grid_lat = np.meshgrid(np.linspace(118.7, 118.8, 4), np.linspace(32.0, 32.1, 3))
    out_lon, out_lat = gcj02_to_wgs84(grid_lon, grid_lat)
    assert out_lon.shape == (3, 4) and out_lat.shape == (3, 4)
    listed = wgs84_to_bd09([118.7, 118.8], [32.0, 32.1])
    assert listed[0].shape == (2,)


@pytest.mark.parametrize(("lon", "lat"), OUTSIDE)
def test_points_outside_china_are_unchanged(lon: float, lat: float) -> None:
    assert out_of_china(lon, lat)
    for func in (
        wgs84_to_gcj02,
        gcj02_to_wgs84,
        gcj02_to_bd09,
        bd09_to_gcj02,
        bd09_to_wgs84,
        wgs84_to_bd09,
    ):
        assert func(lon, lat) == (lon, lat)


def test_out_of_china_mask_and_nan() -> None:
    lon = np.array([118.78, 139.69, np.nan, 72.0, 72.01])
    lat = np.array([32.04, 35.68, 32.0, 30.0, 30.0])
    assert out_of_china(lon, lat).tolist() == [False, True, True, True, False]
    shifted = wgs84_to_gcj02(lon, lat)[0]
    assert np.isnan(shifted[2]) and shifted[1] == 139.69 and shifted[0] != 118.78


def test_mixed_array_only_shifts_points_inside() -> None:
    lon = np.array([118.78, 2.35])
    lat = np.array([32.04, 48.85])
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon[1] == 2.35 and glat[1] == 48.85
    assert glon[0] != 118.78


def test_iterative_inverse_beats_the_one_step_inverse() -> None:
    # The crude inverse (subtract the offset computed at the GCJ-02 point) is off by metres.
    lon, lat = 87.6168, 43.8256
    glon, glat = wgs84_to_gcj02(lon, lat)
    crude = (2 * glon - wgs84_to_gcj02(glon, glat)[0], 2 * glat - wgs84_to_gcj02(glon, glat)[1])
    assert metres(lon, lat, *crude) > 0.1
    assert metres(lon, lat, *gcj02_to_wgs84(glon, glat)) < 1e-6


inside_china = st.tuples(
    st.floats(min_value=73.0, max_value=135.0), st.floats(min_value=18.0, max_value=53.5)
)
outside_china = st.one_of(
    st.tuples(st.floats(-180, 71.9), st.floats(-90, 90)),
    st.tuples(st.floats(137.9, 180), st.floats(-90, 90)),
    st.tuples(st.floats(-180, 180), st.floats(55.9, 90)),
    st.tuples(st.floats(-180, 180), st.floats(-90, 0.8)),
)


@settings(max_examples=300, deadline=None)
@given(inside_china)
def test_gcj02_round_trip_within_a_centimetre(point: tuple[float, float]) -> None:
    lon, lat = point
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres(lon, lat, *back) < 0.01
    forth = wgs84_to_gcj02(*gcj02_to_wgs84(lon, lat))
    assert metres(lon, lat, *forth) < 0.01


@settings(max_examples=300, deadline=None)
@given(inside_china)
def test_bd09_round_trip_within_a_centimetre(point: tuple[float, float]) -> None:
    lon, lat = point
    assert metres(lon, lat, *bd09_to_wgs84(*wgs84_to_bd09(lon, lat))) < 0.01
    assert metres(lon, lat, *bd09_to_gcj02(*gcj02_to_bd09(lon, lat))) < 0.01


@settings(max_examples=200, deadline=None)
@given(outside_china)
def test_outside_china_is_identity(point: tuple[float, float]) -> None:
    lon, lat = point
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)
    assert bd09_to_wgs84(lon, lat) == (lon, lat)
    assert wgs84_to_bd09(lon, lat) == (lon, lat)


def test_vectorised_round_trip_of_many_points() -> None:
    rng = np.random.default_rng(7)
    lon = rng.uniform(73, 135, 50_000)
    lat = rng.uniform(18, 53.5, 50_000)
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres(lon, lat, *back).max() < 0.001


@pytest.mark.parametrize(
    ("text", "datum"),
    [
        ("WGS84", Datum.WGS84),
        ("wgs-84", Datum.WGS84),
        ("EPSG:4326", Datum.WGS84),
        ("epsg:4326", Datum.WGS84),
        ("CGCS2000", Datum.CGCS2000),
        ("EPSG:4490", Datum.CGCS2000),
        ("GCJ-02", Datum.GCJ02),
        ("gcj02", Datum.GCJ02),
        (" GCJ_02 ", Datum.GCJ02),
        ("BD-09", Datum.BD09),
        ("bd09", Datum.BD09),
        ("BD09LL", Datum.BD09),
        (Datum.BD09, Datum.BD09),
    ],
)
def test_parse_datum(text: str, datum: Datum) -> None:
    assert parse_datum(text) is datum


@pytest.mark.parametrize("text", ["", "mercator", "EPSG:3857", "bd09mc", "gcj03"])
def test_parse_datum_rejects_unknown(text: str) -> None:
    with pytest.raises(GeodataError, match="datum"):
        parse_datum(text)


def test_datum_values() -> None:
    assert [d.value for d in Datum] == ["wgs84", "cgcs2000", "gcj02", "bd09"]


def test_convert_geometries_moves_every_vertex_of_every_type() -> None:
    poly = shapely.Polygon(
        [(118.77, 32.04), (118.78, 32.04), (118.78, 32.05), (118.77, 32.05)],
        holes=[[(118.773, 32.043), (118.776, 32.043), (118.776, 32.046)]],
    )
    geoms = np.array(
        [
            poly,
            shapely.MultiPolygon([poly]),
            shapely.LineString([(118.77, 32.04), (118.78, 32.05)]),
            shapely.Point(118.77, 32.04),
            shapely.GeometryCollection([shapely.Point(118.7, 32.0), poly]),
            None,
            shapely.Polygon(),
        ],
        dtype=object,
    )
    shifted = convert_geometries(geoms, Datum.WGS84, target=Datum.GCJ02)
    assert shapely.is_missing(shifted[5]) and shapely.is_empty(shifted[6])
    before = shapely.get_coordinates(geoms)
    after = shapely.get_coordinates(shifted)
    expected = np.column_stack(wgs84_to_gcj02(before[:, 0], before[:, 1]))
    np.testing.assert_allclose(after, expected, rtol=0, atol=1e-12)
    back = convert_geometries(shifted, "gcj02")
    assert metres(*before.T, *shapely.get_coordinates(back).T).max() < 0.001
    assert shapely.get_num_interior_rings(back[0]) == 1


def test_convert_geometries_keeps_geoseries_index_crs_and_z() -> None:
    series = gpd.GeoSeries(
        [shapely.Point(118.77, 32.04, 15.0), shapely.Point(2.35, 48.85)],
        index=["a", "b"],
        crs=4326,
        name="geometry",
    )
    out = convert_geometries(series, Datum.BD09)
    assert isinstance(out, gpd.GeoSeries)
    assert list(out.index) == ["a", "b"] and out.crs == series.crs
    assert out.iloc[0].has_z and out.iloc[0].z == 15.0
    assert out.iloc[1].equals(series.iloc[1])  # Paris is not shifted
    assert metres(118.77, 32.04, out.iloc[0].x, out.iloc[0].y) > 500


def test_convert_geometries_wgs84_and_cgcs2000_are_no_ops() -> None:
    geom = shapely.Point(118.77, 32.04)
    assert convert_geometries(geom, "cgcs2000") is geom
    assert convert_geometries(geom, "wgs84", target="EPSG:4490") is geom
    assert convert_geometries(geom, "gcj02", target="gcj02").equals(geom)


def test_convert_geometries_accepts_lists_and_geometry_arrays() -> None:
    point = shapely.Point(118.77, 32.04)
    from_list = convert_geometries([point], Datum.GCJ02)
    assert isinstance(from_list, np.ndarray) and from_list[0].x != 118.77
    array = gpd.GeoSeries([point], crs=4326).values
    out = convert_geometries(array, Datum.GCJ02)
    assert isinstance(out, type(array)) and out.crs == array.crs
    assert out[0].equals(from_list[0])
    gdf = gpd.GeoDataFrame(geometry=[point], crs=4326)
    assert gdf.set_geometry(out).crs.to_epsg() == 4326
