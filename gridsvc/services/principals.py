"""A stored account as a Principal: its role, and the scope its role assignments give it today."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsvc.auth.principal import Principal
from gridsvc.models import Cell, RoleAssignment, User
from gridsvc.models.people import active_on
from gridsvc.services.clock import local_today

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
