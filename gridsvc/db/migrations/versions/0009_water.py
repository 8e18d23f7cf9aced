"""water: rivers, lakes and canals (polygons) that bound blocks in proposed partitions

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the water table (GiST-indexed polygons, keyed by source + source id)."""
    op.create_geospatial_table(
        "water",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "properties",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_water")),
        sa.UniqueConstraint("source", "source_id", name="uq_water_source"),
    )
    op.create_geospatial_index(
        "ix_water_geom", "water", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )


def downgrade() -> None:
    """Drop the water table."""
    op.drop_geospatial_index(
        "ix_water_geom", table_name="water", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("water")
