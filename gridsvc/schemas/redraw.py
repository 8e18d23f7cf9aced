"""Request and response bodies of redraws (preview/commit), history and proposals."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

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
