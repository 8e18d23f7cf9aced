"""Vector tile routes: ``/api/v1/tiles/{layer}/{z}/{x}/{y}.mvt`` with TileJSON, and the same
tiles as OGC API – Tiles (``/ogc/tileMatrixSets``, ``/ogc/collections/{layer}/tiles``).

Routes only translate: path and ``If-None-Match`` in, :func:`gridsvc.services.tiles.get_tile`
called, bytes out with ETag and Cache-Control (private: a tile is cut to the caller's scope).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from gridsvc.api.deps import CurrentUser, SessionDep
from gridsvc.auth.policy import require
from gridsvc.errors import NotFound
from gridsvc.ogc import links as ogc_links
from gridsvc.repositories.layers import OSM_ATTRIBUTION
from gridsvc.schemas.tiles import (
    GeospatialData,
    Link,
    TileJSON,
    TileMatrix,
    TileMatrixLimits,
    TileMatrixSet,
    TileMatrixSetList,
    TileMatrixSetRef,
    TileSet,
    TileSetList,
    VectorLayer,
)
from gridsvc.services import tiles as svc
from gridsvc.settings import get_settings

MVT = "application/vnd.mapbox-vector-tile"
router = APIRouter(tags=["tiles"])

#: WebMercatorQuad as OGC 17-083r4 (2D Tile Matrix Set 2.0) defines it.
WEB_MERCATOR_QUAD = "WebMercatorQuad"
_TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
_CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
_ORIGIN = 20037508.3427892
_CELL_SIZE_0 = 156543.03392804097  # metres per pixel at zoom 0 (256-pixel tiles)
#: OGC's standardized rendering pixel: 0.28 mm.
_PIXEL_M = 0.00028

#: The OGC API – Tiles conformance classes these routes implement (for /ogc/conformance).
TILES_CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]

# The OGC API's landing page, conformance and collections list these tiles too.
ogc_links.EXTRA_CONFORMANCE.extend(TILES_CONFORMANCE)
ogc_links.EXTRA_LANDING_LINKS.append(
    {
        "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
        "href": "/tileMatrixSets",
        "type": "application/json",
        "title": "瓦片矩阵集",
    }
)
ogc_links.EXTRA_COLLECTION_LINKS.append(
    lambda collection: (
        [
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                "href": f"/collections/{collection}/tiles",
                "type": "application/json",
                "title": "矢量瓦片",
            }
        ]
        if collection in svc.LAYERS
        else []
    )
)

Layer = Annotated[
    str, PathParam(max_length=16, description="cells, buildings, incidents, volunteers 或 all")
]
Zoom = Annotated[int, PathParam(ge=0, le=svc.MAX_ZOOM)]
Index = Annotated[int, PathParam(ge=0, le=(1 << svc.MAX_ZOOM) - 1)]
IfNoneMatch = Annotated[str | None, Header(max_length=1024)]


def _tile_response(tile: svc.Tile) -> Response:
    headers = {
        "ETag": tile.etag,
        "Cache-Control": f"private, max-age={get_settings().maps.tile_max_age_seconds}",
        "Vary": "Authorization, Cookie",
    }
    if tile.not_modified:
        return Response(status_code=304, headers=headers)
    if not tile.data:
        return Response(status_code=204, headers=headers)
    return Response(tile.data, media_type=MVT, headers=headers)


_TILE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {MVT: {}}, "description": "Mapbox 矢量瓦片"},
    204: {"description": "空瓦片（此处无可见要素）"},
    304: {"description": "瓦片未变（If-None-Match 与 ETag 相同）"},
}


@router.get(
    "/api/v1/tiles/{layer}/{z}/{x}/{y}.mvt", response_class=Response, responses=_TILE_RESPONSES
)
async def tile(
    session: SessionDep,
    user: CurrentUser,
    layer: Layer,
    z: Zoom,
    x: Index,
    y: Index,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """A vector tile (MVT) of a layer — or of every layer with ``all`` — scoped and masked for
    you; 204 when nothing in it is yours to see, 304 when your copy is current."""
    found = await run_in_threadpool(svc.get_tile, session, user, layer, z, x, y, if_none_match)
    return _tile_response(found)


@router.get(
    "/ogc/collections/{layer}/tiles/WebMercatorQuad/{tile_matrix}/{tile_row}/{tile_col}",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
async def ogc_tile(
    session: SessionDep,
    user: CurrentUser,
    layer: Layer,
    tile_matrix: Zoom,
    tile_row: Index,
    tile_col: Index,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The same tile as OGC API – Tiles names it (tileMatrix = zoom, tileRow = y, tileCol = x)."""
    found = await run_in_threadpool(
        svc.get_tile, session, user, layer, tile_matrix, tile_col, tile_row, if_none_match
    )
    return _tile_response(found)


def _layer_title(layer: str) -> tuple[str, str, int, int]:
    names = svc.layer_names(layer)
    if layer == svc.COMBINED:
        return "全部图层", "网格、楼栋、未结事件、志愿者", 0, svc.MAX_ZOOM
    spec = svc.LAYERS[names[0]]
    return spec.title, spec.description, spec.minzoom, spec.maxzoom


@router.get("/api/v1/tiles/{layer}.json", response_model=TileJSON)
def tilejson(request: Request, user: CurrentUser, layer: Layer) -> TileJSON:
    """TileJSON 3.0 of a layer: the tile URL template, zooms and the fields your tiles carry."""
    require(user, "area.read")
    title, description, minzoom, maxzoom = _layer_title(layer)
    base = str(request.base_url).rstrip("/")
    return TileJSON(
        name=title,
        description=description,
        version=str(svc.FORMAT_VERSION),
        tiles=[f"{base}/api/v1/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"],
        minzoom=minzoom,
        maxzoom=maxzoom,
        attribution=f"数据：社区网格台账；建筑物 {OSM_ATTRIBUTION}",
        vector_layers=[
            VectorLayer(
                id=name,
                description=svc.LAYERS[name].description,
                fields=svc.layer_fields(user, name),
                minzoom=svc.LAYERS[name].minzoom,
                maxzoom=svc.LAYERS[name].maxzoom,
            )
            for name in svc.layer_names(layer)
        ],
    )


def _matrices() -> list[TileMatrix]:
    return [
        TileMatrix(
            id=str(z),
            scale_denominator=_CELL_SIZE_0 / (1 << z) / _PIXEL_M,
            cell_size=_CELL_SIZE_0 / (1 << z),
            point_of_origin=[-_ORIGIN, _ORIGIN],
            tile_width=256,
            tile_height=256,
            matrix_width=1 << z,
            matrix_height=1 << z,
        )
        for z in range(svc.MAX_ZOOM + 1)
    ]


@router.get("/ogc/tileMatrixSets", response_model=TileMatrixSetList)
def tile_matrix_sets(request: Request) -> TileMatrixSetList:
    """The tile matrix sets served (WebMercatorQuad)."""
    href = str(request.url_for("tile_matrix_set", tile_matrix_set_id=WEB_MERCATOR_QUAD))
    return TileMatrixSetList(
        tile_matrix_sets=[
            TileMatrixSetRef(
                id=WEB_MERCATOR_QUAD,
                title="Google Maps Compatible for the World",
                uri=_TMS_URI,
                links=[Link(href=href, rel="self", type="application/json")],
            )
        ]
    )


@router.get("/ogc/tileMatrixSets/{tile_matrix_set_id}", response_model=TileMatrixSet)
def tile_matrix_set(
    tile_matrix_set_id: Annotated[str, PathParam(max_length=32)],
) -> TileMatrixSet:
    """The definition of a tile matrix set."""
    if tile_matrix_set_id != WEB_MERCATOR_QUAD:
        raise NotFound(f"没有瓦片矩阵集 {tile_matrix_set_id!r}；可用：{WEB_MERCATOR_QUAD}")
    return TileMatrixSet(
        id=WEB_MERCATOR_QUAD,
        title="Google Maps Compatible for the World",
        uri=_TMS_URI,
        crs=_CRS_3857,
        ordered_axes=["X", "Y"],
        well_known_scale_set="http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        tile_matrices=_matrices(),
    )


def _tileset(request: Request, user: CurrentUser, layer: str) -> TileSet:
    title, _, minzoom, maxzoom = _layer_title(layer)
    base = str(request.base_url).rstrip("/")
    here = f"{base}/ogc/collections/{layer}/tiles/{WEB_MERCATOR_QUAD}"
    return TileSet(
        title=f"{title}（矢量瓦片）",
        crs=_CRS_3857,
        tile_matrix_set_uri=_TMS_URI,
        tile_matrix_set_limits=[
            TileMatrixLimits(
                tile_matrix=str(z),
                min_tile_row=0,
                max_tile_row=(1 << z) - 1,
                min_tile_col=0,
                max_tile_col=(1 << z) - 1,
            )
            for z in range(minzoom, maxzoom + 1)
        ],
        layers=[
            GeospatialData(
                id=name,
                title=svc.LAYERS[name].title,
                description=svc.LAYERS[name].description,
                min_tile_matrix=str(svc.LAYERS[name].minzoom),
                max_tile_matrix=str(svc.LAYERS[name].maxzoom),
                properties_schema={
                    key: {"type": kind.lower()}
                    for key, kind in svc.layer_fields(user, name).items()
                },
            )
            for name in svc.layer_names(layer)
        ],
        links=[
            Link(href=here, rel="self", type="application/json"),
            Link(href=f"{base}/ogc/tileMatrixSets/{WEB_MERCATOR_QUAD}", rel=_TILING_SCHEME),
            Link(
                href=f"{base}/api/v1/tiles/{layer}.json",
                rel="describedby",
                type="application/json",
                title="TileJSON",
            ),
            Link(
                href=f"{here}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}",
                rel="item",
                type=MVT,
                templated=True,
            ),
        ],
    )


@router.get("/ogc/collections/{layer}/tiles", response_model=TileSetList)
def tilesets(request: Request, user: CurrentUser, layer: Layer) -> TileSetList:
    """The tilesets of a collection (one: vector tiles in WebMercatorQuad)."""
    require(user, "area.read")
    return TileSetList(tilesets=[_tileset(request, user, layer)])


@router.get("/ogc/collections/{layer}/tiles/WebMercatorQuad", response_model=TileSet)
def tileset(request: Request, user: CurrentUser, layer: Layer) -> TileSet:
    """The tileset metadata of a collection in WebMercatorQuad."""
    require(user, "area.read")
    return _tileset(request, user, layer)
