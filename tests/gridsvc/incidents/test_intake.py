"""Intake and routing: cell and 格长, deadlines from the category table, boundary flags with the
neighbour offered, community and street queues, duplicates, datums, bad input."""

from __future__ import annotations

from datetime import timedelta

import pyproj
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geodata.china import wgs84_to_gcj02
from gridsvc.domain import INCIDENT_CATEGORIES
from gridsvc.models import Incident, IncidentCategory, IncidentEvent
from tests.gridsvc.incidents.conftest import T0, X0, Y0, D, IncidentStreet, report

_TO_UTM = pyproj.Transformer.from_crs(4326, 32650, always_xy=True)


def _utm(g: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(g, lambda x, y: _TO_UTM.transform(x, y), interleaved=False)


def _metres(a: shapely.Geometry, b: shapely.Geometry) -> float:
    return _utm(a).distance(_utm(b))


def test_report_routes_to_cell_and_its_leader(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    nw = s.codes[0]
    lon, lat = s.centre(nw)
    r = report(client, s.headers["gz"], lon, lat, address="1栋东侧")
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["Location"] == f"/api/v1/incidents/{body['id']}"
    assert body["cell_code"] == nw and body["handling_cell_code"] == nw
    assert body["queue"] == "cell" and body["status"] == "filed"
    assert body["assignee_person_id"] == s.leaders[nw] and body["assignee"] == "王格长"
    assert body["reporter_kind"] == "leader"  # from the reporter's role
    assert body["needs_confirmation"] is False and body["duplicate_of_id"] is None
    # Deadlines come from the category row (data), counted from the report time.
    cat = db.get(IncidentCategory, "sanitation")
    inc = db.get(Incident, body["id"])
    assert inc.reported_at == T0
    assert inc.dispatch_due_at == T0 + timedelta(minutes=cat.dispatch_minutes)
    assert inc.close_due_at == T0 + timedelta(minutes=cat.close_minutes)
    assert inc.handling_unit == cat.handling_unit
    # The cell version valid at report time is recorded.
    version = db.scalar(
        text("SELECT id FROM cell_version WHERE cell_id = :c AND valid_to IS NULL"),
        {"c": s.cell_ids[nw]},
    )
    assert inc.cell_version_id == version
    events = db.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == inc.id)).all()
    assert [(e.action, e.from_status, e.to_status, e.actor) for e in events] == [
        ("file", None, "filed", "gz")
    ]


def test_categories_are_data(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    listed = client.get("/api/v1/incident-categories", headers=s.headers["ro"]).json()
    labels = {c["label"] for c in listed}
    assert {
        "矛盾纠纷",
        "治安隐患",
        "安全隐患",
        "环境卫生",
        "市政设施",
        "民生诉求",
        "社情民意",
    } <= labels
    # The seed is the vocabulary of gridsvc.domain (codes and labels).
    seeded = dict(db.execute(select(IncidentCategory.code, IncidentCategory.label)).all())
    assert seeded == INCIDENT_CATEGORIES
    # A category added as a row is usable at once, with its own deadlines; Chinese labels work.
    db.add(
        IncidentCategory(
            code="pets", label="宠物扰民", dispatch_minutes=120, close_minutes=600, urgency="low"
        )
    )
    db.flush()
    r = report(client, s.headers["jd"], *s.centre(s.codes[3]), category="宠物扰民")
    assert r.status_code == 201, r.text
    assert r.json()["category"] == "pets"
    assert r.json()["close_due_at"] == (T0 + timedelta(minutes=600)).isoformat()
    # An unknown category names the choices; nothing is written.
    before = db.scalar(select(func.count()).select_from(Incident))
    bad = report(client, s.headers["jd"], *s.centre(s.codes[3]), category="外星人")
    assert bad.status_code == 422 and "环境卫生" in bad.json()["detail"]
    assert db.scalar(select(func.count()).select_from(Incident)) == before
    # The database refuses an unknown category code too (foreign key, not a check).
    assert db.scalar(
        text(
            "SELECT count(*) FROM information_schema.table_constraints "
            "WHERE table_name = 'incident' AND constraint_type = 'FOREIGN KEY' "
            "AND constraint_name = 'fk_incident_category_incident_category'"
        )
    )


def test_point_near_boundary_is_flagged_with_neighbour(
    client: TestClient, incident_street: IncidentStreet
) -> None:
    s = incident_street
    nw, ne = s.codes[0], s.codes[1]
    boundary_x = X0 + D  # between NW and NE
    lat = Y0 + 1.5 * D
    nw_box = shapely.box(X0, Y0 + D, X0 + D, Y0 + 2 * D)
    for offset_deg in (0.00005, 0.00015, 0.0004):  # about 5 m, 14 m, 38 m west of the boundary
        p = shapely.Point(boundary_x - offset_deg, lat)
        expected_m = _metres(p, nw_box.boundary)
        body = report(client, s.headers["jd"], p.x, p.y).json()
        assert body["cell_code"] == nw
        assert abs(body["boundary_distance_m"] - expected_m) < 0.5
        if expected_m < 20:
            assert body["needs_confirmation"] is True
            assert body["suggested_cell_code"] == ne
        else:
            assert body["needs_confirmation"] is False
            assert body["suggested_cell_code"] is None


def test_point_near_the_outer_edge_is_not_flagged_without_a_neighbour(
    client: TestClient, incident_street: IncidentStreet
) -> None:
    s = incident_street
    nw = s.codes[0]
    # 5 m inside the community's west edge (nothing lies west of it) and 5 m below its north
    # edge: close to the boundary, but no other cell within 20 m — nothing to choose.
    for lon, lat in ((X0 + 0.00005, Y0 + 1.5 * D), (X0 + 0.5 * D, Y0 + 2 * D - 0.00005)):
        body = report(client, s.headers["jd"], lon, lat).json()
        assert body["cell_code"] == nw and body["boundary_distance_m"] < 20
        assert body["needs_confirmation"] is False and body["suggested_cell_code"] is None
    # 5 m from the east edge of the community, the neighbouring community has no cells: the
    # same. 5 m from the NE/SE edge there is a neighbour: flagged, the neighbour offered.
    body = report(client, s.headers["jd"], X0 + 2 * D - 0.00005, Y0 + 1.5 * D).json()
    assert body["needs_confirmation"] is False
    body = report(client, s.headers["jd"], X0 + 1.5 * D, Y0 + D + 0.00005).json()
    assert body["cell_code"] == s.codes[1] and body["needs_confirmation"] is True
    assert body["suggested_cell_code"] == s.codes[3]


def test_confirm_cell_moves_case_to_the_neighbour(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    ne = s.codes[1]
    body = report(client, s.headers["gz"], X0 + D - 0.00005, Y0 + 1.5 * D).json()
    assert body["needs_confirmation"]
    # Only the incident's cell or the offered one.
    r = client.post(
        f"/api/v1/incidents/{body['id']}/confirm-cell",
        json={"cell": s.codes[3]},
        headers=s.headers["sq"],
    )
    assert r.status_code == 422
    r = client.post(
        f"/api/v1/incidents/{body['id']}/confirm-cell",
        json={"cell": ne, "note": "实际在东侧楼道"},
        headers=s.headers["sq"],
    )
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["cell_code"] == ne and moved["handling_cell_code"] == ne
    assert moved["assignee_person_id"] == s.leaders[ne] and not moved["needs_confirmation"]
    again = client.post(
        f"/api/v1/incidents/{body['id']}/confirm-cell", json={"cell": ne}, headers=s.headers["sq"]
    )
    assert again.status_code == 409
    actions = db.scalars(
        select(IncidentEvent.action).where(IncidentEvent.incident_id == body["id"])
    ).all()
    assert actions == ["file", "confirm_cell"]


def test_points_outside_cells_go_to_community_then_street_queue(
    client: TestClient, incident_street: IncidentStreet
) -> None:
    s = incident_street
    # Inside the eastern community, which has no cells: its queue.
    r = report(client, s.headers["jd"], X0 + 2.5 * D, Y0 + D)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["queue"] == "community" and body["cell_code"] is None
    assert body["community_code"] == "320102099002" and body["street_code"] == "320102099"
    assert body["assignee_person_id"] is None
    # Just east of the cells (within 20 m): the community queue, with the nearest cell offered.
    near = report(client, s.headers["jd"], X0 + 2 * D + 0.0001, Y0 + 1.5 * D).json()
    assert near["queue"] == "community" and near["suggested_cell_code"] == s.codes[1]
    # Outside every community but near: the street queue of the nearest community.
    south = report(client, s.headers["jd"], X0 + D, Y0 - 0.003).json()
    assert south["queue"] == "street" and south["street_code"] == "320102099"
    assert south["community_code"] is None
    # The street staff see it; the community staff do not.
    seen = client.get("/api/v1/incidents?queue=street", headers=s.headers["jd"]).json()
    assert [i["id"] for i in seen["items"]] == [south["id"]]
    unseen = client.get("/api/v1/incidents?queue=street", headers=s.headers["sq"]).json()
    assert unseen["items"] == []
    # Far from everything: refused, not lost silently.
    far = report(client, s.headers["jd"], 116.39, 39.9)
    assert far.status_code == 422 and "outside every community" in far.json()["detail"]


def test_possible_duplicates(client: TestClient, incident_street: IncidentStreet) -> None:
    s = incident_street
    lon, lat = s.centre(s.codes[2])
    first = report(client, s.headers["jd"], lon, lat).json()
    s.clock.advance(days=2)
    # ~30 m away, same category, 2 days later: flagged as a duplicate of the first.
    second = report(client, s.headers["jd"], lon + 0.0003, lat).json()
    assert second["duplicate_of_id"] == first["id"]
    # Another category at the same spot is not a duplicate.
    other = report(client, s.headers["jd"], lon, lat, category="safety").json()
    assert other["duplicate_of_id"] is None
    # ~75 m away is too far.
    far = report(client, s.headers["jd"], lon + 0.0008, lat).json()
    assert _metres(shapely.Point(lon, lat), shapely.Point(lon + 0.0008, lat)) > 50
    assert far["duplicate_of_id"] in (None, second["id"]) and far["duplicate_of_id"] != first["id"]
    # Eight days after the last report nearby, nothing is a duplicate any more.
    s.clock.advance(days=8)
    late = report(client, s.headers["jd"], lon, lat).json()
    assert late["duplicate_of_id"] is None


def test_gcj02_point_is_converted_before_routing(
    client: TestClient, incident_street: IncidentStreet
) -> None:
    s = incident_street
    lon, lat = s.centre(s.codes[3])
    glon, glat = wgs84_to_gcj02(lon, lat)
    body = report(client, s.headers["jd"], float(glon), float(glat), datum="gcj02").json()
    assert body["cell_code"] == s.codes[3]
    assert abs(body["lon"] - lon) < 1e-5 and abs(body["lat"] - lat) < 1e-5


def test_bad_reports_refused_and_nothing_written(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    before = db.scalar(select(func.count()).select_from(Incident))
    lon, lat = s.centre(s.codes[0])
    cases = [
        ({"lon": 200, "lat": lat, "category": "sanitation"}, s.headers["jd"], 422),
        ({"lon": lon, "lat": lat}, s.headers["jd"], 422),
        ({"lon": lon, "lat": lat, "category": "sanitation", "extra": 1}, s.headers["jd"], 422),
        (
            {"lon": lon, "lat": lat, "category": "sanitation", "description": "x" * 5000},
            s.headers["jd"],
            422,
        ),
        ({"lon": lon, "lat": lat, "category": "sanitation"}, s.headers["ro"], 403),
        ({"lon": lon, "lat": lat, "category": "sanitation"}, {}, 401),
    ]
    for payload, headers, status in cases:
        r = client.post("/api/v1/incidents", json=payload, headers=headers)
        assert r.status_code == status, (payload, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert db.scalar(select(func.count()).select_from(Incident)) == before


def test_scope_of_reading(client: TestClient, incident_street: IncidentStreet) -> None:
    s = incident_street
    mine = report(client, s.headers["gz"], *s.centre(s.codes[0])).json()
    theirs = report(client, s.headers["gz2"], *s.centre(s.codes[1])).json()
    listed = client.get("/api/v1/incidents", headers=s.headers["gz"]).json()
    assert [i["id"] for i in listed["items"]] == [mine["id"]]
    assert (
        client.get(f"/api/v1/incidents/{theirs['id']}", headers=s.headers["gz"]).status_code == 404
    )
    detail = client.get(f"/api/v1/incidents/{mine['id']}", headers=s.headers["ro"])
    assert detail.status_code == 200 and detail.json()["allowed_actions"] == []
    assert detail.headers["ETag"] == '"1"'
    every = client.get("/api/v1/incidents?limit=1", headers=s.headers["jd"]).json()
    assert every["numberMatched"] == 2 and every["numberReturned"] == 1
    assert any(link["rel"] == "next" for link in every["links"])


def test_imported_incidents_get_deadlines_queue_and_leader(
    db: Session, incident_street: IncidentStreet, tmp_path
) -> None:
    import pandas as pd

    from geodata.readers import read_features
    from gridsvc.services.imports import import_incidents

    s = incident_street
    db.add(
        IncidentCategory(
            code="pets", label="宠物扰民", dispatch_minutes=120, close_minutes=600, urgency="low"
        )
    )
    db.flush()
    nw = s.centre(s.codes[0])
    rows = [
        {"经度": nw[0], "纬度": nw[1], "类别": "宠物扰民", "上报时间": "2026-03-01 09:30"},
        {"经度": X0 + 2.5 * D, "纬度": Y0 + D, "类别": "环境卫生", "上报时间": "2026-03-01 10:00"},
    ]
    path = tmp_path / "事件.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    import_incidents(db, read_features(path, kind="point"), source="sheet")
    got = db.execute(
        select(
            Incident.category,
            Incident.queue,
            Incident.handling_cell_id,
            Incident.assignee_person_id,
            Incident.reported_at,
            Incident.close_due_at,
            Incident.street_id,
        )
        .where(Incident.reported_at < T0)
        .order_by(Incident.reported_at)
    ).all()
    pets, outside = got
    assert pets.category == "pets" and pets.queue == "cell"
    assert pets.handling_cell_id == s.cell_ids[s.codes[0]]
    assert pets.assignee_person_id == s.leaders[s.codes[0]]
    assert pets.close_due_at == pets.reported_at + timedelta(minutes=600)
    assert outside.queue == "community" and outside.handling_cell_id is None
    assert outside.street_id is not None
