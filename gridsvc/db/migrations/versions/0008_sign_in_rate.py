"""auth: the sign-in rate limit per client address, shared by every worker process

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the sign_in_rate table (one row per client address: its current minute)."""
    op.create_table(
        "sign_in_rate",
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("client", name="pk_sign_in_rate"),
    )
    op.create_index("ix_sign_in_rate_window_start", "sign_in_rate", ["window_start"])


def downgrade() -> None:
    """Back to a limit kept in each process."""
    op.drop_index("ix_sign_in_rate_window_start", table_name="sign_in_rate")
    op.drop_table("sign_in_rate")
