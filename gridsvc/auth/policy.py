"""The permission matrix in one place: which role may do which action, and the scope rule.

Every route checks its action here (:func:`require`): the role must be one of the action's
roles (admin always may) and, when the target's place is given, the place must lie in the
user's scope (:func:`allows`). The incident workflow adds a per-state
part — which role may take which step from which state — in
:data:`gridsvc.services.incidents.TRANSITIONS`; the ``incident.act`` action here is the union
of its roles (who may take *some* step).

What each role may *read* of personal data is an action too (``personal.read``): phones,
身份证号, exact addresses (unit, room, head of household) and household flags (低保, 残疾 …)
are masked for every other role, in the API, maps and exports (see
:mod:`gridsvc.auth.masking`).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, false, select, true
from sqlalchemy.orm import QueryableAttribute

from gridsvc.auth.principal import Place, Principal
from gridsvc.domain import USER_ROLES
from gridsvc.errors import Forbidden
from gridsvc.models import Community

_ALL = frozenset(USER_ROLES)
_STAFF = frozenset({"street_staff", "community_staff"})
_CELL_TEAM = frozenset({"leader", "grid_worker"})
_WORKERS = _STAFF | _CELL_TEAM  # everyone but viewers

#: Every action a route checks, with its Chinese label.
ACTIONS: dict[str, str] = {
    "area.read": "查看区域（社区、网格、楼栋、覆盖率、历史、核查、地图）",
    "households.read": "查看住户（个人信息按角色脱敏）",
    "people.read": "查看人员、任职、联系户、公益岗位、走访（个人信息按角色脱敏）",
    "personal.read": "查看未脱敏的个人信息（电话、身份证号、门牌、户主、低保/残疾等标记）",
    "export": "导出地图、表格、图层（住户图层需查看个人信息权限）",
    "cells.edit": "划分与调整网格（新建、重划、自动划格、边界编辑器）",
    "cells.import": "导入网格文件",
    "areas.import": "导入楼栋、小区、历史事件",
    "people.manage": "登记人员、任职、片区、辖区单位、志愿服务队、联系户、公益岗位、花名册导入",
    "duties.edit": "修改各级网格职责",
    "visits.record": "记录走访",
    "households.edit": "修改住户标记（低保、独居老人、残疾、特困、流动人口、出租房屋）",
    "incident.report": "上报事件、上传照片",
    "incident.route": "确认事件所属网格",
    "incident.act": "事件流转（派遣、处置、核查、结案、退回、上报、挂账；按状态见 TRANSITIONS）",
    "audit.read": "查看审计日志（本辖区的每一次写入：谁、何时、为何、前后对比）",
}

#: Which roles may do each action (admin always may; listed for completeness).
ROLES: dict[str, frozenset[str]] = {
    "area.read": _ALL,
    "households.read": _ALL,
    "people.read": _ALL,
    "personal.read": _WORKERS | {"admin"},
    "export": _ALL,
    "cells.edit": _STAFF | {"admin"},
    "cells.import": _STAFF | {"admin"},
    "areas.import": frozenset({"admin", "street_staff"}),
    "people.manage": _STAFF | {"admin"},
    "duties.edit": frozenset({"admin", "street_staff"}),
    "visits.record": _WORKERS | {"admin"},
    "households.edit": _WORKERS | {"admin"},
    "incident.report": _WORKERS | {"admin"},
    "incident.route": _WORKERS | {"admin"},
    "incident.act": _WORKERS | {"admin"},
    "audit.read": _STAFF | {"admin"},
}

#: The scope rule, as documented: a target is in scope when it lies in the user's street,
#: community or cell; a cell's team also reads the community-level views of their cell's
#: community (its cells, buildings, coverage) but never another cell's households or people.
SCOPE_RULE = (
    "admin: everything · street_staff: their street · community_staff: their community · "
    "leader/grid_worker: their cell (and read-only community-level views of its community) · "
    "viewer: their street, community or cell, with personal fields masked"
)


def may(principal: Principal, action: str) -> bool:
    """True when the principal's role may do the action (admin always may)."""
    if action not in ROLES:
        raise KeyError(f"unknown action {action!r}")
    return principal.is_admin or principal.role in ROLES[action]


def require(principal: Principal, action: str, place: Place | None = None, what: str = "") -> None:
    """Raise Forbidden unless the role may do the action and (given a place) it is in scope."""
    if not may(principal, action):
        raise Forbidden(
            f"the {principal.role} role may not {action} ({ACTIONS[action]}); "
            f"roles allowed: {', '.join(sorted(ROLES[action]))}"
        )
    if place is not None:
        require_in_scope(principal, place, what or "the target")


def roles_with(action: str) -> frozenset[str]:
    """The roles that may do an action (admin included)."""
    return ROLES[action] | {"admin"}


def allows(principal: Principal, place: Place) -> bool:
    """True when the place lies inside the principal's scope."""
    if principal.is_admin:
        return True
    if principal.street_id is not None:
        return place.street_id == principal.street_id
    if principal.community_id is not None:
        return place.community_id == principal.community_id
    if principal.cell_id is not None:
        return place.cell_id == principal.cell_id
    return False


def require_in_scope(principal: Principal, place: Place, what: str) -> None:
    """Raise Forbidden unless the place is inside the principal's scope."""
    if not allows(principal, place):
        raise Forbidden(f"{what} is outside your scope ({principal.scope_label})")


def require_role(principal: Principal, roles: Iterable[str], action: str) -> None:
    """Raise Forbidden unless the principal has one of the roles (admin always may)."""
    allowed = set(roles) | {"admin"}
    if principal.role not in allowed:
        raise Forbidden(f"the {principal.role} role may not {action}")


#: A column locating a row (its cell, community or street id), ORM attribute or SQL column.
Column = QueryableAttribute[int | None] | ColumnElement[int | None]


def scope_filter(
    principal: Principal,
    *,
    cell_id: Column | None,
    community_id: Column,
    street_id: Column | None,
) -> ColumnElement[bool]:
    """A SQL condition limiting rows to the scope, given the columns that locate a row.

    Pass the columns of the row's cell, community and street (any may be None when the row
    has no such column; the condition then uses what is available).
    """
    if principal.is_admin:
        return true()
    if principal.street_id is not None:
        if street_id is not None:
            return street_id == principal.street_id
        return community_id.in_(
            select(Community.id).where(Community.street_id == principal.street_id)
        )
    if principal.community_id is not None:
        return community_id == principal.community_id
    if principal.cell_id is None:  # a 格长 or 网格员 who no longer holds a cell sees nothing
        return false()
    if cell_id is not None:
        return cell_id == principal.cell_id
    # A cell-scoped user looking at community-level rows sees only their cell's community.
    return and_(community_id == principal.cell_community_id)
