"""Test data of the rendering tests (offline assets, a synthetic street, real Nanjing layers).

Plain cached builders, so tests/maps/conftest.py and the browser tests share them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geodata.readers import read_features
from geodata.synth import generate_street
from gridsvc.domain import INCIDENT_OPEN_STATUSES, INCIDENT_STATUSES
from maps import assets


@functools.cache
def ensure_assets() -> Path:
    """The project's asset folder with every pinned asset (fetched if setup has not yet)."""
    if assets.missing_assets():
        try:
            assets.fetch()
        except assets.AssetError as exc:
            pytest.fail(f"map assets missing and cannot be fetched: {exc} (run scripts/dev setup)")
    assert assets.missing_assets() == []
    return assets.asset_dir()


@dataclass
class CellLayers:
    """One synthetic cell and everything a 格长 sees around it."""

    cell: gpd.GeoDataFrame
    neighbours: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    households: gpd.GeoDataFrame
    incidents: gpd.GeoDataFrame
    volunteers: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame  # the whole street, with leader and metrics
    communities: gpd.GeoDataFrame
    all_buildings: gpd.GeoDataFrame


@functools.cache
def synthetic_layers() -> CellLayers:
    """A synthetic street (geodata.synth) reduced to the layers the maps take."""
    s = generate_street()
    cells = s.cells.copy()
    leaders = s.roles[s.roles.role == "leader"].merge(
        s.persons[["person_key", "name"]], on="person_key"
    )
    cells["leader"] = cells["cell_key"].map(dict(zip(leaders.cell_key, leaders.name, strict=True)))
    buildings = s.buildings.copy()
    points = buildings.geometry.representative_point()
    hit = gpd.sjoin(
        gpd.GeoDataFrame(geometry=points, crs=4326), cells[["code", "geometry"]], predicate="within"
    )
    buildings["cell"] = hit["code"].reindex(buildings.index)
    captains = s.roles[s.roles.role == "building_captain"].merge(
        s.persons[["person_key", "name"]], on="person_key"
    )
    buildings["captain"] = buildings["building_key"].map(
        dict(zip(captains.building_key, captains.name, strict=True))
    )
    hh = s.households.merge(buildings[["building_key", "cell"]], on="building_key")
    for flag in ("low_income", "elderly_alone"):
        counts = hh.groupby("building_key")[flag].sum()
        buildings[flag] = buildings["building_key"].map(counts).fillna(0).astype(int)
    cells["households"] = cells["code"].map(hh.groupby("cell").size()).fillna(0).astype(int)
    cells["buildings"] = cells["code"].map(buildings.groupby("cell").size()).fillna(0).astype(int)

    code = cells["code"].iloc[4]
    cell = cells[cells.code == code]
    shape = cell.geometry.iloc[0]
    neighbours = cells[(cells.code != code) & cells.intersects(shape.buffer(1e-4))]
    cell_buildings = buildings[buildings.cell == code]
    centroid = dict(
        zip(buildings.building_key, buildings.geometry.representative_point(), strict=True)
    )
    cell_hh = hh[hh.cell == code]
    households = gpd.GeoDataFrame(
        cell_hh.assign(label=cell_hh.unit + cell_hh.room),
        geometry=[centroid[k] for k in cell_hh.building_key],
        crs=4326,
    )
    inc = s.incidents
    incidents = gpd.GeoDataFrame(inc, geometry=gpd.points_from_xy(inc.lon, inc.lat), crs=4326)
    incidents = incidents[incidents.within(shape)].copy()
    # What gridsvc passes with every case (labels and the "open" rule are its, not the map's);
    # the first case is 挂账 (parked): still on the books, but not open.
    incidents.iloc[0, incidents.columns.get_loc("status")] = "parked"
    incidents["status_label"] = incidents["status"].map(INCIDENT_STATUSES)
    incidents["status_rank"] = incidents["status"].map(list(INCIDENT_STATUSES).index)
    incidents["is_open"] = incidents["status"].isin(INCIDENT_OPEN_STATUSES)
    rng = np.random.default_rng(1)
    minx, miny, maxx, maxy = shape.bounds
    volunteers = gpd.GeoDataFrame(
        {"name": ["王芳", "李强", "陈静"], "team": ["党员志愿服务队"] * 3},
        geometry=shapely.points(rng.uniform(minx, maxx, 3), rng.uniform(miny, maxy, 3)),
        crs=4326,
    )
    return CellLayers(
        cell,
        neighbours,
        cell_buildings,
        households,
        incidents,
        volunteers,
        cells,
        s.communities,
        buildings,
    )


@dataclass
class RealLayers:
    """Real OSM buildings and roads of Nanjing 新街口 with a grid of cells over them."""

    buildings: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    area: gpd.GeoDataFrame


@functools.cache
def nanjing_grid_layers(nanjing: Path) -> RealLayers:
    """Buildings and roads read with geodata.readers, cells as a 4 × 3 grid over the extent."""
    buildings = read_features(nanjing / "buildings.geojson", kind="polygon").gdf
    roads = read_features(nanjing / "roads.geojson", kind="line").gdf
    minx, miny, maxx, maxy = buildings.total_bounds
    xs = np.linspace(minx, maxx, 5)
    ys = np.linspace(maxy, miny, 4)
    boxes, codes = [], []
    for r in range(3):
        for c in range(4):
            boxes.append(shapely.box(xs[c], ys[r + 1], xs[c + 1], ys[r]))
            codes.append(f"320102001001{len(codes) + 1:03d}")
    cells = gpd.GeoDataFrame(
        {"code": codes, "name": [f"第{i + 1}网格" for i in range(12)]}, geometry=boxes, crs=4326
    )
    hit = gpd.sjoin(
        gpd.GeoDataFrame(geometry=buildings.geometry.representative_point(), crs=4326),
        cells,
        predicate="within",
    )
    cells["buildings"] = cells["code"].map(hit.groupby("code").size()).fillna(0).astype(int)
    cells["leader"] = [f"格长{i + 1}" for i in range(12)]
    area = gpd.GeoDataFrame(
        {"name": ["新街口示例社区"]}, geometry=[shapely.box(minx, miny, maxx, maxy)], crs=4326
    )
    buildings = buildings.assign(name=buildings["name"].where(buildings["name"].notna(), None))
    return RealLayers(buildings, roads, cells, area)


def household_flag_counts(households: pd.DataFrame, flags: list[str]) -> dict[str, int]:
    """Households having each flag (an independent count for the filter labels)."""
    return {f: int(households[f].astype(bool).sum()) for f in flags}
