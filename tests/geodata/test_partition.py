"""Proposed partitions: outlines, road blocks and balanced cells, on real OSM data and made-up cases.

The real extracts have no households, so they are estimated from footprint × levels. OSM tags
most buildings just ``building=yes`` (1,061 of Nanjing's 1,277), so with the residential tags
alone Nanjing would hold 2,925 households — ten cells for a 6 km² city centre. The proposal tests
therefore count ``yes`` as residential too (74,316 households in Nanjing, 19,227 in Beijing).
That also turns a few malls and towers into single buildings of more than 500 households: the
cells holding them cannot reach the band, and the proposal must say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geodata import partition
from geodata.crs import metric_crs
from geodata.errors import GeodataError
from geodata.estimate import RESIDENTIAL_BUILDING_VALUES, estimate_households
from geodata.partition import (
    NON_BARRIER_HIGHWAYS,
    REASONS,
    Proposal,
    derive_outline,
    propose_partition,
    road_blocks,
)
from geodata.readers import read_features

TARGET, BAND = 300, (200, 500)
LON0, LAT0 = 118.78, 32.04
KY = math.pi / 180.0 * 6_371_008.8
KX = KY * math.cos(math.radians(LAT0))


# ------------------------------------------------------------------------------- helpers -----


@dataclass
class City:
    """A real extract: buildings with estimated households, roads, a derived outline."""

    buildings: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    outline: shapely.Polygon
    folder: Path


def load_city(folder: Path) -> City:
    """Read a real extract, estimate households (``yes`` counted as residential), derive an outline."""
    buildings = read_features(folder / "buildings.geojson").gdf
    roads = read_features(folder / "roads.geojson", kind="line").gdf
    households, _ = estimate_households(
        buildings, residential_values=(*RESIDENTIAL_BUILDING_VALUES, "yes")
    )
    buildings["households"] = households
    return City(buildings, roads, derive_outline(buildings, roads), folder)


def box_m(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box given in metres east/north of (LON0, LAT0), in degrees."""
    return shapely.box(LON0 + x0 / KX, LAT0 + y0 / KY, LON0 + x1 / KX, LAT0 + y1 / KY)


def line_m(*points: tuple[float, float]) -> shapely.LineString:
    """A line through points given in metres east/north of (LON0, LAT0), in degrees."""
    return shapely.LineString([(LON0 + x / KX, LAT0 + y / KY) for x, y in points])


def shares(
    buildings: gpd.GeoDataFrame, polygons: gpd.GeoSeries, *, metric: bool = True
) -> np.ndarray:
    """Area of each building inside each polygon: a dense (buildings × polygons) matrix.

    In m² (UTM), or with ``metric=False`` in square degrees, where pieces sharing vertices stay
    exactly aligned (projecting bends straight edges by fractions of a millimetre, which shows
    as slivers when checking that nothing at all is cut).
    """
    b = buildings.geometry.to_numpy()
    p = polygons.to_numpy()
    if metric:
        crs = metric_crs(buildings)
        b = buildings.geometry.to_crs(crs).to_numpy()
        p = polygons.to_crs(crs).to_numpy()
    out = np.zeros((len(b), len(p)))
    bi, pi = shapely.STRtree(p).query(b, predicate="intersects")
    out[bi, pi] = shapely.area(shapely.intersection(b[bi], p[pi]))
    return out


def check_invariants(
    area: shapely.Polygon, buildings: gpd.GeoDataFrame, proposal: Proposal
) -> np.ndarray:
    """Everything a proposal must satisfy; returns the building × cell shares (m²)."""
    cells = proposal.cells
    lower, upper = proposal.band
    geoms = cells.geometry.to_numpy()
    # a tiling of the area: no gaps, no overlaps, nothing outside, one valid polygon per cell
    assert cells.crs.to_epsg() == 4326
    assert list(cells["cell_index"]) == list(range(len(cells)))
    assert (cells.geom_type == "Polygon").all()
    assert shapely.is_valid(geoms).all()
    assert shapely.coverage_is_valid(geoms)
    assert shapely.union_all(geoms).area == pytest.approx(area.area, rel=1e-6)
    assert shapely.area(shapely.difference(geoms, area)).sum() <= 1e-9 * area.area
    # every building in exactly one cell: the one holding the largest share of its footprint
    assert proposal.building_cell.index.equals(buildings.index)
    assert proposal.building_cell.notna().all()
    assert proposal.building_cell.between(0, len(cells) - 1).all()
    m = shares(buildings, cells.geometry)
    mine = m[np.arange(len(buildings)), proposal.building_cell.to_numpy()]
    assert (mine >= m.max(axis=1) - 1e-6 * np.maximum(m.sum(axis=1), 1.0)).all()
    # the cell table adds up and explains every cell outside the band
    counted = buildings["households"].astype(int).groupby(proposal.building_cell).sum()
    counted = counted.reindex(range(len(cells)), fill_value=0)
    assert (cells["households"].to_numpy() == counted.to_numpy()).all()
    assert (
        cells["buildings"].to_numpy() == np.bincount(proposal.building_cell, minlength=len(cells))
    ).all()
    in_band = cells["households"].between(lower, upper)
    assert (cells["in_band"] == in_band).all()
    assert cells.loc[in_band, "reason"].isna().all()
    assert cells.loc[~in_band, "reason"].map(lambda r: isinstance(r, str) and len(r) > 0).all()
    assert ((cells["polsby_popper"] > 0) & (cells["polsby_popper"] <= 1)).all()
    assert (cells["area_m2"] > 0).all()
    summary = proposal.summary()
    assert summary["cells"] == len(cells)
    assert summary["households"] == int(buildings["households"].sum())
    assert summary["share_in_band"] == pytest.approx(in_band.mean())
    return m


# --------------------------------------------------------------------------- real: Nanjing ----


@pytest.fixture(scope="module")
def nanjing_city(nanjing: Path) -> City:
    """Nanjing 新街口 with estimated households and a derived outline."""
    return load_city(nanjing)


@pytest.fixture(scope="module")
def nanjing_proposal(nanjing_city: City) -> Proposal:
    """The proposal for Nanjing at target 300, band 200–500."""
    c = nanjing_city
    return propose_partition(c.outline, c.buildings, c.roads, target=TARGET, band=BAND)


def test_nanjing_outline_covers_every_building_with_a_margin(nanjing_city: City) -> None:
    outline, buildings = nanjing_city.outline, nanjing_city.buildings
    assert len(buildings) == 1277
    assert outline.geom_type == "Polygon" and outline.is_valid
    assert shapely.covers(outline, buildings.geometry.to_numpy()).all()
    crs = metric_crs(buildings)
    exterior = gpd.GeoSeries([outline.exterior], crs=4326).to_crs(crs).iloc[0]
    assert buildings.geometry.to_crs(crs).distance(exterior).min() >= 19.9  # the 20 m margin


def test_nanjing_outline_follows_roads_where_they_enclose_buildings(nanjing_city: City) -> None:
    crs = metric_crs(nanjing_city.buildings)
    roads = nanjing_city.roads
    arterial = roads[roads["highway"].isin(["primary", "secondary", "tertiary", "residential"])]
    near_roads = shapely.union_all(arterial.geometry.to_crs(crs).to_numpy()).buffer(1.0)
    boundary = gpd.GeoSeries([nanjing_city.outline.boundary], crs=4326).to_crs(crs).iloc[0]
    on_roads = boundary.intersection(near_roads).length / boundary.length
    assert on_roads > 0.2  # measured 28 %: the rest hugs buildings the roads do not enclose


def test_nanjing_road_blocks_tile_the_outline(nanjing_city: City) -> None:
    c = nanjing_city
    blocks = road_blocks(c.outline, c.roads, buildings=c.buildings)
    geoms = blocks.geometry.to_numpy()
    assert list(blocks.columns) == ["block_id", "geometry"]
    assert list(blocks["block_id"]) == list(range(len(blocks)))
    assert 100 < len(blocks) < 200  # measured 149
    assert (blocks.geom_type == "Polygon").all() and shapely.is_valid(geoms).all()
    assert shapely.coverage_is_valid(geoms)
    assert shapely.union_all(geoms).area == pytest.approx(c.outline.area, rel=1e-9)
    crs = metric_crs(blocks)
    assert (blocks.to_crs(crs).area >= 200.0).all()
    # the barrier roads inside the outline run along block edges (dead ends excepted)
    roads = c.roads
    barrier = (
        ~roads["highway"].isin(NON_BARRIER_HIGHWAYS)
        & roads["tunnel"].isna()
        & roads["bridge"].isna()
    )
    lines = roads.geometry[barrier].to_numpy()
    inside = shapely.intersection(shapely.union_all(lines), c.outline)
    edges = shapely.union_all(shapely.boundary(geoms))
    to_m = gpd.GeoSeries([inside, inside.intersection(edges.buffer(1e-6))], crs=4326).to_crs(crs)
    assert to_m.length.iloc[1] / to_m.length.iloc[0] > 0.8  # measured 89 %


def test_nanjing_proposal_tiles_keeps_buildings_whole_and_balances(
    nanjing_city: City, nanjing_proposal: Proposal
) -> None:
    c, proposal = nanjing_city, nanjing_proposal
    check_invariants(c.outline, c.buildings, proposal)
    cells = proposal.cells
    total = int(c.buildings["households"].sum())
    assert total == 74_316
    # k ≈ households / target, with the towers over the band taking a cell each
    assert math.ceil(total / BAND[1]) <= len(cells) <= round(total / TARGET)
    summary = proposal.summary()
    # measured: 165 of 183 cells in the band (90 %); the other 18 each hold a building of more
    # than 500 estimated households (malls and towers tagged building=yes)
    assert summary["share_in_band"] >= 0.85
    giants = set(c.buildings.index[c.buildings["households"] > BAND[1]])
    out = cells[~cells["in_band"]]
    explained = {proposal.building_cell[b] for b in giants}
    assert set(out["cell_index"]) <= explained
    assert (out["reason"] == REASONS["building"]).all()
    assert cells["households"].min() >= BAND[0]  # no empty or starved cell
    assert summary["mean_polsby_popper"] >= 0.45  # measured 0.59


def test_nanjing_cells_follow_roads_and_cut_no_building_the_roads_do_not(
    nanjing_city: City, nanjing_proposal: Proposal
) -> None:
    c, proposal = nanjing_city, nanjing_proposal
    blocks = road_blocks(c.outline, c.roads, buildings=c.buildings)
    by_block = shares(c.buildings, blocks.geometry, metric=False)
    by_cell = shares(c.buildings, proposal.cells.geometry, metric=False)
    footprint = by_block.sum(axis=1)
    # a building is cut by a cell boundary only where a mapped road already cuts it, or where
    # another footprint is drawn over it (the common part can go to one cell only; here two
    # towers of 566 and 840 households overlap, too many to share a cell)
    g = c.buildings.geometry.to_numpy()
    i, j = shapely.STRtree(g).query(g, predicate="intersects")
    drawn_over = np.bincount(
        i[i != j],
        weights=shapely.area(shapely.intersection(g[i[i != j]], g[j[i != j]])),
        minlength=len(g),
    )
    lost = by_block.max(axis=1) - by_cell.max(axis=1)
    assert (lost <= drawn_over + 1e-9 * footprint).all()
    # a block is split only when its own households exceed the band
    block_hh = c.buildings["households"].groupby(by_block.argmax(axis=1)).sum()
    overlap = shares(blocks.assign(households=0), proposal.cells.geometry, metric=False)
    block_area = shapely.area(blocks.geometry.to_numpy())
    small = block_hh.reindex(range(len(blocks)), fill_value=0).to_numpy() <= BAND[1]
    whole = overlap.max(axis=1) >= block_area * (1 - 1e-9)
    assert whole[small].all()
    assert not whole[~small].all()  # some big blocks were split


# --------------------------------------------------------------------------- real: Beijing ----


@pytest.fixture(scope="module")
def beijing_city(beijing: Path) -> City:
    """Beijing 学院路 with estimated households, a derived outline and the named 小区."""
    city = load_city(beijing)
    estates = read_features(beijing / "residential_areas.geojson").gdf
    named = estates[estates["name"].notna()][["name", "geometry"]]
    points = gpd.GeoDataFrame(geometry=city.buildings.representative_point(), crs=4326)
    joined = gpd.sjoin(points, named, predicate="within", how="left")
    city.buildings["estate"] = joined[~joined.index.duplicated()]["name"]
    return city


def test_beijing_proposal_invariants(beijing_city: City) -> None:
    c = beijing_city
    proposal = propose_partition(c.outline, c.buildings, c.roads, target=TARGET, band=BAND)
    check_invariants(c.outline, c.buildings, proposal)
    summary = proposal.summary()
    # measured 46 of 52 cells in band (88 %): 5 hold one building over 500, one small cell lies
    # between single-building cells it cannot take from
    assert summary["share_in_band"] >= 0.8
    reasons = proposal.cells.loc[~proposal.cells["in_band"], "reason"]
    assert (reasons == REASONS["building"]).sum() >= 5


def test_beijing_estates_that_fit_stay_in_one_cell(beijing_city: City) -> None:
    c = beijing_city
    proposal = propose_partition(
        c.outline, c.buildings, c.roads, estate_column="estate", target=TARGET, band=BAND
    )
    check_invariants(c.outline, c.buildings, proposal)
    estates = c.buildings.dropna(subset=["estate"]).groupby("estate")
    fitting = [name for name, g in estates if g["households"].sum() <= BAND[1]]
    assert len(fitting) == 6  # of the 9 named compounds, 6 hold at most 500 households
    for name in fitting:
        members = c.buildings.index[c.buildings["estate"] == name]
        assert proposal.building_cell[members].nunique() == 1, name
    assert proposal.summary()["share_in_band"] >= 0.8


def test_without_pymetis_the_fallback_bisection_still_satisfies_everything(
    beijing_city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partition, "pymetis", None)
    c = beijing_city
    proposal = propose_partition(c.outline, c.buildings, c.roads)
    check_invariants(c.outline, c.buildings, proposal)
    assert proposal.summary()["share_in_band"] >= 0.75


def test_deterministic_for_a_seed(beijing_city: City) -> None:
    c = beijing_city
    runs = [propose_partition(c.outline, c.buildings, c.roads, seed=3) for _ in range(2)]
    assert runs[0].building_cell.equals(runs[1].building_cell)
    assert shapely.equals_exact(
        runs[0].cells.geometry.to_numpy(), runs[1].cells.geometry.to_numpy(), tolerance=0.0
    ).all()
    assert runs[0].cells.drop(columns="geometry").equals(runs[1].cells.drop(columns="geometry"))


# ------------------------------------------------------------------------- made-up cases -----


def one_block(touching: bool = False) -> tuple[shapely.Polygon, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """One 200 × 150 m road block with 20 buildings of 50 households (1,000 in all).

    Separate buildings stand in a 5 × 4 grid; ``touching`` puts them in two terraces of ten
    that share their walls, as in old town blocks.
    """
    area = box_m(0, 0, 200, 150)
    roads = gpd.GeoDataFrame(
        {"highway": ["residential"] * 4},
        geometry=[
            line_m((-20, 0), (220, 0)),
            line_m((-20, 150), (220, 150)),
            line_m((0, -20), (0, 170)),
            line_m((200, -20), (200, 170)),
        ],
        crs=4326,
    )
    if touching:
        geoms = [box_m(20 + 16 * i, y, 36 + 16 * i, y + 30) for y in (30, 90) for i in range(10)]
    else:
        geoms = [
            box_m(20 + 36 * i, 15 + 33 * j, 44 + 36 * i, 35 + 33 * j)
            for j in range(4)
            for i in range(5)
        ]
    buildings = gpd.GeoDataFrame(
        {"households": [50] * 20}, geometry=geoms, crs=4326, index=pd.RangeIndex(100, 120)
    )
    return area, buildings, roads


@pytest.mark.parametrize("touching", [False, True])
def test_a_block_over_the_band_is_split_between_buildings(touching: bool) -> None:
    area, buildings, roads = one_block(touching)
    assert len(road_blocks(area, roads)) == 1
    proposal = propose_partition(area, buildings, roads, target=TARGET, band=BAND)
    m = check_invariants(area, buildings, proposal)
    assert len(proposal.cells) == 3  # 1,000 households ≈ 3 × 333
    assert proposal.cells["in_band"].all()
    # no building is cut: each lies wholly in its cell
    footprint = m.sum(axis=1)
    assert (m.max(axis=1) >= footprint * (1 - 1e-9)).all()


def grid_street(
    nx: int, ny: int, households: list[int]
) -> tuple[shapely.Polygon, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """nx × ny road blocks of 100 × 80 m, each with one building of the given households."""
    area = box_m(0, 0, 100 * nx, 80 * ny)
    lines = [line_m((100 * i, -10), (100 * i, 80 * ny + 10)) for i in range(nx + 1)]
    lines += [line_m((-10, 80 * j), (100 * nx + 10, 80 * j)) for j in range(ny + 1)]
    roads = gpd.GeoDataFrame({"highway": ["residential"] * len(lines)}, geometry=lines, crs=4326)
    geoms = [
        box_m(100 * i + 30, 80 * j + 20, 100 * i + 70, 80 * j + 60)
        for j in range(ny)
        for i in range(nx)
    ]
    buildings = gpd.GeoDataFrame({"households": households}, geometry=geoms, crs=4326)
    return area, buildings, roads


def test_empty_blocks_join_a_neighbouring_cell_and_cells_follow_the_roads() -> None:
    hh = [0, 150, 150, 0, 150, 150, 0, 0, 150, 150, 0, 150]  # 4 × 3 blocks, 5 of them empty
    area, buildings, roads = grid_street(4, 3, hh)
    proposal = propose_partition(area, buildings, roads, target=TARGET, band=BAND)
    check_invariants(area, buildings, proposal)
    # 1,050 households in blocks of 150: three cells (300, 300, 450) all land in the band
    assert len(proposal.cells) == 3 and proposal.cells["in_band"].all()
    blocks = road_blocks(area, roads)
    overlap = shares(blocks.assign(households=0), proposal.cells.geometry, metric=False)
    assert (overlap.max(axis=1) >= overlap.sum(axis=1) * (1 - 1e-9)).all()  # blocks kept whole


def test_too_few_households_give_one_cell_with_the_reason() -> None:
    area, buildings, roads = grid_street(2, 2, [30, 40, 0, 50])
    proposal = propose_partition(area, buildings, roads)
    check_invariants(area, buildings, proposal)
    assert len(proposal.cells) == 1
    assert proposal.cells["reason"].iloc[0] == REASONS["total"]
    assert proposal.summary()["in_band"] == 0


def test_a_building_over_the_band_gets_its_own_cell_and_reason() -> None:
    area, buildings, roads = grid_street(3, 2, [900, 150, 150, 100, 150, 150])
    proposal = propose_partition(area, buildings, roads)
    check_invariants(area, buildings, proposal)
    cells = proposal.cells.set_index("cell_index")
    tower = proposal.building_cell.iloc[0]
    assert cells.loc[tower, "households"] == 900
    assert cells.loc[tower, "reason"] == REASONS["building"]
    assert cells.drop(index=tower)["in_band"].all()


def test_road_blocks_ignore_paths_tunnels_bridges_and_merge_tiny_blocks() -> None:
    area = box_m(0, 0, 200, 100)
    across = [line_m((100, -10), (100, 110))]  # one real road: two blocks
    paths = {
        "footway": line_m((50, -10), (50, 110)),
        "service": line_m((150, -10), (150, 110)),
        "steps": line_m((-10, 50), (210, 50)),
    }
    tunnel = line_m((25, -10), (25, 110))
    bridge = line_m((175, -10), (175, 110))
    corner = line_m((-5, 15), (15, -5))  # cuts off a 50 m² corner
    roads = gpd.GeoDataFrame(
        {
            "highway": ["residential", *paths, "primary", "primary", "residential"],
            "tunnel": [None, None, None, None, "yes", None, None],
            "bridge": [None, None, None, None, None, "viaduct", None],
        },
        geometry=[*across, *paths.values(), tunnel, bridge, corner],
        crs=4326,
    )
    blocks = road_blocks(area, roads)
    assert len(blocks) == 2
    assert shapely.coverage_is_valid(blocks.geometry.to_numpy())
    assert len(road_blocks(area, roads, min_block_m2=0)) == 3  # the corner stays apart
    assert len(road_blocks(area, roads, barrier_highways={"residential", "footway"})) == 3


def test_a_dual_carriageway_is_split_down_its_middle() -> None:
    area = box_m(0, 0, 200, 100)
    roads = gpd.GeoDataFrame(
        {"highway": ["primary", "primary"]},
        geometry=[line_m((95, -10), (95, 110)), line_m((105, -10), (105, 110))],
        crs=4326,
    )
    blocks = road_blocks(area, roads)
    assert len(blocks) == 2  # not a thin third block between the carriageways
    crs = metric_crs(blocks)
    assert blocks.to_crs(crs).area.to_numpy() == pytest.approx([10_000, 10_000], rel=1e-3)


def test_derive_outline_without_roads_keeps_scattered_buildings_apart_or_joins_them() -> None:
    buildings = gpd.GeoDataFrame(
        geometry=[box_m(0, 0, 20, 20), box_m(300, 0, 320, 20), box_m(150, 200, 170, 220)],
        crs=4326,
    )
    # over 100 m of open ground between them: three parts, unless the user asks for one
    outline = derive_outline(buildings, margin_m=10.0)
    assert outline.geom_type == "MultiPolygon" and len(outline.geoms) == 3
    single = derive_outline(buildings, margin_m=10.0, single=True)
    for shape in (outline, single):
        assert shape.is_valid
        assert shapely.covers(shape, buildings.geometry.to_numpy()).all()
    assert single.geom_type == "Polygon"


def test_bad_input_is_a_geodata_error() -> None:
    area, buildings, roads = grid_street(2, 2, [100, 100, 100, 100])
    with pytest.raises(GeodataError, match="area is empty"):
        propose_partition(shapely.Polygon(), buildings, roads)
    with pytest.raises(GeodataError, match="no buildings"):
        propose_partition(area, buildings.iloc[:0], roads)
    with pytest.raises(GeodataError, match="households"):
        propose_partition(area, buildings.drop(columns="households"), roads)
    with pytest.raises(GeodataError, match="band"):
        propose_partition(area, buildings, roads, target=300, band=(500, 200))
    with pytest.raises(GeodataError, match="target"):
        propose_partition(area, buildings, roads, target=600, band=(200, 500))
    with pytest.raises(GeodataError, match="no buildings"):
        derive_outline(buildings.iloc[:0])
    assert issubclass(GeodataError, ValueError)
