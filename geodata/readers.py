"""Read a user's geodata file into a clean GeoDataFrame in EPSG:4326, with a report of repairs.

One entry point, :func:`read_features`, for GeoJSON, GeoPackage, Shapefile (plain or zipped),
KML, CSV/XLSX with coordinate or WKT columns, and OpenStreetMap XML. Every problem with the
user's file is raised as :class:`~geodata.errors.GeodataError` naming the file, and the row or
feature where there is one; never a raw GDAL, pandas or shapely exception.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import re
import tempfile
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import pyproj
import shapely
from pyproj.exceptions import CRSError
from shapely.errors import GEOSException

from geodata.china import Datum, convert_geometries, out_of_china, parse_datum
from geodata.crs import crs_label, normalize_crs
from geodata.errors import GeodataError, InputTooLarge
from geodata.gdal import GDAL_ERRORS
from geodata.limits import (
    DEFAULT_LIMITS,
    InputLimits,
    check_coordinates,
    check_geojson_text,
    check_json_depth,
    check_zip,
    copy_member,
)
from geodata.validate import TYPE_NAMES as _TYPE_NAMES
from geodata.validate import Kind, RepairNote, parse_kind, repair_geometries

__all__ = ["SUPPORTED_SUFFIXES", "ReadResult", "parse_other_tags", "read_features", "read_table"]

logger = logging.getLogger(__name__)

# pyogrio reads large files much faster through Arrow, but pyarrow is optional.
_USE_ARROW = importlib.util.find_spec("pyarrow") is not None
_GDAL_ERRORS: tuple[type[Exception], ...] = (*GDAL_ERRORS, GEOSException, UnicodeDecodeError)
_GDAL_OR_PANDAS_ERRORS: tuple[type[Exception], ...] = (*_GDAL_ERRORS, ValueError)

GEOJSON, GPKG, SHAPEFILE, KML, CSV, XLSX, OSM = (
    "GeoJSON",
    "GPKG",
    "ESRI Shapefile",
    "KML",
    "CSV",
    "XLSX",
    "OSM",
)
_ZIP = "zip"
SUPPORTED_SUFFIXES: dict[str, str] = {
    ".geojson": GEOJSON,
    ".json": GEOJSON,
    ".gpkg": GPKG,
    ".shp": SHAPEFILE,
    ".zip": _ZIP,
    ".kml": KML,
    ".csv": CSV,
    ".xlsx": XLSX,
    ".osm": OSM,
    ".osm.xml": OSM,
}
_OSM_LAYERS: dict[Kind, str] = {"polygon": "multipolygons", "line": "lines", "point": "points"}
_OSM_TYPE_OF_LAYER = {
    "points": "node",
    "lines": "way",
    "multilinestrings": "relation",
    "other_relations": "relation",
}
_ID_COLUMNS = ("@id", "id", "osm_id", "fid", "objectid")
_X_NAMES = ("lon", "lng", "long", "longitude", "x", "经度", "东经", "point_x", "x坐标", "xcoord")
_Y_NAMES = ("lat", "latitude", "y", "纬度", "北纬", "point_y", "y坐标", "ycoord")
_WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape")
# Columns LIBKML adds to every placemark; dropped when they carry nothing.
_KML_BOILERPLATE = (
    "id",
    "description",
    "timestamp",
    "begin",
    "end",
    "altitudeMode",
    "tessellate",
    "extrude",
    "visibility",
    "drawOrder",
    "icon",
    "snippet",
)
# Encodings GDAL may report for a .dbf without .cpg when it found no usable language driver id.
_SHAPEFILE_FALLBACK_ENCODINGS = {"", "ISO-8859-1", "ISO8859-1", "ISO8859_1", "LATIN1", "CP1252"}


def _on_invalid_option() -> str:
    """pyogrio's on_invalid="fix" (closes unclosed rings) needs shapely >= 2.1 and GEOS >= 3.11."""
    major_minor = tuple(int(p) for p in re.findall(r"\d+", shapely.__version__)[:2])
    ok = major_minor >= (2, 1) and shapely.geos_version >= (3, 11, 0)
    # Without it an unreadable geometry becomes None and is reported as rejected.
    return "fix" if ok else "ignore"


_ON_INVALID = _on_invalid_option()


@dataclass
class ReadResult:
    """A file read by :func:`read_features`, with what was repaired and what was rejected.

    ``gdf`` is in EPSG:4326 with a ``source_id`` string column first and the geometry column
    ``geometry`` last; its index is the feature's 0-based position among the features read, so
    ``gdf.loc[note.index]`` finds a repaired feature. ``feature_count_read`` is the number of
    features read (after any OSM filter) and equals ``len(gdf) + len(rejected)``. ``warnings``
    lists what the user should know although it did not stop the read (another layer exists,
    the text encoding was guessed, ids repeat, features outside China were not shifted).
    """

    gdf: gpd.GeoDataFrame
    notes: list[RepairNote]
    rejected: list[RepairNote]
    source_format: str
    source_crs: str | None
    feature_count_read: int
    layer: str | None = None
    encoding: str | None = None
    datum: Datum = Datum.WGS84
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Raw:
    """A file's features as read, before CRS, datum and geometry clean-up."""

    gdf: gpd.GeoDataFrame
    source_format: str
    ids: pd.Series
    layer: str | None = None
    encoding: str | None = None
    row_label: str | None = None  # "row" for spreadsheets: notes then name the spreadsheet row
    warnings: list[str] = field(default_factory=list)


def read_features(
    path: str | Path,
    *,
    kind: str = "polygon",
    datum: str | Datum = "wgs84",
    layer: str | int | None = None,
    encoding: str | None = None,
    x_column: str | None = None,
    y_column: str | None = None,
    osm_filter: Mapping[str, str | Iterable[str] | None] | None = None,
    max_features: int | None = None,
    crs: Any = None,
    limits: InputLimits = DEFAULT_LIMITS,
) -> ReadResult:
    """Read a geodata file as valid, 2D, single-kind features in EPSG:4326 (WGS84 lon/lat).

    ``kind`` is the geometry wanted ("polygon", "point" or "line"); ``datum`` the datum of the
    coordinates (GCJ-02 and BD-09 are shifted to WGS84); ``layer`` a GeoPackage/KML layer, a
    shapefile inside a zip, an XLSX sheet or an OSM layer; ``encoding`` overrides the text
    encoding; ``x_column``/``y_column`` name the coordinate columns of a CSV/XLSX;
    ``osm_filter`` keeps OSM features whose tag is present (``None``) or has a given value (or
    one of several), and is ignored for other formats; ``max_features`` refuses larger files;
    ``crs`` is the CRS of a file that has none (or overrides a wrong one); ``limits`` bounds
    zip archives, workbook parts, coordinates and JSON nesting (see :mod:`geodata.limits`).
    """
    path = Path(path)
    wanted = parse_kind(kind)
    source_datum = parse_datum(datum)
    if max_features is not None and max_features < 0:
        raise GeodataError(f"max_features must not be negative, not {max_features}")
    fmt = _detect_format(path)
    name = path.name
    if fmt == OSM:
        raw = _read_osm(path, wanted, layer, osm_filter, max_features)
    elif fmt in (CSV, XLSX):
        raw = _read_table(path, fmt, layer, encoding, x_column, y_column, max_features, crs, limits)
    else:
        raw = _read_vector(path, fmt, layer, encoding, max_features, limits)
    gdf = raw.gdf
    count = len(gdf)
    if count == 0:
        raise GeodataError(
            f"{name} holds no features" + (f" in layer {raw.layer!r}" if raw.layer else "")
        )
    if max_features is not None and count > max_features:
        raise GeodataError(f"{name}: file has {count} features; the limit is {max_features}")

    gdf = gdf.reset_index(drop=True).drop(columns="source_id", errors="ignore")
    gdf.insert(0, "source_id", raw.ids.to_numpy())
    ids = gdf["source_id"].to_numpy()
    check_coordinates(
        gdf.geometry.to_numpy(),
        (lambda i: f"row {i + 2}") if raw.row_label else (lambda i: f"feature {ids[i]!r}"),
        limits,
        name=name,
    )
    _check_kind(gdf, wanted, name, fmt)
    notices = list(raw.warnings)
    repeated = int(gdf["source_id"].duplicated().sum())
    if repeated:
        notices.append(f"{name}: {repeated} features repeat another feature's id (source_id)")
    file_crs = crs_label(gdf.crs)
    gdf = normalize_crs(gdf, crs, name=name)
    source_crs = _given_crs_label(crs) if crs is not None else file_crs
    if source_datum in (Datum.GCJ02, Datum.BD09):
        centres = shapely.bounds(gdf.geometry.to_numpy())
        outside = out_of_china(
            (centres[:, 0] + centres[:, 2]) / 2, (centres[:, 1] + centres[:, 3]) / 2
        ) & ~np.isnan(centres[:, 0])
        if outside.any():
            notices.append(
                f"{name}: {int(outside.sum())} features lie outside China, where "
                f"{source_datum.value} equals WGS84; they were not shifted"
            )
        gdf["geometry"] = convert_geometries(gdf.geometry, source_datum)
    gdf, all_notes = repair_geometries(gdf, wanted)
    if raw.row_label:
        all_notes = [
            replace(note, reason=f"{raw.row_label} {note.index + 2}: {note.reason}")
            for note in all_notes
        ]
    notes = [n for n in all_notes if n.action == "repaired"]
    rejected = [n for n in all_notes if n.action == "rejected"]
    if len(gdf) == 0:
        examples = "; ".join(f"#{n.index} {n.reason}" for n in rejected[:3])
        raise GeodataError(
            f"{name}: none of the {count} features has a usable {wanted} geometry ({examples})"
        )
    columns = ["source_id", *[c for c in gdf.columns if c not in ("source_id", "geometry")]]
    gdf = gdf[[*columns, "geometry"]]
    logger.info(
        "%s: read %d %s features (%s), %d repaired, %d rejected",
        name,
        count,
        wanted,
        raw.source_format,
        len(notes),
        len(rejected),
    )
    return ReadResult(
        gdf=gdf,
        notes=notes,
        rejected=rejected,
        source_format=raw.source_format,
        source_crs=source_crs,
        feature_count_read=count,
        layer=raw.layer,
        encoding=raw.encoding,
        datum=source_datum,
        warnings=notices,
    )


def _given_crs_label(crs: Any) -> str | None:
    try:
        return crs_label(pyproj.CRS.from_user_input(crs))
    except CRSError:  # not reached: normalize_crs has already refused an unknown CRS
        return None


# ---------------------------------------------------------------------------------------------
# format detection


def _detect_format(path: Path) -> str:
    name = path.name
    if not path.exists():
        raise GeodataError(f"{name}: file not found ({path})")
    if path.is_dir():
        raise GeodataError(f"{name} is a folder; pass the file itself (for a shapefile the .shp)")
    if path.stat().st_size == 0:
        raise GeodataError(f"{name} is empty (0 bytes)")
    lower = name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return SUPPORTED_SUFFIXES[suffix]
    sniffed = _sniff(path)
    if sniffed is None:
        suffix = path.suffix or "(none)"
        raise GeodataError(
            f"{name}: unsupported file type {suffix}; expected one of "
            + ", ".join(sorted(SUPPORTED_SUFFIXES))
        )
    logger.info("%s: no known suffix; content looks like %s", name, sniffed)
    return sniffed


def _sniff(path: Path) -> str | None:
    """Guess a format from the first bytes of a file with an unknown suffix."""
    with path.open("rb") as fh:
        head = fh.read(2048)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"SQLite format 3\x00"):
        return GPKG
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            return None
        return XLSX if any(n.startswith("xl/") for n in names) else _ZIP
    if text.startswith(b"{"):
        return GEOJSON
    if text.startswith(b"<"):
        if b"<osm" in head:
            return OSM
        if b"<kml" in head:
            return KML
    return None


# ---------------------------------------------------------------------------------------------
# GDAL vector formats


def _read_vector(
    path: Path,
    fmt: str,
    layer: str | int | None,
    encoding: str | None,
    max_features: int | None,
    limits: InputLimits,
) -> _Raw:
    with contextlib.ExitStack() as stack:
        source = str(path)
        has_cpg = False
        if fmt == _ZIP:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="geodata-")))
            source, has_cpg = _zip_shapefile(path, layer, folder, limits)
            fmt = SHAPEFILE
            layer = None
        elif fmt == SHAPEFILE:
            has_cpg = _check_shapefile_parts(path, limits)
        elif fmt == GEOJSON:
            _check_json_start(path)
            check_geojson_text(path.read_bytes(), limits, name=path.name)
        return _read_vector_source(path, source, fmt, layer, encoding, max_features, has_cpg)


def _read_vector_source(
    path: Path,
    source: str,
    fmt: str,
    layer: str | int | None,
    encoding: str | None,
    max_features: int | None,
    has_cpg: bool,
) -> _Raw:
    name = path.name

    chosen: list[str | None]
    if fmt in (GEOJSON, SHAPEFILE) and layer is None:
        # single-layer formats: listing layers would parse a GeoJSON file twice
        layers, chosen = np.empty((0, 2), dtype=object), [None]
    else:
        try:
            layers = pyogrio.list_layers(source)
        except _GDAL_ERRORS as exc:
            raise _read_error(path, fmt, exc, source) from exc
        chosen = list(_choose_layers(name, fmt, layers, layer))
    notices: list[str] = []
    spatial = [str(row[0]) for row in layers if row[1] is not None]
    if layer is None and fmt != KML and len(spatial) > 1:
        notices.append(
            f"{name} has {len(spatial)} layers ({', '.join(spatial)}); read the first, "
            f"{chosen[0]!r}; choose another with layer="
        )

    if max_features is not None:
        _check_feature_count(path, source, fmt, chosen, max_features)
    gdf = _as_geodataframe(_read_layers(path, source, fmt, chosen, encoding))
    used_encoding = encoding
    if fmt == SHAPEFILE and encoding is None:
        gdf, used_encoding = _shapefile_encoding(gdf, source, detect=not has_cpg, notices=notices)
    if fmt == KML:
        gdf = _drop_kml_boilerplate(gdf)
    # The feature id (FID) is the fallback id; FIDs repeat across KML folders, so use positions.
    fids = [str(v) for v in gdf.index] if len(chosen) == 1 else [str(i) for i in range(len(gdf))]
    gdf = gdf.reset_index(drop=True)
    ids = _source_ids(gdf, pd.Series(fids, index=gdf.index))
    label = chosen[0] if len(chosen) == 1 and len(layers) > 1 else None
    return _Raw(gdf, fmt, ids, layer=label, encoding=used_encoding, warnings=notices)


def _check_feature_count(
    path: Path, source: str, fmt: str, chosen: list[str | None], max_features: int
) -> None:
    """Refuse a file with more features than ``max_features`` before reading any."""
    total = 0
    for lyr in chosen:
        try:
            info = pyogrio.read_info(source, layer=lyr)
            if info["features"] < 0:
                info = pyogrio.read_info(source, layer=lyr, force_feature_count=True)
        except _GDAL_ERRORS as exc:
            raise _read_error(path, fmt, exc, source) from exc
        total += int(info["features"])
    if total > max_features:
        raise GeodataError(f"{path.name}: file has {total} features; the limit is {max_features}")


def _read_layers(
    path: Path, source: str, fmt: str, chosen: list[str | None], encoding: str | None
) -> pd.DataFrame:
    """The chosen layers in one frame (with ``source_layer`` when there are several)."""
    frames = []
    for lyr in chosen:
        try:
            frame = _read_layer(source, lyr, encoding, fmt)
        except UnicodeDecodeError as exc:
            raise GeodataError(
                f"{path.name}: text is not valid {encoding or 'UTF-8'} ({exc.reason} at byte "
                f"{exc.start}); pass the right encoding, e.g. encoding='GBK'"
            ) from exc
        except _GDAL_OR_PANDAS_ERRORS as exc:  # ValueError: pandas, on the second try
            raise _read_error(path, fmt, exc, source) from exc
        if len(chosen) > 1:
            frame["source_layer"] = lyr
        frames.append(frame)
    return frames[0] if len(frames) == 1 else pd.concat(frames)


def _shapefile_encoding(
    gdf: gpd.GeoDataFrame, source: str, *, detect: bool, notices: list[str]
) -> tuple[gpd.GeoDataFrame, str | None]:
    """The encoding GDAL read a shapefile's text in; without a .cpg (``detect``), text that
    is really GBK/GB18030 read as Latin-1 is found and re-decoded (noted in ``notices``)."""
    try:
        reported = pyogrio.read_info(source)["encoding"] or ""
    except _GDAL_ERRORS:
        reported = ""
    used = reported or None
    if detect and reported.upper() in _SHAPEFILE_FALLBACK_ENCODINGS:
        detected = _detect_mojibake(gdf)
        if detected is not None:
            notices.append(f"{Path(source).name}: no .cpg file; the text was read as {detected}")
            return _transcode(gdf, detected), detected
    return gdf, used


def _read_layer(source: str, layer: str | None, encoding: str | None, fmt: str) -> pd.DataFrame:
    """One layer as a GeoDataFrame indexed by feature id (FID) where GDAL gives a usable one.

    A GeoJSON feature's own ``id`` becomes GDAL's FID column "id"; when a property is also
    called "id", both arrive as columns named "id" and indexing by FID fails (pandas
    ValueError): the layer is then read by position and the property ``id`` is the feature's id.
    """
    options: dict[str, Any] = {
        "layer": layer,
        "encoding": encoding,
        "on_invalid": _ON_INVALID,
        # Through Arrow, GDAL hands over a .dbf's text undecoded and pyarrow insists on UTF-8,
        # which GBK shapefiles are not: read shapefiles the classic way.
        "use_arrow": _USE_ARROW and fmt != SHAPEFILE,
    }
    try:
        frame: pd.DataFrame = pyogrio.read_dataframe(source, fid_as_index=True, **options)
        return frame
    except UnicodeDecodeError:
        raise
    except ValueError as exc:  # a property named like the FID column: see above
        logger.info("%s: FID column clashes with a field (%s); reading by position", source, exc)
    frame = pyogrio.read_dataframe(source, fid_as_index=False, **options)
    return frame


def _as_geodataframe(df: pd.DataFrame) -> gpd.GeoDataFrame:
    if not isinstance(df, gpd.GeoDataFrame):
        df = gpd.GeoDataFrame(df, geometry="geometry")
    if df.geometry.name != "geometry":
        df = df.rename_geometry("geometry")  # type: ignore[operator]  # (stubs: a column)
    return df


def _choose_layers(name: str, fmt: str, layers: np.ndarray, layer: str | int | None) -> list[str]:
    names = [str(row[0]) for row in layers]
    spatial = [str(row[0]) for row in layers if row[1] is not None]
    if layer is not None:
        if isinstance(layer, int) and not isinstance(layer, bool):
            if 0 <= layer < len(names):
                return [names[layer]]
        elif str(layer) in names:
            return [str(layer)]
        raise GeodataError(f"{name} has no layer {layer!r}; its layers are: {', '.join(names)}")
    if not spatial:
        if not names:
            raise GeodataError(f"{name} holds no layers")
        raise GeodataError(f"{name} has no layer with geometries (layers: {', '.join(names)})")
    if fmt == KML:
        return spatial  # KML folders become layers: read them all
    return spatial[:1]


def _sidecar(shp: Path, suffix: str) -> Path | None:
    for candidate in shp.parent.glob(shp.stem + ".*"):
        if candidate.stem == shp.stem and candidate.suffix.lower() == suffix:
            return candidate
    return None


def _check_shapefile_parts(path: Path, limits: InputLimits) -> bool:
    """Raise if the .dbf or .shx beside a .shp is missing; return whether a .cpg exists."""
    missing = [s for s in (".shx", ".dbf") if _sidecar(path, s) is None]
    if missing:
        raise GeodataError(
            f"{path.name}: the shapefile is incomplete, "
            f"{' and '.join(path.stem + s for s in missing)} missing; a shapefile needs its "
            ".shp, .shx and .dbf files (and .prj, .cpg if any) side by side; "
            "upload them together as a .zip"
        )
    prj = _sidecar(path, ".prj")
    if prj is not None:
        if prj.stat().st_size > limits.max_sidecar_bytes:
            raise InputTooLarge(
                f"{path.name}: the projection file {prj.name} is {prj.stat().st_size} bytes; "
                f"the limit is {limits.max_sidecar_bytes} (a .prj is a line of text)"
            )
        _check_prj_text(path.name, prj.name, prj.read_bytes())
    return _sidecar(path, ".cpg") is not None


def _check_prj_text(name: str, prj_name: str, data: bytes) -> None:
    """Refuse a .prj that is not text: GDAL may still parse it, but the CRS name is unreadable.

    (pyogrio then fails with an internal UnboundLocalError instead of a message.)
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GeodataError(
            f"{name}: the projection file {prj_name} is not plain text (byte {exc.start}); "
            "replace it with the .prj your GIS wrote, or remove it and pass the CRS"
        ) from exc


#: Sidecars of a shapefile read from a zip besides .shp/.shx/.dbf; each is capped tightly.
_SIDECARS = (".prj", ".cpg")


def _zip_shapefile(
    path: Path, layer: str | int | None, folder: Path, limits: InputLimits
) -> tuple[str, bool]:
    """Unzip the shapefile of a zip archive into ``folder``; its .shp path and whether it has a
    .cpg. The archive is checked (sizes, ratio, entries) before anything is inflated, and each
    part is unzipped through a capped stream."""
    name = path.name
    sidecar_limits = [(s, limits.max_sidecar_bytes) for s in _SIDECARS]
    infos = check_zip(path, limits, part_limits=sidecar_limits)
    members = [
        i.filename
        for i in infos
        if not i.filename.endswith("/") and not i.filename.startswith("__MACOSX/")
    ]
    shps = [n for n in members if n.lower().endswith(".shp")]
    if not shps:
        listing = ", ".join(members[:10]) + (" …" if len(members) > 10 else "")
        raise GeodataError(
            f"{name}: the zip archive holds no shapefile (.shp); "
            f"it contains: {listing or 'nothing'}"
        )
    if layer is not None:
        matches = [s for s in shps if str(layer) in (s, Path(s).name, Path(s).stem)]
        if not matches:
            raise GeodataError(f"{name} has no shapefile {layer!r}; it holds: {', '.join(shps)}")
        shp = matches[0]
    elif len(shps) > 1:
        raise GeodataError(
            f"{name} holds {len(shps)} shapefiles ({', '.join(shps)}); choose one with layer="
        )
    else:
        shp = shps[0]
    stem = shp[:-4].lower()
    lowered = {m.lower() for m in members}
    missing = [stem + s for s in (".shx", ".dbf") if stem + s not in lowered]
    if missing:
        raise GeodataError(
            f"{name}: the shapefile {shp} is incomplete, {' and '.join(missing)} missing "
            "from the archive"
        )
    wanted = {stem + s for s in (".shp", ".shx", ".dbf", *_SIDECARS)}
    for member in members:
        if member.lower() not in wanted:
            continue
        sidecar = member.lower().endswith(_SIDECARS)
        cap = limits.max_sidecar_bytes if sidecar else limits.max_zip_member_bytes
        target = folder / Path(member).name
        copy_member(path, member, target, cap)
        if member.lower() == stem + ".prj":
            _check_prj_text(name, member, target.read_bytes())
    return str(folder / Path(shp).name), stem + ".cpg" in lowered


def _check_json_start(path: Path) -> None:
    with path.open("rb") as fh:
        head = fh.read(4096)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text and path.stat().st_size <= len(head):
        raise GeodataError(f"{path.name} is empty (only white space)")


def _read_error(
    path: Path, fmt: str, exc: BaseException, source: str | None = None
) -> GeodataError:
    """Turn a GDAL/pyogrio failure into a message about the user's file."""
    name = path.name
    message = str(exc).replace(str(path), name)
    if source is not None and source != str(path):  # a part unzipped into a scratch folder
        message = message.replace(str(Path(source).parent) + "/", "")
    if fmt == GEOJSON:
        problem = _json_problem(path)
        if problem:
            return GeodataError(f"{name}: {problem}")
    if "not recognized as being in a supported file format" in message:
        return GeodataError(f"{name} is not a valid {fmt} file")
    return GeodataError(f"{name}: cannot read as {fmt}: {message}")


def _json_problem(path: Path) -> str | None:
    """Why a file is not GeoJSON, in the words of Python's JSON parser (error path only)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start}); GeoJSON must be UTF-8"
    try:
        check_json_depth(data, DEFAULT_LIMITS)
    except GeodataError as exc:
        return str(exc)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) - 1
        what = "truncated or malformed JSON" if truncated else "malformed JSON"
        return f"{what}: {exc.msg} at line {exc.lineno}, column {exc.colno}"
    if not isinstance(obj, dict):
        return f"valid JSON but not GeoJSON: the top level is a {type(obj).__name__}, not an object"
    kind = obj.get("type")
    valid_types = {
        "FeatureCollection",
        "Feature",
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
        "Topology",
    }
    if kind not in valid_types:
        return (
            f'valid JSON but not GeoJSON: expected "type": "FeatureCollection" (or Feature), '
            f"found {kind!r}"
        )
    return None


def _drop_kml_boilerplate(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    drop = []
    for column in _KML_BOILERPLATE:
        if column in gdf.columns:
            values = gdf[column]
            if values.isna().all() or values.nunique(dropna=False) <= 1:
                drop.append(column)
    gdf = gdf.drop(columns=drop)
    if "Name" in gdf.columns and "name" not in gdf.columns:  # KML's <name>, as OSM spells it
        gdf = gdf.rename(columns={"Name": "name"})
    return gdf


# ---------------------------------------------------------------------------------------------
# shapefile text encoding


def _string_columns(df: pd.DataFrame) -> list[str]:
    return [
        c
        for c in df.columns
        if c != df.geometry.name
        and (pd.api.types.is_object_dtype(df[c]) or pd.api.types.is_string_dtype(df[c]))
    ]


def _detect_mojibake(gdf: gpd.GeoDataFrame, limit: int = 5000) -> str | None:
    """The real encoding of text GDAL decoded as Latin-1: "UTF-8", "GB18030" (GBK) or None.

    A .dbf without .cpg (and without a language driver id) is decoded by GDAL as ISO-8859-1,
    which maps every byte to one character, so encoding back to Latin-1 recovers the bytes. Most
    Chinese shapefiles without .cpg are GBK (ArcGIS and older tools in Chinese Windows); GB18030
    is its superset, decoding the same bytes to the same text.
    """
    samples: list[bytes] = [
        c.encode("latin-1") for c in gdf.columns if isinstance(c, str) and not c.isascii()
    ]
    for column in _string_columns(gdf):
        for value in gdf[column].dropna().head(limit):
            if isinstance(value, str) and not value.isascii():
                try:
                    samples.append(value.encode("latin-1"))
                except UnicodeEncodeError:
                    return None  # characters beyond Latin-1: GDAL did decode the text
    if not samples:
        return None
    try:
        for raw in samples:
            raw.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        pass
    decoded = []
    for raw in samples:
        try:
            decoded.append(raw.decode("gb18030"))
        except UnicodeDecodeError:
            continue
    if len(decoded) < 0.9 * len(samples):
        return None
    text = "".join(decoded)
    non_ascii = [ch for ch in text if not ch.isascii()]
    cjk = sum(1 for ch in non_ascii if _is_cjk(ch))
    # Genuine Latin-1 text (é, ü …) also "decodes" as GB18030, into rare ideographs mixed with
    # other symbols; real Chinese text is overwhelmingly CJK ideographs and punctuation.
    return "GB18030" if cjk >= 0.8 * len(non_ascii) else None


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF  # unified ideographs
        or 0x3400 <= code <= 0x4DBF  # extension A
        or 0x3000 <= code <= 0x303F  # CJK punctuation
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x2460 <= code <= 0x24FF  # enclosed numbers ①
    )


def _transcode(gdf: gpd.GeoDataFrame, encoding: str) -> gpd.GeoDataFrame:
    """Re-decode Latin-1-decoded text columns (and column names) with the real encoding."""

    def fix(value: Any) -> Any:
        if isinstance(value, str) and not value.isascii():
            return value.encode("latin-1").decode(encoding, errors="replace")
        return value

    out = gdf.copy()
    for column in _string_columns(out):
        out[column] = out[column].map(fix)
    return out.rename(columns={c: fix(c) for c in out.columns if isinstance(c, str)})


# ---------------------------------------------------------------------------------------------
# source ids


def _format_ids(values: pd.Series) -> pd.Series:
    """Ids as strings: integral floats without ".0", text stripped, missing as None."""

    def one(value: Any) -> str | None:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return None
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        text = str(value).strip()
        return text or None

    return pd.Series([one(v) for v in values], index=values.index, dtype=object)


def _source_ids(df: pd.DataFrame, fallback: pd.Series) -> pd.Series:
    """A feature's id from source_id, osm_type+osm_id, @id, id, osm_id, fid or objectid."""
    lower = {str(c).lower(): c for c in df.columns}
    ids: pd.Series | None = None
    if "source_id" in df.columns:
        ids = _format_ids(df["source_id"])
    elif "osm_type" in df.columns and "osm_id" in df.columns:
        kinds = _format_ids(df["osm_type"])
        numbers = _format_ids(df["osm_id"])
        ids = pd.Series(
            [f"{k}/{n}" if k and n else n for k, n in zip(kinds, numbers, strict=True)],
            index=df.index,
            dtype=object,
        )
    else:
        for candidate in _ID_COLUMNS:
            if candidate in lower:
                ids = _format_ids(df[lower[candidate]])
                break
    if ids is None:
        return fallback.astype(object)
    return ids.where(ids.notna(), fallback).astype(object)


# ---------------------------------------------------------------------------------------------
# OpenStreetMap XML

_TAG_RE = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')
_UNESCAPE_RE = re.compile(r"\\(.)")


def parse_other_tags(values: Iterable[Any]) -> list[dict[str, str]]:
    """Parse GDAL's OSM ``other_tags`` strings (``"k"=>"v","k2"=>"v2"``) into dicts."""
    out: list[dict[str, str]] = []
    for value in values:
        if not isinstance(value, str) or not value:
            out.append({})
            continue
        out.append(
            {
                _UNESCAPE_RE.sub(r"\1", k): _UNESCAPE_RE.sub(r"\1", v)
                for k, v in _TAG_RE.findall(value)
            }
        )
    return out


def _read_osm(
    path: Path,
    kind: Kind,
    layer: str | int | None,
    osm_filter: Mapping[str, Any] | None,
    max_features: int | None,
) -> _Raw:
    """OSM XML through GDAL's OSM driver (default osmconf.ini), with other_tags as columns.

    GDAL's "multipolygons" layer holds closed ways with area tags (``osm_way_id`` set) and
    multipolygon relations (``osm_id`` set); "points" holds tagged nodes, "lines" open ways.
    Reading one layer at a time needs no OGR_INTERLEAVED_READING: the driver re-reads the file
    for each layer, which is fine at neighbourhood scale (under 0.15 s for 2 MB of XML).
    """
    name = path.name
    layer_name = _OSM_LAYERS[kind] if layer is None else str(layer)
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(str(path))]
    except _GDAL_ERRORS as exc:
        raise _read_error(path, OSM, exc) from exc
    if layer_name not in layers:
        raise GeodataError(f"{name} has no OSM layer {layer_name!r}; layers: {', '.join(layers)}")
    try:
        df = pyogrio.read_dataframe(
            str(path), layer=layer_name, on_invalid=_ON_INVALID, use_arrow=_USE_ARROW
        )
    except _GDAL_ERRORS as exc:
        raise _read_error(path, OSM, exc) from exc
    df = _as_geodataframe(df).reset_index(drop=True)

    if "other_tags" in df.columns:
        tags = pd.DataFrame.from_records(parse_other_tags(df["other_tags"]), index=df.index)
        tags = tags[[c for c in tags.columns if c not in df.columns]]
        df = pd.concat([df.drop(columns="other_tags"), tags], axis=1)
        df = _as_geodataframe(df)

    if layer_name == "multipolygons" and "osm_way_id" in df.columns:
        is_way = df["osm_way_id"].notna()
        osm_type = np.where(is_way, "way", "relation")
        osm_id = df["osm_way_id"].where(is_way, df["osm_id"])
        df = df.drop(columns="osm_way_id")
    else:
        osm_type = np.full(len(df), _OSM_TYPE_OF_LAYER.get(layer_name, "relation"), dtype=object)
        osm_id = df["osm_id"]
    df = df.drop(columns=[c for c in ("osm_id",) if c in df.columns])
    df.insert(0, "osm_type", pd.Series(osm_type, index=df.index, dtype=object))
    df.insert(1, "osm_id", pd.to_numeric(osm_id, errors="coerce").astype("Int64"))

    total = len(df)
    if osm_filter:
        mask = np.ones(total, dtype=bool)
        for key, want in osm_filter.items():
            if key not in df.columns:
                mask[:] = False
                break
            column = df[key]
            if want is None or want is True:
                mask &= column.notna().to_numpy()
            elif isinstance(want, str):
                mask &= (column == want).fillna(False).to_numpy(dtype=bool)
            else:
                mask &= column.isin(list(want)).to_numpy(dtype=bool)
        df = df[mask]
        if len(df) == 0:
            raise GeodataError(
                f"{name}: no feature of OSM layer {layer_name!r} ({total} features) matches "
                f"the filter {dict(osm_filter)!r}"
            )
        df = df.reset_index(drop=True)
    if max_features is not None and len(df) > max_features:
        raise GeodataError(f"{name}: file has {len(df)} features; the limit is {max_features}")
    # GDAL's fixed osmconf fields (aeroway, military …) are mostly empty: keep tags in use only.
    empty = [c for c in df.columns if c not in ("osm_type", "osm_id", "geometry")]
    df = df.drop(columns=[c for c in empty if df[c].isna().all()])
    df = df.set_crs(df.crs or "EPSG:4326")
    ids = pd.Series(
        [f"{t}/{i}" for t, i in zip(df["osm_type"], df["osm_id"], strict=True)],
        index=df.index,
        dtype=object,
    )
    return _Raw(df, OSM, ids, layer=layer_name, encoding="UTF-8")


# ---------------------------------------------------------------------------------------------
# CSV and XLSX


def _normalise_header(text: Any) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text))).lower()


def _find_column(columns: list[str], wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    normalised = {_normalise_header(c): c for c in columns}
    if wanted is not None:
        if wanted in columns:
            return wanted
        if _normalise_header(wanted) in normalised:
            return normalised[_normalise_header(wanted)]
        return None
    for candidate in candidates:
        if candidate in normalised:
            return normalised[candidate]
    return None


def _decode_csv(path: Path, encoding: str | None) -> tuple[str, str]:
    data = path.read_bytes()
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise GeodataError(
                f"{path.name}: cannot decode the text as {encoding} ({exc})"
            ) from exc
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        # GB18030 is a superset of GBK: the same bytes give the same text.
        return data.decode("gb18030"), "GB18030"
    except UnicodeDecodeError as exc:
        raise GeodataError(
            f"{path.name}: the text is neither UTF-8 nor GBK (byte {exc.start}); "
            "save the file as UTF-8 or pass encoding="
        ) from exc


def _csv_separator(text: str) -> str:
    first = text.split("\n", 1)[0]
    counts = {sep: first.count(sep) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


def _read_table(
    path: Path,
    fmt: str,
    layer: str | int | None,
    encoding: str | None,
    x_column: str | None,
    y_column: str | None,
    max_features: int | None,
    crs: Any,
    limits: InputLimits,
) -> _Raw:
    name = path.name
    df, used_encoding, sheet = _table_rows(path, fmt, layer, encoding, limits)
    if len(df) == 0:
        where = f" (sheet {sheet!r})" if sheet else ""
        raise GeodataError(f"{name} holds no features{where}: no data rows below the header")
    if max_features is not None and len(df) > max_features:
        raise GeodataError(f"{name}: file has {len(df)} features; the limit is {max_features}")
    df, geometry, (x_col, y_col) = _table_geometry(df, name, x_column, y_column, crs)
    for column in df.columns:
        df[column] = _infer(df[column]) if column not in (x_col, y_col) else df[column]
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geometry, index=df.index), crs=None)
    rows = pd.Series([str(i + 2) for i in range(len(gdf))], index=gdf.index)
    ids = _source_ids(gdf, rows)
    return _Raw(gdf, fmt, ids, layer=sheet, encoding=used_encoding, row_label="row")


def _table_rows(
    path: Path, fmt: str, layer: str | int | None, encoding: str | None, limits: InputLimits
) -> tuple[pd.DataFrame, str | None, str | None]:
    """A CSV's or a workbook sheet's rows as text (header stripped, empty rows dropped), the
    encoding used and the sheet read."""
    name = path.name
    used_encoding: str | None = None
    sheet: str | None = None
    try:
        if fmt == CSV:
            text, used_encoding = _decode_csv(path, encoding)
            if not text.strip():
                raise GeodataError(f"{name} is empty (only white space)")
            df = pd.read_csv(
                io.StringIO(text),
                sep=_csv_separator(text),
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                skipinitialspace=True,
            )
        else:

            def pick(sheets: list[str]) -> str:
                if layer is None:
                    return sheets[0]
                if isinstance(layer, int) and 0 <= layer < len(sheets):
                    return sheets[layer]
                if str(layer) in sheets:
                    return str(layer)
                raise GeodataError(
                    f"{name} has no sheet {layer!r}; its sheets are: {', '.join(sheets)}"
                )

            df, sheet = _read_sheet(path, pick, limits)
    except GeodataError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise GeodataError(f"{name}: cannot read as {fmt}: {exc}") from exc
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise GeodataError(f"{name}: cannot read as {fmt}: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    df = df.dropna(how="all").reset_index(drop=True) if fmt == XLSX else df
    return df, used_encoding, sheet


def _table_geometry(
    df: pd.DataFrame, name: str, x_column: str | None, y_column: str | None, crs: Any
) -> tuple[pd.DataFrame, np.ndarray, tuple[str | None, str | None]]:
    """Points from the coordinate columns (or shapes from a WKT column, dropped from the
    table); the coordinate columns found."""
    columns = list(df.columns)
    x_col = _find_column(columns, x_column, _X_NAMES)
    y_col = _find_column(columns, y_column, _Y_NAMES)
    for given, found, axis in ((x_column, x_col, "x"), (y_column, y_col, "y")):
        if given is not None and found is None:
            raise GeodataError(
                f"{name}: no column {given!r} (the {axis} column); columns: {', '.join(columns)}"
            )
    wkt_col = None if (x_column or y_column) else _find_column(columns, None, _WKT_NAMES)
    if wkt_col is not None:
        geometry = _geometry_from_wkt(df[wkt_col], name)
        df = df.drop(columns=wkt_col)
    elif x_col is not None and y_col is not None:
        x = _coordinates(df[x_col], name, "longitude" if crs is None else "x")
        y = _coordinates(df[y_col], name, "latitude" if crs is None else "y")
        if crs is None:
            _check_rows_in_range(x, y, name)
        geometry = np.asarray(shapely.points(x, y), dtype=object)
        geometry[np.isnan(x) | np.isnan(y)] = None
    else:
        raise GeodataError(
            f"{name}: cannot find the coordinate columns; name them lon/lat (or 经度/纬度, x/y), "
            f"add a WKT column, or pass x_column= and y_column=; columns: {', '.join(columns)}"
        )
    return df, geometry, (x_col, y_col)


def _read_sheet(
    path: Path, pick: Callable[[list[str]], str], limits: InputLimits
) -> tuple[pd.DataFrame, str]:
    """One sheet of a workbook as text cells, and its name; ``pick`` chooses among the sheets.

    The workbook's zip directory is checked first (sizes, ratio, entries; each XML part is
    capped at ``max_workbook_part_bytes``), so a bomb is refused before anything is inflated.
    openpyxl then reads each part through Python's zipfile, which stops at the size the
    directory declares (and fails the CRC check when the data is longer): that size is a cap.
    A damaged workbook makes openpyxl fail in many ways (zlib, XML ParseError, TypeError,
    IndexError …, found by fuzzing): every failure is the user's file, so each is reported.
    """
    check_zip(path, limits, part_limits=[(".xml", limits.max_workbook_part_bytes)])
    try:
        with pd.ExcelFile(path, engine="openpyxl") as book:
            chosen = pick([str(s) for s in book.sheet_names])
            df = pd.read_excel(
                book, sheet_name=chosen, dtype=str, keep_default_na=False, na_values=[""]
            )
    except GeodataError:
        raise
    except Exception as exc:  # any failure: see the docstring
        detail = str(exc)
        detail = detail if len(detail) <= 160 else detail[:157] + "..."
        raise GeodataError(
            f"{path.name} is not a readable XLSX workbook ({type(exc).__name__}: {detail}); "
            "open it in Excel or WPS and save it again"
        ) from exc
    return df, chosen


def _infer(column: pd.Series) -> pd.Series:
    """Numbers stay numbers for attribute columns read as text, unless leading zeros matter."""
    values = column.dropna()
    if values.empty or values.str.match(r"^0\d").any():
        return column
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers[column.notna()].isna().any():
        return column
    if (numbers.dropna() % 1 == 0).all():
        return numbers.astype("Int64")
    return numbers


def _coordinates(column: pd.Series, name: str, axis: str) -> np.ndarray:
    """Parse a coordinate column; a cell that is not a number raises naming its spreadsheet row."""
    text = column.map(
        lambda v: unicodedata.normalize("NFKC", v).strip() if isinstance(v, str) else v
    )
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(values) & text.notna().to_numpy() & (text != "").to_numpy())
    if len(bad):
        first = int(bad[0])
        more = f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""
        raise GeodataError(
            f"{name}: row {first + 2}: {axis} {column.iloc[first]!r} in column "
            f"{column.name!r} is not a number{more}"
        )
    return values


def _check_rows_in_range(x: np.ndarray, y: np.ndarray, name: str) -> None:
    """Name rows whose lon/lat is out of range, unless most rows are (then it is a CRS problem)."""
    with np.errstate(invalid="ignore"):
        out = (np.abs(x) > 180) | (np.abs(y) > 90)
    present = ~(np.isnan(x) | np.isnan(y))
    if not out.any() or out.sum() * 2 >= present.sum():
        return
    first = int(np.flatnonzero(out)[0])
    more = f" (and {int(out.sum()) - 1} more rows)" if out.sum() > 1 else ""
    raise GeodataError(
        f"{name}: row {first + 2}: ({x[first]}, {y[first]}) is not a longitude/latitude{more}"
    )


def _geometry_from_wkt(column: pd.Series, name: str) -> np.ndarray:
    text = column.to_numpy(dtype=object)
    present = np.array([isinstance(v, str) and bool(v.strip()) for v in text], dtype=bool)
    geoms = np.full(len(text), None, dtype=object)
    if present.any():
        try:
            geoms[present] = shapely.from_wkt(text[present], on_invalid="ignore")
        except NotImplementedError:  # curves (CIRCULARSTRING …): GEOS reads them, shapely not
            for k in np.flatnonzero(present):
                try:
                    geoms[k] = shapely.from_wkt(text[k], on_invalid="ignore")
                except NotImplementedError as exc:
                    raise GeodataError(
                        f"{name}: row {k + 2}: curved geometry in column {column.name!r} is not "
                        "supported; convert curves to straight segments (e.g. ST_CurveToLine)"
                    ) from exc
    bad = np.flatnonzero(present & shapely.is_missing(geoms))
    if len(bad):
        first = int(bad[0])
        value = str(text[first])
        shown = value if len(value) <= 60 else value[:57] + "..."
        more = f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""
        raise GeodataError(
            f"{name}: row {first + 2}: {shown!r} in column {column.name!r} is not valid WKT{more}"
        )
    return geoms


# ---------------------------------------------------------------------------------------------
# geometry kind


_TYPE_KIND = {0: "point", 1: "line", 2: "line", 3: "polygon", 4: "point", 5: "line", 6: "polygon"}


def _check_kind(gdf: gpd.GeoDataFrame, kind: Kind, name: str, fmt: str) -> None:
    """Raise when no feature could be of the wanted kind (e.g. points where polygons are wanted)."""
    geoms = gdf.geometry.to_numpy()
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    type_ids = shapely.get_type_id(geoms[present])
    if len(type_ids) == 0:
        return  # all null or empty: every feature is rejected with its reason
    kinds = {_TYPE_KIND.get(int(t)) for t in type_ids}
    if kind in kinds or None in kinds:  # None: GeometryCollection, checked part by part
        return
    counts = Counter(_TYPE_NAMES[int(t)] for t in type_ids)
    found = ", ".join(f"{n} {t}" for t, n in counts.most_common())
    hint = ""
    if fmt == OSM:
        hint = "; choose the OSM layer with kind= or layer="
    raise GeodataError(f"{name}: expected {kind} features, but the file holds {found}{hint}")


def read_table(
    path: str | Path,
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    max_rows: int | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
) -> pd.DataFrame:
    """A plain CSV or XLSX table (no geometry) with every cell as text (None when empty).

    CSV text is UTF-8 (with or without BOM) or GBK/GB18030; the separator is detected. Header
    names are stripped; fully empty rows are dropped. Raises GeodataError with a clear message.
    """
    path = Path(path)
    fmt = _detect_format(path)
    if fmt not in (CSV, XLSX):
        raise GeodataError(f"{path.name}: expected a CSV or XLSX table, not {fmt}")
    name = path.name
    try:
        if fmt == CSV:
            text, _ = _decode_csv(path, encoding)
            if not text.strip():
                raise GeodataError(f"{name} is empty (only white space)")
            df = pd.read_csv(
                io.StringIO(text),
                sep=_csv_separator(text),
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                skipinitialspace=True,
            )
        else:

            def pick(sheets: list[str]) -> str:
                chosen = sheets[0] if sheet is None else sheet
                if isinstance(chosen, int):
                    if not 0 <= chosen < len(sheets):
                        raise GeodataError(f"{name} has no sheet #{chosen}")
                    chosen = sheets[chosen]
                if chosen not in sheets:
                    raise GeodataError(
                        f"{name} has no sheet {chosen!r}; its sheets are: {', '.join(sheets)}"
                    )
                return chosen

            df, _ = _read_sheet(path, pick, limits)
    except GeodataError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise GeodataError(f"{name}: cannot read as {fmt}: {exc}") from exc
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise GeodataError(f"{name}: cannot read as {fmt}: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    df = df.dropna(how="all")
    if max_rows is not None and len(df) > max_rows:
        raise GeodataError(f"{name}: {len(df)} rows; the limit is {max_rows}")
    return df.astype(object).where(df.notna(), None)
