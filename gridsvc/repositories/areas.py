"""Queries on districts, streets, communities and estates."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsvc.auth.policy import scope_filter
from gridsvc.auth.principal import Place, Principal
from gridsvc.errors import NotFound
from gridsvc.models import Building, Cell, CellVersion, Community, Street
from gridsvc.repositories.geojson import feature, json_array


@dataclass(frozen=True)
class CommunityRef:
    """A community's identity and place."""

    id: int
    code: str
    name: str
    street_id: int

    @property
    def place(self) -> Place:
        """Where it lies, for scope checks."""
        return Place(street_id=self.street_id, community_id=self.id)


def get_community(session: Session, code: str) -> CommunityRef:
    """The community with this code, or NotFound."""
    row = session.execute(
        select(Community.id, Community.code, Community.name, Community.street_id).where(
            Community.code == code
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no community with code {code!r}")
    return CommunityRef(*row)


def community_features(session: Session, principal: Principal) -> tuple[str, int]:
    """JSON array of the communities in scope, with cell, building and household counts."""
    cells = (
        select(func.count())
        .select_from(Cell)
        .join(CellVersion, (CellVersion.cell_id == Cell.id) & CellVersion.valid_to.is_(None))
        .where(Cell.community_id == Community.id)
        .scalar_subquery()
    )
    buildings = select(func.count(), func.coalesce(func.sum(Building.households), 0)).where(
        Building.community_id == Community.id
    )
    stmt = (
        select(
            feature(
                Community.code,
                Community.geom,
                {
                    "code": Community.code,
                    "name": Community.name,
                    "street_code": Street.code,
                    "street_name": Street.name,
                    "cells": cells,
                    "buildings": buildings.with_only_columns(func.count()).scalar_subquery(),
                    "households": buildings.with_only_columns(
                        func.coalesce(func.sum(Building.households), 0)
                    ).scalar_subquery(),
                },
            )
        )
        .join(Street, Street.id == Community.street_id)
        .where(
            scope_filter(
                principal,
                cell_id=None,
                community_id=Community.id,
                street_id=Community.street_id,
            )
        )
        .order_by(Community.code)
    )
    return json_array(session, stmt)


@dataclass(frozen=True)
class StreetRef:
    """A street's identity and place."""

    id: int
    code: str
    name: str

    @property
    def place(self) -> Place:
        """Where it lies, for scope checks."""
        return Place(street_id=self.id)


def get_street(session: Session, code: str) -> StreetRef:
    """The street with this code, or NotFound."""
    row = session.execute(
        select(Street.id, Street.code, Street.name).where(Street.code == code)
    ).first()
    if row is None:
        raise NotFound(f"no street with code {code!r}")
    return StreetRef(*row)
