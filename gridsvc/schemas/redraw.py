"""Request and response bodies of redraws (preview/commit), history and proposals."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geodata.china import Datum
from gridsvc.domain import MAX_TEXT
from gridsvc.schemas import Code, Name


class _Redraw(BaseModel):
    reason: str = Field(
        min_length=1, max_length=MAX_TEXT, description="why (goes into the audit log)"
    )
    datum: Datum = Field(Datum.WGS84, description="datum of the coordinates sent")


class ReshapeIn(_Redraw):
    """Give a cell a new boundary."""

    op: Literal["reshape"]
    cell: Code
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon")
    trim_neighbours: bool = Field(True, description="trim overlapped neighbours, else refuse")


class SplitIn(_Redraw):
    """Split a cell by a line across it, or by a set of its buildings."""

    op: Literal["split"]
    cell: Code
    line: dict[str, Any] | None = Field(None, description="GeoJSON LineString")
    buildings: list[int] | None = Field(None, description="ids of buildings forming one part")


class MergeIn(_Redraw):
    """Merge adjacent cells."""

    op: Literal["merge"]
    cells: list[Code] = Field(min_length=2)


class MoveBuildingsIn(_Redraw):
    """Move buildings to an adjacent cell (the boundaries follow)."""

    op: Literal["move_buildings"]
    buildings: list[int] = Field(min_length=1)
    to_cell: Code


class CreateIn(_Redraw):
    """Create a cell over a gap."""

    op: Literal["create"]
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon")
    name: Name | None = None


class RevertIn(_Redraw):
    """Bring back an earlier version of a cell's boundary."""

    op: Literal["revert"]
    cell: Code
    version: int = Field(ge=1)
    trim_neighbours: bool = False


class ProposalIn(_Redraw):
    """Replace all cells of the community by a proposal (FeatureCollection of polygons)."""

    op: Literal["proposal"]
    cells: dict[str, Any]


RedrawIn = Annotated[
    ReshapeIn | SplitIn | MergeIn | MoveBuildingsIn | CreateIn | RevertIn | ProposalIn,
    Field(discriminator="op"),
]


class RedrawOut(BaseModel):
    """The impact of a redraw (preview) or what it did (commit)."""

    committed: bool
    revision: int
    etag: str
    impact: dict[str, Any]


class ProposalRequest(BaseModel):
    """Parameters of an automatic partition."""

    target: int = Field(300, ge=10, le=5000, description="households per cell")
    band_min: int = Field(200, ge=1)
    band_max: int = Field(500, ge=2)
    seed: int = 0
    keep_current: bool = Field(
        False, description="start from today's cells and move only what the band requires"
    )


# -- responses of validation, history and proposals -------------------------------------------
class GeoJSONGeometryOut(BaseModel):
    """A GeoJSON geometry (RFC 7946, WGS84 lon/lat). Open on purpose: a Polygon carries
    `coordinates`, a GeometryCollection (a diff can be one) `geometries`."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["Polygon"])


class ProblemPropertiesOut(BaseModel):
    """One thing wrong with a community's cells (a gap, an overlap, a sliver …)."""

    kind: str
    label: str = Field(description="the kind in Chinese (缝隙, 重叠 …)")
    cells: list[str]
    detail: str
    area_m2: float | None = None
    building: str | None = None
    location: list[float] | None = Field(None, description="a point inside it (lon, lat)")


class ValidationOut(BaseModel):
    """The validation report of a community's cells (format=json)."""

    ok: bool
    counts: dict[str, int] = Field(description="problems per kind, zeros included")
    problems: list[ProblemPropertiesOut]
    cells_checked: int
    tolerance_m: float
    min_area_m2: float


class ProblemFeatureOut(BaseModel):
    """A located problem as a GeoJSON Feature."""

    type: Literal["Feature"] = "Feature"
    geometry: GeoJSONGeometryOut
    properties: ProblemPropertiesOut


class ProblemCollectionOut(BaseModel):
    """The located problems as a GeoJSON FeatureCollection (format=geojson), to draw."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[ProblemFeatureOut]


class ChangeOut(BaseModel):
    """One redraw in the audit record: who, when, why, the request and its impact."""

    id: int
    kind: str
    reason: str | None = None
    changed_by: str | None = None
    changed_at: datetime
    revision: int | None = None
    request: dict[str, Any] | None = Field(None, description="the redraw request as sent")
    impact: dict[str, Any] | None = Field(None, description="what the redraw changed")


class ChangesOut(BaseModel):
    """A community's redraws, newest first, paged."""

    number_matched: int
    items: list[ChangeOut]


class VersionOut(BaseModel):
    """One boundary version of a cell."""

    version: int
    valid_from: datetime
    valid_to: datetime | None = None
    reason: str | None = None
    changed_by: str | None = None
    change_id: int | None = None
    area_m2: float


class VersionsOut(BaseModel):
    """Every boundary version of a cell (oldest first) with its lineage."""

    cell: str
    parents: list[str] = Field(description="cells this one was made from")
    children: list[str] = Field(description="cells made from this one")
    versions: list[VersionOut]


class DiffBuildingOut(BaseModel):
    """A building whose majority side changed between two versions."""

    id: int
    name: str | None = None
    households: int


class DiffOut(BaseModel):
    """What changed between two versions of a cell."""

    model_config = ConfigDict(populate_by_name=True)

    from_version: int = Field(alias="from")
    to: int
    gained_m2: float
    lost_m2: float
    gained: GeoJSONGeometryOut | None = None
    lost: GeoJSONGeometryOut | None = None
    buildings_gained: list[DiffBuildingOut]
    buildings_lost: list[DiffBuildingOut]


class ProposalSummaryOut(BaseModel):
    """Figures of a proposed partition."""

    cells: int
    households: int
    buildings: int
    target: int | None = None
    band: list[int]
    min_households: int
    max_households: int
    mean_households: float
    in_band: int
    share_in_band: float
    share_in_band_divisible: float
    mean_polsby_popper: float
    min_polsby_popper: float
    out_of_band_reasons: dict[str, int]


class ProposedCellOut(BaseModel):
    """A proposed cell as a GeoJSON Feature; its properties are the partition's columns
    (households, compactness, in_band, reason …), open on purpose."""

    type: Literal["Feature"] = "Feature"
    geometry: GeoJSONGeometryOut
    properties: dict[str, Any]


class ProposalOut(BaseModel):
    """A balanced partition of a community (自动划格), not committed."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[ProposedCellOut]
    summary: ProposalSummaryOut
    target: int | None = None
    band: list[int]
