"""The audit log for staff: every write in their area, with who, when, why, before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from gridsvc.api.deps import CurrentUser, PageDep, SessionDep
from gridsvc.domain import MAX_CODE
from gridsvc.schemas.audit import AuditPage
from gridsvc.services import audit

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit", response_model=AuditPage)
def audit_events(
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    table: Annotated[
        str | None, Query(max_length=MAX_CODE, description="e.g. role_assignment, cell_version")
    ] = None,
    row_id: Annotated[int | None, Query(ge=1)] = None,
    actor: Annotated[str | None, Query(max_length=96)] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> dict[str, Any]:
    """Audit events in your area, newest first (staff; admins also see area-less events)."""
    items, total = audit.events(
        session,
        user,
        table_name=table,
        row_id=row_id,
        actor=actor,
        since=since,
        until=until,
        limit=page.limit,
        offset=page.offset,
    )
    return {
        "items": items,
        "number_matched": total,
        "number_returned": len(items),
        "limit": page.limit,
        "offset": page.offset,
    }
