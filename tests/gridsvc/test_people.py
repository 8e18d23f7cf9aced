"""People and duties through the API: assignments (one active 格长, history), scope, sectors,
duties, the 责任网络图 tree, 联系户, 公益岗位, 走访, and people following a redraw."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridsvc.services.clock import local_today
from gridsvc.services.users import ScopeSpec, create_user
from tests.conftest import race
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet, token_for
from tests.gridsvc.test_concurrency import live  # noqa: F401  (fixture)

# A valid 18-digit 身份证号 (check digit computed by GB 11643) and one with a wrong check digit.
GOOD_ID = "11010519491231002X"
BAD_ID = "110105194912310021"


def _admin(client: TestClient, db: Session) -> dict[str, str]:
    create_user(db, username="people_admin", password=TEST_PASSWORD, role="admin")
    return token_for(client, "people_admin")


def _person(client: TestClient, headers: dict[str, str], community: str, **kw: Any) -> int:
    body = {"name": kw.pop("name", "张三"), "community": community, **kw}
    response = client.post("/api/v1/people", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _leader_count(db: Session, cell: str) -> int:
    return db.execute(
        text(
            "SELECT count(*) FROM role_assignment r JOIN cell c ON c.id = r.cell_id "
            "WHERE c.code = :c AND r.role = 'leader' AND r.ends_on IS NULL"
        ),
        {"c": cell},
    ).scalar_one()


def test_one_active_leader_per_cell_and_history(
    client: TestClient, db: Session, small_street: SmallStreet
) -> None:
    headers = _admin(client, db)
    cell = small_street.cell_codes[0]
    a = _person(client, headers, small_street.community_code, name="王格长", id_number=GOOD_ID)
    b = _person(client, headers, small_street.community_code, name="李格长", phone="13912345678")
    first = client.post(
        "/api/v1/assignments",
        json={"person_id": a, "role": "格长", "cell": cell, "starts_on": "2026-01-01"},
        headers=headers,
    )
    assert first.status_code == 201, first.text
    second = client.post(
        "/api/v1/assignments",
        json={"person_id": b, "role": "leader", "cell": cell},
        headers=headers,
    )
    assert second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")
    assert "王格长" in second.json()["detail"]
    assert _leader_count(db, cell) == 1
    # End the first; the second may now take the post. The history keeps both.
    ended = client.post(
        f"/api/v1/assignments/{first.json()['id']}/end",
        json={"ends_on": local_today().isoformat()},
        headers=headers,
    )
    assert ended.status_code == 200 and ended.json()["ends_on"] == local_today().isoformat()
    again = client.post(
        "/api/v1/assignments",
        json={"person_id": b, "role": "leader", "cell": cell},
        headers=headers,
    )
    assert again.status_code == 201
    current = client.get(f"/api/v1/cells/{cell}/assignments", headers=headers).json()
    history = client.get(f"/api/v1/cells/{cell}/assignments?history=true", headers=headers).json()
    assert [r["person"] for r in current] == ["李格长"]
    assert sorted(r["person"] for r in history) == ["李格长", "王格长"]
    # History may be back-filled, but never with two 格长 on the same day.
    for starts, ends, status in (
        ("2025-01-01", "2026-01-01", 201),  # before 王格长: fine
        ("2025-06-01", "2026-01-02", 409),  # overlaps 王格长's first day
    ):
        old = client.post(
            "/api/v1/assignments",
            json={"person_id": b, "role": "leader", "cell": cell, "starts_on": starts,
                  "ends_on": ends},
            headers=headers,
        )  # fmt: skip
        assert old.status_code == status, old.text
    # As of a day when the first held the post, the first is the 格长.
    on = client.get(f"/api/v1/cells/{cell}/assignments?on=2026-02-01", headers=headers).json()
    assert [r["person"] for r in on] == ["王格长"]


def test_bad_input_is_a_clear_problem_and_changes_nothing(
    client: TestClient, db: Session, small_street: SmallStreet
) -> None:
    headers = _admin(client, db)
    community = small_street.community_code
    before = db.execute(text("SELECT count(*) FROM person")).scalar_one()
    for body, status, words in (
        ({"name": "赵", "community": community, "id_number": BAD_ID}, 422, "check digit"),
        ({"name": "赵", "community": community, "phone": "12345"}, 422, "phone"),
        ({"name": "赵", "community": community, "party_status": "党委"}, 422, "party status"),
        ({"name": "赵", "community": "999"}, 404, "community"),
        ({"name": "赵"}, 422, "community"),
    ):
        response = client.post("/api/v1/people", json=body, headers=headers)
        assert response.status_code == status, response.text
        assert words in response.json()["detail"]
    assert db.execute(text("SELECT count(*) FROM person")).scalar_one() == before
    pid = _person(client, headers, community)
    for body, status in (
        ({"person_id": pid, "role": "chief", "cell": small_street.cell_codes[0]}, 422),
        ({"person_id": pid, "role": "leader"}, 422),
        ({"person_id": pid, "role": "leader", "cell": "nope"}, 404),
        ({"person_id": pid, "role": "building_captain", "building": "99999999"}, 404),
        ({"person_id": 10**8, "role": "leader", "cell": small_street.cell_codes[0]}, 404),
        (
            {
                "person_id": pid,
                "role": "leader",
                "cell": small_street.cell_codes[0],
                "employment": "full_time",
            },
            422,
        ),
    ):
        response = client.post("/api/v1/assignments", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
    assert db.execute(text("SELECT count(*) FROM role_assignment")).scalar_one() == 0


def test_scope_limits_who_assigns(
    client: TestClient, db: Session, small_street: SmallStreet
) -> None:
    import shapely

    from gridsvc.models import Community
    from gridsvc.repositories.bulk import to_db_geometry
    from gridsvc.services.imports import ensure_street

    street_id = ensure_street(db, street_code="320102097", street_name="他街道")
    db.add(
        Community(
            code="320102097001",
            name="他社区",
            street_id=street_id,
            geom=to_db_geometry(shapely.box(119, 32, 119.01, 32.01)),
        )
    )
    db.flush()
    create_user(
        db,
        username="other_staff",
        password=TEST_PASSWORD,
        role="community_staff",
        scope=ScopeSpec("community", "320102097001"),
    )
    create_user(
        db,
        username="a_leader",
        password=TEST_PASSWORD,
        role="leader",
        scope=ScopeSpec("cell", small_street.cell_codes[0]),
    )
    admin = _admin(client, db)
    pid = _person(client, admin, small_street.community_code)
    body = {"person_id": pid, "role": "grid_worker", "cell": small_street.cell_codes[0]}
    outsider = client.post(
        "/api/v1/assignments", json=body, headers=token_for(client, "other_staff")
    )
    assert outsider.status_code == 403
    leader = client.post("/api/v1/assignments", json=body, headers=token_for(client, "a_leader"))
    assert leader.status_code == 403  # a 格长 does not appoint people
    # ... but records visits in their own cell, not elsewhere.
    hh = db.execute(
        text(
            "INSERT INTO household (building_id, size) SELECT b.id, 2 FROM building b "
            "JOIN cell c ON c.id = b.cell_id WHERE c.code = :c RETURNING id"
        ),
        {"c": small_street.cell_codes[0]},
    ).scalar_one()
    other = db.execute(
        text(
            "INSERT INTO household (building_id, size) SELECT b.id, 1 FROM building b "
            "JOIN cell c ON c.id = b.cell_id WHERE c.code = :c RETURNING id"
        ),
        {"c": small_street.cell_codes[1]},
    ).scalar_one()
    visit = {"household_id": hh, "visited_on": local_today().isoformat(), "note": "入户走访"}
    leader_headers = token_for(client, "a_leader")
    assert client.post("/api/v1/visits", json=visit, headers=leader_headers).status_code == 201
    elsewhere = {**visit, "household_id": other}
    assert client.post("/api/v1/visits", json=elsewhere, headers=leader_headers).status_code == 403
    future = {**visit, "visited_on": (local_today() + timedelta(days=3)).isoformat()}
    assert client.post("/api/v1/visits", json=future, headers=leader_headers).status_code == 422
    page = client.get(
        f"/api/v1/cells/{small_street.cell_codes[0]}/visits?limit=10", headers=leader_headers
    ).json()
    assert page["number_matched"] == 1 and page["items"][0]["note"] == "入户走访"


def test_sectors_duties_and_the_responsibility_tree(
    client: TestClient, db: Session, small_street: SmallStreet
) -> None:
    headers = _admin(client, db)
    community = small_street.community_code
    codes = sorted(small_street.cell_codes)
    sector = client.post(
        f"/api/v1/communities/{community}/sectors",
        json={"name": "东片", "cells": codes[:2]},
        headers=headers,
    )
    assert sector.status_code == 201, sector.text
    sector_code = sector.json()["code"]
    assert sector.json()["cells"] == codes[:2]
    secretary = _person(client, headers, community, name="社区书记甲", party_status="直管")
    head = _person(client, headers, community, name="片长乙")
    leader = _person(client, headers, community, name="格长丙", phone="13900005678")
    for body in (
        {"person_id": secretary, "role": "社区书记", "community": community},
        {"person_id": head, "role": "sector_head", "sector": sector_code},
        {"person_id": leader, "role": "leader", "cell": codes[0]},
    ):
        response = client.post("/api/v1/assignments", json=body, headers=headers)
        assert response.status_code == 201, response.text
    changed = client.put(
        "/api/v1/duties/4", json={"duties": "格长每周走访一次全部重点户。"}, headers=headers
    )
    assert changed.status_code == 200
    assert client.put("/api/v1/duties/7", json={"duties": "x"}, headers=headers).status_code == 422
    tree = client.get(
        f"/api/v1/streets/{small_street.street_code}/responsibility-chart", headers=headers
    ).json()
    assert tree["level"] == "street" and tree["code"] == small_street.street_code
    (co,) = tree["children"]
    assert co["code"] == community and [p["name"] for p in co["people"]] == ["社区书记甲"]
    assert co["duties"].startswith("统筹协调")
    east, loose = co["children"]
    assert east["name"] == "东片" and [p["name"] for p in east["people"]] == ["片长乙"]
    assert [c["code"] for c in east["children"]] == codes[:2]
    assert loose["name"] == "未划片" and [c["code"] for c in loose["children"]] == codes[2:]
    first = east["children"][0]
    assert first["duties"] == "格长每周走访一次全部重点户。"
    assert first["people"][0]["name"] == "格长丙" and first["people"][0]["role_label"] == "格长"
    # A viewer sees the chart with phones masked.
    create_user(
        db,
        username="chart_viewer",
        password=TEST_PASSWORD,
        role="viewer",
        scope=ScopeSpec("street", small_street.street_code),
    )
    seen = client.get(
        f"/api/v1/streets/{small_street.street_code}/responsibility-chart",
        headers=token_for(client, "chart_viewer"),
    ).json()
    cell_person = seen["children"][0]["children"][0]["children"][0]["people"][0]
    assert cell_person["name"] == "格长丙" and cell_person["phone"] == "139****5678"
    svg = client.get(
        f"/api/v1/streets/{small_street.street_code}/responsibility-chart?format=svg",
        headers=headers,
    )
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "格长丙" in svg.text and "东片" in svg.text


def test_linked_households_posts_and_organisations(
    client: TestClient, db: Session, small_street: SmallStreet
) -> None:
    headers = _admin(client, db)
    community = small_street.community_code
    member = _person(client, headers, community, name="党员丁", party_status="in_service")
    resident = _person(client, headers, community, name="群众戊")
    hh = db.execute(
        text(
            "INSERT INTO household (building_id, size) SELECT id, 3 FROM building "
            "WHERE source_id = 'b0' AND source = 'test' RETURNING id"
        )
    ).scalar_one()
    url = f"/api/v1/people/{member}/linked-households"
    assert client.post(url, json={"household_id": hh}, headers=headers).status_code == 201
    assert client.post(url, json={"household_id": hh}, headers=headers).status_code == 409
    not_member = client.post(
        f"/api/v1/people/{resident}/linked-households", json={"household_id": hh}, headers=headers
    )
    assert not_member.status_code == 422 and "party member" in not_member.json()["detail"]
    link = client.get(url, headers=headers).json()[0]
    ended = client.post(f"/api/v1/linked-households/{link['id']}/end", json={}, headers=headers)
    assert ended.status_code == 200 and ended.json()["ends_on"] == local_today().isoformat()
    post = client.post(
        f"/api/v1/people/{member}/posts",
        json={"kind": "环保", "title": "垃圾分类督导", "starts_on": "2026-03-01"},
        headers=headers,
    )
    assert post.status_code == 201 and post.json()["kind"] == "environment"
    activity = client.post(
        f"/api/v1/posts/{post.json()['id']}/activities",
        json={"happened_on": "2026-03-05", "hours": 2.5, "note": "小区督导"},
        headers=headers,
    )
    assert activity.status_code == 201
    assert activity.json()["activities"] == [
        {"id": activity.json()["activities"][0]["id"], "happened_on": "2026-03-05", "hours": 2.5,
         "note": "小区督导"}
    ]  # fmt: skip
    early = client.post(
        f"/api/v1/posts/{post.json()['id']}/activities",
        json={"happened_on": "2026-01-01"},
        headers=headers,
    )
    assert early.status_code == 422
    org = client.post(
        f"/api/v1/communities/{community}/organisations",
        json={
            "name": "测试小学",
            "kind": "学校",
            "contact_name": "校长",
            "contact_phone": "025-84561234",
        },
        headers=headers,
    )
    assert org.status_code == 201 and org.json()["kind"] == "school"
    team = client.post(
        f"/api/v1/communities/{community}/volunteer-teams",
        json={"name": "测试巾帼志愿服务队", "kind": "巾帼"},
        headers=headers,
    )
    assert team.status_code == 201 and team.json()["kind"] == "women"
    _person(client, headers, community, name="志愿者己", volunteer_team="测试巾帼志愿服务队")
    members = client.get(
        f"/api/v1/communities/{community}/people?party_status=在职&limit=10", headers=headers
    ).json()
    assert [p["name"] for p in members["items"]] == ["党员丁"] and members["number_matched"] == 1
    vols = client.get(f"/api/v1/communities/{community}/people?volunteers=true", headers=headers)
    assert [p["name"] for p in vols.json()["items"]] == ["志愿者己"]
    teams = client.get(f"/api/v1/communities/{community}/volunteer-teams", headers=headers).json()
    assert [(t["name"], t["members"]) for t in teams] == [("测试巾帼志愿服务队", 1)]
    listed = client.get(f"/api/v1/communities/{community}/organisations", headers=headers).json()
    assert listed["number_matched"] == 1 and listed["items"][0]["contact_name"] == "校长"


def test_new_cells_inherit_the_sector_and_the_leader_follows(
    db: Session, small_street: SmallStreet
) -> None:
    from gridsvc.auth.principal import Principal
    from gridsvc.repositories.areas import get_community
    from gridsvc.services import people, redraw

    admin = Principal(id=0, username="t", role="admin")
    codes = sorted(small_street.cell_codes)
    people.create_sector(
        db, admin, community=small_street.community_code, name="北片", cells=codes[:2]
    )
    leader = people.create_person(db, admin, name="格长", community=small_street.community_code)
    people.assign(
        db, admin, person_id=leader.id, role="leader",
        target=people.resolve_target(db, "leader", cell=codes[0]),
    )  # fmt: skip
    community = get_community(db, small_street.community_code)
    plan = redraw.plan_merge(db, community, codes[:2])
    outcome = redraw.run(
        db, community, plan, request={}, reason="合并", user="t", commit=True,
        if_match=redraw.etag_for(community.code, 0),
    )  # fmt: skip
    (merged,) = outcome.impact["cells_created"]
    assert outcome.impact["people_rule"] == people.PEOPLE_RULE
    assert merged not in outcome.impact["cells_without_leader"]
    sector = db.execute(
        text(
            "SELECT s.name FROM cell_sector cs JOIN sector s ON s.id = cs.sector_id "
            "JOIN cell c ON c.id = cs.cell_id WHERE c.code = :c"
        ),
        {"c": merged},
    ).scalar_one()
    assert sector == "北片"
    community_id = community.id
    assert people.cells_without_leader(db, community_id) == codes[2:]


@pytest.mark.live
def test_second_leader_refused_under_concurrent_requests(live: tuple[str, str]) -> None:  # noqa: F811
    base, url = live
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        community = conn.execute(text("SELECT code FROM community LIMIT 1")).scalar_one()
        # The east cell, which has no 格长 yet (the west one has: tests.conftest.seed_two_cells).
        cell = conn.execute(text("SELECT code FROM cell ORDER BY code DESC LIMIT 1")).scalar_one()
    token = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": "boss", "password": "race-password-1"}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    ids = [
        httpx.post(
            f"{base}/api/v1/people",
            json={"name": f"候选{i}", "community": community},
            headers=headers,
        ).json()["id"]
        for i in range(6)
    ]
    results = race(
        [
            (
                lambda pid=pid: httpx.post(
                    f"{base}/api/v1/assignments",
                    json={"person_id": pid, "role": "leader", "cell": cell},
                    headers=headers,
                    timeout=30,
                )
            )
            for pid in ids
        ]
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * 5, [r.text for r in results]
    with engine.connect() as conn:
        leaders = conn.execute(
            text(
                "SELECT count(*) FROM role_assignment r JOIN cell c ON c.id = r.cell_id "
                "WHERE c.code = :c AND r.role = 'leader' AND r.ends_on IS NULL"
            ),
            {"c": cell},
        ).scalar_one()
    engine.dispose()
    assert leaders == 1


def test_a_building_named_with_a_cell_must_lie_in_that_cell(
    db: Session, small_street: SmallStreet
) -> None:
    import pytest

    from gridsvc.errors import NotFound
    from gridsvc.services import people

    nw, ne, *_ = sorted(small_street.cell_codes)
    ne_building = db.execute(
        text("SELECT b.id FROM building b JOIN cell c ON c.id = b.cell_id WHERE c.code = :c"),
        {"c": ne},
    ).scalar_one()
    target = people.resolve_target(db, "楼栋长", cell=ne, building=str(ne_building))
    assert target.id == ne_building
    assert people.resolve_target(db, "楼栋长", cell=ne, building="1栋").id == ne_building
    with pytest.raises(NotFound, match=nw):
        people.resolve_target(db, "楼栋长", cell=nw, building=str(ne_building))
