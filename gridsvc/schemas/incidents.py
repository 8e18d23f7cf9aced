"""Request bodies of the incident API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geodata.china import Datum
from gridsvc.schemas import Code, LinkOut


class IncidentIn(BaseModel):
    """A report: where (lon/lat in the given datum), what, and who reports it."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(ge=-180, le=180, description="longitude")
    lat: float = Field(ge=-90, le=90, description="latitude")
    datum: Datum = Field(Datum.WGS84, description="datum of lon/lat (gcj02 for AMap, bd09 …)")
    category: str = Field(min_length=1, max_length=64, description="category code or label")
    description: str | None = Field(None, max_length=4000)
    address: str | None = Field(None, max_length=500)
    reporter_kind: Literal["resident", "leader", "grid_worker", "public"] | None = Field(
        None, description="defaults from your role (格长 → leader …)"
    )
    reporter_name: str | None = Field(None, max_length=64)
    reporter_phone: str | None = Field(None, max_length=32)


class TransitionIn(BaseModel):
    """One workflow action; `expected_version` (or If-Match) makes it conditional."""

    model_config = ConfigDict(extra="forbid")

    action: Code = Field(
        description="dispatch, handle, verify, close, return, escalate, park, resume"
    )
    note: str | None = Field(None, max_length=2000)
    to_cell: Code | None = Field(None, description="dispatch: the cell whose team gets the case")
    expected_version: int | None = Field(None, ge=1)


class ConfirmCellIn(BaseModel):
    """Settle a boundary case: its cell, or the neighbour offered."""

    model_config = ConfigDict(extra="forbid")

    cell: Code
    note: str | None = Field(None, max_length=2000)


# -- responses --------------------------------------------------------------------------------

#: A time as the API writes it: ISO 8601 with the zone offset, e.g. 2026-05-01T08:30:00+08:00
#: (kept as the string the database's time was rendered to, so a replayed answer is identical).
IsoTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class IncidentOut(BaseModel):
    """An incident as lists, intake and the workflow steps return it: where it lies (WGS84
    lon/lat), its cell, community and street codes, state, queue and deadlines at request time.

    Who reported it (name, phone) is personal data: present only in the detail, and only for
    roles that may see personal data (the key is absent otherwise, not null)."""

    id: int
    status: str = Field(description="filed, dispatched, handled, verified, closed, returned …")
    category: str
    category_label: str = Field(description="the category's Chinese label")
    urgency: str
    description: str | None
    address: str | None
    lon: float = Field(description="longitude (WGS84)")
    lat: float = Field(description="latitude (WGS84)")
    reporter_kind: str
    reporter_name: str | None = Field(None, description="only for roles seeing personal data")
    reporter_phone: str | None = Field(None, description="only for roles seeing personal data")
    reported_at: IsoTime
    dispatched_at: IsoTime | None
    closed_at: IsoTime | None
    updated_at: IsoTime | None
    dispatch_due_at: IsoTime | None
    close_due_at: IsoTime | None
    due_at: IsoTime | None = Field(
        description="the deadline worked towards now: dispatch until dispatched, then close"
    )
    overdue: bool | None = Field(description="past that deadline while open (at request time)")
    queue: Literal["cell", "community", "street"]
    cell_code: str | None = Field(description="the cell its point was routed to")
    handling_cell_code: str | None = Field(description="the cell whose team works on it")
    community_code: str | None
    street_code: str | None
    assignee: str | None = Field(description="name of the assigned 格长")
    assignee_person_id: int | None
    handling_unit: str | None
    needs_confirmation: bool = Field(description="near a boundary: a cell awaits confirmation")
    suggested_cell_code: str | None = Field(description="the neighbour offered on a boundary")
    boundary_distance_m: float | None
    duplicate_of_id: int | None = Field(description="a possible earlier report of the same")
    source: str | None = Field(description="api, open311 … (null for older cases)")
    version: int = Field(description="the version its ETag names (If-Match)")
    cell_version_id: int | None = Field(description="the cell boundary version it was routed by")


class IncidentEventOut(BaseModel):
    """One step of the workflow record."""

    id: int
    action: str
    from_status: str | None
    to_status: str
    actor: str
    at: IsoTime
    note: str | None
    data: dict[str, Any] | None


class PhotoOut(BaseModel):
    """A photo's metadata (GET …/photos/{id} gives the image)."""

    id: int
    media_type: Literal["image/jpeg", "image/png", "image/webp"]
    size_bytes: int
    width: int
    height: int
    sha256: str


class IncidentPhotoOut(PhotoOut):
    """A photo of an incident, with when it was uploaded."""

    created_at: IsoTime


class IncidentDetailOut(IncidentOut):
    """One incident with its workflow record, photos and the steps you may take now."""

    events: list[IncidentEventOut] = Field(description="oldest first")
    photos: list[IncidentPhotoOut]
    allowed_actions: list[str] = Field(description="the actions you may take on it now")


class IncidentPage(BaseModel):
    """A page of incidents (OGC API-style paging members)."""

    items: list[IncidentOut]
    numberMatched: int
    numberReturned: int
    links: list[LinkOut]


class CategoryOut(BaseModel):
    """An incident category: its deadlines, urgency and handling unit."""

    code: str
    label: str
    description: str | None = None
    dispatch_minutes: int | None = None
    close_minutes: int | None = None
    urgency: str | None = None
    handling_unit: str | None = None
    active: bool
    public: bool


class StatsRowOut(BaseModel):
    """One area and period of the incident statistics; the area's code is under the key named
    by ``by`` (cell, community or street)."""

    cell: str | None = None
    community: str | None = None
    street: str | None = None
    name: str | None = None
    period: str | None = None
    reported: int
    closed: int
    closed_on_time: int
    open: int
    parked: int
    overdue_open: int
    overdue_dispatch: int
    closure_rate: float | None = None
    on_time_closure_rate: float | None = None
    avg_minutes_to_dispatch: float | None = None
    avg_hours_to_close: float | None = None


class StatsOut(BaseModel):
    """The incident statistics (JSON; format=csv gives the rows as CSV)."""

    by: Literal["cell", "community", "street"]
    period: str
    as_of: str
    definitions: dict[str, str]
    rows: list[StatsRowOut]
