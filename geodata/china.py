"""Chinese datum shifts: WGS84 ⇄ GCJ-02 (AMap, Tencent) ⇄ BD-09 (Baidu), vectorised with numpy.

GCJ-02 is WGS84 plus an obfuscating, position-dependent offset of a few hundred metres, applied
only inside a rough bounding box of China; BD-09 is a further rotation and offset of GCJ-02.
CGCS2000 (EPSG:4490) differs from WGS84 by centimetres and is treated as WGS84 (no shift).

The forward shifts are closed formulas; their inverses have none, so ``gcj02_to_wgs84`` and
``bd09_to_gcj02`` solve for the input by fixed-point iteration (the offset changes slowly with
position, so each step shrinks the error about a thousandfold; three steps reach micrometres).
Points outside China (``out_of_china``) are returned unchanged by every function here.

Within about 1.5 km of the box's edges the shifts cannot be undone exactly, by any inverse:
near the north and east edges a point inside is shifted out of the box, onto a point that is
itself left as it is (two points, one image); near the south and west edges a GCJ-02/BD-09 point
just inside has no preimage at all (what would map onto it lies outside and is not shifted).
Round trips therefore hold everywhere in the box except that band (no part of China lies in
it), and the inverses, like every public implementation, decide "inside" from their own input
(tests/geodata/test_properties_china.py states both facts as properties).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import shapely

from geodata.datum import Datum, parse_datum

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Datum",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "convert_geometries",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "parse_datum",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

logger = logging.getLogger(__name__)

FloatOrArray = float | npt.NDArray[np.float64]
Coords = tuple[Any, Any]
G = TypeVar("G")

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
# The bounding box every public implementation of GCJ-02 uses for "inside China". It is crude:
# it includes Mongolia, the Korean peninsula and parts of Japan west of 137.8°E, but not Tokyo
# (139.7°E); AMap and Baidu themselves shift exactly the points inside this box.
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)
_MAX_ITERATIONS = 10
_TOLERANCE_DEG = 1e-12  # about 0.1 µm


def _prepare(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    scalar = x.ndim == 0 and y.ndim == 0
    x, y = np.broadcast_arrays(x, y)
    return x, y, scalar


def _finish(x: np.ndarray, y: np.ndarray, scalar: bool) -> Coords:
    if scalar:
        return float(x), float(y)
    return x, y


def _in_china(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        in_lon = (x >= _CHINA_LON[0]) & (x <= _CHINA_LON[1])
        return in_lon & (y >= _CHINA_LAT[0]) & (y <= _CHINA_LAT[1])


def out_of_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Any:
    """True where a point is outside the box in which GCJ-02/BD-09 apply (NaN: outside)."""
    x, y, scalar = _prepare(lon, lat)
    mask = ~_in_china(x, y)
    return bool(mask) if scalar else mask


def _gcj_offset(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The GCJ-02 offset in degrees (dlon, dlat) at WGS84 point (x, y), ignoring the China box."""
    px = x - 105.0
    py = y - 35.0
    common = (20.0 * np.sin(6.0 * px * np.pi) + 20.0 * np.sin(2.0 * px * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * px + 3.0 * py + 0.2 * py * py + 0.1 * px * py + 0.2 * np.sqrt(np.abs(px))
    dlat += common
    dlat += (20.0 * np.sin(py * np.pi) + 40.0 * np.sin(py / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(py / 12.0 * np.pi) + 320.0 * np.sin(py * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + px + 2.0 * py + 0.1 * px * px + 0.1 * px * py + 0.1 * np.sqrt(np.abs(px))
    dlon += common
    dlon += (20.0 * np.sin(px * np.pi) + 40.0 * np.sin(px / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(px / 12.0 * np.pi) + 300.0 * np.sin(px / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = y / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _wgs_to_gcj_raw(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dlon, dlat = _gcj_offset(x, y)
    return x + dlon, y + dlat


def _gcj_to_bd_raw(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.hypot(x, y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj_closed(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    px = x - 0.0065
    py = y - 0.006
    z = np.hypot(px, py) - 0.00002 * np.sin(py * _X_PI)
    theta = np.arctan2(py, px) - 0.000003 * np.cos(px * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(
    forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    tx: np.ndarray,
    ty: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve forward(x, y) = (tx, ty) by fixed-point iteration from the first guess (x, y)."""
    x = x.copy()
    y = y.copy()
    for _ in range(_MAX_ITERATIONS):
        fx, fy = forward(x, y)
        ex = fx - tx
        ey = fy - ty
        x -= ex
        y -= ey
        with np.errstate(invalid="ignore"):
            worst = np.nanmax(np.abs(np.concatenate([ex.ravel(), ey.ravel()])), initial=0.0)
        if worst < _TOLERANCE_DEG:
            break
    return x, y


def _masked(
    func: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
) -> Coords:
    x, y, scalar = _prepare(lon, lat)
    inside = _in_china(x, y)
    out_x = x.astype(np.float64, copy=True)
    out_y = y.astype(np.float64, copy=True)
    if inside.any():
        nx, ny = func(x[inside], y[inside])
        out_x[inside] = nx
        out_y[inside] = ny
    return _finish(out_x, out_y, scalar)


def _gcj_to_wgs_arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dlon, dlat = _gcj_offset(x, y)
    return _invert(_wgs_to_gcj_raw, x, y, x - dlon, y - dlat)


def _bd_to_gcj_arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = _bd_to_gcj_closed(x, y)
    return _invert(_gcj_to_bd_raw, x, y, gx, gy)


def _bd_to_wgs_arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _gcj_to_wgs_arrays(*_bd_to_gcj_arrays(x, y))


def _wgs_to_bd_arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _gcj_to_bd_raw(*_wgs_to_gcj_raw(x, y))


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coords:
    """Shift WGS84 longitude/latitude to GCJ-02 (scalars or arrays; outside China unchanged)."""
    return _masked(_wgs_to_gcj_raw, lon, lat)


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coords:
    """Shift GCJ-02 longitude/latitude back to WGS84 by iteration (error far below 1 mm)."""
    return _masked(_gcj_to_wgs_arrays, lon, lat)


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coords:
    """Shift GCJ-02 longitude/latitude to Baidu's BD-09."""
    return _masked(_gcj_to_bd_raw, lon, lat)


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coords:
    """Shift Baidu BD-09 longitude/latitude to GCJ-02 (closed formula refined by iteration)."""
    return _masked(_bd_to_gcj_arrays, lon, lat)


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coords:
    """Shift Baidu BD-09 longitude/latitude to WGS84."""
    return _masked(_bd_to_wgs_arrays, lon, lat)


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coords:
    """Shift WGS84 longitude/latitude to Baidu's BD-09."""
    return _masked(_wgs_to_bd_arrays, lon, lat)


_TO_WGS84: dict[Datum, Callable[[npt.ArrayLike, npt.ArrayLike], Coords]] = {
    Datum.GCJ02: gcj02_to_wgs84,
    Datum.BD09: bd09_to_wgs84,
}
_FROM_WGS84: dict[Datum, Callable[[npt.ArrayLike, npt.ArrayLike], Coords]] = {
    Datum.GCJ02: wgs84_to_gcj02,
    Datum.BD09: wgs84_to_bd09,
}
#: ``include_z=None`` keeps each geometry's own dimensionality (shapely >= 2.1; its stubs still
#: say bool, hence Any).
_OWN_DIMENSION: Any = None


def convert_geometries(geoms: G, source: Datum | str, target: Datum | str = Datum.WGS84) -> G:
    """Shift every vertex of lon/lat geometries from one datum to another (default: to WGS84).

    Accepts a shapely geometry, a list or numpy array of geometries (returns an array), a
    GeometryArray or a GeoSeries (CRS, index and name kept); None and empty pass through.
    """
    src = parse_datum(source)
    dst = parse_datum(target)
    steps = [f for f in (_TO_WGS84.get(src), _FROM_WGS84.get(dst)) if f is not None]
    if not steps or src == dst:  # GCJ-02 to GCJ-02 via WGS84 would move vertices by ~1e-16°
        return geoms

    def shift(coords: np.ndarray) -> np.ndarray:
        x, y = coords[:, 0], coords[:, 1]
        for step in steps:
            x, y = step(x, y)
        out = coords.copy()
        out[:, 0] = x
        out[:, 1] = y
        return out

    # Imported here so that the numeric functions above work without geopandas installed.
    from geopandas import GeoSeries
    from geopandas.array import GeometryArray, from_shapely

    if isinstance(geoms, GeoSeries):
        values = shapely.transform(geoms.to_numpy(), shift, include_z=_OWN_DIMENSION)
        return cast(G, GeoSeries(values, index=geoms.index, crs=geoms.crs, name=geoms.name))
    if isinstance(geoms, GeometryArray):
        values = shapely.transform(np.asarray(geoms), shift, include_z=_OWN_DIMENSION)
        return cast(G, from_shapely(values, crs=geoms.crs))
    return cast(G, shapely.transform(cast(Any, geoms), shift, include_z=_OWN_DIMENSION))
