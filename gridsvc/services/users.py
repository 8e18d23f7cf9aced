"""Users: create with a role and scope, authenticate with a growing back-off per (user name,
client address), revoke every token of a user (sign-out, password change, disable, delete)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridsvc.domain import USER_ROLE_SCOPE, USER_ROLES
from gridsvc.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, TooManyRequests
from gridsvc.models import (
    Cell,
    Community,
    Person,
    RoleAssignment,
    SignInBackoff,
    SignInRate,
    Street,
    User,
)
from gridsvc.models.people import active_on
from gridsvc.security import (
    create_access_token,
    hash_password,
    verify_no_password,
    verify_password,
)
from gridsvc.services.clock import local_today
from gridsvc.settings import get_settings


@dataclass(frozen=True)
class ScopeSpec:
    """A scope named by code: kind is street, community or cell (None for admin)."""

    kind: str | None = None
    code: str | None = None


def _resolve_scope(session: Session, scope: ScopeSpec) -> dict[str, int | None]:
    ids: dict[str, int | None] = {"street_id": None, "community_id": None, "cell_id": None}
    if scope.kind is None:
        return ids
    model = {"street": Street, "community": Community, "cell": Cell}.get(scope.kind)
    if model is None:
        raise InvalidInput(f"unknown scope kind {scope.kind!r}; use street, community or cell")
    found = session.scalar(select(model.id).where(model.code == scope.code))
    if found is None:
        raise NotFound(f"no {scope.kind} with code {scope.code!r}")
    ids[f"{scope.kind}_id"] = found
    return ids


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise InvalidInput("passwords must have at least 8 characters")


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    scope: ScopeSpec = ScopeSpec(),
    full_name: str | None = None,
    person_id: int | None = None,
) -> User:
    """Create a user; the scope must suit the role (a 格长 is scoped to a cell, etc.).

    A 格长's or 网格员's account is linked to their registered person (`person_id`, or else the
    cell's one active holder of that role), so that their scope follows their role assignment
    (see :func:`gridsvc.services.principals.scope_cell`)."""
    if role not in USER_ROLES:
        raise InvalidInput(f"unknown role {role!r}; use one of {', '.join(USER_ROLES)}")
    allowed = USER_ROLE_SCOPE[role]
    if (scope.kind is None) != (not allowed) or (scope.kind and scope.kind not in allowed):
        need = " or ".join(allowed) if allowed else "no scope"
        raise InvalidInput(f"the {role} role needs {need} as its scope, not {scope.kind or 'none'}")
    _check_password(password)
    ids = _resolve_scope(session, scope)
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        full_name=full_name,
        person_id=_person_of_account(session, role, ids["cell_id"], person_id),
        **ids,
    )
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a user named {username!r} already exists") from exc
    return user


def _person_of_account(
    session: Session, role: str, cell_id: int | None, person_id: int | None
) -> int | None:
    """The person a new account belongs to: the one named, else (for a cell role) the cell's
    single active holder of that role, if there is exactly one."""
    if person_id is not None:
        if session.get(Person, person_id) is None:
            raise NotFound(f"no person #{person_id}")
        return person_id
    if role not in ("leader", "grid_worker") or cell_id is None:
        return None
    holders = session.scalars(
        select(RoleAssignment.person_id)
        .where(
            RoleAssignment.cell_id == cell_id,
            RoleAssignment.role == role,
            active_on(RoleAssignment, local_today()),
        )
        .limit(2)
    ).all()
    return holders[0] if len(holders) == 1 else None


def authenticate(session: Session, username: str, password: str, client: str = "unknown") -> User:
    """The user if the password is right. Wrong passwords for a user name from one client
    address make that pair wait ever longer (429); unknown names answer exactly like wrong
    passwords, after the same argon2 work."""
    name, client = username[:64], client[:64]
    now = datetime.now(UTC)
    blocked_until = session.scalar(
        select(SignInBackoff.blocked_until).where(
            SignInBackoff.username == name, SignInBackoff.client == client
        )
    )
    if blocked_until is not None and blocked_until > now:
        wait = max(1, math.ceil((blocked_until - now).total_seconds()))
        raise TooManyRequests(
            f"too many wrong passwords for this user name from {client}; try again in {wait} s",
            retry_after=wait,
        )
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        right = verify_no_password(password)  # the same time as a real check
    else:
        right = verify_password(password, user.password_hash)
    if not right:
        _record_failure(session, name, client, now)
        session.commit()
        raise NotAuthenticated("wrong user name or password")
    cleared = session.execute(
        delete(SignInBackoff).where(SignInBackoff.username == name, SignInBackoff.client == client)
    )
    if cleared.rowcount:
        session.commit()
    return user


#: The sign-in rate window.
RATE_WINDOW = timedelta(minutes=1)


def count_sign_in_attempt(session: Session, client: str, limit: int) -> None:
    """Count one sign-in attempt from ``client``; refuse (429) beyond ``limit`` a minute.

    One atomic upsert per attempt in a table every worker shares; a window starts at the first
    attempt after the last one ended. Committed at once, so a refused or failed sign-in still
    counts."""
    client = client[:64]
    now = datetime.now(UTC)
    expired = SignInRate.window_start <= now - RATE_WINDOW
    stmt = pg_insert(SignInRate).values(client=client, window_start=now, attempts=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[SignInRate.client],
        set_={
            "attempts": case((expired, 1), else_=SignInRate.attempts + 1),
            "window_start": case((expired, now), else_=SignInRate.window_start),
        },
    ).returning(SignInRate.attempts, SignInRate.window_start)
    attempts, window_start = session.execute(stmt).one()
    # Windows that ended an hour ago are forgotten (bounded table; indexed by window_start).
    session.execute(delete(SignInRate).where(SignInRate.window_start < now - timedelta(hours=1)))
    session.commit()
    if attempts > limit:
        wait = max(1, math.ceil((window_start + RATE_WINDOW - now).total_seconds()))
        raise TooManyRequests(
            f"more than {limit} sign-in attempts in a minute from {client}; wait a minute",
            retry_after=wait,
        )


def backoff_seconds(failures: int) -> float:
    """How long a (user name, address) waits after this many wrong passwords in a row."""
    auth = get_settings().auth
    beyond = failures - auth.backoff_free_failures
    if beyond < 0:
        return 0.0
    return min(auth.backoff_first_seconds * 2 ** min(beyond, 40), auth.backoff_max_seconds)


def _record_failure(session: Session, name: str, client: str, now: datetime) -> None:
    """Count one more wrong password of (name, client) and set its wait (one atomic upsert)."""
    stmt = pg_insert(SignInBackoff).values(username=name, client=client, failures=1, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[SignInBackoff.username, SignInBackoff.client],
        set_={"failures": SignInBackoff.failures + 1, "updated_at": now},
    ).returning(SignInBackoff.failures)
    failures = session.execute(stmt).scalar_one()
    wait = backoff_seconds(failures)
    if wait:
        session.execute(
            update(SignInBackoff)
            .where(SignInBackoff.username == name, SignInBackoff.client == client)
            .values(blocked_until=now + timedelta(seconds=wait))
        )
    # Pairs quiet for a day past the longest wait are forgotten (bounded table).
    horizon = now - timedelta(seconds=get_settings().auth.backoff_max_seconds, days=1)
    session.execute(delete(SignInBackoff).where(SignInBackoff.updated_at < horizon))


def unlock(session: Session, username: str) -> int:
    """Forget the sign-in back-off of a user name from every address; how many were cleared."""
    cleared = session.execute(delete(SignInBackoff).where(SignInBackoff.username == username))
    session.commit()
    return cleared.rowcount or 0


def token_user(session: Session, user_id: int, version: int) -> User:
    """The active user a token names, if the token's version is still current."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("the user of this token no longer exists or is disabled")
    if user.token_version != version:
        raise NotAuthenticated("this token was revoked (signed out or password changed)")
    return user


def desktop_token(session: Session, username: str, days: int) -> str:
    """A bearer token for a desktop client (QGIS, GDAL) of an active user, valid for `days`
    (at most ``GRIDSVC_DESKTOP_TOKEN_MAX_DAYS``); it carries the user's token version, so
    signing out, a new password or disabling the user revokes it."""
    most = get_settings().auth.desktop_token_max_days
    if not 1 <= days <= most:
        raise InvalidInput(f"有效期须在 1 到 {most} 天之间")
    user = _find(session, username)
    if not user.is_active:
        raise InvalidInput(f"用户 {username} 已停用")
    return create_access_token(user.id, user.role, user.token_version, minutes=days * 24 * 60)


def _find(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def _revoke(session: Session, user: User) -> None:
    """Every token issued to the user so far stops working."""
    session.execute(
        update(User).where(User.id == user.id).values(token_version=User.token_version + 1)
    )
    session.expire(user, ["token_version"])


def sign_out(session: Session, user_id: int) -> None:
    """End every session of the user (all their tokens die)."""
    user = session.get(User, user_id)
    if user is not None:
        _revoke(session, user)
        session.commit()


def change_password(session: Session, username: str, password: str) -> User:
    """Set a new password; every token issued before it dies."""
    _check_password(password)
    user = _find(session, username)
    user.password_hash = hash_password(password)
    _revoke(session, user)
    session.commit()
    return user


def set_active(session: Session, username: str, active: bool) -> User:
    """Enable or disable a user; disabling also kills every token they hold."""
    user = _find(session, username)
    user.is_active = active
    _revoke(session, user)
    session.commit()
    return user


def delete_user(session: Session, username: str) -> None:
    """Delete a user; their tokens name their id, which is never given to anyone again."""
    user = _find(session, username)
    session.delete(user)
    session.execute(delete(SignInBackoff).where(SignInBackoff.username == username))
    session.commit()
