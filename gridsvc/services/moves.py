"""What an import moves: buildings (and their households) and incidents that change community
or cell, and the overlaps an import of areas would create.

An import snapshots the community and cell of the buildings and incidents it can touch (those
within the file's envelope, and the buildings of the same source it updates), runs, and
compares. A *move* changes an existing assignment (A → B, or A → none); a first assignment
(none → A) is reported apart and needs no permission. Every query is bounded by the envelope or
the ids, never the whole city.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geodata.crs import area_m2
from gridsvc.errors import Conflict, InvalidInput

#: How many moved items a report lists when asked for the list.
MAX_LISTED = 1000


@dataclass(frozen=True)
class MoveGroup:
    """How many items of one kind went from one place to another."""

    what: str  # "building" or "incident"
    from_community: str | None
    from_cell: str | None
    to_community: str | None
    to_cell: str | None
    count: int
    households: int

    def label(self) -> str:
        """ "320102001001/…001 → 320102001002/…003: 12 栋楼（340 户）" for the CLI."""

        def place(community: str | None, cell: str | None) -> str:
            if community is None and cell is None:
                return "（无）"
            return f"社区 {community or '（无）'} 网格 {cell or '（无）'}"

        what = (
            f"{self.count} 栋楼（{self.households} 户）"
            if self.what == "building"
            else f"{self.count} 件事件"
        )
        return f"{place(self.from_community, self.from_cell)} → {place(self.to_community, self.to_cell)}：{what}"


@dataclass
class MoveReport:
    """Moves (existing assignments changed) and first assignments of one import."""

    groups: list[MoveGroup] = field(default_factory=list)
    newly_assigned: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def moved_buildings(self) -> int:
        """Buildings whose community or cell changed."""
        return sum(g.count for g in self.groups if g.what == "building")

    @property
    def moved_households(self) -> int:
        """Households (of the moved buildings) that changed community or cell."""
        return sum(g.households for g in self.groups if g.what == "building")

    @property
    def moved_incidents(self) -> int:
        """Incidents whose community or cell changed."""
        return sum(g.count for g in self.groups if g.what == "incident")

    @property
    def any(self) -> bool:
        """Whether anything already assigned would move."""
        return bool(self.groups)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the API summary."""
        return {
            "moved_buildings": self.moved_buildings,
            "moved_households": self.moved_households,
            "moved_incidents": self.moved_incidents,
            "newly_assigned": self.newly_assigned,
            "groups": [g.__dict__ for g in self.groups],
            "items": self.items,
        }


_SNAPSHOT = """
    CREATE TEMP TABLE import_before ON COMMIT DROP AS
    SELECT 'building'::text AS what, b.id, b.community_id, b.cell_id
    FROM building b
    WHERE b.footprint && CAST(:envelope AS geometry)
       OR (b.source = :source AND b.source_id = ANY(CAST(:ids AS text[])))
    UNION ALL
    SELECT 'incident', i.id, i.community_id, i.cell_id
    FROM incident i WHERE i.location && CAST(:envelope AS geometry)
"""

_CHANGES = """
    WITH now AS (
        SELECT 'building'::text AS what, b.id, b.community_id, b.cell_id, b.households,
               b.source_id
        FROM building b JOIN import_before s ON s.what = 'building' AND s.id = b.id
        UNION ALL
        SELECT 'incident', i.id, i.community_id, i.cell_id, 0, NULL
        FROM incident i JOIN import_before s ON s.what = 'incident' AND s.id = i.id
    )
    SELECT s.what, s.id, n.source_id, n.households,
           s.community_id IS NULL AND s.cell_id IS NULL AS first_time,
           oc.code AS from_community, ocell.code AS from_cell,
           nc.code AS to_community, ncell.code AS to_cell
    FROM import_before s
    JOIN now n ON n.what = s.what AND n.id = s.id
    LEFT JOIN community oc ON oc.id = s.community_id
    LEFT JOIN community nc ON nc.id = n.community_id
    LEFT JOIN cell ocell ON ocell.id = s.cell_id
    LEFT JOIN cell ncell ON ncell.id = n.cell_id
    WHERE s.community_id IS DISTINCT FROM n.community_id OR s.cell_id IS DISTINCT FROM n.cell_id
    ORDER BY s.what, s.id
"""


def snapshot(
    session: Session, envelope_wkt: str, *, source: str | None = None, ids: list[str] | None = None
) -> None:
    """Record the community and cell of what an import can touch (see the module docstring)."""
    session.execute(text("DROP TABLE IF EXISTS pg_temp.import_before"))
    session.execute(
        text(_SNAPSHOT),
        {"envelope": f"SRID=4326;{envelope_wkt}", "source": source, "ids": ids or []},
    )
    session.execute(text("CREATE INDEX ON import_before (what, id)"))
    session.execute(text("ANALYZE import_before"))


def compare(session: Session, *, list_items: bool = True) -> MoveReport:
    """What changed since :func:`snapshot`, grouped by from → to, and listed (at most
    MAX_LISTED items; the caller decides whether to show them)."""
    rows = session.execute(text(_CHANGES)).all()
    session.execute(text("DROP TABLE IF EXISTS pg_temp.import_before"))
    report = MoveReport()
    groups: dict[tuple[Any, ...], list[int]] = {}
    for r in rows:
        if r.first_time:
            report.newly_assigned += 1
            continue
        key = (r.what, r.from_community, r.from_cell, r.to_community, r.to_cell)
        count = groups.setdefault(key, [0, 0])
        count[0] += 1
        count[1] += int(r.households or 0)
        if list_items and len(report.items) < MAX_LISTED:
            report.items.append(
                {
                    "what": r.what,
                    "id": int(r.id),
                    "source_id": r.source_id,
                    "households": int(r.households or 0),
                    "from_community": r.from_community,
                    "from_cell": r.from_cell,
                    "to_community": r.to_community,
                    "to_cell": r.to_cell,
                }
            )
    report.groups = [
        MoveGroup(*key, count=c, households=h)
        for key, (c, h) in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[1][0]))
    ]
    return report


def refuse_moves(report: MoveReport) -> None:
    """Raise Conflict naming what would move (the caller did not allow moves)."""
    shown = "；".join(g.label() for g in report.groups[:10])
    more = f"；另有 {len(report.groups) - 10} 组" if len(report.groups) > 10 else ""
    raise Conflict(
        f"导入会改变已有数据的所属社区或网格：{report.moved_buildings} 栋楼"
        f"（{report.moved_households} 户）、{report.moved_incidents} 件事件。{shown}{more}。"
        "未写入任何数据。请先不加 --commit 查看明细（--show-moves 列出每一项），"
        "确认无误后加 --allow-move（API：allow_move=true）再导入"
    )


# -- overlaps ------------------------------------------------------------------------------------
def _label(names: list[str | None], codes: list[str | None], i: int) -> str:
    return names[i] or codes[i] or f"第 {i + 1} 个要素"


def overlaps_in_file(
    geoms: Any, names: list[str | None], codes: list[str | None], *, tolerance_m2: float
) -> list[str]:
    """Pairs of polygons of one file that overlap by more than `tolerance_m2` (described)."""
    import geopandas as gpd

    arr = np.asarray(geoms, dtype=object)
    tree = shapely.STRtree(arr)
    left, right = tree.query(arr, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if not len(left):
        return []
    pieces = shapely.intersection(arr[left], arr[right])
    areas = area_m2(gpd.GeoSeries(pieces, crs=4326))
    own = area_m2(gpd.GeoSeries(arr, crs=4326))
    out = []
    for a, b, overlap in zip(left, right, areas, strict=True):
        if overlap <= tolerance_m2:
            continue
        smaller, larger = (a, b) if own[a] <= own[b] else (b, a)
        if overlap >= 0.95 * own[smaller]:
            out.append(
                f"「{_label(names, codes, smaller)}」位于「{_label(names, codes, larger)}」之内"
                "（上下级关系：请把它们作为不同层级分别导入，例如区、街道、社区各用一个文件）"
            )
        else:
            out.append(
                f"「{_label(names, codes, a)}」与「{_label(names, codes, b)}」重叠 {overlap:.0f} m²"
            )
    return out


_EXISTING_COMMUNITIES = """
    WITH g AS (
        SELECT CAST(hex AS geometry) AS geom, ord
        FROM unnest(CAST(:geoms AS text[])) WITH ORDINALITY AS t(hex, ord)
    )
    SELECT g.ord, co.code, co.name,
           ST_Area(ST_Intersection(g.geom, co.geom)::geography) AS overlap_m2,
           ST_Area(co.geom::geography) AS existing_m2, ST_Area(g.geom::geography) AS new_m2
    FROM g JOIN community co ON co.geom && g.geom AND ST_Intersects(co.geom, g.geom)
"""

_EXISTING_CELLS = """
    WITH g AS (
        SELECT CAST(hex AS geometry) AS geom, ord
        FROM unnest(CAST(:geoms AS text[])) WITH ORDINALITY AS t(hex, ord)
    )
    SELECT g.ord, c.code, c.name,
           ST_Area(ST_Intersection(g.geom, cv.geom)::geography) AS overlap_m2,
           ST_Area(cv.geom::geography) AS existing_m2, ST_Area(g.geom::geography) AS new_m2
    FROM g
    JOIN cell_version cv ON cv.valid_to IS NULL AND cv.geom && g.geom
         AND ST_Intersects(cv.geom, g.geom)
    JOIN cell c ON c.id = cv.cell_id AND c.kind = :kind AND c.retired_at IS NULL
"""


def overlaps_with_existing(
    session: Session,
    geoms_hex: list[str],
    names: list[str | None],
    codes: list[str | None],
    *,
    level: str,
    tolerance_m2: float,
    kind: str = "general",
) -> list[str]:
    """New polygons that overlap existing communities (or current cells of `kind`)."""
    sql = _EXISTING_COMMUNITIES if level == "community" else _EXISTING_CELLS
    rows = session.execute(text(sql), {"geoms": geoms_hex, "kind": kind}).all()
    what = "社区" if level == "community" else "网格"
    out = []
    for r in rows:
        if r.overlap_m2 <= tolerance_m2:
            continue
        i = int(r.ord) - 1
        existing = f"已有{what}「{r.name}」（{r.code}）"
        new = f"「{_label(names, codes, i)}」"
        if r.overlap_m2 >= 0.95 * min(r.existing_m2, r.new_m2):
            out.append(
                f"{new}与{existing}是包含关系（重叠 {r.overlap_m2:.0f} m²）：同一层级的区域不能"
                "互相包含；上级区域请作为区或街道导入"
            )
        else:
            out.append(f"{new}与{existing}重叠 {r.overlap_m2:.0f} m²")
    return out


def refuse_overlaps(problems: list[str], what: str) -> None:
    """Raise InvalidInput naming the overlapping pairs (when there are any)."""
    if problems:
        shown = "；".join(problems[:20])
        more = f"；另有 {len(problems) - 20} 处" if len(problems) > 20 else ""
        raise InvalidInput(f"{what}之间不能重叠，导入已拒绝，未写入任何数据：{shown}{more}")
