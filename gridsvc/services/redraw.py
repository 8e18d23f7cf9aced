"""Redraw cells — reshape, split, merge, move buildings, create, revert, adopt a proposal —
with an impact preview and an optimistic-concurrency commit.

Every operation first becomes a :class:`Plan` (new boundaries, retired cells, new cells with
their parents). :func:`run` applies a plan inside a SAVEPOINT, measures what changed (buildings,
households, residents, open incidents, volunteers and assigned people that change cell; each
cell's households before and after; cells left without a 格长; validation afterwards) and then
rolls the savepoint back (preview) or keeps it (commit). Preview and commit run the same code
on the same state, so a commit applies exactly what was previewed — and the state is pinned by
the community's ``revision`` (the ETag): a commit based on an older revision gets 409.

People follow by a stated rule (:data:`gridsvc.services.people.PEOPLE_RULE`, applied by the
people service); open incidents move to the cell that now
holds their point while keeping the boundary version of their report time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from geodata.coverage import clean_coverage
from geodata.crs import area_m2
from geodata.errors import GeodataError
from geodata.limits import check_coordinates
from gridsvc.db.transactions import savepoint
from gridsvc.domain import incident_closed_sql
from gridsvc.errors import Conflict, InvalidInput, NotFound, PreconditionRequired
from gridsvc.models import Cell, CellChange, CellLineage, CellVersion, Community
from gridsvc.repositories.areas import CommunityRef
from gridsvc.repositories.bulk import to_db_geometry
from gridsvc.repositories.cells import (
    buildings_frame,
    community_cells_frame,
    community_geometry,
    next_cell_codes,
)
from gridsvc.services.assignment import assign_buildings_to_cells
from gridsvc.services.people import PEOPLE_RULE, people_follow
from gridsvc.services.validation import validate_community
from gridsvc.settings import get_settings

log = logging.getLogger(__name__)

#: Overlaps, gaps and bits outside the community thinner than this are ignored (metres).
TOLERANCE_M = 1.0
_DEG_PER_M = 1 / 111_320


@dataclass
class CellEdit:
    """One cell's fate in a plan: a new boundary, retirement (geometry None), or a new cell."""

    cell_id: int | None
    geometry: BaseGeometry | None
    parents: tuple[int, ...] = ()
    name: str | None = None


@dataclass
class Plan:
    """What a redraw will do to the community's cells."""

    kind: str
    edits: list[CellEdit]
    notes: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """The result of a preview or commit."""

    committed: bool
    revision: int
    impact: dict[str, Any]


def etag_for(community_code: str, revision: int) -> str:
    """The weak ETag naming a community revision."""
    return f'W/"{community_code}-{revision}"'


def etag_revision(etag: str | None, community_code: str) -> int:
    """The revision named by an If-Match value; 428 when absent, 409 when for another community."""
    if not etag:
        raise PreconditionRequired(
            "send the ETag of your preview in an If-Match header to commit a redraw"
        )
    value = etag.strip().removeprefix("W/").strip('"')
    code, _, revision = value.rpartition("-")
    if code != community_code or not revision.isdigit():
        raise Conflict(
            f"the If-Match value {etag!r} is not a revision of community {community_code}"
        )
    return int(revision)


# -- geometry helpers ------------------------------------------------------------------------
def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Only the polygon parts of a geometry (results of overlay may carry lines/points)."""
    if geom.is_empty:
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    flat = [q for p in parts for q in shapely.get_parts(p)]
    if not flat:
        return shapely.Polygon()
    return flat[0] if len(flat) == 1 else shapely.MultiPolygon(flat)


def _clean(geom: BaseGeometry) -> BaseGeometry:
    """Valid, polygonal, without slivers thinner than the tolerance."""
    geom = _polygonal(shapely.make_valid(geom))
    if geom.is_empty:
        return geom
    eps = TOLERANCE_M * _DEG_PER_M / 2
    opened = geom.buffer(-eps).buffer(eps)
    return _polygonal(shapely.make_valid(geom.intersection(opened.buffer(eps))))


def _single(geom: BaseGeometry, what: str) -> BaseGeometry:
    """The geometry if it is one polygon (ignoring crumbs), else a clear error."""
    parts = [p for p in shapely.get_parts(_polygonal(geom)) if p.area > 1e-12]
    big = [p for p in parts if float(area_m2(gpd.GeoSeries([p], crs=4326))[0]) > 1.0]
    if len(big) != 1:
        raise InvalidInput(
            f"{what} would be {len(big)} separate pieces; a cell must be one polygon"
        )
    return big[0]


def _check_input_geometry(geom: BaseGeometry, community: BaseGeometry) -> BaseGeometry:
    """A user-drawn polygon: valid lon/lat, not empty, touching the community."""
    if geom is None or geom.is_empty:
        raise InvalidInput("the geometry is empty")
    minx, miny, maxx, maxy = geom.bounds
    if max(abs(minx), abs(maxx)) > 180 or max(abs(miny), abs(maxy)) > 90:
        raise InvalidInput("coordinates are not longitude/latitude (WGS84); reproject first")
    if not geom.is_valid:
        raise InvalidInput(f"invalid geometry: {shapely.is_valid_reason(geom)}")
    if not geom.intersects(community):
        raise InvalidInput("the geometry lies outside the community")
    return geom


# -- operations → plans ---------------------------------------------------------------------
def _cells(session: Session, community: CommunityRef) -> gpd.GeoDataFrame:
    """The community's current cells, read once per unchanged state of this session."""
    key = ("gridsvc.redraw.cells", community.id)
    if key not in session.info:
        session.info[key] = community_cells_frame(session, community.id)
    return session.info[key]


def _forget_cells(session: Session, community: CommunityRef) -> None:
    """Drop the remembered cells (after writes, and after a preview is rolled back)."""
    session.info.pop(("gridsvc.redraw.cells", community.id), None)


def _row(cells: gpd.GeoDataFrame, code: str) -> Any:
    match = cells[cells["code"] == code]
    if match.empty:
        raise NotFound(f"no current general cell {code!r} in this community")
    return match.iloc[0]


def plan_reshape(
    session: Session,
    community: CommunityRef,
    code: str,
    geometry: BaseGeometry,
    *,
    trim_neighbours: bool = True,
    kind: str = "reshape",
) -> Plan:
    """A cell gets a new boundary (clipped to the community); overlapped neighbours are trimmed
    (trim_neighbours) or the edit is refused."""
    area = community_geometry(session, community.id)
    geometry = _check_input_geometry(geometry, area)
    cells = _cells(session, community)
    target = _row(cells, code)
    new = _single(_clean(geometry.intersection(area)), f"cell {code}")
    edits = [CellEdit(int(target.id), new)]
    notes = []
    others = cells[cells["code"] != code]
    hit = others[others.intersects(new)]
    for row in hit.itertuples():
        trimmed = _clean(row.geometry.difference(new))
        lost = float(area_m2(gpd.GeoSeries([row.geometry.difference(trimmed)], crs=4326))[0])
        if lost <= TOLERANCE_M**2 * 10:
            continue
        if not trim_neighbours:
            raise InvalidInput(
                f"the new boundary overlaps cell {row.code} by {lost:.0f} m²; "
                "allow trimming neighbours or draw it without the overlap"
            )
        if trimmed.is_empty:
            raise InvalidInput(
                f"the new boundary would swallow cell {row.code} whole; merge instead"
            )
        edits.append(CellEdit(int(row.id), _single(trimmed, f"cell {row.code} after trimming")))
        notes.append(f"cell {row.code} trimmed by {lost:.0f} m²")
    return Plan(kind, edits, notes)


def plan_split_by_line(
    session: Session, community: CommunityRef, code: str, line: BaseGeometry
) -> Plan:
    """Split a cell in two along a line drawn across it; both halves get new codes."""
    from shapely.ops import split

    if line.geom_type not in ("LineString", "MultiLineString"):
        raise InvalidInput("a split needs a LineString drawn across the cell")
    cells = _cells(session, community)
    target = _row(cells, code)
    pieces = [p for p in shapely.get_parts(split(target.geometry, line)) if p.area > 0]
    pieces = [p for p in pieces if float(area_m2(gpd.GeoSeries([p], crs=4326))[0]) > 1.0]
    if len(pieces) < 2:
        raise InvalidInput(f"the line does not cross cell {code} from edge to edge")
    if len(pieces) > 2:
        raise InvalidInput(
            f"the line cuts cell {code} into {len(pieces)} pieces; draw it to cross once"
        )
    parent = int(target.id)
    return Plan(
        "split",
        [CellEdit(parent, None)] + [CellEdit(None, p, (parent,)) for p in pieces],
    )


def _region_of_buildings(session: Session, cell: Any, building_ids: list[int]) -> BaseGeometry:
    """The part of a cell that goes with some of its buildings: their Voronoi regions (seeded
    by every building of the cell), so the new boundary runs between buildings."""
    buildings = buildings_frame(session, envelope=cell.geometry)
    mine = buildings[buildings["cell_id"] == cell.id]
    unknown = set(building_ids) - set(mine["id"])
    if unknown:
        raise InvalidInput(f"building(s) {sorted(unknown)[:10]} are not in cell {cell.code}")
    if len(mine) == len(set(building_ids)):
        raise InvalidInput(f"that is every building of cell {cell.code}; nothing would remain")
    seeds = shapely.MultiPoint([g.representative_point() for g in mine.geometry])
    regions = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=cell.geometry))
    tree = shapely.STRtree(regions)
    chosen = []
    for row in mine[mine["id"].isin(building_ids)].itertuples():
        idx = tree.query(row.geometry.representative_point(), predicate="intersects")
        chosen += [regions[i] for i in idx]
        chosen.append(row.geometry)
    region = shapely.union_all(chosen).intersection(cell.geometry)
    return _clean(region)


def plan_split_by_buildings(
    session: Session, community: CommunityRef, code: str, building_ids: list[int]
) -> Plan:
    """Split a cell so the given buildings form one new cell and the rest another."""
    cells = _cells(session, community)
    target = _row(cells, code)
    part = _single(
        _region_of_buildings(session, target, building_ids), "the chosen buildings' part"
    )
    rest = _single(_clean(target.geometry.difference(part)), "the remaining part")
    parent = int(target.id)
    return Plan(
        "split",
        [CellEdit(parent, None), CellEdit(None, part, (parent,)), CellEdit(None, rest, (parent,))],
    )


def plan_merge(session: Session, community: CommunityRef, codes: list[str]) -> Plan:
    """Merge two or more adjacent cells into one new cell."""
    if len(set(codes)) < 2:
        raise InvalidInput("name at least two different cells to merge")
    cells = _cells(session, community)
    rows = [_row(cells, c) for c in dict.fromkeys(codes)]
    union = shapely.coverage_union_all([r.geometry for r in rows])
    merged = _single(_clean(union), "the merged cell (the cells are not adjacent)")
    parents = tuple(int(r.id) for r in rows)
    return Plan("merge", [CellEdit(p, None) for p in parents] + [CellEdit(None, merged, parents)])


def plan_move_buildings(
    session: Session, community: CommunityRef, building_ids: list[int], to_code: str
) -> Plan:
    """Move buildings to an adjacent cell; both boundaries follow the buildings."""
    if not building_ids:
        raise InvalidInput("name the buildings to move")
    cells = _cells(session, community)
    target = _row(cells, to_code)
    sources = buildings_frame(session, community_id=community.id)
    sources = sources[sources["id"].isin(building_ids)]
    if len(sources) != len(set(building_ids)):
        missing = sorted(set(building_ids) - set(sources["id"]))
        raise InvalidInput(f"building(s) {missing[:10]} are not in this community")
    from_codes = set(sources["cell_code"].dropna())
    if len(from_codes) != 1 or sources["cell_code"].isna().any():
        raise InvalidInput("move buildings from one cell at a time (and only assigned buildings)")
    source = _row(cells, from_codes.pop())
    if source.code == to_code:
        raise InvalidInput(f"the buildings are already in cell {to_code}")
    region = _region_of_buildings(session, source, building_ids)
    grown = _single(
        _clean(shapely.union_all([target.geometry, region])),
        f"cell {to_code} with the buildings (they must border it)",
    )
    shrunk = _single(_clean(source.geometry.difference(region)), f"cell {source.code}")
    return Plan(
        "move_buildings", [CellEdit(int(source.id), shrunk), CellEdit(int(target.id), grown)]
    )


def plan_create(
    session: Session, community: CommunityRef, geometry: BaseGeometry, name: str | None = None
) -> Plan:
    """A new cell over a gap: the drawn polygon minus the existing cells, inside the community."""
    area = community_geometry(session, community.id)
    geometry = _check_input_geometry(geometry, area)
    cells = _cells(session, community)
    taken = shapely.union_all(list(cells.geometry)) if len(cells) else shapely.Polygon()
    gap = _clean(geometry.intersection(area).difference(taken))
    if gap.is_empty:
        raise InvalidInput("the polygon covers no gap: that area already belongs to cells")
    return Plan("create", [CellEdit(None, _single(gap, "the new cell"), (), name)])


def plan_revert(
    session: Session, community: CommunityRef, code: str, version: int, *, trim_neighbours: bool
) -> Plan:
    """Bring back an earlier boundary of a cell (as a new version)."""
    from geoalchemy2.shape import to_shape

    geom = session.scalar(
        select(CellVersion.geom)
        .join(Cell, Cell.id == CellVersion.cell_id)
        .where(Cell.code == code, CellVersion.version == version)
    )
    if geom is None:
        raise NotFound(f"cell {code} has no version {version}")
    plan = plan_reshape(
        session, community, code, to_shape(geom), trim_neighbours=trim_neighbours, kind="revert"
    )
    plan.notes.append(f"cell {code} back to the boundary of version {version}")
    return plan


def plan_proposal(session: Session, community: CommunityRef, cells_gdf: gpd.GeoDataFrame) -> Plan:
    """Replace every general cell of the community by the proposed ones (new codes)."""
    if cells_gdf.empty:
        raise InvalidInput("the proposal has no cells")
    area = community_geometry(session, community.id)
    current = _cells(session, community)
    edits = [CellEdit(int(i), None) for i in current["id"]]
    tree = shapely.STRtree(np.asarray(current.geometry.values))
    # Cleaned as one coverage, not cell by cell: shared edges keep their common vertices, so
    # the committed cells tile exactly as previewed.
    checked = [_check_input_geometry(geom, area) for geom in cells_gdf.geometry]
    for geom in clean_coverage(checked, area):
        geom = _single(geom, "a proposed cell")
        idx = tree.query(geom, predicate="intersects")
        parents = tuple(
            int(current.iloc[i]["id"])
            for i in idx
            if current.geometry.iloc[i].intersection(geom).area > 0.01 * geom.area
        )
        edits.append(CellEdit(None, geom, parents))
    return Plan("proposal", edits)


# -- apply, measure, keep or roll back ------------------------------------------------------
@dataclass
class _Written:
    version_ids: list[int] = field(default_factory=list)
    lineage: list[tuple[int, int]] = field(default_factory=list)


def _apply(
    session: Session, community: CommunityRef, plan: Plan, reason: str, user: str
) -> _Written:
    """Write the plan's versions, retirements, new cells and lineage (clock time stamps)."""
    _forget_cells(session, community)
    written = _Written()
    now = session.scalar(select(func.clock_timestamp()))
    code_name = session.execute(
        select(Community.code, Community.name).where(Community.id == community.id)
    ).one()
    touched = [e for e in plan.edits if e.cell_id is not None]
    for edit in touched:
        current = session.execute(
            select(CellVersion.id, CellVersion.version)
            .where(CellVersion.cell_id == edit.cell_id, CellVersion.valid_to.is_(None))
            .with_for_update()
        ).one()
        session.execute(
            update(CellVersion).where(CellVersion.id == current.id).values(valid_to=now)
        )
        if edit.geometry is None:
            session.execute(update(Cell).where(Cell.id == edit.cell_id).values(retired_at=now))
        else:
            version = CellVersion(
                cell_id=edit.cell_id,
                version=current.version + 1,
                geom=to_db_geometry(edit.geometry),
                valid_from=now,
                reason=reason,
                changed_by=user,
            )
            session.add(version)
            session.flush()
            written.version_ids.append(version.id)
    new_edits = [e for e in plan.edits if e.cell_id is None]
    codes = next_cell_codes(session, community.id, [e.geometry for e in new_edits])
    for edit, code in zip(new_edits, codes, strict=True):
        cell = Cell(
            code=code,
            name=edit.name or f"{code_name.name}第{code[-3:]}网格",
            kind="general",
            level=4,
            community_id=community.id,
        )
        session.add(cell)
        session.flush()
        version = CellVersion(
            cell_id=cell.id,
            version=1,
            geom=to_db_geometry(edit.geometry),
            valid_from=now,
            reason=reason,
            changed_by=user,
        )
        session.add(version)
        for parent in edit.parents:
            session.add(CellLineage(parent_id=parent, child_id=cell.id))
            written.lineage.append((parent, cell.id))
        session.flush()
        written.version_ids.append(version.id)
    return written


def _envelope(plan: Plan, before: gpd.GeoDataFrame) -> BaseGeometry:
    geoms = [e.geometry for e in plan.edits if e.geometry is not None]
    geoms += list(before[before["id"].isin([e.cell_id for e in plan.edits])].geometry)
    return shapely.box(*shapely.union_all(geoms).bounds).buffer(10 * _DEG_PER_M)


def _measure(
    session: Session, community: CommunityRef, before_b: gpd.GeoDataFrame, envelope: BaseGeometry
) -> tuple[dict[str, Any], dict[int, int | None], dict[int, int | None]]:
    after_b = buildings_frame(session, envelope=envelope, with_geometry=False)
    old = dict(zip(before_b["id"], before_b["cell_id"], strict=True))
    new = dict(zip(after_b["id"], after_b["cell_id"], strict=True))
    code_of = dict(
        session.execute(select(Cell.id, Cell.code).where(Cell.community_id == community.id)).all()
    )
    households_of = dict(zip(after_b["id"], after_b["households"], strict=True))
    names = dict(zip(after_b["id"], after_b["name"], strict=True))
    moved = [b for b in new if old.get(b) != new[b]]
    moved_list = [
        {
            "id": int(b),
            "name": names[b],
            "households": int(households_of[b]),
            "from": code_of.get(old.get(b)) if old.get(b) else None,
            "to": code_of.get(new[b]) if new[b] else None,
        }
        for b in moved
    ]
    counts = session.execute(
        text(
            """
        SELECT count(DISTINCT h.id) AS households, coalesce(sum(h.size), 0) AS residents,
               (SELECT count(*) FROM person p JOIN household h2 ON h2.id = p.household_id
                WHERE h2.building_id = ANY(:ids) AND p.volunteer_team_id IS NOT NULL) AS volunteers,
               (SELECT count(*) FROM role_assignment r WHERE r.ends_on IS NULL AND
                (r.building_id = ANY(:ids) OR r.household_id IN
                 (SELECT id FROM household WHERE building_id = ANY(:ids)))) AS assigned
        FROM household h WHERE h.building_id = ANY(:ids)
        """
        ),
        {"ids": [int(b) for b in moved]},
    ).one()
    return (
        {
            "buildings": moved_list,
            "households": int(counts.households),
            "residents": int(counts.residents),
            "volunteers": int(counts.volunteers),
            "assigned_people": int(counts.assigned),
        },
        old,
        new,
    )


def lock_revision(
    session: Session, community: CommunityRef, if_match: str | None, *, commit: bool = True
) -> int:
    """Lock the community row for this transaction and return its revision; for a commit, the
    If-Match ETag must name that revision (428 without one, 409 when the data moved on).

    Call it before planning a commit, so a stale request gets 409 rather than an error about a
    plan that no longer fits the changed cells.
    """
    revision = session.scalar(
        select(Community.revision).where(Community.id == community.id).with_for_update()
    )
    if commit:
        wanted = etag_revision(if_match, community.code)
        if wanted != revision:
            raise Conflict(
                f"community {community.code} changed since your preview (revision {wanted} → "
                f"{revision}); preview again",
                current_revision=revision,
            )
    return int(revision)


def run(
    session: Session,
    community: CommunityRef,
    plan: Plan,
    *,
    request: dict[str, Any],
    reason: str,
    user: str,
    commit: bool,
    if_match: str | None = None,
) -> Outcome:
    """Preview (commit=False) or commit a plan; see the module docstring."""
    if not reason or not reason.strip():
        raise InvalidInput("a reason is required for every redraw (it goes into the audit log)")
    from gridsvc.services import audit

    audit.set_reason(session, reason.strip())  # every logged boundary and assignment change
    revision = lock_revision(session, community, if_match if commit else None, commit=commit)
    before_cells = _cells(session, community)

    try:
        return _run_in_savepoint(
            session, community, plan, revision, before_cells, request, reason, user, commit
        )
    finally:
        _forget_cells(session, community)


def _run_in_savepoint(
    session: Session,
    community: CommunityRef,
    plan: Plan,
    revision: int,
    before_cells: gpd.GeoDataFrame,
    request: dict[str, Any],
    reason: str,
    user: str,
    commit: bool,
) -> Outcome:
    envelope = _envelope(plan, before_cells)
    before_b = buildings_frame(session, envelope=envelope, with_geometry=False)
    open_before = dict(
        session.execute(
            text(
                f"SELECT id, cell_id FROM incident i WHERE NOT {incident_closed_sql('i')} "
                "AND location && ST_GeomFromText(:env, 4326)"
            ),
            {"env": envelope.wkt},
        ).all()
    )
    with savepoint(session, keep=commit):
        written = _apply(session, community, plan, reason.strip(), user)
        assign_buildings_to_cells(session, envelope_wkt=envelope.wkt)
        moved, old_cell_of, new_cell_of = _measure(session, community, before_b, envelope)
        retired = [e.cell_id for e in plan.edits if e.cell_id is not None and e.geometry is None]
        households_of = dict(zip(before_b["id"], before_b["households"], strict=True))
        people = people_follow(session, retired, old_cell_of, new_cell_of, households_of)
        session.execute(_REROUTE_OPEN_INCIDENTS, {"ids": list(open_before)})
        open_after = dict(
            session.execute(
                text("SELECT id, cell_id FROM incident WHERE id = ANY(:ids)"),
                {"ids": list(open_before)},
            ).all()
        )
        impact = _impact(
            session,
            community,
            community.code,
            revision,
            plan,
            before_cells,
            moved,
            people,
            open_before,
            open_after,
        )
        _record(
            session, community, plan, request, reason.strip(), user, revision + 1, impact, written
        )
    if commit:
        return Outcome(True, revision + 1, impact)
    return Outcome(False, revision, impact)


_REROUTE_OPEN_INCIDENTS = text(
    """
    UPDATE incident i SET cell_id = hit.cell_id FROM (
        SELECT i2.id, (SELECT cv.cell_id FROM cell_version cv JOIN cell c ON c.id = cv.cell_id
                       WHERE cv.valid_to IS NULL AND c.kind = 'general'
                         AND ST_Intersects(cv.geom, i2.location) ORDER BY c.code LIMIT 1)
               AS cell_id
        FROM incident i2 WHERE i2.id = ANY(:ids)) hit
    WHERE i.id = hit.id AND i.cell_id IS DISTINCT FROM hit.cell_id
    """
)


def _record(
    session: Session,
    community: CommunityRef,
    plan: Plan,
    request: dict[str, Any],
    reason: str,
    user: str,
    revision: int,
    impact: dict[str, Any],
    written: _Written,
) -> None:
    """Append the audit record, link the new versions and lineage to it, bump the revision."""
    audit = {k: v for k, v in impact.items() if k != "validation_geojson"}
    change = CellChange(
        community_id=community.id,
        kind=plan.kind,
        reason=reason,
        changed_by=user,
        revision=revision,
        request=json.loads(json.dumps(request, default=str)),
        impact=json.loads(json.dumps(audit, default=str)),
    )
    session.add(change)
    session.flush()
    session.execute(
        update(CellVersion)
        .where(CellVersion.id.in_(written.version_ids))
        .values(change_id=change.id)
    )
    for parent, child in written.lineage:
        session.execute(
            update(CellLineage)
            .where(CellLineage.parent_id == parent, CellLineage.child_id == child)
            .values(change_id=change.id)
        )
    session.execute(update(Community).where(Community.id == community.id).values(revision=revision))


_CELL_LEVEL_PROBLEMS = {"no_leader", "households_out_of_band"}


def _spatial_problems(collection: dict[str, Any]) -> dict[str, Any]:
    features = [
        f for f in collection["features"] if f["properties"]["kind"] not in _CELL_LEVEL_PROBLEMS
    ]
    return {**collection, "features": features}


def _impact(
    session: Session,
    community: CommunityRef,
    community_code: str,
    revision: int,
    plan: Plan,
    before: gpd.GeoDataFrame,
    moved: dict[str, Any],
    people: list[dict[str, Any]],
    open_before: dict[int, Any],
    open_after: dict[int, Any],
) -> dict[str, Any]:
    after = _cells(session, community)
    code_of = dict(
        session.execute(select(Cell.id, Cell.code).where(Cell.community_id == community.id)).all()
    )
    for move in people:
        move["from"] = code_of.get(move.pop("from_cell_id"))
        move["to"] = code_of.get(move.pop("to_cell_id"))
    before_hh = dict(zip(before["code"], before["households"], strict=True))
    after_hh = dict(zip(after["code"], after["households"], strict=True))
    settings = get_settings().geo
    band = (settings.cell_households_min, settings.cell_households_max)
    report = validate_community(session, community, band=band, cells=after)
    return {
        "community": community_code,
        "based_on_revision": revision,
        "kind": plan.kind,
        "notes": plan.notes,
        "cells_retired": sorted(set(before["code"]) - set(after["code"])),
        "cells_created": sorted(set(after["code"]) - set(before["code"])),
        "households_per_cell": [
            {"cell": c, "before": before_hh.get(c), "after": after_hh.get(c)}
            for c in sorted(set(before_hh) | set(after_hh))
            if before_hh.get(c) != after_hh.get(c)
        ],
        "moved": moved,
        "open_incidents_moved": sum(1 for i, c in open_after.items() if open_before.get(i) != c),
        "people": people,
        "people_rule": PEOPLE_RULE,
        "cells_without_leader": sorted(after.loc[~after["has_leader"], "code"]),
        "validation": report.as_dict(),
        # Spatial problems to draw; cell-level ones (no 格长, households) are in "validation".
        "validation_geojson": _spatial_problems(report.to_geojson()),
    }


def _shape(value: Any, what: str, datum: str) -> BaseGeometry:
    """A GeoJSON geometry object → shapely (converted from GCJ-02/BD-09), or a clear 422."""
    from geodata.china import convert_geometries

    if not isinstance(value, dict) or "type" not in value:
        raise InvalidInput(f"{what}: expected a GeoJSON geometry object")
    try:
        geom = shapely.geometry.shape(value)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise InvalidInput(f"{what}: unreadable GeoJSON geometry ({exc})") from exc
    if geom.is_empty:
        raise InvalidInput(f"{what}: the geometry is empty")
    try:
        check_coordinates([geom], lambda _: what, get_settings().app.input_limits())
    except GeodataError as exc:
        raise InvalidInput(str(exc)) from None
    return convert_geometries(geom, datum)


def plan_from_request(session: Session, community: CommunityRef, body: dict[str, Any]) -> Plan:
    """Turn an API/CLI redraw request (see gridsvc.schemas.redraw) into a plan."""
    return _plan_from_request(session, community, body)


def _plan_from_request(session: Session, community: CommunityRef, body: dict[str, Any]) -> Plan:
    """Dispatch on the request's `op`."""
    op = body.get("op")
    datum = body.get("datum") or "wgs84"
    if op == "reshape":
        return plan_reshape(
            session,
            community,
            body["cell"],
            _shape(body["geometry"], "geometry", datum),
            trim_neighbours=body.get("trim_neighbours", True),
        )
    if op == "split":
        if body.get("line") is not None:
            return plan_split_by_line(
                session, community, body["cell"], _shape(body["line"], "line", datum)
            )
        if body.get("buildings"):
            return plan_split_by_buildings(session, community, body["cell"], body["buildings"])
        raise InvalidInput("a split needs either a line or a list of buildings")
    if op == "merge":
        return plan_merge(session, community, body["cells"])
    if op == "move_buildings":
        return plan_move_buildings(session, community, body["buildings"], body["to_cell"])
    if op == "create":
        return plan_create(
            session, community, _shape(body["geometry"], "geometry", datum), body.get("name")
        )
    if op == "revert":
        return plan_revert(
            session,
            community,
            body["cell"],
            body["version"],
            trim_neighbours=body.get("trim_neighbours", False),
        )
    if op == "proposal":
        from geodata.geojson import features_to_gdf

        app = get_settings().app
        gdf = features_to_gdf(
            body["cells"],
            max_features=app.max_import_features,
            limits=app.input_limits(),
        )
        from geodata.china import convert_geometries

        gdf = gdf.set_geometry(convert_geometries(gdf.geometry, datum))
        return plan_proposal(session, community, gdf)
    raise InvalidInput(f"unknown redraw operation {op!r}")
