"""Queries on cells and what lies in them: buildings, households, point lookups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyproj
from sqlalchemy import Select, Text, and_, bindparam, func, select
from sqlalchemy.orm import Session, aliased

from gridsvc.auth.policy import scope_filter
from gridsvc.auth.principal import Place, Principal
from gridsvc.domain import HOUSEHOLD_FLAGS
from gridsvc.errors import NotFound
from gridsvc.models import Building, Cell, CellVersion, Community, Household, Person, RoleAssignment
from gridsvc.repositories.geojson import feature, json_array


@dataclass(frozen=True)
class CellRef:
    """A cell's identity, place and current boundary version."""

    id: int
    code: str
    name: str
    kind: str
    community_id: int
    street_id: int
    version_id: int | None
    version: int | None

    @property
    def place(self) -> Place:
        """Where it lies, for scope checks."""
        return Place(street_id=self.street_id, community_id=self.community_id, cell_id=self.id)


#: EPSG:4326 built once (constructing a CRS per frame costs milliseconds).
_WGS84 = pyproj.CRS.from_epsg(4326)


def _cell_ref_select() -> Select[Any]:
    return (
        select(
            Cell.id,
            Cell.code,
            Cell.name,
            Cell.kind,
            Cell.community_id,
            Community.street_id,
            CellVersion.id,
            CellVersion.version,
        )
        .join(Community, Community.id == Cell.community_id)
        .outerjoin(CellVersion, (CellVersion.cell_id == Cell.id) & CellVersion.valid_to.is_(None))
    )


def get_cell(session: Session, code: str) -> CellRef:
    """The cell with this code, or NotFound."""
    row = session.execute(_cell_ref_select().where(Cell.code == code)).one_or_none()
    if row is None:
        raise NotFound(f"no cell with code {code!r}")
    return CellRef(*row)


def _leader_name() -> Any:
    leader = aliased(RoleAssignment)
    return (
        select(Person.name)
        .join(leader, leader.person_id == Person.id)
        .where(leader.cell_id == Cell.id, leader.role == "leader", leader.ends_on.is_(None))
        .limit(1)
        .scalar_subquery()
    )


def _cell_conditions(principal: Principal, **filters: Any) -> list[Any]:
    conditions = [
        CellVersion.valid_to.is_(None),
        Cell.retired_at.is_(None),
        scope_filter(
            principal,
            cell_id=Cell.id,
            community_id=Cell.community_id,
            street_id=Community.street_id,
        ),
    ]
    columns = {"community_id": Cell.community_id, "kind": Cell.kind, "cell_id": Cell.id}
    conditions += [columns[k] == v for k, v in filters.items() if v is not None]
    return conditions


def _cell_feature_select(conditions: list[Any]) -> Select[Any]:
    building_stats = select(func.count(), func.coalesce(func.sum(Building.households), 0)).where(
        Building.cell_id == Cell.id
    )
    return (
        select(
            feature(
                Cell.code,
                CellVersion.geom,
                {
                    "code": Cell.code,
                    "name": Cell.name,
                    "kind": Cell.kind,
                    "level": Cell.level,
                    "community_code": Community.code,
                    "community_name": Community.name,
                    "version": CellVersion.version,
                    "valid_from": CellVersion.valid_from,
                    "leader": _leader_name(),
                    "buildings": building_stats.with_only_columns(func.count()).scalar_subquery(),
                    "households": building_stats.with_only_columns(
                        func.coalesce(func.sum(Building.households), 0)
                    ).scalar_subquery(),
                },
            )
        )
        .join(CellVersion, CellVersion.cell_id == Cell.id)
        .join(Community, Community.id == Cell.community_id)
        .where(and_(*conditions))
    )


def cell_features(
    session: Session,
    principal: Principal,
    *,
    community_id: int | None = None,
    kind: str | None = None,
    limit: int,
    offset: int,
) -> tuple[str, int, int]:
    """(JSON array of current cell Features in scope, number returned, number matched)."""
    conditions = _cell_conditions(principal, community_id=community_id, kind=kind)
    base = (
        select(Cell.id)
        .join(CellVersion, CellVersion.cell_id == Cell.id)
        .join(Community, Community.id == Cell.community_id)
        .where(and_(*conditions))
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    stmt = _cell_feature_select(conditions).order_by(Cell.code).limit(limit).offset(offset)
    return (*json_array(session, stmt), total)


def cell_feature(session: Session, principal: Principal, cell_id: int) -> str:
    """One current cell as a GeoJSON Feature text, or NotFound if it has no current boundary."""
    stmt = _cell_feature_select(_cell_conditions(principal, cell_id=cell_id))
    found = session.scalar(select(stmt.subquery().c[0].cast(Text)))
    if found is None:
        raise NotFound("this cell has no current boundary (it was retired)")
    return found


def building_features(
    session: Session,
    cell_id: int | None = None,
    *,
    community_id: int | None = None,
    limit: int,
    offset: int,
) -> tuple[str, int, int]:
    """(JSON array of the building Features of a cell or a community, returned, matched)."""
    if (cell_id is None) == (community_id is None):
        raise ValueError("name exactly one of cell_id and community_id")
    where = (
        Building.cell_id == cell_id
        if cell_id is not None
        else (Building.community_id == community_id)
    )
    total = session.scalar(select(func.count()).where(where)) or 0
    stmt = (
        select(
            feature(
                Building.id,
                Building.footprint,
                {
                    "id": Building.id,
                    "name": Building.name,
                    "address": Building.address,
                    "kind": Building.kind,
                    "levels": Building.levels,
                    "units": Building.units,
                    "households": Building.households,
                    "households_estimated": Building.households_estimated,
                    "cell": Cell.code,
                    "source": Building.source,
                    "source_id": Building.source_id,
                },
            )
        )
        .select_from(Building)
        .outerjoin(Cell, Cell.id == Building.cell_id)
        .where(where)
        .order_by(Building.id)
        .limit(limit)
        .offset(offset)
    )
    return (*json_array(session, stmt), total)


def household_columns() -> list[Any]:
    """The columns of a household row as the API and the 台账 show it: ids, building name,
    unit, room, size, head, phone and every flag of the vocabulary."""
    return [
        Household.id,
        Household.building_id,
        Building.name.label("building_name"),
        Household.unit,
        Household.room,
        Household.size,
        Household.head_name,
        Household.phone,
        *(getattr(Household, key).label(key) for key in HOUSEHOLD_FLAGS),
    ]


def households(
    session: Session, cell_id: int, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """(households of the cell's buildings as dicts, number matched), ordered by building, room."""
    base = (
        select(Household)
        .join(Building, Building.id == Household.building_id)
        .where(Building.cell_id == cell_id)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        select(*household_columns())
        .join(Building, Building.id == Household.building_id)
        .where(Building.cell_id == cell_id)
        .order_by(Household.building_id, Household.unit, Household.room, Household.id)
        .limit(limit)
        .offset(offset)
    ).mappings()
    return [dict(r) for r in rows], total


@dataclass(frozen=True)
class PointHit:
    """The answer to a point lookup: the cell (if any) and the community."""

    cell: CellRef | None
    community_id: int | None
    community_code: str | None
    street_id: int | None

    @property
    def place(self) -> Place:
        """Where the point lies, for scope checks (nowhere: only an admin may ask)."""
        if self.cell is not None:
            return self.cell.place
        return Place(street_id=self.street_id, community_id=self.community_id)


def _point() -> Any:
    return func.ST_SetSRID(func.ST_MakePoint(bindparam("lon"), bindparam("lat")), 4326)


# Built once: the hot path only binds lon/lat/kind (statement construction costs more than
# the indexed query itself).
_LOOKUP_CELL = (
    _cell_ref_select()
    .add_columns(Community.code)
    .where(
        CellVersion.valid_to.is_(None),
        Cell.kind == bindparam("kind"),
        Cell.retired_at.is_(None),
        func.ST_Intersects(CellVersion.geom, _point()),
    )
    .order_by(Cell.code)
    .limit(1)
)
_LOOKUP_COMMUNITY = (
    select(Community.id, Community.code, Community.street_id)
    .where(func.ST_Intersects(Community.geom, _point()))
    .limit(1)
)


def lookup_point(session: Session, lon: float, lat: float, kind: str = "general") -> PointHit:
    """The current cell of `kind` holding the point, and its community (GiST index lookups)."""
    params = {"lon": lon, "lat": lat, "kind": kind}
    row = session.execute(_LOOKUP_CELL, params).one_or_none()
    if row is not None:
        cell = CellRef(*row[:-1])
        return PointHit(cell, cell.community_id, row[-1], cell.street_id)
    community = session.execute(_LOOKUP_COMMUNITY, params).one_or_none()
    if community is None:
        return PointHit(None, None, None, None)
    return PointHit(None, community.id, community.code, community.street_id)


def community_cells_frame(session: Session, community_id: int, kind: str = "general") -> Any:
    """Current cells of a community as a GeoDataFrame: id, code, name, version, households,
    has_leader, geometry (shapely, EPSG:4326) — the edge where geometry becomes shapely."""
    import geopandas as gpd

    leader = (
        select(func.count())
        .where(
            RoleAssignment.cell_id == Cell.id,
            RoleAssignment.role == "leader",
            RoleAssignment.ends_on.is_(None),
        )
        .scalar_subquery()
    )
    households = (
        select(func.coalesce(func.sum(Building.households), 0))
        .where(Building.cell_id == Cell.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Cell.id,
            Cell.code,
            Cell.name,
            CellVersion.version,
            CellVersion.id,
            households,
            leader > 0,
            CellVersion.geom,
        )
        .join(CellVersion, (CellVersion.cell_id == Cell.id) & CellVersion.valid_to.is_(None))
        .where(Cell.community_id == community_id, Cell.kind == kind, Cell.retired_at.is_(None))
        .order_by(Cell.code)
    ).all()
    return gpd.GeoDataFrame(
        {
            "id": [r[0] for r in rows],
            "code": [r[1] for r in rows],
            "name": [r[2] for r in rows],
            "version": [r[3] for r in rows],
            "version_id": [r[4] for r in rows],
            "households": [int(r[5]) for r in rows],
            "has_leader": [bool(r[6]) for r in rows],
        },
        geometry=_from_wkb([r[7] for r in rows]),
        crs=_WGS84,
    )


def _from_wkb(values: list[Any]) -> Any:
    """Geometries from WKB in one vectorised call (geometry → shapely at the repository edge)."""
    import numpy as np
    import shapely

    raw = [bytes(getattr(v, "data", v)) for v in values]  # GeoAlchemy2 may wrap it (WKBElement)
    return shapely.from_wkb(np.array(raw, dtype=object))


def community_geometry(session: Session, community_id: int) -> Any:
    """The community's polygon as shapely."""
    from geoalchemy2.shape import to_shape

    return to_shape(session.scalar(select(Community.geom).where(Community.id == community_id)))


def buildings_frame(
    session: Session,
    *,
    community_id: int | None = None,
    envelope: Any = None,
    with_geometry: bool = True,
    ids: list[int] | None = None,
) -> Any:
    """Buildings (id, name, households, community_id, cell_id, cell_code, geometry) of a
    community (its own buildings and those in its cells) or an area."""
    import geopandas as gpd
    import pandas as pd
    from geoalchemy2.shape import from_shape

    stmt = select(
        Building.id,
        Building.name,
        Building.households,
        Building.cell_id,
        Cell.code,
        Building.footprint,
        Building.community_id,
    ).outerjoin(Cell, Cell.id == Building.cell_id)
    if community_id is not None:
        stmt = stmt.where(
            (Building.community_id == community_id) | (Cell.community_id == community_id)
        )
    if envelope is not None:
        stmt = stmt.where(Building.footprint.op("&&")(from_shape(envelope, srid=4326)))
    rows = session.execute(stmt.order_by(Building.id)).all()
    # object columns keep None (not NaN) for missing names and unassigned buildings
    return gpd.GeoDataFrame(
        {
            "id": [r[0] for r in rows],
            "name": pd.Series([r[1] for r in rows], dtype=object),
            "households": [int(r[2]) for r in rows],
            "community_id": pd.Series([r[6] for r in rows], dtype=object),
            "cell_id": pd.Series([r[3] for r in rows], dtype=object),
            "cell_code": pd.Series([r[4] for r in rows], dtype=object),
        },
        geometry=_from_wkb([r[5] for r in rows]) if with_geometry else [None] * len(rows),
        crs=_WGS84,
    )


def next_codes(session: Session, code_column: Any, prefix: str, geoms: Any) -> list[str]:
    """Codes for new areas under a parent code: prefix + the next free 3-digit sequence numbers
    (after the highest ever used, retired ones included), given in reading order
    (west→east, then north→south). Used for communities of a street and cells of a community."""
    import numpy as np

    from geodata.codes import reading_order, sequence_codes

    used = session.scalars(select(code_column).where(code_column.like(f"{prefix}%"))).all()
    start = max((int(c[len(prefix) :]) for c in used if c[len(prefix) :].isdigit()), default=0) + 1
    arr = np.asarray(geoms, dtype=object)
    ranked = sequence_codes(prefix, len(arr), start=start)
    codes = [""] * len(arr)
    for rank, i in enumerate(reading_order(arr)):
        codes[i] = ranked[rank]
    return codes


def next_cell_codes(session: Session, community_id: int, geoms: Any) -> list[str]:
    """Codes for new cells of a community (see :func:`next_codes`)."""
    prefix = session.scalar(select(Community.code).where(Community.id == community_id))
    return next_codes(session, Cell.code, prefix, geoms)
