"""Roster import (花名册): people and their assignments from CSV/XLSX with Chinese headers.

Columns (aliases in brackets): 姓名 (required), 电话 [手机, 联系电话], 身份证号 [身份证], 性别,
出生年份, 党员类别 [政治面貌], 报到日期, 志愿队 [志愿服务队], 角色 [职务], 社区编码, 片区编码,
网格编码, 楼栋, 单元, 室 [房号], 用工 [专兼职], 开始日期 [任职日期], 结束日期.

Every row is checked; the report lists each problem with its row number (as in the file: the
header is row 1), column and message. A dry run (the default) writes nothing; with commit the
good rows are written — each row whole or not at all (a savepoint per row inside one savepoint
for the file, so a failure midway leaves nothing half-written).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from geodata.errors import GeodataError, InputTooLarge
from geodata.readers import read_table
from gridsvc.auth.principal import Principal
from gridsvc.db.transactions import savepoint
from gridsvc.domain import (
    ASSIGNMENT_ROLES,
    ASSIGNMENT_TARGET,
    MAX_CODE,
    MAX_NAME,
    MAX_PERSON_NAME,
)
from gridsvc.errors import GridsvcError, InvalidInput, TooLarge
from gridsvc.services import people
from gridsvc.settings import get_settings

#: Canonical column → accepted headers.
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "name"),
    "phone": ("电话", "手机", "手机号", "联系电话", "phone"),
    "id_number": ("身份证号", "身份证", "身份证号码", "id_number"),
    "gender": ("性别", "gender"),
    "birth_year": ("出生年份", "birth_year"),
    "party_status": ("党员类别", "政治面貌", "party_status"),
    "party_registered_on": ("报到日期", "party_registered_on"),
    "volunteer_team": ("志愿队", "志愿服务队", "volunteer_team"),
    "role": ("角色", "职务", "role"),
    "community": ("社区编码", "community"),
    "sector": ("片区编码", "sector"),
    "cell": ("网格编码", "网格", "cell"),
    "building": ("楼栋", "楼栋号", "building"),
    "unit": ("单元", "unit"),
    "room": ("室", "房号", "room"),
    "employment": ("用工", "专兼职", "employment"),
    "starts_on": ("开始日期", "任职日期", "starts_on"),
    "ends_on": ("结束日期", "ends_on"),
}

_NOT_A_MEMBER = {"群众", "无", "非党员", "否"}

#: Longest text per column: the limits of the people API (PersonIn, AssignmentIn); phone and
#: 身份证号 are checked by their own rules, dates must parse.
TEXT_LIMITS: dict[str, int] = {
    "name": MAX_PERSON_NAME,
    "gender": 8,
    "volunteer_team": MAX_NAME,
    "building": MAX_NAME,
    "unit": MAX_NAME,
    "room": MAX_NAME,
}


@dataclass
class RosterReport:
    """What a roster import did or would do."""

    file: str
    rows: int = 0
    good_rows: int = 0
    people_created: int = 0
    people_matched: int = 0
    assignments: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    committed: bool = False

    def error(self, row: int, column: str, message: str) -> None:
        """Add a problem of one row."""
        self.errors.append({"row": row, "column": column, "message": message})

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "file": self.file,
            "rows": self.rows,
            "good_rows": self.good_rows,
            "bad_rows": self.rows - self.good_rows,
            "people_created": self.people_created,
            "people_matched": self.people_matched,
            "assignments": self.assignments,
            "committed": self.committed,
            "errors": self.errors,
        }


def parse_date(value: str | None) -> date | None:
    """2026-01-05, 2026/1/5, 2026.1.5, 2026年1月5日, 20260105 (or an Excel date-time)."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    m = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]00:00(?::00)?)?", text)
    if not m:
        m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
    if not m:
        raise InvalidInput(f"{text!r} is not a date (use 2026-01-05)")
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as exc:
        raise InvalidInput(f"{text!r} is not a date ({exc})") from None


def _columns(df_columns: list[str]) -> dict[str, str]:
    """Canonical name → the file's header."""
    found: dict[str, str] = {}
    normalised = {re.sub(r"\s+", "", c).lower(): c for c in df_columns}
    for key, names in COLUMNS.items():
        for name in names:
            if name.lower() in normalised:
                found[key] = normalised[name.lower()]
                break
    return found


def import_roster(
    session: Session, principal: Principal, path: Path, *, commit: bool
) -> RosterReport:
    """Check every row of a roster and (with commit) write the good ones; see the module doc."""
    report = RosterReport(file=path.name)
    app = get_settings().app
    try:
        df = read_table(path, max_rows=app.max_import_features, limits=app.input_limits())
    except InputTooLarge as exc:
        raise TooLarge(str(exc)) from None
    except GeodataError as exc:
        raise InvalidInput(str(exc)) from None
    header = _columns(list(df.columns))
    if "name" not in header:
        raise InvalidInput(
            f"{path.name}: no 姓名 column; the columns are: {', '.join(map(str, df.columns))}"
        )
    label = {key: header.get(key, COLUMNS[key][0]) for key in COLUMNS}
    report.rows = len(df)
    with savepoint(session, keep=commit):
        for index, raw in df.iterrows():
            row_no = int(index) + 2  # type: ignore[call-overload]
            values = {key: _clean(raw[col]) for key, col in header.items()}
            problems = _check(values, label)
            if problems:
                for column, message in problems:
                    report.error(row_no, column, message)
                continue
            try:
                with session.begin_nested():
                    created, assigned = _write(session, principal, values, label)
            except _RowError as exc:
                report.error(row_no, exc.column, exc.message)
                continue
            except SQLAlchemyError as exc:
                reason = getattr(exc, "orig", None) or exc
                report.error(row_no, "", f"the database refused the row: {reason}")
                continue
            report.good_rows += 1
            report.people_created += created
            report.people_matched += not created
            report.assignments += assigned
    report.committed = commit
    return report


class _RowError(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _clean(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _check(values: dict[str, str | None], label: dict[str, str]) -> list[tuple[str, str]]:
    """Problems found without the database: missing name, bad phone, id, dates, role."""
    problems: list[tuple[str, str]] = []
    for key, value in list(values.items()):
        limit = TEXT_LIMITS.get(key, MAX_CODE)
        if value is not None and len(value) > limit:
            problems.append((label[key], f"{len(value)} characters; the limit is {limit}"))
            values[key] = None  # not checked further (nor echoed back in other messages)
    if problems and not values.get("name"):
        return problems
    if not values.get("name"):
        problems.append((label["name"], "姓名 is empty"))
    for key, check in (("phone", people.check_phone), ("id_number", people.check_id_number)):
        try:
            values[key] = check(values.get(key))
        except InvalidInput as exc:
            problems.append((label[key], exc.detail))
    for key in ("starts_on", "ends_on", "party_registered_on"):
        try:
            values[key] = parse_date(values.get(key))  # type: ignore[assignment]
        except InvalidInput as exc:
            problems.append((label[key], exc.detail))
    if (
        values.get("starts_on")
        and values.get("ends_on")
        and values["ends_on"] < values["starts_on"]
    ):  # type: ignore[operator]
        problems.append((label["ends_on"], "结束日期 is before 开始日期"))
    problems += _check_role(values, label)
    status = values.get("party_status")
    if status in _NOT_A_MEMBER:
        values["party_status"] = None
    if values.get("birth_year") and not str(values["birth_year"]).isdigit():
        problems.append((label["birth_year"], f"出生年份 {values['birth_year']!r} is not a year"))
    return problems


def _check_role(values: dict[str, str | None], label: dict[str, str]) -> list[tuple[str, str]]:
    """The role is one we know, and the row names the place it is held in."""
    problems: list[tuple[str, str]] = []
    role = values.get("role")
    if not role:
        return problems
    try:
        key: str | None = people.normalise_role(role)
    except InvalidInput as exc:
        key = None
        problems.append((label["role"], exc.detail))
    if key is not None:
        values["role"] = key
        need = {
            "community": "community",
            "sector": "sector",
            "cell": "cell",
            "building": "building",
            "household": "building",
        }[ASSIGNMENT_TARGET[key]]
        if not values.get(need):
            problems.append((label[need], f"a {ASSIGNMENT_ROLES[key]} needs {label[need]}"))
    return problems


def _target_column(role: str, label: dict[str, str], exc: GridsvcError) -> str:
    kind = ASSIGNMENT_TARGET[role]
    if kind == "household":
        return label["unit"] if "household" in exc.detail else label["building"]
    return label[kind]


def _write(
    session: Session, principal: Principal, v: dict[str, Any], label: dict[str, str]
) -> tuple[bool, int]:
    """Write one good-looking row (person, then assignment); raise _RowError on a problem."""
    role = v.get("role")
    target = None
    community = v.get("community")
    if role:
        try:
            target = people.resolve_target(
                session,
                role,
                community=community,
                sector=v.get("sector"),
                cell=v.get("cell"),
                building=v.get("building"),
                unit=v.get("unit"),
                room=v.get("room"),
            )
        except GridsvcError as exc:
            raise _RowError(_target_column(role, label, exc), exc.detail) from None
    person = people.find_person(
        session, name=v["name"], id_number=v.get("id_number"), phone=v.get("phone")
    )
    created = person is None
    if person is None:
        place_community = community or _community_code_of(session, target)
        try:
            person = people.create_person(
                session,
                principal,
                name=v["name"],
                community=place_community,
                phone=v.get("phone"),
                id_number=v.get("id_number"),
                gender=v.get("gender"),
                birth_year=int(v["birth_year"]) if v.get("birth_year") else None,
                party_status=v.get("party_status"),
                party_registered_on=v.get("party_registered_on"),
                volunteer_team=v.get("volunteer_team"),
            )
        except GridsvcError as exc:
            column = next(
                (
                    label[k]
                    for k in ("party_status", "volunteer_team", "community")
                    if k in exc.detail or COLUMNS[k][0] in exc.detail
                ),
                label["community"],
            )
            raise _RowError(column, exc.detail) from None
    if target is None:
        return created, 0
    try:
        people.assign(
            session,
            principal,
            person_id=person.id,
            role=role,  # type: ignore[arg-type]
            target=target,
            starts_on=v.get("starts_on"),
            ends_on=v.get("ends_on"),
            employment=v.get("employment"),
        )
    except GridsvcError as exc:
        column = label["employment"] if "专职" in exc.detail else label["role"]
        raise _RowError(column, exc.detail) from None
    return created, 1


def _community_code_of(session: Session, target: people.Target | None) -> str | None:
    if target is None or target.place.community_id is None:
        return None
    from sqlalchemy import select

    from gridsvc.models import Community

    return session.scalar(select(Community.code).where(Community.id == target.place.community_id))
