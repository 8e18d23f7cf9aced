"""Write GeoDataFrames to GeoJSON, GeoPackage, Shapefile (UTF-8, with .cpg) or KML.

GeoPackages are written as version 1.2 (GDAL 3.6, Debian 12's and the QGIS built on it, warns
about 1.4 files), with date/time columns as real DATETIME fields and, when given, column
aliases in the GeoPackage schema extension (``gpkg_data_columns``: QGIS shows them as field
aliases, GDAL as alternative names). Shapefile field names are at most 10 bytes: the caller
passes a deliberate mapping, and a longer name is refused rather than cut.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyogrio.errors

from geodata.crs import STORAGE_CRS
from geodata.errors import GeodataError
from geodata.gdal import GDAL_ERRORS

__all__ = ["GPKG_VERSION", "SHAPEFILE_FIELD_BYTES", "WRITE_DRIVERS", "write_features"]

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
#: The GeoPackage version written: readable without warnings by GDAL 3.6 (Debian 12).
GPKG_VERSION = "1.2"
#: The longest field name a dBase (shapefile) table holds.
SHAPEFILE_FIELD_BYTES = 10


def write_features(
    gdf: gpd.GeoDataFrame,
    path: str | Path,
    driver: str | None = None,
    *,
    layer: str | None = None,
    add_layer: bool = False,
    aliases: Mapping[str, str] | None = None,
    field_names: Mapping[str, str] | None = None,
) -> Path:
    """Write features to a file, choosing the driver from the suffix; returns the path.

    GeoJSON and KML are written in EPSG:4326 (reprojected if needed); shapefiles are written
    as UTF-8 with a .cpg file so any GIS reads Chinese text correctly. An existing file is
    replaced, unless `add_layer` is set: then a GeoPackage gets `layer` as one more table.

    `aliases` (column → display name) go into a GeoPackage's ``gpkg_data_columns``;
    `field_names` (column → short name) rename columns of a shapefile, whose every field name
    must then fit in 10 bytes (GeodataError otherwise: nothing is truncated).
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
        frame = _shapefile_names(frame, field_names or {}, path.name)
    if driver == "GPKG":
        options["layer"] = layer or path.stem
        frame = _utc_datetimes(frame)
        if not (add_layer and path.exists()):
            options["dataset_options"] = {"VERSION": GPKG_VERSION}
    elif layer is not None:
        options["layer"] = layer
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (add_layer and driver == "GPKG"):
        _remove_existing(path, driver)
    try:
        pyogrio.write_dataframe(frame, path, driver=driver, **options)
    except GDAL_ERRORS as exc:
        raise GeodataError(f"{path.name}: cannot write as {driver}: {exc}") from exc
    if driver == "GPKG" and aliases:
        _write_aliases(path, str(options["layer"]), frame, aliases)
    logger.info("wrote %d features to %s (%s)", len(frame), path, driver)
    return path


def _utc_datetimes(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Zoned date/time columns in UTC: GeoPackage DATETIME is ``YYYY-MM-DDTHH:MM:SS.SSSZ``
    (GDAL 3.6 warns about any other offset)."""
    zoned = [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
    if not zoned:
        return frame
    out = frame.copy()
    for column in zoned:
        out[column] = out[column].dt.tz_convert("UTC")
    return out


def _shapefile_names(
    frame: gpd.GeoDataFrame, names: Mapping[str, str], filename: str
) -> gpd.GeoDataFrame:
    """The frame with its columns renamed to their shapefile names; refuses names too long."""
    renamed = frame.rename(columns={k: v for k, v in names.items() if k in frame.columns})
    geometry = renamed.geometry.name
    long = [
        str(c)
        for c in renamed.columns
        if c != geometry and len(str(c).encode()) > SHAPEFILE_FIELD_BYTES
    ]
    if long:
        raise GeodataError(
            f"{filename}: field names longer than {SHAPEFILE_FIELD_BYTES} bytes would be cut: "
            + ", ".join(long)
            + " (give them short names)"
        )
    seen = [str(c) for c in renamed.columns]
    if len(set(seen)) != len(seen):
        raise GeodataError(f"{filename}: two fields would share one shapefile name")
    return renamed


def _write_aliases(
    path: Path, layer: str, frame: gpd.GeoDataFrame, aliases: Mapping[str, str]
) -> None:
    """Record column aliases in the GeoPackage schema extension (``gpkg_data_columns``).

    The table and its registration follow GeoPackage 1.2 (F.9, "Schema"); an alias already
    used by another column of the layer is left out (the spec makes it unique per table)."""
    geometry = frame.geometry.name
    rows, used = [], set()
    for column in frame.columns:
        alias = aliases.get(str(column))
        if column == geometry or not alias or alias in used:
            continue
        used.add(alias)
        rows.append((layer, str(column), alias, alias))
    if not rows:
        return
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS gpkg_data_columns (
              table_name TEXT NOT NULL, column_name TEXT NOT NULL, name TEXT, title TEXT,
              description TEXT, mime_type TEXT, constraint_name TEXT,
              CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name),
              CONSTRAINT gdc_tn UNIQUE (table_name, name),
              CONSTRAINT fk_gdc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name));
            CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (
              constraint_name TEXT NOT NULL, constraint_type TEXT NOT NULL, value TEXT,
              min NUMERIC, min_is_inclusive BOOLEAN, max NUMERIC, max_is_inclusive BOOLEAN,
              description TEXT,
              CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value));
            CREATE TABLE IF NOT EXISTS gpkg_extensions (
              table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL,
              definition TEXT NOT NULL, scope TEXT NOT NULL,
              CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
            """
        )
        for table in ("gpkg_data_columns", "gpkg_data_column_constraints"):
            exists = db.execute(
                "SELECT 1 FROM gpkg_extensions WHERE table_name = ? AND extension_name = ?",
                (table, "gpkg_schema"),
            ).fetchone()
            if not exists:
                db.execute(
                    "INSERT INTO gpkg_extensions VALUES (?, NULL, 'gpkg_schema', "
                    "'http://www.geopackage.org/spec121/#extension_schema', 'read-write')",
                    (table,),
                )
        db.executemany(
            "INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )


def _remove_existing(path: Path, driver: str) -> None:
    if driver == "ESRI Shapefile":
        for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx"):
            sidecar = path.with_suffix(suffix)
            if sidecar.exists():
                sidecar.unlink()
    elif path.exists():
        path.unlink()
