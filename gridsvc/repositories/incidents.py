"""Queries on incidents: routing a point (cell, boundary distance, neighbour, queues),
duplicates, lists and details, and set-based statistics. Distances are metres on the
geography type; a bounding-box test in degrees (generous) keeps the GiST indexes in use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, and_, bindparam, case, func, literal, or_, select, text, true
from sqlalchemy.orm import Session, aliased

from gridsvc.auth.policy import scope_filter
from gridsvc.auth.principal import Principal
from gridsvc.domain import (
    INCIDENT_AWAITING_DISPATCH_STATUSES,
    INCIDENT_OPEN_STATUSES,
    incident_awaiting_dispatch_sql,
    incident_closed_sql,
    incident_open_sql,
    incident_overdue_sql,
    incident_parked_sql,
)
from gridsvc.models import (
    Cell,
    CellVersion,
    Community,
    Incident,
    IncidentCategory,
    IncidentEvent,
    IncidentPhoto,
    Person,
    Street,
)
from gridsvc.repositories.spatial import expand_degrees


@dataclass(frozen=True)
class CellCandidate:
    """A current cell near or around a point."""

    cell_id: int
    code: str
    version_id: int
    community_id: int
    street_id: int
    level: int
    inside: bool
    distance_m: float
    edge_m: float


_CANDIDATES = text(
    """
    WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g)
    SELECT c.id, c.code, cv.id, c.community_id, co.street_id, c.level,
           ST_Intersects(cv.geom, p.g) AS inside,
           ST_Distance(cv.geom::geography, p.g::geography) AS distance_m,
           ST_Distance(ST_Boundary(cv.geom)::geography, p.g::geography) AS edge_m
    FROM p
    JOIN cell_version cv ON cv.geom && ST_Expand(p.g, :deg)
         AND cv.valid_from <= :at AND (cv.valid_to IS NULL OR cv.valid_to > :at)
    JOIN cell c ON c.id = cv.cell_id AND c.kind = 'general'
    JOIN community co ON co.id = c.community_id
    WHERE ST_Intersects(cv.geom, p.g)
       OR ST_DWithin(cv.geom::geography, p.g::geography, :metres)
    ORDER BY inside DESC, c.level DESC, distance_m, c.code
    """
)


def cell_candidates(
    session: Session, lon: float, lat: float, at: datetime, metres: float
) -> list[CellCandidate]:
    """Cells (general kind, boundary valid at `at`) holding the point or within `metres`:
    holders first (most detailed level first), then by distance."""
    rows = session.execute(
        _CANDIDATES,
        {"lon": lon, "lat": lat, "at": at, "metres": metres, "deg": expand_degrees(lat, metres)},
    ).all()
    return [CellCandidate(*r) for r in rows]


_COMMUNITY_AT = text(
    """
    SELECT co.id, co.street_id FROM community co
    WHERE ST_Intersects(co.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    ORDER BY co.code LIMIT 1
    """
)
_STREET_AT = text(
    """
    SELECT s.id FROM street s
    WHERE s.geom IS NOT NULL AND ST_Intersects(s.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    ORDER BY s.code LIMIT 1
    """
)
_NEAREST_COMMUNITY = text(
    """
    WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g)
    SELECT co.street_id, ST_Distance(co.geom::geography, p.g::geography) AS d
    FROM community co, p ORDER BY co.geom <-> p.g LIMIT 1
    """
)


def community_at(session: Session, lon: float, lat: float) -> tuple[int, int] | None:
    """(community id, street id) of the community holding the point, if any."""
    row = session.execute(_COMMUNITY_AT, {"lon": lon, "lat": lat}).one_or_none()
    return (row[0], row[1]) if row else None


_LOCK_COMMUNITIES = text(
    """
    SELECT id FROM community
    WHERE ST_DWithin(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :deg)
    ORDER BY id FOR KEY SHARE
    """
)


def lock_communities_near(session: Session, lon: float, lat: float, metres: float) -> None:
    """Share-lock the communities within `metres` of a point until the transaction ends: a
    redraw there (which locks its community FOR UPDATE first) finishes before or after this
    report, never interleaved with it (which deadlocked on the cell version rows)."""
    session.execute(_LOCK_COMMUNITIES, {"lon": lon, "lat": lat, "deg": metres / 90_000 + 1e-6})


_CURRENT_CELL_IF_SUPERSEDED = text(
    """
    SELECT (SELECT cv.cell_id FROM cell_version cv JOIN cell c ON c.id = cv.cell_id
            WHERE cv.valid_to IS NULL AND c.kind = 'general'
              AND ST_Intersects(cv.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
            ORDER BY c.code LIMIT 1)
    FROM cell_version old WHERE old.id = :version AND old.valid_to IS NOT NULL
    """
)


def current_cell_if_superseded(
    session: Session, version_id: int, lon: float, lat: float
) -> tuple[bool, int | None]:
    """(True, the cell holding the point now) when the version has been replaced by a redraw
    since, else (False, None); the same rule a redraw uses to move open incidents."""
    row = session.execute(
        _CURRENT_CELL_IF_SUPERSEDED, {"version": version_id, "lon": lon, "lat": lat}
    ).one_or_none()
    return (True, row[0]) if row is not None else (False, None)


def street_for_outside_point(session: Session, lon: float, lat: float, max_m: float) -> int | None:
    """The street holding a point outside every community, or the street of the nearest
    community within `max_m` metres; None when the point is farther from everything."""
    street = session.scalar(_STREET_AT, {"lon": lon, "lat": lat})
    if street is not None:
        return int(street)
    row = session.execute(_NEAREST_COMMUNITY, {"lon": lon, "lat": lat}).one_or_none()
    if row is None or row.d > max_m:
        return None
    return int(row.street_id)


_DUPLICATE = text(
    """
    WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g)
    SELECT i.id FROM incident i, p
    WHERE i.category = :category
      AND i.location && ST_Expand(p.g, :deg)
      AND i.reported_at > :at - make_interval(secs => :seconds) AND i.reported_at <= :at
      AND ST_DWithin(i.location::geography, p.g::geography, :metres)
    ORDER BY ST_Distance(i.location::geography, p.g::geography), i.reported_at DESC, i.id
    LIMIT 1
    """
)


def possible_duplicate(
    session: Session,
    lon: float,
    lat: float,
    category: str,
    at: datetime,
    metres: float,
    days: float,
) -> int | None:
    """The nearest incident of the same category within `metres` reported in the `days`
    before `at`, or None."""
    return session.scalar(
        _DUPLICATE,
        {
            "lon": lon,
            "lat": lat,
            "category": category,
            "at": at,
            "seconds": days * 86400.0,
            "metres": metres,
            "deg": expand_degrees(lat, metres),
        },
    )


_LEADER = text(
    "SELECT person_id FROM role_assignment "
    "WHERE cell_id = :cell AND role = 'leader' AND ends_on IS NULL LIMIT 1"
)


def leader_of(session: Session, cell_id: int) -> int | None:
    """The person who is the active 格长 of a cell, if any."""
    return session.scalar(_LEADER, {"cell": cell_id})


def cell_parent(session: Session, cell_id: int) -> int | None:
    """The parent cell (one grid level up) if it exists and is not retired."""
    parent = aliased(Cell)
    return session.scalar(
        select(parent.id)
        .join(Cell, Cell.parent_id == parent.id)
        .where(Cell.id == cell_id, parent.retired_at.is_(None))
    )


# -- reading ----------------------------------------------------------------------------------


def open_condition() -> Any:
    """SQL: the case is still being worked on (not closed, not parked)."""
    return Incident.status.in_(INCIDENT_OPEN_STATUSES)


def awaiting_dispatch() -> Any:
    """SQL: the case has not been dispatched yet (filed, or escalated before any dispatch)."""
    return and_(
        Incident.status.in_(INCIDENT_AWAITING_DISPATCH_STATUSES), Incident.dispatched_at.is_(None)
    )


def due_at() -> Any:
    """SQL: the deadline the case works towards now: dispatch while awaiting dispatch, else close."""
    return case((awaiting_dispatch(), Incident.dispatch_due_at), else_=Incident.close_due_at)


def overdue_condition(now: Any) -> Any:
    """SQL: an open case past its dispatch deadline (not dispatched yet) or its close deadline."""
    return and_(
        open_condition(),
        or_(and_(awaiting_dispatch(), Incident.dispatch_due_at < now), Incident.close_due_at < now),
    )


def incident_scope(principal: Principal | None) -> Any:
    """SQL: incidents the principal may see (by the cell of the point or the handling cell);
    None: no scope limit (the public Open311 view adds :func:`public_condition` and reads
    only the columns of :func:`_public_select`)."""
    if principal is None or principal.is_admin:
        return literal(True)
    if principal.cell_id is not None:
        return or_(
            Incident.cell_id == principal.cell_id, Incident.handling_cell_id == principal.cell_id
        )
    return scope_filter(
        principal,
        cell_id=Incident.cell_id,
        community_id=Incident.community_id,
        street_id=Incident.street_id,
    )


_CELL = aliased(Cell, name="point_cell")
_HANDLING = aliased(Cell, name="handling_cell")
_SUGGESTED = aliased(Cell, name="suggested_cell")


def _incident_select() -> Any:
    now_p = bindparam("now", type_=DateTime(timezone=True))
    return (
        select(
            Incident.id,
            Incident.status,
            Incident.category,
            IncidentCategory.label.label("category_label"),
            IncidentCategory.urgency,
            Incident.description,
            Incident.address,
            func.ST_X(Incident.location).label("lon"),
            func.ST_Y(Incident.location).label("lat"),
            Incident.reporter_kind,
            Incident.reported_at,
            Incident.dispatched_at,
            Incident.closed_at,
            Incident.updated_at,
            Incident.dispatch_due_at,
            Incident.close_due_at,
            due_at().label("due_at"),
            overdue_condition(now_p).label("overdue"),
            Incident.queue,
            _CELL.code.label("cell_code"),
            _HANDLING.code.label("handling_cell_code"),
            Community.code.label("community_code"),
            Street.code.label("street_code"),
            Person.name.label("assignee"),
            Incident.assignee_person_id,
            Incident.handling_unit,
            Incident.needs_confirmation,
            _SUGGESTED.code.label("suggested_cell_code"),
            Incident.boundary_distance_m,
            Incident.duplicate_of_id,
            Incident.source,
            Incident.version,
            Incident.cell_version_id,
        )
        .join(IncidentCategory, IncidentCategory.code == Incident.category)
        .outerjoin(_CELL, _CELL.id == Incident.cell_id)
        .outerjoin(_HANDLING, _HANDLING.id == Incident.handling_cell_id)
        .outerjoin(_SUGGESTED, _SUGGESTED.id == Incident.suggested_cell_id)
        .outerjoin(Community, Community.id == Incident.community_id)
        .outerjoin(Street, Street.id == Incident.street_id)
        .outerjoin(Person, Person.id == Incident.assignee_person_id)
    )


def _row(r: Any) -> dict[str, Any]:
    out = dict(r._mapping)
    for k, v in out.items():
        if isinstance(v, datetime):
            out[k] = v.isoformat()
    return out


#: Built once: the hot paths (intake, transitions) only bind the id and the time.
_DETAIL = _incident_select().where(Incident.id == bindparam("incident_id"))


def incident_detail(session: Session, incident_id: int, now: datetime) -> dict[str, Any] | None:
    """One incident as a dict (codes, labels, flags, overdue at `now`), or None."""
    row = session.execute(_DETAIL, {"incident_id": incident_id, "now": now}).one_or_none()
    return _row(row) if row else None


def incident_events(session: Session, incident_id: int) -> list[dict[str, Any]]:
    """The workflow record of an incident, oldest first."""
    rows = session.execute(
        select(
            IncidentEvent.id,
            IncidentEvent.action,
            IncidentEvent.from_status,
            IncidentEvent.to_status,
            IncidentEvent.actor,
            IncidentEvent.at,
            IncidentEvent.note,
            IncidentEvent.data,
        )
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.at, IncidentEvent.id)
    ).all()
    return [_row(r) for r in rows]


def incident_photos(session: Session, incident_id: int) -> list[dict[str, Any]]:
    """Photo metadata of an incident (not the bytes)."""
    rows = session.execute(
        select(
            IncidentPhoto.id,
            IncidentPhoto.media_type,
            IncidentPhoto.size_bytes,
            IncidentPhoto.width,
            IncidentPhoto.height,
            IncidentPhoto.sha256,
            IncidentPhoto.created_at,
        )
        .where(IncidentPhoto.incident_id == incident_id)
        .order_by(IncidentPhoto.id)
    ).all()
    return [_row(r) for r in rows]


@dataclass(frozen=True)
class IncidentFilter:
    """Filters of an incident list (all optional)."""

    status: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()
    cell_id: int | None = None
    community_id: int | None = None
    street_id: int | None = None
    queue: str | None = None
    #: Any of these queues (with ``queue``, both apply).
    queues: tuple[str, ...] = ()
    handling_cell_id: int | None = None
    overdue: bool | None = None
    needs_confirmation: bool | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    updated_from: datetime | None = None


def _conditions(principal: Principal | None, f: IncidentFilter, now: datetime) -> list[Any]:
    conds: list[Any] = [incident_scope(principal)]
    if f.status:
        conds.append(Incident.status.in_(f.status))
    if f.category:
        conds.append(Incident.category.in_(f.category))
    if f.ids:
        conds.append(Incident.id.in_(f.ids))
    if f.cell_id is not None:
        conds.append(or_(Incident.cell_id == f.cell_id, Incident.handling_cell_id == f.cell_id))
    if f.community_id is not None:
        conds.append(Incident.community_id == f.community_id)
    if f.street_id is not None:
        conds.append(Incident.street_id == f.street_id)
    if f.queue is not None:
        conds.append(Incident.queue == f.queue)
    if f.queues:
        conds.append(Incident.queue.in_(f.queues))
    if f.handling_cell_id is not None:
        conds.append(Incident.handling_cell_id == f.handling_cell_id)
    if f.overdue is not None:
        cond = overdue_condition(bindparam("now", type_=DateTime(timezone=True)))
        conds.append(cond if f.overdue else ~cond)
    if f.needs_confirmation is not None:
        conds.append(Incident.needs_confirmation.is_(f.needs_confirmation))
    if f.reported_from is not None:
        conds.append(Incident.reported_at >= f.reported_from)
    if f.reported_to is not None:
        conds.append(Incident.reported_at <= f.reported_to)
    return conds


def incident_list(
    session: Session,
    principal: Principal | None,
    f: IncidentFilter,
    *,
    now: datetime,
    limit: int,
    offset: int,
    newest_first: bool = True,
    by_due: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """(incidents in scope matching the filter, number matched); `by_due`: overdue first, then
    open cases by their deadline, then the rest (a work queue), else newest first."""
    conds = _conditions(principal, f, now)
    total = (
        session.scalar(select(func.count()).select_from(Incident).where(and_(*conds)), {"now": now})
        or 0
    )
    order: tuple[Any, ...] = (
        (Incident.reported_at.desc(), Incident.id.desc()) if newest_first else (Incident.id,)
    )
    if by_due:
        now_p = bindparam("now", type_=DateTime(timezone=True))
        order = (
            overdue_condition(now_p).desc(),
            open_condition().desc(),
            due_at().asc().nulls_last(),
            Incident.id,
        )
    rows = session.execute(
        _incident_select().where(and_(*conds)).order_by(*order).limit(limit).offset(offset),
        {"now": now},
    ).all()
    return [_row(r) for r in rows], int(total)


# -- the public view (anonymous Open311) ------------------------------------------------------

_PUBLIC_VERSION = aliased(CellVersion, name="public_cell_version")
#: Where the public view puts a case — the one coarsening rule: the point-on-surface of the
#: cell boundary (the version in force when it was reported) the case was attributed to; a
#: case outside every cell, the point-on-surface of its community; otherwise no point. Never
#: the reported point or address.
PUBLIC_LOCATION_RULE = "the cell's point-on-surface (else the community's), with the cell code"
_PUBLIC_POINT = func.coalesce(
    func.ST_PointOnSurface(_PUBLIC_VERSION.geom), func.ST_PointOnSurface(Community.geom)
)


def public_condition() -> Any:
    """SQL: the case's category is published in the public feed."""
    return IncidentCategory.public.is_(True)


def _public_select() -> Any:
    """Only what the public may see: codes, states, dates, the coarse point — no free text,
    no reporter, no address, no assignee."""
    now_p = bindparam("now", type_=DateTime(timezone=True))
    # Computed once per row (a LATERAL), not once for each coordinate.
    point = select(_PUBLIC_POINT.label("geom")).correlate(_PUBLIC_VERSION, Community).lateral("pt")
    return (
        select(
            Incident.id,
            Incident.status,
            Incident.category,
            IncidentCategory.label.label("category_label"),
            IncidentCategory.description.label("category_description"),
            Incident.reported_at,
            Incident.updated_at,
            Incident.close_due_at,
            overdue_condition(now_p).label("overdue"),
            Incident.queue,
            _CELL.code.label("cell_code"),
            _HANDLING.code.label("handling_cell_code"),
            Community.code.label("community_code"),
            Street.code.label("street_code"),
            IncidentCategory.handling_unit,
            func.ST_X(point.c.geom).label("lon"),
            func.ST_Y(point.c.geom).label("lat"),
        )
        .join(IncidentCategory, IncidentCategory.code == Incident.category)
        .outerjoin(_CELL, _CELL.id == Incident.cell_id)
        .outerjoin(_HANDLING, _HANDLING.id == Incident.handling_cell_id)
        .outerjoin(_PUBLIC_VERSION, _PUBLIC_VERSION.id == Incident.cell_version_id)
        .outerjoin(Community, Community.id == Incident.community_id)
        .outerjoin(Street, Street.id == Incident.street_id)
        .outerjoin(point, true())
    )


def public_incident_list(
    session: Session, f: IncidentFilter, *, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """The public view of the cases of public categories matching the filter, newest first."""
    conds = [*_conditions(None, f, now), public_condition()]
    rows = session.execute(
        _public_select()
        .where(and_(*conds))
        .order_by(Incident.reported_at.desc(), Incident.id.desc())
        .limit(limit),
        {"now": now},
    ).all()
    return [_row(r) for r in rows]


# -- statistics -------------------------------------------------------------------------------

#: Grouping levels of statistics: the SQL key column and the code shown.
STAT_LEVELS = ("cell", "community", "street")
STAT_PERIODS = ("all", "day", "week", "month", "quarter", "year")

_CLOSED = incident_closed_sql("i")
_STATS = f"""
    SELECT {{key}} AS area_id, {{period}} AS period,
           count(*) AS reported,
           count(*) FILTER (WHERE {_CLOSED} AND i.closed_at IS NOT NULL) AS closed,
           count(*) FILTER (WHERE {_CLOSED} AND i.closed_at <= i.close_due_at)
               AS closed_on_time,
           count(*) FILTER (WHERE {incident_open_sql("i")}) AS open,
           count(*) FILTER (WHERE {incident_parked_sql("i")}) AS parked,
           count(*) FILTER (WHERE {incident_overdue_sql("i", ":now")}) AS overdue_open,
           count(*) FILTER (WHERE {incident_awaiting_dispatch_sql("i")}
               AND i.dispatch_due_at < :now) AS overdue_dispatch,
           avg(extract(epoch FROM i.dispatched_at - i.reported_at)) / 60.0
               AS avg_minutes_to_dispatch,
           avg(extract(epoch FROM i.closed_at - i.reported_at)) FILTER (
               WHERE {_CLOSED}) / 3600.0 AS avg_hours_to_close
    FROM incident i
    WHERE {{scope}}
      AND (CAST(:start AS timestamptz) IS NULL OR i.reported_at >= :start)
      AND (CAST(:end AS timestamptz) IS NULL OR i.reported_at < :end)
      AND (CAST(:street_id AS integer) IS NULL OR i.street_id = :street_id)
      AND (CAST(:community_id AS integer) IS NULL OR i.community_id = :community_id)
      AND (CAST(:cell_id AS integer) IS NULL OR i.cell_id = :cell_id)
    GROUP BY 1, 2
"""

_AREA_CODES = {
    "cell": "SELECT id, code, name FROM cell WHERE id = ANY(:ids)",
    "community": "SELECT id, code, name FROM community WHERE id = ANY(:ids)",
    "street": "SELECT id, code, name FROM street WHERE id = ANY(:ids)",
}


def _scope_sql(principal: Principal) -> tuple[str, dict[str, Any]]:
    if principal.is_admin:
        return "TRUE", {}
    if principal.street_id is not None:
        return "i.street_id = :scope_id", {"scope_id": principal.street_id}
    if principal.community_id is not None:
        return "i.community_id = :scope_id", {"scope_id": principal.community_id}
    return "(i.cell_id = :scope_id OR i.handling_cell_id = :scope_id)", {
        "scope_id": principal.cell_id
    }


def stats_rows(
    session: Session,
    principal: Principal,
    *,
    by: str,
    period: str,
    now: datetime,
    tz: str,
    start: datetime | None = None,
    end: datetime | None = None,
    street_id: int | None = None,
    community_id: int | None = None,
    cell_id: int | None = None,
) -> list[dict[str, Any]]:
    """Counts and averages per area (cell, community or street) and period, in one GROUP BY;
    each row names its area's code and name."""
    key = {"cell": "i.cell_id", "community": "i.community_id", "street": "i.street_id"}[by]
    period_sql = (
        "NULL::timestamp"
        if period == "all"
        else f"date_trunc('{period}', i.reported_at AT TIME ZONE :tz)"
    )
    scope, scope_params = _scope_sql(principal)
    sql = _STATS.format(key=key, period=period_sql, scope=scope)
    rows = session.execute(
        text(sql),
        {
            "now": now,
            "tz": tz,
            "start": start,
            "end": end,
            "street_id": street_id,
            "community_id": community_id,
            "cell_id": cell_id,
            **scope_params,
        },
    ).all()
    ids = sorted({r.area_id for r in rows if r.area_id is not None})
    names = {
        r.id: (r.code, r.name) for r in session.execute(text(_AREA_CODES[by]), {"ids": ids}).all()
    }
    out = []
    for r in rows:
        d = dict(r._mapping)
        code, name = names.get(d.pop("area_id"), (None, None))
        d = {by: code, "name": name, **d}
        d["period"] = d["period"].date().isoformat() if d["period"] is not None else None
        out.append(d)
    out.sort(key=lambda d: (d["period"] or "", d[by] or "~"))
    return out


def street_id(session: Session, code: str) -> int:
    """The id of the street with this code, or NotFound."""
    from gridsvc.errors import NotFound

    found = session.scalar(select(Street.id).where(Street.code == code))
    if found is None:
        raise NotFound(f"no street with code {code!r}")
    return int(found)
