"""Load a generated street (geodata.synth) into the database: the demo and the benchmarks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geodata.synth import SynthStreet
from gridsvc.domain import HOUSEHOLD_FLAGS, PARTY_STATUSES, sql_literal
from gridsvc.models import Community, District, Street
from gridsvc.repositories.bulk import copy_rows, ewkb_hex, reserve_ids, to_db_geometry
from gridsvc.services.assignment import (
    assign_buildings_to_areas,
    assign_buildings_to_cells,
    attribute_incidents,
)
from gridsvc.services.clock import local_today, local_zone
from gridsvc.services.imports import create_cells

log = logging.getLogger(__name__)

Step = Callable[[str], None]


@dataclass(frozen=True)
class LoadedStreet:
    """Counts of what was loaded."""

    street_code: str
    communities: int
    cells: int
    buildings: int
    households: int
    persons: int
    incidents: int


def _none(value: Any) -> Any:
    """pandas missing values → None for COPY."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _ids(keys: pd.Series, id_of: dict[Any, int]) -> pd.Series:
    """Database ids for generator keys (missing keys → NULL), as integers, not floats."""
    return keys.map(id_of).astype("Int64")


def _rows(*columns: Any) -> Any:
    return (tuple(_none(v) for v in row) for row in zip(*columns, strict=True))


def load_street(session: Session, street: SynthStreet, step: Step | None = None) -> LoadedStreet:
    """Write a whole generated street; the caller commits. Streets must not exist yet.

    The audit log gets one summary event, not one per generated row."""
    from gridsvc.services import audit

    with audit.bulk(session):
        loaded = _load_street(session, street, step)
    audit.record(
        session,
        "demo.load",
        "street",
        after={
            "street": loaded.street_code,
            "cells": loaded.cells,
            "buildings": loaded.buildings,
            "households": loaded.households,
            "persons": loaded.persons,
        },
    )
    return loaded


def _load_street(session: Session, street: SynthStreet, step: Step | None) -> LoadedStreet:
    say = step or (lambda _msg: None)
    source = f"demo-{street.street['code']}"

    say("areas")
    district_id = session.scalar(
        select(District.id).where(District.code == street.district["code"])
    )
    if district_id is None:
        district = District(
            code=street.district["code"],
            name=street.district["name"],
            geom=to_db_geometry(street.district["geometry"]),
        )
        session.add(district)
        session.flush()
        district_id = district.id
    street_row = Street(
        code=street.street["code"],
        name=street.street["name"],
        district_id=district_id,
        geom=to_db_geometry(street.street["geometry"]),
    )
    session.add(street_row)
    session.flush()
    communities = street.communities
    session.add_all(
        Community(
            code=r.code, name=r.name, street_id=street_row.id, geom=to_db_geometry(r.geometry)
        )
        for r in communities.itertuples()
    )
    session.flush()
    community_ids = dict(
        session.execute(
            select(Community.code, Community.id).where(Community.street_id == street_row.id)
        ).all()
    )

    say("estates")
    estates = street.estates
    estate_ids = reserve_ids(session, "estate", len(estates))
    copy_rows(
        session,
        "estate",
        ("id", "name", "source", "source_id", "community_id", "geom"),
        _rows(
            estate_ids,
            estates["name"],
            [source] * len(estates),
            estates["estate_key"],
            _ids(estates["community_code"], community_ids),
            ewkb_hex(estates.geometry.values),
        ),
    )
    estate_id_of = dict(zip(estates["estate_key"], estate_ids.tolist(), strict=True))

    say("cells")
    cells = street.cells
    create_cells(session, cells[["code", "name", "geometry"]], reason="demo partition")
    cell_id_of_code = dict(
        session.execute(
            text("SELECT code, id FROM cell WHERE code = ANY(:codes)"),
            {"codes": list(cells["code"])},
        ).all()
    )
    cell_id_of = {
        k: cell_id_of_code[c] for k, c in zip(cells["cell_key"], cells["code"], strict=True)
    }

    say("buildings")
    b = street.buildings
    building_ids = reserve_ids(session, "building", len(b))
    structure = b["structure"] if "structure" in b.columns else pd.Series([None] * len(b))
    copy_rows(
        session,
        "building",
        (
            "id",
            "source",
            "source_id",
            "name",
            "address",
            "kind",
            "levels",
            "units",
            "households",
            "households_estimated",
            "estate_id",
            "community_id",
            "footprint",
            "properties",
        ),
        _rows(
            building_ids,
            [source] * len(b),
            b["building_key"],
            b["name"],
            b["address"],
            b["building"],
            b["levels"],
            b["units"],
            b["households"],
            [False] * len(b),
            _ids(b["estate_key"], estate_id_of),
            _ids(b["community_code"], community_ids),
            ewkb_hex(b.geometry.values),
            [json.dumps({"structure": _none(s)}) for s in structure],
        ),
    )
    building_id_of = dict(zip(b["building_key"], building_ids.tolist(), strict=True))
    assign_buildings_to_areas(session, only_unset=True)
    for cid in community_ids.values():
        assign_buildings_to_cells(session, community_id=cid)

    say("households")
    h = street.households
    household_ids = reserve_ids(session, "household", len(h))
    flag_columns = list(HOUSEHOLD_FLAGS)
    copy_rows(
        session,
        "household",
        ("id", "building_id", "unit", "room", "size", "head_name", "phone", *flag_columns),
        _rows(
            household_ids,
            _ids(h["building_key"], building_id_of),
            h["unit"],
            h["room"],
            h["size"],
            h["head_name"],
            h["phone"],
            *(h[c] for c in flag_columns),
        ),
    )
    household_id_of = dict(zip(h["household_key"], household_ids.tolist(), strict=True))

    say("people")
    teams = street.volunteer_teams
    team_ids = reserve_ids(session, "volunteer_team", len(teams))
    copy_rows(
        session,
        "volunteer_team",
        ("id", "name", "kind", "community_id"),
        _rows(team_ids, teams["name"], teams["kind"], _ids(teams["community_code"], community_ids)),
    )
    team_id_of = dict(zip(teams["team_key"], team_ids.tolist(), strict=True))
    p = street.persons
    person_ids = reserve_ids(session, "person", len(p))
    copy_rows(
        session,
        "person",
        (
            "id",
            "name",
            "phone",
            "gender",
            "birth_year",
            "household_id",
            "party_status",
            "volunteer_team_id",
        ),
        _rows(
            person_ids,
            p["name"],
            p["phone"],
            p["gender"],
            p["birth_year"],
            _ids(p["household_key"], household_id_of),
            p["party_status"],
            _ids(p["volunteer_team_key"], team_id_of),
        ),
    )
    session.execute(
        text(
            "UPDATE person p SET community_id = b.community_id FROM household h "
            "JOIN building b ON b.id = h.building_id "
            "WHERE h.id = p.household_id AND p.id = ANY(:ids)"
        ),
        {"ids": person_ids.tolist()},
    )
    person_id_of = dict(zip(p["person_key"], person_ids.tolist(), strict=True))
    r = street.roles
    copy_rows(
        session,
        "role_assignment",
        ("person_id", "role", "cell_id", "building_id", "employment", "starts_on"),
        _rows(
            _ids(r["person_key"], person_id_of),
            r["role"],
            _ids(r["cell_key"], cell_id_of),
            _ids(r["building_key"], building_id_of),
            r["employment"],
            r["starts_on"],
        ),
    )

    say("incidents")
    inc = street.incidents
    first_report = pd.to_datetime(inc["reported_at"]).min() if len(inc) else None
    # The demo partition has been in force since before the first incident it holds.
    start = (
        first_report.to_pydatetime() - timedelta(days=1)
        if first_report is not None
        else datetime.now(local_zone()) - timedelta(days=366)
    )
    session.execute(
        text("UPDATE cell_version SET valid_from = :start WHERE cell_id = ANY(:ids)"),
        {"start": start, "ids": list(cell_id_of.values())},
    )
    points = [f"SRID=4326;POINT({x} {y})" for x, y in zip(inc["lon"], inc["lat"], strict=True)]
    copy_rows(
        session,
        "incident",
        (
            "location",
            "category",
            "description",
            "status",
            "reporter_kind",
            "reported_at",
            "closed_at",
        ),
        _rows(
            points,
            inc["category"],
            inc["description"],
            inc["status"],
            inc["reporter_kind"],
            inc["reported_at"],
            inc["closed_at"],
        ),
    )
    attribute_incidents(session)
    say("duties")
    load_people_extras(session, street_row.code)
    return LoadedStreet(
        street_code=street_row.code,
        communities=len(communities),
        cells=len(cells),
        buildings=len(b),
        households=len(h),
        persons=len(p),
        incidents=len(inc),
    )


# -- people and duties: sectors, heads, 联系户, 走访, 公益岗位, 辖区单位 (set-based SQL) -----------
#: Pseudo-random but repeatable per row: a number in [0, 100) from an id and a salt.
_H = "(abs(hashint4({col} + {salt})) % 100)"
_IN_SERVICE = sql_literal("in_service", PARTY_STATUSES)
_DIRECT = sql_literal("direct", PARTY_STATUSES)

_DEMO_PEOPLE_SQL = (
    # 片区: about six cells per level-2 sector, in reading order (codes run west→east, north→south).
    """
    WITH ranked AS (
        SELECT c.id, c.community_id, co.code AS community_code,
               row_number() OVER (PARTITION BY c.community_id ORDER BY c.code) - 1 AS i,
               count(*) OVER (PARTITION BY c.community_id) AS n
        FROM cell c JOIN community co ON co.id = c.community_id
        WHERE co.street_id = :street AND c.kind = 'general' AND c.retired_at IS NULL
    ), c AS (
        SELECT id, community_id, community_code,
               1 + i * greatest(1, (n + 5) / 6) / n AS k
        FROM ranked
    ), s AS (
        INSERT INTO sector (code, name, level, community_id)
        SELECT DISTINCT community_code || '-P' || lpad(k::text, 2, '0'),
               '第' || k || '片区', 2, community_id FROM c
        RETURNING id, code
    )
    INSERT INTO cell_sector (cell_id, sector_id)
    SELECT c.id, s.id FROM c JOIN s ON s.code = c.community_code || '-P' || lpad(c.k::text, 2, '0')
    """,
    # 在职党员报到: most in-service members registered with the community.
    f"""
    UPDATE person p SET party_registered_on = :as_of - ({_H.format(col="p.id", salt=11)} * 9)
    FROM community co
    WHERE co.id = p.community_id AND co.street_id = :street AND p.party_status = {_IN_SERVICE}
      AND {_H.format(col="p.id", salt=12)} < 85
    """,
    # 一级网格长 (community head) and 二级网格长 (sector heads): party members not yet assigned.
    f"""
    WITH candidates AS (
        SELECT p.id, p.community_id,
               row_number() OVER (PARTITION BY p.community_id ORDER BY
                   (p.party_status = {_DIRECT}) DESC, p.id) AS rank
        FROM person p JOIN community co ON co.id = p.community_id
        WHERE co.street_id = :street AND p.party_status IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM role_assignment r WHERE r.person_id = p.id)
    ), sectors AS (
        SELECT s.id, s.community_id,
               row_number() OVER (PARTITION BY s.community_id ORDER BY s.code) + 1 AS rank
        FROM sector s JOIN community co ON co.id = s.community_id WHERE co.street_id = :street
    )
    INSERT INTO role_assignment (person_id, role, community_id, sector_id, starts_on)
    SELECT c.id, 'community_head', c.community_id, NULL, :as_of - 800
    FROM candidates c WHERE c.rank = 1
    UNION ALL
    SELECT c.id, 'sector_head', NULL, s.id, :as_of - 400
    FROM sectors s JOIN candidates c ON c.community_id = s.community_id AND c.rank = s.rank
    """,
    # 联系户: about a third of the households, shared out among the cell's party members.
    f"""
    WITH m AS (
        SELECT p.id, b.cell_id,
               row_number() OVER (PARTITION BY b.cell_id ORDER BY p.id) - 1 AS k,
               count(*) OVER (PARTITION BY b.cell_id) AS n
        FROM person p JOIN household h ON h.id = p.household_id
        JOIN building b ON b.id = h.building_id JOIN community co ON co.id = b.community_id
        WHERE co.street_id = :street AND p.party_status IS NOT NULL
    ), hh AS (
        SELECT h.id, b.cell_id, row_number() OVER (PARTITION BY b.cell_id ORDER BY h.id) - 1 AS k
        FROM household h JOIN building b ON b.id = h.building_id
        JOIN community co ON co.id = b.community_id
        WHERE co.street_id = :street AND {_H.format(col="h.id", salt=21)} < 35
    )
    INSERT INTO linked_household (person_id, household_id, starts_on)
    SELECT m.id, hh.id, :as_of - ({_H.format(col="hh.id", salt=22)} * 7)
    FROM hh JOIN m ON m.cell_id = hh.cell_id AND m.k = hh.k % m.n
    """,
    # 走访: about half the households visited in the last 90 days by the cell's grid worker.
    f"""
    INSERT INTO visit (household_id, person_id, visited_on, note)
    SELECT h.id, r.person_id, :today - ({_H.format(col="h.id", salt=31)} % 90),
           (ARRAY['入户走访，了解家庭情况', '宣传垃圾分类', '核实流动人口信息',
                  '关心独居老人生活', '收集居民意见'])[1 + {_H.format(col="h.id", salt=32)} % 5]
    FROM household h JOIN building b ON b.id = h.building_id
    JOIN community co ON co.id = b.community_id
    JOIN LATERAL (SELECT person_id FROM role_assignment
                  WHERE cell_id = b.cell_id AND role = 'grid_worker' AND ends_on IS NULL
                  ORDER BY employment, id LIMIT 1) r ON true
    WHERE co.street_id = :street AND {_H.format(col="h.id", salt=33)} < 50
    """,
    # 公益岗位: every registered in-service member claims a post, with a few activities.
    f"""
    WITH posts AS (
        INSERT INTO service_post (person_id, community_id, kind, title, starts_on)
        SELECT p.id, p.community_id,
               (ARRAY['education', 'rights', 'assistance', 'environment', 'culture',
                      'security', 'mediation'])[1 + {_H.format(col="p.id", salt=41)} % 7],
               NULL, p.party_registered_on
        FROM person p JOIN community co ON co.id = p.community_id
        WHERE co.street_id = :street AND p.party_registered_on IS NOT NULL
        RETURNING id, starts_on
    )
    INSERT INTO post_activity (post_id, happened_on, hours, note)
    SELECT posts.id, greatest(posts.starts_on, :today - (n * 37 + {_H.format(col="posts.id", salt=42)})),
           1 + n % 3, '岗位活动'
    FROM posts CROSS JOIN generate_series(0, 2) AS n
    """,
    # 辖区单位: schools, clinics, markets, offices of the street, with a contact.
    f"""
    INSERT INTO organisation (name, kind, community_id, cell_id, building_id, address,
                              contact_name, contact_phone)
    SELECT coalesce(b.name, b.kind), CASE b.kind WHEN 'school' THEN 'school'
               WHEN 'kindergarten' THEN 'school' WHEN 'clinic' THEN 'hospital'
               WHEN 'market' THEN 'market' WHEN 'office' THEN 'enterprise'
               WHEN 'community_center' THEN 'government' ELSE 'other' END,
           b.community_id, b.cell_id, b.id, b.address,
           (ARRAY['王', '李', '张', '刘', '陈'])[1 + {_H.format(col="b.id", salt=51)} % 5] || '老师',
           '139' || lpad((abs(hashint4(b.id + 52)) % 100000000)::text, 8, '0')
    FROM building b JOIN community co ON co.id = b.community_id
    WHERE co.street_id = :street AND b.kind IN ('school', 'kindergarten', 'clinic', 'market',
                                               'office', 'community_center')
    """,
)


def load_people_extras(session: Session, street_code: str) -> None:
    """Give a loaded street plausible sectors, heads, 联系户, 走访, 公益岗位 and 辖区单位, so its
    coverage figures are not zero (set-based SQL; repeatable for the same database ids)."""

    street_id = session.scalar(select(Street.id).where(Street.code == street_code))
    today = local_today()
    params = {"street": street_id, "as_of": today, "today": today}
    for sql in _DEMO_PEOPLE_SQL:
        session.execute(text(sql), params)
