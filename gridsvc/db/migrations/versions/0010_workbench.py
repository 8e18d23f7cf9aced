"""workbench: a 走访's follow-up (跟进事项) and idempotency keys of the workbench's writes

visit.follow_up holds what is to be done about what was heard (the note). idempotency_key
remembers the first answer to a report, a visit or a case step sent with an
``Idempotency-Key`` header, so a client retrying after a lost answer gets that answer again
instead of a second write (the base of the workbench's offline queue).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add visit.follow_up and the idempotency_key table."""
    op.add_column("visit", sa.Column("follow_up", sa.String(), nullable=True))
    op.create_table(
        "idempotency_key",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "key"),
    )
    op.create_index("ix_idempotency_key_created_at", "idempotency_key", ["created_at"])


def downgrade() -> None:
    """Drop the idempotency_key table and visit.follow_up."""
    op.drop_index("ix_idempotency_key_created_at", table_name="idempotency_key")
    op.drop_table("idempotency_key")
    op.drop_column("visit", "follow_up")
