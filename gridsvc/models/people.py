"""Dated role assignments: who is 格长, 网格员, 楼栋长 … of which cell, building or household."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from gridsvc.db.base import Base
from gridsvc.domain import ASSIGNMENT_ROLES
from gridsvc.models._types import one_of

_TARGET_RULE = (
    "(role IN ('leader', 'grid_worker') AND cell_id IS NOT NULL) OR "
    "(role IN ('building_captain', 'unit_captain', 'assistant') AND building_id IS NOT NULL) OR "
    "(role = 'informant' AND household_id IS NOT NULL)"
)


class RoleAssignment(Base):
    """A person holding a role for a cell, building or household, from starts_on to ends_on."""

    __tablename__ = "role_assignment"
    __table_args__ = (
        CheckConstraint(one_of("role", tuple(ASSIGNMENT_ROLES)), name="role_known"),
        CheckConstraint(_TARGET_RULE, name="target_matches_role"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="date_range"),
        CheckConstraint(
            "employment IS NULL OR employment IN ('full_time', 'part_time')",
            name="employment_known",
        ),
        # 格长: exactly one active (not ended) leader per cell, enforced by the database.
        Index(
            "ux_role_assignment_one_active_leader",
            "cell_id",
            unique=True,
            postgresql_where=text("role = 'leader' AND ends_on IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(24))
    cell_id: Mapped[int | None] = mapped_column(
        ForeignKey("cell.id", ondelete="CASCADE"), index=True
    )
    building_id: Mapped[int | None] = mapped_column(
        ForeignKey("building.id", ondelete="CASCADE"), index=True
    )
    household_id: Mapped[int | None] = mapped_column(
        ForeignKey("household.id", ondelete="CASCADE"), index=True
    )
    employment: Mapped[str | None] = mapped_column(String(16))
    starts_on: Mapped[date] = mapped_column(Date, server_default=func.current_date())
    ends_on: Mapped[date | None] = mapped_column(Date)
