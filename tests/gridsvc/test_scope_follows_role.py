"""Scope follows the role (issue 12, item 9): a 格长's sign-in reaches the cell they lead now,
the assignments route masks residents like every other route, and no write in one community
touches another community's households, persons or volunteer teams."""

from __future__ import annotations

import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridsvc.services.clock import local_today
from gridsvc.services.users import ScopeSpec, create_user
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet, token_for


def _admin(client: TestClient, db: Session) -> dict[str, str]:
    create_user(db, username="scope_admin", password=TEST_PASSWORD, role="admin")
    return token_for(client, "scope_admin")


def _post(client: TestClient, path: str, body: dict, headers: dict[str, str]) -> dict:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _household(db: Session, cell: str, size: int = 2) -> int:
    return db.execute(
        text(
            "INSERT INTO household (building_id, size) SELECT b.id, :n FROM building b "
            "JOIN cell c ON c.id = b.cell_id WHERE c.code = :c LIMIT 1 RETURNING id"
        ),
        {"c": cell, "n": size},
    ).scalar_one()


def _cell_id(db: Session, code: str) -> int:
    return db.execute(text("SELECT id FROM cell WHERE code = :c"), {"c": code}).scalar_one()


def _merge(db: Session, community_code: str, codes: list[str]) -> str:
    """Merge the cells (committed, as staff would) and return the new cell's code."""
    from gridsvc.repositories.areas import get_community
    from gridsvc.services import redraw

    community = get_community(db, community_code)
    plan = redraw.plan_merge(db, community, codes)
    outcome = redraw.run(
        db, community, plan, request={}, reason="合并", user="t", commit=True,
        if_match=redraw.etag_for(community.code, 0),
    )  # fmt: skip
    (merged,) = outcome.impact["cells_created"]
    return merged


def test_a_leaders_scope_follows_their_active_role(
    client: TestClient, db: Session, small_street: SmallStreet
) -> None:
    admin = _admin(client, db)
    codes = sorted(small_street.cell_codes)
    pid = _post(client, "/api/v1/people", {"name": "钱格长", "community": small_street.community_code}, admin)["id"]  # fmt: skip
    _post(client, "/api/v1/assignments", {"person_id": pid, "role": "leader", "cell": codes[0]}, admin)  # fmt: skip
    # The account is linked to the cell's 格长 when it is created.
    create_user(
        db,
        username="qian",
        password=TEST_PASSWORD,
        role="leader",
        scope=ScopeSpec("cell", codes[0]),
    )
    me = token_for(client, "qian")
    assert client.get("/api/v1/me", headers=me).json()["cell_id"] == _cell_id(db, codes[0])

    # A merge retires their cell: their role moves to the new cell, and so does their scope —
    # with the token they signed in with before the merge.
    merged = _merge(db, small_street.community_code, codes[:2])
    assert client.get("/api/v1/me", headers=me).json()["cell_id"] == _cell_id(db, merged)
    assert client.get(f"/api/v1/cells/{merged}/assignments", headers=me).status_code == 200
    assert client.get(f"/api/v1/cells/{codes[2]}/assignments", headers=me).status_code == 403

    # Their role ends: they reach no cell at all (not their old one, not the new one).
    (role,) = [
        r
        for r in client.get(f"/api/v1/cells/{merged}/assignments", headers=admin).json()
        if r["person_id"] == pid
    ]
    ended = client.post(f"/api/v1/assignments/{role['id']}/end", json={}, headers=admin)
    assert ended.status_code == 200, ended.text
    assert client.get("/api/v1/me", headers=me).json()["cell_id"] is None
    assert client.get(f"/api/v1/cells/{merged}/assignments", headers=me).status_code == 403
    visit = {
        "household_id": _household(db, merged),
        "visited_on": local_today().isoformat(),
        "note": "入户",
    }
    assert client.post("/api/v1/visits", json=visit, headers=me).status_code == 403

    # Appointed 格长 of another cell: that cell is theirs now.
    _post(client, "/api/v1/assignments", {"person_id": pid, "role": "leader", "cell": codes[3]}, admin)  # fmt: skip
    assert client.get("/api/v1/me", headers=me).json()["cell_id"] == _cell_id(db, codes[3])
    assert client.get(f"/api/v1/cells/{codes[3]}/assignments", headers=me).status_code == 200


def test_an_unlinked_leader_account_follows_its_cells_leader_through_a_merge(
    client: TestClient, db: Session, small_street: SmallStreet
) -> None:
    admin = _admin(client, db)
    codes = sorted(small_street.cell_codes)
    # An account made before the cell had a 格长 is not linked to any person.
    create_user(
        db, username="old_acct", password=TEST_PASSWORD, role="leader",
        scope=ScopeSpec("cell", codes[0]),
    )  # fmt: skip
    pid = _post(client, "/api/v1/people", {"name": "孙格长", "community": small_street.community_code}, admin)["id"]  # fmt: skip
    _post(client, "/api/v1/assignments", {"person_id": pid, "role": "leader", "cell": codes[0]}, admin)  # fmt: skip
    me = token_for(client, "old_acct")
    merged = _merge(db, small_street.community_code, codes[:2])
    assert client.get("/api/v1/me", headers=me).json()["cell_id"] == _cell_id(db, merged)


def test_cell_assignments_mask_residents_for_roles_without_personal_data(
    client: TestClient, db: Session, small_street: SmallStreet
) -> None:
    admin = _admin(client, db)
    cell = small_street.cell_codes[0]
    hh = _household(db, cell)
    resident = _post(client, "/api/v1/people", {"name": "赵住户", "household_id": hh}, admin)["id"]  # fmt: skip
    staff = _post(client, "/api/v1/people", {"name": "李网格员", "community": small_street.community_code}, admin)["id"]  # fmt: skip
    building = db.execute(text("SELECT building_id FROM household WHERE id = :h"), {"h": hh}).scalar_one()  # fmt: skip
    _post(client, "/api/v1/assignments", {"person_id": resident, "role": "informant", "building": str(building), "household_id": hh}, admin)  # fmt: skip
    _post(client, "/api/v1/assignments", {"person_id": staff, "role": "grid_worker", "cell": cell}, admin)  # fmt: skip
    create_user(
        db, username="a_viewer", password=TEST_PASSWORD, role="viewer",
        scope=ScopeSpec("community", small_street.community_code),
    )  # fmt: skip
    path = f"/api/v1/cells/{cell}/assignments"
    full = {r["person_id"]: r for r in client.get(path, headers=admin).json()}
    assert full[resident]["person"] == "赵住户" and full[resident]["household_id"] == hh
    seen = {r["person_id"]: r for r in client.get(path, headers=token_for(client, "a_viewer")).json()}  # fmt: skip
    assert seen[resident]["person"] == "赵**" and seen[resident]["household_id"] is None
    assert "赵住户" not in client.get(path, headers=token_for(client, "a_viewer")).text
    assert seen[staff]["person"] == "李网格员"  # staff names stay readable, as in the tree
    # The person record's own roles do not name the household either.
    person = client.get(f"/api/v1/people/{resident}", headers=token_for(client, "a_viewer"))
    assert person.status_code == 200, person.text
    assert all(role["household_id"] is None for role in person.json()["roles"])


def test_no_write_in_one_community_touches_another(
    client: TestClient, db: Session, small_street: SmallStreet
) -> None:
    from gridsvc.models import Building, Community
    from gridsvc.repositories.bulk import to_db_geometry

    admin = _admin(client, db)
    # A second community of the same street, with a household and a volunteer team.
    street_id = db.execute(
        text("SELECT id FROM street WHERE code = :c"), {"c": small_street.street_code}
    ).scalar_one()
    other = Community(
        code=small_street.street_code + "002",
        name="邻社区",
        street_id=street_id,
        geom=to_db_geometry(shapely.box(118.95, 32.10, 118.96, 32.11)),
    )
    db.add(other)
    db.flush()
    footprint = to_db_geometry(shapely.box(118.951, 32.101, 118.952, 32.102))
    db.add(Building(source="test", source_id="other1", community_id=other.id, footprint=footprint))
    db.flush()
    their_household = db.execute(
        text(
            "INSERT INTO household (building_id, size) SELECT id, 3 FROM building "
            "WHERE community_id = :c RETURNING id"
        ),
        {"c": other.id},
    ).scalar_one()
    their_team = _post(client, f"/api/v1/communities/{other.code}/volunteer-teams", {"name": "邻社区志愿队", "kind": "party"}, admin)  # fmt: skip
    their_person = _post(client, "/api/v1/people", {"name": "邻居", "community": other.code}, admin)["id"]  # fmt: skip
    create_user(
        db, username="our_staff", password=TEST_PASSWORD, role="community_staff",
        scope=ScopeSpec("community", small_street.community_code),
    )  # fmt: skip
    ours = token_for(client, "our_staff")

    def counts() -> tuple[int, int, int]:
        return db.execute(
            text(
                "SELECT (SELECT count(*) FROM person), (SELECT count(*) FROM visit), "
                "(SELECT count(*) FROM person WHERE volunteer_team_id = :t)"
            ),
            {"t": their_team["id"]},
        ).one()

    before = counts()
    ours_code, today = small_street.community_code, local_today().isoformat()
    attempts = [
        ("/api/v1/people", {"name": "甲", "community": ours_code, "household_id": their_household}),
        ("/api/v1/people", {"name": "乙", "household_id": their_household}),
        (
            "/api/v1/people",
            {"name": "丙", "community": ours_code, "volunteer_team": str(their_team["id"])},
        ),
        ("/api/v1/visits", {"household_id": their_household, "visited_on": today}),
    ]
    our_household = _household(db, small_street.cell_codes[0])
    attempts.append(
        (
            "/api/v1/visits",
            {"household_id": our_household, "person_id": their_person, "visited_on": today},
        )
    )
    for path, body in attempts:
        response = client.post(path, json=body, headers=ours)
        assert response.status_code in (403, 404, 422), (path, body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert counts() == before
