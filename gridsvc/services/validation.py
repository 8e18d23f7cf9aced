"""Validate a community's cells: gaps, overlaps, parts outside, non-contiguous cells, slivers,
unassigned buildings, cells without a 格长, households outside the band (geodata.coverage)."""

from __future__ import annotations

import geopandas as gpd
from sqlalchemy.orm import Session

from geodata.coverage import CoverageReport, validate_cells
from gridsvc.repositories.areas import CommunityRef
from gridsvc.repositories.cells import buildings_frame, community_cells_frame, community_geometry
from gridsvc.settings import get_settings


def validate_community(
    session: Session,
    community: CommunityRef,
    *,
    tolerance_m: float = 0.0,
    sliver_m2: float = 50.0,
    band: tuple[int, int] | None = None,
    cells: gpd.GeoDataFrame | None = None,
) -> CoverageReport:
    """The coverage report of the community's current general cells (band from settings).

    Every gap or overlap above the ``coverage_tolerance_m2`` setting is reported;
    ``tolerance_m`` > 0 also ignores those narrower than that everywhere.

    `cells` may pass the community's cells when the caller has just read them.
    """
    geo = get_settings().geo
    cells = community_cells_frame(session, community.id) if cells is None else cells
    # Geometry is only drawn for unassigned buildings: fetch it for those alone.
    buildings = buildings_frame(session, community_id=community.id, with_geometry=False)
    unassigned = buildings["cell_code"].isna()
    if unassigned.any():
        shapes = buildings_frame(session, ids=[int(i) for i in buildings.loc[unassigned, "id"]])
        buildings.loc[unassigned, "geometry"] = (
            shapes.set_index("id").loc[buildings.loc[unassigned, "id"]].geometry.values
        )
    # Households per cell are counted from the community's own buildings — the rows a proposal
    # reads — so the report can never disagree with them.
    own = buildings[buildings["community_id"] == community.id]
    per_cell = own.groupby("cell_code")["households"].sum()
    cells = cells.assign(households=[int(per_cell.get(code, 0)) for code in cells["code"]])
    return validate_cells(
        community_geometry(session, community.id),
        cells[["code", "households", "has_leader", "geometry"]],
        buildings[["id", "cell_code", "geometry"]],
        tolerance_m=tolerance_m,
        sliver_m2=sliver_m2,
        band=band or (geo.cell_households_min, geo.cell_households_max),
        min_area_m2=geo.coverage_tolerance_m2,
    )
