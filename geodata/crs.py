"""Coordinate reference systems: storage in EPSG:4326, measurement in the local UTM zone."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from pyproj.exceptions import CRSError

from geodata.errors import GeodataError

__all__ = ["STORAGE_CRS", "area_m2", "crs_label", "metric_crs", "normalize_crs", "to_metric"]

logger = logging.getLogger(__name__)

STORAGE_CRS = pyproj.CRS.from_epsg(4326)


@lru_cache(maxsize=128)
def _epsg(code: int) -> pyproj.CRS:
    return pyproj.CRS.from_epsg(code)


def _lonlat_bounds(obj: Any) -> tuple[float, float, float, float]:
    """Bounds in degrees of a GeoDataFrame/GeoSeries (any CRS; none means 4326) or geometries."""
    if isinstance(obj, gpd.GeoDataFrame | gpd.GeoSeries):
        bounds = tuple(float(v) for v in obj.total_bounds)
        crs = obj.crs
        if crs is not None and not crs.is_geographic and np.all(np.isfinite(bounds)):
            transformer = pyproj.Transformer.from_crs(crs, STORAGE_CRS, always_xy=True)
            bounds = transformer.transform_bounds(bounds[0], bounds[1], bounds[2], bounds[3])
    else:
        bounds = tuple(float(v) for v in shapely.total_bounds(np.asarray(obj, dtype=object)))
    return bounds  # type: ignore[return-value]


def metric_crs(obj: Any) -> pyproj.CRS:
    """The WGS 84 / UTM zone holding the centre of the data's bounds (data without CRS: 4326).

    This is the zone pyproj's ``estimate_utm_crs`` picks for data in China, computed directly
    from the longitude (zone = ⌊(lon + 180) / 6⌋ + 1) instead of a 70 ms database query.
    """
    minx, miny, maxx, maxy = _lonlat_bounds(obj)
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        raise GeodataError("cannot choose a metric CRS: the data has no non-empty geometry")
    lon = (minx + maxx) / 2.0
    lat = (miny + maxy) / 2.0
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise GeodataError(f"cannot choose a metric CRS: centre ({lon}, {lat}) is not lon/lat")
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return _epsg((32600 if lat >= 0 else 32700) + zone)


def _with_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> Any:
    return gdf if gdf.crs is not None else gdf.set_crs(STORAGE_CRS)


def to_metric(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> Any:
    """Reproject to the local UTM zone (data without a CRS is taken as EPSG:4326)."""
    gdf = _with_crs(gdf)
    return gdf.to_crs(metric_crs(gdf))


def _is_metric(crs: pyproj.CRS | None) -> bool:
    if crs is None or not crs.is_projected:
        return False
    return all(axis.unit_name in ("metre", "meter") for axis in crs.axis_info[:2])


def area_m2(geoms: gpd.GeoSeries | gpd.GeoDataFrame) -> np.ndarray:
    """Areas in m², measured in the local UTM zone (or the data's own metric CRS); missing → 0."""
    series = geoms.geometry if isinstance(geoms, gpd.GeoDataFrame) else geoms
    if not isinstance(series, gpd.GeoSeries):
        series = gpd.GeoSeries(series, crs=STORAGE_CRS)
    if len(series) == 0:
        return np.zeros(0, dtype=np.float64)
    if (series.isna() | series.is_empty).all():
        return np.zeros(len(series), dtype=np.float64)
    metric = series if _is_metric(series.crs) else to_metric(series)
    return np.nan_to_num(np.asarray(metric.area, dtype=np.float64), nan=0.0)


def _is_cgcs2000_geographic(crs: pyproj.CRS) -> bool:
    if not crs.is_geographic:
        return False
    if crs.to_epsg(min_confidence=70) in (4490, 4480):
        return True
    datum = crs.datum.name if crs.datum is not None else ""
    name = datum.replace("_", " ").lower()
    return "china" in name and "2000" in name


def _check_lonlat(gdf: gpd.GeoDataFrame, name: str, declared: str | None) -> None:
    bounds = gdf.total_bounds
    if not np.all(np.isfinite(bounds)):
        return  # no non-empty geometry: nothing to check, later stages reject the features
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    if max(abs(minx), abs(maxx)) <= 180.0 and max(abs(miny), abs(maxy)) <= 90.0:
        return
    extent = f"x from {minx:.6g} to {maxx:.6g}, y from {miny:.6g} to {maxy:.6g}"
    if max(abs(minx), abs(maxx)) <= 90.0 and max(abs(miny), abs(maxy)) <= 180.0:
        hint = "; longitude and latitude seem to be swapped"
    else:
        hint = ""
    if declared is None:
        raise GeodataError(
            f"{name}: the file has no coordinate reference system and its coordinates "
            f"({extent}) are not longitude/latitude{hint or '; it seems to be projected'}. "
            "Add the .prj file that came with it, or pass its CRS (for example crs='EPSG:4549')"
        )
    raise GeodataError(
        f"{name}: after conversion from {declared} the coordinates ({extent}) are not valid "
        f"longitude/latitude{hint}; the declared CRS is probably wrong"
    )


def crs_label(crs: pyproj.CRS | None) -> str | None:
    """A short label for a CRS: "EPSG:3857" where it has a code, else its name."""
    if crs is None:
        return None
    code = crs.to_epsg(min_confidence=70)
    if code is not None:
        return f"EPSG:{code}"
    authority = crs.to_authority(min_confidence=70)
    return ":".join(authority) if authority else crs.name


def normalize_crs(
    gdf: gpd.GeoDataFrame, source_crs: Any = None, *, name: str = "input"
) -> gpd.GeoDataFrame:
    """Return the data in EPSG:4326: reproject, relabel CGCS2000, or check lon/lat if no CRS.

    ``source_crs`` (anything pyproj accepts) overrides the file's own CRS; ``name`` is used in
    error messages. Raises GeodataError when the coordinates cannot be longitude/latitude.
    """
    if source_crs is not None:
        try:
            crs = pyproj.CRS.from_user_input(source_crs)
        except CRSError as exc:
            raise GeodataError(f"{name}: unknown CRS {source_crs!r}: {exc}") from exc
        if gdf.crs is not None and not gdf.crs.equals(crs):
            logger.warning("%s: file says %s; using the given %s", name, gdf.crs, crs_label(crs))
        gdf = gdf.set_crs(crs, allow_override=True)
    declared = crs_label(gdf.crs)
    if gdf.crs is None:
        _check_lonlat(gdf, name, None)
        return gdf.set_crs(STORAGE_CRS)
    if gdf.crs.equals(STORAGE_CRS, ignore_axis_order=True) or _is_cgcs2000_geographic(gdf.crs):
        # CGCS2000 and WGS84 differ by a few centimetres: relabel, never transform.
        out = gdf.set_crs(STORAGE_CRS, allow_override=True)
    else:
        try:
            out = gdf.to_crs(STORAGE_CRS)
        except (CRSError, pyproj.exceptions.ProjError) as exc:
            message = f"{name}: cannot convert from {declared} to EPSG:4326: {exc}"
            raise GeodataError(message) from exc
    _check_lonlat(out, name, declared)
    return out
