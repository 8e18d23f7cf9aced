"""The signed-in user as every layer sees them, and where a target lies."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Place:
    """Where a target lies in the hierarchy (any of the ids may be unknown)."""

    street_id: int | None = None
    community_id: int | None = None
    cell_id: int | None = None


@dataclass(frozen=True)
class Principal:
    """The signed-in user, as the services need it."""

    id: int
    username: str
    role: str
    street_id: int | None = None
    community_id: int | None = None
    cell_id: int | None = None
    #: The community of a cell-scoped user (filled at sign-in, for community-level reads).
    cell_community_id: int | None = None

    @property
    def is_admin(self) -> bool:
        """True for the admin role (no scope limit)."""
        return self.role == "admin"

    @property
    def scope_label(self) -> str:
        """A short description of the scope for messages."""
        if self.is_admin:
            return "all areas"
        if self.street_id:
            return f"street #{self.street_id}"
        if self.community_id:
            return f"community #{self.community_id}"
        if self.cell_id is None:
            return "no cell (you hold no active 格长 or 网格员 role)"
        return f"cell #{self.cell_id}"
