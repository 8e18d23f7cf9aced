"""Interactive maps (folium): the 格长's cell map and the street/community overview.

Both functions take GeoDataFrames (EPSG:4326) and use whatever columns are present; a missing
optional layer is simply left out. Recognised columns (all optional except geometry):

* cells / neighbours: ``code``, ``name``, ``leader`` (格长), ``households``, ``buildings``,
  ``open_incidents``, plus any metric column for :func:`overview_map`;
* buildings: ``name`` (楼号), ``captain`` (楼栋长), ``households``, ``open_incidents``,
  ``address``, and per-flag household counts named like the flags (``low_income`` …);
* households (points): ``label`` (e.g. "3栋2单元301"), ``head_name``, boolean flag columns;
* incidents (points): ``status``, ``category``, ``description``, ``reported_at``;
* volunteers (points): ``name``, ``team``;
* roads (lines): ``name``.

:func:`render_html` turns a map into a page whose assets are ours: served below a prefix
("server") or embedded ("inline", a self-contained file that opens with no internet).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium import plugins

from geodata.crs import metric_crs
from maps import assets
from maps.basemaps import Basemap
from maps.basemaps import none as no_basemap
from maps.layers import (
    BIND_JS,
    LABEL_JS,
    ChineseControls,
    HouseholdCluster,
    Legend,
    MapTitle,
    VectorTiles,
    escape,
    feature_collection,
    popup_html,
    prepare,
    present,
    tooltip_html,
)
from maps.styles import (
    BUILDING_NO_DATA,
    CELL_STYLE,
    INCIDENT_STATE_PALETTE,
    NEIGHBOUR_STYLE,
    OSM_ATTRIBUTION,
    ROAD_COLOUR,
    VOLUNTEER_COLOUR,
    classify,
    short_codes,
)

__all__ = ["cell_map", "overview_map", "render_html", "short_codes"]

logger = logging.getLogger(__name__)

#: Above this many context features (buildings on an overview) they are left out of the page.
MAX_CONTEXT_FEATURES = 5000
#: Buildings drawn as grey context on an overview (inline GeoJSON or vector tiles alike).
BUILDING_CONTEXT_STYLE: dict[str, Any] = {
    "color": "#969696",
    "weight": 0.5,
    "fill": True,
    "fillColor": "#d9d9d9",
    "fillOpacity": 0.7,
}


def _col(gdf: gpd.GeoDataFrame, name: str) -> pd.Series | None:
    return gdf[name] if name in gdf.columns else None


def _values(gdf: gpd.GeoDataFrame, name: str) -> list[Any]:
    return gdf[name].tolist() if name in gdf.columns else [None] * len(gdf)


def _new_map(bounds_gdf: gpd.GeoDataFrame, basemap: Basemap) -> folium.Map:
    minx, miny, maxx, maxy = bounds_gdf.total_bounds
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=16,
        tiles=None,
        zoom_control=False,
        control_scale=False,
    )
    ChineseControls().add_to(m)
    # Without tiles Leaflet knows no zoom limit; the marker clusters need one.
    m.options["max_zoom"] = max((t.max_zoom for t in basemap.tiles), default=20)
    basemap.add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(10, 10))
    return m


def _controls(m: folium.Map) -> None:
    plugins.Fullscreen(  # type: ignore[no-untyped-call]  # (folium's plugins are untyped)
        position="topleft", title="全屏", title_cancel="退出全屏"
    ).add_to(m)
    plugins.LocateControl(  # type: ignore[no-untyped-call]
        position="topleft",
        strings={"title": "显示我的位置", "popup": "您在此处附近 {distance} 米内"},
        keepCurrentZoomLevel=True,
    ).add_to(m)


def _cell_popup(
    row: Mapping[str, Any],
    link: tuple[str, str] | None = None,
    extra: Sequence[tuple[str, Any]] = (),
) -> str:
    title = row.get("name") or row.get("code") or "网格"
    rows = [
        ("网格编码", row.get("code")),
        ("格长", row.get("leader")),
        ("户数", row.get("households")),
        ("楼栋", row.get("buildings")),
        ("未结事件", row.get("open_incidents")),
        *extra,
    ]
    return popup_html(title, rows, link)


def _records(gdf: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = gdf.drop(columns=gdf.geometry.name).to_dict("records")
    return records


def _roads_layer(roads: gpd.GeoDataFrame, attribution: str) -> folium.GeoJson:
    tips = _values(roads, "name")
    data = feature_collection(roads, {"_tip": tips})
    return folium.GeoJson(
        data,
        name="道路",
        style={"color": ROAD_COLOUR, "weight": 2, "opacity": 0.8},
        on_each_feature=BIND_JS,
        attribution=attribution,
    )


def _building_layer(
    buildings: gpd.GeoDataFrame,
    colour_by: str,
    flag_labels: Mapping[str, str],
    attribution: str,
    name: str = "楼栋",
) -> tuple[folium.GeoJson, list[tuple[str, str, str]], str]:
    """Buildings coloured by a numeric column; returns the layer, legend entries and heading."""
    values = _col(buildings, colour_by)
    heading = (
        "楼栋户数"
        if colour_by == "households"
        else f"楼栋{flag_labels.get(colour_by, colour_by)}户数"
    )
    if values is not None:
        numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        classes = classify(numeric, 5, "YlOrRd" if colour_by == "households" else "Blues")
        colours = classes.colour_of(numeric)
        legend = [
            (c, label, "box") for c, label in zip(classes.colours, classes.labels(), strict=True)
        ]
        if np.isnan(numeric).any():
            legend.append((BUILDING_NO_DATA, "无数据", "box"))
    else:
        colours = [BUILDING_NO_DATA] * len(buildings)
        legend = [(BUILDING_NO_DATA, "楼栋", "box")]
    popups = []
    has_captain = "captain" in buildings.columns
    for row in _records(buildings):
        captain = row.get("captain")
        if has_captain and (captain is None or captain == "" or captain != captain):
            captain = "未落实"
        rows: list[tuple[str, Any]] = [
            ("楼栋长", captain),
            ("户数", row.get("households")),
            *[(f"{label}户", row.get(flag)) for flag, label in flag_labels.items()],
            ("未结事件", row.get("open_incidents")),
            ("地址", row.get("address")),
        ]
        popups.append(popup_html(row.get("name") or "楼栋", rows))
    data = feature_collection(
        buildings, {"style": [{"fillColor": c} for c in colours], "_popup": popups}
    )
    layer = folium.GeoJson(
        data,
        name=name,
        style={"color": "#636363", "weight": 0.8, "fillOpacity": 0.85},
        on_each_feature=BIND_JS,
        attribution=attribution,
    )
    return layer, legend, heading


def _household_layer(
    households: gpd.GeoDataFrame, flag_labels: Mapping[str, str]
) -> HouseholdCluster:
    points = households.geometry
    if not (points.geom_type == "Point").all():
        points = points.representative_point()
    flags = [
        (key, label, i)
        for i, (key, label) in enumerate(flag_labels.items())
        if key in households.columns
    ]
    bits = np.zeros(len(households), dtype=np.int64)
    for key, _label, i in flags:
        bits |= households[key].fillna(False).astype(bool).to_numpy().astype(np.int64) << i
    rows = []
    for row, pt, b in zip(_records(households), points, bits, strict=True):
        tags = "、".join(label for key, label, i in flags if b >> i & 1)
        body = popup_html(
            row.get("label") or "住户", [("户主", row.get("head_name")), ("标记", tags or None)]
        )
        rows.append([round(pt.y, 5), round(pt.x, 5), int(b), body])
    counts = {key: int((bits >> i & 1).sum()) for key, _label, i in flags}
    shown = [(key, f"{label} ({counts[key]})", i) for key, label, i in flags if counts[key]]
    return HouseholdCluster(rows, shown, name=f"住户 ({len(rows)})")


def _incident_layers(
    m: folium.Map, incidents: gpd.GeoDataFrame, legend: list[tuple[str, str, str]]
) -> None:
    status = _col(incidents, "status")
    status = (
        status.fillna("").astype(str)
        if status is not None
        else pd.Series("", index=incidents.index)
    )
    # The caller ranks the states (the workflow's order); the map colours them in that order.
    rank = _col(incidents, "status_rank")
    records = _records(incidents)
    # The caller says what each case is: its status label and whether it is open (gridsvc's one
    # rule); the map only groups by status, colours, and shows the open groups at first.
    labels = _col(incidents, "status_label")
    is_open = _col(incidents, "is_open")
    categories = _col(incidents, "category_label")
    if categories is None:
        categories = _col(incidents, "category")
    ranks = (
        {key: float(r) for key, r in zip(status, rank, strict=True) if pd.notna(r)}
        if rank is not None
        else {}
    )
    order = sorted(set(status), key=lambda key: (ranks.get(key, float("inf")), key))
    for position, key in enumerate(order):
        mask = (status == key).to_numpy()
        label = str(labels[mask].iloc[0]) if labels is not None else (key or "未知")
        colour = INCIDENT_STATE_PALETTE[int(ranks.get(key, position)) % len(INCIDENT_STATE_PALETTE)]
        sub = incidents[mask]
        popups = [
            popup_html(
                category or "事件",
                [
                    ("状态", label),
                    ("描述", r.get("description")),
                    ("上报时间", r.get("reported_at")),
                ],
            )
            for r, category, keep in zip(
                records,
                categories.tolist() if categories is not None else [None] * len(records),
                mask,
                strict=True,
            )
            if keep
        ]
        folium.GeoJson(
            feature_collection(sub, {"_popup": popups}),
            name=escape(f"事件·{label} ({int(mask.sum())})"),
            marker=folium.CircleMarker(
                radius=6, fill=True, color="#ffffff", weight=1, fill_color=colour, fill_opacity=0.9
            ),
            on_each_feature=BIND_JS,
            show=bool(is_open[mask].fillna(False).all()) if is_open is not None else True,
        ).add_to(m)
        legend.append((colour, f"事件·{label}", "dot"))
    heat = [[round(p.y, 5), round(p.x, 5)] for p in incidents.geometry.representative_point()]
    plugins.HeatMap(  # type: ignore[no-untyped-call]
        heat, name="事件热力图", show=False, radius=18, blur=15, min_opacity=0.3
    ).add_to(m)


def _volunteer_layers(
    m: folium.Map, volunteers: gpd.GeoDataFrame, walk_m: float, legend: list[tuple[str, str, str]]
) -> None:
    points = volunteers.geometry
    if not (points.geom_type == "Point").all():
        points = points.representative_point()
    pts = gpd.GeoDataFrame(geometry=points.to_numpy(), crs=4326)
    popups = [
        popup_html(r.get("name") or "志愿者", [("志愿服务队", r.get("team"))])
        for r in _records(volunteers)
    ]
    # One area: every place within walk_m of a volunteer's home (buffers in metres, dissolved),
    # instead of one circle per volunteer piling up over a dense block.
    crs = metric_crs(pts)
    reach = gpd.GeoDataFrame(
        geometry=[pts.to_crs(crs).buffer(walk_m, quad_segs=16).union_all()], crs=crs
    ).to_crs(4326)
    folium.GeoJson(
        feature_collection(reach),
        name=f"志愿者步行覆盖 ({walk_m:.0f} 米)",
        style_function=lambda _: {
            "color": VOLUNTEER_COLOUR,
            "weight": 1,
            "fillColor": VOLUNTEER_COLOUR,
            "fillOpacity": 0.12,
        },
        interactive=False,
    ).add_to(m)
    folium.GeoJson(
        feature_collection(pts, {"_popup": popups}),
        name=f"志愿者 ({len(pts)})",
        marker=folium.CircleMarker(
            radius=5,
            color="#ffffff",
            weight=1,
            fill=True,
            fill_color=VOLUNTEER_COLOUR,
            fill_opacity=1,
        ),
        on_each_feature=BIND_JS,
    ).add_to(m)
    legend.append((VOLUNTEER_COLOUR, f"志愿者 (步行 {walk_m:.0f} 米范围)", "dot"))


def cell_map(
    cell: gpd.GeoDataFrame,
    *,
    neighbours: gpd.GeoDataFrame | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    households: gpd.GeoDataFrame | None = None,
    incidents: gpd.GeoDataFrame | None = None,
    volunteers: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | None = None,
    basemap: Basemap | None = None,
    colour_by: str = "households",
    walk_m: float = 500.0,
    title: str | None = None,
    flag_labels: Mapping[str, str] | None = None,
    data_attribution: str = OSM_ATTRIBUTION,
) -> folium.Map:
    """The 格长's map of one cell (``cell``: a one-row GeoDataFrame).

    Neighbouring cells faded; buildings coloured by ``colour_by`` (``households`` or a flag's
    household-count column); household points clustered with a flag filter; incidents by
    status (open ones shown) and a heat map to switch on; volunteers with ``walk_m`` walking
    circles; Chinese popups, legend, layer control, fullscreen and locate-me controls.
    ``data_attribution`` credits the buildings and roads (OSM by default). ``flag_labels``: the
    household flags the data carries (column → label), as the caller names them; none, none
    are drawn.
    """
    flag_labels = flag_labels or {}
    basemap = basemap or no_basemap()
    cell_d = prepare(cell, basemap)
    if cell_d is None or len(cell_d) != 1:
        raise ValueError("cell must be a GeoDataFrame with exactly one non-empty row")
    m = _new_map(cell_d, basemap)
    legend: list[tuple[str, str, str]] = []
    building_legend: list[tuple[str, str, str]] = []
    building_heading = "楼栋"

    neighbours_d = prepare(neighbours, basemap)
    if present(neighbours_d):
        labels = [str(c) if c is not None else "" for c in _values(neighbours_d, "code")]
        popups = [_cell_popup(r) for r in _records(neighbours_d)]
        folium.GeoJson(
            feature_collection(neighbours_d, {"_popup": popups, "_tip": labels}),
            name="相邻网格",
            style=NEIGHBOUR_STYLE,
            on_each_feature=BIND_JS,
        ).add_to(m)
        legend.append((str(NEIGHBOUR_STYLE["fillColor"]), "相邻网格", "box"))

    roads_d = prepare(roads, basemap)
    if present(roads_d):
        _roads_layer(roads_d, data_attribution).add_to(m)
        legend.append((ROAD_COLOUR, "道路", "box"))

    buildings_d = prepare(buildings, basemap)
    if present(buildings_d):
        layer, building_legend, building_heading = _building_layer(
            buildings_d, colour_by, flag_labels, data_attribution
        )
        layer.add_to(m)

    row = _records(cell_d)[0]
    folium.GeoJson(
        feature_collection(cell_d, {"_popup": [_cell_popup(row)]}),
        name="本网格边界",
        style=CELL_STYLE,
        on_each_feature=BIND_JS,
    ).add_to(m)
    legend.insert(0, (str(CELL_STYLE["color"]), "本网格", "box"))

    households_d = prepare(households, basemap)
    if present(households_d):
        _household_layer(households_d, flag_labels).add_to(m)
        legend.append(("#2c7fb8", "住户", "dot"))
        legend.append(("#e6550d", "重点住户 (有标记)", "dot"))

    incidents_d = prepare(incidents, basemap)
    if present(incidents_d):
        _incident_layers(m, incidents_d, legend)

    volunteers_d = prepare(volunteers, basemap)
    if present(volunteers_d):
        _volunteer_layers(m, volunteers_d, walk_m, legend)

    heading = title or str(row.get("name") or row.get("code") or "网格")
    if row.get("leader"):
        heading += f" · 格长 {row['leader']}"
    MapTitle(heading).add_to(m)
    Legend([("图例", legend), (building_heading, building_legend)]).add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    _controls(m)
    return m


def overview_map(
    cells: gpd.GeoDataFrame,
    *,
    metric: str = "households",
    metric_label: str | None = None,
    basemap: Basemap | None = None,
    cell_url: str | None = None,
    roads: gpd.GeoDataFrame | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    data_attribution: str = OSM_ATTRIBUTION,
    value_format: str = "{:.0f}",
    building_tiles: str | None = None,
    building_tiles_minzoom: int = 13,
) -> folium.Map:
    """All cells as a choropleth of ``metric``, labelled with cell code and 格长.

    ``building_tiles`` (a ``{z}/{x}/{y}`` URL of an MVT layer named ``buildings``, served
    from ``building_tiles_minzoom``) draws the buildings from vector tiles instead of
    ``buildings``, so a street of any size draws them all.

    Labels show the shortest code suffix that tells the cells apart (the full code is in the
    popup).
    ``cell_url`` (e.g. ``"/cells/{code}"``) adds a link to each cell's popup. Buildings are
    drawn as grey context only up to :data:`MAX_CONTEXT_FEATURES`.
    """
    basemap = basemap or no_basemap()
    cells_d = prepare(cells, basemap)
    if not present(cells_d):
        raise ValueError("no cells to draw")
    if metric not in cells_d.columns:
        raise ValueError(f"metric column {metric!r} is not among the cells' columns")
    label = metric_label or metric
    m = _new_map(cells_d, basemap)

    roads_d = prepare(roads, basemap)
    if present(roads_d):
        _roads_layer(roads_d, data_attribution).add_to(m)
    buildings_d = prepare(buildings, basemap)
    if building_tiles:
        VectorTiles(
            building_tiles,
            name="楼栋",
            styles={"buildings": BUILDING_CONTEXT_STYLE},
            native_minzoom=building_tiles_minzoom,
            minzoom=max(building_tiles_minzoom - 4, 0),
            attribution=data_attribution,
        ).add_to(m)
    elif present(buildings_d):
        if len(buildings_d) > MAX_CONTEXT_FEATURES:
            logger.info(
                "overview: %d buildings exceed %d, left out", len(buildings_d), MAX_CONTEXT_FEATURES
            )
        else:
            folium.GeoJson(
                feature_collection(buildings_d),
                name="楼栋",
                style=BUILDING_CONTEXT_STYLE,
                interactive=False,
                attribution=data_attribution,
            ).add_to(m)

    values = pd.to_numeric(cells_d[metric], errors="coerce").to_numpy(dtype=float)
    classes = classify(values, 5)
    colours = classes.colour_of(values)
    records = _records(cells_d)
    short = short_codes(_values(cells_d, "code"))
    popups, labels = [], []
    for r, v, code in zip(records, values, short, strict=True):
        link = (
            (cell_url.format(code=quote(str(r["code"]), safe="")), "打开网格地图")
            if cell_url and r.get("code")
            else None
        )
        shown = None if np.isnan(v) else value_format.format(v)
        popups.append(_cell_popup(r, link, [(label, shown)]))
        labels.append(tooltip_html(code, r.get("leader")))
    folium.GeoJson(
        feature_collection(
            cells_d,
            {"style": [{"fillColor": c} for c in colours], "_popup": popups, "_label": labels},
        ),
        name=escape(f"网格 · {label}"),
        style={"color": "#4d4d4d", "weight": 1.5, "fillOpacity": 0.75},
        on_each_feature=LABEL_JS,
    ).add_to(m)
    entries = [
        (c, t, "box") for c, t in zip(classes.colours, classes.labels(value_format), strict=True)
    ]
    if np.isnan(values).any():
        entries.append((BUILDING_NO_DATA, "无数据", "box"))
    MapTitle(title or f"网格{label}").add_to(m)
    Legend([(label, entries)]).add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    _controls(m)
    return m


_UNSUPPORTED = {
    "Icon": "folium.Icon needs awesome-markers and Font Awesome from a CDN; use folium.DivIcon",
}


def _check_supported(element: Any) -> None:
    for child in element._children.values():
        problem = _UNSUPPORTED.get(type(child).__name__)
        if problem:
            raise assets.AssetError(problem)
        _check_supported(child)


def render_html(
    m: folium.Map,
    mode: Literal["server", "inline"] = "server",
    *,
    asset_prefix: str = assets.DEFAULT_PREFIX,
    asset_root: Path | None = None,
) -> str:
    """The map as one HTML page with only our assets.

    "server": scripts and stylesheets below ``asset_prefix`` (mount the asset folder there);
    "inline": everything embedded, a self-contained file that opens with no server and no
    internet. Raises :class:`maps.assets.AssetError` if the page would load anything from the
    internet (an unmapped folium feature) or an asset is missing.
    """
    _check_supported(m)
    page = m.get_root().render()
    page = assets.localize_html(page, mode, prefix=asset_prefix, root=asset_root)
    leaks = assets.external_assets(page)
    if leaks:
        raise assets.AssetError(
            f"page would load from the internet: {', '.join(sorted(set(leaks)))}"
        )
    return page
