"""Routes for people, duties, sectors, 辖区单位, 联系户, 公益岗位, 走访, coverage, the 责任网络图
and roster imports. Each route translates HTTP to one service call."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, File, Form, Query, Response, UploadFile
from fastapi import Path as PathParam

from gridsvc.api.deps import (
    CurrentUser,
    PageDep,
    PeopleManager,
    ScopedCell,
    ScopedCommunity,
    SessionDep,
)
from gridsvc.api.idempotency import IdempotencyHeader, once
from gridsvc.auth.masking import mask_assignment, mask_contact, mask_person, mask_phones, mask_visit
from gridsvc.auth.policy import require
from gridsvc.domain import MAX_CODE
from gridsvc.schemas.people import (
    ActivityIn,
    AssignmentIn,
    AssignmentOut,
    CellAssignmentOut,
    CoverageOut,
    DutyChangeOut,
    DutyIn,
    DutyOut,
    EndIn,
    LinkIn,
    LinkOut,
    OrganisationIn,
    OrganisationOut,
    OrganisationPage,
    PersonIn,
    PersonOut,
    PersonPage,
    PostIn,
    PostOut,
    ResponsibilityChartOut,
    RosterReportOut,
    SectorIn,
    SectorOut,
    TeamIn,
    TeamOut,
    VisitIn,
    VisitOut,
    VisitPage,
)
from gridsvc.services import coverage as coverage_service
from gridsvc.services import people
from gridsvc.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["people"])


def _page(items: list[dict[str, Any]], total: int, page: PageDep) -> dict[str, Any]:
    return {
        "items": items,
        "number_matched": total,
        "number_returned": len(items),
        "limit": page.limit,
        "offset": page.offset,
    }


# -- duties -----------------------------------------------------------------------------------
@router.get("/duties", response_model=list[DutyOut])
def get_duties(session: SessionDep, user: CurrentUser) -> list[dict[str, Any]]:
    """The duties of the four levels (一级 community … 四级 cell)."""
    return people.level_duties(session)


@router.put("/duties/{level}", response_model=DutyChangeOut)
def put_duty(
    session: SessionDep, user: CurrentUser, level: int, body: Annotated[DutyIn, Body()]
) -> dict[str, Any]:
    """Change a level's duty text (admin and street staff)."""
    require(user, "duties.edit")
    return people.set_level_duty(session, level, body.duties, user=user.username, title=body.title)


# -- persons and assignments ------------------------------------------------------------------
@router.post("/people", status_code=201, response_model=PersonOut)
def create_person(
    session: SessionDep, user: PeopleManager, body: Annotated[PersonIn, Body()]
) -> dict[str, Any]:
    """Register a person (resident, worker, party member, volunteer)."""
    return people.register_person(session, user, **body.model_dump())


@router.get("/communities/{code}/people", response_model=PersonPage)
def community_people(
    session: SessionDep,
    user: CurrentUser,
    community: ScopedCommunity,
    page: PageDep,
    party_status: Annotated[
        str | None, Query(max_length=MAX_CODE, description="in_service, direct … or 在职 …")
    ] = None,
    volunteers: Annotated[bool | None, Query(description="only volunteers (or only not)")] = None,
    name: Annotated[str | None, Query(max_length=32, description="name contains")] = None,
) -> dict[str, Any]:
    """People registered in the community, with their active roles, paged."""
    items, total = people.list_people(
        session,
        community.id,
        principal=user,
        party_status=party_status,
        volunteers=volunteers,
        name=name,
        limit=page.limit,
        offset=page.offset,
    )
    return _page([mask_person(user, i) for i in items], total, page)


@router.get("/people/{person_id}", response_model=PersonOut)
def get_person(session: SessionDep, user: CurrentUser, person_id: int) -> dict[str, Any]:
    """A person with their active roles (phone masked for viewers)."""
    return mask_person(
        user, people.person_dict(session, people.get_person(session, user, person_id))
    )


@router.post("/assignments", status_code=201, response_model=AssignmentOut)
def create_assignment(
    session: SessionDep, user: PeopleManager, body: Annotated[AssignmentIn, Body()]
) -> dict[str, Any]:
    """Give a person a role (409 if the cell already has an active 格长)."""
    return people.give_role(
        session,
        user,
        person_id=body.person_id,
        role=body.role,
        community=body.community,
        sector=body.sector,
        cell=body.cell,
        building=body.building,
        household=body.household_id,
        unit=body.unit,
        room=body.room,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        employment=body.employment,
    )


@router.post("/assignments/{assignment_id}/end", response_model=AssignmentOut)
def end_assignment(
    session: SessionDep,
    user: PeopleManager,
    assignment_id: int,
    body: Annotated[EndIn, Body()] = EndIn(),
) -> dict[str, Any]:
    """End an assignment (it stays in the history)."""
    row = people.end_assignment(session, user, assignment_id, body.ends_on)
    return people.assignment_dict(session, row)


@router.get("/cells/{code}/assignments", response_model=list[CellAssignmentOut])
def cell_assignments(
    session: SessionDep,
    user: CurrentUser,
    cell: ScopedCell,
    history: Annotated[bool, Query(description="every assignment ever, not only active")] = False,
    on: Annotated[date | None, Query(description="active on this day (default today)")] = None,
) -> list[dict[str, Any]]:
    """Who holds which role in the cell and its buildings and households."""
    rows = people.assignments_of_cell(session, cell.id, history=history, on=on)
    return [mask_assignment(user, row) for row in rows]


# -- sectors and organisations ----------------------------------------------------------------
@router.post("/communities/{code}/sectors", status_code=201, response_model=SectorOut)
def create_sector(
    session: SessionDep,
    user: PeopleManager,
    community: ScopedCommunity,
    body: Annotated[SectorIn, Body()],
) -> dict[str, Any]:
    """Create a 片区 (level 2) or 党支部 area (level 3) and put cells in it."""
    return people.create_sector(
        session,
        user,
        community=community.code,
        name=body.name,
        level=body.level,
        parent=body.parent,
        code=body.code,
        cells=body.cells,
    )


@router.get("/communities/{code}/sectors", response_model=list[SectorOut])
def list_sectors(session: SessionDep, community: ScopedCommunity) -> list[dict[str, Any]]:
    """The sectors of a community with their cells."""
    return people.list_sectors(session, community.id)


@router.post("/communities/{code}/organisations", status_code=201, response_model=OrganisationOut)
def create_organisation(
    session: SessionDep,
    user: PeopleManager,
    community: ScopedCommunity,
    body: Annotated[OrganisationIn, Body()],
) -> dict[str, Any]:
    """Register a 辖区单位 with its contact."""
    return people.create_organisation(session, user, community=community.code, **body.model_dump())


@router.get("/communities/{code}/organisations", response_model=OrganisationPage)
def list_organisations(
    session: SessionDep, user: CurrentUser, community: ScopedCommunity, page: PageDep
) -> dict[str, Any]:
    """辖区单位 of a community, paged (contact masked for viewers)."""
    items, total = people.list_organisations(
        session, community.id, limit=page.limit, offset=page.offset
    )
    return _page([mask_contact(user, i) for i in items], total, page)


@router.post("/communities/{code}/volunteer-teams", status_code=201, response_model=TeamOut)
def create_team(
    session: SessionDep,
    user: PeopleManager,
    community: ScopedCommunity,
    body: Annotated[TeamIn, Body()],
) -> dict[str, Any]:
    """Create a 志愿服务队 (党员, 老年, 巾帼, 家政, 治安 …)."""
    return people.create_team(
        session, user, community=community.code, name=body.name, kind=body.kind
    )


@router.get("/communities/{code}/volunteer-teams", response_model=list[TeamOut])
def list_teams(session: SessionDep, community: ScopedCommunity) -> list[dict[str, Any]]:
    """The volunteer teams of a community with their member counts."""
    return people.list_teams(session, community.id)


# -- 联系户, 公益岗位, 走访 -------------------------------------------------------------------------
@router.post("/people/{person_id}/linked-households", status_code=201, response_model=LinkOut)
def link_household(
    session: SessionDep, user: PeopleManager, person_id: int, body: Annotated[LinkIn, Body()]
) -> dict[str, Any]:
    """Link a party member to a household (联系户)."""
    return people.link_household(
        session, user, person_id=person_id, household_id=body.household_id, starts_on=body.starts_on
    )


@router.get("/people/{person_id}/linked-households", response_model=list[LinkOut])
def linked_households(
    session: SessionDep, user: CurrentUser, person_id: int
) -> list[dict[str, Any]]:
    """A member's 联系户, history included."""
    return people.linked_households(session, user, person_id)


@router.post("/linked-households/{link_id}/end", response_model=LinkOut)
def unlink_household(
    session: SessionDep, user: PeopleManager, link_id: int, body: Annotated[EndIn, Body()] = EndIn()
) -> dict[str, Any]:
    """End a 联系户 link."""
    return people.unlink_household(session, user, link_id, body.ends_on)


@router.post("/people/{person_id}/posts", status_code=201, response_model=PostOut)
def claim_post(
    session: SessionDep, user: PeopleManager, person_id: int, body: Annotated[PostIn, Body()]
) -> dict[str, Any]:
    """A member claims a 公益岗位."""
    return people.claim_post(session, user, person_id=person_id, **body.model_dump())


@router.get("/people/{person_id}/posts", response_model=list[PostOut])
def posts(session: SessionDep, user: CurrentUser, person_id: int) -> list[dict[str, Any]]:
    """A member's 公益岗位 with their activity records."""
    return people.posts_of(session, user, person_id)


@router.post("/posts/{post_id}/activities", status_code=201, response_model=PostOut)
def post_activity(
    session: SessionDep, user: PeopleManager, post_id: int, body: Annotated[ActivityIn, Body()]
) -> dict[str, Any]:
    """Record an activity on a post."""
    return people.record_post_activity(session, user, post_id, **body.model_dump())


@router.post("/visits", status_code=201, response_model=VisitOut)
def record_visit(
    session: SessionDep,
    user: CurrentUser,
    body: Annotated[VisitIn, Body()],
    response: Response,
    idempotency_key: IdempotencyHeader = None,
) -> dict[str, Any]:
    """Record a 走访 (staff, or the 格长/网格员 of the household's cell). With an
    Idempotency-Key, a retry gets the first answer instead of a second visit."""
    require(user, "visits.record")

    def write() -> dict[str, Any]:
        return people.record_visit(session, user, **body.model_dump())

    return once(
        session,
        user,
        idempotency_key,
        ("visits.record", body.model_dump(mode="json")),
        response,
        201,
        write,
    )


@router.get("/cells/{code}/visits", response_model=VisitPage)
def cell_visits(
    session: SessionDep, user: CurrentUser, cell: ScopedCell, page: PageDep
) -> dict[str, Any]:
    """Visits to the cell's households, newest first, paged (notes withheld from viewers)."""
    items, total = people.visits_of_cell(session, cell.id, limit=page.limit, offset=page.offset)
    return _page([mask_visit(user, i) for i in items], total, page)


# -- coverage ----------------------------------------------------------------------------------
_CSV = "text/csv; charset=utf-8"
_COVERAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": CoverageOut, "content": {_CSV: {}}, "description": "JSON or CSV"}
}


def _coverage_response(report: dict[str, Any], fmt: str, name: str) -> Any:
    if fmt == "csv":
        return Response(
            coverage_service.to_csv(report),
            media_type=_CSV,
            headers={"Content-Disposition": f'attachment; filename="coverage-{name}.csv"'},
        )
    return report


@router.get(
    "/streets/{code}/coverage",
    responses=_COVERAGE_RESPONSES,
    response_model=None,
    description="Coverage per cell, community and the street; every figure names its "
    f"denominator.\n\n{coverage_service.VISIT_WINDOW_RULE}",
)
def street_coverage(
    session: SessionDep,
    user: CurrentUser,
    code: Annotated[str, PathParam(max_length=MAX_CODE)],
    as_of: Annotated[date | None, Query(description="as of the end of this day")] = None,
    distance_m: Annotated[
        float | None, Query(gt=0, le=5000, description="walking distance (default setting)")
    ] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Coverage per cell, community and the street; every figure names its denominator."""
    report = coverage_service.coverage(
        session, user, street_code=code, as_of=as_of, distance_m=distance_m
    )
    return _coverage_response(report, format, code)


@router.get(
    "/communities/{code}/coverage",
    responses=_COVERAGE_RESPONSES,
    response_model=None,
    description="Coverage per cell of one community, and the community's totals.\n\n"
    f"{coverage_service.VISIT_WINDOW_RULE}",
)
def community_coverage(
    session: SessionDep,
    user: CurrentUser,
    community: ScopedCommunity,
    as_of: Annotated[date | None, Query(description="as of the end of this day")] = None,
    distance_m: Annotated[float | None, Query(gt=0, le=5000)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Coverage per cell of one community, and the community's totals."""
    report = coverage_service.coverage(
        session, user, community_code=community.code, as_of=as_of, distance_m=distance_m
    )
    return _coverage_response(report, format, community.code)


# -- 责任网络图 -----------------------------------------------------------------------------------
@router.get(
    "/streets/{code}/responsibility-chart",
    response_model=None,
    responses={
        200: {
            "model": ResponsibilityChartOut,
            "content": {"image/svg+xml": {}, "image/png": {}},
            "description": "the tree as JSON, or drawn as SVG or PNG",
        }
    },
)
def responsibility_chart(
    session: SessionDep,
    user: CurrentUser,
    code: Annotated[str, PathParam(max_length=MAX_CODE)],
    on: Annotated[date | None, Query(description="people active on this day")] = None,
    format: Annotated[Literal["json", "svg", "png"], Query()] = "json",
) -> Any:
    """责任网络图: street → community → sector → cell → people with their duties."""
    tree = mask_phones(user, people.responsibility_tree(session, user, code, on=on))
    if format == "json":
        return tree
    from maps.charts import responsibility_chart as draw

    image = draw(tree, fmt=format)
    media = "image/svg+xml" if format == "svg" else "image/png"
    return Response(image, media_type=media)


# -- roster import -----------------------------------------------------------------------------
@router.post("/imports/roster", tags=["imports"], response_model=RosterReportOut)
def import_roster(
    session: SessionDep,
    user: PeopleManager,
    file: Annotated[UploadFile, File(description="CSV or XLSX roster with Chinese headers")],
    commit: Annotated[bool, Form(description="write the good rows; otherwise a dry run")] = False,
) -> dict[str, Any]:
    """Import people and assignments from a roster (姓名, 电话, 身份证号, 角色, 网格编码, 楼栋,
    开始日期 …): a dry run by default with a per-row error report; commit=true writes the good
    rows (each row whole or not at all)."""
    from gridsvc.api.routes import _save_upload
    from gridsvc.services.roster import import_roster as run_import

    limit = get_settings().app.max_upload_bytes
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(file.filename or "roster.csv").name
        _save_upload(file, path, limit)
        report = run_import(session, user, path, commit=commit)
    return report.as_dict()
