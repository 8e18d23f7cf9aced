"""auth: revocable tokens (users.token_version) and sign-in back-off per (user name, address)

Replaces the per-account hard lock (failed_logins, locked_until), which anyone could trigger
for any account, by a growing delay per (user name, client address) kept in the database.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add app_user.token_version and the sign_in_backoff table; drop the hard lock."""
    op.add_column(
        "app_user",
        sa.Column("token_version", sa.Integer(), server_default="0", nullable=False),
    )
    op.drop_column("app_user", "failed_logins")
    op.drop_column("app_user", "locked_until")
    op.create_table(
        "sign_in_backoff",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("username", "client", name="pk_sign_in_backoff"),
    )
    op.create_index("ix_sign_in_backoff_updated_at", "sign_in_backoff", ["updated_at"])


def downgrade() -> None:
    """Back to the per-account lock."""
    op.drop_index("ix_sign_in_backoff_updated_at", table_name="sign_in_backoff")
    op.drop_table("sign_in_backoff")
    op.add_column(
        "app_user",
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "app_user",
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
    )
    op.drop_column("app_user", "token_version")
