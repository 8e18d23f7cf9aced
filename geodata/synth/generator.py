"""The generator of one street, stage by stage.

Each stage is one function that takes what the earlier stages made and returns a small record:

    lattice → blocks (communities, cells) → buildings → areas (polygons) → households → persons
    → roles and tables → incidents → frames (the SynthStreet)

Every stage draws from its own random generator (spawned from the config's seed), so a stage can
change without changing the numbers the others draw. Within a stage the order of draws is part of
the output: keep it when editing.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geodata.synth.config import SynthConfig, SynthStreet
from geodata.synth.draw import (
    _to_multi,
)
from geodata.synth.incidents import _incidents
from geodata.synth.plan import (
    _degrees_per_metre,
    _Frame,
    _plan_sizes,
    _Randoms,
)
from geodata.synth.population import (
    _Households,
    _households,
    _Keys,
    _people_tables,
    _persons,
    _roles,
)
from geodata.synth.streets import (
    _Areas,
    _areas,
    _Blocks,
    _blocks,
    _Buildings,
    _buildings,
    _Lattice,
    _lattice,
)

# ---- stage 8: incidents ------------------------------------------------------------------------


def _street_incidents(
    rnd: _Randoms,
    config: SynthConfig,
    frame: _Frame,
    lattice: _Lattice,
    blocks: _Blocks,
    bld: _Buildings,
    hh: _Households,
) -> pd.DataFrame:
    """A year of incidents, located in blocks or next to buildings, labelled by place."""
    estates = bld.estates
    return _incidents(
        rnd.inc,
        config,
        comm_hh=hh.comm_hh,
        bld_comm=bld.comm,
        bld_hh=bld.hh,
        bld_center=np.stack([bld.cx, bld.cy], -1) if bld.n else np.zeros((0, 2)),
        bld_half=np.stack([bld.half_l, bld.half_d], -1) if bld.n else np.zeros((0, 2)),
        bld_angle=bld.ang,
        bld_label=[
            (estates.names[e] if e >= 0 else "") + n
            for e, n in zip(bld.rows.estate, bld.rows.name, strict=True)
        ],
        b_comm=blocks.b_comm,
        b_corners=blocks.corners,
        b_label=[
            estates.names[estates.of_block[i]]
            if estates.of_block[i] >= 0
            else lattice.road_ew[blocks.bj_all[i]]
            for i in range(blocks.n_blocks)
        ],
        to_lonlat=(frame.kx, frame.ky, frame.lon0, frame.lat0),
    )


# ---- stage 9: frames ---------------------------------------------------------------------------


def _area_frames(
    config: SynthConfig,
    frame: _Frame,
    blocks: _Blocks,
    bld: _Buildings,
    areas: _Areas,
    keys: _Keys,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Communities, cells, estates and buildings as GeoDataFrames in EPSG:4326."""
    comm_codes, comm_names = blocks.comm_codes, blocks.comm_names
    cell_comm_arr = blocks.cell_comm_arr
    comm_codes_arr = np.asarray(comm_codes, dtype=object)
    communities = gpd.GeoDataFrame(
        {"code": comm_codes, "name": comm_names, "street_code": config.street_code},
        geometry=frame.to_lonlat(_to_multi(areas.comm_polys)),
        crs="EPSG:4326",
    )
    cell_seq = np.arange(blocks.n_cells) - np.searchsorted(cell_comm_arr, cell_comm_arr)
    pairs = list(zip(cell_comm_arr, cell_seq, strict=True))
    cells = gpd.GeoDataFrame(
        {
            "cell_key": keys.cell,
            "code": [f"{comm_codes[c]}{s + 1:03d}" for c, s in pairs],
            "name": [f"{comm_names[c]}第{s + 1:02d}网格" for c, s in pairs],
            "community_code": comm_codes_arr[cell_comm_arr],
            "kind": "general",
            "level": 4,
        },
        geometry=frame.to_lonlat(_to_multi(areas.cell_polys)),
        crs="EPSG:4326",
    )
    res_blocks = bld.estates.res_blocks
    estates = gpd.GeoDataFrame(
        {
            "estate_key": keys.estate,
            "name": bld.estates.names,
            "community_code": comm_codes_arr[blocks.b_comm[res_blocks]],
        },
        geometry=frame.to_lonlat(_to_multi(areas.estate_polys)),
        crs="EPSG:4326",
    )
    rows = bld.rows
    buildings = gpd.GeoDataFrame(
        {
            "building_key": keys.building,
            "estate_key": np.where(bld.estate >= 0, keys.estate[np.maximum(bld.estate, 0)], None)
            if bld.n
            else np.empty(0, dtype=object),
            "community_code": comm_codes_arr[bld.comm],
            "name": np.asarray(rows.name, dtype=object),
            "address": np.asarray(rows.addr, dtype=object),
            "building": np.asarray(rows.kind, dtype=object),
            "structure": np.asarray(rows.struct, dtype=object),
            "levels": bld.levels,
            "units": bld.units,
            "households": bld.hh,
        },
        geometry=frame.to_lonlat(_to_multi(bld.polys)),
        crs="EPSG:4326",
    )
    return communities, cells, estates, buildings


def generate(
    config: SynthConfig, district_box: tuple[float, float, float, float] | None
) -> SynthStreet:
    """Build one street; ``district_box`` (lon/lat bounds) is shared by iter_streets."""
    rnd = _Randoms.from_seed(config.seed)
    plan = _plan_sizes(config)
    lon0, lat0 = config.origin
    frame = _Frame(lon0, lat0, *_degrees_per_metre(lat0))

    lattice = _lattice(rnd, plan)
    blocks = _blocks(rnd, config, plan, lattice)
    bld = _buildings(rnd, config, lattice, blocks)
    areas = _areas(blocks, bld.estates, config.communities)
    hh = _households(rnd, bld, config.communities)
    ppl = _persons(rnd, config, hh, blocks)
    roles, keys, staff = _roles(rnd, config, blocks, bld, hh, ppl)
    persons, households, volunteer_teams = _people_tables(rnd, config, blocks, hh, ppl, keys, staff)
    incidents = _street_incidents(rnd, config, frame, lattice, blocks, bld, hh)
    communities, cells, estates, buildings = _area_frames(config, frame, blocks, bld, areas, keys)

    street_geom = frame.to_lonlat(_to_multi(np.array([areas.street_poly], dtype=object)))[0]
    if district_box is None:
        x0, y0, x1, y1 = street_geom.bounds
        pad_x, pad_y = 300 * frame.kx, 300 * frame.ky
        district_box = (x0 - pad_x, y0 - pad_y, x1 + pad_x, y1 + pad_y)
    district_geom = shapely.MultiPolygon([shapely.box(*district_box)])
    return SynthStreet(
        district={
            "code": config.district_code,
            "name": bld.district_name,
            "geometry": district_geom,
        },
        street={
            "code": config.street_code,
            "name": config.street_name,
            "district_code": config.district_code,
            "geometry": street_geom,
        },
        communities=communities,
        estates=estates,
        cells=cells,
        buildings=buildings,
        households=households,
        persons=persons,
        volunteer_teams=volunteer_teams,
        roles=roles,
        incidents=incidents,
    )
