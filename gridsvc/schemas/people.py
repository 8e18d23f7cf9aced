"""Request bodies of the people, duties and coverage routes."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from gridsvc.domain import MAX_PERSON_NAME
from gridsvc.schemas import Code, Name


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonIn(_Body):
    """A person to register: in a community (code) or a household (id)."""

    name: str = Field(min_length=1, max_length=MAX_PERSON_NAME, description="姓名")
    community: Code | None = Field(None, description="community code")
    household_id: int | None = None
    phone: str | None = Field(None, max_length=32)
    id_number: str | None = Field(None, max_length=18, description="身份证号 (checked)")
    gender: str | None = Field(None, max_length=8)
    birth_year: int | None = Field(None, ge=1900, le=2100)
    party_status: Code | None = Field(
        None, description="in_service, direct, floating, retired (or 在职/直管/流动/离退休)"
    )
    party_registered_on: date | None = Field(None, description="在职党员报到日期")
    volunteer_team: Name | None = Field(None, description="volunteer team id or name")


class AssignmentIn(_Body):
    """Give a person a role; name the target the role needs."""

    person_id: int
    role: Code = Field(description="community_head, sector_head, branch_head, leader, …")
    community: Code | None = Field(None, description="community code (community_head)")
    sector: Code | None = Field(None, description="sector code (sector_head, branch_head)")
    cell: Code | None = Field(None, description="cell code (leader, grid_worker)")
    building: Name | None = Field(None, description="building id, or name within the cell")
    household_id: int | None = None
    unit: Name | None = None
    room: Name | None = None
    employment: Code | None = Field(None, description="full_time/part_time (网格员)")
    starts_on: date | None = None
    ends_on: date | None = None


class EndIn(_Body):
    """End something on a day (default today)."""

    ends_on: date | None = None


class DutyIn(_Body):
    """New duty text for a level."""

    duties: str = Field(min_length=1, max_length=2000)
    title: str | None = Field(None, max_length=64)


class SectorIn(_Body):
    """A 片区 (level 2) or 党支部 area (level 3) with its cells."""

    name: str = Field(min_length=1, max_length=64)
    level: int = Field(2, ge=2, le=3)
    parent: Code | None = Field(None, description="level-2 sector code (for level 3)")
    code: str | None = Field(None, max_length=32)
    cells: list[Code] = Field(default_factory=list, max_length=1000)


class OrganisationIn(_Body):
    """A 辖区单位 with its contact."""

    name: str = Field(min_length=1, max_length=128)
    kind: Code = "other"
    cell: Code | None = None
    address: str | None = Field(None, max_length=256)
    contact_name: str | None = Field(None, max_length=64)
    contact_phone: str | None = Field(None, max_length=32)


class LinkIn(_Body):
    """Link a member to a household (联系户)."""

    household_id: int
    starts_on: date | None = None


class PostIn(_Body):
    """Claim a 公益岗位."""

    kind: Code = Field(description="education, rights, assistance, environment … (or 宣教, 维权 …)")
    title: str | None = Field(None, max_length=128)
    starts_on: date | None = None


class ActivityIn(_Body):
    """One activity on a post."""

    happened_on: date
    hours: float | None = Field(None, ge=0, le=24)
    note: str | None = Field(None, max_length=2000)


class VisitIn(_Body):
    """A 走访 visit."""

    household_id: int
    visited_on: date
    person_id: int | None = None
    note: str | None = Field(None, max_length=2000, description="what was heard")
    follow_up: str | None = Field(None, max_length=2000, description="跟进事项")


class TeamIn(_Body):
    """A 志愿服务队."""

    name: str = Field(min_length=1, max_length=64)
    kind: Code = Field(
        description="party, elderly, women, housekeeping, public_security (or 党员 …)"
    )
