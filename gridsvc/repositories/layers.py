"""Map layers as GeoDataFrames (EPSG:4326), read in a few set-based queries per page or export.

This is the edge where rows become shapely geometries for the pure `maps` package; personal
fields come back unmasked and the services mask them for the caller's role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridsvc.domain import (
    HOUSEHOLD_FLAGS,
    INCIDENT_CATEGORIES,
    INCIDENT_OPEN_STATUSES,
    INCIDENT_STATUSES,
)
from gridsvc.repositories.spatial import within_metres_sql


@dataclass(frozen=True)
class Area:
    """A cell, community or street (by id): what a page or an export covers."""

    kind: Literal["cell", "community", "street"]
    id: int
    code: str
    name: str

    def where(self, cell: str, community: str) -> str:
        """SQL condition on a row whose cell id and community id columns are given."""
        if self.kind == "cell":
            return f"{cell} = :area_id"
        if self.kind == "community":
            return f"{community} = :area_id"
        return f"{community} IN (SELECT id FROM community WHERE street_id = :area_id)"


#: Incident states still being worked on (the one definition, in gridsvc.domain).
OPEN_STATUSES = INCIDENT_OPEN_STATUSES

_FLAG_SUMS = ", ".join(f"count(*) FILTER (WHERE h.{flag}) AS {flag}" for flag in HOUSEHOLD_FLAGS)

_CELLS_SQL = """
    SELECT c.id, c.code, c.name, c.kind, c.level, co.code AS community_code,
           co.name AS community_name, v.version, v.valid_from,
           (SELECT p.name FROM role_assignment r JOIN person p ON p.id = r.person_id
             WHERE r.cell_id = c.id AND r.role = 'leader' AND r.ends_on IS NULL LIMIT 1) AS leader,
           coalesce(b.buildings, 0) AS buildings, coalesce(b.households, 0) AS households,
           coalesce(vol.volunteers, 0) AS volunteers,
           coalesce(i.open_incidents, 0) AS open_incidents,
           v.geom AS geometry
    FROM cell c
    JOIN cell_version v ON v.cell_id = c.id AND v.valid_to IS NULL
    JOIN community co ON co.id = c.community_id
    LEFT JOIN LATERAL (SELECT count(*) AS buildings, sum(households) AS households
                       FROM building WHERE cell_id = c.id) b ON true
    LEFT JOIN LATERAL (SELECT count(*) AS volunteers FROM person p
                       JOIN household h ON h.id = p.household_id
                       JOIN building bb ON bb.id = h.building_id
                       WHERE bb.cell_id = c.id AND p.volunteer_team_id IS NOT NULL) vol ON true
    LEFT JOIN LATERAL (SELECT count(*) AS open_incidents FROM incident
                       WHERE cell_id = c.id AND status = ANY(:open)) i ON true
    WHERE c.retired_at IS NULL AND c.kind = 'general' AND {where}
    ORDER BY c.code
"""


def _frame(session: Session, sql: str, params: dict[str, Any]) -> gpd.GeoDataFrame:
    frame = gpd.read_postgis(
        text(sql), session.connection(), geom_col="geometry", params=params, crs=4326
    )
    return frame


def cells_frame(
    session: Session, area: Area | None = None, *, cell_ids: list[int] | None = None
) -> gpd.GeoDataFrame:
    """Current general cells of an area (or of a list of ids) with their counts and 格长:
    code, name, leader, buildings, households, volunteers, open_incidents."""
    if area is not None:
        where, params = area.where("c.id", "c.community_id"), {"area_id": area.id}
    elif cell_ids is not None:
        where, params = "c.id = ANY(:ids)", {"ids": list(cell_ids)}
    else:
        raise ValueError("name an area or cell ids")
    return _frame(session, _CELLS_SQL.format(where=where), {**params, "open": list(OPEN_STATUSES)})


def neighbour_cells_frame(session: Session, cell_id: int) -> gpd.GeoDataFrame:
    """Current general cells touching or near the cell (its context on the 格长's map)."""
    ids = session.scalars(
        text(
            f"""
            SELECT c.id FROM cell c
            JOIN cell_version v ON v.cell_id = c.id AND v.valid_to IS NULL
            JOIN cell_version me ON me.cell_id = :cell AND me.valid_to IS NULL
            WHERE c.id <> :cell AND c.retired_at IS NULL AND c.kind = 'general'
              AND {within_metres_sql("v.geom", "me.geom", "50")}
            """
        ),
        {"cell": cell_id},
    ).all()
    return cells_frame(session, cell_ids=list(ids))


def buildings_layer(session: Session, area: Area) -> gpd.GeoDataFrame:
    """Buildings with households, flag counts, 楼栋长 and open incidents within 20 m."""
    where = area.where("b.cell_id", "b.community_id")
    sql = f"""
        SELECT b.id, b.name, b.address, b.kind, b.levels, b.households, b.households_estimated,
               c.code AS cell_code,
               (SELECT string_agg(p.name, '、' ORDER BY p.name) FROM role_assignment r
                  JOIN person p ON p.id = r.person_id
                 WHERE r.building_id = b.id AND r.role = 'building_captain'
                   AND r.ends_on IS NULL) AS captain,
               (SELECT count(*) FROM incident i WHERE i.status = ANY(:open)
                   AND {within_metres_sql("i.location", "b.footprint", "20")})
                 AS open_incidents,
               {", ".join(f"coalesce(f.{flag}, 0) AS {flag}" for flag in HOUSEHOLD_FLAGS)},
               b.footprint AS geometry
        FROM building b
        LEFT JOIN cell c ON c.id = b.cell_id
        LEFT JOIN LATERAL (SELECT {_FLAG_SUMS} FROM household h WHERE h.building_id = b.id) f
          ON true
        WHERE {where}
        ORDER BY b.id
    """
    return _frame(session, sql, {"area_id": area.id, "open": list(OPEN_STATUSES)})


def building_count(session: Session, area: Area, *, more_than: int | None = None) -> int:
    """The number of buildings in the area (counting stops past ``more_than`` + 1: the
    caller only asks whether there are more than that)."""
    limit = "" if more_than is None else f"LIMIT {int(more_than) + 1}"
    sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM building b "
        f"WHERE {area.where('b.cell_id', 'b.community_id')} {limit}) AS found"
    )
    return int(session.scalar(text(sql), {"area_id": area.id}) or 0)


def households_layer(session: Session, area: Area) -> gpd.GeoDataFrame:
    """Households as points inside their building, with flags and (unmasked) personal fields."""
    sql = f"""
        SELECT h.id, b.name AS building, c.code AS cell_code, h.unit, h.room, h.size,
               h.head_name, h.phone, {", ".join(f"h.{flag}" for flag in HOUSEHOLD_FLAGS)},
               ST_PointOnSurface(b.footprint) AS geometry
        FROM household h JOIN building b ON b.id = h.building_id
        LEFT JOIN cell c ON c.id = b.cell_id
        WHERE {area.where("b.cell_id", "b.community_id")}
        ORDER BY b.id, h.unit, h.room, h.id
    """
    return _frame(session, sql, {"area_id": area.id})


def incidents_layer(session: Session, area: Area) -> gpd.GeoDataFrame:
    """Incidents of an area with Chinese category and status labels."""
    sql = f"""
        SELECT i.id, i.category, i.status, i.description, i.address, i.reported_at,
               i.closed_at, c.code AS cell_code, i.status = ANY(:open) AS is_open,
               i.location AS geometry
        FROM incident i
        LEFT JOIN cell c ON c.id = i.cell_id
        WHERE {area.where("i.cell_id", "i.community_id")}
        ORDER BY i.reported_at DESC, i.id
    """
    frame = _frame(session, sql, {"area_id": area.id, "open": list(OPEN_STATUSES)})
    frame["category_label"] = frame["category"].map(INCIDENT_CATEGORIES).fillna(frame["category"])
    frame["status_label"] = frame["status"].map(INCIDENT_STATUSES).fillna(frame["status"])
    return frame


def volunteers_layer(session: Session, cell_ids: list[int]) -> gpd.GeoDataFrame:
    """Volunteers living in the cells, placed at their home building, with their team."""
    sql = """
        SELECT p.id, p.name, p.phone, t.name AS team, t.kind AS team_kind, c.code AS cell_code,
               ST_PointOnSurface(b.footprint) AS geometry
        FROM person p
        JOIN volunteer_team t ON t.id = p.volunteer_team_id
        JOIN household h ON h.id = p.household_id
        JOIN building b ON b.id = h.building_id
        JOIN cell c ON c.id = b.cell_id
        WHERE b.cell_id = ANY(:cells)
        ORDER BY p.id
    """
    return _frame(session, sql, {"cells": list(cell_ids)})


def roads_layer(session: Session, envelope_of_cells: list[int]) -> gpd.GeoDataFrame:
    """Roads crossing the bounding box of the cells (context on maps with no basemap)."""
    sql = """
        SELECT r.id, r.name, r.highway, r.geom AS geometry FROM road r
        WHERE r.geom && (SELECT ST_Expand(ST_Extent(v.geom)::geometry, 0.002) FROM cell_version v
                         WHERE v.cell_id = ANY(:cells) AND v.valid_to IS NULL)
    """
    return _frame(session, sql, {"cells": list(envelope_of_cells)})


#: Attribution required by OpenStreetMap-derived data (ODbL).
OSM_ATTRIBUTION = "© OpenStreetMap contributors"


def attribution(session: Session, area: Area) -> str:
    """Credit for the data drawn in the area: OSM's when any building came from OpenStreetMap
    (ids like way/123), else the register's own."""
    from_osm = session.scalar(
        text(
            f"SELECT EXISTS (SELECT 1 FROM building b WHERE "
            f"{area.where('b.cell_id', 'b.community_id')} "
            r"AND b.source_id ~ '^(way|relation|node)/\d+$')"
        ),
        {"area_id": area.id},
    )
    return f"建筑物 {OSM_ATTRIBUTION}" if from_osm else "数据：社区网格台账"


def outline_frame(session: Session, area: Area) -> gpd.GeoDataFrame:
    """The area's own outline (community or street polygon; a cell's current boundary)."""
    if area.kind == "cell":
        sql = (
            "SELECT c.code, c.name, v.geom AS geometry FROM cell c JOIN cell_version v "
            "ON v.cell_id = c.id AND v.valid_to IS NULL WHERE c.id = :area_id"
        )
    else:
        table = "community" if area.kind == "community" else "street"
        sql = f"SELECT code, name, geom AS geometry FROM {table} WHERE id = :area_id"
    return _frame(session, sql, {"area_id": area.id})


def successor_codes(session: Session, cell_id: int) -> list[str]:
    """Codes of the current cells that took over a retired cell's area (through its lineage)."""
    return list(
        session.scalars(
            text(
                """
                WITH RECURSIVE heirs(id) AS (
                    SELECT child_id FROM cell_lineage WHERE parent_id = :cell
                    UNION SELECT l.child_id FROM cell_lineage l JOIN heirs h ON l.parent_id = h.id
                )
                SELECT c.code FROM cell c JOIN heirs h ON h.id = c.id
                WHERE c.retired_at IS NULL ORDER BY c.code
                """
            ),
            {"cell": cell_id},
        )
    )


def community_code_of(session: Session, area: Area) -> str:
    """The code of the community an area lies in (the area itself for a community)."""
    if area.kind == "community":
        return area.code
    if area.kind != "cell":
        raise ValueError("a street lies in no single community")
    return str(
        session.scalar(
            text(
                "SELECT co.code FROM cell c JOIN community co ON co.id = c.community_id "
                "WHERE c.id = :area_id"
            ),
            {"area_id": area.id},
        )
    )


def street_code_of(session: Session, area: Area) -> str:
    """The code of the street an area lies in."""
    if area.kind == "street":
        return area.code
    sql = "SELECT s.code FROM community co JOIN street s ON s.id = co.street_id WHERE co.id = " + (
        "(SELECT community_id FROM cell WHERE id = :area_id)" if area.kind == "cell" else ":area_id"
    )
    return str(session.scalar(text(sql), {"area_id": area.id}))
