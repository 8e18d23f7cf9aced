"""Coverage per cell, rolled up to community and street: every figure names its denominator.

A figure is ``{"value", "numerator", "denominator", "denominator_label", "label", "unit"}``;
``value`` is numerator ÷ denominator × scale (None when the denominator is 0). The counts
themselves come from :mod:`gridsvc.repositories.coverage` (set-based SQL, as of a date).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsvc.auth.policy import require_in_scope
from gridsvc.auth.principal import Place, Principal
from gridsvc.domain import HOUSEHOLD_FLAGS, PARTY_STATUSES
from gridsvc.errors import InvalidInput, NotFound
from gridsvc.models import Cell, Community, Street
from gridsvc.repositories.coverage import COUNT_COLUMNS, coverage_counts
from gridsvc.services.clock import local_today
from gridsvc.settings import get_settings

#: What "visited in the last N days" means (API descriptions and the README say this).
VISIT_WINDOW_RULE = (
    "近期走访 (households_visited, visited_share): as of day D a household counts as visited "
    "when it has a visit dated D−(N−1) … D, both ends included, N being "
    "GRIDSVC_VISIT_WINDOW_DAYS (default 30). A visit exactly N days before D, or after D, does "
    "not count. Days are local (GRIDSVC_LOCAL_TIMEZONE, default Asia/Shanghai); `as_of` "
    "defaults to today there, and the state at the end of that day is reported."
)

#: Chinese labels of the counts (CSV headers and JSON).
COUNT_LABELS: dict[str, str] = {
    "buildings": "楼栋数",
    "residential_buildings": "有住户的楼栋数",
    "buildings_without_captain": "无楼栋长的楼栋数",
    "households_estimated": "估算户数",
    "households_registered": "登记户数",
    "residents": "登记人口",
    **{f"flag_{k}": f"{v}户数" for k, v in HOUSEHOLD_FLAGS.items()},
    "households_near_volunteer": "步行范围内有志愿者的户数",
    "households_linked": "有党员联系的户数",
    "households_visited": "近期走访户数",
    "party_members": "党员数",
    "party_in_service": "在职党员数",
    "party_in_service_registered": "已报到在职党员数",
    "party_direct": "直管党员数",
    "party_floating": "流动党员数",
    "party_retired": "离退休党员数",
    "volunteers": "志愿者数",
    "incidents_reported": "累计上报事件数",
    "incidents_open": "未结事件数",
    "incidents_overdue": "超期未结事件数",
}
assert set(COUNT_LABELS) == set(COUNT_COLUMNS)


@dataclass(frozen=True)
class FigureSpec:
    """One figure: numerator ÷ denominator × scale."""

    key: str
    label: str
    numerator: str
    denominator: str
    scale: float = 1.0
    unit: str = "share"


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("registration_rate", "户籍登记率", "households_registered", "households_estimated"),
    FigureSpec(
        "residents_per_household", "户均人口", "residents", "households_registered", unit="persons"
    ),
    *(
        FigureSpec(f"share_{k}", f"{v}户占比", f"flag_{k}", "households_registered")
        for k, v in HOUSEHOLD_FLAGS.items()
    ),
    FigureSpec(
        "party_members_per_100_residents",
        "每百人党员数",
        "party_members",
        "residents",
        100.0,
        "per_100",
    ),
    *(
        FigureSpec(f"share_party_{k}", f"{v}占党员比例", f"party_{k}", "party_members")
        for k, v in PARTY_STATUSES.items()
    ),
    FigureSpec(
        "in_service_registered_rate",
        "在职党员报到率",
        "party_in_service_registered",
        "party_in_service",
    ),
    FigureSpec(
        "volunteers_per_100_households",
        "每百户志愿者数",
        "volunteers",
        "households_registered",
        100.0,
        "per_100",
    ),
    FigureSpec("linked_share", "党员联系户覆盖率", "households_linked", "households_registered"),
    FigureSpec("visited_share", "近期走访覆盖率", "households_visited", "households_registered"),
    FigureSpec(
        "near_volunteer_share",
        "步行范围内有志愿者的户占比",
        "households_near_volunteer",
        "households_registered",
    ),
    FigureSpec(
        "buildings_without_captain_share",
        "无楼栋长楼栋占比",
        "buildings_without_captain",
        "residential_buildings",
    ),
    FigureSpec("open_incident_share", "未结事件占比", "incidents_open", "incidents_reported"),
    FigureSpec("overdue_share", "超期事件占未结事件比例", "incidents_overdue", "incidents_open"),
)


def figure(spec: FigureSpec, counts: dict[str, int]) -> dict[str, Any]:
    """One figure with its numerator and named denominator."""
    num, den = counts[spec.numerator], counts[spec.denominator]
    return {
        "label": spec.label,
        "value": round(num / den * spec.scale, 4) if den else None,
        "numerator": num,
        "denominator": den,
        "denominator_label": COUNT_LABELS[spec.denominator],
        "unit": spec.unit,
    }


def end_of_day(day: date, tz: str) -> datetime:
    """The instant a local day ends (the start of the next day in `tz`)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(tz))


def coverage(
    session: Session,
    principal: Principal,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    as_of: date | None = None,
    distance_m: float | None = None,
) -> dict[str, Any]:
    """Coverage of a street (or one community of it) as of a date (default today)."""
    settings = get_settings().coverage
    day = as_of or local_today()
    distance = settings.walk_distance_m if distance_m is None else float(distance_m)
    if not 0 < distance <= 5000:
        raise InvalidInput("distance_m must be between 0 and 5000 metres")
    community_id = None
    if community_code is not None:
        row = session.execute(
            select(Community.id, Community.street_id).where(Community.code == community_code)
        ).one_or_none()
        if row is None:
            raise NotFound(f"no community with code {community_code!r}")
        community_id, street_id = row
        place = Place(street_id=street_id, community_id=community_id)
        if not (principal.cell_id is not None and principal.cell_community_id == community_id):
            require_in_scope(principal, place, f"community {community_code}")
    elif street_code is not None:
        street_id = session.scalar(select(Street.id).where(Street.code == street_code))
        if street_id is None:
            raise NotFound(f"no street with code {street_code!r}")
        require_in_scope(principal, Place(street_id=street_id), f"street {street_code}")
    else:
        raise InvalidInput("name a street or a community")
    street = session.execute(select(Street.code, Street.name).where(Street.id == street_id)).one()
    rows = coverage_counts(
        session,
        street_id=street_id,
        community_id=community_id,
        day=day,
        instant=end_of_day(day, get_settings().app.local_timezone),
        distance_m=distance,
        visit_window_days=settings.visit_window_days,
    )
    communities = {
        r.id: r
        for r in session.execute(
            select(Community.id, Community.code, Community.name).where(
                Community.street_id == street_id
            )
        )
    }
    cell_ids = [r.cell_id for r in rows if r.cell_id is not None]
    cells = {
        r.id: r
        for r in session.execute(select(Cell.id, Cell.code, Cell.name).where(Cell.id.in_(cell_ids)))
    }
    out_rows = []
    for r in rows:
        if r.level == "street" and community_id is not None:
            continue
        if r.cells == 0 and r.level != "street":
            continue
        co = communities.get(r.community_id) if r.community_id else None
        cell = cells.get(r.cell_id) if r.cell_id else None
        out_rows.append(
            {
                "level": r.level,
                "street_code": street.code,
                "community_code": co.code if co else None,
                "community_name": co.name if co else None,
                "cell_code": cell.code if cell else None,
                "cell_name": cell.name if cell else None,
                "cells": r.cells,
                "counts": r.counts,
                "figures": {s.key: figure(s, r.counts) for s in FIGURES},
            }
        )
    order = {"cell": 0, "community": 1, "street": 2}
    out_rows.sort(
        key=lambda x: (
            x["level"] == "street",
            x["community_code"] or "",
            order[x["level"]] == 1,
            x["cell_code"] or "",
        )
    )
    return {
        "street": {"code": street.code, "name": street.name},
        "community": community_code,
        "as_of": day.isoformat(),
        "distance_m": distance,
        "distance_note": "straight-line distance on the WGS84 spheroid between buildings' "
        "points on surface (PostGIS geography)",
        "visit_window_days": settings.visit_window_days,
        "count_labels": COUNT_LABELS,
        "rows": out_rows,
    }


_LEVEL_LABELS = {"cell": "网格", "community": "社区", "street": "街道"}


def to_table(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of the report with Chinese headers: one row per cell, community and
    street; every count, then every figure, whose header names its denominator."""
    header = ["层级", "社区编码", "社区", "网格编码", "网格", "截至日期"]
    header += [COUNT_LABELS[c] for c in COUNT_COLUMNS]
    header += [f"{s.label}(分母:{COUNT_LABELS[s.denominator]})" for s in FIGURES]
    rows = []
    for row in report["rows"]:
        line: list[Any] = [
            _LEVEL_LABELS[row["level"]],
            row["community_code"] or "",
            row["community_name"] or "",
            row["cell_code"] or "",
            row["cell_name"] or "",
            report["as_of"],
        ]
        line += [row["counts"][c] for c in COUNT_COLUMNS]
        line += [row["figures"][s.key]["value"] for s in FIGURES]
        rows.append(line)
    return header, rows


def to_csv(report: dict[str, Any]) -> bytes:
    """The report as CSV (see :func:`to_table`), UTF-8 with a BOM so Excel opens it as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header, rows = to_table(report)
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
