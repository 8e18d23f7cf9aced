"""Open311 GeoReport v2 support: API keys (stored hashed, revocable) and the mapping of our
incidents and categories onto GeoReport services and service requests.

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

from gridsvc.domain import (
    INCIDENT_QUEUES,
    INCIDENT_STATUSES,
    MAX_ADDRESS,
    MAX_CODE,
    MAX_NAME,
    MAX_TEXT,
)
from gridsvc.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridsvc.models import Open311Key
from gridsvc.repositories import incidents as repo
from gridsvc.services import incidents as svc

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


def create_key(session: Session, name: str) -> str:
    """Create a key for a client (one name per key) and return it; only its hash is kept."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInput("a key needs a name of 1-64 characters")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(Open311Key(name=name, key_hash=_hash(raw), prefix=raw[: len(KEY_PREFIX) + 4]))
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
    return KeyInfo(key.id, key.name, key.prefix, key.created_at, key.revoked_at)


def list_keys(session: Session) -> list[KeyInfo]:
    """Every key, revoked ones included."""
    keys = session.scalars(select(Open311Key).order_by(Open311Key.name)).all()
    return [KeyInfo(k.id, k.name, k.prefix, k.created_at, k.revoked_at) for k in keys]


def check_key(session: Session, raw: str | None) -> str:
    """The name of the client owning a valid, unrevoked key; Forbidden otherwise."""
    if not raw:
        raise Forbidden("api_key is required to submit a service request")
    key = session.scalar(select(Open311Key).where(Open311Key.key_hash == _hash(raw)))
    if key is None or key.revoked_at is not None:
        raise Forbidden("api_key is not valid (unknown or revoked)")
    return key.name


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


def services(session: Session) -> list[dict[str, Any]]:
    """Every active category as a service."""
    return [service(c) for c in svc.categories(session)]


def service_definition(session: Session, code: str) -> dict[str, Any]:
    """The definition of one service: ours ask for no extra attributes."""
    found = [c for c in svc.categories(session) if c["code"] == code]
    if not found:
        raise NotFound(f"no service with code {code!r}")
    return {"service_code": code, "attributes": []}


def service_request(d: dict[str, Any]) -> dict[str, Any]:
    """An incident (as read by the repository) as a GeoReport service request; the fine state
    goes into status_notes and the cell code into the grid_code extension."""
    where = d["handling_cell_code"] or d["community_code"] or d["street_code"] or ""
    notes = (
        f"{INCIDENT_STATUSES[d['status']]} ({d['status']}); {INCIDENT_QUEUES[d['queue']]} {where}"
    )
    if d["overdue"]:
        notes += "; 超期 (overdue)"
    return {
        "service_request_id": str(d["id"]),
        "status": "closed" if d["status"] == "closed" else "open",
        "status_notes": notes.strip(),
        "service_name": d["category_label"],
        "service_code": d["category"],
        "description": d["description"] or "",
        "agency_responsible": d["handling_unit"] or (f"网格 {where}" if where else ""),
        "service_notice": "",
        "requested_datetime": d["reported_at"],
        "updated_datetime": d["updated_at"] or d["reported_at"],
        "expected_datetime": d["close_due_at"] or "",
        "address": d["address"] or "",
        "address_id": "",
        "zipcode": "",
        "lat": d["lat"],
        "long": d["lon"],
        "media_url": "",
        "grid_code": d["cell_code"] or "",
    }


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
) -> list[dict[str, Any]]:
    """Service requests by the standard filters: ids override the others; without dates the
    most recent 90 days; status is open and/or closed."""
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
    rows, _ = repo.incident_list(session, None, f, now=now, limit=limit, offset=0)
    return [service_request(r) for r in rows]


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


def request(session: Session, request_id: str, *, now: datetime) -> dict[str, Any]:
    """requests/{id}: one service request."""
    if not request_id.isdigit() or int(request_id) >= 2**31:
        raise NotFound(f"no service request {request_id!r}")
    detail = repo.incident_detail(session, int(request_id), now)
    if detail is None:
        raise NotFound(f"no service request {request_id!r}")
    return service_request(detail)
