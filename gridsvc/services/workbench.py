"""The 格长's workbench: today's 待办, recent 走访, the task list and one step on a case.

Framework-free, like every service: the web pages (gridsvc.api.workbench) only parse the form
and call these. What a user may do on a case comes from the workflow itself
(:data:`gridsvc.services.incidents.TRANSITIONS` through ``allowed_actions``), never from here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsvc.auth import policy
from gridsvc.auth.masking import mask_visit
from gridsvc.auth.principal import Principal
from gridsvc.domain import INCIDENT_ACTIONS, INCIDENT_STATUSES
from gridsvc.errors import Conflict, InvalidInput, TooLarge
from gridsvc.models import Cell, IncidentPhoto
from gridsvc.repositories import incidents as incident_repo
from gridsvc.services import incidents, people
from gridsvc.settings import get_settings

#: How many 待办 and visits the workbench shows (the task list pages through all of them).
TODO_SHOWN = 10
VISITS_SHOWN = 5


@dataclass(frozen=True)
class Step:
    """One action the user may take on a case now, as a button."""

    action: str
    label: str
    target_label: str
    note_required: bool


def workbench(session: Session, principal: Principal, now: datetime) -> dict[str, Any]:
    """The workbench of a user: the cases waiting for them (overdue first, with the deadline),
    how many are overdue, the latest visits of their cell and the cell itself."""
    waiting = incidents.waiting_filter(principal)
    todo: list[dict[str, Any]] = []
    todo_total = overdue_total = 0
    if waiting is not None:
        todo, todo_total = incident_repo.incident_list(
            session, principal, waiting, now=now, limit=TODO_SHOWN, offset=0, by_due=True
        )
        overdue = replace(waiting, overdue=True)
        _, overdue_total = incident_repo.incident_list(
            session, principal, overdue, now=now, limit=0, offset=0
        )
    cell = None
    visits: list[dict[str, Any]] = []
    if principal.cell_id is not None:
        row = session.execute(
            select(Cell.code, Cell.name).where(Cell.id == principal.cell_id)
        ).one_or_none()
        cell = {"code": row.code, "name": row.name} if row else None
        items, _ = people.visits_of_cell(session, principal.cell_id, limit=VISITS_SHOWN, offset=0)
        visits = [mask_visit(principal, v) for v in items]
    return {
        "todo": todo,
        "todo_total": todo_total,
        "overdue_total": overdue_total,
        "cell": cell,
        "visits": visits,
    }


def tasks(
    session: Session,
    principal: Principal,
    now: datetime,
    *,
    waiting_only: bool,
    status: str | None,
    category: str | None,
    overdue: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The user's cases (all in scope, or only those waiting for them), filtered by 状态,
    类别 and 超期, overdue first then by deadline; (page of cases, number matched)."""
    if status is not None and status not in INCIDENT_STATUSES:
        raise InvalidInput(f"未知的状态 {status!r}")
    base = incident_repo.IncidentFilter()
    if waiting_only:
        waiting = incidents.waiting_filter(principal)
        if waiting is None:
            return [], 0
        base = waiting
    if category is not None:
        incidents.category(session, category)  # an unknown category is a clear 422
    f = replace(
        base,
        status=_narrow(base.status, status),
        category=(category,) if category else (),
        overdue=overdue,
    )
    if status is not None and not f.status:
        return [], 0  # a state that never waits for this user
    return incident_repo.incident_list(
        session, principal, f, now=now, limit=limit, offset=offset, by_due=True
    )


def _narrow(allowed: tuple[str, ...], wanted: str | None) -> tuple[str, ...]:
    if wanted is None:
        return allowed
    return (wanted,) if not allowed or wanted in allowed else ()


def case(session: Session, principal: Principal, incident_id: int, now: datetime) -> dict[str, Any]:
    """One case with its events, photos and the steps the user may take now (as buttons)."""
    detail = incidents.get_incident(session, principal, incident_id, now)
    detail["steps"] = [
        Step(
            action,
            INCIDENT_ACTIONS[action],
            INCIDENT_STATUSES[incidents.TRANSITIONS[action].target],
            incidents.TRANSITIONS[action].note_required,
        )
        for action in detail["allowed_actions"]
    ]
    detail["may_add_photo"] = policy.may(principal, "incident.report")
    detail["may_confirm_cell"] = incidents.may_confirm_cell(session, principal, incident_id)
    return detail


def _check_photos(session: Session, incident_id: int | None, photos: list[bytes]) -> None:
    """Refuse (before anything is written) a photo too large, not an image, or one too many."""
    cfg = get_settings().incidents
    for data in photos:
        if len(data) > cfg.photo_max_bytes:
            raise TooLarge(f"每张照片不超过 {cfg.photo_max_bytes // (1024 * 1024)} MB")
        incidents.sniff_image(data)
    have = 0
    if photos and incident_id is not None:
        have = (
            session.scalar(select(func.count()).where(IncidentPhoto.incident_id == incident_id))
            or 0
        )
    if have + len(photos) > cfg.photos_per_incident:
        raise Conflict(f"每个事件最多 {cfg.photos_per_incident} 张照片（已有 {have} 张）")


def report_here(
    session: Session,
    principal: Principal,
    new: incidents.NewIncident,
    *,
    photos: list[bytes],
    now: datetime,
) -> dict[str, Any]:
    """上报事件 from the map or the phone's position: filed and routed by the intake service
    (as the API files it), then its photos; a bad photo is refused before the case exists."""
    policy.require(principal, "incident.report")
    _check_photos(session, None, photos)
    detail = incidents.report(session, new, actor=incidents.Actor.of(principal), now=now)
    for data in photos:
        incidents.add_photo(session, principal, detail["id"], data)
    return detail


def take_step(
    session: Session,
    principal: Principal,
    incident_id: int,
    *,
    action: str | None,
    note: str | None,
    expected_version: int,
    photos: list[bytes],
    now: datetime,
) -> dict[str, Any]:
    """One step on a case from the case page: the workflow action (if one is chosen) with its
    note, then the photos taken. The photos are checked before anything is written, so a bad
    photo changes nothing; a case changed since `expected_version` is a Conflict."""
    _check_photos(session, incident_id, photos)
    if not action and not photos:
        raise InvalidInput("请选择一个操作，或拍摄/选择照片后再提交。")
    rule = incidents.TRANSITIONS.get(action or "")
    if rule is not None and rule.note_required and not (note or "").strip():
        raise InvalidInput(f"「{INCIDENT_ACTIONS[rule.action]}」需要在说明中写明原因。")
    if action:
        detail = incidents.transition(
            session,
            principal,
            incident_id,
            action,
            now=now,
            note=note,
            expected_version=expected_version,
        )
    else:
        detail = incidents.get_incident(session, principal, incident_id, now)
        if detail["version"] != expected_version:
            raise Conflict(
                f"incident #{incident_id} changed since version {expected_version}",
                version=detail["version"],
                status_now=detail["status"],
            )
    for data in photos:
        incidents.add_photo(session, principal, incident_id, data)
    return detail
