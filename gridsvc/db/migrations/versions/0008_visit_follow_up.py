"""people: a 走访's follow-up (跟进事项), apart from what was heard (the note)

Revision ID: 0008_visit_follow_up
Revises: 0007
Create Date: 2026-12-03 09:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_visit_follow_up"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add visit.follow_up."""
    op.add_column("visit", sa.Column("follow_up", sa.String(), nullable=True))


def downgrade() -> None:
    """Drop visit.follow_up."""
    op.drop_column("visit", "follow_up")
