"""Maps for pages and exports: gathers the layers of a cell or area (scope-checked and masked
for the caller) and hands them to the pure `maps` package to draw."""

from __future__ import annotations

from typing import Any, Literal

import geopandas as gpd
from sqlalchemy.orm import Session

from gridsvc.domain import HOUSEHOLD_FLAGS
from gridsvc.errors import InvalidInput
from gridsvc.repositories import areas as area_repo
from gridsvc.repositories import cells as cell_repo
from gridsvc.repositories import layers as layer_repo
from gridsvc.repositories.layers import Area
from gridsvc.services.access import (
    Principal,
    mask_name,
    mask_phone,
    require_in_scope,
    sees_personal_data,
)
from gridsvc.settings import get_settings

AreaKind = Literal["cell", "community", "street"]

#: Coverage figures an overview can colour cells by (column → label).
METRICS: dict[str, str] = {
    "households": "户数",
    "buildings": "楼栋数",
    "volunteers": "志愿者人数",
    "volunteers_per_100": "每百户志愿者",
    "open_incidents": "未结事件",
}
#: What a 格长's map can colour buildings by: households, or the count of a household flag.
COLOUR_BY: dict[str, str] = {"households": "户数", **HOUSEHOLD_FLAGS}
#: Walking distance drawn around a volunteer's home on the cell map (metres).
VOLUNTEER_WALK_M = 300.0
#: Where gridsvc serves the pinned browser assets.
ASSET_PREFIX = "/static/vendor/"


def area_for(session: Session, principal: Principal, kind: AreaKind, code: str) -> Area:
    """The cell, community or street with this code, if it lies in the caller's scope."""
    if kind == "cell":
        cell = cell_repo.get_cell(session, code)
        require_in_scope(principal, cell.place, f"cell {code}")
        return Area("cell", cell.id, cell.code, cell.name)
    if kind == "community":
        community = area_repo.get_community(session, code)
        if not (principal.cell_id is not None and principal.cell_community_id == community.id):
            require_in_scope(principal, community.place, f"community {code}")
        return Area("community", community.id, community.code, community.name)
    if kind == "street":
        street = area_repo.get_street(session, code)
        require_in_scope(principal, street.place, f"street {code}")
        return Area("street", street.id, street.code, street.name)
    raise InvalidInput(f"unknown area kind {kind!r}; use cell, community or street")


def vendor_urls(*keys: str) -> tuple[list[str], list[str]]:
    """(stylesheet URLs, script URLs) of pinned browser assets, for hand-written pages."""
    from maps import assets

    css: list[str] = []
    js: list[str] = []
    for key in keys:
        for file in assets.ASSETS[key].files:
            if file.endswith(".css"):
                css.append(assets.asset_url(key, file, ASSET_PREFIX))
            elif file.endswith(".js"):
                js.append(assets.asset_url(key, file, ASSET_PREFIX))
    return css, js


def _masked(
    principal: Principal, frame: gpd.GeoDataFrame, columns: dict[str, Any]
) -> gpd.GeoDataFrame:
    if sees_personal_data(principal) or frame.empty:
        return frame
    out = frame.copy()
    for column, mask in columns.items():
        if column in out:
            out[column] = out[column].map(mask)
    return out


def cell_layers(session: Session, principal: Principal, area: Area) -> dict[str, gpd.GeoDataFrame]:
    """Everything on a 格长's cell map: the cell, its neighbours, buildings, households,
    incidents, volunteers and roads. Households are left out for roles that may not see them."""
    if area.kind != "cell":
        raise InvalidInput("a cell map needs a cell")
    cell = layer_repo.cells_frame(session, area)
    neighbours = layer_repo.neighbour_cells_frame(session, area.id)
    volunteers = layer_repo.volunteers_layer(session, [area.id])
    layers = {
        "cell": cell,
        "neighbours": neighbours,
        "buildings": layer_repo.buildings_layer(session, area),
        "incidents": layer_repo.incidents_layer(session, area),
        "volunteers": _masked(principal, volunteers, {"name": mask_name, "phone": mask_phone}),
        "roads": layer_repo.roads_layer(session, [area.id, *neighbours["id"].tolist()]),
    }
    if sees_personal_data(principal):
        layers["households"] = layer_repo.households_layer(session, area)
    return layers


def overview_cells(session: Session, area: Area, metric: str) -> gpd.GeoDataFrame:
    """Cells of a community or street with their coverage figures, checked metric."""
    if metric not in METRICS:
        raise InvalidInput(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    return layer_repo.cells_frame(session, area)


def _basemap() -> Any:
    from maps import basemaps

    settings = get_settings().maps
    if settings.basemap == "tianditu" and settings.tianditu_key:
        return basemaps.tianditu(settings.tianditu_key)
    if settings.basemap == "amap":
        return basemaps.amap()
    if settings.basemap == "local" and settings.local_tiles_url:
        return basemaps.local_tiles(
            settings.local_tiles_url, attribution=settings.local_tiles_attribution
        )
    return basemaps.none()
