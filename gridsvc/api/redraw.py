"""Routes for validation, redraws (preview → commit with If-Match), history and proposals."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Response

from gridsvc.api.deps import (
    PageDep,
    ScopedCell,
    ScopedCommunity,
    SessionDep,
    StaffUser,
)
from gridsvc.domain import MAX_CODE
from gridsvc.schemas.redraw import (
    ChangesOut,
    DiffOut,
    ProblemCollectionOut,
    ProposalOut,
    ProposalRequest,
    RedrawIn,
    RedrawOut,
    ValidationOut,
    VersionsOut,
)
from gridsvc.services import history, redraw
from gridsvc.services.validation import validate_community

router = APIRouter(prefix="/api/v1", tags=["redraw"])


@router.get("/communities/{code}/validation", response_model=ValidationOut | ProblemCollectionOut)
def validation(
    session: SessionDep,
    community: ScopedCommunity,
    format: Annotated[Literal["json", "geojson"], Query()] = "json",
    tolerance_m: Annotated[float, Query(ge=0, le=100)] = 0.0,
    sliver_m2: Annotated[float, Query(ge=0, le=100_000)] = 50.0,
) -> dict[str, Any]:
    """Gaps, overlaps, parts outside, split cells, slivers, unassigned buildings, cells without
    a 格长, and household counts outside the band — as data, or as GeoJSON to draw."""
    report = validate_community(session, community, tolerance_m=tolerance_m, sliver_m2=sliver_m2)
    return report.to_geojson() if format == "geojson" else report.as_dict()


def _redraw(
    session: Any,
    user: Any,
    community: Any,
    body: Any,
    *,
    commit: bool,
    if_match: str | None,
    response: Response,
) -> RedrawOut:
    request = body.model_dump(mode="json")
    if commit:
        redraw.lock_revision(session, community, if_match)
    plan = redraw.plan_from_request(session, community, request)
    outcome = redraw.run(
        session,
        community,
        plan,
        request=request,
        reason=body.reason,
        user=user.username,
        commit=commit,
        if_match=if_match,
    )
    etag = redraw.etag_for(community.code, outcome.revision)
    response.headers["ETag"] = etag
    return RedrawOut(
        committed=outcome.committed, revision=outcome.revision, etag=etag, impact=outcome.impact
    )


@router.post("/communities/{code}/redraw/preview", response_model=RedrawOut)
def preview(
    session: SessionDep,
    user: StaffUser,
    community: ScopedCommunity,
    body: Annotated[RedrawIn, Body()],
    response: Response,
) -> RedrawOut:
    """Dry run of a redraw: what would change, nothing written. Send the returned ETag back in
    If-Match to commit exactly this."""
    return _redraw(session, user, community, body, commit=False, if_match=None, response=response)


@router.post("/communities/{code}/redraw/commit", response_model=RedrawOut)
def commit(
    session: SessionDep,
    user: StaffUser,
    community: ScopedCommunity,
    body: Annotated[RedrawIn, Body()],
    response: Response,
    if_match: Annotated[
        str | None, Header(max_length=MAX_CODE, description="ETag from the preview")
    ] = None,
) -> RedrawOut:
    """Apply a previewed redraw; 409 if the community changed since the preview."""
    return _redraw(
        session, user, community, body, commit=True, if_match=if_match, response=response
    )


@router.get("/communities/{code}/changes", response_model=ChangesOut)
def changes(session: SessionDep, community: ScopedCommunity, page: PageDep) -> dict[str, Any]:
    """The audit log of redraws in the community: who, when, why, what (newest first)."""
    return history.changes(session, community.id, limit=page.limit, offset=page.offset)


@router.get("/cells/{code}/versions", response_model=VersionsOut)
def versions(session: SessionDep, cell: ScopedCell) -> dict[str, Any]:
    """Every boundary version of a cell, with its lineage (parents and children)."""
    return history.versions(session, cell.id)


@router.get("/cells/{code}/diff", response_model=DiffOut)
def diff(
    session: SessionDep,
    cell: ScopedCell,
    from_version: Annotated[int, Query(alias="from", ge=1)],
    to_version: Annotated[int, Query(alias="to", ge=1)],
) -> dict[str, Any]:
    """What changed between two versions of a cell: area gained and lost (GeoJSON), buildings."""
    return history.diff(session, cell.id, from_version, to_version)


@router.post("/communities/{code}/proposal", response_model=ProposalOut)
def proposal(
    session: SessionDep,
    user: StaffUser,
    community: ScopedCommunity,
    body: Annotated[ProposalRequest, Body()] = ProposalRequest(),
) -> dict[str, Any]:
    """A balanced partition of the community (自动划格), not committed: cells as GeoJSON with
    households, compactness and band status; commit it with op "proposal"."""
    from gridsvc.services.proposals import propose_for_community

    return propose_for_community(
        session,
        community,
        target=body.target,
        band=(body.band_min, body.band_max),
        seed=body.seed,
        keep_current=body.keep_current,
    )
