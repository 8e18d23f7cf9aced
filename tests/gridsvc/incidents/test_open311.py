"""Open311 GeoReport v2: responses checked against the published field lists (written here from
the specification, http://wiki.open311.org/GeoReport_v2), XML parsed with a real parser."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsvc.errors import Conflict
from gridsvc.models import Incident, IncidentCategory, IncidentEvent, Open311Key
from gridsvc.services import open311
from tests.gridsvc.incidents.conftest import T0, IncidentStreet, act

BASE = "/open311/v2"
# -- the specification's field lists --------------------------------------------------------
SERVICE_FIELDS = {
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
}
SERVICE_TYPES = {"realtime", "batch", "blackbox"}
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}
POST_RESPONSE_FIELDS = {"service_request_id", "token", "service_notice", "account_id"}
TOKEN_FIELDS = {"service_request_id", "token"}
ERROR_FIELDS = {"code", "description"}
DISCOVERY_FIELDS = {"changeset", "contact", "key_service", "endpoints"}
ENDPOINT_FIELDS = {"specification", "url", "changeset", "type", "formats"}
EXTENSIONS = {"grid_code"}


def _w3c(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, value
    return parsed


def _xml_items(text: str, root: str, item: str) -> list[dict[str, str | None]]:
    tree = ET.fromstring(text.encode())
    assert tree.tag == root
    assert all(child.tag == item for child in tree)
    return [{c.tag: c.text for c in child} for child in tree]


@pytest.fixture
def api_key(db: Session, incident_street: IncidentStreet) -> str:
    """A key for a citizen app."""
    return open311.create_key(db, "市民通")


def _post(client: TestClient, key: str | None, fmt: str = "json", **params: object):  # type: ignore[no-untyped-def]
    data = {"service_code": "sanitation", "description": "路边垃圾", **params}
    if key is not None:
        data["api_key"] = key
    return client.post(f"{BASE}/requests.{fmt}", data=data)


def test_discovery_and_services(
    client: TestClient, db: Session, incident_street: IncidentStreet
) -> None:
    d = client.get(f"{BASE}/discovery.json").json()
    assert set(d) >= DISCOVERY_FIELDS
    assert all(set(e) >= ENDPOINT_FIELDS for e in d["endpoints"])
    assert d["endpoints"][0]["url"].endswith("/open311/v2/")
    xml = ET.fromstring(client.get(f"{BASE}/discovery.xml").content)
    assert xml.tag == "discovery"
    assert [f.text for f in xml.find("endpoints/endpoint/formats")] == [
        "text/xml",
        "application/json",
    ]

    services = client.get(f"{BASE}/services.json").json()
    active = IncidentCategory.active.is_(True)
    public = db.scalar(select(func.count()).where(active, IncidentCategory.public.is_(True)))
    assert 0 < len(services) == public  # anonymous callers: the public categories only
    key = open311.create_key(db, "服务目录")
    listed = client.get(f"{BASE}/services.json", params={"api_key": key}).json()
    assert len(listed) == db.scalar(select(func.count()).where(active))  # a key submits to all
    for s in services:
        assert set(s) == SERVICE_FIELDS
        assert s["type"] in SERVICE_TYPES and s["metadata"] is False
    r = client.get(f"{BASE}/services.xml")
    assert r.headers["content-type"].startswith("text/xml")
    items = _xml_items(r.text, "services", "service")
    assert {i["service_code"] for i in items} == {s["service_code"] for s in services}
    assert all(set(i) == SERVICE_FIELDS and i["metadata"] == "false" for i in items)
    assert {i["service_name"] for i in items} >= {"环境卫生", "市政设施"}
    assert "矛盾纠纷" not in r.text and "社情民意" not in r.text
    definition = client.get(f"{BASE}/services/sanitation.json").json()
    assert definition == {"service_code": "sanitation", "attributes": []}
    assert ET.fromstring(client.get(f"{BASE}/services/sanitation.xml").content).tag == (
        "service_definition"
    )


def test_post_then_read_back(
    client: TestClient, db: Session, incident_street: IncidentStreet, api_key: str
) -> None:
    s = incident_street
    lon, lat = s.centre(s.codes[0])
    r = _post(client, api_key, lat=lat, long=lon, first_name="三", last_name="张", phone="138")
    assert r.status_code == 201, r.text
    [created] = r.json()
    assert set(created) == POST_RESPONSE_FIELDS
    rid = created["service_request_id"]
    # The submission went through the same intake: routed to the cell and its 格长.
    inc = db.get(Incident, int(rid))
    assert inc.source == "open311" and inc.reporter_kind == "resident"
    assert inc.reporter_name == "张 三" and inc.handling_cell_id == s.cell_ids[s.codes[0]]
    actor = db.scalar(select(IncidentEvent.actor).where(IncidentEvent.incident_id == inc.id))
    assert actor == "open311:市民通"
    # Staff see who reported (to call back); viewers and the public Open311 view do not.
    staff = client.get(f"/api/v1/incidents/{rid}", headers=s.headers["sq"]).json()
    assert (staff["reporter_name"], staff["reporter_phone"]) == ("张 三", "138")
    viewer = client.get(f"/api/v1/incidents/{rid}", headers=s.headers["ro"]).json()
    assert "reporter_name" not in viewer and "reporter_phone" not in viewer
    # Token → id.
    tok = client.get(f"{BASE}/tokens/{created['token']}.json").json()
    assert tok == [{"service_request_id": rid, "token": created["token"]}]
    assert (
        set(
            _xml_items(
                client.get(f"{BASE}/tokens/{created['token']}.xml").text,
                "service_requests",
                "request",
            )[0]
        )
        == TOKEN_FIELDS
    )
    # One request, JSON and XML, with the standard fields, the fine state and grid_code.
    [one] = client.get(f"{BASE}/requests/{rid}.json").json()
    assert set(one) == REQUEST_FIELDS | EXTENSIONS
    assert "张" not in str(one) and "138" not in str(one)
    assert one["status"] == "open" and one["status_notes"].startswith("立案 (filed)")
    assert one["grid_code"] == s.codes[0] and one["service_code"] == "sanitation"
    # The public view places a case at its cell's point-on-surface: here the centre, where
    # it was reported (see test_anonymous_feed_hides_private_cases_and_free_text).
    assert (one["lat"], one["long"]) == pytest.approx((lat, lon))
    assert _w3c(one["requested_datetime"]) == T0
    assert _w3c(one["expected_datetime"]) == inc.close_due_at
    [x] = _xml_items(client.get(f"{BASE}/requests/{rid}.xml").text, "service_requests", "request")
    assert set(x) == REQUEST_FIELDS | EXTENSIONS and x["status"] == "open"
    assert float(x["lat"]) == pytest.approx(lat) and x["grid_code"] == s.codes[0]
    # Through the workflow to 结案: closed in Open311, the fine state in the notes.
    for action in ("dispatch", "handle", "verify", "close"):
        s.clock.advance(hours=1)
        assert act(client, s.headers["adm"], int(rid), action).status_code == 200
    [done] = client.get(f"{BASE}/requests/{rid}.json").json()
    assert done["status"] == "closed" and "结案" in done["status_notes"]
    assert _w3c(done["updated_datetime"]) == T0 + timedelta(hours=4)


def test_request_filters(
    client: TestClient, db: Session, incident_street: IncidentStreet, api_key: str
) -> None:
    s = incident_street
    ids = {}
    for i, code in enumerate(["sanitation", "safety", "sanitation"]):
        s.clock.set(T0 + timedelta(days=i))
        lon, lat = s.centre(s.codes[i])
        [made] = _post(client, api_key, service_code=code, lat=lat, long=lon).json()
        ids[i] = made["service_request_id"]
    for action in ("dispatch", "handle", "verify", "close"):
        act(client, s.headers["adm"], int(ids[1]), action)

    def got(query: str) -> list[str]:
        r = client.get(f"{BASE}/requests.json?{query}")
        assert r.status_code == 200, r.text
        return sorted(x["service_request_id"] for x in r.json())

    assert got("") == sorted(ids.values())
    assert got("service_code=sanitation") == sorted([ids[0], ids[2]])
    assert got("status=closed") == [ids[1]]
    assert got("status=open") == sorted([ids[0], ids[2]])
    assert got("start_date=2026-03-02T12:00:00Z") == sorted([ids[1], ids[2]])
    assert got("start_date=2026-03-02T12:00:00Z&end_date=2026-03-03T12:00:00Z") == [ids[1]]
    # Ids override every other filter.
    assert got(f"service_request_id={ids[0]},{ids[1]}&service_code=safety") == sorted(
        [ids[0], ids[1]]
    )
    # Older than 90 days: not in the default window.
    s.clock.set(T0 + timedelta(days=100))
    assert got("") == []
    xml = _xml_items(
        client.get(f"{BASE}/requests.xml?status=closed&start_date=2026-01-01T00:00:00Z").text,
        "service_requests",
        "request",
    )
    assert [x["service_request_id"] for x in xml] == [ids[1]]


def test_errors_in_open311_format(
    client: TestClient, db: Session, incident_street: IncidentStreet, api_key: str
) -> None:
    s = incident_street
    lon, lat = s.centre(s.codes[0])
    before = db.scalar(select(func.count()).select_from(Incident))
    cases = [
        (_post(client, None, lat=lat, long=lon), 403),
        (_post(client, "o311_wrong", lat=lat, long=lon), 403),
        (_post(client, api_key, lat=lat), 400),
        (_post(client, api_key, lat="north", long=lon), 400),
        (_post(client, api_key, service_code="nope", lat=lat, long=lon), 400),
        (client.get(f"{BASE}/requests/999999.json"), 404),
        (client.get(f"{BASE}/requests/abc.json"), 404),
        (client.get(f"{BASE}/services/nope.json"), 404),
        (client.get(f"{BASE}/tokens/nope.json"), 404),
        (client.get(f"{BASE}/requests.json?status=pending"), 400),
        (client.get(f"{BASE}/requests.json?start_date=yesterday"), 400),
        (client.get(f"{BASE}/requests.json?service_request_id=1;drop"), 400),
    ]
    for r, status in cases:
        assert r.status_code == status, r.text
        body = r.json()
        assert isinstance(body, list) and set(body[0]) == ERROR_FIELDS
        assert body[0]["code"] == status
    xml = _post(client, None, fmt="xml", lat=lat, long=lon)
    assert xml.status_code == 403
    [err] = _xml_items(xml.text, "errors", "error")
    assert err["code"] == "403" and "api_key" in err["description"]
    assert client.get(f"{BASE}/services.yaml").status_code == 400
    assert db.scalar(select(func.count()).select_from(Incident)) == before


def test_revoked_key_stops_working(
    client: TestClient, db: Session, incident_street: IncidentStreet, api_key: str
) -> None:
    s = incident_street
    lon, lat = s.centre(s.codes[1])
    assert _post(client, api_key, lat=lat, long=lon).status_code == 201
    stored = db.scalar(select(Open311Key.key_hash).where(Open311Key.name == "市民通"))
    assert api_key not in stored and len(stored) == 64  # only a hash is kept
    open311.revoke_key(db, "市民通", now=T0)
    assert _post(client, api_key, lat=lat, long=lon).status_code == 403
    with pytest.raises(Conflict):
        open311.create_key(db, "市民通")


# -- the public feed (issue 12 item 3) -------------------------------------------------------
PHONE, ROOM = "13912345678", "3栋302室"
PRIVATE_TEXT = f"{ROOM} 张阿姨与楼上邻居噪音纠纷，电话 {PHONE}，有高血压病史，独居老人需定期探访"
PUBLIC_TEXT = "3栋楼下垃圾堆放三天无人清运，联系人 13812345678"


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance in metres between two (lon, lat) points (equirectangular, fine at this scale)."""
    import math

    dx = (a[0] - b[0]) * 111_320 * math.cos(math.radians(a[1]))
    return math.hypot(dx, (a[1] - b[1]) * 110_574)


@pytest.fixture
def planted(client: TestClient, db: Session, incident_street: IncidentStreet) -> dict[str, object]:
    """A 矛盾纠纷 with a phone, a room and a medical history, and an ordinary 环境卫生 case,
    both reported ~160 m off the centre of the NW cell; the exact point of each."""
    from tests.gridsvc.incidents.conftest import report

    s = incident_street
    cx, cy = s.centre(s.codes[0])
    point = (cx + 0.0012, cy + 0.001)
    made = {}
    for code, text in (("dispute", PRIVATE_TEXT), ("sanitation", PUBLIC_TEXT)):
        r = report(
            client,
            s.headers["gz"],
            *point,
            category=code,
            description=text,
            address=f"幸福小区{ROOM}",
            reporter_name="张阿姨",
            reporter_phone=PHONE,
        )
        assert r.status_code == 201, r.text
        made[code] = str(r.json()["id"])
    return {**made, "point": point}


def _secrets_absent(text: str) -> None:
    for secret in (PHONE, "13812345678", "302", "张阿姨", "高血压", "垃圾堆放", "幸福小区"):
        assert secret not in text, secret


def test_anonymous_feed_hides_private_cases_and_free_text(
    client: TestClient, db: Session, incident_street: IncidentStreet, planted: dict[str, object]
) -> None:
    """The anonymous GETs (list, single, JSON and XML) never show a 矛盾纠纷, the reporter's
    words, names, phones or rooms, nor a point finer than the cell."""
    from geoalchemy2.shape import to_shape

    from gridsvc.models import CellVersion

    s = incident_street
    dispute, sanitation, point = planted["dispute"], planted["sanitation"], planted["point"]
    answers = [
        client.get(f"{BASE}/requests.json"),
        client.get(f"{BASE}/requests.xml"),
        client.get(f"{BASE}/requests.json?service_code=dispute,sanitation"),
        client.get(f"{BASE}/requests.json?service_request_id={dispute},{sanitation}"),
        client.get(f"{BASE}/requests/{sanitation}.json"),
        client.get(f"{BASE}/requests/{sanitation}.xml"),
    ]
    for r in answers:
        assert r.status_code == 200, r.text
        _secrets_absent(r.text)
        assert "矛盾纠纷" not in r.text and "dispute" not in r.text
    listed = answers[0].json()
    assert [x["service_request_id"] for x in listed] == [sanitation]
    assert [x["service_request_id"] for x in answers[3].json()] == [sanitation]
    for r in (
        client.get(f"{BASE}/requests/{dispute}.json"),
        client.get(f"{BASE}/requests/{dispute}.xml"),
    ):
        assert r.status_code == 404
        _secrets_absent(r.text)
    # The public view: category, state, dates, the cell — placed at the cell's point-on-surface.
    [one] = answers[4].json()
    assert set(one) == REQUEST_FIELDS | EXTENSIONS
    assert one["description"] == "" and one["address"] == "" and one["grid_code"] == s.codes[0]
    cell_geom = to_shape(
        db.scalar(select(CellVersion.geom).where(CellVersion.cell_id == s.cell_ids[s.codes[0]]))
    )
    on_surface = cell_geom.point_on_surface()
    assert (one["long"], one["lat"]) == pytest.approx((on_surface.x, on_surface.y), abs=1e-9)
    assert _metres((one["long"], one["lat"]), point) > 100  # not the reported point
    [x] = _xml_items(answers[5].text, "service_requests", "request")
    assert (float(x["long"]), float(x["lat"])) == pytest.approx((one["long"], one["lat"]))


def test_partner_key_in_scope_reads_the_full_record(
    client: TestClient, db: Session, incident_street: IncidentStreet, planted: dict[str, object]
) -> None:
    """A partner key scoped to the street reads both cases in full; one scoped to another cell,
    or a key that only submits, gets the public view; an unknown key is refused."""
    from gridsvc.services.users import ScopeSpec

    s = incident_street
    dispute, sanitation, point = planted["dispute"], planted["sanitation"], planted["point"]
    street_key = open311.create_key(db, "街道调解平台", ScopeSpec("street", s.street.street_code))
    other_cell = open311.create_key(db, "邻格平台", ScopeSpec("cell", s.codes[1]))
    submit_only = open311.create_key(db, "市民通")

    def get(url: str, key: str) -> object:
        return client.get(f"{BASE}/{url}", params={"api_key": key})

    [full] = get(f"requests/{dispute}.json", street_key).json()
    assert PHONE in full["description"] and ROOM in full["address"]
    assert (full["long"], full["lat"]) == pytest.approx(point)
    [x] = _xml_items(get(f"requests/{dispute}.xml", street_key).text, "service_requests", "request")
    assert PHONE in (x["description"] or "")
    listed = {r["service_request_id"]: r for r in get("requests.json", street_key).json()}
    assert set(listed) == {dispute, sanitation}
    assert listed[sanitation]["description"] == PUBLIC_TEXT
    for key in (other_cell, submit_only):
        assert get(f"requests/{dispute}.json", key).status_code == 404
        r = get("requests.json", key)
        assert [i["service_request_id"] for i in r.json()] == [sanitation]
        _secrets_absent(r.text + get(f"requests/{sanitation}.xml", key).text)
    refused = get(f"requests/{dispute}.json", "o311_forged")
    assert refused.status_code == 403 and PHONE not in refused.text
    open311.revoke_key(db, "街道调解平台", now=T0)
    assert get("requests.json", street_key).status_code == 403


def test_staff_decide_which_categories_are_public(
    client: TestClient, db: Session, incident_street: IncidentStreet, planted: dict[str, object]
) -> None:
    """Publishing a category shows its cases (still without free text); withdrawing one
    removes its cases and its service from the anonymous feed."""
    from gridsvc.services.incidents import set_category_public

    assert set_category_public(db, "dispute", True)["public"] is True
    r = client.get(f"{BASE}/requests.json")
    assert {i["service_request_id"] for i in r.json()} == {
        planted["dispute"],
        planted["sanitation"],
    }
    _secrets_absent(r.text)
    set_category_public(db, "环境卫生", False)  # by label, as staff say it
    set_category_public(db, "dispute", False)
    assert client.get(f"{BASE}/requests.json").json() == []
    services = {x["service_code"] for x in client.get(f"{BASE}/services.json").json()}
    assert "sanitation" not in services and "dispute" not in services
    assert client.get(f"{BASE}/services/sanitation.json").status_code == 404


def test_long_parameters_are_refused_in_open311_format(
    client: TestClient, db: Session, incident_street: IncidentStreet, api_key: str
) -> None:
    """A description over 4000 characters (or an over-long name) is a GeoReport 400, and
    nothing is filed (form fields over 1 MB Starlette refuses itself)."""
    from sqlalchemy import func, select

    from gridsvc.models import Incident

    s = incident_street
    lon, lat = s.centre(s.codes[0])
    before = db.scalar(select(func.count()).select_from(Incident))
    for params in ({"description": "脏" * 5000}, {"first_name": "名" * 40}):
        r = _post(client, api_key, lat=lat, long=lon, **params)
        assert r.status_code == 400, r.text[:200]
        err = r.json()[0]
        assert "the limit is" in err["description"] and next(iter(params)) in err["description"]
    assert db.scalar(select(func.count()).select_from(Incident)) == before
    assert _post(client, api_key, lat=lat, long=lon, description="脏" * 4000).status_code == 201
