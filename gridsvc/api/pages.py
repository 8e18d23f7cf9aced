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
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from gridsvc.api.deps import (
    SESSION_COOKIE,
    CurrentUser,
    ScopedCell,
    ScopedCommunity,
    SessionDep,
    SignInLimit,
    StaffUser,
)
from gridsvc.domain import ASSIGNMENT_ROLES, MAX_ADDRESS, MAX_CODE, MAX_NAME, USER_ROLES
from gridsvc.errors import NotAuthenticated
from gridsvc.models import Cell, Community
from gridsvc.repositories import areas as area_repo
from gridsvc.repositories import layers as layer_repo
from gridsvc.repositories.layers import Area
from gridsvc.security import create_access_token
from gridsvc.services import maps as map_service
from gridsvc.services.access import Principal
from gridsvc.services.permissions import may
from gridsvc.services.users import authenticate
from gridsvc.settings import get_settings

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")


def _render(
    request: Request, name: str, user: Principal | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    css, js = map_service.vendor_urls("leaflet", "geoman") if name == "editor.html" else ([], [])
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "role_label": USER_ROLES.get(user.role, user.role) if user else "",
            "css": css,
            "js": js,
            **context,
        },
        status_code=status_code,
    )


def _safe_next(target: str | None) -> str:
    """Only local /ui paths are followed after sign-in (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return "/ui/"


@router.get("/login", name="login_page")
def login_page(
    request: Request, next: Annotated[str | None, Query(max_length=MAX_ADDRESS)] = None
) -> HTMLResponse:
    """The sign-in form."""
    return _render(request, "login.html", None, next=_safe_next(next))


@router.post("/login", name="login_submit", dependencies=[SignInLimit])
def login_submit(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=MAX_NAME)],
    password: Annotated[str, Form(max_length=MAX_NAME)],
    next: Annotated[str, Form(max_length=MAX_ADDRESS)] = "/ui/",
) -> Response:
    """Check the password, set the session cookie and go on to the page asked for."""
    try:
        user = authenticate(session, username, password)
    except NotAuthenticated as exc:
        locked = "locked" in exc.detail
        message = "账户因多次登录失败已被暂时锁定，请稍后再试。" if locked else "用户名或密码错误。"
        return _render(
            request, "login.html", None, 401, error=message, username=username, next=next
        )
    settings = get_settings()
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        create_access_token(user.username, user.role),
        max_age=settings.auth.token_minutes * 60,
        httponly=True,
        samesite="strict",
        secure=settings.app.environment == "production",
        path="/",
    )
    return response


@router.get("/logout", name="logout_page")
def logout_page() -> Response:
    """Forget the session cookie."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", name="home_page")
def home_page(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The communities in scope, and the user's own cell for 格长 and 网格员."""
    communities = [
        feature["properties"]
        for feature in json.loads(area_repo.community_features(session, user)[0])
    ]
    my_cell = (
        session.scalar(select(Cell.code).where(Cell.id == user.cell_id)) if user.cell_id else None
    )
    can_edit = _can_edit(user)
    return _render(
        request,
        "home.html",
        user,
        communities=communities,
        my_cell=my_cell,
        can_edit=can_edit,
    )


def _map_page(m: Any, user: Principal, **chrome: Any) -> HTMLResponse:
    """A folium map as a full page with our navigation bar (and side table), local assets only."""
    import folium

    from maps.interactive import render_html

    context = {"user": user, "table": None, "metrics": None, "colour_by": None, "links": []}
    markup = templates.get_template("map_chrome.html").render({**context, **chrome})
    m.get_root().html.add_child(folium.Element(markup))
    return HTMLResponse(render_html(m, "server", asset_prefix=map_service.ASSET_PREFIX))


@router.get("/cells/{code}", name="cell_page")
def cell_page(
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
        m,
        user,
        title=f"{cell.name}（{cell.code}）",
        colour_by=map_service.COLOUR_BY,
        current_colour=colour_by,
        links=[("社区总览", f"/ui/communities/{community}")],
    )


@router.get("/communities/{code}", name="overview_page")
def overview_page(
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
        m,
        user,
        title=f"{community.name} 网格总览",
        metrics=map_service.METRICS,
        metric=metric,
        table={"columns": list(map_service.METRICS.items()), "rows": rows.to_dict("records")},
        links=links,
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
    )
