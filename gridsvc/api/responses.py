"""Response helpers: GeoJSON text straight from SQL, with OGC-style paging members."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from gridsvc.repositories.geojson import feature_collection
from gridsvc.schemas import FeatureCollectionOut, FeatureOut

GEOJSON = "application/geo+json"


def paging_links(request: Request, limit: int, offset: int, total: int) -> list[dict[str, str]]:
    """self/next/prev links for a paged list."""
    links = [{"rel": "self", "href": str(request.url)}]
    if offset + limit < total:
        links.append(
            {
                "rel": "next",
                "href": str(request.url.include_query_params(offset=offset + limit, limit=limit)),
            }
        )
    if offset > 0:
        links.append(
            {
                "rel": "prev",
                "href": str(
                    request.url.include_query_params(offset=max(0, offset - limit), limit=limit)
                ),
            }
        )
    return links


def geojson_page(request: Request, limit: int, offset: int, page: tuple[str, int, int]) -> Response:
    """A FeatureCollection response with numberMatched/numberReturned and paging links.

    `page` is what the repositories return: (features JSON array, returned, matched).
    """
    features, returned, total = page
    body = feature_collection(
        features,
        numberMatched=total,
        numberReturned=returned,
        links=paging_links(request, limit, offset, total),
    )
    return Response(body, media_type=GEOJSON)


class GeoJSONResponse(JSONResponse):
    """JSON served as application/geo+json; as a route's response_class it puts the documented
    model under that media type (the routes themselves return GeoJSON text built in SQL)."""

    media_type = GEOJSON


#: Use with ``response_class=GeoJSONResponse``.
GEOJSON_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"model": FeatureCollectionOut, "description": "GeoJSON FeatureCollection (RFC 7946)"}
}
GEOJSON_FEATURE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"model": FeatureOut, "description": "GeoJSON Feature"}
}
