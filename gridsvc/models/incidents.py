"""事件 incidents reported at a point, attributed to the cell version valid at report time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from gridsvc.db.base import Base
from gridsvc.domain import INCIDENT_CATEGORIES, INCIDENT_STATUSES, REPORTER_KINDS
from gridsvc.models._types import one_of, point


class Incident(Base):
    """An incident (事件 / 社情民意 / 矛盾纠纷) with its workflow state and times."""

    __tablename__ = "incident"
    __table_args__ = (
        Index("ix_incident_location", "location", postgresql_using="gist"),
        CheckConstraint(one_of("status", tuple(INCIDENT_STATUSES)), name="status_known"),
        CheckConstraint(one_of("category", tuple(INCIDENT_CATEGORIES)), name="category_known"),
        CheckConstraint(one_of("reporter_kind", tuple(REPORTER_KINDS)), name="reporter_known"),
        CheckConstraint(
            "closed_at IS NULL OR closed_at >= reported_at", name="closed_after_report"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    location = mapped_column(point(), nullable=False)
    address: Mapped[str | None]
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None]
    status: Mapped[str] = mapped_column(String(16), default="filed", server_default="filed")
    reporter_kind: Mapped[str] = mapped_column(String(16), default="resident")
    reported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
