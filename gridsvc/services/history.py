"""Cell history: versions with lineage, the diff between two versions, the redraw audit log."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geodata.crs import metric_crs
from gridsvc.errors import NotFound
from gridsvc.models import Cell, CellChange, CellLineage, CellVersion
from gridsvc.repositories.cells import buildings_frame

_AREA_M2 = "ST_Area(CAST(ST_GeomFromText(:wkt, 4326) AS geography))"


def versions(session: Session, cell_id: int) -> dict[str, Any]:
    """All versions of a cell (oldest first) and its parents and children."""
    rows = session.execute(
        select(
            CellVersion.version,
            CellVersion.valid_from,
            CellVersion.valid_to,
            CellVersion.reason,
            CellVersion.changed_by,
            CellVersion.change_id,
            func.ST_Area(func.Geography(CellVersion.geom)),
        )
        .where(CellVersion.cell_id == cell_id)
        .order_by(CellVersion.version)
    ).all()
    code = session.scalar(select(Cell.code).where(Cell.id == cell_id))
    parents = session.scalars(
        select(Cell.code)
        .join(CellLineage, CellLineage.parent_id == Cell.id)
        .where(CellLineage.child_id == cell_id)
        .order_by(Cell.code)
    ).all()
    children = session.scalars(
        select(Cell.code)
        .join(CellLineage, CellLineage.child_id == Cell.id)
        .where(CellLineage.parent_id == cell_id)
        .order_by(Cell.code)
    ).all()
    return {
        "cell": code,
        "parents": list(parents),
        "children": list(children),
        "versions": [
            {
                "version": r[0],
                "valid_from": r[1],
                "valid_to": r[2],
                "reason": r[3],
                "changed_by": r[4],
                "change_id": r[5],
                "area_m2": round(float(r[6]), 1),
            }
            for r in rows
        ],
    }


def diff(session: Session, cell_id: int, from_version: int, to_version: int) -> dict[str, Any]:
    """Area gained and lost between two versions (GeoJSON + m²) and the buildings mostly in each."""
    geoms = dict(
        session.execute(
            select(CellVersion.version, CellVersion.geom).where(
                CellVersion.cell_id == cell_id, CellVersion.version.in_([from_version, to_version])
            )
        ).all()
    )
    for v in (from_version, to_version):
        if v not in geoms:
            raise NotFound(f"this cell has no version {v}")
    a, b = to_shape(geoms[from_version]), to_shape(geoms[to_version])
    gained, lost = b.difference(a), a.difference(b)

    def area(g: Any) -> float:
        if g.is_empty:
            return 0.0
        return round(float(session.scalar(text(f"SELECT {_AREA_M2}"), {"wkt": g.wkt})), 1)

    # Buildings whose majority side changed: mostly outside the old boundary and mostly inside
    # the new one (gained), or the reverse (lost) — the largest-share rule, seen from one cell.
    frame = buildings_frame(session, envelope=shapely.union_all([a, b]))
    frame = frame.to_crs(metric_crs(frame)) if len(frame) else frame
    a_m, b_m = (gpd.GeoSeries([g], crs=4326).to_crs(frame.crs).iloc[0] for g in (a, b))
    share_a = frame.geometry.intersection(a_m).area / frame.geometry.area
    share_b = frame.geometry.intersection(b_m).area / frame.geometry.area

    def listed(mask: Any) -> list[dict[str, Any]]:
        return [
            {"id": int(r.id), "name": r.name, "households": int(r.households)}
            for r in frame[mask].itertuples()
        ]

    return {
        "from": from_version,
        "to": to_version,
        "gained_m2": area(gained),
        "lost_m2": area(lost),
        "gained": shapely.geometry.mapping(gained) if not gained.is_empty else None,
        "lost": shapely.geometry.mapping(lost) if not lost.is_empty else None,
        "buildings_gained": listed((share_b > 0.5) & (share_a <= 0.5)) if len(frame) else [],
        "buildings_lost": listed((share_a > 0.5) & (share_b <= 0.5)) if len(frame) else [],
    }


def changes(session: Session, community_id: int, *, limit: int, offset: int) -> dict[str, Any]:
    """The community's redraw audit records, newest first."""
    total = session.scalar(select(func.count()).where(CellChange.community_id == community_id))
    rows = session.scalars(
        select(CellChange)
        .where(CellChange.community_id == community_id)
        .order_by(CellChange.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return {
        "number_matched": total,
        "items": [
            {
                "id": c.id,
                "kind": c.kind,
                "reason": c.reason,
                "changed_by": c.changed_by,
                "changed_at": c.changed_at,
                "revision": c.revision,
                "request": c.request,
                "impact": c.impact,
            }
            for c in rows
        ],
    }
