"""Basemaps: none (the default, offline), 天地图 (Tianditu), 高德 (AMap, GCJ-02), a local tile folder.

A :class:`Basemap` lists its tile layers (each with its attribution) and the datum its tiles
are drawn in. Our data is WGS84; on a GCJ-02 basemap (AMap, or a local folder cut from it)
:meth:`Basemap.to_display` shifts our layers to GCJ-02 for display only, with
``geodata.china`` (points outside China are never shifted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import folium

from geodata.china import Datum, convert_geometries, parse_datum

__all__ = [
    "AMAP_ATTRIBUTION",
    "TIANDITU_ATTRIBUTION",
    "Basemap",
    "TileSpec",
    "amap",
    "local_tiles",
    "none",
    "tianditu",
]

TIANDITU_ATTRIBUTION = "© 天地图 (国家地理信息公共服务平台)"
AMAP_ATTRIBUTION = "© 高德地图 AutoNavi"
_TIANDITU_URL = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}"
)
_AMAP_URL = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"


@dataclass(frozen=True)
class TileSpec:
    """One tile layer: URL template, attribution, and how Leaflet requests it."""

    url: str
    attribution: str
    name: str
    subdomains: str = "abc"
    max_zoom: int = 19
    overlay: bool = False  # an annotation layer drawn over the base (天地图 cva)


@dataclass(frozen=True)
class Basemap:
    """A basemap choice: tile layers (possibly none) and the datum of their coordinates."""

    key: str
    label: str
    tiles: tuple[TileSpec, ...] = ()
    datum: Datum = Datum.WGS84
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def online(self) -> bool:
        """Whether the tiles come from the internet (never true for ``none``)."""
        return any(t.url.lower().startswith(("http://", "https://", "//")) for t in self.tiles)

    def to_display(self, gdf: Any) -> Any:
        """Our WGS84 layer in the basemap's datum (GCJ-02 for AMap; unchanged otherwise)."""
        if self.datum in (Datum.WGS84, Datum.CGCS2000) or gdf is None or len(gdf) == 0:
            return gdf
        out = gdf.copy()
        out[out.geometry.name] = convert_geometries(out.geometry, Datum.WGS84, self.datum)
        return out

    def add_to(self, m: folium.Map) -> None:
        """Add the tile layers to a folium map (nothing for ``none``)."""
        for spec in self.tiles:
            folium.TileLayer(
                tiles=spec.url,
                attr=spec.attribution,
                name=spec.name,
                subdomains=spec.subdomains,
                max_zoom=spec.max_zoom,
                overlay=spec.overlay,
                control=not spec.overlay,
            ).add_to(m)


def none() -> Basemap:
    """No tiles: our own buildings and roads give the context (works offline; the default)."""
    return Basemap("none", "无底图")


def tianditu(key: str, *, url_template: str | None = None) -> Basemap:
    """天地图 vector map (vec) with its Chinese annotation (cva); CGCS2000 ≈ WGS84, no shift.

    ``url_template`` points at an intranet proxy of Tianditu: Leaflet's ``{s}``, ``{z}``,
    ``{x}``, ``{y}`` plus ``{layer}`` (vec, cva) and ``{key}``, which are filled in here.
    """
    if not key:
        raise ValueError("a Tianditu key (tk) is required")
    template = url_template or _TIANDITU_URL

    def url(layer: str) -> str:
        return template.replace("{layer}", layer).replace("{key}", quote(key, safe=""))

    layers = (
        TileSpec(url("vec"), TIANDITU_ATTRIBUTION, "天地图", "01234567", 18),
        TileSpec(url("cva"), TIANDITU_ATTRIBUTION, "天地图注记", "01234567", 18, overlay=True),
    )
    return Basemap("tianditu", "天地图", layers)


def amap(*, url_template: str | None = None) -> Basemap:
    """高德 street map; its tiles are GCJ-02, so our layers are shifted to match."""
    spec = TileSpec(url_template or _AMAP_URL, AMAP_ATTRIBUTION, "高德地图", "1234", 18)
    return Basemap("amap", "高德地图", (spec,), Datum.GCJ02)


def local_tiles(
    url_template: str,
    *,
    attribution: str,
    datum: str | Datum = Datum.WGS84,
    name: str = "本地瓦片",
    max_zoom: int = 19,
) -> Basemap:
    """A tile folder served locally (``/tiles/{z}/{x}/{y}.png``); give its attribution and datum."""
    if not all(part in url_template for part in ("{z}", "{x}", "{y}")):
        raise ValueError("the tile URL template needs {z}, {x} and {y}")
    if not attribution:
        raise ValueError("a local tile folder needs its attribution (where the tiles come from)")
    spec = TileSpec(url_template, attribution, name, "abc", max_zoom)
    return Basemap("local", name, (spec,), parse_datum(datum))
