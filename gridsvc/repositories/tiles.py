"""Mapbox vector tiles (``ST_AsMVT``) of cells, buildings, incidents and volunteers.

One SQL statement per tile: each layer reads only the rows whose geometry meets the tile's
envelope (``geom && ST_Transform(ST_TileEnvelope(z, x, y, margin), 4326)``, answered by the
layer's GiST index) and inside the caller's scope (the same conditions as the GeoJSON routes:
:func:`gridsvc.services.access.scope_filter`, :func:`gridsvc.repositories.incidents.incident_scope`).
Personal fields are chosen here by a flag the service sets from the permission matrix: the SQL
never selects what the caller may not see, so nothing has to be removed from a tile afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session, aliased

from gridsvc.auth.policy import scope_filter
from gridsvc.auth.principal import Principal
from gridsvc.domain import HOUSEHOLD_FLAGS, INCIDENT_OPEN_STATUSES
from gridsvc.models import (
    Building,
    Cell,
    CellVersion,
    Community,
    Household,
    Incident,
    IncidentCategory,
    Person,
    VolunteerTeam,
)
from gridsvc.repositories.incidents import incident_scope, overdue_condition

#: Tile grid resolution and the buffer (in tile units) kept around the tile for clipping.
EXTENT = 4096
BUFFER = 64
#: The full extent of WebMercatorQuad (EPSG:3857), the bounds ST_TileEnvelope divides.
_WORLD = func.ST_MakeEnvelope(
    -20037508.342789244, -20037508.342789244, 20037508.342789244, 20037508.342789244, 3857
)

# Given a value so that a statement compiles once, ahead of its tile (see _compiled).
_Z = bindparam("z", value=0, type_=Integer)
_X = bindparam("x", value=0, type_=Integer)
_Y = bindparam("y", value=0, type_=Integer)


def _envelope() -> Any:
    """The tile's square in EPSG:3857 (what ST_AsMVTGeom scales to 0…EXTENT)."""
    return func.ST_TileEnvelope(_Z, _X, _Y)


def _search_box() -> Any:
    """The tile plus its clipping buffer, in EPSG:4326 (the storage CRS: the GiST key)."""
    return func.ST_Transform(func.ST_TileEnvelope(_Z, _X, _Y, _WORLD, BUFFER / EXTENT), 4326)


def _mvt_geom(column: Any) -> Any:
    return func.ST_AsMVTGeom(
        func.ST_Transform(column, 3857), _envelope(), EXTENT, BUFFER, True
    ).label("geom")


def _text(column: Any) -> Any:
    """Timestamps as ISO text (MVT values are strings, numbers or booleans)."""
    return func.to_char(func.timezone("UTC", column), literal('YYYY-MM-DD"T"HH24:MI:SS"Z"'))


@dataclass(frozen=True)
class TileView:
    """What the caller may see in a tile: their scope and the personal-data flag."""

    principal: Principal
    #: The role may read personal fields (``personal.read``); only then are they selected.
    personal: bool


def _cells(view: TileView) -> Select[Any]:
    """Current cells (every kind) in scope: code, name, kind, level, community, version."""
    return (
        select(
            Cell.id,
            Cell.code,
            Cell.name,
            Cell.kind,
            Cell.level,
            Community.code.label("community_code"),
            CellVersion.version,
            _mvt_geom(CellVersion.geom),
        )
        .join(CellVersion, and_(CellVersion.cell_id == Cell.id, CellVersion.valid_to.is_(None)))
        .join(Community, Community.id == Cell.community_id)
        .where(
            CellVersion.geom.op("&&")(_search_box()),
            Cell.retired_at.is_(None),
            scope_filter(
                view.principal,
                cell_id=Cell.id,
                community_id=Cell.community_id,
                street_id=Community.street_id,
            ),
        )
    )


def _own_cell(view: TileView, cell_id: Any) -> ColumnElement[bool]:
    """SQL: the row's cell is one whose households the caller may see (a 格长: their own cell
    only, never another cell of the community they can otherwise look at)."""
    principal = view.principal
    if principal.cell_id is not None and not principal.is_admin:
        return cell_id == principal.cell_id
    return literal(True)


def _buildings(view: TileView) -> Select[Any]:
    """Buildings of the communities in scope (as ``/communities/{code}/buildings``) with their
    household count; per-building flag counts (低保, 残疾 …) only for roles that may read
    personal data, and for a 格长 only in their own cell (a count of one names a household)."""
    columns: list[Any] = [
        Building.id,
        # Also as a property: Leaflet.VectorGrid styles and selects features by a property.
        Building.id.label("building_id"),
        Building.name,
        Building.address,
        Building.kind,
        Building.levels,
        Building.households,
        Building.households_estimated,
        Cell.code.label("cell_code"),
    ]
    stmt = select().select_from(Building).outerjoin(Cell, Cell.id == Building.cell_id)
    if view.personal:
        flags = (
            select(
                *[
                    func.count().filter(getattr(Household, flag).is_(True)).label(flag)
                    for flag in HOUSEHOLD_FLAGS
                ]
            )
            .where(Household.building_id == Building.id)
            .correlate(Building)
            .lateral("flags")
        )
        own = _own_cell(view, Building.cell_id)
        columns += [
            case((own, flags.c[flag]), else_=null()).label(flag) for flag in HOUSEHOLD_FLAGS
        ]
        stmt = stmt.outerjoin(flags, literal(True))
    return stmt.add_columns(*columns, _mvt_geom(Building.footprint)).where(
        Building.footprint.op("&&")(_search_box()),
        scope_filter(
            view.principal, cell_id=None, community_id=Building.community_id, street_id=None
        ),
    )


_POINT_CELL = aliased(Cell, name="incident_cell")


def _incidents(view: TileView) -> Select[Any]:
    """Open incidents in scope (as ``/incidents``): category, state, overdue, when, cell;
    the free text (description, address) only for roles that may read personal data; the
    reporter never."""
    columns: list[Any] = [
        Incident.id,
        Incident.category,
        IncidentCategory.label.label("category_label"),
        Incident.status,
        overdue_condition(func.now()).label("overdue"),
        _text(Incident.reported_at).label("reported_at"),
        _POINT_CELL.code.label("cell_code"),
    ]
    if view.personal:
        columns += [Incident.description, Incident.address]
    return (
        select(*columns, _mvt_geom(Incident.location))
        .join(IncidentCategory, IncidentCategory.code == Incident.category)
        .outerjoin(_POINT_CELL, _POINT_CELL.id == Incident.cell_id)
        .where(
            Incident.location.op("&&")(_search_box()),
            Incident.status.in_(INCIDENT_OPEN_STATUSES),
            incident_scope(view.principal),
        )
    )


def _volunteers(view: TileView) -> Select[Any]:
    """Volunteers at their home building (as on the cell map), in the cells in scope: team,
    team kind, cell; the name masked (张**) for roles that may not read personal data (done in
    SQL, the rule of :func:`gridsvc.services.access.mask_name`); phones never.

    The volunteers are looked up per household of the buildings in the tile (a LATERAL on the
    person's household index): joined the other way round, PostgreSQL reads every volunteer of
    the city and hashes them against the tile's households."""
    volunteer = (
        select(Person.id, Person.name, Person.volunteer_team_id)
        .where(Person.household_id == Household.id, Person.volunteer_team_id.is_not(None))
        .correlate(Household)
        .lateral("volunteer")
    )
    name = (
        volunteer.c.name
        if view.personal
        else func.concat(
            func.left(volunteer.c.name, 1),
            func.repeat("*", func.char_length(volunteer.c.name) - 1),
        )
    )
    return (
        select(
            volunteer.c.id,
            cast(name, String).label("name"),
            VolunteerTeam.name.label("team"),
            VolunteerTeam.kind.label("team_kind"),
            Cell.code.label("cell_code"),
            _mvt_geom(func.ST_PointOnSurface(Building.footprint)),
        )
        .select_from(Building)
        .join(Household, Household.building_id == Building.id)
        .join(volunteer, literal(True))
        .join(VolunteerTeam, VolunteerTeam.id == volunteer.c.volunteer_team_id)
        .join(Cell, Cell.id == Building.cell_id)
        .where(
            Building.footprint.op("&&")(_search_box()),
            scope_filter(
                view.principal,
                cell_id=Building.cell_id,
                community_id=Building.community_id,
                street_id=None,
            ),
        )
    )


#: Each layer's query (the layer names are the URL's and the tile's).
LAYER_QUERIES = {
    "cells": _cells,
    "buildings": _buildings,
    "incidents": _incidents,
    "volunteers": _volunteers,
}


def _layer_mvt(name: str, view: TileView) -> Any:
    rows = LAYER_QUERIES[name](view).subquery(f"{name}_rows")
    kept = select(rows).where(rows.c.geom.is_not(None)).subquery(f"{name}_t")
    return (
        select(func.ST_AsMVT(literal_column(f"{name}_t"), name, EXTENT, "geom", "id"))
        .select_from(kept)
        .scalar_subquery()
    )


def tile_statement(layers: list[str], view: TileView) -> Select[Any]:
    """One SELECT returning the tile: the layers' MVTs concatenated (an MVT of several
    layers is the concatenation of one-layer MVTs)."""
    parts = [func.coalesce(_layer_mvt(name, view), literal(b"")) for name in layers]
    body = parts[0]
    for part in parts[1:]:
        body = body.op("||")(part)
    return select(body)


@lru_cache(maxsize=512)
def _compiled(
    dialect: Any, layers: tuple[str, ...] | None, view: TileView | None
) -> tuple[str, dict[str, Any]]:
    """The SQL text of a tile (or, with no layers, of the cells revision), compiled once per
    set of layers and scope: a tile statement is large, and building and compiling it again
    for each tile would cost ten times what PostgreSQL spends on the tile."""
    stmt = _revision_statement() if layers is None else tile_statement(list(layers), view)
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return str(compiled), dict(compiled.params)


def _scope_only(view: TileView) -> TileView:
    """The view with the user's name and id dropped (what a tile depends on is the scope)."""
    return replace(view, principal=replace(view.principal, id=0, username=""))


def _run(
    session: Session, layers: tuple[str, ...] | None, view: TileView | None, **tile: int
) -> Any:
    sql, defaults = _compiled(session.get_bind().dialect, layers, view)
    result = session.connection().exec_driver_sql(sql, {**defaults, **tile})
    return result


def tile(session: Session, layers: list[str], view: TileView, z: int, x: int, y: int) -> bytes:
    """The MVT bytes of tile z/x/y with these layers (empty bytes: nothing in it)."""
    data = _run(session, tuple(layers), _scope_only(view), z=z, x=x, y=y).scalar()
    return bytes(data or b"")


def _revision_statement() -> Select[Any]:
    box = _search_box()
    communities = (
        select(
            func.coalesce(
                func.string_agg(
                    func.concat(Community.id, ":", Community.revision),
                    aggregate_order_by(literal(","), Community.id),
                ),
                "",
            )
        )
        .where(Community.geom.op("&&")(box))
        .scalar_subquery()
    )
    versions = (
        select(func.coalesce(func.max(CellVersion.id), 0), func.count())
        .where(CellVersion.valid_to.is_(None), CellVersion.geom.op("&&")(box))
        .subquery()
    )
    return select(communities, *versions.c)


def cells_revision(session: Session, z: int, x: int, y: int) -> str:
    """What the cells tile z/x/y is made of, cheaply: the revision of every community meeting
    the tile (a redraw bumps it) and the newest current boundary version with the number of
    current boundaries in the tile (an import or a retirement changes them)."""
    revisions, newest, count = _run(session, None, None, z=z, x=x, y=y).one()
    return f"{revisions}|{newest}|{count}"


def scope_key(principal: Principal, personal: bool) -> str:
    """A short text naming what a caller may see (the same for callers who see the same)."""
    if principal.is_admin:
        return "admin"
    return (
        f"{'p' if personal else 'm'}:{principal.street_id}:{principal.community_id}:"
        f"{principal.cell_id}:{principal.cell_community_id}"
    )
