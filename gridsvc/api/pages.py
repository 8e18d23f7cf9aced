"""Web pages under /ui: sign-in, home, the 格长's cell map, the overview and the boundary editor.

Pages use the same scope rules as the API (the session cookie carries the same JWT as the
Bearer header). Every script and stylesheet is served by gridsvc itself: nothing is fetched
from the internet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from gridsvc import csp
from gridsvc.api import csrf
from gridsvc.api.csp import nonce
from gridsvc.api.deps import (
    SESSION_COOKIE,
    CurrentUser,
    ScopedCell,
    ScopedCommunity,
    SessionDep,
    SignInLimit,
    StaffUser,
    client_address,
    forget_principal,
)
from gridsvc.api.incidents import ClockDep
from gridsvc.auth.policy import may
from gridsvc.auth.principal import Principal
from gridsvc.domain import ASSIGNMENT_ROLES, MAX_ADDRESS, MAX_CODE, MAX_NAME, USER_ROLES
from gridsvc.errors import Forbidden, NotAuthenticated, TooManyRequests
from gridsvc.models import Cell, Community, Street
from gridsvc.repositories import areas as area_repo
from gridsvc.repositories import layers as layer_repo
from gridsvc.repositories.layers import Area
from gridsvc.security import create_access_token, csrf_token_for
from gridsvc.services import maps as map_service
from gridsvc.services.incidents import CELL_ROLES
from gridsvc.services.tiles import LAYERS
from gridsvc.services.users import authenticate, sign_out
from gridsvc.settings import get_settings

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")


def _render(
    request: Request, name: str, user: Principal | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    css, js = (
        map_service.vendor_urls("leaflet", "geoman", "vectorgrid")
        if name == "editor.html"
        else ([], [])
    )
    session_cookie = request.cookies.get(SESSION_COOKIE)
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "role_label": USER_ROLES.get(user.role, user.role) if user else "",
            "css": css,
            "js": js,
            # The session's CSRF token, for forms and the editor's fetches (gridsvc.api.csrf).
            "csrf_token": csrf_token_for(session_cookie) if session_cookie else "",
            **context,
        },
        status_code=status_code,
    )


def _safe_next(target: str | None) -> str:
    """Only local /ui paths are followed after sign-in (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return "/ui/"


def _login_form(
    request: Request, status_code: int = 200, *, next: str | None = None, **context: Any
) -> HTMLResponse:
    """The sign-in form with a fresh form token, also set as its pre-session cookie."""
    token = csrf.new_login_token()
    response = _render(
        request,
        "login.html",
        None,
        status_code,
        next=_safe_next(next),
        login_csrf=token,
        csrf_field=csrf.CSRF_FIELD,
        **context,
    )
    _set_cookie(response, csrf.LOGIN_CSRF_COOKIE, token, max_age=2 * 60 * 60, path="/ui/login")
    return response


def _set_cookie(response: Response, name: str, value: str, *, max_age: int, path: str) -> None:
    """Our cookies: HttpOnly, SameSite=Strict, Secure in production."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=get_settings().app.environment == "production",
        path=path,
    )


@router.get("/login", name="login_page")
def login_page(
    request: Request, next: Annotated[str | None, Query(max_length=MAX_ADDRESS)] = None
) -> HTMLResponse:
    """The sign-in form."""
    return _login_form(request, next=next)


@router.post("/login", name="login_submit", dependencies=[SignInLimit])
def login_submit(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=MAX_NAME)],
    password: Annotated[str, Form(max_length=MAX_NAME)],
    next: Annotated[str, Form(max_length=MAX_ADDRESS)] = "/ui/",
    csrf_token: Annotated[str, Form(max_length=MAX_NAME)] = "",
) -> Response:
    """Check the form token and password, set the session cookie and go on to the page."""
    try:
        csrf.check_sign_in_form(request, csrf_token)
    except Forbidden:
        message = "登录页面已过期或来自其他网站，请在本页重新登录。"
        return _login_form(request, 403, error=message, username=username, next=next)
    try:
        user = authenticate(session, username, password, client_address(request))
    except NotAuthenticated:
        message = "用户名或密码错误。"
        return _login_form(request, 401, error=message, username=username, next=next)
    except TooManyRequests as exc:
        wait = exc.extra["retry_after"]
        message = f"该用户名在本机登录失败次数过多，请 {wait} 秒后再试。"
        response = _login_form(request, 429, error=message, username=username, next=next)
        response.headers["Retry-After"] = str(wait)
        return response
    response = RedirectResponse(_safe_next(next), status_code=303)
    token = create_access_token(user.id, user.role, user.token_version)
    _set_cookie(
        response, SESSION_COOKIE, token, max_age=get_settings().auth.token_minutes * 60, path="/"
    )
    response.delete_cookie(csrf.LOGIN_CSRF_COOKIE, path="/ui/login")
    return response


@router.get("/logout", name="logout_page")
def logout_page(request: Request) -> Response:
    """Ask to confirm signing out (a GET never signs out: links and images cannot do it)."""
    if not request.cookies.get(SESSION_COOKIE):
        return RedirectResponse("/ui/login", status_code=303)
    return _render(request, "logout.html", None)


@router.post("/logout", name="logout_submit")
def logout_submit(session: SessionDep, user: CurrentUser) -> Response:
    """Sign out: every token of the user dies and the session cookie is forgotten."""
    sign_out(session, user.id)
    forget_principal(user.id)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", name="home_page")
def home_page(
    request: Request, session: SessionDep, user: CurrentUser, clock: ClockDep
) -> HTMLResponse:
    """A cell's team (格长, 网格员) gets their workbench; everyone else the communities in
    scope."""
    if user.role in CELL_ROLES and user.cell_id is not None:
        from gridsvc.api.workbench import workbench_page

        return workbench_page(request, session, user, clock)
    communities = [
        feature["properties"]
        for feature in json.loads(area_repo.community_features(session, user)[0])
    ]
    my_cell = (
        session.scalar(select(Cell.code).where(Cell.id == user.cell_id)) if user.cell_id else None
    )
    can_edit = _can_edit(user)
    street = (
        session.execute(select(Street.code, Street.name).where(Street.id == user.street_id)).first()
        if user.street_id
        else None
    )
    return _render(
        request,
        "home.html",
        user,
        communities=communities,
        my_cell=my_cell,
        can_edit=can_edit,
        street=street,
    )


def _map_page(request: Request, m: Any, user: Principal, **chrome: Any) -> HTMLResponse:
    """A folium map as a full page with our navigation bar (and side table), local assets only;
    every script folium (or the bar) writes carries this request's CSP nonce."""
    import folium

    from maps.interactive import render_html

    context = {
        "user": user,
        "table": None,
        "metrics": None,
        "colour_by": None,
        "links": [],
        "report_url": None,
    }
    markup = templates.get_template("map_chrome.html").render({**context, **chrome})
    m.get_root().html.add_child(folium.Element(markup))
    page = render_html(m, "server", asset_prefix=map_service.ASSET_PREFIX)
    return HTMLResponse(csp.with_nonce(page, nonce(request)))


@router.get("/cells/{code}", name="cell_page")
def cell_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    cell: ScopedCell,
    colour_by: Annotated[
        str, Query(max_length=MAX_CODE, description="households or a household flag")
    ] = ("households"),
) -> HTMLResponse:
    """The 格长's map of one cell: boundary, buildings, households, incidents, volunteers."""
    area = Area("cell", cell.id, cell.code, cell.name)
    m = map_service.cell_map(session, user, area, colour_by=colour_by)
    community = session.scalar(select(Community.code).where(Community.id == cell.community_id))
    return _map_page(
        request,
        m,
        user,
        title=f"{cell.name}（{cell.code}）",
        colour_by=map_service.COLOUR_BY,
        current_colour=colour_by,
        links=[("社区总览", f"/ui/communities/{community}")],
        # Tap the map (or open a popup) to report there, in the map's display datum.
        report_url="/ui/report" if may(user, "incident.report") else None,
        datum=map_service.display_datum(),
    )


@router.get("/communities/{code}", name="overview_page")
def overview_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    community: ScopedCommunity,
    metric: Annotated[
        str, Query(max_length=MAX_CODE, description="coverage figure shown as the choropleth")
    ] = ("households"),
) -> HTMLResponse:
    """All cells of a community as a choropleth of a coverage figure, with a table beside."""
    area = Area("community", community.id, community.code, community.name)
    m = map_service.overview_map(session, user, area, metric)
    cells = map_service.overview_cells(session, user, area, metric)
    rows = cells.drop(columns="geometry").astype(object).where(cells.notna(), None)
    links = [("边界编辑", f"/ui/communities/{community.code}/editor")] if _can_edit(user) else []
    return _map_page(
        request,
        m,
        user,
        title=f"{community.name} 网格总览",
        metrics=map_service.METRICS,
        metric=metric,
        table={"columns": list(map_service.METRICS.items()), "rows": rows.to_dict("records")},
        links=links,
    )


@router.get("/streets/{code}", name="street_page")
def street_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    code: Annotated[str, PathParam(max_length=MAX_CODE)],
    metric: Annotated[
        str, Query(max_length=MAX_CODE, description="coverage figure shown as the choropleth")
    ] = ("households"),
) -> HTMLResponse:
    """Every cell of a street as a choropleth, with every building (from vector tiles above
    ``GRIDSVC_MAP_TILED_BUILDINGS_ABOVE``, so a whole street draws at any zoom)."""
    area = map_service.area_for(session, user, "street", code)
    m = map_service.overview_map(session, user, area, metric)
    return _map_page(
        request,
        m,
        user,
        title=f"{area.name} 街道总览",
        metrics=map_service.METRICS,
        metric=metric,
    )


def _can_edit(user: Principal) -> bool:
    return may(user, "cells.edit")


@router.get("/communities/{code}/editor", name="editor_page")
def editor_page(
    request: Request, session: SessionDep, user: StaffUser, community: ScopedCommunity
) -> HTMLResponse:
    """The boundary editor (street and community staff)."""
    geo = get_settings().geo
    area = Area("community", community.id, community.code, community.name)
    return _render(
        request,
        "editor.html",
        user,
        community=community,
        attribution=layer_repo.attribution(session, area),
        band=(geo.cell_households_min, geo.cell_households_max),
        role_labels=json.dumps(ASSIGNMENT_ROLES, ensure_ascii=False),
        building_tiles=(
            map_service.BUILDING_TILES_URL if map_service.uses_building_tiles(session, area) else ""
        ),
        building_tiles_minzoom=LAYERS["buildings"].minzoom,
    )
