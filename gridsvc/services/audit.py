"""The audit log: who did a write and why, and the staff's view of it.

A database trigger logs every write to the governance tables (migration 0005). The service
only tells the database who is acting (`set_actor`) and why (`set_reason`) — transaction-local
settings the trigger reads, sent with a transaction's first write (gridsvc.db.actor) — marks bulk loads (`bulk`) that are logged once as a summary
(`record`), and lists events for staff within their scope (`events`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from gridsvc.auth.policy import require
from gridsvc.auth.principal import Principal
from gridsvc.db import actor as db_actor
from gridsvc.models import AuditEvent


def set_actor(session: Session, actor: str) -> None:
    """Name who is acting for the rest of the session (a user name, or cli:<os user>); sent to
    the database with the first write of each transaction (gridsvc.db.actor)."""
    db_actor.remember(session, actor=actor)


def set_reason(session: Session, reason: str | None) -> None:
    """Why the writes that follow are made (a redraw's reason); None clears it."""
    db_actor.remember(session, reason=reason or "")


@contextlib.contextmanager
def bulk(session: Session) -> Iterator[None]:
    """Inside: row-by-row logging is off for this transaction (imports, the demo loader);
    the caller logs one summary with :func:`record`."""
    session.execute(text("SELECT set_config('gridsvc.audit_bulk', 'on', true)"))
    try:
        yield
    finally:
        session.execute(text("SELECT set_config('gridsvc.audit_bulk', '', true)"))


def record(
    session: Session,
    action: str,
    table_name: str,
    *,
    after: dict[str, Any] | None = None,
    street_id: int | None = None,
    community_id: int | None = None,
    before: dict[str, Any] | None = None,
    row_id: int | None = None,
    cell_id: int | None = None,
) -> None:
    """Log one event written by a service: a summary (import.buildings with its counts) or a
    change of a bulk table's row (a household's flags, with before and after)."""
    session.execute(
        insert(AuditEvent).values(
            actor=db_actor.actor(session) or "system",
            action=action,
            table_name=table_name,
            street_id=street_id,
            community_id=community_id,
            cell_id=cell_id,
            row_id=row_id,
            reason=db_actor.reason(session) or None,
            before=before,
            after=after,
        )
    )


def events(
    session: Session,
    principal: Principal,
    *,
    table_name: str | None = None,
    row_id: int | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """Audit events in the principal's scope, newest first, and how many match.

    Street staff see their street's events, community staff their community's; events not
    tied to any area (users, categories, keys) are for admins only."""
    require(principal, "audit.read")
    conditions = []
    if not principal.is_admin:
        if principal.street_id is not None:
            conditions.append(AuditEvent.street_id == principal.street_id)
        else:
            conditions.append(AuditEvent.community_id == principal.community_id)
    if table_name:
        conditions.append(AuditEvent.table_name == table_name)
    if row_id is not None:
        conditions.append(AuditEvent.row_id == row_id)
    if actor:
        conditions.append(AuditEvent.actor == actor)
    if since:
        conditions.append(AuditEvent.at >= since)
    if until:
        conditions.append(AuditEvent.at < until)
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
    rows = session.scalars(
        select(AuditEvent)
        .where(*conditions)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        {
            "id": r.id,
            "at": r.at,
            "actor": r.actor,
            "action": r.action,
            "table": r.table_name,
            "row_id": r.row_id,
            "street_id": r.street_id,
            "community_id": r.community_id,
            "cell_id": r.cell_id,
            "reason": r.reason,
            "before": r.before,
            "after": r.after,
        }
        for r in rows
    ], total
