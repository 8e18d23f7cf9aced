"""事件 incidents reported at a point, attributed to the cell version valid at report time;
their categories (data, with deadlines), workflow events, photos and Open311 API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, deferred, mapped_column

from gridsvc.db.base import Base
from gridsvc.domain import (
    INCIDENT_ACTIONS,
    INCIDENT_QUEUES,
    INCIDENT_STATUSES,
    INCIDENT_URGENCIES,
    REPORTER_KINDS,
)
from gridsvc.models._types import created_at, one_of, point


class IncidentCategory(Base):
    """A category of incident (data, not code): label, deadlines, urgency, handling unit."""

    __tablename__ = "incident_category"
    __table_args__ = (
        CheckConstraint(one_of("urgency", tuple(INCIDENT_URGENCIES)), name="urgency_known"),
        CheckConstraint("dispatch_minutes > 0 AND close_minutes > 0", name="deadlines_positive"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None]
    #: Minutes from report to dispatch (派遣时限) and to closure (结案时限).
    dispatch_minutes: Mapped[int]
    close_minutes: Mapped[int]
    urgency: Mapped[str] = mapped_column(String(16), default="normal", server_default="normal")
    #: The unit that handles this category (e.g. 派出所); NULL: the cell's own team.
    handling_unit: Mapped[str | None] = mapped_column(String(64))
    sort_order: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    #: Whether the public Open311 feed shows this category's cases at all (coarsened, without
    #: free text: gridsvc.services.open311). Off unless staff turn it on: 矛盾纠纷, 社情民意
    #: and cases about a household or person stay private. ``description`` is public text too.
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")


class Incident(Base):
    """An incident (事件 / 社情民意 / 矛盾纠纷) with its workflow state, queue and deadlines."""

    __tablename__ = "incident"
    __table_args__ = (
        Index("ix_incident_location", "location", postgresql_using="gist"),
        Index("ix_incident_street_reported", "street_id", "reported_at"),
        CheckConstraint(one_of("status", tuple(INCIDENT_STATUSES)), name="status_known"),
        CheckConstraint(one_of("reporter_kind", tuple(REPORTER_KINDS)), name="reporter_known"),
        CheckConstraint(one_of("queue", tuple(INCIDENT_QUEUES)), name="queue_known"),
        CheckConstraint(
            "closed_at IS NULL OR closed_at >= reported_at", name="closed_after_report"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    location = mapped_column(point(), nullable=False)
    address: Mapped[str | None]
    category: Mapped[str] = mapped_column(
        String(32), ForeignKey("incident_category.code", ondelete="RESTRICT", onupdate="CASCADE")
    )
    description: Mapped[str | None]
    status: Mapped[str] = mapped_column(String(16), default="filed", server_default="filed")
    reporter_kind: Mapped[str] = mapped_column(String(16), default="resident")
    reporter_name: Mapped[str | None] = mapped_column(String(64))
    reporter_phone: Mapped[str | None] = mapped_column(String(32))
    reporter_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    reported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Deadlines from the category at report time (filled by the database when not given), so
    #: overdue cases are a plain comparison: ``closed_at IS NULL AND close_due_at < :now``.
    dispatch_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    cell_id: Mapped[int | None] = mapped_column(
        ForeignKey("cell.id", ondelete="SET NULL"), index=True
    )
    #: The boundary version the point fell in when reported: history survives redraws.
    cell_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("cell_version.id", ondelete="SET NULL"), index=True
    )
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="SET NULL"), index=True
    )
    street_id: Mapped[int | None] = mapped_column(ForeignKey("street.id", ondelete="SET NULL"))
    #: Where the case waits: its cell (handling_cell_id: the cell or, after 上报, a parent
    #: 片区 cell), the community queue or the street queue.
    queue: Mapped[str] = mapped_column(String(16), default="cell", server_default="cell")
    handling_cell_id: Mapped[int | None] = mapped_column(
        ForeignKey("cell.id", ondelete="SET NULL"), index=True
    )
    #: The person the case is assigned to (the 格长 of the handling cell) and the unit.
    assignee_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL")
    )
    handling_unit: Mapped[str | None] = mapped_column(String(64))
    #: Routing flags: the point lies near a cell boundary (confirm; a neighbour is offered),
    #: and a possible duplicate (same category, near, recent).
    needs_confirmation: Mapped[bool] = mapped_column(default=False, server_default="false")
    suggested_cell_id: Mapped[int | None] = mapped_column(
        ForeignKey("cell.id", ondelete="SET NULL")
    )
    boundary_distance_m: Mapped[float | None] = mapped_column(Float)
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("incident.id", ondelete="SET NULL")
    )
    #: Where the report came from (api, open311, import, demo) and its Open311 token.
    source: Mapped[str | None] = mapped_column(String(16))
    open311_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: Bumped by every transition: the ETag / If-Match of the case.
    version: Mapped[int] = mapped_column(default=1, server_default="1")


class IncidentEvent(Base):
    """One workflow step of an incident: who, when, from which state to which, and a note."""

    __tablename__ = "incident_event"
    __table_args__ = (
        CheckConstraint(one_of("action", tuple(INCIDENT_ACTIONS)), name="action_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    #: Who acted, as shown (a username, ``open311:<key name>`` or ``cli``).
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    note: Mapped[str | None]
    #: What else changed (queue and handling cell on 上报, the cell on confirmation …).
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")


class IncidentPhoto(Base):
    """A photo of an incident, stored in the database (checked JPEG/PNG/WebP, size-limited)."""

    __tablename__ = "incident_photo"
    __table_args__ = (
        CheckConstraint(
            "media_type IN ('image/jpeg', 'image/png', 'image/webp')", name="media_type_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incident.id", ondelete="CASCADE"), index=True
    )
    media_type: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    uploaded_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at()


class Open311Key(Base):
    """An Open311 API key: only its SHA-256 is stored; revoked keys stay for the record.

    A partner's key may carry a scope (one street, community or cell): GETs with it return
    the full record of the cases in that scope. Without a scope it only submits."""

    __tablename__ = "open311_key"
    __table_args__ = (
        CheckConstraint("num_nonnulls(street_id, community_id, cell_id) <= 1", name="one_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The first characters of the key, to recognise it in lists.
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = created_at()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    street_id: Mapped[int | None] = mapped_column(
        ForeignKey("street.id", ondelete="SET NULL"), index=True
    )
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="SET NULL"), index=True
    )
    cell_id: Mapped[int | None] = mapped_column(
        ForeignKey("cell.id", ondelete="SET NULL"), index=True
    )
