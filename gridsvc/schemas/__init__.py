"""Pydantic models of the API's JSON bodies (GeoJSON is built in SQL, not here)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridsvc.domain import MAX_ADDRESS, MAX_CODE, MAX_NAME, MAX_TEXT

#: Request strings, bounded by kind (gridsvc.domain); every request string uses one of these
#: or its own max_length (tests/gridsvc/test_limits.py walks the OpenAPI document).
Code = Annotated[str, Field(max_length=MAX_CODE)]
Name = Annotated[str, Field(max_length=MAX_NAME)]
Address = Annotated[str, Field(max_length=MAX_ADDRESS)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]


class HealthOut(BaseModel):
    """Service health."""

    status: str
    database: str
    postgis: str


class TokenOut(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: str = "bearer"


class MeOut(BaseModel):
    """The signed-in user."""

    username: str
    role: str
    scope: str
    street_id: int | None = None
    community_id: int | None = None
    cell_id: int | None = None


class HouseholdOut(BaseModel):
    """A household (户) with its flags; personal fields may be masked."""

    id: int
    building_id: int
    building_name: str | None = None
    unit: str | None = None
    room: str | None = None
    size: int
    head_name: str | None = None
    phone: str | None = None
    low_income: bool | None = Field(description="低保 (null when masked)")
    elderly_alone: bool | None = Field(description="空巢/独居老人 (null when masked)")
    disabled: bool | None = Field(description="残疾 (null when masked)")
    extreme_poverty: bool | None = Field(description="特困 (null when masked)")
    floating: bool | None = Field(description="流动人口 (null when masked)")
    rental: bool | None = Field(description="出租房屋 (null when masked)")


class HouseholdPage(BaseModel):
    """A page of households."""

    items: list[HouseholdOut]
    number_matched: int
    number_returned: int
    limit: int
    offset: int


class CellLookup(BaseModel):
    """Where a point lies: its cell (None outside every cell) and community."""

    lon: float
    lat: float
    cell_code: str | None
    cell_name: str | None
    community_code: str | None


class RepairNoteOut(BaseModel):
    """A geometry that was repaired or rejected."""

    index: int
    source_id: str | None = None
    action: str
    reason: str


class MoveGroupOut(BaseModel):
    """How many buildings (with their households) or incidents go from one place to another."""

    what: Literal["building", "incident"]
    from_community: str | None
    from_cell: str | None
    to_community: str | None
    to_cell: str | None
    count: int
    households: int


class MovedItemOut(BaseModel):
    """One building or incident that changes community or cell."""

    what: Literal["building", "incident"]
    id: int
    source_id: str | None
    households: int
    from_community: str | None
    from_cell: str | None
    to_community: str | None
    to_cell: str | None


class MovesOut(BaseModel):
    """What an import moves to another community or cell (refused on commit unless allowed)."""

    moved_buildings: int
    moved_households: int
    moved_incidents: int
    newly_assigned: int
    groups: list[MoveGroupOut]
    items: list[MovedItemOut] = Field(description="each moved item, with show_moves=true")


class ImportResult(BaseModel):
    """What an import or a cell creation did."""

    kind: str
    source: str
    features_read: int
    repaired: list[RepairNoteOut] = []
    rejected: list[RepairNoteOut] = []
    inserted: int
    updated: int
    estimated_households: int = 0
    households_total: int = 0
    assigned_to_cells: int = 0
    not_in_any_cell: int = 0
    outside_communities: int = 0
    codes: list[str] = Field(default=[], description="codes of the areas or cells created")
    committed: bool
    fields: dict[str, str] = Field(default={}, description="role → the column it was read from")
    schema_name: str | None = Field(default=None, description="the schema recognised")
    warnings: list[str] = []
    moves: MovesOut | None = None

    model_config = {"extra": "ignore"}

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)


class GeometryOut(BaseModel):
    """A GeoJSON geometry (RFC 7946), coordinates in WGS84 longitude/latitude."""

    type: str = Field(examples=["MultiPolygon"])
    coordinates: list[Any]


class FeatureOut(BaseModel):
    """A GeoJSON Feature; `id` is the cell code or building id."""

    type: str = Field("Feature", examples=["Feature"])
    id: str | int
    geometry: GeometryOut | None
    properties: dict[str, Any]


class LinkOut(BaseModel):
    """A paging link (self, next, prev)."""

    rel: str
    href: str


class FeatureCollectionOut(BaseModel):
    """A GeoJSON FeatureCollection, with OGC API-style paging members on paged lists."""

    type: str = Field("FeatureCollection", examples=["FeatureCollection"])
    features: list[FeatureOut]
    numberMatched: int | None = None
    numberReturned: int | None = None
    links: list[LinkOut] | None = None


class ProblemOut(BaseModel):
    """An RFC 9457 problem+json error body; validation errors also list every field error."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class CspViolationOut(BaseModel):
    """One Content-Security-Policy violation a browser reported (each field cut at 300 chars)."""

    directive: str
    blocked: str
    document: str
    sample: str


class CspSummaryOut(BaseModel):
    """CSP violations reported since the server started: the count, per directive, the latest."""

    count: int
    by_directive: dict[str, int]
    recent: list[CspViolationOut]
