"""The cell's 台账 and 民情日记 as queries: households with their last visit, the cell's visits
with where they were made, the cell's team — each bounded by the cell's buildings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gridsvc.domain import HOUSEHOLD_FLAGS
from gridsvc.models import Building, Cell, Household, Person, RoleAssignment, Visit
from gridsvc.repositories.cells import household_columns


def _last_visit() -> Any:
    return (
        select(func.max(Visit.visited_on))
        .where(Visit.household_id == Household.id)
        .correlate(Household)
        .scalar_subquery()
    )


def households(
    session: Session,
    cell_id: int,
    *,
    search: str | None,
    search_names: bool,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """(households of the cell's buildings with their last visit, number matched), by
    building, unit, room; `search` matches the building, unit, room (and, with
    `search_names`, the head of household or phone)."""
    conds: list[Any] = [Building.cell_id == cell_id]
    if search:
        like = f"%{search}%"
        fields = [Building.name.ilike(like), Household.unit.ilike(like), Household.room.ilike(like)]
        if search_names:
            fields += [Household.head_name.ilike(like), Household.phone.ilike(like)]
        conds.append(or_(*fields))
    base = select(Household.id).join(Building, Building.id == Household.building_id).where(*conds)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        select(*household_columns(), _last_visit().label("last_visit"))
        .join(Building, Building.id == Household.building_id)
        .where(*conds)
        .order_by(Building.name, Household.unit, Household.room, Household.id)
        .limit(limit)
        .offset(offset)
    ).mappings()
    return [dict(r) for r in rows], int(total)


def household(session: Session, household_id: int) -> dict[str, Any] | None:
    """One household with its building and cell, or None."""
    row = (
        session.execute(
            select(
                Household.id,
                Building.cell_id,
                Cell.code.label("cell_code"),
                Building.name.label("building_name"),
                Household.unit,
                Household.room,
                Household.head_name,
                *[getattr(Household, key).label(key) for key in HOUSEHOLD_FLAGS],
            )
            .join(Building, Building.id == Household.building_id)
            .outerjoin(Cell, Cell.id == Building.cell_id)
            .where(Household.id == household_id)
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row else None


def diary(
    session: Session, cell_id: int, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """(the cell's 走访, newest first, with the household's building, unit and room; number)."""
    base = (
        select(Visit.id)
        .join(Household, Household.id == Visit.household_id)
        .join(Building, Building.id == Household.building_id)
        .where(Building.cell_id == cell_id)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        select(
            Visit.id,
            Visit.household_id,
            Visit.visited_on,
            Visit.note,
            Visit.follow_up,
            Person.name.label("visitor"),
            Building.name.label("building_name"),
            Household.unit,
            Household.room,
        )
        .join(Household, Household.id == Visit.household_id)
        .join(Building, Building.id == Household.building_id)
        .outerjoin(Person, Person.id == Visit.person_id)
        .where(Building.cell_id == cell_id)
        .order_by(Visit.visited_on.desc(), Visit.id.desc())
        .limit(limit)
        .offset(offset)
    ).mappings()
    return [dict(r) for r in rows], int(total)


def team(session: Session, cell_id: int) -> list[dict[str, Any]]:
    """The people with an active role in the cell (格长 first): who may have visited."""
    rows = session.execute(
        select(Person.id, Person.name, RoleAssignment.role)
        .join(RoleAssignment, RoleAssignment.person_id == Person.id)
        .where(RoleAssignment.cell_id == cell_id, RoleAssignment.ends_on.is_(None))
        .order_by((RoleAssignment.role != "leader"), Person.name, Person.id)
    ).mappings()
    return [dict(r) for r in rows]
