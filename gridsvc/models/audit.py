"""审计日志: every write to the governance tables, with who, when, why, before and after.

Rows are written by a database trigger (migration 0005), so no code path can forget them, and
the table is append-only: the database refuses UPDATE, DELETE and TRUNCATE.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridsvc.db.base import Base


class AuditEvent(Base):
    """One write: the table and row, the operation, the actor, the reason, before and after."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_street_at", "street_id", "at"),
        Index("ix_audit_event_community_at", "community_id", "at"),
        Index("ix_audit_event_table_row", "table_name", "row_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: Who: the signed-in user's name, "cli:<os user>" for the command line, or the database role.
    actor: Mapped[str] = mapped_column(String(96))
    #: insert, update, delete — or a summary action such as import.buildings.
    action: Mapped[str] = mapped_column(String(48))
    table_name: Mapped[str] = mapped_column(String(48))
    row_id: Mapped[int | None] = mapped_column(BigInteger)
    #: Where the row lies, for scoped queries (street staff see their street's events).
    street_id: Mapped[int | None]
    community_id: Mapped[int | None]
    cell_id: Mapped[int | None]
    reason: Mapped[str | None]
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
