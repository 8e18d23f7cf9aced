"""Set-based assignment in SQL: buildings to cells (largest share), areas to communities.

A building belongs to the general cell holding the largest share of its footprint; households
follow their building (they reference the building, so nothing else moves). Everything here is
one UPDATE per rule, never a Python loop over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

_ASSIGN_CELLS = text(
    """
    WITH scope AS (
        SELECT b.id, b.footprint FROM building b
        WHERE (CAST(:envelope AS geometry) IS NULL OR b.footprint && CAST(:envelope AS geometry))
          AND (CAST(:community_id AS integer) IS NULL OR b.community_id = :community_id
               OR b.cell_id IN (SELECT id FROM cell WHERE community_id = :community_id))
    ),
    candidates AS (
        SELECT s.id AS building_id, cv.cell_id,
               CASE WHEN ST_CoveredBy(s.footprint, cv.geom) THEN ST_Area(s.footprint)
                    ELSE ST_Area(ST_Intersection(s.footprint, cv.geom)) END AS shared
        FROM scope s
        JOIN cell_version cv ON cv.valid_to IS NULL AND ST_Intersects(cv.geom, s.footprint)
        JOIN cell c ON c.id = cv.cell_id AND c.kind = 'general' AND c.retired_at IS NULL
    ),
    best AS (
        SELECT DISTINCT ON (building_id) building_id, cell_id
        FROM candidates WHERE shared > 0
        ORDER BY building_id, shared DESC, cell_id
    ),
    target AS (
        SELECT s.id, best.cell_id FROM scope s LEFT JOIN best ON best.building_id = s.id
    ),
    changed AS (
        UPDATE building b SET cell_id = t.cell_id
        FROM target t
        WHERE b.id = t.id AND b.cell_id IS DISTINCT FROM t.cell_id
        RETURNING b.id, t.cell_id
    )
    SELECT
        (SELECT count(*) FROM target) AS considered,
        (SELECT count(*) FROM changed) AS changed,
        (SELECT count(*) FROM target WHERE cell_id IS NULL) AS unassigned
    """
)

_ASSIGN_COMMUNITIES = text(
    """
    UPDATE building b SET community_id = co.id
    FROM community co
    WHERE ST_Intersects(co.geom, ST_PointOnSurface(b.footprint))
      AND b.community_id IS DISTINCT FROM co.id
      AND (CAST(:only_unset AS boolean) IS FALSE OR b.community_id IS NULL)
    """
)

_ASSIGN_ESTATES = text(
    """
    UPDATE building b SET estate_id = e.id
    FROM estate e
    WHERE ST_Intersects(e.geom, ST_PointOnSurface(b.footprint))
      AND b.estate_id IS DISTINCT FROM e.id
    """
)

_ESTATE_COMMUNITIES = text(
    """
    UPDATE estate e SET community_id = co.id
    FROM community co
    WHERE ST_Intersects(co.geom, ST_PointOnSurface(e.geom)) AND e.community_id IS DISTINCT FROM co.id
    """
)


@dataclass(frozen=True)
class AssignmentResult:
    """How many buildings were looked at, changed cell, and are in no cell."""

    considered: int
    changed: int
    unassigned: int


def assign_buildings_to_cells(
    session: Session, *, community_id: int | None = None, envelope_wkt: str | None = None
) -> AssignmentResult:
    """Assign buildings (all, one community's, or those within an envelope) to cells."""
    envelope = f"SRID=4326;{envelope_wkt}" if envelope_wkt else None
    row = session.execute(_ASSIGN_CELLS, {"envelope": envelope, "community_id": community_id}).one()
    return AssignmentResult(int(row.considered), int(row.changed), int(row.unassigned))


def assign_buildings_to_areas(session: Session, *, only_unset: bool = False) -> None:
    """Set each building's community and estate by its point on surface; estates likewise."""
    session.execute(_ESTATE_COMMUNITIES)
    session.execute(_ASSIGN_COMMUNITIES, {"only_unset": only_unset})
    session.execute(_ASSIGN_ESTATES)


_ATTRIBUTE_INCIDENTS = text(
    """
    WITH hit AS (
        SELECT DISTINCT ON (i.id) i.id, cv.id AS version_id, cv.cell_id, c.community_id
        FROM incident i
        JOIN cell_version cv ON ST_Intersects(cv.geom, i.location)
             AND cv.valid_from <= i.reported_at
             AND (cv.valid_to IS NULL OR cv.valid_to > i.reported_at)
        JOIN cell c ON c.id = cv.cell_id AND c.kind = 'general'
        WHERE i.cell_version_id IS NULL
        ORDER BY i.id, c.code
    )
    UPDATE incident i SET cell_version_id = hit.version_id, cell_id = hit.cell_id,
                          community_id = hit.community_id
    FROM hit WHERE i.id = hit.id
    """
)

_INCIDENT_COMMUNITIES = text(
    """
    UPDATE incident i SET community_id = co.id
    FROM community co
    WHERE i.community_id IS NULL AND ST_Intersects(co.geom, i.location)
    """
)


def attribute_incidents(session: Session) -> int:
    """Attribute unattributed incidents to the cell version valid at their report time.

    Incidents outside every cell still get their community (the community queue).
    Returns how many incidents were attributed to a cell.
    """
    done = session.execute(_ATTRIBUTE_INCIDENTS).rowcount
    session.execute(_INCIDENT_COMMUNITIES)
    return int(done or 0)
