"""Incidents: intake and routing, the case workflow (one transition table), photos, statistics.

Framework-free: every function takes a session, who acts and ``now`` (from a
:class:`~gridsvc.services.clock.Clock`), and raises domain errors. Every change of state is an
``incident_event`` row (who, when, from, to, note); an illegal transition raises Conflict with
nothing changed; two transitions racing on one case are serialised by a row lock, so the
second sees the state the first left and is refused if it no longer applies.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridsvc.auth import masking, policy
from gridsvc.auth.policy import allows
from gridsvc.auth.principal import Place, Principal
from gridsvc.domain import INCIDENT_STATUSES, REPORTER_KINDS
from gridsvc.errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge
from gridsvc.models import Cell, Incident, IncidentCategory, IncidentEvent, IncidentPhoto
from gridsvc.repositories import incidents as repo
from gridsvc.repositories.areas import get_community
from gridsvc.repositories.cells import get_cell
from gridsvc.settings import get_settings

CELL_ROLES = frozenset({"leader", "grid_worker"})
STAFF_ROLES = frozenset({"community_staff", "street_staff"})
#: Roles that see who reported (name, phone) to call them back; viewers and Open311 do not
#: (the ``personal.read`` row of :mod:`gridsvc.auth.policy`).
PERSONAL_DATA_ROLES = masking.PERSONAL_DATA_ROLES


@dataclass(frozen=True)
class Transition:
    """One workflow step: from which states, to which, by which roles (admin always may)."""

    action: str
    sources: frozenset[str]
    target: str
    roles: frozenset[str]
    #: A note is required (why it was returned, escalated or parked).
    note_required: bool = False


def _t(
    action: str, sources: set[str], target: str, roles: set[str], note: bool = False
) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(roles), note)


#: The workflow, in one place: 立案 → 派遣 → 处置 → 核查 → 结案, with 退回 (back for rework),
#: 上报 (one grid level up), 挂账 (parked with a reason) and its resumption.
TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        _t("dispatch", {"filed", "returned", "escalated"}, "dispatched", {"leader", *STAFF_ROLES}),
        _t("handle", {"dispatched", "returned"}, "handled", {*CELL_ROLES, *STAFF_ROLES}),
        _t("verify", {"handled"}, "verified", {"leader", *STAFF_ROLES}),
        _t("close", {"verified"}, "closed", set(STAFF_ROLES)),
        _t("return", {"handled", "verified"}, "returned", {"leader", *STAFF_ROLES}, note=True),
        _t(
            "escalate",
            {"filed", "dispatched", "returned", "escalated"},
            "escalated",
            {*CELL_ROLES, "community_staff"},
            note=True,
        ),
        _t(
            "park",
            {"filed", "dispatched", "handled", "returned", "escalated"},
            "parked",
            set(STAFF_ROLES),
            note=True,
        ),
        _t("resume", {"parked"}, "dispatched", set(STAFF_ROLES)),
    )
}


@dataclass(frozen=True)
class Actor:
    """Who does something: a signed-in user, an Open311 client or the CLI."""

    name: str
    user_id: int | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        """The actor for a signed-in user."""
        return cls(principal.username, principal.id)


@dataclass
class NewIncident:
    """A report as received (WGS84 lon/lat; convert other datums before)."""

    lon: float
    lat: float
    category: str
    description: str | None = None
    address: str | None = None
    reporter_kind: str = "resident"
    reporter_name: str | None = None
    reporter_phone: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def default_reporter_kind(principal: Principal) -> str:
    """Who reports when the report does not say: a cell's team member as such, else a resident
    (staff pass on what residents raise)."""
    return principal.role if principal.role in CELL_ROLES else "resident"


# -- categories -------------------------------------------------------------------------------


def categories(session: Session, *, active_only: bool = True) -> list[dict[str, Any]]:
    """The incident categories with their deadlines, urgency and handling unit."""
    stmt = select(IncidentCategory).order_by(IncidentCategory.sort_order, IncidentCategory.code)
    if active_only:
        stmt = stmt.where(IncidentCategory.active.is_(True))
    return [
        {
            "code": c.code,
            "label": c.label,
            "description": c.description,
            "dispatch_minutes": c.dispatch_minutes,
            "close_minutes": c.close_minutes,
            "urgency": c.urgency,
            "handling_unit": c.handling_unit,
            "active": c.active,
            "public": c.public,
        }
        for c in session.scalars(stmt)
    ]


def set_category_public(session: Session, code: str, public: bool) -> dict[str, Any]:
    """Publish a category's cases in the public Open311 feed (coarsened, without free text) or
    withdraw them; returns the category."""
    cat = category(session, code)
    cat.public = public
    session.commit()
    return next(c for c in categories(session) if c["code"] == cat.code)


def category(session: Session, code: str) -> IncidentCategory:
    """An active category by code or Chinese label (InvalidInput naming the choices)."""
    found = session.scalar(
        select(IncidentCategory).where(
            (IncidentCategory.code == code) | (IncidentCategory.label == code),
            IncidentCategory.active.is_(True),
        )
    )
    if found is None:
        choices = ", ".join(f"{c['code']} ({c['label']})" for c in categories(session))
        raise InvalidInput(f"unknown incident category {code!r}; use one of {choices}")
    return found


# -- intake and routing -----------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where a point goes: cell (and its version) or a queue, and the flags."""

    queue: str
    cell_id: int | None
    cell_version_id: int | None
    community_id: int | None
    street_id: int | None
    boundary_distance_m: float | None
    needs_confirmation: bool
    suggested_cell_id: int | None


def route_point(session: Session, lon: float, lat: float, at: datetime) -> Route:
    """Route a point: the cell whose boundary valid at `at` holds it (flagged when another cell
    lies within the configured distance, that nearest other cell offered); outside every
    cell the community queue, outside every community the street queue (never lost)."""
    cfg = get_settings().incidents
    candidates = repo.cell_candidates(session, lon, lat, at, cfg.boundary_m)
    hit = next((c for c in candidates if c.inside), None)
    if hit is not None:
        # A flag asks the 格长 to choose: only when another cell lies within the distance (near
        # the community's outer edge with no neighbour there is nothing to choose). The
        # candidates are already bounded to the cells within that distance (GiST-indexed).
        others = [c for c in candidates if not c.inside and c.level == hit.level]
        near_edge = hit.edge_m < cfg.boundary_m and bool(others)
        return Route(
            "cell",
            hit.cell_id,
            hit.version_id,
            hit.community_id,
            hit.street_id,
            round(float(hit.edge_m), 2),
            near_edge,
            others[0].cell_id if near_edge and others else None,
        )
    suggested = candidates[0].cell_id if candidates else None
    place = repo.community_at(session, lon, lat)
    if place is not None:
        return Route(
            "community", None, None, place[0], place[1], None, suggested is not None, suggested
        )
    street = repo.street_for_outside_point(session, lon, lat, cfg.outside_max_m)
    if street is None:
        raise InvalidInput(
            f"the point ({lon:.6f}, {lat:.6f}) lies outside every community served, more "
            f"than {cfg.outside_max_m:.0f} m from the nearest; check the coordinates and datum"
        )
    return Route("street", None, None, None, street, None, suggested is not None, suggested)


def _check_point(lon: float, lat: float) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lon) > 180 or abs(lat) > 90:
        raise InvalidInput(f"({lon}, {lat}) is not a longitude/latitude pair")


def report(
    session: Session,
    new: NewIncident,
    *,
    actor: Actor,
    now: datetime,
    source: str = "api",
    open311_token: str | None = None,
) -> dict[str, Any]:
    """File an incident: route it, assign it to the 格长 of its cell (the category's handling
    unit where it names one), flag boundary and duplicate cases, record the 立案 event."""
    _check_point(new.lon, new.lat)
    if new.reporter_kind not in REPORTER_KINDS:
        raise InvalidInput(
            f"unknown reporter kind {new.reporter_kind!r}; use one of {', '.join(REPORTER_KINDS)}"
        )
    cat = category(session, new.category)
    cfg = get_settings().incidents
    repo.lock_communities_near(session, new.lon, new.lat, cfg.boundary_m)
    route = route_point(session, new.lon, new.lat, now)
    if route.cell_version_id is not None:
        # A redraw committed between the report time and now: like the open cases the redraw
        # moved, this one goes to the cell that holds its point now (history keeps the version).
        superseded, current = repo.current_cell_if_superseded(
            session, route.cell_version_id, new.lon, new.lat
        )
        if superseded:
            route = replace(route, cell_id=current)
    duplicate = repo.possible_duplicate(
        session, new.lon, new.lat, cat.code, now, cfg.duplicate_m, cfg.duplicate_days
    )
    incident = Incident(
        location=func.ST_SetSRID(func.ST_MakePoint(new.lon, new.lat), 4326),
        address=_clean(new.address, 500),
        category=cat.code,
        description=_clean(new.description, 4000),
        status="filed",
        reporter_kind=new.reporter_kind,
        reporter_name=_clean(new.reporter_name, 64),
        reporter_phone=_clean(new.reporter_phone, 32),
        reporter_user_id=actor.user_id,
        reported_at=now,
        updated_at=now,
        cell_id=route.cell_id,
        cell_version_id=route.cell_version_id,
        community_id=route.community_id,
        street_id=route.street_id,
        queue=route.queue,
        handling_cell_id=route.cell_id,
        assignee_person_id=repo.leader_of(session, route.cell_id) if route.cell_id else None,
        handling_unit=cat.handling_unit,
        needs_confirmation=route.needs_confirmation,
        suggested_cell_id=route.suggested_cell_id,
        boundary_distance_m=route.boundary_distance_m,
        duplicate_of_id=duplicate,
        source=source,
        open311_token=open311_token,
    )
    session.add(incident)
    session.flush()
    session.add(
        IncidentEvent(
            incident_id=incident.id,
            action="file",
            from_status=None,
            to_status="filed",
            actor_user_id=actor.user_id,
            actor=actor.name[:64],
            at=now,
            note=None,
            data={"queue": route.queue, "source": source, **new.extra},
        )
    )
    # Read the answer back before committing: once the commit is acknowledged nothing can
    # fail any more, so a client told 503 knows the report was not stored (a retry is safe).
    detail = repo.incident_detail(session, incident.id, now)
    assert detail is not None
    session.commit()
    return detail


def _clean(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"text of {len(value)} characters is longer than {limit}")
    return value or None


# -- reading ----------------------------------------------------------------------------------


def _place(inc: Incident, *, handling: bool) -> Place:
    return Place(
        street_id=inc.street_id,
        community_id=inc.community_id,
        cell_id=inc.handling_cell_id if handling else inc.cell_id,
    )


def may_see(principal: Principal, inc: Incident) -> bool:
    """True when the incident's point or its handling cell is in the principal's scope."""
    return allows(principal, _place(inc, handling=False)) or allows(
        principal, _place(inc, handling=True)
    )


def _load(session: Session, principal: Principal, incident_id: int, *, lock: bool) -> Incident:
    stmt = select(Incident).where(Incident.id == incident_id)
    if lock:
        stmt = stmt.with_for_update()
    inc = session.scalar(stmt.execution_options(populate_existing=True))
    if inc is None or not may_see(principal, inc):
        # Outside the scope looks the same as missing: ids are guessable.
        raise NotFound(f"no incident #{incident_id} in your scope")
    return inc


@dataclass(frozen=True)
class ListQuery:
    """What a client asks of the incident list: codes (resolved here) and filters."""

    status: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    cell: str | None = None
    community: str | None = None
    street: str | None = None
    queue: str | None = None
    overdue: bool | None = None
    needs_confirmation: bool | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None


def list_incidents(
    session: Session, principal: Principal, q: ListQuery, *, now: datetime, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """(incidents in scope matching `q`, newest first, number matched); NotFound for an
    unknown cell, community or street code."""
    f = repo.IncidentFilter(
        status=q.status,
        category=q.category,
        cell_id=get_cell(session, q.cell).id if q.cell else None,
        community_id=get_community(session, q.community).id if q.community else None,
        street_id=repo.street_id(session, q.street) if q.street else None,
        queue=q.queue,
        overdue=q.overdue,
        needs_confirmation=q.needs_confirmation,
        reported_from=q.reported_from,
        reported_to=q.reported_to,
    )
    return repo.incident_list(session, principal, f, now=now, limit=limit, offset=offset)


def get_incident(
    session: Session, principal: Principal, incident_id: int, now: datetime
) -> dict[str, Any]:
    """One incident with its events and photos (NotFound outside the scope)."""
    _load(session, principal, incident_id, lock=False)
    detail = repo.incident_detail(session, incident_id, now)
    assert detail is not None
    if principal.role in PERSONAL_DATA_ROLES:
        inc = session.get(Incident, incident_id)
        assert inc is not None
        detail["reporter_name"], detail["reporter_phone"] = inc.reporter_name, inc.reporter_phone
    detail["events"] = repo.incident_events(session, incident_id)
    detail["photos"] = repo.incident_photos(session, incident_id)
    detail["allowed_actions"] = allowed_actions(session, principal, incident_id)
    return detail


def allowed_actions(session: Session, principal: Principal, incident_id: int) -> list[str]:
    """The actions this user may take on the case now."""
    inc = session.get(Incident, incident_id)
    if inc is None or not _may_act(principal, inc):
        return []
    return [
        a
        for a, t in TRANSITIONS.items()
        if inc.status in t.sources and (principal.is_admin or principal.role in t.roles)
    ]


def may_confirm_cell(session: Session, principal: Principal, incident_id: int) -> bool:
    """True when the case waits for a cell confirmation that this user may give now."""
    inc = session.get(Incident, incident_id)
    return (
        inc is not None
        and inc.needs_confirmation
        and policy.may(principal, "incident.route")
        and _may_act(principal, inc)
    )


# -- workflow ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActingScope:
    """Where a user may act on cases: the queues, and the incident columns that must equal the
    user's own ids (an empty ``ids``: any case in those queues)."""

    queues: tuple[str, ...]
    ids: dict[str, int] = field(default_factory=dict)


def acting_scope(principal: Principal) -> ActingScope | None:
    """Who may act depends on the queue: the handling cell's team while the case is in a cell,
    community staff up to the community queue, street staff always (within their scope);
    None: nowhere. The one statement of the rule, checked per case and as a list filter."""
    every = ("cell", "community", "street")
    if principal.is_admin:
        return ActingScope(every)
    if principal.role in CELL_ROLES and principal.cell_id is not None:
        return ActingScope(("cell",), {"handling_cell_id": principal.cell_id})
    if principal.role == "community_staff" and principal.community_id is not None:
        return ActingScope(("cell", "community"), {"community_id": principal.community_id})
    if principal.role == "street_staff" and principal.street_id is not None:
        return ActingScope(every, {"street_id": principal.street_id})
    return None


def _may_act(principal: Principal, inc: Incident) -> bool:
    scope = acting_scope(principal)
    return (
        scope is not None
        and inc.queue in scope.queues
        and all(getattr(inc, column) == value for column, value in scope.ids.items())
    )


def actionable_statuses(principal: Principal) -> tuple[str, ...]:
    """The states from which the user's role may take some step (from :data:`TRANSITIONS`)."""
    return tuple(
        s
        for s in INCIDENT_STATUSES
        if any(
            s in t.sources and (principal.is_admin or principal.role in t.roles)
            for t in TRANSITIONS.values()
        )
    )


def waiting_filter(principal: Principal) -> repo.IncidentFilter | None:
    """The cases waiting for this user (待办): in a state their role may move on, in a queue
    and place they act on; None when nothing can ever wait for them (viewers)."""
    scope = acting_scope(principal)
    statuses = actionable_statuses(principal)
    if scope is None or not statuses or not policy.may(principal, "incident.act"):
        return None
    return repo.IncidentFilter(status=statuses, queues=scope.queues, **scope.ids)


def transition(
    session: Session,
    principal: Principal,
    incident_id: int,
    action: str,
    *,
    now: datetime,
    note: str | None = None,
    expected_version: int | None = None,
    to_cell: str | None = None,
) -> dict[str, Any]:
    """Apply one workflow action to a case and record it; 409 when the state does not allow it
    (or the case changed since `expected_version`), 403 when the role or scope does not."""
    rule = TRANSITIONS.get(action)
    if rule is None:
        raise InvalidInput(f"unknown action {action!r}; use one of {', '.join(TRANSITIONS)}")
    policy.require(principal, "incident.act")
    inc = _load(session, principal, incident_id, lock=True)
    # The role comes first: a role that may never take this step learns 403, not the state.
    if not (principal.is_admin or principal.role in rule.roles):
        raise Forbidden(f"the {principal.role} role may not {action} an incident")
    if expected_version is not None and inc.version != expected_version:
        raise Conflict(
            f"incident #{incident_id} changed since version {expected_version} "
            f"(now version {inc.version}, {inc.status}); reload and try again",
            version=inc.version,
            status_now=inc.status,
        )
    if inc.status not in rule.sources:
        raise Conflict(
            f"cannot {action} incident #{incident_id}: it is {inc.status} "
            f"({INCIDENT_STATUSES[inc.status]}); {action} applies to "
            f"{', '.join(sorted(rule.sources))}",
            status_now=inc.status,
            version=inc.version,
        )
    if not _may_act(principal, inc):
        raise Forbidden(
            f"incident #{incident_id} waits in the {inc.queue} queue, which your role and scope "
            "do not handle"
        )
    note = _clean(note, 2000)
    if rule.note_required and not note:
        raise InvalidInput(f"{action} needs a note saying why")
    if to_cell is not None and action not in ("dispatch", "resume"):
        raise InvalidInput("to_cell is only for dispatch")
    data: dict[str, Any] = {}
    if action == "escalate":
        data = _escalate(session, inc)
    if to_cell is not None:
        data = _dispatch_to_cell(session, principal, inc, to_cell)
    before = inc.status
    inc.status = rule.target
    inc.version += 1
    inc.updated_at = now
    if rule.target == "dispatched" and inc.dispatched_at is None:
        inc.dispatched_at = now
    if rule.target == "closed":
        inc.closed_at = max(now, inc.reported_at)
    session.add(
        IncidentEvent(
            incident_id=inc.id,
            action=action,
            from_status=before,
            to_status=rule.target,
            actor_user_id=principal.id,
            actor=principal.username[:64],
            at=now,
            note=note,
            data=data,
        )
    )
    session.commit()
    detail = repo.incident_detail(session, incident_id, now)
    assert detail is not None
    return detail


def _escalate(session: Session, inc: Incident) -> dict[str, Any]:
    """上报: one grid level up — the parent cell (片区, 党支部) where there is one, else the
    community queue, then the street queue; nothing is above the street."""
    before = {"queue": inc.queue, "handling_cell_id": inc.handling_cell_id}
    if inc.queue == "cell" and inc.handling_cell_id is not None:
        parent = repo.cell_parent(session, inc.handling_cell_id)
        if parent is not None:
            inc.handling_cell_id = parent
            inc.assignee_person_id = repo.leader_of(session, parent)
        elif inc.community_id is not None:
            inc.queue, inc.handling_cell_id, inc.assignee_person_id = "community", None, None
        else:
            inc.queue, inc.handling_cell_id, inc.assignee_person_id = "street", None, None
    elif inc.queue in ("cell", "community"):
        inc.queue, inc.handling_cell_id, inc.assignee_person_id = "street", None, None
    else:
        raise Conflict(f"incident #{inc.id} is already with the street: nothing is above it")
    return {"from": before, "to": {"queue": inc.queue, "handling_cell_id": inc.handling_cell_id}}


def _dispatch_to_cell(
    session: Session, principal: Principal, inc: Incident, code: str
) -> dict[str, Any]:
    """Staff dispatch a case (e.g. from the community queue) to a cell's team."""
    if not (principal.is_admin or principal.role in STAFF_ROLES):
        raise Forbidden("only community or street staff dispatch a case to another cell")
    ref = get_cell(session, code)
    if ref.version_id is None:
        raise NotFound(f"cell {code} has no current boundary (it was retired)")
    if not allows(principal, ref.place):
        raise Forbidden(f"cell {code} is outside your scope")
    before = {"queue": inc.queue, "handling_cell_id": inc.handling_cell_id}
    inc.queue, inc.handling_cell_id = "cell", ref.id
    inc.assignee_person_id = repo.leader_of(session, ref.id)
    return {"from": before, "to": {"queue": "cell", "handling_cell_id": ref.id}}


def confirm_cell(
    session: Session,
    principal: Principal,
    incident_id: int,
    code: str,
    *,
    now: datetime,
    note: str | None = None,
) -> dict[str, Any]:
    """Settle a boundary case: keep its cell or move it to the offered neighbour (the case is
    re-assigned to that cell's 格长); the flag is cleared and the step recorded."""
    policy.require(principal, "incident.route")
    inc = _load(session, principal, incident_id, lock=True)
    if not _may_act(principal, inc):
        raise Forbidden(f"you may not route incident #{incident_id}")
    if not inc.needs_confirmation:
        raise Conflict(f"incident #{incident_id} does not wait for a cell confirmation")
    allowed = {c for c in (inc.cell_id, inc.suggested_cell_id) if c is not None}
    cell = session.scalar(select(Cell).where(Cell.code == code))
    if cell is None or cell.id not in allowed:
        raise InvalidInput(f"cell {code!r} is neither the incident's cell nor the one offered")
    before = {"cell_id": inc.cell_id, "queue": inc.queue}
    if cell.id != inc.cell_id:
        inc.cell_version_id = session.scalar(
            text(
                "SELECT id FROM cell_version WHERE cell_id = :c AND valid_from <= :at "
                "AND (valid_to IS NULL OR valid_to > :at) ORDER BY version DESC LIMIT 1"
            ),
            {"c": cell.id, "at": inc.reported_at},
        )
        inc.cell_id = cell.id
        inc.community_id = cell.community_id
        inc.queue = "cell"
        inc.handling_cell_id = cell.id
        inc.assignee_person_id = repo.leader_of(session, cell.id)
    inc.needs_confirmation = False
    inc.version += 1
    inc.updated_at = now
    session.add(
        IncidentEvent(
            incident_id=inc.id,
            action="confirm_cell",
            from_status=inc.status,
            to_status=inc.status,
            actor_user_id=principal.id,
            actor=principal.username[:64],
            at=now,
            note=_clean(note, 2000),
            data={"from": before, "to": {"cell_id": cell.id, "queue": inc.queue}},
        )
    )
    session.commit()
    detail = repo.incident_detail(session, incident_id, now)
    assert detail is not None
    return detail


# -- photos -----------------------------------------------------------------------------------

#: Largest decoded photo (pixels): a small file must not expand into gigabytes in memory.
MAX_PHOTO_PIXELS = 50_000_000

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "PNG"),
)


def sniff_image(data: bytes) -> tuple[str, int, int]:
    """(media type, width, height) of a JPEG, PNG or WebP judged by its content — never by a
    file name or a declared type — and fully decoded by Pillow; InvalidInput otherwise."""
    media = fmt = None
    for magic, m, f in _MAGIC:
        if data.startswith(magic):
            media, fmt = m, f
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        media, fmt = "image/webp", "WEBP"
    if media is None:
        raise InvalidInput("a photo must be a JPEG, PNG or WebP image (checked by content)")
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != fmt:
                raise InvalidInput(f"the content claims {fmt} but decodes as {img.format}")
            width, height = img.size
            if width * height > MAX_PHOTO_PIXELS:
                raise InvalidInput(f"a {width}×{height} photo has too many pixels to store")
            img.load()  # decode fully: truncated or corrupt files are refused here
    except InvalidInput:
        raise
    except Exception as exc:  # Pillow raises many kinds (incl. DecompressionBombError)
        raise InvalidInput(f"the photo cannot be decoded as {fmt}: {exc}") from exc
    return media, width, height


def add_photo(
    session: Session, principal: Principal, incident_id: int, data: bytes
) -> dict[str, Any]:
    """Store a photo of an incident in the database (size-limited, type-checked)."""
    cfg = get_settings().incidents
    if len(data) > cfg.photo_max_bytes:
        raise TooLarge(f"a photo may have at most {cfg.photo_max_bytes} bytes")
    policy.require(principal, "incident.report")
    inc = _load(session, principal, incident_id, lock=True)
    count = session.scalar(select(func.count()).where(IncidentPhoto.incident_id == inc.id))
    if (count or 0) >= cfg.photos_per_incident:
        raise Conflict(f"incident #{incident_id} already has {count} photos (the most allowed)")
    media, width, height = sniff_image(data)
    photo = IncidentPhoto(
        incident_id=inc.id,
        media_type=media,
        size_bytes=len(data),
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        uploaded_by=principal.username[:64],
    )
    session.add(photo)
    session.commit()
    return {
        "id": photo.id,
        "media_type": media,
        "size_bytes": len(data),
        "width": width,
        "height": height,
        "sha256": photo.sha256,
    }


def photo(
    session: Session, principal: Principal, incident_id: int, photo_id: int
) -> tuple[bytes, str]:
    """The bytes and media type of one photo (NotFound outside the scope)."""
    _load(session, principal, incident_id, lock=False)
    row = session.execute(
        select(IncidentPhoto.data, IncidentPhoto.media_type).where(
            IncidentPhoto.id == photo_id, IncidentPhoto.incident_id == incident_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no photo #{photo_id} of incident #{incident_id}")
    return bytes(row[0]), row[1]


# -- statistics -------------------------------------------------------------------------------


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _num(value: Any) -> float | None:
    if value is None:
        return None
    return round(float(value) if isinstance(value, Decimal) else value, 2)


def stats(
    session: Session,
    principal: Principal,
    *,
    by: str,
    period: str,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    street: str | None = None,
    community: str | None = None,
    cell: str | None = None,
) -> dict[str, Any]:
    """Closure rate, on-time closure rate (按期结案率), average time to dispatch and to close,
    overdue counts — per cell, community or street and per period, within the scope; `street`,
    `community`, `cell` (codes, NotFound when unknown) narrow it to one area."""
    if by not in repo.STAT_LEVELS:
        raise InvalidInput(f"by must be one of {', '.join(repo.STAT_LEVELS)}")
    if period not in repo.STAT_PERIODS:
        raise InvalidInput(f"period must be one of {', '.join(repo.STAT_PERIODS)}")
    if start is not None and end is not None and end <= start:
        raise InvalidInput("the end of the period must come after its start")
    if principal.role in CELL_ROLES and by != "cell":
        by = "cell"  # a cell's team sees their own cell only
    rows = repo.stats_rows(
        session,
        principal,
        by=by,
        period=period,
        now=now,
        tz=get_settings().app.local_timezone,
        start=start,
        end=end,
        street_id=repo.street_id(session, street) if street else None,
        community_id=get_community(session, community).id if community else None,
        cell_id=get_cell(session, cell).id if cell else None,
    )
    for r in rows:
        r["closure_rate"] = _rate(r["closed"], r["reported"])
        r["on_time_closure_rate"] = _rate(r["closed_on_time"], r["closed"])
        r["avg_minutes_to_dispatch"] = _num(r["avg_minutes_to_dispatch"])
        r["avg_hours_to_close"] = _num(r["avg_hours_to_close"])
    return {
        "by": by,
        "period": period,
        "as_of": now.isoformat(),
        "definitions": {
            "closure_rate": "closed / reported (incidents reported in the row's period)",
            "on_time_closure_rate": "按期结案率: closed by the category's close deadline / closed",
            "overdue_open": "open (not closed, not parked) and past the dispatch deadline "
            "(not dispatched yet) or the close deadline, at as_of",
            "avg_minutes_to_dispatch": "mean of dispatched_at − reported_at over dispatched",
            "avg_hours_to_close": "mean of closed_at − reported_at over closed",
        },
        "rows": rows,
    }
