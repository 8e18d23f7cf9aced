"""The audit log: every write names who, when and why, with the row before and after; staff read
their own area's events; nobody can edit or delete the log, not even with SQL."""

# ruff: noqa: F811  (the users fixture is imported from test_api)
from __future__ import annotations

import pytest
import shapely.geometry
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tests.gridsvc.conftest import SmallStreet, token_for
from tests.gridsvc.test_api import users  # noqa: F401  (fixture)


def _events(client: TestClient, headers: dict[str, str], **params: object) -> list[dict]:
    response = client.get("/api/v1/audit", headers=headers, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _merge(client: TestClient, users: SmallStreet, headers: dict[str, str]) -> dict:
    url = f"/api/v1/communities/{users.community_code}/redraw"
    for other in users.cell_codes[1:]:
        body = {
            "op": "merge",
            "cells": [users.cell_codes[0], other],
            "reason": "两格合并（审计测试）",
        }
        preview = client.post(f"{url}/preview", json=body, headers=headers)
        if preview.status_code == 200:
            commit = client.post(
                f"{url}/commit", json=body, headers={**headers, "If-Match": preview.headers["ETag"]}
            )
            assert commit.status_code == 200, commit.text
            return commit.json()["impact"]
    raise AssertionError("no neighbour to merge with")


def test_a_redraw_logs_boundaries_before_and_after_with_reason(
    client: TestClient, users: SmallStreet
) -> None:
    street = token_for(client, "street1")
    impact = _merge(client, users, street)
    versions = _events(client, street, table="cell_version", actor="street1")
    closed = [
        e
        for e in versions
        if e["action"] == "update" and e["before"]["valid_to"] is None and e["after"]["valid_to"]
    ]
    opened = [e for e in versions if e["action"] == "insert"]
    # The two merged cells' versions were closed and the new cell's opened.
    assert len(closed) == 2 and len(opened) == 1
    for event in versions:
        assert event["actor"] == "street1"
        assert event["reason"] == "两格合并（审计测试）"
    for event in closed:
        # The boundary itself is in the log (GeoJSON), so the change can be reviewed.
        assert shapely.geometry.shape(event["before"]["geom"]).area > 0
    merged = shapely.geometry.shape(opened[0]["after"]["geom"])
    parts = [shapely.geometry.shape(e["before"]["geom"]) for e in closed]
    assert merged.area == pytest.approx(sum(p.area for p in parts), rel=1e-6)
    cells = _events(client, street, table="cell", actor="street1")
    assert {e["after"]["code"] for e in cells if e["action"] == "insert"} == set(
        impact["cells_created"]
    )


def test_assignments_log_who_changed_what(
    client: TestClient, db: Session, users: SmallStreet
) -> None:
    street = token_for(client, "street1")
    person = client.post(
        "/api/v1/people",
        json={"name": "审计员", "community": users.community_code, "phone": "13800001111"},
        headers=street,
    )
    assert person.status_code == 201, person.text
    cell = users.cell_codes[2]
    assigned = client.post(
        "/api/v1/assignments",
        json={"person_id": person.json()["id"], "role": "grid_worker", "cell": cell},
        headers=street,
    )
    assert assigned.status_code == 201, assigned.text
    assignment = assigned.json()["id"]
    ended = client.post(f"/api/v1/assignments/{assignment}/end", json={}, headers=street)
    assert ended.status_code == 200, ended.text

    events = _events(client, street, table="role_assignment", row_id=assignment)
    assert [e["action"] for e in events] == ["update", "insert"]  # newest first
    update, insert = events
    assert insert["after"]["role"] == "grid_worker" and insert["before"] is None
    assert update["before"]["ends_on"] is None and update["after"]["ends_on"] is not None
    assert {e["actor"] for e in events} == {"street1"}
    assert insert["cell_id"] is not None and insert["community_id"] is not None


def test_the_log_is_scoped_and_staff_only(client: TestClient, users: SmallStreet) -> None:
    _merge(client, users, token_for(client, "street1"))
    assert _events(client, token_for(client, "comm1"), table="cell_version")
    for role_user in ("leader1", "viewer1"):
        response = client.get("/api/v1/audit", headers=token_for(client, role_user))
        assert response.status_code == 403
    # Users are logged without their password hash; only admins see area-less events.
    admin = _events(client, token_for(client, "admin1"), table="app_user")
    assert admin and all("password_hash" not in (e["after"] or {}) for e in admin)
    assert "admin1" in {e["after"]["username"] for e in admin}
    # Street staff see the users of their street, not the admin (who belongs to no area).
    street = _events(client, token_for(client, "street1"), table="app_user")
    assert "admin1" not in {e["after"]["username"] for e in street}
    assert {e["after"]["username"] for e in street} >= {"street1", "comm1", "leader1"}


def test_nobody_can_edit_or_delete_the_log(
    client: TestClient, db: Session, users: SmallStreet
) -> None:
    _merge(client, users, token_for(client, "street1"))
    for statement in (
        "UPDATE audit_event SET actor = 'someone else'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
    ):
        with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
            db.execute(text(statement))
    assert db.scalar(text("SELECT count(*) FROM audit_event WHERE actor = 'street1'")) > 0


def test_an_import_is_logged_once_as_a_summary(
    client: TestClient, db: Session, users: SmallStreet
) -> None:
    street = token_for(client, "street1")
    before = db.scalar(text("SELECT count(*) FROM audit_event"))
    geojson = (
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"新楼"},'
        '"geometry":{"type":"Polygon","coordinates":[[[118.9001,32.1001],[118.9003,32.1001],'
        "[118.9003,32.1003],[118.9001,32.1003],[118.9001,32.1001]]]}}]}"
    )
    response = client.post(
        "/api/v1/imports/buildings",
        files={"file": ("楼.geojson", geojson.encode(), "application/geo+json")},
        data={"commit": "true"},
        headers=street,
    )
    assert response.status_code == 200, response.text
    events = _events(client, token_for(client, "admin1"), table="buildings")
    assert len(events) == 1 and events[0]["action"] == "import.buildings"
    assert events[0]["after"]["inserted"] == 1 and events[0]["actor"] == "street1"
    assert db.scalar(text("SELECT count(*) FROM audit_event")) == before + 1
