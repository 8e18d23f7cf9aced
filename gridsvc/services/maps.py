"""Maps for pages and exports: gathers the layers of a cell or area (scope-checked and masked
for the caller) and hands them to the pure `maps` package to draw."""

from __future__ import annotations

from typing import Any, Literal

import geopandas as gpd
from sqlalchemy.orm import Session

from geodata.datum import Datum
from gridsvc.auth.masking import mask_name, mask_phone, mask_phones, sees_personal_data
from gridsvc.auth.policy import require_in_scope
from gridsvc.auth.principal import Principal
from gridsvc.domain import HOUSEHOLD_FLAGS, INCIDENT_STATUSES
from gridsvc.errors import Forbidden, InvalidInput, NotFound
from gridsvc.repositories import areas as area_repo
from gridsvc.repositories import cells as cell_repo
from gridsvc.repositories import layers as layer_repo
from gridsvc.repositories.layers import Area
from gridsvc.services.clock import local_today, local_zone
from gridsvc.settings import get_settings

AreaKind = Literal["cell", "community", "street"]

#: Coverage figures an overview or report map can colour cells by (column → label).
#: Shares are shown in per cent; every one names its denominator in the coverage report.
METRICS: dict[str, str] = {
    "households": "户数",
    "volunteers_per_100_households": "每百户志愿者数",
    "visited_share": "近30天走访覆盖率(%)",
    "linked_share": "党员联系户覆盖率(%)",
    "near_volunteer_share": "步行范围内有志愿者的户占比(%)",
    "buildings_without_captain": "无楼栋长楼栋数",
    "open_incidents": "未结事件",
    "incidents_overdue": "超期未结事件",
}
#: Metrics that come from the coverage report's figures (shares become per cent).
_FIGURE_METRICS = {
    "volunteers_per_100_households",
    "visited_share",
    "linked_share",
    "near_volunteer_share",
}
_COUNT_METRICS = {"buildings_without_captain", "incidents_overdue"}
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


def buildings_for(session: Session, principal: Principal, area: Area) -> gpd.GeoDataFrame:
    """Buildings of the area; the per-building counts of household flags (低保, 残疾 …) are
    withheld (null) from roles that may not see personal data — a count of one names a
    household. Viewers get flag figures only per cell and above (coverage)."""
    return _masked(
        principal,
        layer_repo.buildings_layer(session, area),
        dict.fromkeys(HOUSEHOLD_FLAGS, lambda _value: None),
    )


def cell_layers(session: Session, principal: Principal, area: Area) -> dict[str, gpd.GeoDataFrame]:
    """Everything on a 格长's cell map: the cell, its neighbours, buildings, households,
    incidents, volunteers and roads. Households are left out for roles that may not see them."""
    if area.kind != "cell":
        raise InvalidInput("a cell map needs a cell")
    cell = layer_repo.cells_frame(session, area)
    if cell.empty:
        successors = layer_repo.successor_codes(session, area.id)
        raise NotFound(
            f"cell {area.code} has been retired"
            + (f"; its area now lies in {', '.join(successors)}" if successors else "")
        )
    neighbours = layer_repo.neighbour_cells_frame(session, area.id)
    volunteers = layer_repo.volunteers_layer(session, [area.id])
    layers = {
        "cell": cell,
        "neighbours": neighbours,
        "buildings": buildings_for(session, principal, area),
        "incidents": layer_repo.incidents_layer(session, area),
        "volunteers": _masked(principal, volunteers, {"name": mask_name, "phone": mask_phone}),
        "roads": layer_repo.roads_layer(session, [area.id, *neighbours["id"].tolist()]),
    }
    if sees_personal_data(principal):
        layers["households"] = layer_repo.households_layer(session, area)
    return layers


def overview_cells(
    session: Session, principal: Principal, area: Area, metric: str = "households"
) -> gpd.GeoDataFrame:
    """Cells of an area with their counts, 格长 and every coverage metric (as of today)."""
    from gridsvc.services import coverage

    if metric not in METRICS:
        raise InvalidInput(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    cells = layer_repo.cells_frame(session, area)
    if cells.empty:
        return cells
    if area.kind == "street":
        report = coverage.coverage(session, principal, street_code=area.code)
    else:
        report = coverage.coverage(
            session, principal, community_code=layer_repo.community_code_of(session, area)
        )
    by_cell = {r["cell_code"]: r for r in report["rows"] if r["level"] == "cell"}
    for key in _FIGURE_METRICS | _COUNT_METRICS:
        values = []
        for code in cells["code"]:
            row = by_cell.get(code)
            if row is None:
                values.append(None)
            elif key in _COUNT_METRICS:
                values.append(row["counts"][key])
            else:
                value = row["figures"][key]["value"]
                share = row["figures"][key]["unit"] == "share"
                values.append(None if value is None else round(value * (100 if share else 1), 1))
        cells[key] = values
    return cells


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


def display_datum() -> str:
    """The datum the maps draw in (that of the configured basemap's tiles): a point tapped on
    a map is in this datum and is converted back to WGS84 before it is stored."""
    return str(_basemap().datum.value)


def tile_sources() -> list[str]:
    """Origins the configured basemap's tiles load from (CSP img-src); none for no basemap."""
    from urllib.parse import urlsplit

    sources = []
    for tile in _basemap().tiles:
        parts = urlsplit(tile.url)
        host = parts.hostname or ""
        if "{" in host:  # t{s}.tianditu.gov.cn: any subdomain of the parent domain
            host = "*." + host.split(".", 1)[1]
        if parts.scheme and host:
            sources.append(f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else ""))
    return list(dict.fromkeys(sources))


def _household_points(households: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Households with a readable label (楼栋 单元 室) for popups."""
    if households.empty:
        return households
    parts = [
        households["building"].fillna(""),
        households["unit"].fillna(""),
        households["room"].fillna(""),
    ]
    label = parts[0].astype(str)
    unit = parts[1].astype(str)
    label = label + unit.where(unit == "", unit + "单元")
    label = label + parts[2].astype(str)
    return households.assign(label=label)


def _incident_points(incidents: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Incidents with their category as a Chinese label (status stays a code for colours)."""
    if incidents.empty:
        return incidents
    return incidents.assign(
        category=incidents["category_label"],
        # the workflow's order of states, which the map colours in turn
        status_rank=incidents["status"].map({s: i for i, s in enumerate(INCIDENT_STATUSES)}),
        reported_at=incidents["reported_at"]
        .dt.tz_convert(local_zone())
        .dt.strftime("%Y-%m-%d %H:%M"),
    )


def cell_map(
    session: Session, principal: Principal, area: Area, *, colour_by: str = "households"
) -> Any:
    """The folium map of one cell for the signed-in user."""
    from maps import interactive

    if colour_by not in COLOUR_BY:
        raise InvalidInput(f"unknown colour_by {colour_by!r}; choose from {', '.join(COLOUR_BY)}")
    if colour_by in HOUSEHOLD_FLAGS and not sees_personal_data(principal):
        raise Forbidden(
            f"the {principal.role} role may not colour buildings by {HOUSEHOLD_FLAGS[colour_by]} "
            "(household flags are personal data)"
        )
    layers = cell_layers(session, principal, area)
    households = layers.get("households")
    return interactive.cell_map(
        layers["cell"],
        neighbours=layers["neighbours"],
        buildings=layers["buildings"],
        households=_household_points(households) if households is not None else None,
        incidents=_incident_points(layers["incidents"]),
        volunteers=layers["volunteers"],
        roads=layers["roads"],
        basemap=_basemap(),
        colour_by=colour_by,
        walk_m=VOLUNTEER_WALK_M,
        title=f"{area.name}（{area.code}）",
        flag_labels=HOUSEHOLD_FLAGS,
        data_attribution=layer_repo.attribution(session, area),
    )


#: The vector tiles web maps draw buildings from (served by gridsvc.api.tiles).
BUILDING_TILES_URL = "/api/v1/tiles/buildings/{z}/{x}/{y}.mvt"


def uses_building_tiles(session: Session, area: Area, *, served: bool = True) -> bool:
    """True when a web map of the area draws its buildings from vector tiles: it is served
    by gridsvc (a file opened from disk has no tile server), the basemap is in WGS84 (tiles
    are not shifted to GCJ-02), and the area has more buildings than
    ``GRIDSVC_MAP_TILED_BUILDINGS_ABOVE``."""
    if not served or _basemap().datum not in (Datum.WGS84, Datum.CGCS2000):
        return False
    limit = get_settings().maps.tiled_buildings_above
    return layer_repo.building_count(session, area, more_than=limit) > limit


def overview_map(
    session: Session,
    principal: Principal,
    area: Area,
    metric: str,
    *,
    served: bool = True,
) -> Any:
    """The folium choropleth of the cells of a community or street; its buildings come from
    vector tiles above a few thousand (see :func:`uses_building_tiles`), else inline."""
    from gridsvc.services.tiles import LAYERS
    from maps import interactive

    cells = overview_cells(session, principal, area, metric)
    tiled = uses_building_tiles(session, area, served=served)
    buildings = None if tiled else layer_repo.buildings_layer(session, area)[["name", "geometry"]]
    return interactive.overview_map(
        cells,
        metric=metric,
        metric_label=METRICS[metric],
        basemap=_basemap(),
        cell_url="/ui/cells/{code}",
        roads=layer_repo.roads_layer(session, cells["id"].tolist()) if len(cells) else None,
        buildings=buildings,
        title=f"{area.name} · {METRICS[metric]}",
        data_attribution=layer_repo.attribution(session, area),
        value_format=_value_format(metric),
        building_tiles=BUILDING_TILES_URL if tiled else None,
        building_tiles_minzoom=LAYERS["buildings"].minzoom,
    )


def _value_format(metric: str) -> str:
    return "{:.1f}" if metric in _FIGURE_METRICS else "{:.0f}"


def area_html(
    session: Session,
    principal: Principal,
    area: Area,
    *,
    metric: str = "households",
    mode: Literal["server", "inline"] = "inline",
) -> str:
    """A whole HTML map of the area: the cell map for a cell, the overview otherwise."""
    from gridsvc import csp
    from maps.interactive import render_html

    if area.kind == "cell":
        m = cell_map(session, principal, area)
    else:
        m = overview_map(session, principal, area, metric, served=mode == "server")
    page = render_html(m, mode, asset_prefix=ASSET_PREFIX)
    # A file opened from disk has no server to send the policy: it carries it itself.
    return csp.with_meta_policy(page, tile_sources()) if mode == "inline" else page


#: Report maps (PNG/PDF): the coverage map and two of the 三图.
STATIC_KINDS: dict[str, str] = {
    "coverage": "网格覆盖图",
    "area": "区域平面图",
    "buildings": "楼房平面图",
    "responsibility": "责任网络图",
}


def static_map(
    session: Session,
    principal: Principal,
    area: Area,
    fmt: Literal["png", "pdf"],
    *,
    kind: str = "coverage",
    metric: str = "households",
    paper: str = "A4",
    orientation: str = "landscape",
) -> bytes:
    """A report-ready map page of the area as PNG or PDF (title, legend, scale bar, north
    arrow, attribution, the configured footer; Chinese text in Noto CJK)."""
    import matplotlib.pyplot as plt

    from maps import reports, static

    if kind not in STATIC_KINDS:
        raise InvalidInput(f"unknown map {kind!r}; choose from {', '.join(STATIC_KINDS)}")
    if paper not in ("A4", "A3") or orientation not in ("portrait", "landscape"):
        raise InvalidInput("paper must be A4 or A3, orientation portrait or landscape")
    settings = get_settings().maps
    if kind == "responsibility":
        return responsibility_chart(session, principal, area, fmt)
    cells = overview_cells(session, principal, area, metric)
    if cells.empty:
        raise InvalidInput(f"{area.name} has no current cells to draw")
    outline = layer_repo.outline_frame(session, area)
    buildings = layer_repo.buildings_layer(session, area)
    roads = layer_repo.roads_layer(session, cells["id"].tolist())
    organisation = f"{settings.organisation} " if settings.organisation else ""
    title = f"{organisation}{area.name}{STATIC_KINDS[kind]}"
    common: dict[str, Any] = {
        "paper": paper,
        "orientation": orientation,
        "footer": settings.footer or None,
        "attribution": layer_repo.attribution(session, area),
        "on": local_today(),
    }
    if kind == "coverage":
        figure = static.coverage_map(
            cells,
            title=title,
            metric=metric,
            metric_label=METRICS[metric],
            area=outline,
            buildings=buildings,
            roads=roads,
            value_format=_value_format(metric),
            **common,
        )
    elif kind == "area":
        figure = reports.area_plan(
            outline, cells, buildings=buildings, roads=roads, title=title, **common
        )
    else:
        if buildings.empty:
            raise InvalidInput(f"{area.name} has no buildings to draw")
        figure = reports.building_plan(
            outline, buildings, cells=cells, roads=roads, title=title, **common
        )
    try:
        return static.to_png(figure) if fmt == "png" else static.to_pdf(figure, title=title)
    finally:
        plt.close(figure)


def responsibility_chart(
    session: Session, principal: Principal, area: Area, fmt: Literal["png", "pdf"]
) -> bytes:
    """责任网络图 of a street or of one community (a cell: its community), drawn for reports."""
    from gridsvc.services import people
    from maps.charts import responsibility_chart as draw

    tree = people.responsibility_tree(session, principal, layer_repo.street_code_of(session, area))
    if area.kind != "street":
        community = layer_repo.community_code_of(session, area)
        tree["children"] = [c for c in tree["children"] if c.get("code") == community]
    return draw(mask_phones(principal, tree), fmt=fmt)
