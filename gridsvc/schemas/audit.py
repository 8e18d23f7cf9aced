"""Response bodies of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEventOut(BaseModel):
    """One write in the audit log: who, when, what row, why, before and after."""

    id: int
    at: datetime
    actor: str
    action: str
    table: str
    row_id: int | None = None
    street_id: int | None = None
    community_id: int | None = None
    cell_id: int | None = None
    reason: str | None = None
    before: dict[str, Any] | None = Field(None, description="the row's fields before the write")
    after: dict[str, Any] | None = Field(None, description="the row's fields after the write")


class AuditPage(BaseModel):
    """One page of audit events, newest first."""

    items: list[AuditEventOut]
    number_matched: int
    number_returned: int
    limit: int
    offset: int
