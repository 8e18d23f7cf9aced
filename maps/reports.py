"""三图 of a community, as printable pages: 区域平面图 and 楼房平面图.

(The third, 责任网络图, is a chart of people, in :mod:`maps.charts`.) Both return a matplotlib
Figure laid out by :func:`maps.static.draw_page`; export with :func:`maps.static.to_png` or
:func:`maps.static.to_pdf`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import geopandas as gpd
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from geodata.crs import metric_crs
from maps.static import (
    LegendEntry,
    Orientation,
    Page,
    Paper,
    draw_page,
    in_metric,
    label_fontsize,
    page_scale,
)
from maps.styles import OSM_ATTRIBUTION, ROAD_COLOUR, short_codes

__all__ = ["CELL_PALETTE", "area_plan", "building_plan"]

#: Distinct light fills for neighbouring cells (ColorBrewer Set3 + Pastel1), cycled.
CELL_PALETTE = (
    "#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
    "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f", "#fbb4ae", "#b3cde3", "#decbe4", "#fed9a6",
)  # fmt: skip
CAPTAIN_COLOUR = "#9ecae1"
NO_CAPTAIN_COLOUR = "#fdae6b"
MAX_LEGEND_CELLS = 24


def _outline_name(area: gpd.GeoDataFrame, fallback: str) -> str:
    if "name" in area.columns and len(area) and isinstance(area["name"].iloc[0], str):
        return area["name"].iloc[0]
    return fallback


def _cell_colours(cells: gpd.GeoDataFrame) -> list[str]:
    """Cycle the palette over the cells in code order, so a cell keeps its colour across pages."""
    order = (
        cells["code"].astype(str).rank(method="first").astype(int) - 1
        if "code" in cells.columns
        else range(len(cells))
    )
    return [CELL_PALETTE[i % len(CELL_PALETTE)] for i in order]


def area_plan(
    area: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame,
    *,
    buildings: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    paper: Paper = "A4",
    orientation: Orientation = "landscape",
    footer: str | None = None,
    attribution: str | None = OSM_ATTRIBUTION,
    on: date | None = None,
) -> Figure:
    """区域平面图: the community outline with its cells (name or code and 格长 on each)."""
    if cells is None or len(cells) == 0:
        raise ValueError("no cells to draw")
    crs = metric_crs(area if area is not None and len(area) else cells)
    area_m = in_metric(area, crs)
    cells_m = in_metric(cells, crs)
    assert cells_m is not None
    buildings_m = in_metric(buildings, crs)
    roads_m = in_metric(roads, crs)
    colours = _cell_colours(cells_m)
    codes = (
        short_codes(cells_m["code"].tolist()) if "code" in cells_m.columns else [""] * len(cells_m)
    )
    names = cells_m["name"].tolist() if "name" in cells_m.columns else codes
    leaders = cells_m["leader"].tolist() if "leader" in cells_m.columns else [None] * len(cells_m)

    legend: list[LegendEntry] = []
    if len(cells_m) <= MAX_LEGEND_CELLS:
        for colour, code, name, leader in sorted(
            zip(colours, codes, names, leaders, strict=True), key=lambda t: t[1]
        ):
            text = f"{code} {name}" if name != code else code
            if isinstance(leader, str) and leader:
                text += f"（格长 {leader}）"
            legend.append(LegendEntry(text, colour))
    else:
        legend.append(LegendEntry(f"网格（{len(cells_m)} 个）", CELL_PALETTE[0]))
    if buildings_m is not None:
        legend.append(LegendEntry("楼栋", "#969696"))
    if roads_m is not None:
        legend.append(LegendEntry("道路", ROAD_COLOUR, "line"))
    legend.append(LegendEntry("社区边界", "#000000", "line"))

    def draw(ax: Axes) -> None:
        cells_m.plot(
            ax=ax, aspect=None, color=colours, edgecolor="#525252", linewidth=0.9, zorder=1
        )
        if roads_m is not None:
            roads_m.plot(ax=ax, aspect=None, color=ROAD_COLOUR, linewidth=0.6, zorder=2)
        if buildings_m is not None:
            buildings_m.plot(ax=ax, aspect=None, color="#969696", linewidth=0, zorder=3)
        if area_m is not None:
            area_m.boundary.plot(ax=ax, aspect=None, color="#000000", linewidth=2.4, zorder=4)
        size = label_fontsize(len(cells_m), page_scale(ax)) * 1.1
        for pt, name, leader in zip(
            cells_m.geometry.representative_point(), names, leaders, strict=True
        ):
            text = str(name)
            if isinstance(leader, str) and leader:
                text += f"\n格长 {leader}"
            ax.text(pt.x, pt.y, text, ha="center", va="center", fontsize=size, zorder=6, weight="bold",
                    bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})  # fmt: skip

    name = _outline_name(area, "社区") if area is not None else "社区"
    page = Page(
        title or f"{name}区域平面图",
        f"网格 {len(cells_m)} 个",
        paper,
        orientation,
        on,
        footer,
        attribution,
        legend=legend,
    )
    extent = (area_m if area_m is not None else cells_m).total_bounds
    return draw_page(page, extent, draw)


def building_plan(
    area: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    cells: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | None = None,
    number_column: str = "name",
    captain_column: str = "captain",
    title: str | None = None,
    paper: Paper = "A4",
    orientation: Orientation = "landscape",
    footer: str | None = None,
    attribution: str | None = OSM_ATTRIBUTION,
    on: date | None = None,
) -> Figure:
    """楼房平面图: every building with its number and 楼栋长; buildings lacking one stand out."""
    if buildings is None or len(buildings) == 0:
        raise ValueError("no buildings to draw")
    crs = metric_crs(area if area is not None and len(area) else buildings)
    area_m = in_metric(area, crs)
    buildings_m = in_metric(buildings, crs)
    assert buildings_m is not None
    cells_m = in_metric(cells, crs)
    roads_m = in_metric(roads, crs)
    numbers = (
        buildings_m[number_column].tolist()
        if number_column in buildings_m.columns
        else [None] * len(buildings_m)
    )
    has_captains = captain_column in buildings_m.columns
    captains = buildings_m[captain_column].tolist() if has_captains else [None] * len(buildings_m)
    staffed = [isinstance(c, str) and c != "" for c in captains]
    colours = [CAPTAIN_COLOUR if s or not has_captains else NO_CAPTAIN_COLOUR for s in staffed]

    legend: list[LegendEntry] = []
    if has_captains:
        legend.append(LegendEntry(f"楼栋（已有楼栋长，{sum(staffed)} 栋）", CAPTAIN_COLOUR))
        legend.append(
            LegendEntry(
                f"楼栋（未落实楼栋长，{len(staffed) - sum(staffed)} 栋）", NO_CAPTAIN_COLOUR
            )
        )
    else:
        legend.append(LegendEntry(f"楼栋（{len(staffed)} 栋）", CAPTAIN_COLOUR))
    if cells_m is not None:
        legend.append(LegendEntry("网格边界", "#c51b7d", "line"))
    if roads_m is not None:
        legend.append(LegendEntry("道路", ROAD_COLOUR, "line"))
    if area_m is not None:
        legend.append(LegendEntry("社区边界", "#000000", "line"))

    def draw(ax: Axes) -> None:
        if roads_m is not None:
            roads_m.plot(ax=ax, aspect=None, color=ROAD_COLOUR, linewidth=0.6, zorder=1)
        buildings_m.plot(
            ax=ax, aspect=None, color=colours, edgecolor="#525252", linewidth=0.4, zorder=2
        )
        if cells_m is not None:
            cells_m.boundary.plot(
                ax=ax, aspect=None, color="#c51b7d", linewidth=1.2, linestyle="--", zorder=3
            )
            if "code" in cells_m.columns:
                for pt, code in zip(
                    cells_m.geometry.representative_point(),
                    short_codes(cells_m["code"].tolist()),
                    strict=True,
                ):
                    ax.text(
                        pt.x,
                        pt.y,
                        f"网格 {code}",
                        ha="center",
                        va="center",
                        fontsize=9,
                        color="#c51b7d",
                        alpha=0.6,
                        zorder=3,
                    )
        if area_m is not None:
            area_m.boundary.plot(ax=ax, aspect=None, color="#000000", linewidth=2.4, zorder=4)
        size = label_fontsize(len(buildings_m), page_scale(ax))
        for pt, number, captain in zip(
            buildings_m.geometry.representative_point(), numbers, captains, strict=True
        ):
            text = "" if _missing(number) else str(number)
            if isinstance(captain, str) and captain:
                text += f"\n{captain}"
            if text:
                ax.text(
                    pt.x,
                    pt.y,
                    text,
                    ha="center",
                    va="center",
                    fontsize=size,
                    zorder=6,
                    linespacing=1.0,
                )

    name = _outline_name(area, "社区") if area is not None else "社区"
    page = Page(
        title or f"{name}楼房平面图",
        f"楼栋 {len(buildings_m)} 栋",
        paper,
        orientation,
        on,
        footer,
        attribution,
        legend=legend,
    )
    extent = (area_m if area_m is not None else buildings_m).total_bounds
    return draw_page(page, extent, draw)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or value == ""
