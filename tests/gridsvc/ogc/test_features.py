"""OGC API – Features under /ogc, in process: documents, paging, filters, CRS, scope, masking."""

from __future__ import annotations

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gridsvc.models import Building, Household, Person, VolunteerTeam
from gridsvc.repositories.bulk import to_db_geometry
from gridsvc.services.users import ScopeSpec, create_user
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet, token_for

GEOJSON = "application/geo+json"


def _sw(s: SmallStreet) -> str:
    """The south-west cell (codes run west to east, then north to south)."""
    return f"{s.community_code}003"


def _ne(s: SmallStreet) -> str:
    """The north-east cell."""
    return f"{s.community_code}002"


@pytest.fixture
def street(db: Session, small_street: SmallStreet) -> SmallStreet:
    """The small street with 25 extra buildings in the south-west cell, a household per building
    (flags and phones set), a volunteer, and users of every scope."""
    from sqlalchemy import select

    from gridsvc.models import Cell, Community

    s = small_street
    community_id = db.scalar(select(Community.id).where(Community.code == s.community_code))
    first = db.scalar(select(Cell.id).where(Cell.code == _sw(s)))
    x0, y0 = 118.9002, 32.1002
    for n in range(25):
        x = x0 + (n % 5) * 0.0006
        y = y0 + (n // 5) * 0.0006
        db.add(
            Building(
                source="test",
                source_id=f"extra{n}",
                name=f"附加{n}栋",
                kind="residential",
                households=1,
                community_id=community_id,
                cell_id=first,
                footprint=to_db_geometry(shapely.box(x, y, x + 2e-4, y + 2e-4)),
            )
        )
    db.flush()
    team = VolunteerTeam(name="党员服务队", kind="party")
    db.add(team)
    db.flush()
    buildings = db.scalars(select(Building).where(Building.cell_id == first)).all()
    for n, b in enumerate(buildings):
        household = Household(
            building_id=b.id,
            unit="1",
            room=f"{n + 101}",
            head_name="张三丰",
            phone="13812345678",
            low_income=n % 2 == 0,
        )
        db.add(household)
        db.flush()
        if n == 0:
            db.add(
                Person(
                    name="李志愿",
                    phone="13900001111",
                    household_id=household.id,
                    volunteer_team_id=team.id,
                )
            )
    create_user(db, username="ogc_admin", password=TEST_PASSWORD, role="admin")
    create_user(
        db,
        username="ogc_leader",
        password=TEST_PASSWORD,
        role="leader",
        scope=ScopeSpec("cell", _ne(s)),
    )
    create_user(
        db,
        username="ogc_viewer",
        password=TEST_PASSWORD,
        role="viewer",
        scope=ScopeSpec("street", s.street_code),
    )
    db.flush()
    return s


def _all_ids(client: TestClient, url: str, headers: dict[str, str]) -> list[object]:
    """Follow next links to the end; every feature id seen."""
    seen: list[object] = []
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [f["id"] for f in body["features"]]
        assert body["numberReturned"] == len(body["features"])
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), "")
    return seen


def test_landing_conformance_and_collections(client: TestClient, street: SmallStreet) -> None:
    admin = token_for(client, "ogc_admin")
    landing = client.get("/ogc", headers=admin).json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "conformance", "data", "service-desc"} <= rels
    conf = client.get("/ogc/conformance", headers=admin).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conf
    listed = client.get("/ogc/collections", headers=admin).json()["collections"]
    assert [c["id"] for c in listed] == [
        "communities",
        "cells",
        "cell_versions",
        "buildings",
        "households",
        "incidents",
        "volunteers",
        "roads",
    ]
    cells = next(c for c in listed if c["id"] == "cells")
    assert "http://www.opengis.net/def/crs/EPSG/0/4490" in cells["crs"]
    assert cells["storageCrs"].endswith("CRS84")
    assert client.get("/ogc/collections/nope", headers=admin).status_code == 404
    assert client.get("/ogc/collections").status_code == 401


def test_paging_follows_next_and_prev_without_gaps(client: TestClient, street: SmallStreet) -> None:
    admin = token_for(client, "ogc_admin")
    first = client.get("/ogc/collections/buildings/items?limit=7", headers=admin)
    assert first.status_code == 200
    assert first.headers["content-type"].startswith(GEOJSON)
    assert first.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    body = first.json()
    assert body["numberMatched"] == 29 and body["numberReturned"] == 7
    assert not any(link["rel"] == "prev" for link in body["links"])
    ids = _all_ids(client, "/ogc/collections/buildings/items?limit=7", admin)
    assert len(ids) == 29 and len(set(ids)) == 29 and ids == sorted(ids)
    # The second page's prev link gives the first page back.
    second_url = next(link["href"] for link in body["links"] if link["rel"] == "next")
    second = client.get(second_url, headers=admin).json()
    prev_url = next(link["href"] for link in second["links"] if link["rel"] == "prev")
    again = client.get(prev_url, headers=admin).json()
    assert [f["id"] for f in again["features"]] == [f["id"] for f in body["features"]]
    # A scoped reader pages by the scope's index first: the same pages, forwards and back.
    viewer = token_for(client, "ogc_viewer")
    assert _all_ids(client, "/ogc/collections/buildings/items?limit=7", viewer) == ids
    page2 = client.get(second_url, headers=viewer).json()
    back = next(link["href"] for link in page2["links"] if link["rel"] == "prev")
    assert [f["id"] for f in client.get(back, headers=viewer).json()["features"]] == ids[:7]
    # A bigger limit than the maximum is served at the maximum, a bad one is a 400.
    assert client.get("/ogc/collections/buildings/items?limit=0", headers=admin).status_code == 400
    assert client.get("/ogc/collections/buildings/items?after=x", headers=admin).status_code == 400


def test_bbox_crs_and_axis_order(client: TestClient, street: SmallStreet) -> None:
    admin = token_for(client, "ogc_admin")
    url = "/ogc/collections/cells/items"
    lonlat = client.get(url, headers=admin).json()["features"][0]["geometry"]["coordinates"]
    x, y = lonlat[0][0][0]
    assert 118 < x < 119 and 32 < y < 33
    for code in ("4326", "4490"):
        r = client.get(f"{url}?crs=http://www.opengis.net/def/crs/EPSG/0/{code}", headers=admin)
        assert r.headers["content-crs"] == f"<http://www.opengis.net/def/crs/EPSG/0/{code}>"
        lat, lon = r.json()["features"][0]["geometry"]["coordinates"][0][0][0]
        assert (lat, lon) == pytest.approx((y, x))
    merc = client.get(f"{url}?crs=EPSG:3857", headers=admin).json()
    mx, my = merc["features"][0]["geometry"]["coordinates"][0][0][0]
    assert mx == pytest.approx(x * 20037508.342789244 / 180, abs=0.01)
    assert 3.7e6 < my < 3.8e6
    # The first cell's box, in lon/lat, lat/lon and metres, finds the same cells.
    box = "118.9001,32.1001,118.9002,32.1002"
    near = client.get(f"{url}?bbox={box}", headers=admin).json()
    assert [f["id"] for f in near["features"]] == [_sw(street)]
    flipped = "32.1001,118.9001,32.1002,118.9002"
    same = client.get(f"{url}?bbox={flipped}&bbox-crs=EPSG:4326", headers=admin).json()
    assert [f["id"] for f in same["features"]] == [_sw(street)]
    assert client.get(f"{url}?bbox={box}&bbox-crs=EPSG:4326", headers=admin).status_code == 400
    assert client.get(f"{url}?crs=EPSG:2000", headers=admin).status_code == 400
    assert client.get(f"{url}?bbox=1,2,3", headers=admin).status_code == 400


def test_filters_datetime_and_single_item(client: TestClient, street: SmallStreet) -> None:
    admin = token_for(client, "ogc_admin")
    code = _sw(street)
    r = client.get(f"/ogc/collections/buildings/items?cell_code={code}", headers=admin).json()
    assert r["numberMatched"] == 26
    low = client.get("/ogc/collections/households/items?low_income=true", headers=admin).json()
    assert low["numberMatched"] == 13
    assert (
        client.get("/ogc/collections/households/items?colour=red", headers=admin).status_code == 400
    )
    one = client.get(f"/ogc/collections/cells/items/{code}", headers=admin)
    assert one.status_code == 200 and one.json()["properties"]["code"] == code
    assert client.get("/ogc/collections/cells/items/none", headers=admin).status_code == 404
    # As of a moment before the cells existed there were none; now all four.
    past = client.get("/ogc/collections/cells/items?datetime=2000-01-01", headers=admin).json()
    assert past["numberMatched"] == 0
    versions = client.get(
        "/ogc/collections/cell_versions/items?datetime=2000-01-01T00:00:00Z/..", headers=admin
    ).json()
    assert versions["numberMatched"] == 4
    interval = "/ogc/collections/cells/items?datetime=2000-01-01/2001-01-01"
    assert client.get(interval, headers=admin).status_code == 400
    bad = client.get("/ogc/collections/incidents/items?datetime=yesterday", headers=admin)
    assert bad.status_code == 400 and "datetime" in bad.json()["detail"]


def test_scope_and_masking_follow_the_permission_matrix(
    client: TestClient, street: SmallStreet
) -> None:
    leader = token_for(client, "ogc_leader")
    cells = client.get("/ogc/collections/cells/items", headers=leader).json()
    assert [f["id"] for f in cells["features"]] == [_ne(street)]
    # The households of the first cell are not the second cell's 格长's to see.
    other = client.get("/ogc/collections/households/items", headers=leader).json()
    assert other["numberMatched"] == 0
    assert (
        client.get(f"/ogc/collections/cells/items/{_sw(street)}", headers=leader).status_code == 404
    )
    viewer = token_for(client, "ogc_viewer")
    households = client.get("/ogc/collections/households/items", headers=viewer).json()
    assert households["numberMatched"] == 26
    props = households["features"][0]["properties"]
    assert props["head_name"] == "张**" and props["phone"] == "138****5678"
    assert props["room"] is None and props["low_income"] is None
    # A viewer may not filter by what is masked for them (that would reveal it).
    assert (
        client.get("/ogc/collections/households/items?low_income=true", headers=viewer).status_code
        == 400
    )
    volunteer = client.get("/ogc/collections/volunteers/items", headers=viewer).json()
    assert volunteer["features"][0]["properties"]["name"] == "李**"
    admin = token_for(client, "ogc_admin")
    plain = client.get("/ogc/collections/volunteers/items", headers=admin).json()
    assert plain["features"][0]["properties"]["phone"] == "13900001111"


def test_html_pages_escape_stored_text(
    client: TestClient, street: SmallStreet, db: Session
) -> None:
    from sqlalchemy import update

    db.execute(
        update(Building).where(Building.name == "附加0栋").values(name="<script>x()</script>")
    )
    admin = token_for(client, "ogc_admin")
    page = client.get("/ogc/collections/buildings/items?f=html&limit=50", headers=admin)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>x()" not in page.text and "&lt;script&gt;x()" in page.text
    assert "楼栋名称" in page.text
    browser = client.get(
        "/ogc/collections", headers={**admin, "Accept": "text/html,application/xhtml+xml"}
    )
    assert browser.headers["content-type"].startswith("text/html") and "网格" in browser.text
    one = client.get("/ogc/collections/buildings/items?f=html&limit=1", headers=admin)
    assert "下一页" in one.text
    # Signed in through the web form, the session cookie opens the pages too.
    from tests.gridsvc.conftest import sign_in_form

    assert sign_in_form(client, "ogc_viewer").status_code == 303
    landing = client.get("/ogc?f=html")
    assert landing.status_code == 200 and "ogc_viewer" in landing.text
    assert 'name="csrf_token" value=""' not in landing.text  # sign-out works from here


def test_roads_and_incidents_are_scoped(
    client: TestClient, street: SmallStreet, db: Session
) -> None:
    from gridsvc.models import Road

    inside = shapely.MultiLineString([[(118.901, 32.101), (118.903, 32.103)]])
    far = shapely.MultiLineString([[(116.40, 39.90), (116.41, 39.91)]])
    for n, line in enumerate((inside, far)):
        db.add(
            Road(
                source="test",
                source_id=f"r{n}",
                name=f"路{n}",
                highway="residential",
                geom=to_db_geometry(line),
            )
        )
    db.flush()
    admin = token_for(client, "ogc_admin")
    reported = client.post(
        "/api/v1/incidents",
        json={"lon": 118.9021, "lat": 32.1021, "category": "sanitation"},
        headers=admin,
    )
    assert reported.status_code == 201, reported.text
    viewer = token_for(client, "ogc_viewer")
    roads = client.get("/ogc/collections/roads/items", headers=viewer).json()
    assert [f["properties"]["name"] for f in roads["features"]] == ["路0"]
    assert client.get("/ogc/collections/roads/items", headers=admin).json()["numberMatched"] == 2
    leader = token_for(client, "ogc_leader")
    assert (
        client.get("/ogc/collections/incidents/items", headers=leader).json()["numberMatched"] == 0
    )
    today = client.get(
        "/ogc/collections/incidents/items?datetime=../2100-01-01T00:00:00Z", headers=viewer
    ).json()
    assert today["numberMatched"] == 1
    assert today["features"][0]["geometry"]["type"] == "Point"


def test_desktop_token_reads_until_the_user_signs_out(
    client: TestClient, street: SmallStreet, db: Session
) -> None:
    from gridsvc.errors import InvalidInput
    from gridsvc.services.users import desktop_token

    token = {"Authorization": f"Bearer {desktop_token(db, 'ogc_viewer', 90)}"}
    assert client.get("/ogc/collections/cells/items", headers=token).status_code == 200
    with pytest.raises(InvalidInput):
        desktop_token(db, "ogc_viewer", 10_000)
    assert client.post("/api/v1/auth/logout", headers=token).status_code == 204
    assert client.get("/ogc/collections/cells/items", headers=token).status_code == 401


def _square(x0: float, y0: float, x1: float, y1: float, **properties: object) -> dict:  # type: ignore[type-arg]
    return {
        "type": "Feature",
        "geometry": shapely.geometry.mapping(shapely.box(x0, y0, x1, y1)),
        "properties": properties,
    }


def test_part4_edits_cells_through_the_redraw_service(
    client: TestClient, street: SmallStreet
) -> None:
    admin = token_for(client, "ogc_admin")
    sw = _sw(street)
    url = f"/ogc/collections/cells/items/{sw}"
    allow = client.options(url, headers=admin).headers["allow"]
    assert allow == "GET, PUT, PATCH, DELETE, OPTIONS"
    viewer = token_for(client, "ogc_viewer")
    assert client.options(url, headers=viewer).headers["allow"] == "GET, OPTIONS"
    assert (
        "POST"
        not in client.options("/ogc/collections/cells/items", headers=viewer).headers["allow"]
    )
    etag = client.get(url, headers=admin).headers["etag"]
    wider = _square(118.90, 32.10, 118.905, 32.104, reason="并入路边空地")
    assert client.put(url, json=wider, headers=admin).status_code == 428
    no_reason = client.put(
        url, json=_square(118.90, 32.10, 118.905, 32.104), headers={**admin, "If-Match": etag}
    )
    assert no_reason.status_code == 422 and "原因" in no_reason.json()["detail"]
    refused = client.put(url, json=wider, headers={**viewer, "If-Match": etag})
    assert refused.status_code == 403
    done = client.put(url, json=wider, headers={**admin, "If-Match": etag})
    assert done.status_code == 204, done.text
    assert done.headers["etag"] != etag
    cell = client.get(url, headers=admin).json()
    assert cell["properties"]["version"] == 2
    assert shapely.geometry.shape(cell["geometry"]).bounds == pytest.approx(
        (118.90, 32.10, 118.905, 32.104)
    )
    # The redraw's audit trail names the reason; the neighbour was trimmed (a new version).
    versions = client.get("/ogc/collections/cell_versions/items?version=2", headers=admin).json()
    assert versions["numberMatched"] == 2
    stale = client.put(url, json=wider, headers={**admin, "If-Match": etag})
    assert stale.status_code == 409
    patch = client.patch(
        url,
        json=_square(118.90, 32.10, 118.905, 32.104, name="新名"),
        headers={**admin, "If-Match": done.headers["etag"]},
    )
    assert patch.status_code == 422
    assert (
        client.put("/ogc/collections/buildings/items/1", json=wider, headers=admin).status_code
        == 405
    )


def test_part4_delete_merges_the_cell_into_a_neighbour(
    client: TestClient, street: SmallStreet
) -> None:
    """A DELETE leaves no gap: it names the neighbour that takes the cell's area, or is
    refused (409) saying so; the redraw's rules (reason, If-Match, scope) hold as for PUT."""
    admin = token_for(client, "ogc_admin")
    sw, se = _sw(street), f"{street.community_code}004"
    url = f"/ogc/collections/cells/items/{sw}"
    before = client.get(url, headers=admin)
    etag = before.headers["etag"]
    area = shapely.geometry.shape(before.json()["geometry"]).union(
        shapely.geometry.shape(client.get(url.replace(sw, se), headers=admin).json()["geometry"])
    )
    gap = client.delete(url, headers={**admin, "If-Match": etag})
    assert gap.status_code == 409 and "merge_into" in gap.json()["detail"]
    viewer = token_for(client, "ogc_viewer")
    refused = client.delete(url, params={"merge_into": se}, headers={**viewer, "If-Match": etag})
    assert refused.status_code == 403
    assert client.get(url, headers=admin).status_code == 200  # nothing happened so far
    done = client.delete(
        url, params={"merge_into": se, "reason": "两格合并"}, headers={**admin, "If-Match": etag}
    )
    assert done.status_code == 204, done.text
    assert client.get(url, headers=admin).status_code == 404
    merged = client.get(done.headers["location"], headers=admin)
    assert merged.status_code == 200
    assert shapely.geometry.shape(merged.json()["geometry"]).symmetric_difference(
        area
    ).area == pytest.approx(0, abs=1e-12)
    again = client.delete(
        url, params={"merge_into": se, "reason": "再来"}, headers={**admin, "If-Match": etag}
    )
    assert again.status_code in (404, 409)  # gone, and the ETag is stale anyway


def test_part4_post_creates_a_cell_over_a_gap(client: TestClient, street: SmallStreet) -> None:
    admin = token_for(client, "ogc_admin")
    items = "/ogc/collections/cells/items"
    taken = _square(
        118.90, 32.10, 118.902, 32.102, community_code=street.community_code, reason="试建"
    )
    covered = client.post(items, json=taken, headers=admin)
    assert covered.status_code == 422 and "gap" in covered.json()["detail"]
    url = f"{items}/{_sw(street)}"
    etag = client.get(url, headers=admin).headers["etag"]
    smaller = _square(118.90, 32.10, 118.903, 32.104, reason="让出东侧")
    assert client.put(url, json=smaller, headers={**admin, "If-Match": etag}).status_code == 204
    gap = _square(
        118.903, 32.10, 118.904, 32.104, community_code=street.community_code, name="新建网格"
    )
    assert client.post(items, json=gap, headers=admin).status_code == 422  # no reason
    created = client.post(items, params={"reason": "填补空隙"}, json=gap, headers=admin)
    assert created.status_code == 201, created.text
    new = client.get(created.headers["location"], headers=admin)
    assert new.status_code == 200 and new.json()["properties"]["name"] == "新建网格"


BAD_QUERIES = [
    "bbox=nan,0,1,1",
    "bbox=0,0,inf,1&bbox-crs=EPSG:3857",
    "datetime=10000-01-01",
    "datetime=2026-01-01/2025-01-01",
    "after=1&before=2",
    "f=xml",
    "limit=ten",
    "bbox=" + "1," * 5000 + "1",  # longer than any bbox: refused before it is parsed
    "status=" + "x" * 10_000,  # a property filter's value too
]


def test_bad_parameters_are_400_problems(client: TestClient, street: SmallStreet) -> None:
    admin = token_for(client, "ogc_admin")
    for query in BAD_QUERIES:
        r = client.get(f"/ogc/collections/incidents/items?{query}", headers=admin)
        assert r.status_code == 400, (query, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    long_id = client.get(f"/ogc/collections/cells/items/{'9' * 5000}", headers=admin)
    assert long_id.status_code == 422 and long_id.headers["content-type"].startswith(
        "application/problem+json"
    )
