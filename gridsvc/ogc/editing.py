"""OGC API – Features Part 4 for the cells collection: every write is a redraw.

A PUT or PATCH of a cell's geometry is the editor's ``reshape`` (neighbours trimmed), a POST
is ``create`` over a gap — validated, versioned, audited and committed by
:mod:`gridsvc.services.redraw`, which also refuses what would break the coverage. The reason
the redraw service requires comes from the feature's ``reason`` property or the ``reason``
query parameter. Optimistic concurrency uses the redraw's own ETag: the revision of the cell's
community (any committed redraw there changes it), sent back in ``If-Match``.

Removing a cell is not offered: it would leave a gap (merge it into a neighbour instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsvc.auth.policy import may, require
from gridsvc.auth.principal import Principal
from gridsvc.errors import InvalidInput
from gridsvc.models import Community
from gridsvc.repositories import areas as area_repo
from gridsvc.repositories import cells as cell_repo
from gridsvc.services import redraw


@dataclass(frozen=True)
class Edited:
    """A committed edit: the cell's code, the community's new ETag, the redraw's impact."""

    code: str
    etag: str
    impact: dict[str, Any]


def may_edit(principal: Principal) -> bool:
    """True when the principal's role may change cells (``cells.edit``)."""
    return may(principal, "cells.edit")


def _community_of(session: Session, code: str, principal: Principal, action: str) -> Any:
    cell = cell_repo.get_cell(session, code)
    require(principal, action, cell.place, f"cell {code}")
    name = session.scalar(select(Community.code).where(Community.id == cell.community_id))
    return area_repo.get_community(session, str(name))


def cell_etag(session: Session, principal: Principal, code: str) -> str:
    """The ETag to send back in If-Match when editing this cell."""
    community = _community_of(session, code, principal, "area.read")
    return _etag(session, community)


def _etag(session: Session, community: Any) -> str:
    revision = session.scalar(select(Community.revision).where(Community.id == community.id))
    return redraw.etag_for(community.code, int(revision or 0))


def _geometry(feature: Any) -> dict[str, Any]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise InvalidInput("请求体须为一个 GeoJSON Feature")
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict):
        raise InvalidInput("要素缺少 geometry（网格边界）")
    return geometry


def _reason(feature: dict[str, Any], reason: str | None) -> str:
    given = reason or (feature.get("properties") or {}).get("reason")
    if not isinstance(given, str) or not given.strip():
        raise InvalidInput("每次修改网格都须说明原因：属性 reason 或查询参数 reason")
    return given


def _commit(
    session: Session,
    principal: Principal,
    community: Any,
    request: dict[str, Any],
    if_match: str,
) -> dict[str, Any]:
    redraw.lock_revision(session, community, if_match)
    plan = redraw.plan_from_request(session, community, request)
    outcome = redraw.run(
        session,
        community,
        plan,
        request=request,
        reason=request["reason"],
        user=principal.username,
        commit=True,
        if_match=if_match,
    )
    return outcome.impact


def replace_geometry(
    session: Session,
    principal: Principal,
    code: str,
    feature: dict[str, Any],
    *,
    reason: str | None,
    if_match: str | None,
    partial: bool,
) -> Edited:
    """PUT/PATCH: the cell gets the feature's geometry (a reshape); other properties are not
    editable here (a PUT may repeat them unchanged; a PATCH may only send the geometry)."""
    community = _community_of(session, code, principal, "cells.edit")
    geometry = _geometry(feature)
    properties = {k: v for k, v in (feature.get("properties") or {}).items() if k != "reason"}
    if partial and properties:
        raise InvalidInput(f"只能修改网格边界；不能修改属性 {'、'.join(sorted(properties))}")
    request = {
        "op": "reshape",
        "cell": code,
        "geometry": geometry,
        "trim_neighbours": True,
        "reason": _reason(feature, reason),
    }
    impact = _commit(session, principal, community, request, if_match or "")
    return Edited(code, _etag(session, community), impact)


def create(
    session: Session, principal: Principal, feature: dict[str, Any], *, reason: str | None
) -> Edited:
    """POST: a new cell over a gap of the community named in ``community_code``."""
    geometry = _geometry(feature)
    properties = feature.get("properties") or {}
    code = properties.get("community_code")
    if not isinstance(code, str) or not code:
        raise InvalidInput("新建网格须在属性 community_code 中给出所属社区")
    community = area_repo.get_community(session, code)
    require(principal, "cells.edit", community.place, f"community {code}")
    name = properties.get("name")
    request = {
        "op": "create",
        "geometry": geometry,
        "name": name if isinstance(name, str) and name else None,
        "reason": _reason(feature, reason),
    }
    # A new cell conflicts with no one's copy of a feature: it is checked against the
    # community as it is now (the redraw still locks it and validates the result).
    current = redraw.lock_revision(session, community, None, commit=False)
    impact = _commit(
        session, principal, community, request, redraw.etag_for(community.code, current)
    )
    created = impact["cells_created"]
    if not created:
        raise InvalidInput("没有新建网格")
    return Edited(created[0], _etag(session, community), impact)
