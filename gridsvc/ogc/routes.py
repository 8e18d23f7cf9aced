"""OGC API – Features routes under /ogc: parse the request (format, paging, bbox, datetime,
CRS, filters), call :mod:`gridsvc.ogc.items`, render GeoJSON or an HTML page.

Authentication is the API's: ``Authorization: Bearer <token>`` (a desktop GIS sends it as a
configured header; ``gridsvc users token`` mints a long-lived one) or the web session cookie.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gridsvc.api.deps import SESSION_COOKIE, CurrentUser, SessionDep
from gridsvc.api.responses import (
    GEOJSON,
    GEOJSON_FEATURE_RESPONSE,
    GEOJSON_RESPONSE,
    GeoJSONResponse,
)
from gridsvc.auth.principal import Principal
from gridsvc.domain import MAX_CODE, MAX_NAME, MAX_TEXT, USER_ROLES
from gridsvc.errors import BadQueryParameter, NotFound
from gridsvc.ogc import editing
from gridsvc.ogc import items as item_service
from gridsvc.ogc import links as ogc_links
from gridsvc.ogc.collections import COLLECTIONS, Collection
from gridsvc.ogc.crs import CRS84, SUPPORTED, bbox_to_lonlat, parse_crs
from gridsvc.ogc.schemas import (
    CollectionOut,
    CollectionsOut,
    Conformance,
    Extent,
    LandingPage,
    Link,
    SpatialExtent,
    TemporalExtent,
)
from gridsvc.security import csrf_token_for
from gridsvc.settings import get_settings

#: Longest value of each query parameter the OGC routes parse themselves (the OpenAPI document
#: shows these; :func:`_bounded_query` enforces them). Property filters (?name=value) get
#: MAX_NAME.
_QUERY_LIMITS: dict[str, int] = {
    "f": MAX_CODE,
    "crs": MAX_CODE,
    "bbox-crs": MAX_CODE,
    "limit": MAX_CODE,
    "after": MAX_CODE,
    "before": MAX_CODE,
    "bbox": MAX_NAME,
    "datetime": MAX_NAME,
}


def _bounded_query(request: Request) -> None:
    """Refuse (400) a query parameter longer than its limit, before anything parses it."""
    for name, value in request.query_params.multi_items():
        limit = _QUERY_LIMITS.get(name, MAX_NAME)
        if len(name) > MAX_CODE or len(value) > limit:
            raise BadQueryParameter(f"参数 {name[:MAX_CODE]} 过长（最多 {limit} 个字符）")


router = APIRouter(prefix="/ogc", tags=["ogc"], dependencies=[Depends(_bounded_query)])
#: Path parameters: a collection's id and a feature's id (a code or a number).
CollectionId = Annotated[str, PathParam(max_length=MAX_CODE)]
FeatureId = Annotated[str, PathParam(max_length=MAX_CODE)]
_templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")

JSON = "application/json"
HTML = "text/html"
#: Query parameters of /items that are not property filters.
_ITEMS_PARAMETERS = {"f", "limit", "after", "before", "bbox", "bbox-crs", "datetime", "crs"}


def _parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": _QUERY_LIMITS[name]},
        "description": description,
    }


_F = _parameter("f", "json（默认）或 html；浏览器的 Accept: text/html 也得到网页")
_CRS = _parameter("crs", "输出坐标系 URI（默认 CRS84；EPSG:4326/4490 纬度在前）")
#: The query parameters of /items as the OpenAPI document shows them: parsed by the route
#: itself (strings), so that a bad value is the OGC API's 400, not FastAPI's 422.
_ITEMS_PARAMETERS_DOC = {
    "parameters": [
        _F,
        _parameter("limit", "每页要素数（默认 100，最多 GRIDSVC_OGC_MAX_LIMIT）"),
        _parameter("after", "从此要素编号之后开始（next 链接使用）"),
        _parameter("before", "到此要素编号之前为止（prev 链接使用）"),
        _parameter("bbox", "范围：最小x,最小y,最大x,最大y（按 bbox-crs 的坐标轴顺序）"),
        _parameter("bbox-crs", "bbox 的坐标系 URI（默认 CRS84）"),
        _parameter("datetime", "时刻或时间段（RFC 3339，a/b，.. 表示不限）"),
        _CRS,
    ]
}
_HTML_ALTERNATIVE = {"content": {HTML: {"schema": {"type": "string"}}}}


def _documented(model: Any, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": description, **_HTML_ALTERNATIVE}}


def _wants_html(request: Request) -> bool:
    """f=html, or a browser's Accept header (text/html before any JSON type)."""
    f = request.query_params.get("f")
    if f is not None:
        if f not in ("json", "html", "geojson"):
            raise BadQueryParameter(f"f={f!r} 不受支持；可用 json、html")
        return f == "html"
    accept = request.headers.get("accept", "")
    return HTML in accept and "json" not in accept.split(HTML)[0]


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _collection(collection_id: str) -> Collection:
    collection = COLLECTIONS.get(collection_id)
    if collection is None:
        raise NotFound(f"没有集合 {collection_id!r}；可用：{'、'.join(COLLECTIONS)}")
    return collection


def _page(request: Request, user: Principal, name: str, **context: Any) -> HTMLResponse:
    return _templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "role_label": USER_ROLES.get(user.role, user.role),
            "css": [],
            "js": [],
            # The sign-out form in the header needs the session's CSRF token (web sign-in).
            "csrf_token": csrf_token_for(cookie)
            if (cookie := request.cookies.get(SESSION_COOKIE))
            else "",
            **context,
        },
    )


@router.get(
    "",
    response_model=LandingPage,
    summary="OGC API 首页",
    responses=_documented(LandingPage, "landing page"),
    openapi_extra={"parameters": [_F]},
)
def landing(request: Request, user: CurrentUser) -> Any:
    """The landing page: links to the API definition, conformance and the collections."""
    root = _root(request)
    page = LandingPage(
        title="gridsvc 网格化管理 OGC API",
        description="社区、网格、楼栋、住户、事件、志愿者与道路图层（OGC API – Features），"
        "按登录用户的辖区与权限筛选、脱敏。",
        links=[
            Link(href=root, rel="self", type=JSON, title="本页"),
            Link(href=f"{root}?f=html", rel="alternate", type=HTML, title="本页（网页）"),
            Link(
                href=str(request.base_url) + "openapi.json",
                rel="service-desc",
                type="application/vnd.oai.openapi+json;version=3.0",
                title="API 定义（OpenAPI）",
            ),
            Link(
                href=str(request.base_url) + "docs", rel="service-doc", type=HTML, title="API 文档"
            ),
            Link(href=f"{root}/conformance", rel="conformance", type=JSON, title="符合的标准类"),
            Link(href=f"{root}/collections", rel="data", type=JSON, title="图层（集合）"),
            *[
                Link(**{**link, "href": root + link["href"]})
                for link in ogc_links.EXTRA_LANDING_LINKS
            ],
        ],
    )
    if _wants_html(request):
        return _page(request, user, "ogc_landing.html", page=page)
    return page


@router.get(
    "/conformance",
    response_model=Conformance,
    response_model_by_alias=True,
    responses=_documented(Conformance, "conformance classes"),
    openapi_extra={"parameters": [_F]},
)
def conformance(request: Request, user: CurrentUser) -> Any:
    """The conformance classes that hold."""
    body = Conformance(conformsTo=ogc_links.conformance())
    if _wants_html(request):
        return _page(request, user, "ogc_landing.html", conformance=body.conforms_to)
    return body


def _describe(
    request: Request, user: Principal, collection: Collection, bbox: list[float] | None
) -> CollectionOut:
    root = _root(request)
    base = f"{root}/collections/{collection.id}"
    temporal = None
    if collection.temporal is not None:
        temporal = TemporalExtent(interval=[[None, None]])
    return CollectionOut(
        id=collection.id,
        title=collection.title,
        description=collection.description,
        links=[
            Link(href=base, rel="self", type=JSON, title=collection.title),
            Link(href=f"{base}?f=html", rel="alternate", type=HTML, title=collection.title),
            Link(href=f"{base}/items", rel="items", type=GEOJSON, title=f"{collection.title}要素"),
            Link(href=f"{base}/items?f=html", rel="items", type=HTML, title="要素（网页）"),
            *[
                Link(**{**link, "href": root + link["href"]})
                for extra in ogc_links.EXTRA_COLLECTION_LINKS
                for link in extra(collection.id)
            ],
        ],
        extent=Extent(spatial=SpatialExtent(bbox=[bbox]) if bbox else None, temporal=temporal),
        crs=[c.uri for c in SUPPORTED],
        storageCrs=CRS84.uri,
        filterableProperties=item_service.filterable(collection, user),
    )


@router.get(
    "/collections",
    response_model=CollectionsOut,
    response_model_by_alias=True,
    responses=_documented(CollectionsOut, "collections"),
    openapi_extra={"parameters": [_F]},
)
def collections(request: Request, session: SessionDep, user: CurrentUser) -> Any:
    """The layers the signed-in user may read."""
    bbox = item_service.scope_extent(session, user)
    readable = [c for c in COLLECTIONS.values() if item_service.may_read(user, c)]
    body = CollectionsOut(
        links=[
            Link(href=f"{_root(request)}/collections", rel="self", type=JSON, title="图层"),
            Link(href=f"{_root(request)}/collections?f=html", rel="alternate", type=HTML),
        ],
        collections=[_describe(request, user, c, bbox) for c in readable],
    )
    if _wants_html(request):
        return _page(request, user, "ogc_landing.html", collections=body.collections)
    return body


@router.get(
    "/collections/{collection_id}",
    response_model=CollectionOut,
    response_model_by_alias=True,
    responses=_documented(CollectionOut, "collection"),
    openapi_extra={"parameters": [_F]},
)
def collection(
    collection_id: CollectionId, request: Request, session: SessionDep, user: CurrentUser
) -> Any:
    """One layer's description: links, extent, CRS list, filterable properties."""
    found = _collection(collection_id)
    item_service.require_read(user, found)
    body = _describe(request, user, found, item_service.scope_extent(session, user))
    if _wants_html(request):
        return _page(request, user, "ogc_landing.html", collections=[body])
    return body


def _float_list(raw: str, parameter: str) -> list[float]:
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError as exc:
        raise BadQueryParameter(f"{parameter} 须为逗号分隔的数字") from exc
    if not all(math.isfinite(v) for v in values):
        raise BadQueryParameter(f"{parameter} 须为有限的数")
    if len(values) not in (4, 6):
        raise BadQueryParameter(f"{parameter} 须有 4 个（或 6 个）数")
    return values


def _query(request: Request, collection: Collection) -> item_service.ItemsQuery:
    params = request.query_params
    app = get_settings().app
    limit = app.default_page_size
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError as exc:
            raise BadQueryParameter("limit 须为正整数") from exc
        if limit < 1:
            raise BadQueryParameter("limit 须为正整数")
        limit = min(limit, app.ogc_max_limit)  # OGC: a larger limit is served at the maximum
    bbox = None
    if "bbox" in params:
        values = _float_list(params["bbox"], "bbox")
        bbox = bbox_to_lonlat(values, parse_crs(params.get("bbox-crs"), "bbox-crs"))
        if bbox[0] > bbox[2] or bbox[1] > bbox[3]:
            raise BadQueryParameter("bbox 的最小值大于最大值")
    elif "bbox-crs" in params:
        parse_crs(params["bbox-crs"], "bbox-crs")
    when = None
    if "datetime" in params:
        when = item_service.parse_datetime(params["datetime"], instant_only=collection.instant_only)
    filters = {k: v for k, v in params.items() if k not in _ITEMS_PARAMETERS}
    if "after" in params and "before" in params:
        raise BadQueryParameter("after 与 before 只能给一个")
    return item_service.ItemsQuery(
        limit=limit,
        after=params.get("after"),
        before=params.get("before"),
        bbox=bbox,
        when=when,
        filters=filters,
        crs=parse_crs(params.get("crs")),
    )


def _crs_headers(uri: str) -> dict[str, str]:
    return {"Content-Crs": f"<{uri}>"}


@router.get(
    "/collections/{collection_id}/items",
    responses={200: {**GEOJSON_RESPONSE[200], **_HTML_ALTERNATIVE}},
    response_class=GeoJSONResponse,
    openapi_extra=_ITEMS_PARAMETERS_DOC,
)
def collection_items(
    collection_id: CollectionId, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    """Features of a layer (GeoJSON or HTML): limit, keyset next/prev, bbox (+bbox-crs),
    datetime, crs, and ``?property=value`` filters; numberMatched up to a cap."""
    found = _collection(collection_id)
    query = _query(request, found)
    page = item_service.items(session, user, found, query)
    html = _wants_html(request)
    url = request.url.remove_query_params(["after", "before"])
    own = "html" if html else "json"
    links = [
        {"href": str(request.url), "rel": "self", "type": HTML if html else GEOJSON},
        {
            "href": str(url.include_query_params(f="json" if html else "html")),
            "rel": "alternate",
            "type": GEOJSON if html else HTML,
        },
        {"href": f"{_root(request)}/collections/{found.id}", "rel": "collection", "type": JSON},
    ]
    if page.next_after is not None:
        href = url.include_query_params(after=page.next_after, limit=query.limit)
        if "f" in request.query_params:
            href = href.include_query_params(f=own)
        links.append({"href": str(href), "rel": "next", "type": HTML if html else GEOJSON})
    if page.prev_before is not None:
        href = url.include_query_params(before=page.prev_before, limit=query.limit)
        links.append({"href": str(href), "rel": "prev", "type": HTML if html else GEOJSON})
    if html:
        return _page(
            request,
            user,
            "ogc_items.html",
            collection=found,
            rows=page.properties,
            number_matched=page.number_matched,
            links={link["rel"]: link["href"] for link in links},
        )
    members: dict[str, Any] = {
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if page.number_matched is not None:
        members["numberMatched"] = page.number_matched
    members["numberReturned"] = len(page.features)
    members["links"] = links
    body = (
        '{"type": "FeatureCollection", "features": ['
        + ", ".join(page.features)
        + "], "
        + json.dumps(members, ensure_ascii=False)[1:]
    )
    return Response(body, media_type=GEOJSON, headers=_crs_headers(query.crs.uri))


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    responses={200: {**GEOJSON_FEATURE_RESPONSE[200], **_HTML_ALTERNATIVE}},
    response_class=GeoJSONResponse,
    openapi_extra={"parameters": [_F, _CRS]},
)
def collection_item(
    collection_id: CollectionId,
    feature_id: FeatureId,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
) -> Response:
    """One feature by id (GeoJSON or HTML), in the requested crs."""
    found = _collection(collection_id)
    unknown = set(request.query_params) - {"f", "crs"}
    if unknown:
        raise BadQueryParameter(f"不支持的参数：{'、'.join(sorted(unknown))}")
    crs = parse_crs(request.query_params.get("crs"))
    feature, properties = item_service.item(session, user, found, feature_id, crs)
    if _wants_html(request):
        return _page(request, user, "ogc_item.html", collection=found, row=properties)
    headers = _crs_headers(crs.uri)
    if found.id == "cells":  # what If-Match must name to edit it (Part 4)
        headers["ETag"] = editing.cell_etag(session, user, feature_id)
    base = f"{_root(request)}/collections/{found.id}"
    links = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON},
        {"href": f"{base}/items/{feature_id}?f=html", "rel": "alternate", "type": HTML},
        {"href": base, "rel": "collection", "type": JSON},
    ]
    body = feature[:-1] + ', "links": ' + json.dumps(links, ensure_ascii=False) + "}"
    return Response(body, media_type=GEOJSON, headers=headers)


# -- Part 4: editing the cells collection (each write a redraw: gridsvc.ogc.editing) ----------

_FEATURE_BODY = Body(
    description="GeoJSON Feature: the cell's boundary (Polygon); properties.reason (why, for "
    "the audit log; or the reason query parameter); POST also properties.community_code and "
    "name"
)
_REASON = Query(max_length=MAX_TEXT, description="why (the audit log); or properties.reason")


def _allow(*methods: str) -> Response:
    return Response(status_code=204, headers={"Allow": ", ".join(methods)})


@router.options("/collections/{collection_id}/items", status_code=204)
def items_options(collection_id: CollectionId, user: CurrentUser) -> Response:
    """What the signed-in user may do with the collection's items (POST: cells, staff)."""
    found = _collection(collection_id)
    methods = ["GET", "OPTIONS"]
    if found.id == "cells" and editing.may_edit(user):
        methods.insert(1, "POST")
    return _allow(*methods)


@router.options("/collections/{collection_id}/items/{feature_id}", status_code=204)
def item_options(collection_id: CollectionId, feature_id: FeatureId, user: CurrentUser) -> Response:
    """What the signed-in user may do with one feature (PUT/PATCH/DELETE: cells, staff)."""
    found = _collection(collection_id)
    methods = ["GET", "OPTIONS"]
    if found.id == "cells" and editing.may_edit(user):
        methods[1:1] = ["PUT", "PATCH", "DELETE"]
    return _allow(*methods)


@router.post(
    "/collections/cells/items",
    status_code=201,
    response_model=None,
    response_class=Response,
    responses={
        201: {
            "description": "the cell was created; its URL is in Location, no body (OGC API "
            "Features Part 4)",
            "headers": {
                "Location": {
                    "description": "URL of the new cell (…/collections/cells/items/{code})",
                    "schema": {"type": "string", "format": "uri"},
                },
                "ETag": {
                    "description": "the community's boundary version, for If-Match on a "
                    "later PUT, PATCH or DELETE",
                    "schema": {"type": "string"},
                },
            },
        }
    },
)
def create_cell(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    feature: Annotated[dict[str, Any], _FEATURE_BODY],
    reason: Annotated[str | None, _REASON] = None,
) -> Response:
    """Create a cell over a gap of a community (the redraw ``create``); 201 with Location."""
    edited = editing.create(session, user, feature, reason=reason)
    location = f"{_root(request)}/collections/cells/items/{edited.code}"
    return Response(status_code=201, headers={"Location": location, "ETag": edited.etag})


def _replace(
    session: Any,
    user: Principal,
    feature_id: FeatureId,
    feature: dict[str, Any],
    reason: str | None,
    if_match: str | None,
    *,
    partial: bool,
) -> Response:
    edited = editing.replace_geometry(
        session, user, feature_id, feature, reason=reason, if_match=if_match, partial=partial
    )
    return Response(status_code=204, headers={"ETag": edited.etag})


_IF_MATCH = Header(max_length=MAX_CODE, description="the ETag of the cell (GET …/items/{code})")


@router.put("/collections/cells/items/{feature_id}", status_code=204, response_model=None)
def replace_cell(
    feature_id: FeatureId,
    session: SessionDep,
    user: CurrentUser,
    feature: Annotated[dict[str, Any], _FEATURE_BODY],
    if_match: Annotated[str | None, _IF_MATCH] = None,
    reason: Annotated[str | None, _REASON] = None,
) -> Response:
    """Give the cell a new boundary (the redraw ``reshape``); 428 without If-Match, 409 when
    the community changed since that ETag."""
    return _replace(session, user, feature_id, feature, reason, if_match, partial=False)


@router.patch("/collections/cells/items/{feature_id}", status_code=204, response_model=None)
def update_cell(
    feature_id: FeatureId,
    session: SessionDep,
    user: CurrentUser,
    feature: Annotated[dict[str, Any], _FEATURE_BODY],
    if_match: Annotated[str | None, _IF_MATCH] = None,
    reason: Annotated[str | None, _REASON] = None,
) -> Response:
    """Change only the cell's boundary (the same reshape as PUT)."""
    return _replace(session, user, feature_id, feature, reason, if_match, partial=True)


@router.delete("/collections/cells/items/{feature_id}", status_code=204, response_model=None)
def delete_cell(
    feature_id: FeatureId,
    session: SessionDep,
    user: CurrentUser,
    merge_into: Annotated[
        str | None,
        Query(max_length=MAX_CODE, description="the neighbour the cell is merged into"),
    ] = None,
    if_match: Annotated[str | None, _IF_MATCH] = None,
    reason: Annotated[str | None, _REASON] = None,
) -> Response:
    """Remove the cell by merging it into the neighbour ``merge_into`` (the redraw merge: a new
    cell replaces both; Location names it); 409 without one (a gap would be left), 428 without
    If-Match, 409 when the community changed since that ETag."""
    edited = editing.delete(
        session, user, feature_id, merge_into=merge_into, reason=reason, if_match=if_match
    )
    return Response(
        status_code=204,
        headers={"ETag": edited.etag, "Location": f"/ogc/collections/cells/items/{edited.code}"},
    )
