"""Static, print-ready maps (matplotlib): coverage maps as PNG and PDF with all the furniture.

A page (A4 or A3, portrait or landscape) has a title, a date and subtitle line, the map drawn
in a metric CRS (the local UTM zone, so the scale bar is true metres), a legend panel, a scale
bar, a north arrow, the data attribution and an optional footer line (审图号 / "内部使用").
Chinese text uses a Noto CJK font found through matplotlib's font manager (Debian
``fonts-noto-cjk``); :func:`cjk_font` fails with a clear message when none is installed.
Figures are built without pyplot (no global state), so the service can render concurrently.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import geopandas as gpd
import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrow, Patch, Rectangle

from geodata.crs import metric_crs
from maps.styles import BUILDING_NO_DATA, OSM_ATTRIBUTION, ROAD_COLOUR, classify, short_codes

__all__ = [
    "CJK_FAMILIES",
    "PAPER_MM",
    "FontMissingError",
    "LegendEntry",
    "Page",
    "cjk_font",
    "coverage_map",
    "draw_page",
    "in_metric",
    "label_fontsize",
    "page_size_inches",
    "to_pdf",
    "to_png",
]

#: Paper sizes in millimetres (portrait: width, height).
PAPER_MM: dict[str, tuple[float, float]] = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}
#: CJK families we look for, best first (Simplified Chinese faces of Noto CJK).
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Serif CJK SC", "Noto Sans CJK JP", "Source Han Sans SC")
Paper = Literal["A4", "A3"]
Orientation = Literal["portrait", "landscape"]
_MM = 1 / 25.4


class FontMissingError(RuntimeError):
    """No CJK font is installed, so Chinese text would render as empty boxes."""


def _today_in_china() -> date:
    """The printed date when the caller gives none (gridsvc always passes its local date)."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def cjk_font() -> str:
    """The family name of an installed Noto CJK font (Simplified Chinese preferred)."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in installed:
            return family
    raise FontMissingError(
        "no CJK font found (looked for " + ", ".join(CJK_FAMILIES) + "): install Debian's "
        "fonts-noto-cjk (apt-get install fonts-noto-cjk; scripts/dev setup does it), then "
        "remove matplotlib's font cache (~/.cache/matplotlib) so it is found"
    )


def page_size_inches(
    paper: Paper = "A4", orientation: Orientation = "landscape"
) -> tuple[float, float]:
    """Width and height of the page in inches."""
    if paper not in PAPER_MM:
        raise ValueError(f"paper must be one of {', '.join(PAPER_MM)}")
    if orientation not in ("portrait", "landscape"):
        raise ValueError("orientation must be 'portrait' or 'landscape'")
    w, h = PAPER_MM[paper]
    if orientation == "landscape":
        w, h = h, w
    return w * _MM, h * _MM


@contextmanager
def _cjk_rc() -> Iterator[str]:
    family = cjk_font()
    with mpl.rc_context(
        {
            "font.family": [family, "DejaVu Sans"],
            "axes.unicode_minus": False,
            "pdf.fonttype": 3,  # Noto CJK is CFF-flavoured OpenType: embed as Type 3 subsets
            "svg.fonttype": "path",
            # Names and codes are data: "$…$" in one is text, never mathtext (which fails or
            # renders something else).
            "text.parse_math": False,
        }
    ):
        yield family


@dataclass(frozen=True)
class LegendEntry:
    """One legend line: a filled box, a line or a dot in a colour, and its label."""

    label: str
    colour: str
    kind: Literal["box", "line", "dot"] = "box"
    edge: str = "#555555"


@dataclass
class Page:
    """Page furniture of a static map."""

    title: str
    subtitle: str | None = None
    paper: Paper = "A4"
    orientation: Orientation = "landscape"
    on: date | None = None  # the date printed (default: today)
    footer: str | None = None  # e.g. "审图号：宁S(2026)001号" or "内部使用"
    attribution: str | None = OSM_ATTRIBUTION
    legend_title: str = "图例"
    legend: list[LegendEntry] = field(default_factory=list)


def _fit_extent(
    extent: Sequence[float], ratio: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits holding ``extent`` (with a margin) whose height/width is ``ratio``."""
    minx, miny, maxx, maxy = extent
    pad = max(maxx - minx, maxy - miny) * 0.04 + 10
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    w, h = maxx - minx, maxy - miny
    if h / w < ratio:
        grow = (w * ratio - h) / 2
        miny, maxy = miny - grow, maxy + grow
    else:
        grow = (h / ratio - w) / 2
        minx, maxx = minx - grow, maxx + grow
    return (minx, maxx), (miny, maxy)


def _nice_length(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k metres) near a fifth of the map width."""
    target = max(span_m / 5.0, 1.0)
    exp = 10 ** math.floor(math.log10(target))
    for step in (5, 2, 1):
        if step * exp <= target:
            return float(step * exp)
    return float(exp)


def _distance_label(metres: float) -> str:
    if metres >= 1000:
        km = metres / 1000
        return f"{km:g} 公里"
    return f"{metres:g} 米"


def _scale_bar(ax: Axes, fig: Figure, fontsize: float) -> None:
    """Alternating black and white bar in true metres, with the numeric scale 1:n."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length(x1 - x0)
    height = (y1 - y0) * 0.012
    left, bottom = x0 + (x1 - x0) * 0.04, y0 + (y1 - y0) * 0.05
    half = length / 2
    for i, colour in enumerate(("#000000", "#ffffff", "#000000", "#ffffff")):
        ax.add_patch(
            Rectangle(
                (left + i * half / 2, bottom),
                half / 2,
                height,
                facecolor=colour,
                edgecolor="#000000",
                lw=0.6,
                zorder=20,
            )
        )
    for x, text in ((0, "0"), (length, _distance_label(length))):
        ax.text(
            left + x,
            bottom + height * 1.6,
            text,
            ha="center",
            va="bottom",
            fontsize=fontsize,
            zorder=20,
        )
    width_in = ax.get_position().width * fig.get_figwidth()
    scale = (x1 - x0) / (width_in * 0.0254)
    ax.text(
        left,
        bottom - height * 1.2,
        f"比例尺 1:{_round_scale(scale):,}",
        ha="left",
        va="top",
        fontsize=fontsize,
        zorder=20,
    )


def _round_scale(scale: float) -> int:
    exp = 10 ** max(math.floor(math.log10(scale)) - 1, 0)
    return int(round(scale / exp) * exp)


def _north_arrow(ax: Axes, fontsize: float) -> None:
    """An arrow pointing up (grid north of the UTM zone, within a degree of true north here)."""
    ax.add_patch(
        Rectangle(
            (0.92, 0.78),
            0.06,
            0.18,
            transform=ax.transAxes,
            facecolor="white",
            edgecolor="none",
            alpha=0.8,
            zorder=19,
        )
    )
    ax.add_patch(
        FancyArrow(
            0.95, 0.86, 0, 0.08, width=0.012, head_width=0.035, head_length=0.04, length_includes_head=True,
            transform=ax.transAxes, facecolor="#000000", edgecolor="#000000", zorder=20,
        )
    )  # fmt: skip
    ax.text(
        0.95,
        0.84,
        "北",
        transform=ax.transAxes,
        ha="center",
        va="top",
        fontsize=fontsize * 1.3,
        weight="bold",
        zorder=20,
    )


def _legend_handles(entries: Sequence[LegendEntry]) -> list[Any]:
    handles: list[Any] = []
    for e in entries:
        if e.kind == "line":
            handles.append(Line2D([], [], color=e.colour, lw=2, label=e.label))
        elif e.kind == "dot":
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    ls="",
                    markerfacecolor=e.colour,
                    markeredgecolor=e.edge,
                    markersize=7,
                    label=e.label,
                )
            )
        else:
            handles.append(Patch(facecolor=e.colour, edgecolor=e.edge, label=e.label))
    return handles


def draw_page(page: Page, extent: Sequence[float], draw: Any) -> Figure:
    """A page with furniture around a map; ``draw(ax)`` draws the layers in the metric CRS.

    ``extent`` is (minx, miny, maxx, maxy) in the same metric CRS.
    """
    with _cjk_rc():
        width, height = page_size_inches(page.paper, page.orientation)
        fig = Figure(figsize=(width, height))
        FigureCanvasAgg(fig)
        base = min(width, height) / (210 * _MM)  # 1 for A4, 1.41 for A3
        small = 7.5 * base
        landscape = page.orientation == "landscape"
        margin_x, margin_y = 12 * _MM / width, 12 * _MM / height
        top = 1 - margin_y - 16 * _MM * base / height
        bottom = margin_y + 8 * _MM / height
        if landscape:
            map_box: tuple[float, float, float, float] = (
                margin_x,
                bottom,
                1 - 2 * margin_x - 0.2,
                top - bottom,
            )
            legend_box: tuple[float, float, float, float] = (
                1 - margin_x - 0.19,
                bottom,
                0.19,
                top - bottom,
            )
        else:
            legend_h = 0.16
            map_box = (margin_x, bottom + legend_h, 1 - 2 * margin_x, top - bottom - legend_h)
            legend_box = (margin_x, bottom, 1 - 2 * margin_x, legend_h - 0.01)
        fig.text(
            0.5, 1 - margin_y, page.title, ha="center", va="top", fontsize=18 * base, weight="bold"
        )
        when = (page.on or _today_in_china()).strftime("%Y年%m月%d日")
        line = f"{page.subtitle}    {when}" if page.subtitle else when
        fig.text(
            0.5,
            1 - margin_y - 9.5 * _MM * base / height,
            line,
            ha="center",
            va="top",
            fontsize=10 * base,
            color="#333333",
        )

        ax = fig.add_axes(map_box)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_linewidth(1.2)
        xlim, ylim = _fit_extent(extent, map_box[3] * height / (map_box[2] * width))
        draw(ax)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal", adjustable="box")
        ax.apply_aspect()
        _scale_bar(ax, fig, small)
        _north_arrow(ax, small * 1.2)
        if page.attribution:
            ax.text(0.995, 0.005, page.attribution, transform=ax.transAxes, ha="right", va="bottom", fontsize=small * 0.9,
                    color="#333333", bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1.5}, zorder=20)  # fmt: skip

        lax = fig.add_axes(legend_box)
        lax.set_axis_off()
        if page.legend:
            ncol = 1 if landscape else max(1, min(4, math.ceil(len(page.legend) / 4)))
            lax.legend(
                handles=_legend_handles(page.legend),
                title=page.legend_title,
                loc="upper left" if landscape else "upper center",
                frameon=True,
                fontsize=small * 1.15,
                title_fontsize=small * 1.4,
                ncol=ncol,
                borderaxespad=0,
            )
        if page.footer:
            fig.text(
                margin_x, margin_y * 0.8, page.footer, ha="left", va="bottom", fontsize=small * 1.1
            )
        fig.text(
            1 - margin_x,
            margin_y * 0.8,
            f"制图日期：{when}",
            ha="right",
            va="bottom",
            fontsize=small,
            color="#555555",
        )
    return fig


def in_metric(gdf: gpd.GeoDataFrame | None, crs: Any) -> gpd.GeoDataFrame | None:
    """The non-empty features reprojected to ``crs`` (None for a missing or empty layer)."""
    if gdf is None or len(gdf) == 0:
        return None
    out = gdf if gdf.crs is not None else gdf.set_crs(4326)
    out = out[out.geometry.notna() & ~out.geometry.is_empty]
    return out.to_crs(crs)


def page_scale(ax: Axes) -> float:
    """The short side of the axes' page relative to A4's (1.0 on A4, 1.41 on A3)."""
    figure = ax.get_figure(root=True)
    if not isinstance(figure, Figure):
        return 1.0
    return float(min(figure.get_size_inches())) / (210 * _MM)


def label_fontsize(count: int, base: float) -> float:
    """Label size shrinking with the number of labels on the page."""
    return float(np.clip(12.5 - 1.2 * math.log2(max(count, 1)), 5, 10) * base)


def coverage_map(
    cells: gpd.GeoDataFrame,
    *,
    title: str,
    metric: str | None = "households",
    metric_label: str | None = None,
    area: gpd.GeoDataFrame | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | None = None,
    subtitle: str | None = None,
    paper: Paper = "A4",
    orientation: Orientation = "landscape",
    footer: str | None = None,
    attribution: str | None = OSM_ATTRIBUTION,
    on: date | None = None,
    value_format: str = "{:.0f}",
) -> Figure:
    """A coverage map of a cell, community or street: cells coloured by ``metric`` (or plain).

    ``area`` (the community or street outline) is drawn as a thick border; buildings and
    roads as context; each cell is labelled with its short code and 格长 (``leader``).
    """
    if cells is None or len(cells) == 0:
        raise ValueError("no cells to draw")
    crs = metric_crs(cells if cells.crs is not None else cells.set_crs(4326))
    cells_m = in_metric(cells, crs)
    assert cells_m is not None
    area_m = in_metric(area, crs)
    buildings_m = in_metric(buildings, crs)
    roads_m = in_metric(roads, crs)
    extent = (area_m if area_m is not None else cells_m).total_bounds
    legend: list[LegendEntry] = []
    label = metric_label or metric or ""
    if metric is not None:
        if metric not in cells_m.columns:
            raise ValueError(f"metric column {metric!r} is not among the cells' columns")
        values = pd.to_numeric(cells_m[metric], errors="coerce").to_numpy(dtype=float)
        classes = classify(values, 5)
        colours = classes.colour_of(values)
        legend += [
            LegendEntry(f"{label} {t}", c)
            for c, t in zip(classes.colours, classes.labels(value_format), strict=True)
        ]
        if np.isnan(values).any():
            legend.append(LegendEntry(f"{label} 无数据", BUILDING_NO_DATA))
    else:
        colours = ["#fde0dd"] * len(cells_m)
        legend.append(LegendEntry("网格", colours[0]))
    if buildings_m is not None:
        legend.append(LegendEntry("楼栋", "#bdbdbd"))
    if roads_m is not None:
        legend.append(LegendEntry("道路", ROAD_COLOUR, "line"))
    legend.append(LegendEntry("网格边界", "#4d4d4d", "line"))
    if area_m is not None:
        legend.append(LegendEntry("辖区边界", "#000000", "line"))

    def draw(ax: Axes) -> None:
        cells_m.plot(ax=ax, aspect=None, color=colours, edgecolor="none", zorder=1)
        if roads_m is not None:
            roads_m.plot(ax=ax, aspect=None, color=ROAD_COLOUR, linewidth=0.6, zorder=2)
        if buildings_m is not None:
            buildings_m.plot(
                ax=ax, aspect=None, color="#bdbdbd", edgecolor="#8c8c8c", linewidth=0.2, zorder=3
            )
        cells_m.boundary.plot(ax=ax, aspect=None, color="#4d4d4d", linewidth=0.9, zorder=4)
        if area_m is not None:
            area_m.boundary.plot(ax=ax, aspect=None, color="#000000", linewidth=2.2, zorder=5)
        codes = (
            short_codes(cells_m["code"].tolist())
            if "code" in cells_m.columns
            else [""] * len(cells_m)
        )
        leaders = (
            cells_m["leader"].tolist() if "leader" in cells_m.columns else [None] * len(cells_m)
        )
        size = label_fontsize(len(cells_m), page_scale(ax))
        for pt, code, leader in zip(
            cells_m.geometry.representative_point(), codes, leaders, strict=True
        ):
            text = code + (f"\n{leader}" if isinstance(leader, str) and leader else "")
            if text:
                ax.text(pt.x, pt.y, text, ha="center", va="center", fontsize=size, zorder=6,
                        bbox={"facecolor": "white", "alpha": 0.6, "edgecolor": "none", "pad": 0.8})  # fmt: skip

    page = Page(title, subtitle, paper, orientation, on, footer, attribution, legend=legend)
    return draw_page(page, extent, draw)


def to_png(fig: Figure, dpi: int = 150) -> bytes:
    """The page as PNG bytes (size = paper size × dpi)."""
    buf = io.BytesIO()
    with _cjk_rc():
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def to_pdf(fig: Figure, *, title: str | None = None) -> bytes:
    """The page as a one-page vector PDF with the CJK font embedded (subset)."""
    buf = io.BytesIO()
    metadata = {"Creator": "gridsvc maps", "Title": title} if title else {"Creator": "gridsvc maps"}
    with _cjk_rc():
        fig.savefig(buf, format="pdf", facecolor="white", metadata=metadata)
    return buf.getvalue()
