"""Who may see and change what: a user's role and scope (a street, community or cell).

Every read and write route passes its target through :func:`require_in_scope`; list queries
filter with :func:`scope_filter`. A 格长 sees their own cell, street staff their whole street.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, select, true
from sqlalchemy.orm import Session

from gridsvc.domain import HOUSEHOLD_FLAGS
from gridsvc.errors import Forbidden
from gridsvc.models import Cell, Community, RoleAssignment, User
from gridsvc.models.people import active_on
from gridsvc.services.clock import local_today
from gridsvc.services.permissions import ROLES


@dataclass(frozen=True)
class Place:
    """Where a target lies in the hierarchy (any of the ids may be unknown)."""

    street_id: int | None = None
    community_id: int | None = None
    cell_id: int | None = None


@dataclass(frozen=True)
class Principal:
    """The signed-in user, as the services need it."""

    id: int
    username: str
    role: str
    street_id: int | None = None
    community_id: int | None = None
    cell_id: int | None = None
    #: The community of a cell-scoped user (filled at sign-in, for community-level reads).
    cell_community_id: int | None = None

    @property
    def is_admin(self) -> bool:
        """True for the admin role (no scope limit)."""
        return self.role == "admin"

    @property
    def scope_label(self) -> str:
        """A short description of the scope for messages."""
        if self.is_admin:
            return "all areas"
        if self.street_id:
            return f"street #{self.street_id}"
        if self.community_id:
            return f"community #{self.community_id}"
        if self.cell_id is None:
            return "no cell (you hold no active 格长 or 网格员 role)"
        return f"cell #{self.cell_id}"


#: Sign-in roles whose scope is one cell, and the assignment roles that give them that cell.
CELL_ROLES = {"leader": ("leader", "grid_worker"), "grid_worker": ("grid_worker", "leader")}


def scope_cell(session: Session, user: User) -> int | None:
    """The cell a 格长's or 网格员's sign-in reaches: the cell of their person's active role
    assignment today (so a split or merge that moves their role moves their scope), the role
    of their account first; None when the person holds no such role any more. An account
    not linked to a person keeps the cell it was created with."""
    roles = CELL_ROLES.get(user.role)
    if roles is None or user.person_id is None:
        return user.cell_id
    rows = session.execute(
        select(RoleAssignment.cell_id, RoleAssignment.role)
        .where(
            RoleAssignment.person_id == user.person_id,
            RoleAssignment.role.in_(roles),
            RoleAssignment.cell_id.is_not(None),
            active_on(RoleAssignment, local_today()),
        )
        .order_by(RoleAssignment.starts_on.desc(), RoleAssignment.id.desc())
    ).all()
    if not rows:
        return None
    cells = [cell for cell, _ in rows]
    if user.cell_id in cells:  # several roles: the cell the account names, if still held
        return user.cell_id
    own_role = [cell for cell, role in rows if role == user.role]
    return (own_role or cells)[0]


def principal_for(session: Session, user: User) -> Principal:
    """Build the Principal of a user (cell-scoped users: their cell from :func:`scope_cell`)."""
    cell_id = scope_cell(session, user) if user.role in CELL_ROLES else user.cell_id
    cell_community = None
    if cell_id is not None:
        cell_community = session.scalar(select(Cell.community_id).where(Cell.id == cell_id))
    return Principal(
        id=user.id,
        username=user.username,
        role=user.role,
        street_id=user.street_id,
        community_id=user.community_id,
        cell_id=cell_id,
        cell_community_id=cell_community,
    )


def allows(principal: Principal, place: Place) -> bool:
    """True when the place lies inside the principal's scope."""
    if principal.is_admin:
        return True
    if principal.street_id is not None:
        return place.street_id == principal.street_id
    if principal.community_id is not None:
        return place.community_id == principal.community_id
    if principal.cell_id is not None:
        return place.cell_id == principal.cell_id
    return False


def require_in_scope(principal: Principal, place: Place, what: str) -> None:
    """Raise Forbidden unless the place is inside the principal's scope."""
    if not allows(principal, place):
        raise Forbidden(f"{what} is outside your scope ({principal.scope_label})")


def require_role(principal: Principal, roles: Iterable[str], action: str) -> None:
    """Raise Forbidden unless the principal has one of the roles (admin always may)."""
    allowed = set(roles) | {"admin"}
    if principal.role not in allowed:
        raise Forbidden(f"the {principal.role} role may not {action}")


def scope_filter(principal: Principal, *, cell_id, community_id, street_id) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """A SQL condition limiting rows to the scope, given the columns that locate a row.

    Pass the columns of the row's cell, community and street (any may be None when the row
    has no such column; the condition then uses what is available).
    """
    if principal.is_admin:
        return true()
    if principal.street_id is not None:
        if street_id is not None:
            return street_id == principal.street_id
        return community_id.in_(
            select(Community.id).where(Community.street_id == principal.street_id)
        )
    if principal.community_id is not None:
        return community_id == principal.community_id
    if principal.cell_id is None:  # a 格长 or 网格员 who no longer holds a cell sees nothing
        return false()
    if cell_id is not None:
        return cell_id == principal.cell_id
    # A cell-scoped user looking at community-level rows sees only their cell's community.
    return and_(community_id == principal.cell_community_id)


#: Roles that see personal fields (names, phones, 身份证号, rooms, flags) unmasked: the
#: ``personal.read`` row of the permission matrix.
PERSONAL_DATA_ROLES = ROLES["personal.read"] | {"admin"}


def sees_personal_data(principal: Principal) -> bool:
    """True when the principal's role may read personal fields unmasked."""
    return principal.role in PERSONAL_DATA_ROLES


def mask_phone(phone: str | None) -> str | None:
    """138****1234 (the middle digits hidden)."""
    return None if not phone else (phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****")


def mask_name(name: str | None) -> str | None:
    """张** (only the family name kept)."""
    return None if not name else name[0] + "*" * (len(name) - 1)


def mask_id_number(value: str | None) -> str | None:
    """3201**********1234 (region prefix and last four kept)."""
    return None if not value else value[:4] + "*" * max(len(value) - 8, 0) + value[-4:]


#: Household flags (低保, 残疾 …): withheld (null) for roles that may not see personal data.
_FLAG_KEYS = tuple(HOUSEHOLD_FLAGS)
#: Exact-address fields of a household: withheld (null) for those roles.
_ADDRESS_KEYS = ("unit", "room")


def mask_personal(principal: Principal, row: dict[str, Any]) -> dict[str, Any]:
    """A household (or resident) row with its personal fields masked unless the principal may
    see them: head_name/name → 张**, phone → 138****1234, id_number → 3201**…1234, unit/room
    and the flags (低保, 残疾 …) → null."""
    if sees_personal_data(principal):
        return row
    masked = dict(row)
    for key in ("head_name", "name"):
        if key in masked:
            masked[key] = mask_name(masked[key])
    if "phone" in masked:
        masked["phone"] = mask_phone(masked["phone"])
    if "id_number" in masked:
        masked["id_number"] = mask_id_number(masked["id_number"])
    for key in (*_ADDRESS_KEYS, *_FLAG_KEYS):
        if key in masked:
            masked[key] = None
    return masked


def mask_person(principal: Principal, person: dict[str, Any]) -> dict[str, Any]:
    """A registered person masked for roles that may not see personal data: name 张**, phone
    138****1234, 身份证号 masked and the household (their exact address) withheld."""
    if sees_personal_data(principal):
        return person
    masked = mask_personal(principal, person)
    if "household_id" in masked:
        masked["household_id"] = None
    if "roles" in masked:  # a role held for a household names that household too
        masked["roles"] = [{**role, "household_id": None} for role in masked["roles"]]
    return masked


def mask_assignment(principal: Principal, item: dict[str, Any]) -> dict[str, Any]:
    """A role assignment for those roles: the holder's name masked and the household withheld
    when the role is held for a household (a resident, e.g. a 信息员); staff names stay."""
    if sees_personal_data(principal) or item.get("household_id") is None:
        return item
    return {**item, "person": mask_name(item.get("person")), "household_id": None}


def mask_contact(principal: Principal, item: dict[str, Any]) -> dict[str, Any]:
    """A 辖区单位 with its contact person's name and phone masked for those roles."""
    if sees_personal_data(principal):
        return item
    masked = dict(item)
    if "contact_name" in masked:
        masked["contact_name"] = mask_name(masked["contact_name"])
    if "contact_phone" in masked:
        masked["contact_phone"] = mask_phone(masked["contact_phone"])
    return masked


def mask_visit(principal: Principal, item: dict[str, Any]) -> dict[str, Any]:
    """A 走访 record with its free text (the note and the follow-up, often about the
    household) withheld for those roles."""
    if sees_personal_data(principal):
        return item
    return {**item, "note": None, "follow_up": None}


def mask_phones(principal: Principal, item: dict[str, Any]) -> dict[str, Any]:
    """The item (and its nested "people" and "children") with phones masked unless the
    principal may see personal data; names of staff and volunteers stay readable."""
    if sees_personal_data(principal):
        return item
    masked = {**item}
    if "phone" in masked:
        masked["phone"] = mask_phone(masked["phone"])
    for key in ("people", "children"):
        if key in masked:
            masked[key] = [mask_phones(principal, child) for child in masked[key]]
    return masked
