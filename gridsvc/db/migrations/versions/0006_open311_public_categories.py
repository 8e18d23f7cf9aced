"""open311 public feed: which categories are public, and the scope of a partner's API key

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Public-space categories whose cases the anonymous Open311 feed shows (coarsened, no free
#: text). The others — 矛盾纠纷, 社情民意, 民生诉求, 流动人口, 治安隐患, 其他 — are about
#: households and persons, or may be, and stay private until staff decide otherwise.
PUBLIC_CATEGORIES = ("sanitation", "municipal", "safety")
_KEY_SCOPES = (("street_id", "street"), ("community_id", "community"), ("cell_id", "cell"))


def upgrade() -> None:
    """Apply this migration."""
    op.add_column(
        "incident_category",
        sa.Column("public", sa.Boolean(), server_default="false", nullable=False),
    )
    op.execute(
        sa.text("UPDATE incident_category SET public = true WHERE code = ANY(:codes)").bindparams(
            codes=list(PUBLIC_CATEGORIES)
        )
    )
    for column, table in _KEY_SCOPES:
        op.add_column("open311_key", sa.Column(column, sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f(f"fk_open311_key_{column}_{table}"),
            "open311_key",
            table,
            [column],
            ["id"],
            ondelete="SET NULL",
        )
        op.create_index(op.f(f"ix_open311_key_{column}"), "open311_key", [column], unique=False)
    op.create_check_constraint(
        op.f("ck_open311_key_one_scope"),
        "open311_key",
        "num_nonnulls(street_id, community_id, cell_id) <= 1",
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_constraint(op.f("ck_open311_key_one_scope"), "open311_key", type_="check")
    for column, table in reversed(_KEY_SCOPES):
        op.drop_index(op.f(f"ix_open311_key_{column}"), table_name="open311_key")
        op.drop_constraint(
            op.f(f"fk_open311_key_{column}_{table}"), "open311_key", type_="foreignkey"
        )
        op.drop_column("open311_key", column)
    op.drop_column("incident_category", "public")
