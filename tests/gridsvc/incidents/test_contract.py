"""The typed contract of the incident API (issue 13 item 4): every route declares its
response in the OpenAPI document, and declaring it changed no answer — each body is exactly
what the service returns (no key dropped, none added, no value re-rendered), for a role that
sees personal data and one that does not, and for an idempotent replay."""

from __future__ import annotations

import io
import json
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsvc.main import create_app
from gridsvc.models import User
from gridsvc.repositories import incidents as repo
from gridsvc.services import incidents as svc
from gridsvc.services.principals import principal_for
from tests.gridsvc.incidents.conftest import T0, X0, Y0, D, IncidentStreet, act, report

#: (path, method, status) → the response model named in the OpenAPI document.
TYPED = {
    ("/api/v1/incidents", "post", "201"): "IncidentOut",
    ("/api/v1/incidents", "get", "200"): "IncidentPage",
    ("/api/v1/incidents/{incident_id}", "get", "200"): "IncidentDetailOut",
    ("/api/v1/incidents/{incident_id}/transitions", "post", "200"): "IncidentOut",
    ("/api/v1/incidents/{incident_id}/confirm-cell", "post", "200"): "IncidentOut",
    ("/api/v1/incidents/{incident_id}/photos", "post", "201"): "PhotoOut",
}


def test_incident_routes_declare_their_responses() -> None:
    doc = create_app().openapi()
    for (path, method, status), model in TYPED.items():
        content = doc["paths"][path][method]["responses"][status]["content"]
        assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}
    detail = doc["components"]["schemas"]["IncidentDetailOut"]
    # Masked personal data is optional (absent for roles without personal data), the rest is
    # always there.
    assert {"reporter_name", "reporter_phone"}.isdisjoint(detail["required"])
    assert {"allowed_actions", "due_at", "events", "photos", "overdue"} <= set(detail["required"])
    photo = doc["paths"]["/api/v1/incidents/{incident_id}/photos/{photo_id}"]["get"]
    assert set(photo["responses"]["200"]["content"]) == {"image/jpeg", "image/png", "image/webp"}
    created = doc["paths"]["/ogc/collections/cells/items"]["post"]["responses"]["201"]
    assert {"Location", "ETag"} <= set(created["headers"]) and "content" not in created


def _plain(value: Any) -> Any:
    """What a service's answer looks like as JSON."""
    return json.loads(json.dumps(jsonable_encoder(value)))


def _principal(db: Session, username: str) -> Any:
    return principal_for(db, db.scalar(select(User).where(User.username == username)))


def test_answers_are_exactly_what_the_services_return(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    ne = s.codes[1]
    # Intake, near the NW/NE boundary (flagged), with an Idempotency-Key; the retry replays.
    key = {"Idempotency-Key": "6f1c2a8e-0d3b-4c53-9b1e-2f4a7c9d1e00"}
    headers = {**s.headers["gz"], **key}
    point = {"reporter_name": "张阿姨", "reporter_phone": "13800000000"}
    first = report(client, headers, X0 + D - 0.00005, Y0 + 1.5 * D, **point)
    assert first.status_code == 201, first.text
    incident_id = first.json()["id"]
    assert first.json() == _plain(repo.incident_detail(db, incident_id, T0))
    replay = report(client, headers, X0 + D - 0.00005, Y0 + 1.5 * D, **point)
    assert replay.status_code == 201 and replay.headers["Idempotency-Replayed"] == "true"
    assert replay.json() == first.json()

    # A photo, then the detail: staff see the reporter, a viewer does not (the keys are absent).
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 40)).save(buf, format="PNG")
    files = {"file": ("a.png", buf.getvalue(), "image/png")}
    photo = client.post(f"/api/v1/incidents/{incident_id}/photos", files=files, headers=headers)
    assert photo.status_code == 201, photo.text
    assert set(photo.json()) == {"id", "media_type", "size_bytes", "width", "height", "sha256"}
    for username in ("sq", "ro"):
        got = client.get(f"/api/v1/incidents/{incident_id}", headers=s.headers[username]).json()
        want = _plain(svc.get_incident(db, _principal(db, username), incident_id, T0))
        assert got == want
        assert ("reporter_phone" in got) is (username == "sq")
        assert got["photos"][0]["id"] == photo.json()["id"]

    # The list, a boundary confirmation and a workflow step.
    listed = client.get("/api/v1/incidents", headers=s.headers["sq"]).json()
    items, total = svc.list_incidents(
        db, _principal(db, "sq"), svc.ListQuery(), now=T0, limit=100, offset=0
    )
    assert listed["items"] == _plain(items) and listed["numberMatched"] == total
    assert [link["rel"] for link in listed["links"]] == ["self"]
    confirmed = client.post(
        f"/api/v1/incidents/{incident_id}/confirm-cell", json={"cell": ne}, headers=s.headers["sq"]
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == _plain(repo.incident_detail(db, incident_id, T0))
    step = act(client, s.headers["sq"], incident_id, "dispatch")
    assert step.status_code == 200, step.text
    assert step.json() == _plain(repo.incident_detail(db, incident_id, T0))
    assert step.json()["status"] == "dispatched" and step.json()["due_at"] is not None
