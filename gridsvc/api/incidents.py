"""Routes of incidents: intake, lists, the workflow, photos, statistics (thin: services do it)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any, Literal

import shapely
from fastapi import APIRouter, Body, Depends, File, Header, Query, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from geodata.china import convert_geometries
from gridsvc.api.deps import CurrentUser, PageDep, SessionDep
from gridsvc.api.idempotency import IdempotencyHeader, once
from gridsvc.api.responses import paging_links
from gridsvc.auth.policy import require
from gridsvc.domain import MAX_CODE
from gridsvc.errors import InvalidInput, TooLarge
from gridsvc.schemas import Code
from gridsvc.schemas.incidents import (
    CategoryOut,
    ConfirmCellIn,
    IncidentDetailOut,
    IncidentIn,
    IncidentOut,
    IncidentPage,
    PhotoOut,
    StatsOut,
    TransitionIn,
)
from gridsvc.services import incidents as svc
from gridsvc.services.clock import Clock, get_clock
from gridsvc.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["incidents"])

ClockDep = Annotated[Clock, Depends(get_clock)]


@router.get("/incident-categories", response_model=list[CategoryOut])
def incident_categories(session: SessionDep, user: CurrentUser) -> list[dict[str, Any]]:
    """The categories: deadlines to dispatch and close, urgency, handling unit."""
    return svc.categories(session)


@router.post(
    "/incidents", status_code=201, response_model=IncidentOut, response_model_exclude_unset=True
)
def report_incident(
    session: SessionDep,
    user: CurrentUser,
    clock: ClockDep,
    body: Annotated[IncidentIn, Body()],
    response: Response,
    idempotency_key: IdempotencyHeader = None,
) -> dict[str, Any]:
    """Report an incident at a point: routed to the cell valid now and its 格长 (flags for
    points near a boundary, outside every cell, and possible duplicates). With an
    Idempotency-Key, a retry gets the first answer instead of a second report."""
    require(user, "incident.report")
    point = convert_geometries(shapely.Point(body.lon, body.lat), body.datum)
    new = svc.NewIncident(
        lon=point.x,
        lat=point.y,
        category=body.category,
        description=body.description,
        address=body.address,
        reporter_kind=body.reporter_kind or svc.default_reporter_kind(user),
        reporter_name=body.reporter_name,
        reporter_phone=body.reporter_phone,
    )
    detail = once(
        session,
        user,
        idempotency_key,
        ("incident.report", body.model_dump(mode="json")),
        response,
        201,
        lambda: svc.report(session, new, actor=svc.Actor.of(user), now=clock.now()),
    )
    response.headers["Location"] = f"/api/v1/incidents/{detail['id']}"
    response.headers["ETag"] = f'"{detail["version"]}"'
    return detail


def _list_param(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v for raw in values or () for v in raw.split(",") if v)


@router.get("/incidents", response_model=IncidentPage, response_model_exclude_unset=True)
def list_incidents(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    clock: ClockDep,
    page: PageDep,
    status: Annotated[list[Code] | None, Query(description="states, comma-separated")] = None,
    category: Annotated[list[Code] | None, Query()] = None,
    cell: Annotated[str | None, Query(max_length=MAX_CODE, description="cell code")] = None,
    community: Annotated[
        str | None, Query(max_length=MAX_CODE, description="community code")
    ] = None,
    street: Annotated[str | None, Query(max_length=MAX_CODE, description="street code")] = None,
    queue: Annotated[Literal["cell", "community", "street"] | None, Query()] = None,
    overdue: Annotated[bool | None, Query()] = None,
    needs_confirmation: Annotated[bool | None, Query()] = None,
    reported_from: Annotated[datetime | None, Query(alias="from")] = None,
    reported_to: Annotated[datetime | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Incidents in your scope, newest first, with their overdue flag at the current time."""
    query = svc.ListQuery(
        status=_list_param(status),
        category=_list_param(category),
        cell=cell,
        community=community,
        street=street,
        queue=queue,
        overdue=overdue,
        needs_confirmation=needs_confirmation,
        reported_from=_aware(reported_from),
        reported_to=_aware(reported_to),
    )
    items, total = svc.list_incidents(
        session, user, query, now=clock.now(), limit=page.limit, offset=page.offset
    )
    return {
        "items": items,
        "numberMatched": total,
        "numberReturned": len(items),
        "links": paging_links(request, page.limit, page.offset, total),
    }


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput("give times with a zone offset, e.g. 2026-05-01T00:00:00+08:00")
    return value


@router.get(
    "/incidents/stats",
    response_model=None,
    responses={
        200: {
            "model": StatsOut,
            "description": "JSON by default; CSV (UTF-8 with BOM, for Excel) with format=csv",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
def incident_stats(
    session: SessionDep,
    user: CurrentUser,
    clock: ClockDep,
    by: Annotated[Literal["cell", "community", "street"], Query()] = "cell",
    period: Annotated[Literal["all", "day", "week", "month", "quarter", "year"], Query()] = "month",
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    street: Annotated[str | None, Query(max_length=MAX_CODE)] = None,
    community: Annotated[str | None, Query(max_length=MAX_CODE)] = None,
    cell: Annotated[str | None, Query(max_length=MAX_CODE)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Closure rate, on-time closure rate (按期结案率), mean time to dispatch and to close,
    overdue counts — per cell, community or street, and per period (JSON or CSV)."""
    result = svc.stats(
        session,
        user,
        by=by,
        period=period,
        now=clock.now(),
        start=_aware(start),
        end=_aware(end),
        street=street,
        community=community,
        cell=cell,
    )
    if format == "json":
        return result
    out = io.StringIO()
    rows = result["rows"]
    columns = list(rows[0]) if rows else [by, "name", "period", "reported"]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        "\ufeff" + out.getvalue(),  # BOM: Excel opens Chinese names correctly
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="incident-stats-{by}.csv"'},
    )


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentDetailOut,
    response_model_exclude_unset=True,
)
def get_incident(
    session: SessionDep, user: CurrentUser, clock: ClockDep, incident_id: int, response: Response
) -> dict[str, Any]:
    """One incident with its workflow record, photos and the actions you may take."""
    detail = svc.get_incident(session, user, incident_id, clock.now())
    response.headers["ETag"] = f'"{detail["version"]}"'
    return detail


def _if_match(value: str | None) -> int | None:
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise InvalidInput(f"If-Match {value!r} is not an incident version ETag")
    return int(raw)


@router.post(
    "/incidents/{incident_id}/transitions",
    response_model=IncidentOut,
    response_model_exclude_unset=True,
)
def transition(
    session: SessionDep,
    user: CurrentUser,
    clock: ClockDep,
    incident_id: int,
    body: Annotated[TransitionIn, Body()],
    response: Response,
    if_match: Annotated[
        str | None, Header(max_length=MAX_CODE, description="ETag of the case you saw")
    ] = None,
    idempotency_key: IdempotencyHeader = None,
) -> dict[str, Any]:
    """Move the case one step (派遣, 处置, 核查, 结案, 退回, 上报, 挂账, 恢复); 409 when its
    state does not allow the step or it changed since the version you name. With an
    Idempotency-Key, a retry gets the first answer instead of a 409 or a second step."""
    expected = _if_match(if_match) if if_match else body.expected_version
    detail = once(
        session,
        user,
        idempotency_key,
        ("incident.act", incident_id, expected, body.model_dump(mode="json")),
        response,
        200,
        lambda: svc.transition(
            session,
            user,
            incident_id,
            body.action,
            now=clock.now(),
            note=body.note,
            expected_version=expected,
            to_cell=body.to_cell,
        ),
    )
    response.headers["ETag"] = f'"{detail["version"]}"'
    return detail


@router.post(
    "/incidents/{incident_id}/confirm-cell",
    response_model=IncidentOut,
    response_model_exclude_unset=True,
)
def confirm_cell(
    session: SessionDep,
    user: CurrentUser,
    clock: ClockDep,
    incident_id: int,
    body: Annotated[ConfirmCellIn, Body()],
) -> dict[str, Any]:
    """Settle a case flagged near a boundary: keep its cell or take the neighbour offered."""
    return svc.confirm_cell(session, user, incident_id, body.cell, now=clock.now(), note=body.note)


@router.post("/incidents/{incident_id}/photos", status_code=201, response_model=PhotoOut)
async def add_photo(
    session: SessionDep,
    user: CurrentUser,
    incident_id: int,
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP")],
) -> dict[str, Any]:
    """Attach a photo (checked by content, not by name; size-limited)."""
    limit = get_settings().incidents.photo_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"a photo may have at most {limit} bytes")
    return await run_in_threadpool(svc.add_photo, session, user, incident_id, data)


@router.get(
    "/incidents/{incident_id}/photos/{photo_id}",
    response_class=Response,
    responses={
        200: {
            "description": "the image, in the type it was checked to be when uploaded",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("image/jpeg", "image/png", "image/webp")
            },
        }
    },
)
def get_photo(session: SessionDep, user: CurrentUser, incident_id: int, photo_id: int) -> Response:
    """The photo itself."""
    data, media = svc.photo(session, user, incident_id, photo_id)
    return Response(data, media_type=media, headers={"X-Content-Type-Options": "nosniff"})
