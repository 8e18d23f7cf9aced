"""Coverage counts per cell, rolled up to community and street, in set-based SQL.

Two statements for a whole street: one collects the homes of volunteers near the street into an
indexed temporary table (a point per building, as geography), one computes every count per cell
with ``GROUPING SETS`` for the community and street totals. Everything is as of an instant
(the end of the as-of day): the cell versions valid then, each building in the cell version
holding the largest share of its footprint (the assignment rule), dated assignments, links
and visits active then, incidents reported before and not closed by then.

Distances are straight-line distances in metres on the WGS84 spheroid (PostGIS geography,
``ST_DWithin``) between the buildings' points on surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridsvc.domain import (
    HOUSEHOLD_FLAGS,
    PARTY_STATUSES,
    incident_parked_sql,
    incident_past_due_sql,
    incident_unclosed_at_sql,
    sql_literal,
)
from gridsvc.repositories.spatial import degrees_sql

#: Homes (buildings) of volunteers within reach of the cells counted (the community's, or the
#: street's), indexed for ST_DWithin.
_VOLUNTEER_HOMES = f"""
    CREATE TEMP TABLE coverage_volunteer_home ON COMMIT DROP AS
    WITH area AS (
        SELECT ST_Extent(cv.geom)::geometry AS box
        FROM cell_version cv JOIN cell c ON c.id = cv.cell_id
        JOIN community co ON co.id = c.community_id
        WHERE co.street_id = :street_id
          AND (CAST(:community_id AS integer) IS NULL OR co.id = :community_id)
          AND cv.valid_from < :ts AND (cv.valid_to IS NULL OR cv.valid_to >= :ts)
    )
    SELECT b.id, ST_PointOnSurface(b.footprint)::geography AS home
    FROM area JOIN building b ON b.footprint && ST_Expand(area.box, {degrees_sql("area.box", ":distance")})
    -- buildings near the street where a volunteer lives (never the whole city's volunteers)
    WHERE EXISTS (SELECT 1 FROM household h JOIN person p ON p.household_id = h.id
                  WHERE h.building_id = b.id AND p.volunteer_team_id IS NOT NULL)
"""

_FLAG_COUNTS = ",\n".join(
    f"count(*) FILTER (WHERE h.{flag}) AS flag_{flag}" for flag in HOUSEHOLD_FLAGS
)

_PARTY_COUNTS = ",\n".join(
    f"count(*) FILTER (WHERE p.party_status = {sql_literal(k, PARTY_STATUSES)}) AS party_{k}"
    for k in PARTY_STATUSES
)
_IN_SERVICE = sql_literal("in_service", PARTY_STATUSES)

#: Every count per cell, then GROUPING SETS: (community, cell), (community), () — the street.
_COUNTS = f"""
WITH v AS MATERIALIZED (
    SELECT cv.cell_id, cv.geom, c.community_id
    FROM cell_version cv
    JOIN cell c ON c.id = cv.cell_id AND c.kind = 'general'
    JOIN community co ON co.id = c.community_id
    WHERE co.street_id = :street_id
      AND (CAST(:community_id AS integer) IS NULL OR co.id = :community_id)
      AND cv.valid_from < :ts AND (cv.valid_to IS NULL OR cv.valid_to >= :ts)
),
-- each building in the cell (valid then) holding the largest share of its footprint
bc AS MATERIALIZED (
    SELECT DISTINCT ON (b.id) b.id, v.cell_id, b.households AS estimated, b.footprint
    FROM v JOIN building b ON ST_Intersects(v.geom, b.footprint)
    ORDER BY b.id,
             CASE WHEN ST_Contains(v.geom, b.footprint) THEN ST_Area(b.footprint)
                  ELSE ST_Area(ST_Intersection(b.footprint, v.geom)) END DESC,
             v.cell_id
),
bs AS MATERIALIZED (
    SELECT bc.id, bc.cell_id, bc.estimated,
           (SELECT count(*) FROM household h WHERE h.building_id = bc.id) AS registered,
           EXISTS (SELECT 1 FROM coverage_volunteer_home vh
                   WHERE ST_DWithin(vh.home, ST_PointOnSurface(bc.footprint)::geography,
                                    :distance)) AS near_volunteer,
           EXISTS (SELECT 1 FROM role_assignment r
                   WHERE r.building_id = bc.id AND r.role = 'building_captain'
                     AND r.starts_on <= :day AND (r.ends_on IS NULL OR r.ends_on > :day))
               AS has_captain
    FROM bc
),
b_cell AS (
    SELECT cell_id,
           count(*) AS buildings,
           coalesce(sum(estimated), 0) AS households_estimated,
           count(*) FILTER (WHERE registered > 0 OR estimated > 0) AS residential_buildings,
           count(*) FILTER (WHERE (registered > 0 OR estimated > 0) AND NOT has_captain)
               AS buildings_without_captain
    FROM bs GROUP BY cell_id
),
h_cell AS (
    SELECT bs.cell_id,
           count(*) AS households_registered,
           coalesce(sum(h.size), 0) AS residents,
           {_FLAG_COUNTS},
           count(*) FILTER (WHERE bs.near_volunteer) AS households_near_volunteer,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM linked_household l
               WHERE l.household_id = h.id AND l.starts_on <= :day
                 AND (l.ends_on IS NULL OR l.ends_on > :day))) AS households_linked,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM visit vi
               WHERE vi.household_id = h.id AND vi.visited_on <= :day
                 AND vi.visited_on > :day - CAST(:window AS integer))) AS households_visited
    FROM bs JOIN household h ON h.building_id = bs.id
    GROUP BY bs.cell_id
),
p_cell AS (
    SELECT bs.cell_id,
           count(*) FILTER (WHERE p.party_status IS NOT NULL) AS party_members,
           {_PARTY_COUNTS},
           count(*) FILTER (WHERE p.party_status = {_IN_SERVICE}
                              AND p.party_registered_on <= :day) AS party_in_service_registered,
           count(*) FILTER (WHERE p.volunteer_team_id IS NOT NULL) AS volunteers
    FROM bs JOIN household h ON h.building_id = bs.id JOIN person p ON p.household_id = h.id
    -- only members and volunteers are counted: skip everyone else before joining
    WHERE p.party_status IS NOT NULL OR p.volunteer_team_id IS NOT NULL
    GROUP BY bs.cell_id
),
-- incidents in the cell (valid then) reported before the instant; "open" = not closed by then;
-- "overdue" = open, not parked (挂账), and past its close deadline, or still awaiting dispatch
-- (filed/escalated, not dispatched by then) past its dispatch deadline (as gridsvc.services.incidents).
inc AS (
    SELECT DISTINCT ON (i.id) i.id, v.cell_id,
           {incident_unclosed_at_sql("i", ":ts")} AS is_open,
           NOT {incident_parked_sql("i")}
               AND {incident_past_due_sql("i", ":ts", historical=True)} AS past_due
    FROM v JOIN incident i ON ST_Intersects(v.geom, i.location) AND i.reported_at < :ts
    ORDER BY i.id, v.cell_id
),
i_cell AS (
    SELECT cell_id, count(*) AS incidents_reported,
           count(*) FILTER (WHERE is_open) AS incidents_open,
           count(*) FILTER (WHERE is_open AND past_due) AS incidents_overdue
    FROM inc GROUP BY cell_id
),
per_cell AS (
    SELECT v.community_id, v.cell_id,
           coalesce(b.buildings, 0) AS buildings,
           coalesce(b.residential_buildings, 0) AS residential_buildings,
           coalesce(b.buildings_without_captain, 0) AS buildings_without_captain,
           coalesce(b.households_estimated, 0) AS households_estimated,
           coalesce(h.households_registered, 0) AS households_registered,
           coalesce(h.residents, 0) AS residents,
           {", ".join(f"coalesce(h.flag_{f}, 0) AS flag_{f}" for f in HOUSEHOLD_FLAGS)},
           coalesce(h.households_near_volunteer, 0) AS households_near_volunteer,
           coalesce(h.households_linked, 0) AS households_linked,
           coalesce(h.households_visited, 0) AS households_visited,
           coalesce(p.party_members, 0) AS party_members,
           coalesce(p.party_in_service, 0) AS party_in_service,
           coalesce(p.party_in_service_registered, 0) AS party_in_service_registered,
           coalesce(p.party_direct, 0) AS party_direct,
           coalesce(p.party_floating, 0) AS party_floating,
           coalesce(p.party_retired, 0) AS party_retired,
           coalesce(p.volunteers, 0) AS volunteers,
           coalesce(i.incidents_reported, 0) AS incidents_reported,
           coalesce(i.incidents_open, 0) AS incidents_open,
           coalesce(i.incidents_overdue, 0) AS incidents_overdue
    FROM v
    LEFT JOIN b_cell b ON b.cell_id = v.cell_id
    LEFT JOIN h_cell h ON h.cell_id = v.cell_id
    LEFT JOIN p_cell p ON p.cell_id = v.cell_id
    LEFT JOIN i_cell i ON i.cell_id = v.cell_id
)
SELECT GROUPING(pc.community_id) AS g_community, GROUPING(pc.cell_id) AS g_cell,
       pc.community_id, pc.cell_id, count(*) AS cells,
       {{sums}}
FROM per_cell pc
GROUP BY GROUPING SETS ((pc.community_id, pc.cell_id), (pc.community_id), ())
"""

#: The counts computed per cell, in output order.
COUNT_COLUMNS: tuple[str, ...] = (
    "buildings",
    "residential_buildings",
    "buildings_without_captain",
    "households_estimated",
    "households_registered",
    "residents",
    *(f"flag_{f}" for f in HOUSEHOLD_FLAGS),
    "households_near_volunteer",
    "households_linked",
    "households_visited",
    "party_members",
    "party_in_service",
    "party_in_service_registered",
    "party_direct",
    "party_floating",
    "party_retired",
    "volunteers",
    "incidents_reported",
    "incidents_open",
    "incidents_overdue",
)

_SQL = _COUNTS.replace(
    "{sums}", ",\n       ".join(f"sum(pc.{c})::bigint AS {c}" for c in COUNT_COLUMNS)
)


@dataclass(frozen=True)
class CountRow:
    """Counts of one cell, one community (cell_id None) or the street (both None)."""

    level: str
    community_id: int | None
    cell_id: int | None
    cells: int
    counts: dict[str, int]


def coverage_counts(
    session: Session,
    *,
    street_id: int,
    community_id: int | None,
    day: date,
    instant: datetime,
    distance_m: float,
    visit_window_days: int,
) -> list[CountRow]:
    """Every count per cell, community and the street, as of `instant` (end of `day`)."""
    params: dict[str, Any] = {
        "street_id": street_id,
        "community_id": community_id,
        "ts": instant,
        "day": day,
        "distance": float(distance_m),
        "window": int(visit_window_days),
    }
    session.execute(text("DROP TABLE IF EXISTS pg_temp.coverage_volunteer_home"))
    session.execute(text(_VOLUNTEER_HOMES), params)
    session.execute(text("CREATE INDEX ON coverage_volunteer_home USING gist (home)"))
    session.execute(text("ANALYZE coverage_volunteer_home"))
    rows = session.execute(text(_SQL), params).mappings().all()
    session.execute(text("DROP TABLE IF EXISTS pg_temp.coverage_volunteer_home"))
    out = []
    for r in rows:
        level = "street" if r["g_community"] else ("community" if r["g_cell"] else "cell")
        out.append(
            CountRow(
                level=level,
                community_id=r["community_id"],
                cell_id=r["cell_id"],
                cells=int(r["cells"]),
                counts={c: int(r[c] or 0) for c in COUNT_COLUMNS},
            )
        )
    return out
