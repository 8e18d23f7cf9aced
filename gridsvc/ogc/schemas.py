"""Response models of the OGC API documents (landing page, conformance, collections)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Link(BaseModel):
    """A link (OGC API Common): where, how it relates, its media type and title."""

    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class LandingPage(BaseModel):
    """GET /ogc."""

    title: str
    description: str
    links: list[Link]


class Conformance(BaseModel):
    """GET /ogc/conformance."""

    model_config = ConfigDict(populate_by_name=True)

    conforms_to: list[str] = Field(alias="conformsTo")


class SpatialExtent(BaseModel):
    """A collection's lon/lat box (CRS84)."""

    bbox: list[list[float]]
    crs: str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


class TemporalExtent(BaseModel):
    """A collection's time span (open ends: null)."""

    interval: list[list[str | None]]
    trs: str = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"


class Extent(BaseModel):
    """Spatial and (when the collection has time) temporal extent."""

    spatial: SpatialExtent | None = None
    temporal: TemporalExtent | None = None


class CollectionOut(BaseModel):
    """GET /ogc/collections/{id}: one layer's description."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    title: str
    description: str
    links: list[Link]
    extent: Extent | None = None
    item_type: str = Field("feature", alias="itemType")
    crs: list[str]
    storage_crs: str = Field(alias="storageCrs")
    #: Properties usable as ``?name=value`` filters by this user (gridsvc extension).
    filterable_properties: list[str] = Field(alias="filterableProperties")


class CollectionsOut(BaseModel):
    """GET /ogc/collections."""

    links: list[Link]
    collections: list[CollectionOut]
