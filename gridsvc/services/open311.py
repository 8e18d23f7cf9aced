"""Open311 GeoReport v2 support: API keys (stored hashed, revocable, optionally scoped) and the
mapping of our incidents and categories onto GeoReport services and service requests.

What the GETs show:

* Anonymous callers (and keys whose scope does not cover a case) get the **public view**, and
  only of categories marked ``public`` (``incident_category.public``; 矛盾纠纷, 社情民意 and
  cases about households or persons are not): service code and name, status, the generated
  status notes (state, queue, cell code), dates, the category's handling unit, the cell code
  and a coarse point (:data:`gridsvc.repositories.incidents.PUBLIC_LOCATION_RULE`). The only
  prose is ``service_notice``: the category's ``description``, written by staff for the
  public. Never the reporter's description, names, phones, address or notes.
  Non-public services are not listed to them either.
* A partner key whose scope (street, community or cell) covers a case gets its full record.

The HTTP adapter (gridsvc.api.open311) only translates formats; intake, routing and reading
are the incident services'.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridsvc.auth.principal import Principal
from gridsvc.domain import (
    INCIDENT_QUEUES,
    INCIDENT_STATUSES,
    MAX_ADDRESS,
    MAX_CODE,
    MAX_NAME,
    MAX_TEXT,
)
from gridsvc.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridsvc.models import Cell, Community, Open311Key, Street
from gridsvc.repositories import incidents as repo
from gridsvc.services import incidents as svc
from gridsvc.services.users import ScopeSpec, _resolve_scope

#: Key prefix, so a leaked key is recognisable in logs and scanners.
KEY_PREFIX = "o311_"


def _hash(raw: str) -> str:
    # Keys are 256-bit random strings: a plain SHA-256 suffices (no password stretching).
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    """An API key as listed (never the key itself)."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    #: "street 320102001", "community …", "cell …" or "" (a key that only submits).
    scope: str = ""


@dataclass(frozen=True)
class Client:
    """The partner behind a valid key; `principal` is its read scope (None: submit only)."""

    name: str
    principal: Principal | None


def create_key(session: Session, name: str, scope: ScopeSpec = ScopeSpec()) -> str:
    """Create a key for a client (one name per key) and return it; only its hash is kept.
    A scope (street, community or cell) lets the partner read the full record of the cases
    in it; without one the key only submits."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInput("a key needs a name of 1-64 characters")
    ids = _resolve_scope(session, scope)
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        Open311Key(name=name, key_hash=_hash(raw), prefix=raw[: len(KEY_PREFIX) + 4], **ids)
    )
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"a key named {name!r} exists already") from exc
    return raw


def revoke_key(session: Session, name: str, *, now: datetime) -> KeyInfo:
    """Revoke a key by name; it stops working at once."""
    key = session.scalar(select(Open311Key).where(Open311Key.name == name))
    if key is None:
        raise NotFound(f"no Open311 key named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = now
        session.commit()
    return _info(session, key)


def _info(session: Session, key: Open311Key) -> KeyInfo:
    scope = ""
    for kind, model, value in (
        ("street", Street, key.street_id),
        ("community", Community, key.community_id),
        ("cell", Cell, key.cell_id),
    ):
        if value is not None:
            scope = f"{kind} {session.scalar(select(model.code).where(model.id == value))}"
    return KeyInfo(key.id, key.name, key.prefix, key.created_at, key.revoked_at, scope)


def list_keys(session: Session) -> list[KeyInfo]:
    """Every key, revoked ones included."""
    keys = session.scalars(select(Open311Key).order_by(Open311Key.name)).all()
    return [_info(session, k) for k in keys]


def client_for(session: Session, raw: str) -> Client:
    """The client owning a valid, unrevoked key, with its read scope; Forbidden otherwise."""
    key = session.scalar(select(Open311Key).where(Open311Key.key_hash == _hash(raw)))
    if key is None or key.revoked_at is not None:
        raise Forbidden("api_key is not valid (unknown or revoked)")
    principal = None
    if (key.street_id, key.community_id, key.cell_id) != (None, None, None):
        principal = Principal(
            id=0,
            username=f"open311:{key.name}",
            role="viewer",
            street_id=key.street_id,
            community_id=key.community_id,
            cell_id=key.cell_id,
        )
    return Client(key.name, principal)


def check_key(session: Session, raw: str | None) -> str:
    """The name of the client owning a valid, unrevoked key; Forbidden otherwise."""
    if not raw:
        raise Forbidden("api_key is required to submit a service request")
    return client_for(session, raw).name


def reader(session: Session, raw: str | None) -> Client | None:
    """Who reads: None for an anonymous caller, the client for a valid key (Forbidden for an
    unknown or revoked one, rather than silently the public view)."""
    return client_for(session, raw) if raw else None


# -- mapping ----------------------------------------------------------------------------------


def service(c: dict[str, Any]) -> dict[str, Any]:
    """A category as a GeoReport service."""
    hours = c["close_minutes"] / 60
    return {
        "service_code": c["code"],
        "service_name": c["label"],
        "description": f"派遣时限 {c['dispatch_minutes']} 分钟，结案时限 {hours:g} 小时",
        "metadata": False,
        "type": "realtime",
        "keywords": c["urgency"],
        "group": c["handling_unit"] or "网格",
    }


def _visible_categories(session: Session, client: Client | None) -> list[dict[str, Any]]:
    # Anonymous callers see the public categories only; a key holder may submit to any.
    return [c for c in svc.categories(session) if client is not None or c["public"]]


def services(session: Session, client: Client | None = None) -> list[dict[str, Any]]:
    """Every active category as a service (only the public ones to anonymous callers)."""
    return [service(c) for c in _visible_categories(session, client)]


def service_definition(session: Session, code: str, client: Client | None = None) -> dict[str, Any]:
    """The definition of one service: ours ask for no extra attributes."""
    found = [c for c in _visible_categories(session, client) if c["code"] == code]
    if not found:
        raise NotFound(f"no service with code {code!r}")
    return {"service_code": code, "attributes": []}


def _status_notes(d: dict[str, Any]) -> tuple[str, str]:
    """(generated status notes: state, queue, place code, overdue; the place code)."""
    where = d["handling_cell_code"] or d["community_code"] or d["street_code"] or ""
    notes = (
        f"{INCIDENT_STATUSES[d['status']]} ({d['status']}); {INCIDENT_QUEUES[d['queue']]} {where}"
    )
    if d["overdue"]:
        notes += "; 超期 (overdue)"
    return notes, where


def _georeport(d: dict[str, Any], **private: Any) -> dict[str, Any]:
    """The GeoReport fields every view has (codes, states, dates, the cell), and `private`:
    the fields only a partner in scope reads in full (blank in the public view)."""
    notes, where = _status_notes(d)
    return {
        "service_request_id": str(d["id"]),
        "status": "closed" if d["status"] == "closed" else "open",
        "status_notes": notes.strip(),
        "service_name": d["category_label"],
        "service_code": d["category"],
        "agency_responsible": d["handling_unit"] or (f"网格 {where}" if where else ""),
        "requested_datetime": d["reported_at"],
        "updated_datetime": d["updated_at"] or d["reported_at"],
        "expected_datetime": d["close_due_at"] or "",
        "address_id": "",
        "zipcode": "",
        "media_url": "",
        "grid_code": d["cell_code"] or "",
        **private,
    }


def public_request(d: dict[str, Any]) -> dict[str, Any]:
    """A case as the public sees it (a row of repo.public_incident_list): codes, states, dates,
    the coarse point; the only prose is the category's public description."""
    return _georeport(
        d,
        description="",
        service_notice=d["category_description"] or "",
        address="",
        lat=d["lat"] if d["lat"] is not None else "",
        long=d["lon"] if d["lon"] is not None else "",
    )


def service_request(d: dict[str, Any]) -> dict[str, Any]:
    """An incident (as read by the repository) as a GeoReport service request, in full (for a
    partner in scope); the fine state goes into status_notes and the cell code into the
    grid_code extension."""
    return _georeport(
        d,
        description=d["description"] or "",
        service_notice="",
        address=d["address"] or "",
        lat=d["lat"],
        long=d["lon"],
    )


def requests(
    session: Session,
    *,
    now: datetime,
    ids: tuple[int, ...] = (),
    codes: tuple[str, ...] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    status: tuple[str, ...] = (),
    limit: int = 1000,
    client: Client | None = None,
) -> list[dict[str, Any]]:
    """Service requests by the standard filters: ids override the others; without dates the
    most recent 90 days; status is open and/or closed. In full for the cases in the client's
    scope, the public view of the public ones otherwise."""
    if ids:
        f = repo.IncidentFilter(ids=ids)
    else:
        if start is not None and end is not None and end < start:
            raise InvalidInput("end_date lies before start_date")
        if start is None and end is None:
            start = now - timedelta(days=90)
        statuses: tuple[str, ...] = ()
        for s in status:
            if s not in ("open", "closed"):
                raise InvalidInput(f"status must be open or closed, not {s!r}")
        if set(status) == {"closed"}:
            statuses = ("closed",)
        elif set(status) == {"open"}:
            statuses = tuple(k for k in INCIDENT_STATUSES if k != "closed")
        f = repo.IncidentFilter(
            category=codes, reported_from=start, reported_to=end, status=statuses
        )
    return _read(session, f, now=now, limit=limit, client=client)


def _read(
    session: Session, f: repo.IncidentFilter, *, now: datetime, limit: int, client: Client | None
) -> list[dict[str, Any]]:
    found: dict[int, tuple[tuple[str, int], dict[str, Any]]] = {}
    for r in repo.public_incident_list(session, f, now=now, limit=limit):
        found[r["id"]] = ((r["reported_at"], r["id"]), public_request(r))
    if client is not None and client.principal is not None:
        rows, _ = repo.incident_list(session, client.principal, f, now=now, limit=limit, offset=0)
        for r in rows:  # in scope: the full record replaces the public view
            found[r["id"]] = ((r["reported_at"], r["id"]), service_request(r))
    ordered = sorted(found.values(), key=lambda kv: (datetime.fromisoformat(kv[0][0]), kv[0][1]))
    return [record for _, record in reversed(ordered)][:limit]


#: Longest value of each GeoReport parameter (the limits of IncidentIn); others: MAX_CODE.
PARAM_LIMITS: dict[str, int] = {
    "description": MAX_TEXT,
    "address_string": MAX_ADDRESS,
    "media_url": MAX_ADDRESS,
    "email": MAX_NAME,
    "first_name": 31,  # 姓 + 名 together fit the 64 of reporter_name
    "last_name": 31,
    "phone": 32,
}


def check_params(params: dict[str, str]) -> None:
    """Refuse a GeoReport parameter longer than its limit (before the key is even checked)."""
    for key, value in params.items():
        limit = PARAM_LIMITS.get(key, MAX_CODE)
        if len(key) > MAX_CODE or len(value) > limit:
            raise InvalidInput(
                f"{key[:MAX_CODE]} is {len(value)} characters long; the limit is {limit}"
            )


def submit(
    session: Session, params: dict[str, Any], *, client: str, now: datetime
) -> dict[str, Any]:
    """POST requests: file an incident from a GeoReport submission; returns the request id and
    a token (either finds the request later)."""
    code = params.get("service_code")
    if not code:
        raise InvalidInput("service_code is required")
    if params.get("lat") in (None, "") or params.get("long") in (None, ""):
        raise InvalidInput("lat and long are required (address_string alone cannot be routed)")
    try:
        lat, lon = float(params["lat"]), float(params["long"])
    except (TypeError, ValueError) as exc:
        raise InvalidInput("lat and long must be numbers (WGS84 degrees)") from exc
    name = " ".join(p for p in (params.get("last_name"), params.get("first_name")) if p) or None
    token = secrets.token_urlsafe(12)
    extra = {
        k: params[k]
        for k in ("device_id", "account_id", "email", "media_url", "jurisdiction_id")
        if params.get(k)
    }
    detail = svc.report(
        session,
        svc.NewIncident(
            lon=lon,
            lat=lat,
            category=code,
            description=params.get("description"),
            address=params.get("address_string"),
            reporter_kind="resident" if name else "public",
            reporter_name=name,
            reporter_phone=params.get("phone"),
            extra=extra,
        ),
        actor=svc.Actor(f"open311:{client}"),
        now=now,
        source="open311",
        open311_token=token,
    )
    return {
        "service_request_id": str(detail["id"]),
        "token": token,
        "service_notice": "",
        "account_id": params.get("account_id") or "",
    }


def token(session: Session, value: str) -> dict[str, Any]:
    """tokens/{token}: the request id a submission token stands for."""
    from gridsvc.models import Incident

    found = session.scalar(select(Incident.id).where(Incident.open311_token == value))
    if found is None:
        raise NotFound(f"no service request with token {value!r}")
    return {"service_request_id": str(found), "token": value}


def request(
    session: Session, request_id: str, *, now: datetime, client: Client | None = None
) -> dict[str, Any]:
    """requests/{id}: one service request (in full in the client's scope, else the public view;
    a case of a non-public category is not found)."""
    if not request_id.isdigit() or int(request_id) >= 2**31:
        raise NotFound(f"no service request {request_id!r}")
    found = _read(
        session, repo.IncidentFilter(ids=(int(request_id),)), now=now, limit=1, client=client
    )
    if not found:
        raise NotFound(f"no service request {request_id!r}")
    return found[0]
