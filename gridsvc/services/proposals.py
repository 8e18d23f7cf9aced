"""Proposed partitions (自动划格) of a community, from its buildings, roads and estates."""

from __future__ import annotations

import json
from typing import Any

import geopandas as gpd
import pandas as pd
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.partition import propose_partition
from geodata.schema import household_basis_problem, road_class_problem
from gridsvc.errors import InvalidInput
from gridsvc.models import Building, Community, Road
from gridsvc.repositories.areas import CommunityRef
from gridsvc.repositories.cells import community_cells_frame, community_geometry
from gridsvc.services.water import community_water
from gridsvc.settings import get_settings

_BARRIER_TAGS = ("railway", "route", "tunnel", "bridge", "covered")


def _roads(session: Session, community_id: int) -> gpd.GeoDataFrame:
    rows = session.execute(
        select(Road.highway, Road.properties, Road.geom)
        .join(Community, func.ST_Intersects(Community.geom, Road.geom))
        .where(Community.id == community_id)
        # a fixed order: the same data always gives the same proposal, wherever the rows lie
        .order_by(Road.id)
    ).all()
    # the tags geodata.partition.barrier_mask reads: ferries and tunnels are no barrier, rail is
    return gpd.GeoDataFrame(
        {
            "highway": [r[0] for r in rows],
            **{tag: [(r[1] or {}).get(tag) for r in rows] for tag in _BARRIER_TAGS},
        },
        geometry=[to_shape(r[2]) for r in rows],
        crs=4326,
    )


def _buildings(session: Session, community_id: int) -> gpd.GeoDataFrame:
    rows = session.execute(
        select(
            Building.id, Building.households, Building.estate_id, Building.footprint, Building.kind
        )
        .where(Building.community_id == community_id)
        .order_by(Building.id)
    ).all()
    return gpd.GeoDataFrame(
        {
            "id": [r[0] for r in rows],
            "households": [int(r[1]) for r in rows],
            "estate_id": pd.array([r[2] for r in rows], dtype="Int64"),
            "kind": pd.Series([r[4] for r in rows], dtype=object),
        },
        geometry=[to_shape(r[3]) for r in rows],
        crs=4326,
    ).set_index("id", drop=False)


def _current_cells(session: Session, community_id: int) -> gpd.GeoSeries | None:
    """Today's general cells of the community, or None when it has none."""
    cells = community_cells_frame(session, community_id)
    return None if cells.empty else cells.geometry


def propose_for_community(
    session: Session,
    community: CommunityRef,
    *,
    target: int,
    band: tuple[int, int],
    seed: int = 0,
    keep_current: bool = False,
) -> dict[str, Any]:
    """A proposal as a FeatureCollection with a summary; nothing is written.

    With ``keep_current`` it starts from the community's cells of today and moves only what
    the band and contiguity require (none today: a fresh partition).
    """
    if band[0] >= band[1] or not band[0] <= target <= band[1]:
        raise InvalidInput(f"the target {target} must lie inside the band {band[0]}–{band[1]}")
    buildings = _buildings(session, community.id)
    if buildings.empty:
        raise InvalidInput("the community has no buildings to partition; import buildings first")
    geo = get_settings().geo
    roads = _roads(session, community.id)
    # The same rules the import warned with: a proposal on misread data would be one cell of
    # 0 households, or blocks cut by every footpath and ferry line.
    for problem in (
        household_basis_problem(
            buildings["kind"], buildings["households"], max_zero_share=geo.zero_households_max_share
        ),
        road_class_problem(roads["highway"], max_missing_share=geo.unclassified_roads_max_share),
    ):
        if problem:
            raise InvalidInput(
                f"无法自动划格：{problem}。导入时的字段映射可能有误："
                "请用 --field building=列名 或 --field road_class=列名 重新导入后再试"
            )
    proposal = propose_partition(
        community_geometry(session, community.id),
        buildings.drop(columns=["kind"]),
        roads,
        households_column="households",
        estate_column="estate_id",
        target=target,
        band=band,
        seed=seed,
        water=community_water(session, community.id),
        current=_current_cells(session, community.id) if keep_current else None,
    )
    cells = proposal.cells.drop(columns=[c for c in ("cell_index",) if c in proposal.cells])
    collection = json.loads(cells.to_json(drop_id=True, to_wgs84=True))
    return {
        "type": "FeatureCollection",
        "features": collection["features"],
        "summary": proposal.summary(),
        "target": target,
        "band": list(band),
    }
