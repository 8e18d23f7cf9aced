"""People and their duties (定网格、定职责): persons, dated role assignments, the four-level
scheme (sectors and level duties), 辖区单位, 联系户, 公益岗位, 走访 visits, the rule people
follow when cells are redrawn, and the 责任网络图 tree.

Every write names its target by code (community, sector, cell) or id (building, household) and
is checked against the caller's scope. Dated rows are active on day D when
``starts_on <= D AND (ends_on IS NULL OR ends_on > D)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridsvc.auth.policy import require_in_scope
from gridsvc.auth.principal import Place, Principal
from gridsvc.domain import (
    ASSIGNMENT_ROLES,
    ASSIGNMENT_TARGET,
    CELL_LEVELS,
    EMPLOYMENT_KINDS,
    ORGANISATION_KINDS,
    PARTY_STATUSES,
    ROLE_DUTIES,
    SERVICE_POST_KINDS,
    VOLUNTEER_TEAM_KINDS,
)
from gridsvc.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridsvc.models import (
    Building,
    Cell,
    CellSector,
    Community,
    Household,
    LevelDuty,
    LinkedHousehold,
    Organisation,
    Person,
    PostActivity,
    RoleAssignment,
    Sector,
    ServicePost,
    Street,
    Visit,
    VolunteerTeam,
)
from gridsvc.models.people import active_on
from gridsvc.services.clock import local_today

#: How people follow a redraw (also returned in every impact report).
PEOPLE_RULE = (
    "Building roles (楼栋长, 单元长, 协管员) and household roles stay with their building or "
    "household. When cells are split, merged or replaced, the 格长 and 网格员 of each retired cell "
    "move to the new cell that received most of its households, if that cell has no 格长 yet; "
    "otherwise their assignment ends today. A new cell joins the sector (片区) of the retired cell "
    "it received most households from. Open incidents move to the cell that now holds their "
    "point; every incident keeps the boundary version valid when it was reported."
)

_PHONE = re.compile(r"^(1\d{10}|0\d{2,3}-?\d{7,8}|\d{7,8})$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


# -- validation ---------------------------------------------------------------------------------
def check_phone(phone: str | None) -> str | None:
    """A mobile (11 digits) or landline number, spaces and dashes tolerated; else InvalidInput."""
    if phone is None or not str(phone).strip():
        return None
    cleaned = re.sub(r"[\s()]", "", str(phone))
    if cleaned.startswith("+86"):
        cleaned = cleaned[3:]
    if not _PHONE.match(cleaned):
        raise InvalidInput(f"电话 {phone!r} is not a phone number (11-digit mobile or landline)")
    return cleaned.replace("-", "") if cleaned.startswith("1") else cleaned


def check_id_number(value: str | None) -> str | None:
    """An 18-character 居民身份证号 with a valid GB 11643 check digit; else InvalidInput."""
    if value is None or not str(value).strip():
        return None
    number = str(value).strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", number):
        raise InvalidInput(f"身份证号 {value!r} must be 17 digits and a digit or X (18 in all)")
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != number[17]:
        raise InvalidInput(f"身份证号 {value!r} has a wrong check digit")
    return number


#: Role names used on rosters and in requests besides the identifiers and labels.
ROLE_ALIASES: dict[str, str] = {
    "社区书记": "community_head",
    "一级网格长": "community_head",
    "片长": "sector_head",
    "二级网格长": "sector_head",
    "党支部书记": "branch_head",
    "三级网格长": "branch_head",
    "专职网格员": "grid_worker",
    "兼职网格员": "grid_worker",
    **{label: key for key, label in ASSIGNMENT_ROLES.items()},
}


def normalise_role(value: str | None) -> str:
    """A role identifier from an identifier, label or alias; else InvalidInput."""
    text = (value or "").strip()
    if text in ASSIGNMENT_ROLES:
        return text
    if text in ROLE_ALIASES:
        return ROLE_ALIASES[text]
    raise InvalidInput(
        f"unknown role {value!r}; use one of {', '.join(ASSIGNMENT_ROLES)} "
        f"(or {', '.join(ASSIGNMENT_ROLES.values())})"
    )


def _choice(value: str | None, vocabulary: dict[str, str], what: str) -> str | None:
    """An identifier from a vocabulary, given as identifier or Chinese label."""
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    if value in vocabulary:
        return value
    for key, label in vocabulary.items():
        if value == label or value == label.replace("党员", "") or label.startswith(value):
            return key
    raise InvalidInput(f"unknown {what} {value!r}; use one of {', '.join(vocabulary.values())}")


# -- places ---------------------------------------------------------------------------------------
def _community(session: Session, code: str) -> tuple[int, Place, str]:
    row = session.execute(
        select(Community.id, Community.street_id, Community.name).where(Community.code == code)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no community with code {code!r}")
    return row.id, Place(street_id=row.street_id, community_id=row.id), row.name


def _place_of_community(session: Session, community_id: int | None) -> Place:
    street = session.scalar(select(Community.street_id).where(Community.id == community_id))
    return Place(street_id=street, community_id=community_id)


@dataclass(frozen=True)
class Target:
    """What an assignment points at: its column, where it lies, a label for messages."""

    column: str
    id: int
    place: Place
    label: str


def resolve_target(
    session: Session,
    role: str,
    *,
    community: str | None = None,
    sector: str | None = None,
    cell: str | None = None,
    building: int | str | None = None,
    household: int | None = None,
    unit: str | None = None,
    room: str | None = None,
) -> Target:
    """The target a role needs: a community or sector or cell code, a building (id, or name
    within the given cell/community), a household (id, or building + unit + room)."""
    role = normalise_role(role)
    kind = ASSIGNMENT_TARGET[role]
    label = ASSIGNMENT_ROLES[role]
    if kind == "community":
        if not community:
            raise InvalidInput(f"a {label} needs a community code")
        cid, place, name = _community(session, community)
        return Target("community_id", cid, place, f"community {community} ({name})")
    if kind == "sector":
        if not sector:
            raise InvalidInput(f"a {label} needs a sector code")
        row = session.execute(
            select(Sector.id, Sector.level, Sector.community_id).where(Sector.code == sector)
        ).one_or_none()
        if row is None:
            raise NotFound(f"no sector with code {sector!r}")
        wanted = 2 if role == "sector_head" else 3
        if row.level != wanted:
            raise InvalidInput(
                f"a {label} heads a level-{wanted} sector; {sector} is level {row.level}"
            )
        return Target("sector_id", row.id, _place_of_community(session, row.community_id), sector)
    if kind == "cell":
        if not cell:
            raise InvalidInput(f"a {label} needs a cell code (网格编码)")
        row = session.execute(
            select(Cell.id, Cell.community_id, Cell.retired_at).where(Cell.code == cell)
        ).one_or_none()
        if row is None:
            raise NotFound(f"no cell with code {cell!r}")
        if row.retired_at is not None:
            raise InvalidInput(f"cell {cell} was retired by a redraw; assign to a current cell")
        place = _place_of_community(session, row.community_id)
        return Target("cell_id", row.id, Place(place.street_id, place.community_id, row.id), cell)
    b = _building(session, building, cell=cell, community=community)
    if kind == "building":
        return Target("building_id", b.id, b.place, f"building {b.label}")
    hid = household
    if hid is None:
        if unit is None and room is None:
            raise InvalidInput(f"a {label} needs a household id, or a building with unit and room")
        found = session.scalars(
            select(Household.id).where(
                Household.building_id == b.id,
                func.coalesce(Household.unit, "") == (unit or ""),
                func.coalesce(Household.room, "") == (room or ""),
            )
        ).all()
        if len(found) != 1:
            raise NotFound(f"no single household {unit or ''}{room or ''} in building {b.label}")
        hid = found[0]
    return Target("household_id", hid, _household_place(session, hid), f"household #{hid}")


@dataclass(frozen=True)
class _BuildingRef:
    id: int
    place: Place
    label: str


def _building(
    session: Session, building: int | str | None, *, cell: str | None, community: str | None
) -> _BuildingRef:
    if building is None or str(building).strip() == "":
        raise InvalidInput("a building (楼栋) is needed: its id, or its name with a cell code")
    query = select(Building.id, Building.name, Building.cell_id, Building.community_id)
    key = str(building).strip()
    if key.isdigit() and not (cell or community):
        rows = session.execute(query.where(Building.id == int(key))).all()
    else:
        query = query.where((Building.name == key) | (Building.address == key))
        if cell:
            query = query.join(Cell, Cell.id == Building.cell_id).where(Cell.code == cell)
        elif community:
            query = query.join(Community, Community.id == Building.community_id).where(
                Community.code == community
            )
        rows = session.execute(query.limit(2)).all()
        if not rows and key.isdigit():  # an id, but only one inside the named cell/community
            rows = session.execute(
                select(Building.id, Building.name, Building.cell_id, Building.community_id)
                .select_from(Building)
                .where(Building.id == int(key))
                .where(
                    Building.cell_id.in_(select(Cell.id).where(Cell.code == cell))
                    if cell
                    else Building.community_id.in_(
                        select(Community.id).where(Community.code == community)
                    )
                )
            ).all()
    if not rows:
        where = f" in cell {cell}" if cell else (f" in community {community}" if community else "")
        raise NotFound(f"no building {key!r}{where}")
    if len(rows) > 1:
        raise InvalidInput(
            f"building name {key!r} is ambiguous{' in cell ' + cell if cell else ''}"
        )
    row = rows[0]
    place = _place_of_community(session, row.community_id)
    return _BuildingRef(
        row.id, Place(place.street_id, place.community_id, row.cell_id), row.name or f"#{row.id}"
    )


def _household_place(session: Session, household_id: int) -> Place:
    row = session.execute(
        select(Building.cell_id, Building.community_id)
        .join(Household, Household.building_id == Building.id)
        .where(Household.id == household_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no household #{household_id}")
    place = _place_of_community(session, row.community_id)
    return Place(place.street_id, place.community_id, row.cell_id)


def household_place(session: Session, household_id: int) -> Place:
    """Where a household lives (street, community, cell), for scope checks; NotFound if none."""
    return _household_place(session, household_id)


# -- persons ----------------------------------------------------------------------------------
def person_dict(session: Session, person: Person) -> dict[str, Any]:
    """A person as JSON, with their active assignments."""
    roles = session.execute(
        select(RoleAssignment).where(
            RoleAssignment.person_id == person.id, RoleAssignment.ends_on.is_(None)
        )
    ).scalars()
    return {
        "id": person.id,
        "name": person.name,
        "phone": person.phone,
        "gender": person.gender,
        "birth_year": person.birth_year,
        "household_id": person.household_id,
        "community_id": person.community_id,
        "party_status": person.party_status,
        "party_status_label": PARTY_STATUSES.get(person.party_status or ""),
        "party_registered_on": person.party_registered_on,
        "volunteer_team_id": person.volunteer_team_id,
        "roles": [assignment_dict(session, r) for r in roles],
    }


def create_person(
    session: Session,
    principal: Principal,
    *,
    name: str,
    community: str | None = None,
    phone: str | None = None,
    id_number: str | None = None,
    gender: str | None = None,
    birth_year: int | None = None,
    household_id: int | None = None,
    party_status: str | None = None,
    party_registered_on: date | None = None,
    volunteer_team: str | int | None = None,
) -> Person:
    """Register a person in a community (or the community of their household)."""
    if not name or not name.strip():
        raise InvalidInput("姓名 (name) is required")
    community_id = None
    if household_id is not None:
        home = _household_place(session, household_id)
        require_in_scope(principal, home, f"household #{household_id}")
        community_id = home.community_id
    if community:
        named, _, _ = _community(session, community)
        if community_id is not None and named != community_id:
            raise InvalidInput(
                f"household #{household_id} is not in community {community}: a person lives in "
                "the community of their household"
            )
        community_id = named
    if community_id is None:
        raise InvalidInput("give the person's community code or household id")
    require_in_scope(principal, _place_of_community(session, community_id), "this community")
    status = _choice(party_status, PARTY_STATUSES, "party status (党员类别)")
    person = Person(
        name=name.strip(),
        phone=check_phone(phone),
        id_number=check_id_number(id_number),
        gender=gender,
        birth_year=birth_year,
        household_id=household_id,
        community_id=community_id,
        party_status=status,
        party_registered_on=party_registered_on,
        volunteer_team_id=_team_id(session, volunteer_team, community_id),
    )
    session.add(person)
    session.flush()
    return person


def register_person(session: Session, principal: Principal, **fields: Any) -> dict[str, Any]:
    """The API's "register a person": `create_person` in its own transaction, committed,
    returned as JSON with the person's roles."""
    person = create_person(session, principal, **fields)
    session.commit()
    return person_dict(session, person)


def _team_id(session: Session, team: str | int | None, community_id: int | None) -> int | None:
    if team is None or str(team).strip() == "":
        return None
    key = str(team).strip()
    # By id or by name, always a team of the person's own community.
    query = select(VolunteerTeam.id).where(VolunteerTeam.community_id == community_id)
    if key.isdigit():
        query = query.where(VolunteerTeam.id == int(key))
    else:
        query = query.where((VolunteerTeam.name == key) | VolunteerTeam.name.endswith(key))
    found = session.scalars(query.limit(2)).all()
    if len(found) != 1:
        raise NotFound(f"no single volunteer team {key!r} in the community")
    return found[0]


def _of_cell(cell_id: int) -> Any:
    """SQL condition: the person lives in the cell (their household's building) or holds an
    active role there (the cell, one of its buildings or households)."""
    buildings = select(Building.id).where(Building.cell_id == cell_id)
    households = select(Household.id).where(Household.building_id.in_(buildings))
    holders = select(RoleAssignment.person_id).where(
        RoleAssignment.ends_on.is_(None),
        (RoleAssignment.cell_id == cell_id)
        | RoleAssignment.building_id.in_(buildings)
        | RoleAssignment.household_id.in_(households),
    )
    return Person.household_id.in_(households) | Person.id.in_(holders)


def list_people(
    session: Session,
    community_id: int,
    *,
    principal: Principal | None = None,
    party_status: str | None = None,
    volunteers: bool | None = None,
    name: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """People registered in a community, paged, optionally only members of a kind, volunteers,
    or names containing a text. A cell's team (a cell-scoped principal) sees only the people
    of their own cell, never another cell's residents."""
    base = select(Person).where(Person.community_id == community_id)
    if principal is not None and not principal.is_admin and _cell_scoped(principal):
        base = base.where(_of_cell(principal.cell_id))  # type: ignore[arg-type]
    if party_status:
        base = base.where(
            Person.party_status == _choice(party_status, PARTY_STATUSES, "party status")
        )
    if volunteers is not None:
        team = Person.volunteer_team_id
        base = base.where(team.is_not(None) if volunteers else team.is_(None))
    if name:
        base = base.where(Person.name.contains(name.strip(), autoescape=True))
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(base.order_by(Person.name, Person.id).limit(limit).offset(offset)).all()
    return [person_dict(session, p) for p in rows], total


def get_person(session: Session, principal: Principal, person_id: int) -> Person:
    """A person in the caller's scope."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person #{person_id}")
    if not principal.is_admin and _cell_scoped(principal):
        # A cell's team: the people of their own cell only (not the whole community).
        in_cell = session.scalar(
            select(func.count()).where(Person.id == person_id, _of_cell(principal.cell_id))  # type: ignore[arg-type]
        )
        if not in_cell:
            raise Forbidden(f"person #{person_id} is outside your scope ({principal.scope_label})")
        return person
    require_in_scope(principal, _place_of_community(session, person.community_id), "this person")
    return person


def _cell_scoped(principal: Principal) -> bool:
    return (
        principal.cell_id is not None
        and principal.street_id is None
        and principal.community_id is None
    )


def find_person(
    session: Session, *, name: str, id_number: str | None, phone: str | None
) -> Person | None:
    """An existing person: by 身份证号 if given, else by name and phone."""
    if id_number:
        return session.scalars(select(Person).where(Person.id_number == id_number)).first()
    if phone:
        return session.scalars(
            select(Person).where(Person.name == name, Person.phone == phone)
        ).first()
    return None


# -- assignments ------------------------------------------------------------------------------
def assignment_dict(session: Session, r: RoleAssignment) -> dict[str, Any]:
    """An assignment as JSON."""
    return {
        "id": r.id,
        "person_id": r.person_id,
        "role": r.role,
        "role_label": ASSIGNMENT_ROLES[r.role],
        "duty": ROLE_DUTIES.get(r.role),
        "community_id": r.community_id,
        "sector_id": r.sector_id,
        "cell_id": r.cell_id,
        "building_id": r.building_id,
        "household_id": r.household_id,
        "employment": r.employment,
        "starts_on": r.starts_on,
        "ends_on": r.ends_on,
    }


def assign(
    session: Session,
    principal: Principal,
    *,
    person_id: int,
    role: str,
    target: Target,
    starts_on: date | None = None,
    ends_on: date | None = None,
    employment: str | None = None,
) -> RoleAssignment:
    """Give a person a role for a target. A second active 格长 of a cell (or head of a community
    or sector) is refused by the database and reported as 409 Conflict."""
    role = normalise_role(role)
    require_in_scope(principal, target.place, target.label)
    get_person(session, principal, person_id)
    employment = _choice(employment, EMPLOYMENT_KINDS, "employment (专职/兼职)")
    if employment and role != "grid_worker":
        raise InvalidInput("专职/兼职 applies to 网格员 only")
    starts = starts_on or local_today()
    if ends_on is not None and ends_on < starts:
        raise InvalidInput(f"结束日期 {ends_on} is before 开始日期 {starts}")
    row = RoleAssignment(
        person_id=person_id,
        role=role,
        employment=employment,
        starts_on=starts,
        ends_on=ends_on,
        **{target.column: target.id},
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        if "one_active" in str(exc.orig):
            holder = _holder(session, role, target)
            raise Conflict(
                f"{target.label} already has an active {ASSIGNMENT_ROLES[role]}"
                + (f" ({holder})" if holder else "")
                + "; end that assignment first",
            ) from None
        raise InvalidInput(f"the assignment breaks a rule: {exc.orig}") from None
    return row


def give_role(
    session: Session,
    principal: Principal,
    *,
    person_id: int,
    role: str,
    community: str | None = None,
    sector: str | None = None,
    cell: str | None = None,
    building: str | None = None,
    household: int | None = None,
    unit: str | None = None,
    room: str | None = None,
    starts_on: date | None = None,
    ends_on: date | None = None,
    employment: str | None = None,
) -> dict[str, Any]:
    """The API's "give a person a role": find the target the role names, `assign` it in its
    own transaction, commit, and return the assignment as JSON."""
    target = resolve_target(
        session,
        role,
        community=community,
        sector=sector,
        cell=cell,
        building=building,
        household=household,
        unit=unit,
        room=room,
    )
    row = assign(
        session,
        principal,
        person_id=person_id,
        role=role,
        target=target,
        starts_on=starts_on,
        ends_on=ends_on,
        employment=employment,
    )
    session.commit()
    return assignment_dict(session, row)


def _holder(session: Session, role: str, target: Target) -> str | None:
    roles = ("sector_head", "branch_head") if role in ("sector_head", "branch_head") else (role,)
    return session.scalar(
        select(Person.name)
        .join(RoleAssignment, RoleAssignment.person_id == Person.id)
        .where(
            RoleAssignment.role.in_(roles),
            RoleAssignment.ends_on.is_(None),
            getattr(RoleAssignment, target.column) == target.id,
        )
    )


def _assignment_place(session: Session, r: RoleAssignment) -> Place:
    if r.cell_id is not None:
        cid = session.scalar(select(Cell.community_id).where(Cell.id == r.cell_id))
        p = _place_of_community(session, cid)
        return Place(p.street_id, p.community_id, r.cell_id)
    if r.building_id is not None:
        row = session.execute(
            select(Building.cell_id, Building.community_id).where(Building.id == r.building_id)
        ).one()
        p = _place_of_community(session, row.community_id)
        return Place(p.street_id, p.community_id, row.cell_id)
    if r.household_id is not None:
        return _household_place(session, r.household_id)
    if r.sector_id is not None:
        cid = session.scalar(select(Sector.community_id).where(Sector.id == r.sector_id))
        return _place_of_community(session, cid)
    return _place_of_community(session, r.community_id)


def end_assignment(
    session: Session, principal: Principal, assignment_id: int, ends_on: date | None = None
) -> RoleAssignment:
    """End an active assignment (kept as history)."""
    row = session.get(RoleAssignment, assignment_id)
    if row is None:
        raise NotFound(f"no assignment #{assignment_id}")
    require_in_scope(principal, _assignment_place(session, row), "this assignment")
    if row.ends_on is not None:
        raise Conflict(f"assignment #{assignment_id} already ended on {row.ends_on}")
    day = ends_on or local_today()
    if day < row.starts_on:
        raise InvalidInput(f"an assignment cannot end ({day}) before it starts ({row.starts_on})")
    row.ends_on = day
    session.commit()
    return row


def assignments_of_cell(
    session: Session, cell_id: int, *, history: bool = False, on: date | None = None
) -> list[dict[str, Any]]:
    """Who holds which role in a cell: the cell's own roles and those of its buildings and
    households (active on `on`, default today; with history, every assignment ever)."""
    day = on or local_today()
    query = (
        select(RoleAssignment, Person.name, Building.name.label("building"))
        .join(Person, Person.id == RoleAssignment.person_id)
        .outerjoin(Household, Household.id == RoleAssignment.household_id)
        .outerjoin(
            Building,
            Building.id == func.coalesce(RoleAssignment.building_id, Household.building_id),
        )
        .where((RoleAssignment.cell_id == cell_id) | (Building.cell_id == cell_id))
        .order_by(RoleAssignment.role, RoleAssignment.starts_on, RoleAssignment.id)
    )
    if not history:
        query = query.where(active_on(RoleAssignment, day))
    return [
        {**assignment_dict(session, r), "person": name, "building": building}
        for r, name, building in session.execute(query).all()
    ]


# -- redraws: people follow ---------------------------------------------------------------------
def people_follow(
    session: Session,
    retired: list[int],
    old_cell_of: dict[int, int | None],
    new_cell_of: dict[int, int | None],
    households_of: dict[int, int],
) -> list[dict[str, Any]]:
    """Apply :data:`PEOPLE_RULE` to the cells a redraw retired; returns what happened to each
    person's role (moved or ended). New cells also inherit the sector of their main source."""
    flows: dict[int, dict[int, int]] = {}
    for b, old in old_cell_of.items():
        new = new_cell_of.get(b)
        if old in retired and new is not None:
            flows.setdefault(old, {})
            flows[old][new] = flows[old].get(new, 0) + households_of.get(b, 0)
    heirs = {old: max(sorted(flow), key=lambda c: flow[c]) for old, flow in flows.items() if flow}
    _sectors_follow(session, flows)
    moves = []
    rows = session.execute(
        text(
            "SELECT r.id, r.person_id, r.role, r.cell_id, p.name FROM role_assignment r "
            "JOIN person p ON p.id = r.person_id "
            "WHERE r.cell_id = ANY(:cells) AND r.ends_on IS NULL ORDER BY r.role, r.id"
        ),
        {"cells": retired},
    ).all()
    today = local_today()  # one date for every move of this redraw, even across midnight
    for row in rows:
        heir = heirs.get(row.cell_id)
        taken = (
            heir is not None
            and row.role == "leader"
            and session.scalar(
                text(
                    "SELECT count(*) FROM role_assignment WHERE cell_id = :c AND role = 'leader' "
                    "AND ends_on IS NULL"
                ),
                {"c": heir},
            )
            > 0
        )
        session.execute(
            text("UPDATE role_assignment SET ends_on = :today WHERE id = :i"),
            {"i": row.id, "today": today},
        )
        moved = heir is not None and not taken
        if moved:
            session.execute(
                text(
                    "INSERT INTO role_assignment (person_id, role, cell_id, employment, starts_on) "
                    "SELECT person_id, role, :c, employment, :today FROM role_assignment "
                    "WHERE id = :i"
                ),
                {"c": heir, "i": row.id, "today": today},
            )
            # Accounts not linked to a person follow their cell's roles the same way (linked
            # ones follow their own assignment: access.scope_cell).
            session.execute(
                text(
                    "UPDATE app_user SET cell_id = :c WHERE cell_id = :old AND role = :role "
                    "AND person_id IS NULL"
                ),
                {"c": heir, "old": row.cell_id, "role": row.role},
            )
        moves.append(
            {
                "person": row.name,
                "role": row.role,
                "from_cell_id": row.cell_id,
                "to_cell_id": heir if moved else None,
                "action": "moved" if moved else "ended",
            }
        )
    return moves


def _sectors_follow(session: Session, flows: dict[int, dict[int, int]]) -> None:
    """Each new cell without a sector joins the sector of the retired cell it got most from."""
    sector_of = dict(
        session.execute(
            select(CellSector.cell_id, CellSector.sector_id).where(
                CellSector.cell_id.in_(list(flows))
            )
        ).all()
    )
    best: dict[int, tuple[int, int]] = {}
    for old, flow in sorted(flows.items()):
        if old not in sector_of:
            continue
        for new, households in flow.items():
            if new not in best or households > best[new][0]:
                best[new] = (households, sector_of[old])
    for new, (_, sector) in best.items():
        session.execute(
            text(
                "INSERT INTO cell_sector (cell_id, sector_id) VALUES (:c, :s) "
                "ON CONFLICT (cell_id) DO NOTHING"
            ),
            {"c": new, "s": sector},
        )


def cells_without_leader(session: Session, community_id: int) -> list[str]:
    """Codes of the community's current general cells that have no active 格长."""
    return list(
        session.scalars(
            text(
                "SELECT c.code FROM cell c WHERE c.community_id = :c AND c.retired_at IS NULL "
                "AND c.kind = 'general' AND NOT EXISTS (SELECT 1 FROM role_assignment r "
                "WHERE r.cell_id = c.id AND r.role = 'leader' AND r.ends_on IS NULL) "
                "ORDER BY c.code"
            ),
            {"c": community_id},
        )
    )


# -- four-level scheme: duties and sectors ------------------------------------------------------
def level_duties(session: Session) -> list[dict[str, Any]]:
    """The duties of each level (一级 … 四级)."""
    rows = session.scalars(select(LevelDuty).order_by(LevelDuty.level)).all()
    return [
        {
            "level": r.level,
            "title": r.title,
            "duties": r.duties,
            "updated_at": r.updated_at,
            "updated_by": r.updated_by,
        }
        for r in rows
    ]


def set_level_duty(
    session: Session, level: int, duties: str, *, user: str, title: str | None = None
) -> dict[str, Any]:
    """Change the duty text of a level (admin and street staff)."""
    if level not in CELL_LEVELS:
        raise InvalidInput(f"level must be 1–4, not {level}")
    if not duties or not duties.strip():
        raise InvalidInput("the duty text must not be empty")
    row = session.get(LevelDuty, level)
    if row is None:
        row = LevelDuty(level=level, title=title or CELL_LEVELS[level], duties=duties.strip())
        session.add(row)
    row.duties = duties.strip()
    row.title = title or row.title
    row.updated_by = user
    row.updated_at = func.now()
    session.flush()
    session.refresh(row)
    session.commit()
    return {"level": row.level, "title": row.title, "duties": row.duties, "updated_by": user}


def create_sector(
    session: Session,
    principal: Principal,
    *,
    community: str,
    name: str,
    level: int = 2,
    parent: str | None = None,
    code: str | None = None,
    cells: list[str] | None = None,
) -> dict[str, Any]:
    """Create a 片区 (level 2) or 党支部 area (level 3, inside a level-2 sector) and put cells
    in it (a cell belongs to at most one sector)."""
    community_id, place, _ = _community(session, community)
    require_in_scope(principal, place, f"community {community}")
    if level not in (2, 3):
        raise InvalidInput("a sector is level 2 (片区) or level 3 (党支部)")
    parent_id = None
    if parent:
        prow = session.execute(
            select(Sector.id, Sector.level, Sector.community_id).where(Sector.code == parent)
        ).one_or_none()
        if prow is None:
            raise NotFound(f"no sector with code {parent!r}")
        if level != 3 or prow.level != 2 or prow.community_id != community_id:
            raise InvalidInput(
                "only a level-3 area has a parent: a level-2 sector of its community"
            )
        parent_id = prow.id
    if code is None:
        n = session.scalar(select(func.count()).where(Sector.community_id == community_id)) or 0
        code = f"{community}-{'P' if level == 2 else 'Z'}{n + 1:02d}"
    if session.scalar(select(Sector.id).where(Sector.code == code)) is not None:
        raise Conflict(f"sector code {code} is taken")
    sector = Sector(
        code=code, name=name.strip(), level=level, community_id=community_id, parent_id=parent_id
    )
    session.add(sector)
    session.flush()
    if cells:
        put_cells_in_sector(session, sector, cells)
    session.commit()
    return sector_dict(session, sector)


def put_cells_in_sector(session: Session, sector: Sector, codes: list[str]) -> None:
    """Move cells (by code) into a sector of their community."""
    found = dict(
        session.execute(
            select(Cell.code, Cell.id).where(
                Cell.code.in_(codes), Cell.community_id == sector.community_id
            )
        ).all()
    )
    missing = sorted(set(codes) - set(found))
    if missing:
        raise NotFound(f"no cells {', '.join(missing)} in the sector's community")
    for cid in found.values():
        session.execute(
            text(
                "INSERT INTO cell_sector (cell_id, sector_id) VALUES (:c, :s) "
                "ON CONFLICT (cell_id) DO UPDATE SET sector_id = EXCLUDED.sector_id"
            ),
            {"c": cid, "s": sector.id},
        )
    session.flush()


def sector_dict(session: Session, sector: Sector) -> dict[str, Any]:
    """A sector as JSON, with its cells."""
    cells = session.scalars(
        select(Cell.code)
        .join(CellSector, CellSector.cell_id == Cell.id)
        .where(CellSector.sector_id == sector.id)
        .order_by(Cell.code)
    ).all()
    return {
        "id": sector.id,
        "code": sector.code,
        "name": sector.name,
        "level": sector.level,
        "level_label": CELL_LEVELS[sector.level],
        "community_id": sector.community_id,
        "parent_id": sector.parent_id,
        "cells": list(cells),
    }


def list_sectors(session: Session, community_id: int) -> list[dict[str, Any]]:
    """The sectors of a community."""
    rows = session.scalars(
        select(Sector).where(Sector.community_id == community_id).order_by(Sector.code)
    ).all()
    return [sector_dict(session, s) for s in rows]


# -- volunteer teams ---------------------------------------------------------------------------
def create_team(
    session: Session, principal: Principal, *, community: str, name: str, kind: str
) -> dict[str, Any]:
    """Create a 志愿服务队 (党员, 老年, 巾帼, 家政, 治安 …) in a community."""
    community_id, place, _ = _community(session, community)
    require_in_scope(principal, place, f"community {community}")
    team = VolunteerTeam(
        name=name.strip(),
        kind=_choice(kind, VOLUNTEER_TEAM_KINDS, "team kind (志愿队类别)"),
        community_id=community_id,
    )
    session.add(team)
    session.commit()
    return {"id": team.id, "name": team.name, "kind": team.kind, "members": 0}


def list_teams(session: Session, community_id: int) -> list[dict[str, Any]]:
    """The volunteer teams of a community with their member counts."""
    rows = session.execute(
        select(VolunteerTeam.id, VolunteerTeam.name, VolunteerTeam.kind, func.count(Person.id))
        .outerjoin(Person, Person.volunteer_team_id == VolunteerTeam.id)
        .where(VolunteerTeam.community_id == community_id)
        .group_by(VolunteerTeam.id)
        .order_by(VolunteerTeam.id)
    ).all()
    return [{"id": i, "name": n, "kind": k, "members": m} for i, n, k, m in rows]


# -- organisations, linked households, posts, visits ----------------------------------------------
def create_organisation(
    session: Session,
    principal: Principal,
    *,
    community: str,
    name: str,
    kind: str = "other",
    cell: str | None = None,
    address: str | None = None,
    contact_name: str | None = None,
    contact_phone: str | None = None,
) -> dict[str, Any]:
    """Register a 辖区单位 with its contact."""
    community_id, place, _ = _community(session, community)
    require_in_scope(principal, place, f"community {community}")
    cell_id = None
    if cell:
        cell_id = session.scalar(
            select(Cell.id).where(Cell.code == cell, Cell.community_id == community_id)
        )
        if cell_id is None:
            raise NotFound(f"no cell {cell} in community {community}")
    org = Organisation(
        name=name.strip(),
        kind=_choice(kind, ORGANISATION_KINDS, "organisation kind") or "other",
        community_id=community_id,
        cell_id=cell_id,
        address=address,
        contact_name=contact_name,
        contact_phone=check_phone(contact_phone),
    )
    session.add(org)
    session.commit()
    return _org_dict(org)


def _org_dict(org: Organisation) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "kind": org.kind,
        "kind_label": ORGANISATION_KINDS[org.kind],
        "community_id": org.community_id,
        "cell_id": org.cell_id,
        "address": org.address,
        "contact_name": org.contact_name,
        "contact_phone": org.contact_phone,
    }


def list_organisations(
    session: Session, community_id: int, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """辖区单位 of a community, paged."""
    base = select(Organisation).where(Organisation.community_id == community_id)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(base.order_by(Organisation.id).limit(limit).offset(offset)).all()
    return [_org_dict(o) for o in rows], total


def link_household(
    session: Session,
    principal: Principal,
    *,
    person_id: int,
    household_id: int,
    starts_on: date | None = None,
) -> dict[str, Any]:
    """Link a party member to a household (联系户)."""
    person = get_person(session, principal, person_id)
    if person.party_status is None:
        raise InvalidInput(f"{person.name} is not a party member; 联系户 are linked to members")
    require_in_scope(principal, _household_place(session, household_id), "this household")
    link = LinkedHousehold(
        person_id=person_id, household_id=household_id, starts_on=starts_on or local_today()
    )
    try:
        with session.begin_nested():
            session.add(link)
            session.flush()
    except IntegrityError:
        raise Conflict(f"{person.name} is already linked to household #{household_id}") from None
    session.commit()
    return _link_dict(link)


def _link_dict(link: LinkedHousehold) -> dict[str, Any]:
    return {
        "id": link.id,
        "person_id": link.person_id,
        "household_id": link.household_id,
        "starts_on": link.starts_on,
        "ends_on": link.ends_on,
    }


def unlink_household(
    session: Session, principal: Principal, link_id: int, ends_on: date | None = None
) -> dict[str, Any]:
    """End a 联系户 link (kept as history)."""
    link = session.get(LinkedHousehold, link_id)
    if link is None:
        raise NotFound(f"no linked household #{link_id}")
    require_in_scope(principal, _household_place(session, link.household_id), "this household")
    if link.ends_on is not None:
        raise Conflict(f"link #{link_id} already ended on {link.ends_on}")
    day = ends_on or local_today()
    if day < link.starts_on:
        raise InvalidInput("a link cannot end before it starts")
    link.ends_on = day
    session.commit()
    return _link_dict(link)


def linked_households(session: Session, principal: Principal, person_id: int) -> list[dict]:
    """A member's 联系户 (history included)."""
    get_person(session, principal, person_id)
    rows = session.scalars(
        select(LinkedHousehold)
        .where(LinkedHousehold.person_id == person_id)
        .order_by(LinkedHousehold.starts_on, LinkedHousehold.id)
    ).all()
    return [_link_dict(r) for r in rows]


def claim_post(
    session: Session,
    principal: Principal,
    *,
    person_id: int,
    kind: str,
    title: str | None = None,
    starts_on: date | None = None,
) -> dict[str, Any]:
    """A party member claims a 公益岗位 in their community."""
    person = get_person(session, principal, person_id)
    if person.party_status is None:
        raise InvalidInput(f"{person.name} is not a party member; 公益岗位 are claimed by members")
    post = ServicePost(
        person_id=person_id,
        community_id=person.community_id,
        kind=_choice(kind, SERVICE_POST_KINDS, "post kind (岗位类别)"),
        title=title,
        starts_on=starts_on or local_today(),
    )
    session.add(post)
    session.commit()
    return post_dict(session, post)


def post_dict(session: Session, post: ServicePost) -> dict[str, Any]:
    """A post with its activity record."""
    acts = session.scalars(
        select(PostActivity)
        .where(PostActivity.post_id == post.id)
        .order_by(PostActivity.happened_on, PostActivity.id)
    ).all()
    return {
        "id": post.id,
        "person_id": post.person_id,
        "kind": post.kind,
        "kind_label": SERVICE_POST_KINDS[post.kind],
        "title": post.title,
        "starts_on": post.starts_on,
        "ends_on": post.ends_on,
        "activities": [
            {
                "id": a.id,
                "happened_on": a.happened_on,
                "hours": float(a.hours) if a.hours is not None else None,
                "note": a.note,
            }
            for a in acts
        ],
    }


def record_post_activity(
    session: Session,
    principal: Principal,
    post_id: int,
    *,
    happened_on: date,
    hours: float | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Add an activity to a post's record."""
    post = session.get(ServicePost, post_id)
    if post is None:
        raise NotFound(f"no service post #{post_id}")
    get_person(session, principal, post.person_id)
    if happened_on < post.starts_on or (post.ends_on and happened_on >= post.ends_on):
        raise InvalidInput(f"{happened_on} is outside the post's time ({post.starts_on} …)")
    if hours is not None and hours < 0:
        raise InvalidInput("hours must not be negative")
    session.add(PostActivity(post_id=post_id, happened_on=happened_on, hours=hours, note=note))
    session.commit()
    return post_dict(session, post)


def posts_of(session: Session, principal: Principal, person_id: int) -> list[dict[str, Any]]:
    """A member's posts with their activities."""
    get_person(session, principal, person_id)
    rows = session.scalars(
        select(ServicePost).where(ServicePost.person_id == person_id).order_by(ServicePost.id)
    ).all()
    return [post_dict(session, p) for p in rows]


def record_visit(
    session: Session,
    principal: Principal,
    *,
    household_id: int,
    visited_on: date,
    person_id: int | None = None,
    note: str | None = None,
    follow_up: str | None = None,
) -> dict[str, Any]:
    """Record a 走访: who visited which household, when, what was heard (the note) and what
    is to follow (not in the future), and commit."""
    require_in_scope(principal, _household_place(session, household_id), "this household")
    if visited_on > local_today():
        raise InvalidInput(f"a visit cannot be in the future ({visited_on})")
    if person_id is not None:
        get_person(session, principal, person_id)  # the visitor, too, in the caller's scope
    visit = Visit(
        household_id=household_id,
        person_id=person_id,
        visited_on=visited_on,
        note=note,
        follow_up=follow_up,
    )
    session.add(visit)
    session.commit()
    return _visit_dict(visit, None)


def _visit_dict(v: Visit, visitor: str | None) -> dict[str, Any]:
    return {
        "id": v.id,
        "household_id": v.household_id,
        "person_id": v.person_id,
        "visitor": visitor,
        "visited_on": v.visited_on,
        "note": v.note,
        "follow_up": v.follow_up,
    }


def visits_of_cell(
    session: Session, cell_id: int, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Visits to households of a cell, newest first, paged."""
    base = (
        select(Visit, Person.name)
        .join(Household, Household.id == Visit.household_id)
        .join(Building, Building.id == Household.building_id)
        .outerjoin(Person, Person.id == Visit.person_id)
        .where(Building.cell_id == cell_id)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        base.order_by(Visit.visited_on.desc(), Visit.id.desc()).limit(limit).offset(offset)
    ).all()
    return [_visit_dict(v, name) for v, name in rows], total


# -- 责任网络图 -----------------------------------------------------------------------------------
def responsibility_tree(
    session: Session, principal: Principal, street_code: str, *, on: date | None = None
) -> dict[str, Any]:
    """The tree street → community → level-2 sector (→ level-3 area) → cell, each node with its
    people (active on `on`) and duties. Cells in no sector sit under a "未划片" node."""
    day = on or local_today()
    street = session.execute(
        select(Street.id, Street.code, Street.name).where(Street.code == street_code)
    ).one_or_none()
    if street is None:
        raise NotFound(f"no street with code {street_code!r}")
    if principal.street_id != street.id and not principal.is_admin:
        scoped = principal.community_id or principal.cell_community_id
        if (
            scoped is None
            or session.scalar(select(Community.street_id).where(Community.id == scoped))
            != street.id
        ):
            require_in_scope(principal, Place(street_id=street.id), f"street {street_code}")
    duties = {d["level"]: d["duties"] for d in level_duties(session)}
    communities = session.execute(
        select(Community.id, Community.code, Community.name)
        .where(Community.street_id == street.id)
        .order_by(Community.code)
    ).all()
    if not principal.is_admin and principal.street_id != street.id:
        visible = principal.community_id or principal.cell_community_id
        communities = [c for c in communities if c.id == visible]
    ids = [c.id for c in communities]
    people = session.execute(
        select(
            RoleAssignment.role,
            RoleAssignment.community_id,
            RoleAssignment.sector_id,
            RoleAssignment.cell_id,
            RoleAssignment.employment,
            RoleAssignment.starts_on,
            Person.name,
            Person.phone,
            Person.party_status,
        )
        .join(Person, Person.id == RoleAssignment.person_id)
        .where(
            active_on(RoleAssignment, day),
            RoleAssignment.role.in_(
                ("community_head", "sector_head", "branch_head", "leader", "grid_worker")
            ),
        )
        .order_by(RoleAssignment.role, Person.name)
    ).all()
    by_target: dict[tuple[str, int], list[dict[str, Any]]] = {}
    order = {"community_head": 0, "sector_head": 0, "branch_head": 0, "leader": 0}
    for p in people:
        key = (
            ("community", p.community_id)
            if p.community_id
            else ("sector", p.sector_id)
            if p.sector_id
            else ("cell", p.cell_id)
        )
        by_target.setdefault(key, []).append(
            {
                "name": p.name,
                "role": p.role,
                "role_label": ASSIGNMENT_ROLES[p.role],
                "duty": ROLE_DUTIES[p.role],
                "phone": p.phone,
                "employment": EMPLOYMENT_KINDS.get(p.employment or ""),
                "party_member": p.party_status is not None,
                "since": p.starts_on.isoformat(),
            }
        )
    for group in by_target.values():
        group.sort(key=lambda x: (order.get(x["role"], 1), x["name"]))
    captains = dict(
        session.execute(
            select(Building.cell_id, func.count(RoleAssignment.id))
            .join(RoleAssignment, RoleAssignment.building_id == Building.id)
            .where(active_on(RoleAssignment, day), RoleAssignment.role == "building_captain")
            .group_by(Building.cell_id)
        ).all()
    )
    sectors = session.execute(
        select(
            Sector.id, Sector.code, Sector.name, Sector.level, Sector.parent_id, Sector.community_id
        )
        .where(Sector.community_id.in_(ids))
        .order_by(Sector.code)
    ).all()
    cells = session.execute(
        select(Cell.id, Cell.code, Cell.name, Cell.community_id, CellSector.sector_id)
        .outerjoin(CellSector, CellSector.cell_id == Cell.id)
        .where(Cell.community_id.in_(ids), Cell.retired_at.is_(None), Cell.kind == "general")
        .order_by(Cell.code)
    ).all()

    def cell_node(c: Any) -> dict[str, Any]:
        return {
            "level": "cell",
            "level_label": CELL_LEVELS[4],
            "code": c.code,
            "name": c.name,
            "duties": duties.get(4),
            "people": by_target.get(("cell", c.id), []),
            "building_captains": int(captains.get(c.id, 0)),
            "children": [],
        }

    def sector_node(s: Any) -> dict[str, Any]:
        children = [sector_node(x) for x in sectors if x.parent_id == s.id]
        children += [cell_node(c) for c in cells if c.sector_id == s.id]
        return {
            "level": "sector" if s.level == 2 else "branch",
            "level_label": CELL_LEVELS[s.level],
            "code": s.code,
            "name": s.name,
            "duties": duties.get(s.level),
            "people": by_target.get(("sector", s.id), []),
            "children": children,
        }

    community_nodes = []
    for co in communities:
        tops = [sector_node(s) for s in sectors if s.community_id == co.id and s.parent_id is None]
        loose = [cell_node(c) for c in cells if c.community_id == co.id and c.sector_id is None]
        if loose:
            tops.append(
                {
                    "level": "sector",
                    "level_label": CELL_LEVELS[2],
                    "code": None,
                    "name": "未划片",
                    "duties": None,
                    "people": [],
                    "children": loose,
                }
            )
        community_nodes.append(
            {
                "level": "community",
                "level_label": CELL_LEVELS[1],
                "code": co.code,
                "name": co.name,
                "duties": duties.get(1),
                "people": by_target.get(("community", co.id), []),
                "children": tops,
            }
        )
    return {
        "level": "street",
        "level_label": "街道",
        "code": street.code,
        "name": street.name,
        "as_of": day.isoformat(),
        "duties": None,
        "people": [],
        "children": community_nodes,
    }
