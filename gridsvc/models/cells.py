"""网格 grid cells: a stable identity (code) and versioned boundaries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridsvc.db.base import Base
from gridsvc.domain import CELL_KINDS, CHANGE_KINDS
from gridsvc.models._types import created_at, multipolygon, one_of


class Cell(Base):
    """A 网格: its code stays stable across reshapes; its boundary lives in CellVersion."""

    __tablename__ = "cell"
    __table_args__ = (
        CheckConstraint(one_of("kind", tuple(CELL_KINDS)), name="kind_known"),
        CheckConstraint("level BETWEEN 1 AND 4", name="level_1_to_4"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: District + street + community + sequence, numbered west→east then north→south.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str]
    kind: Mapped[str] = mapped_column(String(16), default="general", server_default="general")
    level: Mapped[int] = mapped_column(SmallInteger, default=4, server_default="4")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("cell.id", ondelete="SET NULL"))
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = created_at()
    #: Set when the cell stops existing (merged away or split); its versions remain.
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CellVersion(Base):
    """One boundary of a cell, valid from valid_from until valid_to (NULL: current)."""

    __tablename__ = "cell_version"
    __table_args__ = (
        UniqueConstraint("cell_id", "version", name="uq_cell_version_cell_version"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_range"),
        CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="geom_valid"),
        # At most one current boundary per cell.
        Index(
            "ux_cell_version_current",
            "cell_id",
            unique=True,
            postgresql_where=text("valid_to IS NULL"),
        ),
        Index("ix_cell_version_geom", "geom", postgresql_using="gist"),
        # Point → cell lookups and assignment only look at current boundaries.
        Index(
            "ix_cell_version_geom_current",
            "geom",
            postgresql_using="gist",
            postgresql_where=text("valid_to IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("cell.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    geom = mapped_column(multipolygon(), nullable=False)
    valid_from: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None]
    changed_by: Mapped[str | None] = mapped_column(String(64))
    #: The redraw that opened this version (NULL for imports and the initial partition).
    change_id: Mapped[int | None] = mapped_column(
        ForeignKey("cell_change.id", ondelete="SET NULL"), index=True
    )


class CellChange(Base):
    """An audited redraw: who, when, why, what was asked and what it did (append-only)."""

    __tablename__ = "cell_change"
    __table_args__ = (
        CheckConstraint(one_of("kind", tuple(CHANGE_KINDS)), name="kind_known"),
        CheckConstraint("length(trim(reason)) > 0", name="reason_required"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str]
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    #: The community revision this change produced (the ETag a later edit must present).
    revision: Mapped[int]
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    impact: Mapped[dict[str, Any]] = mapped_column(JSONB)


class CellLineage(Base):
    """Split and merge history: which cells a cell came from."""

    __tablename__ = "cell_lineage"

    parent_id: Mapped[int] = mapped_column(
        ForeignKey("cell.id", ondelete="CASCADE"), primary_key=True
    )
    child_id: Mapped[int] = mapped_column(
        ForeignKey("cell.id", ondelete="CASCADE"), primary_key=True
    )
    change_id: Mapped[int | None] = mapped_column(ForeignKey("cell_change.id", ondelete="SET NULL"))
