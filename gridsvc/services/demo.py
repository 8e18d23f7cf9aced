"""Load a generated street (geodata.synth) into the database: the demo and the benchmarks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geodata.synth import SynthStreet
from gridsvc.domain import HOUSEHOLD_FLAGS
from gridsvc.models import Community, District, Street
from gridsvc.repositories.bulk import copy_rows, ewkb_hex, reserve_ids, to_db_geometry
from gridsvc.services.assignment import (
    assign_buildings_to_areas,
    assign_buildings_to_cells,
    attribute_incidents,
)
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
    """Write a whole generated street; the caller commits. Streets must not exist yet."""
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
        else datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=366)
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
    return LoadedStreet(
        street_code=street_row.code,
        communities=len(communities),
        cells=len(cells),
        buildings=len(b),
        households=len(h),
        persons=len(p),
        incidents=len(inc),
    )
