"""The datums a user's coordinates may be in, and their names; the shifts between them are in
``geodata.china``. No numpy here: the CLI's options name a datum before anything is shifted."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from geodata.errors import GeodataError

__all__ = ["Datum", "parse_datum"]


class Datum(StrEnum):
    """A horizontal datum a user's coordinates may be in."""

    WGS84 = "wgs84"
    CGCS2000 = "cgcs2000"
    GCJ02 = "gcj02"
    BD09 = "bd09"


_DATUM_ALIASES: dict[str, Datum] = {
    "wgs84": Datum.WGS84,
    "wgs1984": Datum.WGS84,
    "epsg:4326": Datum.WGS84,
    "4326": Datum.WGS84,
    "crs84": Datum.WGS84,
    "ogc:crs84": Datum.WGS84,
    "cgcs2000": Datum.CGCS2000,
    "epsg:4490": Datum.CGCS2000,
    "4490": Datum.CGCS2000,
    "china2000": Datum.CGCS2000,
    "gcj02": Datum.GCJ02,
    "gcj": Datum.GCJ02,
    "amap": Datum.GCJ02,
    "gaode": Datum.GCJ02,
    "tencent": Datum.GCJ02,
    "高德": Datum.GCJ02,
    "腾讯": Datum.GCJ02,
    "火星坐标": Datum.GCJ02,
    "bd09": Datum.BD09,
    "bd09ll": Datum.BD09,
    "baidu": Datum.BD09,
    "百度": Datum.BD09,
}


def parse_datum(text: str | Datum) -> Datum:
    """Read a datum name such as "WGS84", "EPSG:4490", "GCJ-02" or "bd09" (case-insensitive)."""
    if isinstance(text, Datum):
        return text
    if not isinstance(text, str):
        raise GeodataError(f"datum must be text such as 'wgs84' or 'gcj02', not {text!r}")
    key = re.sub(r"[\s_\-]", "", unicodedata.normalize("NFKC", text).strip().lower())
    if key in _DATUM_ALIASES:
        return _DATUM_ALIASES[key]
    if key == "bd09mc":
        raise GeodataError(
            "datum 'BD-09MC' (Baidu Mercator, in metres) is not supported; "
            "export BD-09 longitude/latitude (bd09ll) instead"
        )
    raise GeodataError(
        f"unknown datum {text!r}; expected one of WGS84 (EPSG:4326), CGCS2000 (EPSG:4490), "
        "GCJ-02 (AMap/Tencent) or BD-09 (Baidu)"
    )
