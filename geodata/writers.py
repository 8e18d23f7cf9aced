"""Write GeoDataFrames to GeoJSON, GeoPackage, Shapefile (UTF-8, with .cpg) or KML."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import pyogrio
import pyogrio.errors

from geodata.crs import STORAGE_CRS
from geodata.errors import GeodataError
from geodata.gdal import GDAL_ERRORS

__all__ = ["WRITE_DRIVERS", "write_features"]

logger = logging.getLogger(__name__)

WRITE_DRIVERS: dict[str, str] = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".kml": "KML",
}
# GeoJSON (RFC 7946) and KML are lon/lat WGS84 by definition.
_LONLAT_ONLY = {"GeoJSON", "KML", "LIBKML"}


def write_features(
    gdf: gpd.GeoDataFrame,
    path: str | Path,
    driver: str | None = None,
    *,
    layer: str | None = None,
    add_layer: bool = False,
) -> Path:
    """Write features to a file, choosing the driver from the suffix; returns the path.

    GeoJSON and KML are written in EPSG:4326 (reprojected if needed); shapefiles are written
    as UTF-8 with a .cpg file so any GIS reads Chinese text correctly. An existing file is
    replaced, unless `add_layer` is set: then a GeoPackage gets `layer` as one more table.
    """
    path = Path(path)
    if driver is None:
        driver = WRITE_DRIVERS.get(path.suffix.lower())
        if driver is None:
            raise GeodataError(
                f"{path.name}: cannot write {path.suffix or 'files without a suffix'}; use one of "
                + ", ".join(sorted(WRITE_DRIVERS))
            )
    frame = gdf
    if driver in _LONLAT_ONLY:
        if frame.crs is None:
            frame = frame.set_crs(STORAGE_CRS)
        elif not frame.crs.equals(STORAGE_CRS):
            frame = frame.to_crs(STORAGE_CRS)
    options: dict[str, object] = {}
    if driver == "ESRI Shapefile":
        options["encoding"] = "UTF-8"
    if driver == "GPKG":
        options["layer"] = layer or path.stem
    elif layer is not None:
        options["layer"] = layer
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (add_layer and driver == "GPKG"):
        _remove_existing(path, driver)
    try:
        pyogrio.write_dataframe(frame, path, driver=driver, **options)
    except GDAL_ERRORS as exc:
        raise GeodataError(f"{path.name}: cannot write as {driver}: {exc}") from exc
    logger.info("wrote %d features to %s (%s)", len(frame), path, driver)
    return path


def _remove_existing(path: Path, driver: str) -> None:
    if driver == "ESRI Shapefile":
        for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx"):
            sidecar = path.with_suffix(suffix)
            if sidecar.exists():
                sidecar.unlink()
    elif path.exists():
        path.unlink()
