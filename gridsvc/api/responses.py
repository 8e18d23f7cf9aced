"""Response helpers: GeoJSON text straight from SQL, with OGC-style paging members."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from gridsvc.repositories.geojson import feature_collection

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


def geojson_page(
    request: Request, features_json: str, *, total: int, limit: int, offset: int, returned: int
) -> Response:
    """A FeatureCollection response with numberMatched/numberReturned and links."""
    body = feature_collection(
        features_json,
        numberMatched=total,
        numberReturned=returned,
        links=paging_links(request, limit, offset, total),
    )
    return Response(body, media_type=GEOJSON)


def count_features(features_json: str) -> int:
    """How many features a JSON array text holds (cheap: counts top-level objects)."""
    import json

    return len(json.loads(features_json)) if features_json != "[]" else 0


GEOJSON_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {GEOJSON: {}}, "description": "GeoJSON (RFC 7946)"}
}
