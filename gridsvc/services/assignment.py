"""Set-based assignment in SQL: buildings to cells (largest share), areas to communities.

A building belongs to the general cell holding the largest share of its footprint; households
follow their building (they reference the building, so nothing else moves). Everything here is
one UPDATE per rule, never a Python loop over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

#: Which buildings a run looks at: all, those within an envelope, or one community's.
_IN_SCOPE = """
    (CAST(:envelope AS geometry) IS NULL OR b.footprint && CAST(:envelope AS geometry))
    AND (CAST(:community_id AS integer) IS NULL OR b.community_id = :community_id
         OR b.cell_id IN (SELECT id FROM cell WHERE community_id = :community_id))
"""

# Step 1: the best cell of every building in scope, into an analysed temp table. The cell side
# drives the spatial join (one GiST probe of buildings per cell, and PostGIS's prepared-geometry
# cache on the repeated cell polygon); the intersection area is computed only for footprints a
# cell does not wholly contain.
_BEST_CELLS = f"""
    CREATE TEMP TABLE assign_best ON COMMIT DROP AS
    SELECT DISTINCT ON (b.id) b.id AS building_id, cv.cell_id
    FROM cell_version cv
    JOIN cell c ON c.id = cv.cell_id AND c.kind = 'general' AND c.retired_at IS NULL
    JOIN building b ON ST_Intersects(cv.geom, b.footprint)
    WHERE cv.valid_to IS NULL AND {_IN_SCOPE}
    ORDER BY b.id,
             CASE WHEN ST_Contains(cv.geom, b.footprint) THEN ST_Area(b.footprint)
                  ELSE ST_Area(ST_Intersection(b.footprint, cv.geom)) END DESC,
             cv.cell_id
"""

# Step 2: move the buildings whose best cell differs, and clear those that are in no cell now.
_APPLY_BEST = text(
    f"""
    WITH moved AS (
        UPDATE building b SET cell_id = best.cell_id
        FROM assign_best best
        WHERE b.id = best.building_id AND b.cell_id IS DISTINCT FROM best.cell_id
        RETURNING b.id
    ),
    cleared AS (
        UPDATE building b SET cell_id = NULL
        WHERE b.cell_id IS NOT NULL AND {_IN_SCOPE}
          AND NOT EXISTS (SELECT 1 FROM assign_best best WHERE best.building_id = b.id)
        RETURNING b.id
    )
    SELECT
        (SELECT count(*) FROM building b WHERE {_IN_SCOPE}) AS considered,
        (SELECT count(*) FROM moved) + (SELECT count(*) FROM cleared) AS changed,
        (SELECT count(*) FROM assign_best) AS assigned
    """
)

_ASSIGN_COMMUNITIES = text(
    """
    UPDATE building b SET community_id = co.id
    FROM community co
    WHERE ST_Intersects(co.geom, ST_PointOnSurface(b.footprint))
      AND b.community_id IS DISTINCT FROM co.id
      AND (CAST(:only_unset AS boolean) IS FALSE OR b.community_id IS NULL)
      AND (CAST(:envelope AS geometry) IS NULL OR b.footprint && CAST(:envelope AS geometry))
    """
)

# A building whose community changed leaves a cell of its old community: a cell's buildings
# are always buildings of the cell's community (what validation and proposals both read).
_LEAVE_FOREIGN_CELLS = text(
    """
    UPDATE building b SET cell_id = NULL
    FROM cell c
    WHERE c.id = b.cell_id AND c.community_id IS DISTINCT FROM b.community_id
      AND (CAST(:envelope AS geometry) IS NULL OR b.footprint && CAST(:envelope AS geometry))
    """
)

_ASSIGN_ESTATES = text(
    """
    UPDATE building b SET estate_id = e.id
    FROM estate e
    WHERE ST_Intersects(e.geom, ST_PointOnSurface(b.footprint))
      AND b.estate_id IS DISTINCT FROM e.id
      AND (CAST(:envelope AS geometry) IS NULL OR b.footprint && CAST(:envelope AS geometry))
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
    params = {
        "envelope": f"SRID=4326;{envelope_wkt}" if envelope_wkt else None,
        "community_id": community_id,
    }
    session.execute(text("DROP TABLE IF EXISTS pg_temp.assign_best"))
    session.execute(text(_BEST_CELLS), params)
    session.execute(text("ALTER TABLE assign_best ADD PRIMARY KEY (building_id)"))
    session.execute(text("ANALYZE assign_best"))
    row = session.execute(_APPLY_BEST, params).one()
    return AssignmentResult(
        int(row.considered), int(row.changed), int(row.considered) - int(row.assigned)
    )


def assign_buildings_to_areas(
    session: Session, *, only_unset: bool = False, envelope_wkt: str | None = None
) -> None:
    """Set each building's community and estate by its point on surface (all buildings, or only
    those within an envelope, e.g. of a fresh import); estates get their community likewise."""
    envelope = f"SRID=4326;{envelope_wkt}" if envelope_wkt else None
    session.execute(_ESTATE_COMMUNITIES)
    session.execute(_ASSIGN_COMMUNITIES, {"only_unset": only_unset, "envelope": envelope})
    if not only_unset:  # communities may have changed: their cells go with them
        session.execute(_LEAVE_FOREIGN_CELLS, {"envelope": envelope})
    session.execute(_ASSIGN_ESTATES, {"envelope": envelope})


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


_QUEUE_UNROUTED = text(
    """
    UPDATE incident SET queue = CASE WHEN community_id IS NOT NULL THEN 'community'
                                     ELSE 'street' END
    WHERE cell_id IS NULL AND handling_cell_id IS NULL AND queue = 'cell'
    """
)


def attribute_incidents(session: Session) -> int:
    """Attribute unattributed incidents to the cell version valid at their report time.

    Incidents outside every cell still get their community (the community queue); the
    database fills the street, handling cell and 格长 (trigger ``incident_defaults``).
    Returns how many incidents were attributed to a cell.
    """
    done = session.execute(_ATTRIBUTE_INCIDENTS).rowcount
    session.execute(_INCIDENT_COMMUNITIES)
    session.execute(_QUEUE_UNROUTED)
    return int(done or 0)
