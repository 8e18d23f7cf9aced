"""Housing and people: 楼栋 buildings, 户 households, persons and volunteer teams."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridsvc.db.base import Base
from gridsvc.domain import HOUSEHOLD_FLAGS, PARTY_STATUSES
from gridsvc.models._types import created_at, multipolygon, one_of


class Building(Base):
    """楼栋: a building footprint; belongs to the cell holding the largest share of it."""

    __tablename__ = "building"
    __table_args__ = (
        Index("ix_building_footprint", "footprint", postgresql_using="gist"),
        UniqueConstraint("source", "source_id", name="uq_building_source"),
        CheckConstraint("households >= 0", name="households_nonnegative"),
        CheckConstraint(
            "ST_IsValid(footprint) AND NOT ST_IsEmpty(footprint)", name="footprint_valid"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Where the building came from (e.g. "osm", "demo", a file name) and its id there.
    source: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None]
    address: Mapped[str | None]
    #: The building type (OSM `building` tag: residential, apartments, school, yes …).
    kind: Mapped[str | None] = mapped_column(String(32))
    levels: Mapped[int | None] = mapped_column(SmallInteger)
    units: Mapped[int | None] = mapped_column(SmallInteger)
    households: Mapped[int] = mapped_column(default=0, server_default="0")
    #: True when `households` is an estimate (area × levels ÷ dwelling area), not a register.
    households_estimated: Mapped[bool] = mapped_column(default=False, server_default="false")
    estate_id: Mapped[int | None] = mapped_column(
        ForeignKey("estate.id", ondelete="SET NULL"), index=True
    )
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="SET NULL"), index=True
    )
    #: The general (综合) cell this building is assigned to; households follow it.
    cell_id: Mapped[int | None] = mapped_column(
        ForeignKey("cell.id", ondelete="SET NULL"), index=True
    )
    footprint = mapped_column(multipolygon(), nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = created_at()


class VolunteerTeam(Base):
    """志愿服务队: a volunteer team of a community (党员, 老年, 巾帼, 家政, 治安 …)."""

    __tablename__ = "volunteer_team"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    kind: Mapped[str | None] = mapped_column(String(32))
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="SET NULL"), index=True
    )


class Household(Base):
    """户: a dwelling in a building, with the flags a cell must know (低保, 独居老人 …)."""

    __tablename__ = "household"

    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(
        ForeignKey("building.id", ondelete="CASCADE"), index=True
    )
    unit: Mapped[str | None] = mapped_column(String(16))
    room: Mapped[str | None] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    head_name: Mapped[str | None]
    phone: Mapped[str | None] = mapped_column(String(20))
    low_income: Mapped[bool] = mapped_column(default=False, server_default="false")
    elderly_alone: Mapped[bool] = mapped_column(default=False, server_default="false")
    disabled: Mapped[bool] = mapped_column(default=False, server_default="false")
    extreme_poverty: Mapped[bool] = mapped_column(default=False, server_default="false")
    floating: Mapped[bool] = mapped_column(default=False, server_default="false")
    rental: Mapped[bool] = mapped_column(default=False, server_default="false")
    created_at: Mapped[datetime] = created_at()

    __table_args__ = (CheckConstraint("size >= 0", name="size_nonnegative"),)


assert set(HOUSEHOLD_FLAGS) == {
    "low_income",
    "elderly_alone",
    "disabled",
    "extreme_poverty",
    "floating",
    "rental",
}, "Household flag columns and gridsvc.domain.HOUSEHOLD_FLAGS must agree"


class Person(Base):
    """A resident or worker: name, phone, party status, volunteer team."""

    __tablename__ = "person"
    __table_args__ = (
        CheckConstraint(
            "party_status IS NULL OR " + one_of("party_status", tuple(PARTY_STATUSES)),
            name="party_status_known",
        ),
        # Homes of volunteers (coverage: households within walking distance of a volunteer).
        Index(
            "ix_person_volunteer_household",
            "household_id",
            postgresql_where=text("volunteer_team_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    phone: Mapped[str | None] = mapped_column(String(20))
    id_number: Mapped[str | None] = mapped_column(String(18))
    gender: Mapped[str | None] = mapped_column(String(8))
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    household_id: Mapped[int | None] = mapped_column(
        ForeignKey("household.id", ondelete="SET NULL"), index=True
    )
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="SET NULL"), index=True
    )
    #: 在职 in_service / 直管 direct / 流动 floating / 离退休 retired, or NULL (not a member).
    party_status: Mapped[str | None] = mapped_column(String(16))
    #: The day an in-service (在职) member registered (报到) with the community.
    party_registered_on: Mapped[date | None] = mapped_column(Date)
    volunteer_team_id: Mapped[int | None] = mapped_column(
        ForeignKey("volunteer_team.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = created_at()
