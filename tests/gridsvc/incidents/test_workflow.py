"""The case workflow: the allowed steps (and 409 with nothing changed for every other), roles and
scopes, 上报 one grid level up, deadlines with a controllable clock, redraws after a report."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridsvc.models import Cell, Incident, IncidentEvent
from tests.gridsvc.incidents.conftest import T0, X0, Y0, D, IncidentStreet, act, report

#: The workflow as the issue states it, written here independently of the service's table:
#: action → states it applies to, and the state it leads to.
SPEC: dict[str, tuple[set[str], str]] = {
    "dispatch": ({"filed", "returned", "escalated"}, "dispatched"),
    "handle": ({"dispatched", "returned"}, "handled"),
    "verify": ({"handled"}, "verified"),
    "close": ({"verified"}, "closed"),
    "return": ({"handled", "verified"}, "returned"),
    "escalate": ({"filed", "dispatched", "returned", "escalated"}, "escalated"),
    "park": ({"filed", "dispatched", "handled", "returned", "escalated"}, "parked"),
    "resume": ({"parked"}, "dispatched"),
}
#: How to bring a fresh case into each state.
PATHS: dict[str, list[str]] = {
    "filed": [],
    "dispatched": ["dispatch"],
    "handled": ["dispatch", "handle"],
    "verified": ["dispatch", "handle", "verify"],
    "closed": ["dispatch", "handle", "verify", "close"],
    "returned": ["dispatch", "handle", "return"],
    "escalated": ["escalate"],
    "parked": ["park"],
}
NOTE = {"note": "原因说明"}


def _snapshot(db: Session, incident_id: int) -> tuple[Any, ...]:
    db.expire_all()
    inc = db.get(Incident, incident_id)
    events = db.scalar(select(func.count()).where(IncidentEvent.incident_id == incident_id))
    return (
        inc.status,
        inc.version,
        inc.updated_at,
        inc.queue,
        inc.handling_cell_id,
        inc.dispatched_at,
        inc.closed_at,
        events,
    )


def _case_in(client: TestClient, s: IncidentStreet, state: str) -> int:
    body = report(client, s.headers["adm"], *s.centre(s.codes[0])).json()
    for action in PATHS[state]:
        r = act(client, s.headers["adm"], body["id"], action, **NOTE)
        assert r.status_code == 200, r.text
    assert r.json()["status"] == state if PATHS[state] else True
    return int(body["id"])


def test_happy_path_records_every_step(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    case = report(client, s.headers["gz"], *s.centre(s.codes[0])).json()["id"]
    steps = [
        ("sq", "dispatch", 12),
        ("wy", "handle", 60 * 5),
        ("gz", "verify", 60),
        ("sq", "close", 30),
    ]
    for user, action, minutes in steps:
        s.clock.advance(minutes=minutes)
        r = act(client, s.headers[user], case, action, note=f"{action} 完成")
        assert r.status_code == 200, r.text
        assert r.headers["ETag"] == f'"{r.json()["version"]}"'
    inc = db.get(Incident, case)
    db.refresh(inc)
    assert inc.status == "closed" and inc.version == 5
    assert inc.dispatched_at == T0 + timedelta(minutes=12)
    assert inc.closed_at == T0 + timedelta(minutes=12 + 300 + 60 + 30)
    events = db.execute(
        select(
            IncidentEvent.action,
            IncidentEvent.from_status,
            IncidentEvent.to_status,
            IncidentEvent.actor,
            IncidentEvent.at,
        )
        .where(IncidentEvent.incident_id == case)
        .order_by(IncidentEvent.id)
    ).all()
    assert [tuple(e[:4]) for e in events] == [
        ("file", None, "filed", "gz"),
        ("dispatch", "filed", "dispatched", "sq"),
        ("handle", "dispatched", "handled", "wy"),
        ("verify", "handled", "verified", "gz"),
        ("close", "verified", "closed", "sq"),
    ]
    assert [e.at for e in events] == sorted(e.at for e in events)
    detail = client.get(f"/api/v1/incidents/{case}", headers=s.headers["sq"]).json()
    assert [e["action"] for e in detail["events"]] == [
        "file",
        "dispatch",
        "handle",
        "verify",
        "close",
    ]
    assert detail["allowed_actions"] == []
    # The record is append-only in the database too.
    with pytest.raises(Exception, match="append-only"), db.begin_nested():
        db.execute(text("UPDATE incident_event SET note = 'x' WHERE incident_id = :i"), {"i": case})


@pytest.mark.parametrize("state", list(PATHS))
def test_every_action_from_every_state(
    client: TestClient, db: Session, incident_street: IncidentStreet, state: str
) -> None:
    """Allowed steps succeed; every other is refused with 409 and nothing changes."""
    s = incident_street
    for action, (sources, target) in SPEC.items():
        case = _case_in(client, s, state)
        before = _snapshot(db, case)
        r = act(client, s.headers["adm"], case, action, **NOTE)
        if state in sources:
            assert r.status_code == 200, (state, action, r.text)
            assert r.json()["status"] == target
            assert _snapshot(db, case)[-1] == before[-1] + 1  # one more event
        else:
            assert r.status_code == 409, (state, action, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["status_now"] == state
            assert _snapshot(db, case) == before


def test_roles_and_scopes(client: TestClient, db: Session, incident_street: IncidentStreet) -> None:
    s = incident_street
    case = report(client, s.headers["gz"], *s.centre(s.codes[0])).json()["id"]
    before = _snapshot(db, case)
    # A viewer sees the case but may not act; another cell's 格长 does not even see it.
    assert act(client, s.headers["ro"], case, "dispatch").status_code == 403
    assert act(client, s.headers["gz2"], case, "dispatch").status_code == 404
    # A 网格员 may not dispatch; nobody closes a case that was not verified.
    assert act(client, s.headers["wy"], case, "dispatch").status_code == 403
    assert act(client, s.headers["sq"], case, "close").status_code == 409
    # Unknown actions and missing reasons are bad input.
    assert act(client, s.headers["sq"], case, "teleport").status_code == 422
    assert act(client, s.headers["sq"], case, "park").status_code == 422
    assert _snapshot(db, case) == before
    for user, action in (("gz", "dispatch"), ("wy", "handle"), ("gz", "verify")):
        assert act(client, s.headers[user], case, action).status_code == 200
    # Closing is for community or street staff, not the 格长.
    assert act(client, s.headers["gz"], case, "close").status_code == 403
    assert act(client, s.headers["jd"], case, "close").status_code == 200


def test_stale_version_is_a_conflict(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    case = report(client, s.headers["gz"], *s.centre(s.codes[0])).json()["id"]
    etag = client.get(f"/api/v1/incidents/{case}", headers=s.headers["sq"]).headers["ETag"]
    assert act(client, s.headers["gz"], case, "dispatch").status_code == 200
    before = _snapshot(db, case)
    # Parking would be legal from "dispatched", but it was decided on the version before.
    r = client.post(
        f"/api/v1/incidents/{case}/transitions",
        json={"action": "park", "note": "等待施工"},
        headers={**s.headers["sq"], "If-Match": etag},
    )
    assert r.status_code == 409 and "changed since" in r.json()["detail"]
    assert _snapshot(db, case) == before


def test_escalation_climbs_the_grid_levels(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    nw, ne = s.codes[0], s.codes[1]
    # NE acts as the 片区 (level 2) above NW for this test.
    db.get(Cell, s.cell_ids[ne]).level = 2
    db.get(Cell, s.cell_ids[nw]).parent_id = s.cell_ids[ne]
    db.flush()
    case = report(client, s.headers["gz"], *s.centre(nw)).json()["id"]
    up = act(client, s.headers["gz"], case, "escalate", note="涉及多个网格")
    assert up.status_code == 200, up.text
    body = up.json()
    assert body["queue"] == "cell" and body["handling_cell_code"] == ne
    assert body["assignee_person_id"] == s.leaders[ne] and body["cell_code"] == nw
    # Now the 片区's 格长 handles it; the cell's own 格长 no longer may.
    assert act(client, s.headers["gz"], case, "dispatch").status_code == 403
    assert client.get(f"/api/v1/incidents/{case}", headers=s.headers["gz2"]).status_code == 200
    up = act(client, s.headers["gz2"], case, "escalate", note="片区无法处理")
    assert up.json()["queue"] == "community" and up.json()["handling_cell_code"] is None
    # Out of the 片区's hands (and sight) now.
    assert act(client, s.headers["gz2"], case, "dispatch").status_code == 404
    up = act(client, s.headers["sq"], case, "escalate", note="需街道协调")
    assert up.json()["queue"] == "street"
    assert act(client, s.headers["sq"], case, "dispatch").status_code == 403
    before = _snapshot(db, case)
    top = act(client, s.headers["adm"], case, "escalate", note="再上报")
    assert top.status_code == 409 and _snapshot(db, case) == before
    # The street dispatches it back down to a cell's team.
    down = act(client, s.headers["jd"], case, "dispatch", to_cell=s.codes[3])
    assert down.status_code == 200, down.text
    assert down.json()["queue"] == "cell" and down.json()["handling_cell_code"] == s.codes[3]
    data = db.scalars(
        select(IncidentEvent.data)
        .where(IncidentEvent.incident_id == case, IncidentEvent.action == "escalate")
        .order_by(IncidentEvent.id)
    ).all()
    assert [d["to"]["queue"] for d in data] == ["cell", "community", "street"]


def test_deadlines_and_overdue_with_the_clock(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    case = report(client, s.headers["gz"], *s.centre(s.codes[0]), category="safety").json()
    dispatch_due = T0 + timedelta(minutes=10)  # 安全隐患 is urgent
    assert case["dispatch_due_at"] == dispatch_due.isoformat()

    def overdue_ids() -> list[int]:
        page = client.get("/api/v1/incidents?overdue=true", headers=s.headers["sq"]).json()
        return [i["id"] for i in page["items"]]

    s.clock.set(dispatch_due - timedelta(seconds=1))
    assert overdue_ids() == []
    s.clock.set(dispatch_due + timedelta(seconds=1))
    assert overdue_ids() == [case["id"]]
    assert act(client, s.headers["sq"], case["id"], "dispatch").status_code == 200
    assert overdue_ids() == []  # dispatched late, but not past the close deadline
    close_due = db.get(Incident, case["id"]).close_due_at
    s.clock.set(close_due + timedelta(minutes=1))
    assert overdue_ids() == [case["id"]]
    # A case handled without a recorded dispatch time (as imported data has) is not late to
    # dispatch: the dispatch deadline applies while the case awaits dispatch.
    other = report(client, s.headers["gz"], *s.centre(s.codes[0])).json()["id"]
    waiting = report(client, s.headers["gz"], *s.centre(s.codes[0])).json()["id"]
    db.execute(text("UPDATE incident SET status = 'handled' WHERE id = :i"), {"i": other})
    s.clock.advance(minutes=31)  # past both dispatch deadlines (环境卫生: 30 min)
    late = overdue_ids()
    assert waiting in late and other not in late
    # Parked cases are not counted as overdue (挂账 is a decision, recorded with its reason).
    assert act(client, s.headers["sq"], case["id"], "park", note="等待燃气公司").status_code == 200
    assert overdue_ids() == [waiting]


def test_redraw_after_report_keeps_the_report_time_version(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    nw, ne = s.codes[0], s.codes[1]
    point = (X0 + D - 0.0005, Y0 + 1.5 * D)  # ~47 m inside NW, west of NE
    open_case = report(client, s.headers["gz"], *point).json()
    closed_case = report(client, s.headers["gz"], *point, category="municipal").json()
    for action in ("dispatch", "handle", "verify", "close"):
        assert act(client, s.headers["adm"], closed_case["id"], action).status_code == 200
    escalated = report(client, s.headers["gz"], *point, category="dispute").json()
    act(client, s.headers["gz"], escalated["id"], "escalate", note="需社区调解")
    old_version = db.get(Incident, open_case["id"]).cell_version_id
    # NE grows west over the point (NW is trimmed).
    grown = shapely.box(X0 + D - 0.001, Y0 + D, X0 + 2 * D, Y0 + 2 * D)
    body = {
        "op": "reshape",
        "cell": ne,
        "geometry": shapely.geometry.mapping(grown),
        "trim_neighbours": True,
        "reason": "道路改线",
    }
    url = f"/api/v1/communities/{s.street.community_code}/redraw"
    preview = client.post(f"{url}/preview", json=body, headers=s.headers["jd"])
    assert preview.status_code == 200, preview.text
    assert preview.json()["impact"]["open_incidents_moved"] >= 1
    commit = client.post(
        f"{url}/commit", json=body, headers={**s.headers["jd"], "If-Match": preview.headers["ETag"]}
    )
    assert commit.status_code == 200, commit.text
    db.expire_all()
    moved = db.get(Incident, open_case["id"])
    assert moved.cell_id == s.cell_ids[ne]
    assert moved.cell_version_id == old_version  # history: the version of its report time
    assert moved.handling_cell_id == s.cell_ids[ne]
    assert moved.assignee_person_id == s.leaders[ne]
    done = db.get(Incident, closed_case["id"])
    assert done.cell_id == s.cell_ids[nw] and done.cell_version_id == old_version
    up = db.get(Incident, escalated["id"])
    assert up.queue == "community" and up.handling_cell_id is None
    # The case is now the NE 格长's to handle.
    assert act(client, s.headers["gz2"], open_case["id"], "dispatch").status_code == 200
