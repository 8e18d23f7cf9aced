"""The collections of the OGC API: one per layer, each a description of where its rows come
from, who may read them (the permission matrix action and the scope filter of the existing
routes) and which fields are masked — the provider side of pygeoapi's API/provider split.

Nothing here states a rule of its own: scope comes from :func:`gridsvc.services.access.scope_filter`
(and the incident scope of the incident routes), masking from
:func:`gridsvc.services.access.mask_personal`, labels from :mod:`gridsvc.domain`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import Select, and_, func, select, true
from sqlalchemy.orm import aliased

from gridsvc.auth.masking import mask_personal
from gridsvc.auth.policy import scope_filter
from gridsvc.auth.principal import Principal
from gridsvc.domain import HOUSEHOLD_FLAGS
from gridsvc.models import (
    Building,
    Cell,
    CellVersion,
    Community,
    Household,
    Incident,
    Person,
    Road,
    Street,
    VolunteerTeam,
)
from gridsvc.repositories.incidents import incident_scope


@dataclass(frozen=True)
class Prop:
    """One property of a collection's features."""

    column: Any
    #: The Chinese name shown in HTML and in the collection's schema.
    label: str
    #: May be used as a query filter (``?status=filed``).
    filterable: bool = False
    #: Personal data: masked for roles without ``personal.read``, and never filterable by them
    #: (a filter on a masked field would reveal it).
    personal: bool = False


@dataclass(frozen=True)
class Collection:
    """A layer served under /ogc/collections/{id}."""

    id: str
    title: str
    description: str
    #: The permission-matrix action a reader needs (gridsvc.auth.policy).
    action: str
    #: Unique column: the feature id and the keyset paging order.
    key: Any
    #: Geometry in EPSG:4326, and an indexed column whose box holds it (for bbox filters).
    geometry: Any
    bbox_column: Any
    geometry_type: str
    #: Adds FROM and JOINs to a select of this collection's columns.
    source: Callable[[Select[Any]], Select[Any]]
    #: Rows the principal may read.
    scope: Callable[[Principal], Any]
    properties: dict[str, Prop]
    #: Rows shown when no ``datetime`` is given (e.g. current cells only).
    default: Callable[[], Any] | None = None
    #: Start and end (None: an instant) columns for ``datetime``.
    temporal: tuple[Any, Any] | None = None
    #: ``datetime`` must be one instant (an as-of view: one version per feature).
    instant_only: bool = False
    mask: Callable[[Principal, dict[str, Any]], dict[str, Any]] | None = None
    key_is_int: bool = True
    extra_conditions: tuple[Any, ...] = field(default_factory=tuple)

    def select(self, *columns: Any) -> Select[Any]:
        """A select of the columns from this collection's tables."""
        return self.source(select(*columns))

    def property_columns(self) -> list[Any]:
        """The property columns, labelled with their names."""
        return [p.column.label(name) for name, p in self.properties.items()]


def _leader() -> Any:
    from gridsvc.models import RoleAssignment

    leader = aliased(RoleAssignment)
    return (
        select(Person.name)
        .join(leader, leader.person_id == Person.id)
        .where(leader.cell_id == Cell.id, leader.role == "leader", leader.ends_on.is_(None))
        .limit(1)
        .scalar_subquery()
    )


def _cell_scope(principal: Principal) -> Any:
    # As /api/v1/cells: a 格长 sees their own cell, staff their community or street.
    return scope_filter(
        principal, cell_id=Cell.id, community_id=Cell.community_id, street_id=Community.street_id
    )


def _cells_source(stmt: Select[Any]) -> Select[Any]:
    return (
        stmt.select_from(Cell)
        .join(CellVersion, CellVersion.cell_id == Cell.id)
        .join(Community, Community.id == Cell.community_id)
    )


_CELL_PROPS: dict[str, Prop] = {
    "code": Prop(Cell.code, "网格编码", filterable=True),
    "name": Prop(Cell.name, "网格名称", filterable=True),
    "kind": Prop(Cell.kind, "类型", filterable=True),
    "level": Prop(Cell.level, "层级", filterable=True),
    "community_code": Prop(Community.code, "社区编码", filterable=True),
    "community_name": Prop(Community.name, "社区名称"),
    "version": Prop(CellVersion.version, "边界版本"),
    "valid_from": Prop(CellVersion.valid_from, "生效时间"),
    "valid_to": Prop(CellVersion.valid_to, "失效时间"),
    "leader": Prop(_leader(), "格长"),
}

CELLS = Collection(
    id="cells",
    title="网格",
    description="网格的边界（默认为现行边界；datetime=某一时刻 查看当时的边界）。",
    action="area.read",
    key=Cell.code,
    key_is_int=False,
    geometry=CellVersion.geom,
    bbox_column=CellVersion.geom,
    geometry_type="MultiPolygon",
    source=_cells_source,
    scope=_cell_scope,
    properties=_CELL_PROPS,
    default=lambda: and_(CellVersion.valid_to.is_(None), Cell.retired_at.is_(None)),
    temporal=(CellVersion.valid_from, CellVersion.valid_to),
    instant_only=True,
)

CELL_VERSIONS = Collection(
    id="cell_versions",
    title="网格边界版本",
    description="每个网格的全部历史边界（valid_from 至 valid_to），datetime 按有效期筛选。",
    action="area.read",
    key=CellVersion.id,
    geometry=CellVersion.geom,
    bbox_column=CellVersion.geom,
    geometry_type="MultiPolygon",
    source=_cells_source,
    scope=_cell_scope,
    properties={
        "cell_code": Prop(Cell.code, "网格编码", filterable=True),
        "cell_name": Prop(Cell.name, "网格名称"),
        "community_code": Prop(Community.code, "社区编码", filterable=True),
        "version": Prop(CellVersion.version, "边界版本", filterable=True),
        "valid_from": Prop(CellVersion.valid_from, "生效时间"),
        "valid_to": Prop(CellVersion.valid_to, "失效时间"),
        "changed_by": Prop(CellVersion.changed_by, "修改人"),
    },
    temporal=(CellVersion.valid_from, CellVersion.valid_to),
)


def _communities_source(stmt: Select[Any]) -> Select[Any]:
    return stmt.select_from(Community).join(Street, Street.id == Community.street_id)


COMMUNITIES = Collection(
    id="communities",
    title="社区",
    description="社区的边界。",
    action="area.read",
    key=Community.code,
    key_is_int=False,
    geometry=Community.geom,
    bbox_column=Community.geom,
    geometry_type="MultiPolygon",
    source=_communities_source,
    # As /api/v1/communities: a 格长 sees the community of their cell.
    scope=lambda p: scope_filter(
        p, cell_id=None, community_id=Community.id, street_id=Community.street_id
    ),
    properties={
        "code": Prop(Community.code, "社区编码", filterable=True),
        "name": Prop(Community.name, "社区名称", filterable=True),
        "street_code": Prop(Street.code, "街道编码", filterable=True),
        "street_name": Prop(Street.name, "街道名称"),
    },
)


def _buildings_source(stmt: Select[Any]) -> Select[Any]:
    return stmt.select_from(Building).outerjoin(Cell, Cell.id == Building.cell_id)


BUILDINGS = Collection(
    id="buildings",
    title="楼栋",
    description="楼栋轮廓及户数、所属网格。",
    action="area.read",
    key=Building.id,
    geometry=Building.footprint,
    bbox_column=Building.footprint,
    geometry_type="MultiPolygon",
    source=_buildings_source,
    # As /api/v1/communities/{code}/buildings: a 格长 reads the buildings of their community.
    scope=lambda p: scope_filter(
        p, cell_id=None, community_id=Building.community_id, street_id=None
    ),
    properties={
        "name": Prop(Building.name, "楼栋名称", filterable=True),
        "address": Prop(Building.address, "地址"),
        "kind": Prop(Building.kind, "类型", filterable=True),
        "levels": Prop(Building.levels, "层数"),
        "units": Prop(Building.units, "单元数"),
        "households": Prop(Building.households, "户数"),
        "households_estimated": Prop(Building.households_estimated, "户数为估算"),
        "cell_code": Prop(Cell.code, "网格编码", filterable=True),
        "source": Prop(Building.source, "数据来源"),
        "source_id": Prop(Building.source_id, "来源编号"),
    },
)


def _households_source(stmt: Select[Any]) -> Select[Any]:
    return (
        stmt.select_from(Household)
        .join(Building, Building.id == Household.building_id)
        .outerjoin(Cell, Cell.id == Building.cell_id)
    )


HOUSEHOLDS = Collection(
    id="households",
    title="住户",
    description="住户（位于所在楼栋内的点）；无权查看个人信息的角色看到脱敏字段。",
    action="households.read",
    key=Household.id,
    geometry=func.ST_PointOnSurface(Building.footprint),
    bbox_column=Building.footprint,
    geometry_type="Point",
    source=_households_source,
    # As /api/v1/cells/{code}/households: a 格长 reads the households of their own cell only.
    scope=lambda p: scope_filter(
        p, cell_id=Building.cell_id, community_id=Building.community_id, street_id=None
    ),
    properties={
        "building_id": Prop(Household.building_id, "楼栋编号", filterable=True),
        "building": Prop(Building.name, "楼栋名称"),
        "cell_code": Prop(Cell.code, "网格编码", filterable=True),
        "unit": Prop(Household.unit, "单元", personal=True),
        "room": Prop(Household.room, "门牌", personal=True),
        "size": Prop(Household.size, "人口数"),
        "head_name": Prop(Household.head_name, "户主", personal=True),
        "phone": Prop(Household.phone, "电话", personal=True),
        **{
            flag: Prop(getattr(Household, flag), label, filterable=True, personal=True)
            for flag, label in HOUSEHOLD_FLAGS.items()
        },
    },
    mask=mask_personal,
)


def _volunteers_source(stmt: Select[Any]) -> Select[Any]:
    return (
        stmt.select_from(Person)
        .join(VolunteerTeam, VolunteerTeam.id == Person.volunteer_team_id)
        .join(Household, Household.id == Person.household_id)
        .join(Building, Building.id == Household.building_id)
        .join(Cell, Cell.id == Building.cell_id)
    )


VOLUNTEERS = Collection(
    id="volunteers",
    title="志愿者",
    description="志愿者（位于住所楼栋内的点）及所属服务队；姓名、电话按角色脱敏。",
    action="people.read",
    key=Person.id,
    geometry=func.ST_PointOnSurface(Building.footprint),
    bbox_column=Building.footprint,
    geometry_type="Point",
    source=_volunteers_source,
    scope=lambda p: scope_filter(
        p, cell_id=Building.cell_id, community_id=Building.community_id, street_id=None
    ),
    properties={
        "name": Prop(Person.name, "姓名", personal=True),
        "phone": Prop(Person.phone, "电话", personal=True),
        "team": Prop(VolunteerTeam.name, "服务队", filterable=True),
        "team_kind": Prop(VolunteerTeam.kind, "服务队类型", filterable=True),
        "cell_code": Prop(Cell.code, "网格编码", filterable=True),
    },
    mask=mask_personal,
)


_POINT_CELL = aliased(Cell, name="incident_cell")


def _incidents_source(stmt: Select[Any]) -> Select[Any]:
    return stmt.select_from(Incident).outerjoin(_POINT_CELL, _POINT_CELL.id == Incident.cell_id)


INCIDENTS = Collection(
    id="incidents",
    title="事件",
    description="上报的事件（datetime 按上报时间筛选）。",
    action="area.read",
    key=Incident.id,
    geometry=Incident.location,
    bbox_column=Incident.location,
    geometry_type="Point",
    source=_incidents_source,
    # As /api/v1/incidents: by the cell of the point or the handling cell.
    scope=incident_scope,
    properties={
        "category": Prop(Incident.category, "类别", filterable=True),
        "status": Prop(Incident.status, "状态", filterable=True),
        "description": Prop(Incident.description, "描述"),
        "address": Prop(Incident.address, "地址"),
        "reported_at": Prop(Incident.reported_at, "上报时间"),
        "dispatched_at": Prop(Incident.dispatched_at, "派遣时间"),
        "closed_at": Prop(Incident.closed_at, "结案时间"),
        "cell_code": Prop(_POINT_CELL.code, "网格编码", filterable=True),
        "queue": Prop(Incident.queue, "处置层级", filterable=True),
    },
    temporal=(Incident.reported_at, None),
)


def _roads_scope(principal: Principal) -> Any:
    """Roads are context, not registered data: those crossing the box of the communities in
    the principal's scope (a 格长: their cell's community)."""
    if principal.is_admin:
        return true()
    box = (
        select(
            func.ST_Expand(
                func.ST_SetSRID(func.ST_Extent(Community.geom).cast(Geometry), 4326), 0.002
            )
        )
        .where(
            scope_filter(
                principal, cell_id=None, community_id=Community.id, street_id=Community.street_id
            )
        )
        .scalar_subquery()
    )
    return Road.geom.op("&&")(box)


ROADS = Collection(
    id="roads",
    title="道路",
    description="道路中心线（OpenStreetMap），限于本辖区社区范围内。",
    action="area.read",
    key=Road.id,
    geometry=Road.geom,
    bbox_column=Road.geom,
    geometry_type="MultiLineString",
    source=lambda stmt: stmt.select_from(Road),
    scope=_roads_scope,
    properties={
        "name": Prop(Road.name, "道路名称", filterable=True),
        "highway": Prop(Road.highway, "道路等级", filterable=True),
    },
)

#: Every collection, in the order of /ogc/collections.
COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        COMMUNITIES,
        CELLS,
        CELL_VERSIONS,
        BUILDINGS,
        HOUSEHOLDS,
        INCIDENTS,
        VOLUNTEERS,
        ROADS,
    )
}
