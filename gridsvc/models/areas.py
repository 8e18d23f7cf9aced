"""Administrative areas: 区 district → 街道 street → 社区 community, and 小区 estates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridsvc.db.base import Base
from gridsvc.models._types import created_at, multilinestring, multipolygon


class District(Base):
    """区: a district, identified by its 6-digit administrative code."""

    __tablename__ = "district"
    __table_args__ = (Index("ix_district_geom", "geom", postgresql_using="gist"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str]
    geom = mapped_column(multipolygon(), nullable=True)
    created_at: Mapped[datetime] = created_at()


class Street(Base):
    """街道: a street office's area, inside one district."""

    __tablename__ = "street"
    __table_args__ = (Index("ix_street_geom", "geom", postgresql_using="gist"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str]
    district_id: Mapped[int] = mapped_column(
        ForeignKey("district.id", ondelete="RESTRICT"), index=True
    )
    geom = mapped_column(multipolygon(), nullable=True)
    created_at: Mapped[datetime] = created_at()


class Community(Base):
    """社区: a community, inside one street; its cells tile it."""

    __tablename__ = "community"
    __table_args__ = (
        Index("ix_community_geom", "geom", postgresql_using="gist"),
        CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="geom_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str]
    street_id: Mapped[int] = mapped_column(ForeignKey("street.id", ondelete="RESTRICT"), index=True)
    geom = mapped_column(multipolygon(), nullable=False)
    #: Bumped by every committed redraw of its cells: the ETag of optimistic concurrency.
    revision: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = created_at()


class Road(Base):
    """A road centre line (OSM highway): blocks for proposed partitions, context on maps."""

    __tablename__ = "road"
    __table_args__ = (
        Index("ix_road_geom", "geom", postgresql_using="gist"),
        UniqueConstraint("source", "source_id", name="uq_road_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None]
    highway: Mapped[str | None] = mapped_column(String(32))
    geom = mapped_column(multilinestring(), nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")


class Water(Base):
    """A water area (river, lake, canal: OSM natural=water, waterway=riverbank, or a layer
    given as water): it bounds blocks in proposed partitions, and no cell reaches across it."""

    __tablename__ = "water"
    __table_args__ = (
        Index("ix_water_geom", "geom", postgresql_using="gist"),
        UniqueConstraint("source", "source_id", name="uq_water_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None]
    geom = mapped_column(multipolygon(), nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")


class Estate(Base):
    """小区: a residential compound; kept whole by partitions where possible."""

    __tablename__ = "estate"
    __table_args__ = (Index("ix_estate_geom", "geom", postgresql_using="gist"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None]
    source: Mapped[str | None]
    source_id: Mapped[str | None]
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="SET NULL"), index=True
    )
    geom = mapped_column(multipolygon(), nullable=False)
    created_at: Mapped[datetime] = created_at()
