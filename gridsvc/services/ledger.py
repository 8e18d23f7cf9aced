"""The cell's 台账 (households, searchable and paged) and 民情日记 (its 走访), and the changes a
cell's team makes there: a visit recorded, a household's flags set (audited, before/after).

Framework-free; reads go through :mod:`gridsvc.repositories.ledger`, bounded by the cell.
What a viewer sees is masked as the API masks it (:mod:`gridsvc.auth.masking`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsvc.auth import policy
from gridsvc.auth.masking import mask_personal, mask_visit, sees_personal_data
from gridsvc.auth.policy import require_in_scope
from gridsvc.auth.principal import Principal
from gridsvc.domain import HOUSEHOLD_FLAGS
from gridsvc.errors import InvalidInput, NotFound
from gridsvc.models import Household
from gridsvc.repositories import ledger as repo
from gridsvc.services import audit, people


def households(
    session: Session,
    principal: Principal,
    cell_id: int,
    *,
    search: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The 台账 of a cell (already checked to be in scope): households with flags and last
    visit; masked for roles that may not read personal data, who cannot search by name."""
    rows, total = repo.households(
        session,
        cell_id,
        search=(search or "").strip() or None,
        search_names=sees_personal_data(principal),
        limit=limit,
        offset=offset,
    )
    return [mask_personal(principal, r) for r in rows], total


def household(session: Session, principal: Principal, household_id: int) -> dict[str, Any]:
    """One household (masked as above), NotFound outside the scope."""
    place = people.household_place(session, household_id)
    require_in_scope(principal, place, "this household")
    row = repo.household(session, household_id)
    if row is None:
        raise NotFound(f"no household #{household_id}")
    return mask_personal(principal, row)


def diary(
    session: Session, principal: Principal, cell_id: int, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The 民情日记 of a cell: its visits, newest first (free text withheld from viewers)."""
    rows, total = repo.diary(session, cell_id, limit=limit, offset=offset)
    return [mask_personal(principal, mask_visit(principal, r)) for r in rows], total


def team(session: Session, cell_id: int) -> list[dict[str, Any]]:
    """Who may be named as the visitor: the cell's active team, 格长 first."""
    return repo.team(session, cell_id)


def record_visit(
    session: Session,
    principal: Principal,
    household_id: int,
    *,
    visited_on: date,
    person_id: int | None,
    note: str | None,
    follow_up: str | None,
) -> dict[str, Any]:
    """Record a 走访 (what was heard, what is to follow); the people service checks the
    scope, the visitor and the date, and commits."""
    policy.require(principal, "visits.record")
    visit = people.record_visit(
        session,
        principal,
        household_id=household_id,
        visited_on=visited_on,
        person_id=person_id,
        note=(note or "").strip() or None,
        follow_up=(follow_up or "").strip() or None,
    )
    return visit


def set_flags(
    session: Session, principal: Principal, household_id: int, flags: set[str]
) -> dict[str, bool]:
    """Set a household's flags to exactly `flags` (低保, 独居老人 …); the change is written
    to the audit log with the flags before and after. Returns the flags now."""
    unknown = flags - set(HOUSEHOLD_FLAGS)
    if unknown:
        raise InvalidInput(f"未知的住户标记：{', '.join(sorted(unknown))}")
    policy.require(principal, "households.edit")
    place = people.household_place(session, household_id)
    require_in_scope(principal, place, "this household")
    hh = session.scalar(select(Household).where(Household.id == household_id).with_for_update())
    if hh is None:
        raise NotFound(f"no household #{household_id}")
    before = {key: bool(getattr(hh, key)) for key in HOUSEHOLD_FLAGS}
    after = {key: key in flags for key in HOUSEHOLD_FLAGS}
    if before != after:
        for key, value in after.items():
            setattr(hh, key, value)
        audit.record(
            session,
            "household.flags",
            "household",
            before=before,
            after=after,
            row_id=household_id,
            street_id=place.street_id,
            community_id=place.community_id,
            cell_id=place.cell_id,
        )
    session.commit()
    return after
