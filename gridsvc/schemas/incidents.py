"""Request bodies of the incident API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from geodata.china import Datum
from gridsvc.schemas import Code


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
