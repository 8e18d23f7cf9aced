"""Request and response bodies of the people, duties, coverage and 责任网络图 routes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

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


# -- responses --------------------------------------------------------------------------------
# Fields a viewer sees masked (names 张**, phones 138****1234) or withheld (null) are nullable.
class DutyChangeOut(BaseModel):
    """A level's duty text as just changed."""

    level: int
    title: str
    duties: str
    updated_by: str | None = None


class DutyOut(DutyChangeOut):
    """The duty text of one level (一级 community … 四级 cell) and when it last changed."""

    updated_at: datetime


class AssignmentOut(BaseModel):
    """A role a person holds (or held) for a community, sector, cell, building or household."""

    id: int
    person_id: int
    role: str
    role_label: str = Field(description="the role in Chinese (格长, 网格员 …)")
    duty: str | None = Field(None, description="what the role does")
    community_id: int | None = None
    sector_id: int | None = None
    cell_id: int | None = None
    building_id: int | None = None
    household_id: int | None = Field(None, description="withheld (null) for viewers")
    employment: str | None = None
    starts_on: date
    ends_on: date | None = None


class CellAssignmentOut(AssignmentOut):
    """An assignment in a cell, with the holder's name and the building."""

    person: str | None = Field(None, description="the holder (masked for viewers if a resident)")
    building: str | None = None


class PersonOut(BaseModel):
    """A registered person with their active roles."""

    id: int
    name: str | None = Field(None, description="姓名 (张** for viewers)")
    phone: str | None = Field(None, description="masked for viewers")
    gender: str | None = None
    birth_year: int | None = None
    household_id: int | None = Field(None, description="withheld (null) for viewers")
    community_id: int | None = None
    party_status: str | None = None
    party_status_label: str | None = None
    party_registered_on: date | None = None
    volunteer_team_id: int | None = None
    roles: list[AssignmentOut]


class _PageOut(BaseModel):
    number_matched: int
    number_returned: int
    limit: int
    offset: int


class PersonPage(_PageOut):
    """One page of a community's people."""

    items: list[PersonOut]


class SectorOut(BaseModel):
    """A 片区 (level 2) or 党支部 area (level 3) with its cells."""

    id: int
    code: str
    name: str
    level: int
    level_label: str
    community_id: int
    parent_id: int | None = None
    cells: list[str]


class OrganisationOut(BaseModel):
    """A 辖区单位 with its contact (masked for viewers)."""

    id: int
    name: str
    kind: str
    kind_label: str
    community_id: int
    cell_id: int | None = None
    address: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None


class OrganisationPage(_PageOut):
    """One page of a community's 辖区单位."""

    items: list[OrganisationOut]


class TeamOut(BaseModel):
    """A 志愿服务队 with its member count."""

    id: int
    name: str
    kind: str | None = None
    members: int


class LinkOut(BaseModel):
    """A party member's link to a household (联系户)."""

    id: int
    person_id: int
    household_id: int
    starts_on: date
    ends_on: date | None = None


class ActivityOut(BaseModel):
    """One activity on a 公益岗位."""

    id: int
    happened_on: date
    hours: float | None = None
    note: str | None = None


class PostOut(BaseModel):
    """A 公益岗位 with its activity record."""

    id: int
    person_id: int
    kind: str
    kind_label: str
    title: str | None = None
    starts_on: date
    ends_on: date | None = None
    activities: list[ActivityOut]


class VisitOut(BaseModel):
    """A 走访 (note and follow-up withheld, null, for viewers)."""

    id: int
    household_id: int
    person_id: int | None = None
    visitor: str | None = Field(None, description="the visitor's name, if one was named")
    visited_on: date
    note: str | None = None
    follow_up: str | None = None


class VisitPage(_PageOut):
    """One page of a cell's visits, newest first."""

    items: list[VisitOut]


class RosterErrorOut(BaseModel):
    """A problem of one roster row: the row number (the header is row 1), column, message."""

    row: int
    column: str
    message: str


class RosterReportOut(BaseModel):
    """What a roster import found (a dry run) or wrote (with commit)."""

    file: str
    rows: int
    good_rows: int
    bad_rows: int
    people_created: int
    people_matched: int
    assignments: int
    committed: bool
    errors: list[RosterErrorOut]


# -- coverage and the 责任网络图 (JSON when format=json; CSV, SVG or PNG otherwise) --------------
class FigureOut(BaseModel):
    """One coverage figure: numerator ÷ named denominator (null when the denominator is 0)."""

    label: str
    value: float | None = None
    numerator: int
    denominator: int
    denominator_label: str
    unit: str


class CoverageRowOut(BaseModel):
    """The counts and figures of one cell, community or the street."""

    level: Literal["cell", "community", "street"]
    street_code: str
    community_code: str | None = None
    community_name: str | None = None
    cell_code: str | None = None
    cell_name: str | None = None
    cells: int
    counts: dict[str, int] = Field(description="named in count_labels")
    figures: dict[str, FigureOut]


class StreetRefOut(BaseModel):
    """A street's code and name."""

    code: str
    name: str


class CoverageOut(BaseModel):
    """The coverage report; every figure names its denominator."""

    street: StreetRefOut
    community: str | None = Field(None, description="the community code, for one community")
    as_of: date
    distance_m: float
    distance_note: str
    visit_window_days: int
    count_labels: dict[str, str] = Field(description="each count's Chinese label")
    rows: list[CoverageRowOut]


class ChartPersonOut(BaseModel):
    """A person on the 责任网络图 (phone masked for viewers)."""

    name: str
    role: str
    role_label: str
    duty: str
    phone: str | None = None
    employment: str | None = None
    party_member: bool
    since: date


class ChartNodeOut(BaseModel):
    """A node of the 责任网络图: a community, sector, 党支部 area or cell with its people."""

    level: Literal["street", "community", "sector", "branch", "cell"]
    level_label: str
    code: str | None = Field(None, description="null for the 未划片 node")
    name: str
    duties: str | None = None
    people: list[ChartPersonOut]
    building_captains: int | None = Field(None, description="cells only")
    children: list[ChartNodeOut]


class ResponsibilityChartOut(ChartNodeOut):
    """The 责任网络图 of a street: street → community → sector → cell → people."""

    as_of: date
