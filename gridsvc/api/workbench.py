"""The 格长's workbench pages: /ui/ (for a cell's team), /ui/tasks and /ui/cases/{id}.

Thin like every route: parse the query or form, call one service
(:mod:`gridsvc.services.workbench`), render. The case page's buttons are the steps the
workflow allows this user now — the same ``allowed_actions`` the API reports — and its form
posts back here with the session's CSRF token and the version of the case it showed.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import shapely
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from geodata.china import convert_geometries
from geodata.datum import Datum
from gridsvc.api.deps import CurrentUser, ScopedCell, SessionDep
from gridsvc.api.incidents import ClockDep
from gridsvc.api.problems import _PAGE_TITLES
from gridsvc.auth.policy import may, require
from gridsvc.auth.principal import Principal
from gridsvc.domain import (
    HOUSEHOLD_FLAGS,
    INCIDENT_ACTIONS,
    INCIDENT_QUEUES,
    INCIDENT_STATUSES,
    MAX_ADDRESS,
    MAX_CODE,
)
from gridsvc.errors import (
    Conflict,
    Forbidden,
    GridsvcError,
    InvalidInput,
    NotFound,
    TooLarge,
    http_status,
)
from gridsvc.services import incidents as incident_service
from gridsvc.services import ledger
from gridsvc.services import workbench as service
from gridsvc.services.clock import local_today, local_zone
from gridsvc.settings import get_settings

router = APIRouter(prefix="/ui", include_in_schema=False)

#: Cases per page of the task list.
TASKS_PER_PAGE = 20
#: What the case page says when the case changed since it was shown (as the editor says it).
STALE_CASE = (
    "提交失败：打开本页之后，该事件已被他人处理（版本冲突），未做任何修改。"
    "下面是它现在的状态，请核对后再操作。"
)


def _render(request: Request, name: str, user: Principal, status: int = 200, **context: Any):  # type: ignore[no-untyped-def]
    from gridsvc.api.pages import _render as render_page

    labels = {
        "statuses": INCIDENT_STATUSES,
        "actions": INCIDENT_ACTIONS,
        "queues": INCIDENT_QUEUES,
        "local": _local,
    }
    return render_page(request, name, user, status, **labels, **context)


def _local(value: str | None) -> str:
    """An ISO time as the users read it: local date and minute."""
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(local_zone()).strftime("%Y-%m-%d %H:%M")


def workbench_page(
    request: Request, session: SessionDep, user: CurrentUser, clock: ClockDep
) -> HTMLResponse:
    """The workbench of a 格长 or 网格员 (the home page for a cell's team)."""
    board = service.workbench(session, user, clock.now())
    return _render(request, "workbench.html", user, **board)


@router.get("/tasks", name="tasks_page")
def tasks_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    clock: ClockDep,
    show: Annotated[str, Query(pattern="^(waiting|all)$")] = "waiting",
    status: Annotated[str, Query(max_length=MAX_CODE)] = "",
    category: Annotated[str, Query(max_length=MAX_CODE)] = "",
    overdue: Annotated[str, Query(pattern="^(|yes|no)$")] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """My cases: waiting for me (default) or all in my scope; filters 状态, 类别, 超期; paged."""
    items, total = service.tasks(
        session,
        user,
        clock.now(),
        waiting_only=show == "waiting",
        status=status or None,
        category=category or None,
        overdue={"yes": True, "no": False}.get(overdue),
        limit=TASKS_PER_PAGE,
        offset=(page - 1) * TASKS_PER_PAGE,
    )
    pages = max(1, math.ceil(total / TASKS_PER_PAGE))
    query = {"show": show, "status": status, "category": category, "overdue": overdue}

    def page_link(n: int) -> str:
        return "?" + urlencode({**query, "page": n})

    return _render(
        request,
        "tasks.html",
        user,
        items=items,
        total=total,
        page=page,
        pages=pages,
        prev_link=page_link(page - 1) if page > 1 else None,
        next_link=page_link(page + 1) if page < pages else None,
        filters=query,
        categories=incident_service.categories(session),
    )


async def _read_photos(photos: list[UploadFile] | None) -> list[bytes]:
    """The bytes of the photos chosen (an empty file input sends one empty part: skipped),
    each read no further than the configured limit."""
    limit = get_settings().incidents.photo_max_bytes
    data: list[bytes] = []
    for upload in photos or []:
        content = await upload.read(limit + 1)
        if len(content) > limit:
            raise TooLarge(f"每张照片不超过 {limit // (1024 * 1024)} MB")
        if content:
            data.append(content)
    return data


def _message(exc: GridsvcError) -> str:
    """A refused page action, said in Chinese (the service's detail after the kind)."""
    status = http_status(exc)
    return f"{_PAGE_TITLES.get(status, '提交失败')}：{exc.detail}"


def _case_page(
    request: Request,
    session: SessionDep,
    user: Principal,
    incident_id: int,
    now: Any,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    detail = service.case(session, user, incident_id, now)
    return _render(request, "case.html", user, status, case=detail, **context)


@router.get("/cases/{incident_id}", name="case_page")
def case_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    clock: ClockDep,
    incident_id: int,
    done: Annotated[str, Query(max_length=MAX_CODE)] = "",
) -> HTMLResponse:
    """One case: its record, its photos and the steps the workflow allows me now."""
    message = None
    if done == "photo":
        message = "照片已保存。"
    elif done in INCIDENT_ACTIONS:
        message = f"已{INCIDENT_ACTIONS[done]}。"
    return _case_page(request, session, user, incident_id, clock.now(), ok=message)


@router.post("/cases/{incident_id}", name="case_step")
async def case_step(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    clock: ClockDep,
    incident_id: int,
    expected_version: Annotated[int, Form(ge=0)],
    action: Annotated[str, Form(max_length=MAX_CODE)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """Take the chosen step (with the note) and store the photos; back to the case page."""
    try:
        data = await _read_photos(photos)
        await run_in_threadpool(
            service.take_step,
            session,
            user,
            incident_id,
            action=action or None,
            note=note or None,
            expected_version=expected_version,
            photos=data,
            now=clock.now(),
        )
    except NotFound:
        raise
    except GridsvcError as exc:
        stale = isinstance(exc, Conflict) and "version" in exc.extra
        message = STALE_CASE if stale else _message(exc)
        return await run_in_threadpool(
            _case_page,
            request,
            session,
            user,
            incident_id,
            clock.now(),
            http_status(exc),
            error=message,
        )
    return RedirectResponse(f"/ui/cases/{incident_id}?done={action or 'photo'}", status_code=303)


@router.post("/cases/{incident_id}/confirm-cell", name="case_confirm_cell")
def case_confirm_cell(
    session: SessionDep,
    user: CurrentUser,
    clock: ClockDep,
    incident_id: int,
    cell: Annotated[str, Form(max_length=MAX_CODE)],
) -> Response:
    """Settle a case reported near a cell boundary: keep its cell or take the neighbour."""
    incident_service.confirm_cell(session, user, incident_id, cell, now=clock.now())
    return RedirectResponse(f"/ui/cases/{incident_id}?done=confirm_cell", status_code=303)


def _report_form(
    request: Request,
    session: SessionDep,
    user: Principal,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    return _render(
        request,
        "report.html",
        user,
        status,
        categories=incident_service.categories(session),
        datums=DATUMS,
        **context,
    )


#: Datums a point may come in: the map's display datum, or the phone's position (WGS84).
DATUMS = tuple(d.value for d in Datum)


@router.get("/report", name="report_page")
def report_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    datum: Annotated[Datum, Query()] = Datum.WGS84,
) -> HTMLResponse:
    """The 上报事件 form at a point tapped on the map (or the phone's position)."""
    require(user, "incident.report")
    return _report_form(request, session, user, form={"lon": lon, "lat": lat, "datum": datum})


@router.post("/report", name="report_submit")
async def report_submit(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    clock: ClockDep,
    category: Annotated[str, Form(max_length=MAX_CODE)],
    lon: Annotated[str, Form(max_length=32)] = "",
    lat: Annotated[str, Form(max_length=32)] = "",
    datum: Annotated[str, Form(max_length=16)] = "wgs84",
    description: Annotated[str, Form(max_length=4000)] = "",
    address: Annotated[str, Form(max_length=500)] = "",
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """File the report (routed by the intake service, as the API files it), store its photos
    and open the new case (with the boundary confirmation when the point is near another cell)."""
    form = {
        "lon": lon,
        "lat": lat,
        "datum": datum,
        "category": category,
        "description": description,
        "address": address,
    }
    try:
        point = _point(lon, lat, datum)
        data = await _read_photos(photos)
        detail = await run_in_threadpool(
            service.report_here,
            session,
            user,
            incident_service.NewIncident(
                lon=point.x,
                lat=point.y,
                category=category,
                description=description or None,
                address=address or None,
                reporter_kind=incident_service.default_reporter_kind(user),
            ),
            photos=data,
            now=clock.now(),
        )
    except (Forbidden, NotFound):
        raise
    except GridsvcError as exc:
        return await run_in_threadpool(
            _report_form, request, session, user, http_status(exc), form=form, error=_message(exc)
        )
    return RedirectResponse(f"/ui/cases/{detail['id']}?done=file", status_code=303)


def _point(lon: str, lat: str, datum: str) -> shapely.Point:
    """The reported point in WGS84, from the form's text fields and their datum."""
    try:
        x, y = float(lon), float(lat)
    except ValueError:
        raise InvalidInput("请先在地图上点选事件位置，或点“使用我的位置”。") from None
    if datum not in DATUMS:
        raise InvalidInput(f"未知的坐标系 {datum!r}")
    return convert_geometries(shapely.Point(x, y), Datum(datum))


# -- 台账 and 民情日记 ---------------------------------------------------------------------

#: Households or visits per page.
LEDGER_PER_PAGE = 30


def _paging(page: int, total: int, query: dict[str, Any]) -> dict[str, Any]:
    pages = max(1, math.ceil(total / LEDGER_PER_PAGE))
    link = lambda n: "?" + urlencode({**query, "page": n})  # noqa: E731
    return {
        "page": page,
        "pages": pages,
        "prev_link": link(page - 1) if page > 1 else None,
        "next_link": link(page + 1) if page < pages else None,
    }


@router.get("/cells/{code}/ledger", name="ledger_page")
def ledger_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    cell: ScopedCell,
    q: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    done: Annotated[str, Query(max_length=MAX_CODE)] = "",
) -> HTMLResponse:
    """The households 台账 of a cell: search, pages, flags (editable where the role may)."""
    rows, total = ledger.households(
        session,
        user,
        cell.id,
        search=q,
        limit=LEDGER_PER_PAGE,
        offset=(page - 1) * LEDGER_PER_PAGE,
    )
    return _render(
        request,
        "ledger.html",
        user,
        cell=cell,
        rows=rows,
        total=total,
        q=q,
        flags=HOUSEHOLD_FLAGS,
        may_edit=may(user, "households.edit"),
        may_visit=may(user, "visits.record"),
        ok="标记已保存。" if done == "flags" else None,
        back=str(request.url.path) + ("?" + request.url.query if request.url.query else ""),
        **_paging(page, total, {"q": q}),
    )


def _back(target: str, fallback: str) -> str:
    """Only a local /ui path is followed back (no open redirect)."""
    if target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


@router.post("/households/{household_id}/flags", name="household_flags")
def household_flags(
    session: SessionDep,
    user: CurrentUser,
    household_id: int,
    flag: Annotated[list[str] | None, Form(max_length=MAX_CODE)] = None,
    back: Annotated[str, Form(max_length=MAX_ADDRESS)] = "/ui/",
) -> Response:
    """Set the household's flags to those ticked (audited with before and after)."""
    ledger.set_flags(session, user, household_id, set(flag or ()))
    target = _back(back, "/ui/")
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}done=flags", status_code=303)


def _visit_form(
    request: Request,
    session: SessionDep,
    user: Principal,
    household_id: int,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    household = ledger.household(session, user, household_id)
    return _render(
        request,
        "visit.html",
        user,
        status,
        household=household,
        team=ledger.team(session, household["cell_id"]) if household["cell_id"] else [],
        today=local_today().isoformat(),
        **context,
    )


@router.get("/households/{household_id}/visit", name="visit_page")
def visit_page(
    request: Request, session: SessionDep, user: CurrentUser, household_id: int
) -> HTMLResponse:
    """The 走访 form of one household (from a 台账 row or a household's popup)."""
    require(user, "visits.record")
    return _visit_form(request, session, user, household_id, form={})


@router.post("/households/{household_id}/visit", name="visit_submit")
def visit_submit(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    household_id: int,
    visited_on: Annotated[str, Form(max_length=16)],
    person_id: Annotated[str, Form(max_length=16)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    follow_up: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Record the 走访 and go to the cell's 民情日记."""
    form = {"visited_on": visited_on, "person_id": person_id, "note": note, "follow_up": follow_up}
    try:
        day = _date(visited_on)
        who = int(person_id) if person_id.isdigit() else None
        ledger.record_visit(
            session,
            user,
            household_id,
            visited_on=day,
            person_id=who,
            note=note,
            follow_up=follow_up,
        )
    except (Forbidden, NotFound):
        raise
    except GridsvcError as exc:
        return _visit_form(
            request, session, user, household_id, http_status(exc), form=form, error=_message(exc)
        )
    code = ledger.household(session, user, household_id)["cell_code"]
    return RedirectResponse(f"/ui/cells/{code}/diary?done=visit", status_code=303)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"走访日期 {value!r} 不是有效日期（例如 2026-05-01）") from None


@router.get("/cells/{code}/diary", name="diary_page")
def diary_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    cell: ScopedCell,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    done: Annotated[str, Query(max_length=MAX_CODE)] = "",
) -> HTMLResponse:
    """The 民情日记 of a cell: every 走访, newest first, paged."""
    rows, total = ledger.diary(
        session, user, cell.id, limit=LEDGER_PER_PAGE, offset=(page - 1) * LEDGER_PER_PAGE
    )
    return _render(
        request,
        "diary.html",
        user,
        cell=cell,
        rows=rows,
        total=total,
        ok="走访已记录。" if done == "visit" else None,
        **_paging(page, total, {}),
    )
