"""Sign-in users: a role and a scope (a street, a community or a cell)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from gridsvc.db.base import Base
from gridsvc.domain import USER_ROLES
from gridsvc.models._types import created_at, one_of

_SCOPE_RULE = (
    "(role = 'admin' AND num_nonnulls(street_id, community_id, cell_id) = 0) OR "
    "(role = 'street_staff' AND street_id IS NOT NULL AND num_nonnulls(community_id, cell_id) = 0) OR "
    "(role = 'community_staff' AND community_id IS NOT NULL "
    "AND num_nonnulls(street_id, cell_id) = 0) OR "
    "(role IN ('leader', 'grid_worker') AND cell_id IS NOT NULL "
    "AND num_nonnulls(street_id, community_id) = 0) OR "
    "(role = 'viewer' AND num_nonnulls(street_id, community_id, cell_id) = 1)"
)


class User(Base):
    """A person who signs in; what they may see is limited to their scope."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(one_of("role", tuple(USER_ROLES)), name="role_known"),
        CheckConstraint(_SCOPE_RULE, name="scope_matches_role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str]
    full_name: Mapped[str | None]
    role: Mapped[str] = mapped_column(String(24))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("street.id", ondelete="CASCADE"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    cell_id: Mapped[int | None] = mapped_column(ForeignKey("cell.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    is_active: Mapped[bool] = mapped_column(default=True, server_default="true")
    #: Named in every access token; bumped on logout, password change, disabling or deleting
    #: the user, so every token issued before dies.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = created_at()


class SignInRate(Base):
    """Sign-in attempts from one client address in its current one-minute window.

    In the database, not in a process, so the limit holds for the whole service however many
    worker processes answer (each would otherwise allow the full limit)."""

    __tablename__ = "sign_in_rate"

    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(default=1, server_default="1")


class SignInBackoff(Base):
    """Failed sign-ins of one user name from one client address, and until when it must wait.

    Kept per (name, address), not per account, so nobody can lock someone else out from
    another address; kept in the database so the delay holds across worker processes."""

    __tablename__ = "sign_in_backoff"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0, server_default="0")
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
