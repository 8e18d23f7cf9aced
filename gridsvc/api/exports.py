"""Export routes: report maps, tables and GIS layers of a cell, community or street."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam

from gridsvc.api.deps import CurrentUser, SessionDep
from gridsvc.domain import MAX_CODE
from gridsvc.services import exports
from gridsvc.services.maps import METRICS, area_for

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])


#: What each export format is served as.
_EXPORT_CONTENT = {
    media: {"schema": {"type": "string", "format": "binary"}}
    for media in exports.MEDIA_TYPES.values()
}


@router.get(
    "/{kind}/{code}",
    response_class=Response,
    responses={200: {"content": _EXPORT_CONTENT, "description": "the file, as an attachment"}},
)
def export(
    session: SessionDep,
    user: CurrentUser,
    kind: Literal["cell", "community", "street"],
    code: Annotated[str, PathParam(max_length=MAX_CODE)],
    format: Annotated[
        Literal["png", "pdf", "html", "xlsx", "gpkg", "geojson", "shp", "kml"],
        Query(
            description="png/pdf: report map · html: self-contained map · xlsx: tables · "
            "gpkg/geojson/shp/kml: GIS layers"
        ),
    ] = "pdf",
    map: Annotated[
        Literal["coverage", "area", "buildings", "responsibility"],
        Query(description="png/pdf: coverage map, 区域平面图, 楼房平面图 or 责任网络图"),
    ] = "coverage",
    metric: Annotated[
        str, Query(max_length=MAX_CODE, description="coverage figure: " + ", ".join(METRICS))
    ] = ("households"),
    layers: Annotated[
        str | None,
        Query(
            max_length=MAX_CODE,
            description="GIS formats: comma-separated cells,buildings,incidents,households",
        ),
    ] = None,
    crs: Annotated[
        Literal["EPSG:4326", "EPSG:4490", "EPSG:3857", "GCJ-02"],
        Query(
            description="GIS formats: EPSG:4326 (WGS 84), EPSG:4490 (CGCS2000), EPSG:3857 "
            "(gpkg/shp only), or GCJ-02 for AMap/Tencent display partners (marked as such)"
        ),
    ] = "EPSG:4326",
    paper: Annotated[Literal["A4", "A3"], Query()] = "A4",
    orientation: Annotated[Literal["portrait", "landscape"], Query()] = "landscape",
) -> Response:
    """Download an export of an area in your scope (households only for roles allowed them)."""
    area = area_for(session, user, kind, code)
    result = exports.export(
        session,
        user,
        area,
        format,
        layers=[name.strip() for name in layers.split(",") if name.strip()] if layers else None,
        kind=map,
        metric=metric,
        paper=paper,
        orientation=orientation,
        crs=crs,
    )
    disposition = f"attachment; filename*=UTF-8''{quote(result.filename)}"
    return Response(
        result.content, media_type=result.media_type, headers={"Content-Disposition": disposition}
    )
