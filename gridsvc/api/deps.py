"""Typed dependencies that keep routes to one line: session, user, scope checks, paging."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gridsvc.api import csrf
from gridsvc.auth.policy import ROLES, require, require_in_scope
from gridsvc.auth.principal import Principal
from gridsvc.db.engine import get_session
from gridsvc.domain import MAX_CODE
from gridsvc.errors import InvalidInput, NotAuthenticated
from gridsvc.repositories import areas as area_repo
from gridsvc.repositories import cells as cell_repo
from gridsvc.security import decode_access_token
from gridsvc.services import audit
from gridsvc.services.principals import principal_for
from gridsvc.services.users import count_sign_in_attempt, token_user
from gridsvc.settings import get_settings

SessionDep = Annotated[Session, Depends(get_session)]

_oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)

#: Cookie set by the web sign-in page (/ui/login): HttpOnly, SameSite=Strict, so other sites
#: can neither read it nor make the browser send it. Writes it signs are also checked against
#: requests from other origins of the same host (gridsvc.api.csrf).
SESSION_COOKIE = "gridsvc_session"


async def bearer_or_cookie(
    request: Request, token: Annotated[str | None, Depends(_oauth2)]
) -> str | None:
    """The access token: the Authorization header, else the web page's session cookie (for a
    write, only from this service's own pages: 403 otherwise)."""
    if token:
        return token
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await csrf.check_cookie_request(request, cookie)
    return cookie


@lru_cache
def _principal_cache() -> TTLCache[int, tuple[int, Principal]]:
    ttl = get_settings().auth.principal_cache_seconds
    return TTLCache(maxsize=10_000, ttl=max(ttl, 1))


_cache_lock = threading.Lock()


def forget_principal(user_id: int) -> None:
    """Drop this process's remembered check of the user's tokens (after revoking them)."""
    with _cache_lock:
        _principal_cache().pop(user_id, None)


def _checked_principal(session: Session, user_id: int, version: int) -> Principal:
    return principal_for(session, token_user(session, user_id, version))


async def current_principal(
    session: SessionDep, token: Annotated[str | None, Depends(bearer_or_cookie)]
) -> Principal:
    """The signed-in user from the bearer token or session cookie (401 without a valid one,
    or when the token was revoked: its version is checked against the database, at most
    every ``GRIDSVC_PRINCIPAL_CACHE_SECONDS``; only that check leaves the event loop)."""
    if not token:
        raise NotAuthenticated("sign in first: send 'Authorization: Bearer <token>'")
    claims = decode_access_token(token)
    try:
        user_id, version = int(claims["sub"]), int(claims["ver"])
    except (TypeError, ValueError) as exc:
        raise NotAuthenticated("invalid access token: sign in again") from exc
    use_cache = get_settings().auth.principal_cache_seconds > 0
    principal = None
    if use_cache:
        with _cache_lock:
            cached = _principal_cache().get(user_id)
        if cached is not None and cached[0] == version:
            principal = cached[1]
    if principal is None:
        principal = await run_in_threadpool(_checked_principal, session, user_id, version)
        if use_cache:
            with _cache_lock:
                _principal_cache()[user_id] = (version, principal)
    audit.set_actor(session, principal.username)  # every write of this request names them
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


def client_address(request: Request) -> str:
    """The client's address: the peer, or what a configured proxy forwarded (uvicorn applies
    X-Forwarded-For only from ``GRIDSVC_FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else "unknown"


def limit_sign_in(request: Request, session: SessionDep) -> None:
    """Refuse (429) a client that tries to sign in too often (password guessing); counted in
    the database, so the limit holds across worker processes."""
    count_sign_in_attempt(
        session, client_address(request), get_settings().auth.login_attempts_per_minute
    )


SignInLimit = Depends(limit_sign_in)


def cell_in_scope(
    code: Annotated[str, PathParam(max_length=MAX_CODE)], session: SessionDep, user: CurrentUser
) -> cell_repo.CellRef:
    """The cell named in the path, if it lies in the user's scope (404 unknown, 403 outside)."""
    cell = cell_repo.get_cell(session, code)
    require_in_scope(user, cell.place, f"cell {code}")
    return cell


def community_in_scope(
    code: Annotated[str, PathParam(max_length=MAX_CODE)], session: SessionDep, user: CurrentUser
) -> area_repo.CommunityRef:
    """The community named in the path, if the user may see it."""
    community = area_repo.get_community(session, code)
    if user.cell_id is not None and user.cell_community_id == community.id:
        return community
    require_in_scope(user, community.place, f"community {code}")
    return community


ScopedCell = Annotated[cell_repo.CellRef, Depends(cell_in_scope)]
ScopedCommunity = Annotated[area_repo.CommunityRef, Depends(community_in_scope)]


def allowed(action: str) -> Callable[[Principal], Principal]:
    """A dependency: the signed-in user, if the permission matrix lets their role do `action`."""
    if action not in ROLES:
        raise KeyError(f"unknown action {action!r}")

    async def dependency(user: CurrentUser) -> Principal:
        require(user, action)
        return user

    dependency.__name__ = "may_" + action.replace(".", "_")
    return dependency


async def staff(user: CurrentUser) -> Principal:
    """The user, if their role may change cells (street or community staff, or admin)."""
    require(user, "cells.edit")
    return user


#: May change cells (create, redraw, propose, edit in the editor): ``cells.edit``.
StaffUser = Annotated[Principal, Depends(staff)]
#: May register people, assignments, sectors, teams, 联系户, posts, rosters: ``people.manage``.
PeopleManager = Annotated[Principal, Depends(allowed("people.manage"))]
#: May import files (which kinds: ``cells.import`` / ``areas.import``, checked in the route).
Importer = Annotated[Principal, Depends(allowed("cells.import"))]


class Page:
    """limit/offset paging with the configured default and maximum page size."""

    def __init__(
        self,
        limit: Annotated[int | None, Query(ge=1, description="page size")] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> None:
        app = get_settings().app
        if limit is not None and limit > app.max_page_size:
            raise InvalidInput(f"limit {limit} is above the largest page size, {app.max_page_size}")
        self.limit = limit or app.default_page_size
        self.offset = offset
        self.requested_limit = limit


PageDep = Annotated[Page, Depends()]
