"""The workbench pages against the API: the buttons a case page offers are exactly the steps the
API accepts, for every role and state; 待办 lists what waits for the user, overdue first; the
case form takes a step with a photo, refuses a stale version with nothing changed."""

from __future__ import annotations

import io
import re

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsvc.models import Incident, IncidentEvent, IncidentPhoto
from gridsvc.services.incidents import TRANSITIONS
from tests.gridsvc.incidents.conftest import X0, Y0, D, IncidentStreet, act, report
from tests.gridsvc.incidents.test_workflow import NOTE, PATHS

#: Users of every role (see the incident_street fixture): their buttons must match the API.
ROLES = ("adm", "jd", "sq", "gz", "wy", "ro")
_BUTTON = re.compile(r'data-action="([a-z_]+)"')


def _case_in(client: TestClient, s: IncidentStreet, state: str) -> int:
    case = report(client, s.headers["adm"], *s.centre(s.codes[0])).json()["id"]
    for action in PATHS[state]:
        assert act(client, s.headers["adm"], case, action, **NOTE).status_code == 200
    return int(case)


def _offered(client: TestClient, headers: dict[str, str], case: int) -> set[str]:
    page = client.get(f"/ui/cases/{case}", headers=headers)
    assert page.status_code == 200, page.text
    return set(_BUTTON.findall(page.text))


def test_buttons_are_what_the_api_accepts(
    client: TestClient, incident_street: IncidentStreet
) -> None:
    s = incident_street
    checked = 0
    for state in PATHS:
        for user in ROLES:
            headers = s.headers[user]
            case = _case_in(client, s, state)
            offered = _offered(client, headers, case)
            assert offered <= set(TRANSITIONS)
            for action in TRANSITIONS:
                r = act(client, headers, case, action, **NOTE)
                accepted = r.status_code == 200
                assert accepted == (action in offered), (user, state, action, r.text)
                checked += 1
                if accepted:  # the step was taken: start again from the same state
                    case = _case_in(client, s, state)
    assert checked == len(PATHS) * len(ROLES) * len(TRANSITIONS)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_todo_overdue_first_and_a_step_with_a_photo(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    gz = s.headers["gz"]
    early = report(client, gz, *s.centre(s.codes[0])).json()["id"]
    s.clock.advance(days=3)  # the first case is now overdue; the second is not
    fresh = report(client, gz, *s.centre(s.codes[0]), category="dispute").json()["id"]
    elsewhere = report(client, s.headers["gz2"], *s.centre(s.codes[1])).json()["id"]
    home = client.get("/ui/", headers=gz)
    assert home.status_code == 200
    ids = [int(i) for i in re.findall(r'<li class="case[^"]*" data-id="(\d+)"', home.text)]
    assert ids[:2] == [early, fresh] and elsewhere not in ids
    overdue_row = home.text.split(f'data-id="{early}"')[0].rsplit("<li", 1)[1]
    assert "overdue" in overdue_row
    assert "超期" in home.text.split(f'data-id="{early}"')[1].split("</li>")[0]
    # The task list filters: only overdue, only one category.
    only_overdue = client.get("/ui/tasks?overdue=yes", headers=gz).text
    assert f'data-id="{early}"' in only_overdue and f'data-id="{fresh}"' not in only_overdue
    disputes = client.get("/ui/tasks?category=dispute", headers=gz).text
    assert f'data-id="{fresh}"' in disputes and f'data-id="{early}"' not in disputes
    assert client.get("/ui/tasks?category=nonsense", headers=gz).status_code == 422

    # 派遣 from the case page's form, then 处置 with a photo.
    version = db.get(Incident, early).version
    r = client.post(
        f"/ui/cases/{early}",
        data={"action": "dispatch", "expected_version": version},
        headers=gz,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    r = client.post(
        f"/ui/cases/{early}",
        data={"action": "handle", "expected_version": version + 1, "note": "已清理"},
        files={"photos": ("x.png", _png(), "image/png")},
        headers=gz,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    db.expire_all()
    assert db.get(Incident, early).status == "handled"
    assert db.scalar(select(func.count()).where(IncidentPhoto.incident_id == early)) == 1

    # The same form again (the version it showed is stale): 409, the explanation, no change.
    events = db.scalar(select(func.count()).where(IncidentEvent.incident_id == early))
    r = client.post(
        f"/ui/cases/{early}",
        data={"action": "handle", "expected_version": version + 1},
        files={"photos": ("x.png", _png(), "image/png")},
        headers=gz,
    )
    assert r.status_code == 409
    assert "版本冲突" in r.text and 'data-status="handled"' in r.text
    db.expire_all()
    assert db.scalar(select(func.count()).where(IncidentEvent.incident_id == early)) == events
    assert db.scalar(select(func.count()).where(IncidentPhoto.incident_id == early)) == 1

    # A file that is not an image: 422 on the page, nothing written.
    r = client.post(
        f"/ui/cases/{fresh}",
        data={"action": "dispatch", "expected_version": db.get(Incident, fresh).version},
        files={"photos": ("x.jpg", b"<script>alert(1)</script>", "image/jpeg")},
        headers=gz,
    )
    assert r.status_code == 422 and "输入有误" in r.text
    db.expire_all()
    assert db.get(Incident, fresh).status == "filed"
    # 退回 needs a note: said in Chinese, nothing changed.
    r = client.post(
        f"/ui/cases/{early}",
        data={"action": "return", "expected_version": version + 2},
        headers=gz,
    )
    assert r.status_code == 422 and "退回" in r.text
    db.expire_all()
    assert db.get(Incident, early).status == "handled"


def test_report_from_the_map_near_a_boundary(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    s = incident_street
    gz = s.headers["gz"]
    west, east = s.codes[0], s.codes[1]
    lon, lat = X0 + D - 0.00002, Y0 + 1.5 * D  # 2 m inside the west cell, by the east one
    before = db.scalar(select(func.count()).select_from(Incident))
    form = {"lon": lon, "lat": lat, "datum": "wgs84", "category": "safety"}
    # Bad input: no point, or a photo that is no image — 422 in Chinese, no case filed.
    r = client.post("/ui/report", data={**form, "lon": "", "lat": ""}, headers=gz)
    assert r.status_code == 422 and "请先在地图上点选" in r.text
    r = client.post(
        "/ui/report", data=form, files={"photos": ("a.jpg", b"GIF89a", "image/jpeg")}, headers=gz
    )
    assert r.status_code == 422, (r.url, r.text[:3000])
    assert db.scalar(select(func.count()).select_from(Incident)) == before
    # Filed as the API files it: the west cell, flagged near the boundary, with the photo.
    r = client.post(
        "/ui/report",
        data={**form, "description": "井盖松动"},
        files={"photos": ("p.png", _png(), "image/png")},
        headers=gz,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    case = int(re.search(r"/ui/cases/(\d+)\?done=file", r.headers["location"]).group(1))
    inc = db.get(Incident, case)
    assert (inc.cell_id, inc.needs_confirmation, inc.reporter_kind) == (
        s.cell_ids[west],
        True,
        "leader",
    )
    assert db.scalar(select(func.count()).where(IncidentPhoto.incident_id == case)) == 1
    page = client.get(f"/ui/cases/{case}", headers=gz).text
    assert 'id="confirm-cell"' in page and f'data-cell="{east}"' in page
    # The viewer sees the flag but no buttons to settle it.
    assert 'data-cell="' not in client.get(f"/ui/cases/{case}", headers=s.headers["ro"]).text
    r = client.post(
        f"/ui/cases/{case}/confirm-cell", data={"cell": east}, headers=gz, follow_redirects=False
    )
    assert r.status_code == 303
    db.expire_all()
    inc = db.get(Incident, case)
    assert (inc.cell_id, inc.needs_confirmation) == (s.cell_ids[east], False)


def _households(db: Session, s: IncidentStreet) -> list[int]:
    """Three households in the west cell's building: rooms 101, 102, 201."""
    from gridsvc.models import Building, Household

    building = db.scalar(select(Building).where(Building.cell_id == s.cell_ids[s.codes[0]]))
    rows = [
        Household(building_id=building.id, unit="1", room=room, head_name=name, phone=phone)
        for room, name, phone in (
            ("101", "赵秀英", "13800001111"),
            ("102", "钱建国", "13800002222"),
            ("201", "孙丽", "13800003333"),
        )
    ]
    db.add_all(rows)
    db.flush()
    return [h.id for h in rows]


def _ledger_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li data-id="(\d+)"', html.split('id="ledger"')[1])]


def test_ledger_search_flags_and_visits(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    from gridsvc.models import AuditEvent, Household, Visit

    s = incident_street
    west = s.codes[0]
    h101, h102, h201 = _households(db, s)
    gz, ro = s.headers["gz"], s.headers["ro"]
    page = client.get(f"/ui/cells/{west}/ledger", headers=gz).text
    assert _ledger_ids(page) == [h101, h102, h201] and "赵秀英" in page and "未走访" in page
    assert _ledger_ids(client.get(f"/ui/cells/{west}/ledger?q=钱建国", headers=gz).text) == [h102]
    assert _ledger_ids(client.get(f"/ui/cells/{west}/ledger?q=201", headers=gz).text) == [h201]
    # A viewer sees names masked and no flags, cannot find a household by its head's name,
    # and has no forms to change anything.
    seen = client.get(f"/ui/cells/{west}/ledger", headers=ro).text
    assert (
        "赵秀英" not in seen and "赵**" in seen and "改标记" not in seen and "走访</a>" not in seen
    )
    assert _ledger_ids(client.get(f"/ui/cells/{west}/ledger?q=赵秀英", headers=ro).text) == []

    # The 格长 ticks 低保 and 独居老人: stored, and audited with before and after.
    r = client.post(
        f"/ui/households/{h101}/flags",
        data={"flag": ["low_income", "elderly_alone"], "back": f"/ui/cells/{west}/ledger?q=1"},
        headers=gz,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("?q=1&done=flags")
    db.expire_all()
    hh = db.get(Household, h101)
    assert (hh.low_income, hh.elderly_alone, hh.disabled) == (True, True, False)
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "household.flags", AuditEvent.row_id == h101)
    )
    assert event.before["low_income"] is False and event.after["low_income"] is True
    assert event.actor == "gz"
    # The viewer may not; an unknown flag is refused; neither changes anything.
    assert client.post(f"/ui/households/{h101}/flags", data={}, headers=ro).status_code == 403
    assert (
        client.post(f"/ui/households/{h101}/flags", data={"flag": "vip"}, headers=gz).status_code
        == 422
    )
    db.expire_all()
    assert db.get(Household, h101).low_income is True
    # A redirect back elsewhere than our pages is not followed.
    r = client.post(
        f"/ui/households/{h102}/flags",
        data={"back": "https://evil.example/"},
        headers=gz,
        follow_redirects=False,
    )
    assert r.headers["location"] == "/ui/?done=flags"

    # A 走访 with what was heard and the follow-up; it shows in the diary and the ledger.
    form = client.get(f"/ui/households/{h102}/visit", headers=gz).text
    assert "王格长" in form  # the cell's 格长 offered as the visitor
    r = client.post(
        f"/ui/households/{h102}/visit",
        data={
            "visited_on": "2026-03-01",
            "person_id": str(s.leaders[west]),
            "note": "反映楼道灯坏了",
            "follow_up": "报物业维修",
        },
        headers=gz,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/ui/cells/{west}/diary?done=visit"
    visit = db.scalar(select(Visit).where(Visit.household_id == h102))
    assert (visit.note, visit.follow_up, visit.person_id) == (
        "反映楼道灯坏了",
        "报物业维修",
        s.leaders[west],
    )
    diary = client.get(f"/ui/cells/{west}/diary", headers=gz).text
    assert "报物业维修" in diary and "王格长" in diary
    assert "报物业维修" not in client.get(f"/ui/cells/{west}/diary", headers=ro).text
    assert "2026-03-01" in client.get(f"/ui/cells/{west}/ledger?q=102", headers=gz).text
    # Bad input: a date that is none, or in the future — 422 on the form, nothing stored.
    for day in ("2026-02-30", "2099-01-01"):
        r = client.post(f"/ui/households/{h201}/visit", data={"visited_on": day}, headers=gz)
        assert r.status_code == 422, day
    assert db.scalar(select(func.count()).where(Visit.household_id == h201)) == 0


def test_idempotency_keys_make_retries_write_once(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    from gridsvc.models import Visit

    s = incident_street
    gz = s.headers["gz"]
    lon, lat = s.centre(s.codes[0])
    count = lambda: db.scalar(select(func.count()).select_from(Incident))  # noqa: E731
    before = count()
    key = {**gz, "Idempotency-Key": "5f0c6c3e-report-1"}
    first = report(client, key, lon, lat)
    again = report(client, key, lon, lat)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotency-Replayed"] == "true"
    assert count() == before + 1
    # The same key for another request is refused; another user's same key is their own.
    other = report(client, key, lon, lat, description="另一件事")
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert report(client, {**s.headers["wy"], "Idempotency-Key": "5f0c6c3e-report-1"}, lon, lat)
    assert count() == before + 2
    # Without a key, a retry is a second report (as before).
    report(client, gz, lon, lat)
    assert count() == before + 3

    # A case step retried gets its first answer, not a 409; one event recorded.
    case = first.json()["id"]
    step = {**gz, "Idempotency-Key": "step-1"}
    r1 = act(client, step, case, "dispatch")
    r2 = act(client, step, case, "dispatch")
    assert r1.status_code == r2.status_code == 200 and r2.json() == r1.json()
    assert act(client, gz, case, "dispatch").status_code == 409  # without the key: refused
    events = select(func.count()).where(
        IncidentEvent.incident_id == case, IncidentEvent.action == "dispatch"
    )
    assert db.scalar(events) == 1
    # A failed write keeps no key: the retry with it is tried again (and fails again).
    assert act(client, {**gz, "Idempotency-Key": "step-2"}, case, "close").status_code == 403

    # A 走访 retried is stored once.
    hh = _households(db, s)[0]
    body = {"household_id": hh, "visited_on": "2026-03-01", "note": "走访"}
    visit_key = {**gz, "Idempotency-Key": "visit-1"}
    v1 = client.post("/api/v1/visits", json=body, headers=visit_key)
    v2 = client.post("/api/v1/visits", json=body, headers=visit_key)
    assert v1.status_code == v2.status_code == 201 and v1.json() == v2.json()
    assert db.scalar(select(func.count()).where(Visit.household_id == hh)) == 1
    bad = client.post("/api/v1/visits", json=body, headers={**gz, "Idempotency-Key": "k" * 129})
    assert bad.status_code == 422
