"""Household estimates from footprint area, levels and building type."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geodata.crs import area_m2
from geodata.errors import GeodataError
from geodata.estimate import RESIDENTIAL_BUILDING_VALUES, estimate_households, parse_levels
from geodata.readers import read_features


def square_m(side: float, lon: float = 118.78, lat: float = 32.04) -> shapely.Polygon:
    """A square of about side × side metres at (lon, lat), in degrees."""
    dlat = side / 110_900.0
    dlon = side / 94_500.0
    return shapely.box(lon, lat, lon + dlon, lat + dlat)


def buildings(**columns: list) -> gpd.GeoDataFrame:
    """Buildings of 30 m × 30 m (about 900 m²) with the given attribute columns."""
    n = len(next(iter(columns.values())))
    geoms = [square_m(30.0, lon=118.78 + i * 0.001) for i in range(n)]
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=4326)


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("6", 6),
        ("6.0", 6),
        ("6;7", 6),
        (" 12 ", 12),
        ("2.5", 3),
        ("１８", 18),  # full-width digits, as typed with a Chinese IME
        ("abc", None),
        ("", None),
        (None, None),
        ("0", None),
        ("-3", 3),  # "-" is not part of a number: OSM levels are never negative
        ("999", None),
        (4.0, 4),
        (float("nan"), None),
    ],
)
def test_parse_levels(text: object, levels: int | None) -> None:
    result = parse_levels(pd.Series([text], dtype=object))
    assert str(result.dtype) == "Int64"
    if levels is None:
        assert result.isna().iloc[0]
    else:
        assert result.iloc[0] == levels


def test_estimate_formula() -> None:
    gdf = buildings(building=["residential", "apartments", "residential"])
    gdf["building:levels"] = ["10", None, "bad"]
    households, estimated = estimate_households(gdf)
    area = area_m2(gdf)
    expected = [round(area[0] * 10 / 90), round(area[1] * 6 / 90), round(area[2] * 6 / 90)]
    assert list(households) == expected
    assert expected[0] == 100 and expected[1] == 60  # 900 m² × 10 ÷ 90; × 6 ÷ 90
    assert estimated.tolist() == [True, True, True]
    assert str(households.dtype) == "Int64" and estimated.dtype == bool
    assert households.name == "households"


def test_given_households_are_kept() -> None:
    gdf = buildings(building=["residential", "office", "residential"], households=[42, 7, None])
    households, estimated = estimate_households(gdf)
    assert households.tolist() == [42, 7, 60]
    assert estimated.tolist() == [False, False, True]


def test_non_residential_and_yes_get_zero() -> None:
    gdf = buildings(building=["yes", "office", "school", None])
    households, estimated = estimate_households(gdf)
    assert households.tolist() == [0, 0, 0, 0]
    assert not estimated.any()
    assert not households.isna().any()


def test_yes_can_be_counted_as_residential() -> None:
    gdf = buildings(building=["yes", "office"])
    households, estimated = estimate_households(
        gdf, residential_values=(*RESIDENTIAL_BUILDING_VALUES, "yes")
    )
    assert households.tolist() == [60, 0]
    assert estimated.tolist() == [True, False]


def test_kind_column_levels_column_and_parameters() -> None:
    gdf = buildings(kind=["Residential", "shop"], levels=[3, 3])
    households, _ = estimate_households(gdf, dwelling_area_m2=45.0)
    assert households.tolist() == [60, 0]  # 900 × 3 ÷ 45
    households, _ = estimate_households(gdf.drop(columns="levels"), default_levels=2)
    assert households.tolist() == [20, 0]


def test_tiny_residential_building_has_at_least_one_household() -> None:
    gdf = gpd.GeoDataFrame({"building": ["house"]}, geometry=[square_m(3.0)], crs=4326)
    households, estimated = estimate_households(gdf)
    assert households.tolist() == [1] and estimated.tolist() == [True]


def test_height_fallback_is_opt_in() -> None:
    gdf = buildings(building=["residential"], height=["30 m"])
    assert estimate_households(gdf)[0].tolist() == [60]  # default 6 levels
    assert estimate_households(gdf, height_per_level_m=3.0)[0].tolist() == [100]


def test_bad_parameters() -> None:
    gdf = buildings(building=["residential"])
    with pytest.raises(GeodataError, match="dwelling_area_m2"):
        estimate_households(gdf, dwelling_area_m2=0)
    with pytest.raises(GeodataError, match="default_levels"):
        estimate_households(gdf, default_levels=0)


def test_no_building_column() -> None:
    gdf = gpd.GeoDataFrame(geometry=[square_m(30.0)], crs=4326)
    households, estimated = estimate_households(gdf)
    assert households.tolist() == [0] and estimated.tolist() == [False]


@pytest.mark.parametrize(
    ("city", "residential"),
    [("nanjing_xinjiekou", 88), ("beijing_haidian_xueyuanlu", 58)],
)
def test_real_buildings(shared_data: Path, city: str, residential: int) -> None:
    gdf = read_features(shared_data / city / "buildings.geojson").gdf
    households, estimated = estimate_households(gdf)
    # residential + apartments + house + dormitory in each extract
    assert int(estimated.sum()) == residential
    assert (households[estimated] >= 1).all()
    assert (households[~estimated] == 0).all()
    assert households.index.equals(gdf.index)
