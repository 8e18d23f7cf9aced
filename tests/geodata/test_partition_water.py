"""Natural boundaries: outlines and cells respect water and rail (issue 19, item 3).

The fixture is made for the purpose: two groups of buildings on either bank of an 80 m river
running north–south, a bridge and a ferry across it, a tunnel under the west bank and a railway
through the east bank.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geodata.crs import metric_crs
from geodata.partition import (
    REASONS,
    barrier_mask,
    derive_outline,
    propose_partition,
    road_blocks,
    water_areas,
)

LON0, LAT0 = 118.78, 32.04
KY = math.pi / 180.0 * 6_371_008.8
KX = KY * math.cos(math.radians(LAT0))
WEST, EAST = (0.0, 200.0), (320.0, 520.0)  # the banks' building zones (metres east)
RIVER = (220.0, 300.0)  # the river between them


def box_m(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box given in metres east/north of (LON0, LAT0), in degrees."""
    return shapely.box(LON0 + x0 / KX, LAT0 + y0 / KY, LON0 + x1 / KX, LAT0 + y1 / KY)


def line_m(*points: tuple[float, float]) -> shapely.LineString:
    """A line through points given in metres east/north of (LON0, LAT0), in degrees."""
    return shapely.LineString([(LON0 + x / KX, LAT0 + y / KY) for x, y in points])


def river_town(
    west_hh: int, east_hh: int
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(buildings with households, roads with OSM tags, water) on two banks of a river."""
    geoms, households, bank = [], [], []
    for name, (x0, x1), total in (("west", WEST, west_hh), ("east", EAST, east_hh)):
        boxes = [
            box_m(x, y, x + 25, y + 20)
            for x in np.arange(x0 + 10, x1 - 20, 45)
            for y in np.arange(10, 290, 40)
        ]
        share = np.full(len(boxes), total // len(boxes))
        share[: total - int(share.sum())] += 1
        geoms += boxes
        households += share.tolist()
        bank += [name] * len(boxes)
    buildings = gpd.GeoDataFrame({"households": households, "bank": bank}, geometry=geoms, crs=4326)
    roads = gpd.GeoDataFrame(
        {
            "highway": [
                *("residential", "residential", "secondary", None, None, "primary"),
                *("secondary", "secondary"),
            ],
            "railway": [None, None, None, None, "rail", None, None, None],
            "route": [None, None, None, "ferry", None, None, None, None],
            "bridge": [None, None, "yes", None, None, None, None, None],
            "tunnel": [None, None, None, None, None, "yes", None, None],
        },
        geometry=[
            line_m((-20, 150), (225, 150)),  # splits the west bank
            line_m((295, 100), (540, 100)),  # splits the east bank
            line_m((220, 250), (300, 250)),  # a bridge over the river …
            line_m((230, 50), (290, 60)),  # a ferry across the river
            line_m((420, -20), (420, 320)),  # a railway through the east bank
            line_m((100, -20), (100, 320)),  # a tunnel under the west bank
            line_m((-20, 250), (220, 250)),  # … and the road on either bank
            line_m((300, 250), (540, 250)),
        ],
        crs=4326,
    )
    water = gpd.GeoDataFrame(
        {"natural": ["water", None], "landuse": [None, "grass"]},
        geometry=[box_m(RIVER[0], -100, RIVER[1], 400), box_m(0, 0, 30, 30)],
        crs=4326,
    )
    return buildings, roads, water


def test_road_classes_ferries_and_tunnels_do_not_bound_blocks_rail_does() -> None:
    _, roads, _ = river_town(300, 300)
    assert barrier_mask(roads).tolist() == [True, True, False, False, True, False, True, True]
    tagged = gpd.GeoDataFrame(
        {
            "railway": ["rail", "subway", "subway", "platform", "abandoned", None],
            "tunnel": [None, "yes", None, None, None, None],
            "waterway": [None, None, None, None, None, "river"],
        },
        geometry=[line_m((0, 0), (1, 1))] * 6,
        crs=4326,
    )
    # a subway above ground is a barrier, in its tunnel it is not; a river's line bounds blocks
    assert barrier_mask(tagged).tolist() == [True, False, True, False, False, True]
    # foreign schemas as gridsvc imports store them: the class in ``highway`` (rail, ferry)
    imported = gpd.GeoDataFrame(
        {"highway": ["rail", "ferry", "primary", "footway"]},
        geometry=[line_m((0, 0), (1, 1))] * 4,
        crs=4326,
    )
    assert barrier_mask(imported).tolist() == [True, False, True, False]


def test_water_areas_keep_the_water_features_of_an_osm_layer() -> None:
    _, _, water = river_town(300, 300)
    wet = water_areas(water)
    assert wet.equals(water.geometry.iloc[0])  # the grass is not water
    untagged = gpd.GeoDataFrame(geometry=[box_m(0, 0, 10, 10)], crs=4326)
    assert water_areas(untagged).equals(untagged.geometry.iloc[0])  # a layer given as water
    assert water_areas(None) is None


def test_outline_is_two_parts_across_a_river_and_leaves_the_water_out() -> None:
    buildings, roads, water = river_town(300, 300)
    river = water.geometry.iloc[0]
    outline = derive_outline(buildings, roads, water=water)
    assert outline.geom_type == "MultiPolygon" and outline.is_valid
    assert len(outline.geoms) == 2
    assert shapely.covers(outline, buildings.geometry.to_numpy()).all()
    assert shapely.intersection(outline, river).area == pytest.approx(0.0, abs=1e-14)
    west, east = sorted(outline.geoms, key=lambda p: p.bounds[0])
    on_west = buildings["bank"] == "west"
    assert shapely.covers(west, buildings.geometry[on_west].to_numpy()).all()
    assert shapely.covers(east, buildings.geometry[~on_west].to_numpy()).all()
    # the user may choose one polygon: then it is joined across the water, as before
    single = derive_outline(buildings, roads, water=water, single=True)
    assert single.geom_type == "Polygon"
    assert shapely.intersection(single, river).area > 0


def test_outline_parts_are_joined_over_narrow_open_ground_not_over_wide() -> None:
    buildings = gpd.GeoDataFrame(
        geometry=[box_m(0, 0, 20, 20), box_m(90, 0, 110, 20), box_m(300, 0, 320, 20)], crs=4326
    )
    outline = derive_outline(buildings, margin_m=10.0, join_m=60.0)
    # 90 m apart with 10 m margins leaves 50 m of open ground: joined; 190 m is not
    assert outline.geom_type == "MultiPolygon" and len(outline.geoms) == 2
    assert shapely.covers(outline, buildings.geometry.to_numpy()).all()
    assert derive_outline(buildings, margin_m=10.0, single=True).geom_type == "Polygon"


def cell_banks(proposal, buildings: gpd.GeoDataFrame) -> list[set[str]]:
    """The banks each cell holds buildings on."""
    banks = buildings["bank"].groupby(proposal.building_cell).agg(set)
    return [banks.get(c, set()) for c in range(len(proposal.cells))]


@pytest.mark.parametrize(("west_hh", "east_hh"), [(450, 150), (700, 650)])
def test_no_proposed_cell_crosses_water(west_hh: int, east_hh: int) -> None:
    buildings, roads, water = river_town(west_hh, east_hh)
    river = water.geometry.iloc[0]
    area = box_m(-10, 0, 530, 300)  # a community drawn over both banks and the river
    proposal = propose_partition(area, buildings, roads, water=water)
    cells = proposal.cells
    geoms = cells.geometry.to_numpy()
    assert shapely.coverage_is_valid(geoms)
    assert shapely.union_all(geoms).area == pytest.approx(area.area, rel=1e-6)
    assert all(len(banks) <= 1 for banks in cell_banks(proposal, buildings))
    # no bar over the water: each cell's land is one piece
    land = shapely.difference(geoms, river)
    metric = gpd.GeoSeries(land, crs=4326).to_crs(metric_crs(cells)).explode()
    assert (metric.area > 1.0).groupby(level=0).sum().max() == 1
    if east_hh < proposal.band[0]:  # the east bank alone is too small, and says why
        east = cells.iloc[int(proposal.building_cell[buildings["bank"] == "east"].iloc[0])]
        assert east["households"] == east_hh
        assert east["reason"] == REASONS["isolated"]
    else:
        assert cells["in_band"].all()


def test_without_the_water_a_cell_would_cross_the_river() -> None:
    """The control case: the same town without the water layer joins the two banks."""
    buildings, roads, _ = river_town(450, 150)
    proposal = propose_partition(box_m(-10, 0, 530, 300), buildings, roads)
    assert any(len(banks) == 2 for banks in cell_banks(proposal, buildings))


def test_road_blocks_give_each_bank_its_half_of_the_river() -> None:
    buildings, roads, water = river_town(300, 300)
    area = box_m(-10, 0, 530, 300)
    blocks = road_blocks(area, roads, water=water, buildings=buildings)
    geoms = blocks.geometry.to_numpy()
    assert shapely.coverage_is_valid(geoms)
    assert shapely.union_all(geoms).area == pytest.approx(area.area, rel=1e-9)
    river = water.geometry.iloc[0]
    west_land = box_m(-10, 0, RIVER[0], 300)
    east_land = box_m(RIVER[1], 0, 530, 300)
    for geom in geoms:  # a block holds land of one bank only
        assert not (
            geom.intersection(west_land).area > 1e-12 and geom.intersection(east_land).area > 1e-12
        )
    # the rail divides the east bank; the tunnel does not divide the west bank
    assert len(blocks) == 3 + 6  # west: 3 between its roads; east: 3 × 2 by roads and rail
    assert shapely.intersection(shapely.union_all(geoms), river).area == pytest.approx(
        river.intersection(area).area, rel=1e-9
    )
