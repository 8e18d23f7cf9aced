"""What the OGC API declares: conformance classes and the landing page's links, in one place.

Other OGC building blocks (the Tiles endpoints of the vector-tile work) register here at merge:
append their conformance class URIs to :data:`EXTRA_CONFORMANCE` and their landing links
(``{"rel": ..., "href": path, "type": ..., "title": ...}``, href relative to /ogc) to
:data:`EXTRA_LANDING_LINKS`, and per-collection links to :data:`EXTRA_COLLECTION_LINKS`.
"""

from __future__ import annotations

from collections.abc import Callable

_F1 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"
_F2 = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf"

#: Classes that hold (checked by tests/gridsvc/ogc with GDAL's OAPIF driver and OWSLib).
#: Not declared: oas30 (our OpenAPI document does not describe the OGC query parameters),
#: Part 3 filtering (only simple ``?name=value`` filters), Part 4 create-replace-delete (cells
#: take POST/PUT/PATCH, but no DELETE: see gridsvc.ogc.editing).
CONFORMANCE: list[str] = [
    f"{_F1}/core",
    f"{_F1}/geojson",
    f"{_F1}/html",
    f"{_F2}/crs",
]
#: Classes of other OGC parts served by gridsvc (filled at merge).
EXTRA_CONFORMANCE: list[str] = []
#: Landing-page links of other OGC parts, href relative to /ogc (filled at merge).
EXTRA_LANDING_LINKS: list[dict[str, str]] = []
#: Links added to each collection's description: a function of the collection id giving links
#: with hrefs relative to /ogc (e.g. its tilesets), filled at merge.
EXTRA_COLLECTION_LINKS: list[Callable[[str], list[dict[str, str]]]] = []


def conformance() -> list[str]:
    """Every conformance class gridsvc declares."""
    return [*CONFORMANCE, *EXTRA_CONFORMANCE]
