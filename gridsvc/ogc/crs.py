"""Coordinate reference systems of OGC API – Features Part 2: which `crs` / `bbox-crs` URIs
gridsvc answers in, and how a geometry column (stored in EPSG:4326, lon/lat) is written in each.

Axis order follows each CRS's definition, as Part 2 requires: CRS84 is lon/lat, while EPSG:4326
and EPSG:4490 (CGCS2000) are lat/lon, so their coordinates are written northing first.
EPSG:4490 is treated as WGS84 (DESIGN §4: the difference is centimetres), so only the axes turn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyproj
from sqlalchemy import func

from gridsvc.errors import BadQueryParameter
from gridsvc.repositories.geojson import COORD_DECIMALS


@dataclass(frozen=True)
class OgcCrs:
    """One supported CRS: its URI, the SRID written, and whether its first axis is latitude."""

    uri: str
    srid: int
    lat_first: bool
    #: Decimal places of the coordinates (degrees: 6 ≈ 0.1 m; metres: 2 = 1 cm).
    decimals: int
    label: str

    def geometry_json(self, column: Any) -> Any:
        """SQL: the (EPSG:4326) column as GeoJSON geometry text in this CRS and axis order."""
        geom = column
        if self.srid == 3857:
            geom = func.ST_Transform(geom, 3857)
        if self.lat_first:
            geom = func.ST_FlipCoordinates(geom)
        return func.ST_AsGeoJSON(geom, self.decimals)


CRS84 = OgcCrs(
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84", 4326, False, COORD_DECIMALS, "WGS 84 经度/纬度"
)
#: Every CRS gridsvc can answer in, CRS84 (the default) first.
SUPPORTED: tuple[OgcCrs, ...] = (
    CRS84,
    OgcCrs("http://www.opengis.net/def/crs/EPSG/0/4326", 4326, True, COORD_DECIMALS, "WGS 84"),
    OgcCrs(
        "http://www.opengis.net/def/crs/EPSG/0/4490",
        4490,
        True,
        COORD_DECIMALS,
        "CGCS2000（2000国家大地坐标系）",
    ),
    OgcCrs("http://www.opengis.net/def/crs/EPSG/0/3857", 3857, False, 2, "Web Mercator"),
)
_BY_URI = {c.uri: c for c in SUPPORTED}
#: Short spellings clients send instead of the URI.
_ALIASES = {
    "CRS84": CRS84.uri,
    "OGC:CRS84": CRS84.uri,
    "urn:ogc:def:crs:OGC:1.3:CRS84": CRS84.uri,
    **{f"EPSG:{c.srid}": c.uri for c in SUPPORTED if c is not CRS84},
    **{f"urn:ogc:def:crs:EPSG::{c.srid}": c.uri for c in SUPPORTED if c is not CRS84},
}


def parse_crs(value: str | None, parameter: str = "crs") -> OgcCrs:
    """The CRS a `crs` or `bbox-crs` parameter names (CRS84 when absent); 400 otherwise."""
    if value is None or value == "":
        return CRS84
    uri = _ALIASES.get(value.strip(), value.strip())
    if uri not in _BY_URI:
        raise BadQueryParameter(
            f"{parameter}={value!r} 不受支持；可用：{'、'.join(c.uri for c in SUPPORTED)}"
        )
    return _BY_URI[uri]


@lru_cache(maxsize=8)
def _to_wgs84(srid: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(srid, 4326, always_xy=True)


def bbox_to_lonlat(values: list[float], crs: OgcCrs) -> tuple[float, float, float, float]:
    """A bbox given in `crs` (in its axis order) as (min lon, min lat, max lon, max lat)."""
    if len(values) == 6:  # 3-D box: drop the heights
        values = [values[0], values[1], values[3], values[4]]
    a, b, c, d = values
    if crs.lat_first:
        a, b, c, d = b, a, d, c
    if crs.srid == 3857:
        a, b, c, d = _to_wgs84(3857).transform_bounds(a, b, c, d)
        if not all(math.isfinite(v) and abs(v) <= 180 for v in (a, b, c, d)):
            raise BadQueryParameter("bbox 超出 EPSG:3857 的范围")
    if crs.srid in (4326, 4490) and not (-180 <= a <= 180 and -180 <= c <= 180):
        raise BadQueryParameter("bbox 超出经度范围（EPSG:4326/4490 的 bbox 须先写纬度）")
    if crs.srid in (4326, 4490) and not (-90 <= b <= 90 and -90 <= d <= 90):
        raise BadQueryParameter("bbox 超出纬度范围（CRS84 的 bbox 须先写经度）")
    return a, b, c, d
