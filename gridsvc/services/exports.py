"""Exports for reports: maps (PNG, PDF, self-contained HTML), tables (XLSX) and GIS layers
(GeoPackage, GeoJSON, Shapefile, KML) of a cell, community or street.

Exports obey the same rules as the API: the area must be in the caller's scope, households are
only exported to roles that may see personal data, and names and phones are masked otherwise.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import geopandas as gpd
import pandas as pd
from sqlalchemy.orm import Session

from geodata.china import Datum, convert_geometries
from geodata.writers import write_features
from gridsvc.auth.masking import sees_personal_data
from gridsvc.auth.principal import Principal
from gridsvc.domain import HOUSEHOLD_FLAGS
from gridsvc.errors import Forbidden, InvalidInput
from gridsvc.repositories import layers as layer_repo
from gridsvc.repositories.layers import Area
from gridsvc.services import maps as map_service
from gridsvc.services.clock import local_today, local_zone

MapFormat = Literal["png", "pdf", "html"]
TableFormat = Literal["xlsx"]
LayerFormat = Literal["gpkg", "geojson", "shp", "kml"]
EXPORT_FORMATS: tuple[str, ...] = ("png", "pdf", "html", "xlsx", "gpkg", "geojson", "shp", "kml")
#: Layers of a GIS export, in this order; households only for roles that see personal data.
LAYERS: dict[str, str] = {
    "cells": "网格",
    "buildings": "楼栋",
    "incidents": "事件",
    "households": "住户",
}
_SUFFIX = {"gpkg": ".gpkg", "geojson": ".geojson", "shp": ".shp", "kml": ".kml"}

#: Coordinate systems a GIS export can be written in (the ``crs`` option) and their labels.
#: EPSG:4490 (CGCS2000) carries the stored coordinates unchanged (DESIGN §4: treated as WGS84);
#: GCJ-02 shifts them for display partners on AMap/Tencent and is marked as such: its CRS is
#: named "GCJ-02" in the file (not EPSG:4326) and the file name ends in -gcj02.
EXPORT_CRS: dict[str, str] = {
    "EPSG:4326": "WGS 84",
    "EPSG:4490": "CGCS2000（2000国家大地坐标系）",
    "EPSG:3857": "Web Mercator",
    "GCJ-02": "GCJ-02（高德/腾讯底图坐标，非测绘坐标）",
}
#: Formats whose coordinates are lon/lat by definition (RFC 7946, KML): no projected CRS.
_LONLAT_FORMATS = {"geojson", "kml"}
#: GCJ-02 as a CRS definition: WGS84's ellipsoid under its own name, so a GIS shows the file
#: as "GCJ-02" and never mistakes the shifted coordinates for WGS84.
GCJ02_WKT = (
    'GEOGCRS["GCJ-02 (AMap/Tencent display coordinates, not a survey datum)",'
    'DATUM["GCJ-02 (WGS 84 with the GCJ-02 offset)",'
    'ELLIPSOID["WGS 84",6378137,298.257223563,LENGTHUNIT["metre",1]]],'
    'PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.0174532925199433]],'
    "CS[ellipsoidal,2],"
    'AXIS["geodetic longitude (Lon)",east,ORDER[1],ANGLEUNIT["degree",0.0174532925199433]],'
    'AXIS["geodetic latitude (Lat)",north,ORDER[2],ANGLEUNIT["degree",0.0174532925199433]]]'
)

#: Chinese names of the exported columns: GeoPackage column aliases (QGIS shows them).
FIELD_LABELS: dict[str, str] = {
    "id": "编号",
    "code": "编码",
    "name": "名称",
    "kind": "类型",
    "level": "层级",
    "community_code": "社区编码",
    "community_name": "社区名称",
    "version": "边界版本",
    "valid_from": "生效时间",
    "leader": "格长",
    "buildings": "楼栋数",
    "households": "户数",
    "volunteers": "志愿者数",
    "open_incidents": "未结事件",
    "address": "地址",
    "levels": "层数",
    "households_estimated": "户数为估算",
    "cell_code": "网格编码",
    "captain": "楼栋长",
    "category": "类别代码",
    "status": "状态代码",
    "category_label": "类别",
    "status_label": "状态",
    "description": "描述",
    "reported_at": "上报时间",
    "closed_at": "结案时间",
    "is_open": "未结",
    "building": "楼栋",
    "unit": "单元",
    "room": "门牌",
    "size": "人口数",
    "head_name": "户主",
    "phone": "电话",
    **HOUSEHOLD_FLAGS,
    **{k: v for k, v in map_service.METRICS.items() if k != "households"},
}
#: Shapefile (dBase) field names, at most 10 bytes, chosen rather than cut; every exported
#: column longer than that is listed here (README: "Exports → shapefile field names").
SHAPEFILE_FIELDS: dict[str, str] = {
    "community_code": "comm_code",
    "community_name": "comm_name",
    "open_incidents": "open_inc",
    "households_estimated": "hh_estim",
    "category_label": "cat_label",
    "status_label": "stat_label",
    "description": "descr",
    "reported_at": "reported",
    "elderly_alone": "elderly",
    "extreme_poverty": "ext_pov",
    "volunteers_per_100_households": "vol_per100",
    "visited_share": "visit_pct",
    "linked_share": "link_pct",
    "near_volunteer_share": "nearvolpct",
    "buildings_without_captain": "bldg_nocap",
    "incidents_overdue": "overdue",
}
MEDIA_TYPES = {
    "png": "image/png",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "gpkg": "application/geopackage+sqlite3",
    "geojson": "application/geo+json",
    "kml": "application/vnd.google-earth.kml+xml",
    "zip": "application/zip",
}


@dataclass(frozen=True)
class Export:
    """A finished export: its bytes, a file name to offer and the media type."""

    content: bytes
    filename: str
    media_type: str


def _filename(area: Area, what: str, suffix: str) -> str:
    return f"{area.code}-{what}-{local_today():%Y%m%d}{suffix}"


# ---------------------------------------------------------------------------- layers ------


def layer_frames(
    session: Session, principal: Principal, area: Area, names: list[str] | None = None
) -> dict[str, gpd.GeoDataFrame]:
    """The requested layers of the area (default: all the caller may have), masked for the role."""
    wanted = names or [
        n
        for n in LAYERS
        if n != "households"
        or (sees_personal_data(principal) and not _other_cells(principal, area))
    ]
    unknown = [n for n in wanted if n not in LAYERS]
    if unknown:
        raise InvalidInput(f"unknown layer {unknown[0]!r}; choose from {', '.join(LAYERS)}")
    if "households" in wanted and not sees_personal_data(principal):
        raise Forbidden(f"the {principal.role} role may not export households (personal data)")
    if "households" in wanted and _other_cells(principal, area):
        raise Forbidden(
            f"a {principal.role} exports the households of their own cell only, not of {area.code}"
        )
    frames: dict[str, gpd.GeoDataFrame] = {}
    for name in wanted:
        if name == "cells":
            frames[name] = map_service.overview_cells(session, principal, area)
        elif name == "buildings":
            frames[name] = map_service.buildings_for(session, principal, area)
        elif name == "incidents":
            frames[name] = layer_repo.incidents_layer(session, area)
        else:
            frames[name] = layer_repo.households_layer(session, area)
    return frames


def _other_cells(principal: Principal, area: Area) -> bool:
    """True when a cell-scoped user (格长, 网格员) asks for an area beyond their own cell."""
    cell_scoped = principal.cell_id is not None and not principal.is_admin
    return cell_scoped and not (area.kind == "cell" and area.id == principal.cell_id)


def _portable(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Columns formats without a date-time field (shapefile, KML) hold: timestamps as ISO
    text, no timezone objects."""
    out = frame.copy()
    for column in out.columns:
        if column == out.geometry.name:
            continue
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%S%z").where(out[column].notna())
        elif out[column].dtype == object and out[column].map(lambda v: isinstance(v, date)).any():
            out[column] = out[column].map(lambda v: v.isoformat() if isinstance(v, date) else v)
    return out


def _in_crs(frame: gpd.GeoDataFrame, crs: str) -> gpd.GeoDataFrame:
    """The (EPSG:4326) frame in one of :data:`EXPORT_CRS`."""
    if crs == "EPSG:4326":
        return frame
    if crs == "EPSG:4490":  # the same coordinates, named CGCS2000
        return frame.set_crs(4490, allow_override=True)
    if crs == "EPSG:3857":
        return frame.to_crs(3857)
    shifted = frame.copy()
    shifted[frame.geometry.name] = convert_geometries(frame.geometry, Datum.WGS84, Datum.GCJ02)
    return shifted.set_crs(GCJ02_WKT, allow_override=True)


def export_layers(
    session: Session,
    principal: Principal,
    area: Area,
    fmt: LayerFormat,
    names: list[str] | None = None,
    crs: str = "EPSG:4326",
) -> Export:
    """Layers as one GeoPackage (one table per layer, Chinese column aliases, real date-time
    fields), or one file (a zip for several/shp), in the chosen coordinate system."""
    if crs not in EXPORT_CRS:
        raise InvalidInput(f"不支持的坐标系 {crs!r}；可用：{'、'.join(EXPORT_CRS)}")
    if fmt in _LONLAT_FORMATS and crs == "EPSG:3857":
        raise InvalidInput(f"{fmt} 文件只能是经纬度坐标；EPSG:3857 请导出 gpkg 或 shp")
    frames = {
        name: _in_crs(frame if fmt in ("gpkg", "geojson") else _portable(frame), crs)
        for name, frame in layer_frames(session, principal, area, names).items()
    }
    tag = "" if crs == "EPSG:4326" else "-" + crs.split(":")[-1].lower().replace("-", "")
    with tempfile.TemporaryDirectory(prefix="gridsvc-export-") as tmp:
        folder = Path(tmp)
        if fmt == "gpkg":
            path = folder / _filename(area, f"layers{tag}", ".gpkg")
            for name, frame in frames.items():
                write_features(frame, path, layer=name, add_layer=True, aliases=FIELD_LABELS)
            return Export(path.read_bytes(), path.name, MEDIA_TYPES["gpkg"])
        written: list[Path] = []
        for name, frame in frames.items():
            target = folder / f"{name}{tag}{_SUFFIX[fmt]}"
            written.extend(_sidecars(write_features(frame, target, field_names=SHAPEFILE_FIELDS)))
        if len(frames) == 1 and fmt != "shp":
            return Export(
                written[0].read_bytes(),
                _filename(area, next(iter(frames)) + tag, _SUFFIX[fmt]),
                MEDIA_TYPES[fmt],
            )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in written:
                archive.write(path, path.name)
        return Export(
            buffer.getvalue(), _filename(area, f"layers-{fmt}{tag}", ".zip"), MEDIA_TYPES["zip"]
        )


def _sidecars(path: Path) -> list[Path]:
    """A written file and the files that belong with it (a shapefile's .shx, .dbf, .prj, .cpg)."""
    if path.suffix != ".shp":
        return [path]
    return sorted(p for p in path.parent.glob(path.stem + ".*"))


# ---------------------------------------------------------------------------- tables ------

_INCIDENT_COLUMNS = {
    "id": "编号",
    "cell_code": "网格编码",
    "category_label": "类别",
    "status_label": "状态",
    "description": "描述",
    "address": "地址",
    "reported_at": "上报时间",
    "closed_at": "结案时间",
}


def export_tables(session: Session, principal: Principal, area: Area) -> Export:
    """An XLSX workbook: coverage per cell (and community, street) with every figure naming
    its denominator, and the incident list; Chinese headers."""
    from gridsvc.services import coverage

    if area.kind == "street":
        report = coverage.coverage(session, principal, street_code=area.code)
    else:
        community = layer_repo.community_code_of(session, area)
        report = coverage.coverage(session, principal, community_code=community)
        if area.kind == "cell":
            report["rows"] = [r for r in report["rows"] if r["cell_code"] == area.code]
    header, rows = coverage.to_table(report)
    cells = pd.DataFrame(rows, columns=header)
    incidents = pd.DataFrame(layer_repo.incidents_layer(session, area).drop(columns="geometry"))
    for column in ("reported_at", "closed_at"):
        # Excel has no time zones: local wall-clock time (China Standard Time).
        incidents[column] = (
            pd.to_datetime(incidents[column], utc=True)
            .dt.tz_convert(local_zone())
            .dt.tz_localize(None)
        )
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        cells.to_excel(writer, sheet_name="网格覆盖", index=False)
        incidents[list(_INCIDENT_COLUMNS)].rename(columns=_INCIDENT_COLUMNS).to_excel(
            writer, sheet_name="事件", index=False
        )
        for sheet in writer.sheets.values():
            sheet.freeze_panes = "A2"
            for column in sheet.columns:
                width = max(len(str(c.value or "")) for c in column[:200])
                sheet.column_dimensions[column[0].column_letter].width = min(60, 4 + 2 * width)
    return Export(buffer.getvalue(), _filename(area, "tables", ".xlsx"), MEDIA_TYPES["xlsx"])


# ------------------------------------------------------------------------------ maps ------


def export_map(
    session: Session,
    principal: Principal,
    area: Area,
    fmt: MapFormat,
    *,
    kind: str = "coverage",
    metric: str = "households",
    paper: str = "A4",
    orientation: str = "landscape",
) -> Export:
    """A report map (PNG/PDF) or a self-contained interactive HTML map of the area."""
    if fmt == "html":
        html = map_service.area_html(session, principal, area, metric=metric, mode="inline")
        return Export(html.encode(), _filename(area, "map", ".html"), MEDIA_TYPES["html"])
    content = map_service.static_map(
        session,
        principal,
        area,
        fmt,
        kind=kind,
        metric=metric,
        paper=paper,
        orientation=orientation,
    )
    return Export(content, _filename(area, kind, f".{fmt}"), MEDIA_TYPES[fmt])


def export(
    session: Session,
    principal: Principal,
    area: Area,
    fmt: str,
    *,
    layers: list[str] | None = None,
    kind: str = "coverage",
    metric: str = "households",
    paper: str = "A4",
    orientation: str = "landscape",
    crs: str = "EPSG:4326",
) -> Export:
    """Any export by format name (the API and CLI entry point); `crs` for GIS layers."""
    if fmt in ("png", "pdf", "html"):
        return export_map(
            session,
            principal,
            area,
            fmt,
            kind=kind,
            metric=metric,
            paper=paper,  # type: ignore[arg-type]
            orientation=orientation,
        )
    if fmt == "xlsx":
        return export_tables(session, principal, area)
    if fmt in _SUFFIX:
        return export_layers(session, principal, area, fmt, layers, crs)  # type: ignore[arg-type]
    raise InvalidInput(f"unknown export format {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}")
