"""Users: create with a role and scope, authenticate with lock-out after repeated failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridsvc.domain import USER_ROLE_SCOPE, USER_ROLES
from gridsvc.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from gridsvc.models import Cell, Community, Person, RoleAssignment, Street, User
from gridsvc.models.people import active_on
from gridsvc.security import hash_password, verify_password
from gridsvc.services.clock import local_today

#: Failed sign-ins before an account is locked, and for how long.
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15


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
    (see :func:`gridsvc.services.access.scope_cell`)."""
    if role not in USER_ROLES:
        raise InvalidInput(f"unknown role {role!r}; use one of {', '.join(USER_ROLES)}")
    allowed = USER_ROLE_SCOPE[role]
    if (scope.kind is None) != (not allowed) or (scope.kind and scope.kind not in allowed):
        need = " or ".join(allowed) if allowed else "no scope"
        raise InvalidInput(f"the {role} role needs {need} as its scope, not {scope.kind or 'none'}")
    if len(password) < 8:
        raise InvalidInput("passwords must have at least 8 characters")
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


def authenticate(session: Session, username: str, password: str) -> User:
    """The user if the password is right; counts failures and locks the account after 5."""
    now = datetime.now(UTC)
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        raise NotAuthenticated("wrong user name or password")
    if user.locked_until and user.locked_until > now:
        raise NotAuthenticated(
            f"this account is locked after repeated failures until {user.locked_until:%H:%M} UTC"
        )
    if not verify_password(password, user.password_hash):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            user.failed_logins = 0
        session.commit()
        raise NotAuthenticated("wrong user name or password")
    if user.failed_logins or user.locked_until:
        user.failed_logins = 0
        user.locked_until = None
        session.commit()
    return user


def get_active_user(session: Session, username: str) -> User:
    """The active user with this name (for token checks)."""
    user = session.scalar(select(User).where(User.username == username, User.is_active.is_(True)))
    if user is None:
        raise NotAuthenticated("the user of this token no longer exists or is disabled")
    return user
