"""The permission matrix, tested exhaustively: every operation of the API (from its OpenAPI
document) and every /ui page × every role × a target inside and outside the role's scope.

The expected table below is written by hand from the documented rules (README, "Permission
matrix"), independently of gridsvc.auth.policy; an operation missing from it fails
the test, so a new route cannot slip past. Each case runs in its own savepoint, so a write
allowed for one role does not change what the next role sees.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

ALL = frozenset({"admin", "street_staff", "community_staff", "leader", "grid_worker", "viewer"})
WORKERS = ALL - {"viewer"}
STAFF = frozenset({"admin", "street_staff", "community_staff"})
STREET = frozenset({"admin", "street_staff"})
ROLES = sorted(ALL)
PASSWORD = "perm-test-password-1"

#: Phones, ID numbers and names of residents the fixture creates: a viewer must never see them.
SECRET_PHONES = ("13800001234", "13900005678", "13700002468", "13600001357")
SECRET_IDS = ("110101199003071234", "110101198505052345")
SECRET_NAMES = ("张三丰", "李四光", "王五福", "赵六顺")


@dataclass
class Side:
    """What one street holds: codes and ids of every kind of target."""

    street: str
    community: str
    cell: str
    other_cell: str
    point: tuple[float, float]
    household: int = 0
    other_household: int = 0
    resident: int = 0
    member: int = 0
    assignment: int = 0
    link: int = 0
    post: int = 0
    incident: int = 0
    photo: int = 0
    ids: dict[str, int] = field(default_factory=dict)


_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    b"\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def _build_street(db: Session, n: int, x0: float, y0: float, secrets: int) -> Side:
    """A street with one community of four cells, buildings, households, people, an incident."""
    import geopandas as gpd

    from gridsvc.models import (
        Building,
        Community,
        Household,
        LinkedHousehold,
        Organisation,
        Person,
        RoleAssignment,
        ServicePost,
        Visit,
        VolunteerTeam,
    )
    from gridsvc.repositories.bulk import to_db_geometry
    from gridsvc.services.imports import create_cells, ensure_street

    street_code = f"32010209{n}"
    street_id = ensure_street(
        db,
        street_code=street_code,
        street_name=f"权限街道{n}",
        district_code="320102",
        district_name="玄武区",
    )
    d = 0.004
    community = Community(
        code=f"{street_code}001",
        name=f"权限社区{n}",
        street_id=street_id,
        geom=to_db_geometry(shapely.box(x0, y0, x0 + 2 * d, y0 + 2 * d)),
    )
    db.add(community)
    db.flush()
    squares = [(0, 1), (1, 1), (0, 0), (1, 0)]
    cells = gpd.GeoDataFrame(
        geometry=[
            shapely.box(x0 + i * d, y0 + j * d, x0 + (i + 1) * d, y0 + (j + 1) * d)
            for i, j in squares
        ],
        crs=4326,
    )
    buildings = []
    for k, (i, j) in enumerate(squares):
        cx, cy = x0 + (i + 0.5) * d, y0 + (j + 0.5) * d
        b = Building(
            source="perm",
            source_id=f"s{n}b{k}",
            name=f"{k + 1}栋",
            kind="residential",
            households=2,
            community_id=community.id,
            footprint=to_db_geometry(shapely.box(cx - 1e-4, cy - 1e-4, cx + 1e-4, cy + 1e-4)),
        )
        db.add(b)
        buildings.append(b)
    db.flush()
    codes = create_cells(db, cells, community=None).codes
    db.flush()
    for b in buildings:
        db.refresh(b)
    first = min(buildings, key=lambda b: b.id)
    cell_id = first.cell_id
    other = next(b for b in buildings if b.cell_id != cell_id)
    from gridsvc.models import Cell

    cell_code = db.scalar(select(Cell.code).where(Cell.id == cell_id))
    other_code = db.scalar(select(Cell.code).where(Cell.id == other.cell_id))
    assert cell_code in codes and other_code in codes
    phone_a, phone_b = SECRET_PHONES[2 * secrets], SECRET_PHONES[2 * secrets + 1]
    name_a, name_b = SECRET_NAMES[2 * secrets], SECRET_NAMES[2 * secrets + 1]
    home = Household(
        building_id=first.id,
        unit="2",
        room="301",
        size=3,
        head_name=name_a,
        phone=phone_a,
        low_income=True,
        disabled=True,
    )
    away = Household(
        building_id=other.id, unit="1", room="102", size=2, head_name=name_b, phone=phone_b
    )
    db.add_all([home, away])
    db.flush()
    team = VolunteerTeam(name=f"党员志愿服务队{n}", kind="party", community_id=community.id)
    db.add(team)
    db.flush()
    resident = Person(
        name=name_a,
        phone=phone_a,
        id_number=SECRET_IDS[secrets],
        household_id=home.id,
        community_id=community.id,
    )
    neighbour = Person(name=name_b, phone=phone_b, household_id=away.id, community_id=community.id)
    member = Person(
        name=f"党员{n}",
        phone=f"1500000{n}000",
        household_id=home.id,
        community_id=community.id,
        party_status="in_service",
        volunteer_team_id=team.id,
    )
    leader = Person(name=f"格长{n}", phone=f"1510000{n}000", community_id=community.id)
    db.add_all([resident, neighbour, member, leader])
    db.flush()
    assignment = RoleAssignment(person_id=leader.id, role="leader", cell_id=cell_id)
    link = LinkedHousehold(person_id=member.id, household_id=home.id)
    post = ServicePost(person_id=member.id, community_id=community.id, kind="education")
    org = Organisation(
        name=f"辖区单位{n}",
        community_id=community.id,
        contact_name=f"联系人{n}",
        contact_phone=f"1520000{n}000",
    )
    visit = Visit(household_id=home.id, visited_on=date(2026, 1, 5), note=f"{name_a}腿脚不便")
    db.add_all([assignment, link, post, org, visit])
    db.flush()
    side = Side(
        street=street_code,
        community=community.code,
        cell=cell_code,
        other_cell=other_code,
        point=(x0 + 0.5 * d, y0 + 1.5 * d),
        household=home.id,
        other_household=away.id,
        resident=resident.id,
        member=member.id,
        assignment=assignment.id,
        link=link.id,
        post=post.id,
    )
    side.ids["neighbour"] = neighbour.id
    return side


def _add_incident(db: Session, side: Side, actor: Any) -> None:
    from gridsvc.models import IncidentCategory
    from gridsvc.services import incidents as svc

    category = db.scalar(select(IncidentCategory.code).order_by(IncidentCategory.sort_order))
    detail = svc.report(
        db,
        svc.NewIncident(
            lon=side.point[0],
            lat=side.point[1],
            category=category,
            description="楼道堆物",
            reporter_kind="resident",
            reporter_name=SECRET_NAMES[0],
            reporter_phone=SECRET_PHONES[0],
        ),
        actor=svc.Actor("fixture"),
        now=datetime.now(UTC),
    )
    side.incident = detail["id"]
    side.photo = svc.add_photo(db, actor, side.incident, _PNG)["id"]


@dataclass
class World:
    """Two streets, users of every role scoped inside street A, and their headers."""

    a: Side
    b: Side
    headers: dict[str, dict[str, str]]


@pytest.fixture
def world(db: Session) -> World:
    """Street A (in scope of every user) and street B (outside every scope but admin's)."""
    from gridsvc.security import create_access_token
    from gridsvc.services.principals import principal_for
    from gridsvc.services.users import ScopeSpec, create_user

    a = _build_street(db, 1, 118.80, 32.00, 0)
    b = _build_street(db, 2, 118.84, 32.00, 1)
    scopes = {
        "admin": ScopeSpec(),
        "street_staff": ScopeSpec("street", a.street),
        "community_staff": ScopeSpec("community", a.community),
        "leader": ScopeSpec("cell", a.cell),
        "grid_worker": ScopeSpec("cell", a.cell),
        "viewer": ScopeSpec("community", a.community),
    }
    headers = {}
    users = {}
    for role, scope in scopes.items():
        users[role] = create_user(
            db, username=f"perm_{role}", password=PASSWORD, role=role, scope=scope
        )
        token = create_access_token(users[role].id, role, users[role].token_version)
        headers[role] = {"Authorization": f"Bearer {token}"}
    db.flush()
    admin = principal_for(db, users["admin"])
    _add_incident(db, a, admin)
    _add_incident(db, b, admin)
    db.commit()
    return World(a, b, headers)


# -- the expected table ------------------------------------------------------------------------

Request = Callable[[Side], dict[str, Any]]


@dataclass(frozen=True)
class Op:
    """An operation's expected rule: who may (inside scope), and how a request is built."""

    allowed: frozenset[str]
    request: Request
    #: "scoped": the target lies in street A or B · "global": no target (one run per role) ·
    #: "public": no sign-in needed · "apikey": an Open311 client key, which no user token is.
    scope: str = "scoped"
    #: Outside the scope the target looks missing (404), as incidents do (ids are guessable).
    hidden: bool = False


def _get(url: str, **params: Any) -> dict[str, Any]:
    return {"method": "GET", "url": url, "params": params}


def _post(url: str, body: Any = None, **kw: Any) -> dict[str, Any]:
    return {"method": "POST", "url": url, "json": body, **kw}


def _geojson_file() -> dict[str, Any]:
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "新楼"},
                "geometry": shapely.geometry.mapping(
                    shapely.box(118.801, 32.001, 118.8011, 32.0011)
                ),
            }
        ],
    }
    return {"file": ("b.geojson", json.dumps(fc).encode(), "application/geo+json")}


def _roster(s: Side) -> dict[str, Any]:
    csv = f"姓名,电话,角色,网格编码\n测试人,13511112222,网格员,{s.cell}\n".encode()
    return {"method": "POST", "url": "/api/v1/imports/roster", "files": {"file": ("r.csv", csv)}}


EXPECTED: dict[tuple[str, str], Op] = {
    # system and sign-in
    ("GET", "/health"): Op(ALL, lambda s: _get("/health"), "public"),
    ("GET", "/api/v1/health"): Op(ALL, lambda s: _get("/api/v1/health"), "public"),
    ("POST", "/api/v1/auth/token"): Op(
        ALL,
        lambda s: _post(
            "/api/v1/auth/token", data={"username": "perm_viewer", "password": PASSWORD}
        ),
        "public",
    ),
    ("GET", "/api/v1/me"): Op(ALL, lambda s: _get("/api/v1/me"), "global"),
    ("POST", "/api/v1/auth/logout"): Op(ALL, lambda s: _post("/api/v1/auth/logout"), "global"),
    ("GET", "/api/v1/audit"): Op(STAFF, lambda s: _get("/api/v1/audit"), "global"),
    # the CSP violation figures: as the audit log
    ("GET", "/api/v1/csp-reports"): Op(STAFF, lambda s: _get("/api/v1/csp-reports"), "global"),
    # areas, cells, buildings, households
    ("GET", "/api/v1/communities"): Op(ALL, lambda s: _get("/api/v1/communities"), "global"),
    ("GET", "/api/v1/cells"): Op(ALL, lambda s: _get("/api/v1/cells"), "global"),
    ("GET", "/api/v1/communities/{code}/cells"): Op(
        ALL, lambda s: _get(f"/api/v1/communities/{s.community}/cells")
    ),
    ("POST", "/api/v1/communities/{code}/cells"): Op(
        STAFF,
        lambda s: _post(
            f"/api/v1/communities/{s.community}/cells",
            {"type": "FeatureCollection", "features": []},
        ),
    ),
    ("GET", "/api/v1/cells/{code}"): Op(ALL, lambda s: _get(f"/api/v1/cells/{s.cell}")),
    ("GET", "/api/v1/cells/{code}/buildings"): Op(
        ALL, lambda s: _get(f"/api/v1/cells/{s.cell}/buildings")
    ),
    ("GET", "/api/v1/communities/{code}/buildings"): Op(
        ALL, lambda s: _get(f"/api/v1/communities/{s.community}/buildings")
    ),
    ("GET", "/api/v1/cells/{code}/households"): Op(
        ALL, lambda s: _get(f"/api/v1/cells/{s.cell}/households")
    ),
    ("GET", "/api/v1/lookup"): Op(
        ALL, lambda s: _get("/api/v1/lookup", lon=s.point[0], lat=s.point[1])
    ),
    ("POST", "/api/v1/imports/{kind}"): Op(
        STREET,
        lambda s: _post("/api/v1/imports/buildings", files=_geojson_file()),
        "global",
    ),
    # redraws and history
    ("GET", "/api/v1/communities/{code}/validation"): Op(
        ALL, lambda s: _get(f"/api/v1/communities/{s.community}/validation")
    ),
    ("POST", "/api/v1/communities/{code}/redraw/preview"): Op(
        STAFF,
        lambda s: _post(
            f"/api/v1/communities/{s.community}/redraw/preview",
            {"op": "merge", "cells": [s.cell, s.other_cell], "reason": "权限测试"},
        ),
    ),
    ("POST", "/api/v1/communities/{code}/redraw/commit"): Op(
        STAFF,
        lambda s: _post(
            f"/api/v1/communities/{s.community}/redraw/commit",
            {"op": "merge", "cells": [s.cell, s.other_cell], "reason": "权限测试"},
        ),
    ),
    ("GET", "/api/v1/communities/{code}/changes"): Op(
        ALL, lambda s: _get(f"/api/v1/communities/{s.community}/changes")
    ),
    ("GET", "/api/v1/cells/{code}/versions"): Op(
        ALL, lambda s: _get(f"/api/v1/cells/{s.cell}/versions")
    ),
    ("GET", "/api/v1/cells/{code}/diff"): Op(
        ALL, lambda s: _get(f"/api/v1/cells/{s.cell}/diff", **{"from": 1, "to": 1})
    ),
    ("POST", "/api/v1/communities/{code}/proposal"): Op(
        STAFF, lambda s: _post(f"/api/v1/communities/{s.community}/proposal", {})
    ),
    # exports
    ("GET", "/api/v1/exports/{kind}/{code}"): Op(
        ALL, lambda s: _get(f"/api/v1/exports/cell/{s.cell}", format="geojson", layers="cells")
    ),
    # people and duties
    ("GET", "/api/v1/duties"): Op(ALL, lambda s: _get("/api/v1/duties"), "global"),
    ("PUT", "/api/v1/duties/{level}"): Op(
        STREET,
        lambda s: {"method": "PUT", "url": "/api/v1/duties/4", "json": {"duties": "包网格"}},
        "global",
    ),
    ("POST", "/api/v1/people"): Op(
        STAFF, lambda s: _post("/api/v1/people", {"name": "新居民", "community": s.community})
    ),
    ("GET", "/api/v1/communities/{code}/people"): Op(
        ALL, lambda s: _get(f"/api/v1/communities/{s.community}/people")
    ),
    ("GET", "/api/v1/people/{person_id}"): Op(ALL, lambda s: _get(f"/api/v1/people/{s.resident}")),
    ("POST", "/api/v1/assignments"): Op(
        STAFF,
        lambda s: _post(
            "/api/v1/assignments",
            {"person_id": s.resident, "role": "grid_worker", "cell": s.cell},
        ),
    ),
    ("POST", "/api/v1/assignments/{assignment_id}/end"): Op(
        STAFF, lambda s: _post(f"/api/v1/assignments/{s.assignment}/end", {})
    ),
    ("GET", "/api/v1/cells/{code}/assignments"): Op(
        ALL, lambda s: _get(f"/api/v1/cells/{s.cell}/assignments")
    ),
    ("POST", "/api/v1/communities/{code}/sectors"): Op(
        STAFF,
        lambda s: _post(
            f"/api/v1/communities/{s.community}/sectors", {"name": "一片区", "cells": [s.cell]}
        ),
    ),
    ("GET", "/api/v1/communities/{code}/sectors"): Op(
        ALL, lambda s: _get(f"/api/v1/communities/{s.community}/sectors")
    ),
    ("POST", "/api/v1/communities/{code}/organisations"): Op(
        STAFF,
        lambda s: _post(f"/api/v1/communities/{s.community}/organisations", {"name": "新单位"}),
    ),
    ("GET", "/api/v1/communities/{code}/organisations"): Op(
        ALL, lambda s: _get(f"/api/v1/communities/{s.community}/organisations")
    ),
    ("POST", "/api/v1/communities/{code}/volunteer-teams"): Op(
        STAFF,
        lambda s: _post(
            f"/api/v1/communities/{s.community}/volunteer-teams",
            {"name": "巾帼队", "kind": "women"},
        ),
    ),
    ("GET", "/api/v1/communities/{code}/volunteer-teams"): Op(
        ALL, lambda s: _get(f"/api/v1/communities/{s.community}/volunteer-teams")
    ),
    ("POST", "/api/v1/people/{person_id}/linked-households"): Op(
        STAFF,
        lambda s: _post(
            f"/api/v1/people/{s.member}/linked-households", {"household_id": s.other_household}
        ),
    ),
    ("GET", "/api/v1/people/{person_id}/linked-households"): Op(
        ALL, lambda s: _get(f"/api/v1/people/{s.member}/linked-households")
    ),
    ("POST", "/api/v1/linked-households/{link_id}/end"): Op(
        STAFF, lambda s: _post(f"/api/v1/linked-households/{s.link}/end", {})
    ),
    ("POST", "/api/v1/people/{person_id}/posts"): Op(
        STAFF, lambda s: _post(f"/api/v1/people/{s.member}/posts", {"kind": "rights"})
    ),
    ("GET", "/api/v1/people/{person_id}/posts"): Op(
        ALL, lambda s: _get(f"/api/v1/people/{s.member}/posts")
    ),
    ("POST", "/api/v1/posts/{post_id}/activities"): Op(
        STAFF,
        lambda s: _post(f"/api/v1/posts/{s.post}/activities", {"happened_on": "2026-01-05"}),
    ),
    ("POST", "/api/v1/visits"): Op(
        WORKERS,
        lambda s: _post(
            "/api/v1/visits", {"household_id": s.household, "visited_on": "2026-01-05"}
        ),
    ),
    ("GET", "/api/v1/cells/{code}/visits"): Op(
        ALL, lambda s: _get(f"/api/v1/cells/{s.cell}/visits")
    ),
    ("GET", "/api/v1/streets/{code}/coverage"): Op(
        STREET, lambda s: _get(f"/api/v1/streets/{s.street}/coverage")
    ),
    ("GET", "/api/v1/communities/{code}/coverage"): Op(
        ALL, lambda s: _get(f"/api/v1/communities/{s.community}/coverage")
    ),
    # The 责任网络图 of the street of one's community is for everyone in it to read.
    ("GET", "/api/v1/streets/{code}/responsibility-chart"): Op(
        ALL, lambda s: _get(f"/api/v1/streets/{s.street}/responsibility-chart")
    ),
    ("POST", "/api/v1/imports/roster"): Op(STAFF, _roster, "global"),
    # incidents
    ("GET", "/api/v1/incident-categories"): Op(
        ALL, lambda s: _get("/api/v1/incident-categories"), "global"
    ),
    ("POST", "/api/v1/incidents"): Op(
        WORKERS,
        lambda s: _post(
            "/api/v1/incidents", {"lon": s.point[0], "lat": s.point[1], "category": "矛盾纠纷"}
        ),
        "global",
    ),
    ("GET", "/api/v1/incidents"): Op(ALL, lambda s: _get("/api/v1/incidents"), "global"),
    ("GET", "/api/v1/incidents/stats"): Op(
        ALL, lambda s: _get("/api/v1/incidents/stats"), "global"
    ),
    ("GET", "/api/v1/incidents/{incident_id}"): Op(
        ALL, lambda s: _get(f"/api/v1/incidents/{s.incident}"), hidden=True
    ),
    # 派遣 from 立案: 格长 and staff (TRANSITIONS); 网格员 and viewers may not.
    ("POST", "/api/v1/incidents/{incident_id}/transitions"): Op(
        frozenset({"admin", "street_staff", "community_staff", "leader"}),
        lambda s: _post(f"/api/v1/incidents/{s.incident}/transitions", {"action": "dispatch"}),
        hidden=True,
    ),
    ("POST", "/api/v1/incidents/{incident_id}/confirm-cell"): Op(
        WORKERS,
        lambda s: _post(f"/api/v1/incidents/{s.incident}/confirm-cell", {"cell": s.cell}),
        hidden=True,
    ),
    ("POST", "/api/v1/incidents/{incident_id}/photos"): Op(
        WORKERS,
        lambda s: _post(
            f"/api/v1/incidents/{s.incident}/photos", files={"file": ("p.png", _PNG, "image/png")}
        ),
        hidden=True,
    ),
    ("GET", "/api/v1/incidents/{incident_id}/photos/{photo_id}"): Op(
        ALL, lambda s: _get(f"/api/v1/incidents/{s.incident}/photos/{s.photo}"), hidden=True
    ),
    # Open311: public GETs; POST checks its own API key (not a user role).
    ("GET", "/open311/v2/discovery.{fmt}"): Op(
        ALL, lambda s: _get("/open311/v2/discovery.json"), "public"
    ),
    ("GET", "/open311/v2/services.{fmt}"): Op(
        ALL, lambda s: _get("/open311/v2/services.json"), "public"
    ),
    ("GET", "/open311/v2/services/{code}.{fmt}"): Op(
        ALL, lambda s: _get("/open311/v2/services/x.json"), "public"
    ),
    ("GET", "/open311/v2/requests.{fmt}"): Op(
        ALL, lambda s: _get("/open311/v2/requests.json"), "public"
    ),
    ("POST", "/open311/v2/requests.{fmt}"): Op(
        frozenset(),
        lambda s: _post("/open311/v2/requests.json", data={"service_code": "x"}),
        "apikey",
    ),
    ("GET", "/open311/v2/requests/{request_id}.{fmt}"): Op(
        ALL, lambda s: _get(f"/open311/v2/requests/{s.incident}.json"), "public"
    ),
    ("GET", "/open311/v2/tokens/{token}.{fmt}"): Op(
        ALL, lambda s: _get("/open311/v2/tokens/x.json"), "public"
    ),
    # web pages
    ("GET", "/ui/login"): Op(ALL, lambda s: _get("/ui/login"), "public"),
    ("POST", "/ui/login"): Op(
        ALL,
        lambda s: _post(
            "/ui/login",
            data={"username": "perm_viewer", "password": PASSWORD, "csrf_token": "matrix"},
            headers={"Cookie": "gridsvc_login_csrf=matrix"},  # the form's pre-session token
        ),
        "public",
    ),
    ("GET", "/ui/logout"): Op(ALL, lambda s: _get("/ui/logout"), "public"),
    ("POST", "/ui/logout"): Op(ALL, lambda s: _post("/ui/logout"), "global"),
    ("GET", "/ui/"): Op(ALL, lambda s: _get("/ui/"), "global"),
    ("GET", "/ui/cells/{code}"): Op(ALL, lambda s: _get(f"/ui/cells/{s.cell}")),
    ("GET", "/ui/communities/{code}"): Op(ALL, lambda s: _get(f"/ui/communities/{s.community}")),
    ("GET", "/ui/tasks"): Op(ALL, lambda s: _get("/ui/tasks", show="all"), "global"),
    ("GET", "/ui/cases/{incident_id}"): Op(
        ALL, lambda s: _get(f"/ui/cases/{s.incident}"), hidden=True
    ),
    # The case page's form takes the same steps as the API (派遣 from 立案, as above).
    ("POST", "/ui/cases/{incident_id}"): Op(
        frozenset({"admin", "street_staff", "community_staff", "leader"}),
        lambda s: _post(
            f"/ui/cases/{s.incident}", data={"action": "dispatch", "expected_version": 1}
        ),
        hidden=True,
    ),
    ("GET", "/ui/report"): Op(WORKERS, lambda s: _get("/ui/report"), "global"),
    ("POST", "/ui/report"): Op(
        WORKERS,
        lambda s: _post(
            "/ui/report", data={"lon": s.point[0], "lat": s.point[1], "category": "矛盾纠纷"}
        ),
        "global",
    ),
    ("POST", "/ui/cases/{incident_id}/confirm-cell"): Op(
        WORKERS,
        lambda s: _post(f"/ui/cases/{s.incident}/confirm-cell", data={"cell": s.cell}),
        hidden=True,
    ),
    ("GET", "/ui/cells/{code}/ledger"): Op(ALL, lambda s: _get(f"/ui/cells/{s.cell}/ledger")),
    ("GET", "/ui/cells/{code}/diary"): Op(ALL, lambda s: _get(f"/ui/cells/{s.cell}/diary")),
    ("POST", "/ui/households/{household_id}/flags"): Op(
        WORKERS,
        lambda s: _post(f"/ui/households/{s.household}/flags", data={"flag": "low_income"}),
    ),
    ("GET", "/ui/households/{household_id}/visit"): Op(
        WORKERS, lambda s: _get(f"/ui/households/{s.household}/visit")
    ),
    ("POST", "/ui/households/{household_id}/visit"): Op(
        WORKERS,
        lambda s: _post(f"/ui/households/{s.household}/visit", data={"visited_on": "2026-01-05"}),
    ),
    ("GET", "/ui/communities/{code}/editor"): Op(
        STAFF, lambda s: _get(f"/ui/communities/{s.community}/editor")
    ),
    ("GET", "/ui/streets/{code}"): Op(STREET, lambda s: _get(f"/ui/streets/{s.street}")),
    # vector tiles: cut to the caller's scope and masked (a tile anywhere is answered)
    ("GET", "/api/v1/tiles/{layer}/{z}/{x}/{y}.mvt"): Op(
        ALL, lambda s: _get(_tile_url("/api/v1/tiles/all/{z}/{x}/{y}.mvt", s)), "global"
    ),
    ("GET", "/api/v1/tiles/{layer}.json"): Op(
        ALL, lambda s: _get("/api/v1/tiles/buildings.json"), "global"
    ),
    ("GET", "/ogc/tileMatrixSets"): Op(ALL, lambda s: _get("/ogc/tileMatrixSets"), "public"),
    ("GET", "/ogc/tileMatrixSets/{tile_matrix_set_id}"): Op(
        ALL, lambda s: _get("/ogc/tileMatrixSets/WebMercatorQuad"), "public"
    ),
    ("GET", "/ogc/collections/{layer}/tiles"): Op(
        ALL, lambda s: _get("/ogc/collections/buildings/tiles"), "global"
    ),
    ("GET", "/ogc/collections/{layer}/tiles/WebMercatorQuad"): Op(
        ALL, lambda s: _get("/ogc/collections/buildings/tiles/WebMercatorQuad"), "global"
    ),
    (
        "GET",
        "/ogc/collections/{layer}/tiles/WebMercatorQuad/{tile_matrix}/{tile_row}/{tile_col}",
    ): Op(
        ALL,
        lambda s: _get(
            _tile_url("/ogc/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}", s)
        ),
        "global",
    ),
    # OGC API – Features: lists are cut to the scope; a feature outside it is not found
    ("GET", "/ogc"): Op(ALL, lambda s: _get("/ogc"), "global"),
    ("GET", "/ogc/conformance"): Op(ALL, lambda s: _get("/ogc/conformance"), "global"),
    ("GET", "/ogc/collections"): Op(ALL, lambda s: _get("/ogc/collections"), "global"),
    ("GET", "/ogc/collections/{collection_id}"): Op(
        ALL, lambda s: _get("/ogc/collections/households"), "global"
    ),
    ("GET", "/ogc/collections/{collection_id}/items"): Op(
        ALL, lambda s: _get("/ogc/collections/households/items", limit=1000), "global"
    ),
    ("GET", "/ogc/collections/{collection_id}/items/{feature_id}"): Op(
        ALL, lambda s: _get(f"/ogc/collections/households/items/{s.household}"), hidden=True
    ),
    ("POST", "/ogc/collections/cells/items"): Op(
        STAFF, lambda s: _post("/ogc/collections/cells/items", _ogc_cell(s))
    ),
    ("PUT", "/ogc/collections/cells/items/{feature_id}"): Op(
        STAFF,
        lambda s: {
            **_post(f"/ogc/collections/cells/items/{s.cell}", _ogc_cell(s)),
            "method": "PUT",
        },
    ),
    ("DELETE", "/ogc/collections/cells/items/{feature_id}"): Op(
        STAFF,
        lambda s: {
            "method": "DELETE",
            "url": f"/ogc/collections/cells/items/{s.cell}",
            "params": {"merge_into": s.other_cell, "reason": "权限测试"},
        },
    ),
    ("PATCH", "/ogc/collections/cells/items/{feature_id}"): Op(
        STAFF,
        lambda s: {
            **_post(f"/ogc/collections/cells/items/{s.cell}", _ogc_cell(s)),
            "method": "PATCH",
        },
    ),
}


def _tile_url(template: str, s: Side, z: int = 16) -> str:
    """The tile of zoom ``z`` holding the side's point (Web Mercator tile numbers)."""
    lon, lat = s.point
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return template.format(z=z, x=x, y=y)


def _ogc_cell(s: Side) -> dict[str, Any]:
    """A cell feature for the OGC API's editing, with its community and a reason."""
    lon, lat = s.point
    return {
        "type": "Feature",
        "properties": {"community_code": s.community, "reason": "权限测试"},
        "geometry": shapely.geometry.mapping(shapely.box(lon, lat, lon + 0.0005, lat + 0.0005)),
    }


def _operations() -> set[tuple[str, str]]:
    """Every operation of the OpenAPI document, and every /ui page route."""
    from gridsvc.api.pages import router as pages_router
    from gridsvc.api.workbench import router as workbench_router
    from gridsvc.main import create_app

    ops = {
        (method.upper(), path)
        for path, item in create_app().openapi()["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    for route in [*pages_router.routes, *workbench_router.routes]:
        for method in getattr(route, "methods", ()):
            if method != "HEAD":
                ops.add((method, route.path))  # type: ignore[attr-defined]
    return ops


def test_every_operation_has_an_expected_rule() -> None:
    """A route added without a row in the expected table fails here (and stale rows too)."""
    ops = _operations()
    missing = sorted(ops - set(EXPECTED))
    stale = sorted(set(EXPECTED) - ops)
    assert not missing, f"operations with no expected permission rule: {missing}"
    assert not stale, f"rules for operations that no longer exist: {stale}"


# -- running the matrix -------------------------------------------------------------------------


@dataclass
class Result:
    """One case: who asked what, and what came back."""

    op: tuple[str, str]
    role: str
    scope: str
    status: int
    media: str
    body: bytes


def _send(client: TestClient, db: Session, spec: dict[str, Any], headers: dict[str, str]) -> Any:
    """Send one request inside a savepoint that is rolled back afterwards."""
    spec = dict(spec)
    if spec.get("json") is None:
        spec.pop("json", None)
    client.cookies.clear()  # the /ui sign-in sets a session cookie: never carry it over
    db.commit()  # the fixture's own savepoint: close it so ours is the outer one
    savepoint = db.get_bind().begin_nested()  # type: ignore[union-attr]
    try:
        headers = {**headers, **spec.pop("headers", {})}
        return client.request(headers=headers, follow_redirects=False, **spec)
    finally:
        db.rollback()
        if savepoint.is_active:
            savepoint.rollback()
        db.expire_all()


def _run_matrix(client: TestClient, db: Session, world: World) -> list[Result]:
    results = []
    for key, op in sorted(EXPECTED.items()):
        sides = {"in": world.a, "out": world.b} if op.scope == "scoped" else {"-": world.a}
        for scope, side in sides.items():
            for role in [*ROLES, "anonymous"]:
                headers = world.headers.get(role, {})
                r = _send(client, db, op.request(side), headers)
                results.append(
                    Result(
                        key,
                        role,
                        scope,
                        r.status_code,
                        r.headers.get("content-type", ""),
                        r.content,
                    )
                )
    return results


def _expected_deny(op: Op, role: str, scope: str) -> bool:
    if op.scope in ("public", "apikey"):
        return False
    if role == "anonymous":
        return True
    if role not in op.allowed:
        return True
    return scope == "out" and role != "admin"


def test_permission_matrix(client: TestClient, db: Session, world: World) -> None:
    """Every operation × every role × a target inside and outside the scope: deny is 403
    (401 or the sign-in page without a token; 404 where out-of-scope ids are hidden), allow is
    neither; and no response of the run, in any format, shows a viewer a resident's phone, ID
    number or name."""
    results = _run_matrix(client, db, world)
    wrong = []
    for res in results:
        op = EXPECTED[res.op]
        assert res.status < 500, (
            f"{res.op} as {res.role} ({res.scope}): {res.status} {res.body[:300]!r}"
        )
        if op.scope == "apikey":
            ok = res.status in (401, 403)  # a user's token is no Open311 API key
        elif op.scope == "public":
            ok = res.status not in (401, 403)  # unknown ids may be 404: no sign-in is asked
        elif res.role == "anonymous":
            ok = res.status == 401 or (res.op[1].startswith("/ui/") and res.status == 303)
        elif _expected_deny(op, res.role, res.scope):
            hidden = op.hidden and res.scope == "out"
            # Roles that may never do it learn 403 even before the target is looked up.
            ok = res.status in ((403, 404) if hidden else (403,))
        else:
            # Allowed: neither refused nor "not found" (every target of the fixture exists).
            ok = res.status not in (401, 403, 404)
        if not ok:
            wrong.append(f"{res.op[0]} {res.op[1]} as {res.role} ({res.scope}): {res.status}")
    denied = sum(
        _expected_deny(EXPECTED[r.op], r.role, r.scope) or (EXPECTED[r.op].scope == "apikey")
        for r in results
    )
    print(
        f"\npermission matrix: {len(results)} cases over {len(EXPECTED)} operations "
        f"({len(results) - denied} allowed, {denied} denied)"
    )
    assert not wrong, "\n".join(wrong)
    assert len({r.op for r in results}) == len(EXPECTED)
    # A viewer never sees personal fields, whatever the format of the response.
    # Nor does an anonymous caller (Open311, sign-in pages); nor does anyone but admin ever
    # see street B's residents; nor a cell's team the household of another cell.
    street_b = (*SECRET_PHONES[2:], SECRET_IDS[1], *SECRET_NAMES[2:])
    other_cell = (SECRET_PHONES[1], SECRET_NAMES[1])
    for res in results:
        if res.status >= 300:
            continue
        where = f"{res.op} as {res.role} ({res.scope})"
        if res.role in ("viewer", "anonymous"):
            _assert_no_secrets(res.body, where)
        if res.role != "admin":
            _assert_no_secrets(res.body, where, street_b)
        if res.role in ("leader", "grid_worker"):
            _assert_no_secrets(res.body, where, other_cell)


def _texts(body: bytes) -> Iterator[str]:
    """The text of a response body, looking inside zip archives, XLSX and GeoPackage files."""
    if body[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            for name in archive.namelist():
                yield from _texts(archive.read(name))
        return
    if body.startswith(b"SQLite format 3"):
        import sqlite3
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".gpkg") as tmp:
            tmp.write(body)
            tmp.flush()
            con = sqlite3.connect(tmp.name)
            try:
                tables = [
                    r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
                ]
                for table in tables:
                    for row in con.execute(f'SELECT * FROM "{table}"'):
                        yield " ".join(str(v) for v in row if not isinstance(v, bytes))
            finally:
                con.close()
        return
    yield body.decode("utf-8", errors="replace")


def _assert_no_secrets(body: bytes, where: str, secrets: tuple[str, ...] = ()) -> None:
    for text in _texts(body):
        for secret in secrets or (*SECRET_PHONES, *SECRET_IDS, *SECRET_NAMES):
            assert secret not in text, f"a viewer saw {secret} in {where}"


# -- explicit promises ---------------------------------------------------------------------------


def _body_text(response: Any) -> str:
    return "\n".join(_texts(response.content))


def test_a_leader_never_reads_another_cells_households(client: TestClient, world: World) -> None:
    """A 格长 of cell A1 reads their own households (API, export, page) but never those of
    another cell of the same community or of another street."""
    h = world.headers["leader"]
    a, b = world.a, world.b
    own_phone, neighbour_phone = SECRET_PHONES[0], SECRET_PHONES[1]
    own = client.get(f"/api/v1/cells/{a.cell}/households", headers=h)
    assert own.status_code == 200 and own_phone in own.text
    for code in (a.other_cell, b.cell):
        assert client.get(f"/api/v1/cells/{code}/households", headers=h).status_code == 403
        assert client.get(f"/ui/cells/{code}", headers=h).status_code == 403
        export = client.get(f"/api/v1/exports/cell/{code}", params={"format": "gpkg"}, headers=h)
        assert export.status_code == 403
    # Their own cell's export holds their households; the community's holds none of them.
    mine = client.get(f"/api/v1/exports/cell/{a.cell}", params={"format": "gpkg"}, headers=h)
    assert mine.status_code == 200 and own_phone in _body_text(mine)
    community = client.get(
        f"/api/v1/exports/community/{a.community}", params={"format": "gpkg"}, headers=h
    )
    assert community.status_code == 200
    assert neighbour_phone not in _body_text(community)
    refused = client.get(
        f"/api/v1/exports/community/{a.community}",
        params={"format": "geojson", "layers": "households"},
        headers=h,
    )
    assert refused.status_code == 403
    # People: the community list shows the people of their cell only.
    people = client.get(f"/api/v1/communities/{a.community}/people", headers=h).json()
    names = {p["name"] for p in people["items"]}
    assert SECRET_NAMES[0] in names and SECRET_NAMES[1] not in names
    assert client.get(f"/api/v1/people/{a.resident}", headers=h).status_code == 200
    assert client.get(f"/api/v1/people/{a.ids['neighbour']}", headers=h).status_code == 403


def test_a_viewer_never_sees_personal_fields(client: TestClient, world: World) -> None:
    """In every JSON, CSV, XLSX, GeoPackage, Shapefile, KML and HTML response a viewer can get,
    no resident's phone, ID number or name appears; households come masked (138****1234,
    unit/room and flags null); household layers and flag colouring are refused."""
    from tests.maps.fixtures import ensure_assets

    ensure_assets()  # the self-contained HTML export inlines the pinned Leaflet
    a = world.a
    h = world.headers["viewer"]
    urls: list[tuple[str, dict[str, Any]]] = [
        (f"/api/v1/cells/{a.cell}/households", {}),
        (f"/api/v1/communities/{a.community}/people", {}),
        (f"/api/v1/people/{a.resident}", {}),
        (f"/api/v1/communities/{a.community}/organisations", {}),
        (f"/api/v1/cells/{a.cell}/visits", {}),
        (f"/api/v1/cells/{a.cell}/assignments", {}),
        (f"/api/v1/incidents/{a.incident}", {}),
        ("/api/v1/incidents", {}),
        (f"/api/v1/communities/{a.community}/coverage", {"format": "csv"}),
        (f"/api/v1/streets/{a.street}/responsibility-chart", {}),
        (f"/api/v1/cells/{a.cell}/buildings", {}),
        (f"/ui/cells/{a.cell}", {}),
        (f"/ui/communities/{a.community}", {}),
    ]
    for kind, code in (("cell", a.cell), ("community", a.community)):
        for fmt in ("html", "xlsx", "gpkg", "geojson", "shp", "kml"):
            urls.append((f"/api/v1/exports/{kind}/{code}", {"format": fmt}))
    for url, params in urls:
        response = client.get(url, params=params, headers=h)
        assert response.status_code == 200, (url, params, response.text[:300])
        _assert_no_secrets(response.content, f"{url} {params}")
    households = client.get(f"/api/v1/cells/{a.cell}/households", headers=h).json()["items"]
    home = next(x for x in households if x["id"] == a.household)
    assert home["phone"] == "138****1234" and home["head_name"] == "张**"
    assert home["unit"] is None and home["room"] is None
    assert home["low_income"] is None and home["disabled"] is None
    # Per-building flag counts are withheld too (a count of one names a household).
    buildings = client.get(
        f"/api/v1/exports/cell/{a.cell}",
        params={"format": "geojson", "layers": "buildings"},
        headers=h,
    ).json()
    assert all(f["properties"]["low_income"] is None for f in buildings["features"])
    assert (
        client.get(
            f"/api/v1/exports/cell/{a.cell}",
            params={"format": "gpkg", "layers": "households"},
            headers=h,
        ).status_code
        == 403
    )
    assert (
        client.get(f"/ui/cells/{a.cell}", params={"colour_by": "low_income"}, headers=h).status_code
        == 403
    )
    # The same requests by street staff do carry the data: the search above is not vacuous.
    staff = world.headers["street_staff"]
    full = client.get(f"/api/v1/exports/cell/{a.cell}", params={"format": "gpkg"}, headers=staff)
    assert SECRET_PHONES[0] in _body_text(full)
    counts = client.get(
        f"/api/v1/exports/cell/{a.cell}",
        params={"format": "geojson", "layers": "buildings"},
        headers=staff,
    ).json()
    assert sum(f["properties"]["low_income"] or 0 for f in counts["features"]) == 1
    detail = client.get(f"/api/v1/incidents/{a.incident}", headers=staff).json()
    assert detail["reporter_phone"] == SECRET_PHONES[0]


def test_cells_imported_without_a_community_stay_in_the_importers_scope(
    client: TestClient, db: Session, world: World
) -> None:
    """Community staff of A uploading a cell that lies in community B (naming no community,
    so the file's geometry decides) are refused and nothing is created; inside A it works."""
    from gridsvc.models import Cell, Community

    def upload(x0: float, headers: dict[str, str]) -> Any:
        polygon = shapely.box(x0 + 0.0005, 32.0005, x0 + 0.0015, 32.0015)
        fc = {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(polygon)}
            ],
        }
        return client.post(
            "/api/v1/imports/cells",
            files={"file": ("c.geojson", json.dumps(fc).encode(), "application/geo+json")},
            data={"commit": "true"},
            headers=headers,
        )

    def cells_of(code: str) -> int:
        community_id = db.scalar(select(Community.id).where(Community.code == code))
        return len(db.scalars(select(Cell.id).where(Cell.community_id == community_id)).all())

    staff = world.headers["community_staff"]
    before_b = cells_of(world.b.community)
    refused = upload(118.84, staff)
    assert refused.status_code == 403, refused.text
    assert "outside your scope" in refused.json()["detail"]
    assert cells_of(world.b.community) == before_b
    # Inside A the same cell overlaps one of A's cells (refused as an overlap, issue 19):
    # retire that one first, then the import is in scope and accepted.
    overlap = upload(118.80, staff)
    assert overlap.status_code == 422 and "不能重叠" in overlap.json()["detail"]
    db.execute(
        sql_text(
            "UPDATE cell SET retired_at = now() WHERE id IN (SELECT cv.cell_id FROM cell_version cv "
            "WHERE cv.valid_to IS NULL AND ST_Intersects(cv.geom, "
            "ST_MakeEnvelope(118.8005, 32.0005, 118.8015, 32.0015, 4326)))"
        )
    )
    before_a = cells_of(world.a.community)
    accepted = upload(118.80, staff)
    assert accepted.status_code == 200, accepted.text
    assert cells_of(world.a.community) == before_a + 1


def test_the_readme_table_is_the_matrix_in_the_code() -> None:
    """The permission table in the README names every action of the code, with the same roles."""
    from pathlib import Path

    from gridsvc.auth.policy import ACTIONS, roles_with

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Roles and scopes", 1)[1].split("\n### ", 1)[0]
    columns = ["admin", "street_staff", "community_staff", "leader", "grid_worker", "viewer"]
    documented: dict[str, frozenset[str]] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        roles = frozenset(r for r, c in zip(columns, cells[2:], strict=True) if c.startswith("✓"))
        for action in re.findall(r"`([a-z_.]+)`", cells[0]):
            documented[action] = roles
    assert set(documented) == set(ACTIONS)
    for action, roles in documented.items():
        assert roles == roles_with(action), action


def test_incident_workflow_roles_are_the_matrix_row() -> None:
    """``incident.act`` of the matrix is exactly who may take some workflow step (TRANSITIONS),
    and no step is open to viewers."""
    from gridsvc.auth.policy import roles_with
    from gridsvc.services.incidents import TRANSITIONS

    stepping = {"admin"}.union(*(t.roles for t in TRANSITIONS.values()))
    assert stepping == roles_with("incident.act")
    assert "viewer" not in stepping
