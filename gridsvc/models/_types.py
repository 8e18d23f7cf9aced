"""Column types shared by the models."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import DateTime, func
from sqlalchemy.orm import Mapped, mapped_column

#: Storage CRS of every geometry (DESIGN §4).
SRID = 4326


def multipolygon() -> Geometry:
    """A MultiPolygon column in EPSG:4326 (GiST index declared explicitly per table)."""
    return Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False)


def multilinestring() -> Geometry:
    """A MultiLineString column in EPSG:4326."""
    return Geometry("MULTILINESTRING", srid=SRID, spatial_index=False)


def point() -> Geometry:
    """A Point column in EPSG:4326."""
    return Geometry("POINT", srid=SRID, spatial_index=False)


def created_at() -> Mapped[datetime]:
    """A `created_at timestamptz default now()` column."""
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL CHECK text: column is one of the given values."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"
