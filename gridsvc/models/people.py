"""Who is responsible for what: dated role assignments, the four-level scheme (sectors, duties),
辖区单位, 联系户, 公益岗位 and 走访 visits.

Dated rows are active on day D when ``starts_on <= D AND (ends_on IS NULL OR ends_on > D)``:
``ends_on`` is the first day the row no longer holds (a role ended today and its successor
starting today never overlap).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    SmallInteger,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridsvc.db.base import Base
from gridsvc.domain import ASSIGNMENT_ROLES, ORGANISATION_KINDS, SERVICE_POST_KINDS
from gridsvc.models._types import created_at, one_of

_TARGET_RULE = (
    "(role = 'community_head' AND community_id IS NOT NULL) OR "
    "(role IN ('sector_head', 'branch_head') AND sector_id IS NOT NULL) OR "
    "(role IN ('leader', 'grid_worker') AND cell_id IS NOT NULL) OR "
    "(role IN ('building_captain', 'unit_captain', 'assistant') AND building_id IS NOT NULL) OR "
    "(role = 'informant' AND household_id IS NOT NULL)"
)

_DATES = "ends_on IS NULL OR ends_on >= starts_on"


def active_on(model: Any, day: date) -> Any:
    """SQL condition: a dated row (starts_on/ends_on) is active on `day` (the rule above)."""
    return (model.starts_on <= day) & (model.ends_on.is_(None) | (model.ends_on > day))


class RoleAssignment(Base):
    """A person holding a role for a community, sector, cell, building or household, from
    starts_on until ends_on (history is kept: ending a role sets ends_on)."""

    __tablename__ = "role_assignment"
    __table_args__ = (
        CheckConstraint(one_of("role", tuple(ASSIGNMENT_ROLES)), name="role_known"),
        CheckConstraint(_TARGET_RULE, name="target_matches_role"),
        CheckConstraint(_DATES, name="date_range"),
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
        # Migration 0003 adds ex_role_assignment_one_active_leader_per_day: an exclusion
        # constraint (btree_gist) so that no two 格长 of a cell overlap on any day, history
        # included (EXCLUDE USING gist (cell_id WITH =, daterange(starts_on, ends_on) WITH &&)
        # WHERE role = 'leader').
        # One active head per community and per sector.
        Index(
            "ux_role_assignment_one_active_community_head",
            "community_id",
            unique=True,
            postgresql_where=text("role = 'community_head' AND ends_on IS NULL"),
        ),
        Index(
            "ux_role_assignment_one_active_sector_head",
            "sector_id",
            unique=True,
            postgresql_where=text("role IN ('sector_head', 'branch_head') AND ends_on IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(24))
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), index=True
    )
    sector_id: Mapped[int | None] = mapped_column(
        ForeignKey("sector.id", ondelete="CASCADE"), index=True
    )
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


class LevelDuty(Base):
    """The duties of one level of the four-level scheme (configurable text)."""

    __tablename__ = "level_duty"
    __table_args__ = (CheckConstraint("level BETWEEN 1 AND 4", name="level_1_to_4"),)

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    title: Mapped[str]
    duties: Mapped[str]
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_by: Mapped[str | None] = mapped_column(String(64))


class Sector(Base):
    """二级网格 (片区, level 2) or 三级网格 (党支部 area, level 3) inside a community."""

    __tablename__ = "sector"
    __table_args__ = (
        CheckConstraint("level IN (2, 3)", name="level_2_or_3"),
        CheckConstraint("parent_id IS NULL OR level = 3", name="only_level_3_has_parent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str]
    level: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="2")
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("sector.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = created_at()


class CellSector(Base):
    """Which sector (level 2 or 3) a cell belongs to."""

    __tablename__ = "cell_sector"

    cell_id: Mapped[int] = mapped_column(
        ForeignKey("cell.id", ondelete="CASCADE"), primary_key=True
    )
    sector_id: Mapped[int] = mapped_column(ForeignKey("sector.id", ondelete="CASCADE"), index=True)


class Organisation(Base):
    """辖区单位: an organisation in the area (school, company …) with a contact person."""

    __tablename__ = "organisation"
    __table_args__ = (
        CheckConstraint(one_of("kind", tuple(ORGANISATION_KINDS)), name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    kind: Mapped[str] = mapped_column(String(16), default="other", server_default="other")
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), index=True
    )
    cell_id: Mapped[int | None] = mapped_column(
        ForeignKey("cell.id", ondelete="SET NULL"), index=True
    )
    building_id: Mapped[int | None] = mapped_column(
        ForeignKey("building.id", ondelete="SET NULL"), index=True
    )
    address: Mapped[str | None]
    contact_name: Mapped[str | None]
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = created_at()


class LinkedHousehold(Base):
    """联系户: a household a party member is linked to (包保), from starts_on until ends_on."""

    __tablename__ = "linked_household"
    __table_args__ = (
        CheckConstraint(_DATES, name="date_range"),
        Index(
            "ux_linked_household_active",
            "person_id",
            "household_id",
            unique=True,
            postgresql_where=text("ends_on IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("household.id", ondelete="CASCADE"), index=True
    )
    starts_on: Mapped[date] = mapped_column(Date, server_default=func.current_date())
    ends_on: Mapped[date | None] = mapped_column(Date)


class ServicePost(Base):
    """公益岗位: a post (宣教, 维权, 帮扶, 环保 …) a party member claims in a community."""

    __tablename__ = "service_post"
    __table_args__ = (
        CheckConstraint(one_of("kind", tuple(SERVICE_POST_KINDS)), name="kind_known"),
        CheckConstraint(_DATES, name="date_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None]
    starts_on: Mapped[date] = mapped_column(Date, server_default=func.current_date())
    ends_on: Mapped[date | None] = mapped_column(Date)


class PostActivity(Base):
    """One activity done on a 公益岗位: when, how long, what."""

    __tablename__ = "post_activity"
    __table_args__ = (CheckConstraint("hours IS NULL OR hours >= 0", name="hours_nonnegative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(
        ForeignKey("service_post.id", ondelete="CASCADE"), index=True
    )
    happened_on: Mapped[date] = mapped_column(Date)
    hours: Mapped[float | None] = mapped_column(Numeric(5, 1))
    note: Mapped[str | None]
    created_at: Mapped[datetime] = created_at()


class Visit(Base):
    """走访: who visited which household, when, with a note."""

    __tablename__ = "visit"
    __table_args__ = (Index("ix_visit_household_day", "household_id", "visited_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), index=True
    )
    visited_on: Mapped[date] = mapped_column(Date, index=True)
    #: What was heard (民情).
    note: Mapped[str | None]
    #: What is to be done about it (跟进事项).
    follow_up: Mapped[str | None]
    created_at: Mapped[datetime] = created_at()
