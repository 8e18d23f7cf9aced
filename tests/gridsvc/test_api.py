"""The HTTP API against real PostGIS: sign-in, scopes, GeoJSON, paging, lookups, problems."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsvc.models import Cell, Household
from gridsvc.services.users import ScopeSpec, create_user
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet, token_for


@pytest.fixture
def users(db: Session, small_street: SmallStreet) -> SmallStreet:
    """admin, street staff, community staff, a 格长 of the first cell, a viewer of the street."""
    s = small_street
    create_user(db, username="admin1", password=TEST_PASSWORD, role="admin")
    create_user(
        db,
        username="street1",
        password=TEST_PASSWORD,
        role="street_staff",
        scope=ScopeSpec("street", s.street_code),
    )
    create_user(
        db,
        username="comm1",
        password=TEST_PASSWORD,
        role="community_staff",
        scope=ScopeSpec("community", s.community_code),
    )
    create_user(
        db,
        username="leader1",
        password=TEST_PASSWORD,
        role="leader",
        scope=ScopeSpec("cell", s.cell_codes[0]),
    )
    create_user(
        db,
        username="viewer1",
        password=TEST_PASSWORD,
        role="viewer",
        scope=ScopeSpec("street", s.street_code),
    )
    db.flush()
    return s


def test_health_reports_postgis(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["postgis"].startswith("3.")
    # The API is all under /api/v1, its health check included.
    v1 = client.get("/api/v1/health")
    assert v1.status_code == 200 and v1.json() == r.json()


def test_routes_need_sign_in(client: TestClient, users: SmallStreet) -> None:
    r = client.get("/api/v1/cells")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "sign in" in r.json()["detail"]


def test_wrong_password_is_401_and_repeated_failures_back_off(
    client: TestClient, users: SmallStreet
) -> None:
    """Wrong passwords make that (user name, address) wait (429); tests/gridsvc/test_auth.py
    has the rest (other addresses, growth, unlock, unknown names)."""
    for _ in range(3):
        r = client.post("/api/v1/auth/token", data={"username": "leader1", "password": "nope-nope"})
        assert r.status_code == 401
    r = client.post("/api/v1/auth/token", data={"username": "leader1", "password": TEST_PASSWORD})
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"


def test_bad_token_is_401(client: TestClient) -> None:
    r = client.get("/api/v1/cells", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401


def test_cells_are_geojson_and_coded_in_reading_order(
    client: TestClient, users: SmallStreet
) -> None:
    r = client.get("/api/v1/cells", headers=token_for(client, "street1"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geo+json"
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == 4
    codes = [f["id"] for f in body["features"]]
    assert codes == sorted(users.cell_codes)
    # Reading order: north row west→east, then south row west→east.
    by_code = {f["id"]: f for f in body["features"]}
    centroid = {
        c: (
            sum(p[0] for p in f["geometry"]["coordinates"][0][0]) / 5,
            sum(p[1] for p in f["geometry"]["coordinates"][0][0]) / 5,
        )
        for c, f in by_code.items()
    }
    (nw, ne, sw, se) = [centroid[c] for c in sorted(codes)]
    assert nw[1] > sw[1] and ne[1] > se[1]
    assert nw[0] < ne[0] and sw[0] < se[0]
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in body["features"])
    assert all(f["properties"]["buildings"] == 1 for f in body["features"])


def test_leader_sees_only_their_cell(client: TestClient, users: SmallStreet) -> None:
    headers = token_for(client, "leader1")
    own, other = users.cell_codes[0], users.cell_codes[1]
    listed = client.get("/api/v1/cells", headers=headers).json()
    assert [f["id"] for f in listed["features"]] == [own]
    assert client.get(f"/api/v1/cells/{own}", headers=headers).status_code == 200
    for path in ("", "/buildings", "/households"):
        r = client.get(f"/api/v1/cells/{other}{path}", headers=headers)
        assert r.status_code == 403, path
        assert other in r.json()["detail"]


def test_unknown_cell_is_404(client: TestClient, users: SmallStreet) -> None:
    r = client.get("/api/v1/cells/999999999999999", headers=token_for(client, "admin1"))
    assert r.status_code == 404
    assert r.json()["title"] == "Not found"


def test_community_staff_sees_their_community(client: TestClient, users: SmallStreet) -> None:
    headers = token_for(client, "comm1")
    communities = client.get("/api/v1/communities", headers=headers).json()
    assert [f["id"] for f in communities["features"]] == [users.community_code]
    cells = client.get(f"/api/v1/communities/{users.community_code}/cells", headers=headers)
    assert cells.json()["numberMatched"] == 4


def test_buildings_paged(client: TestClient, users: SmallStreet) -> None:
    headers = token_for(client, "admin1")
    code = users.cell_codes[0]
    r = client.get(f"/api/v1/cells/{code}/buildings?limit=1", headers=headers).json()
    assert r["numberMatched"] == 1 and r["numberReturned"] == 1
    assert r["features"][0]["properties"]["households"] > 0
    too_big = client.get(f"/api/v1/cells/{code}/buildings?limit=100000", headers=headers)
    assert too_big.status_code == 422
    assert "largest page size" in too_big.json()["detail"]


def test_households_masked_for_viewer(client: TestClient, db: Session, users: SmallStreet) -> None:
    from gridsvc.models import Building

    code = users.cell_codes[0]
    cell_id = db.scalar(select(Cell.id).where(Cell.code == code))
    building_id = db.scalar(select(Building.id).where(Building.cell_id == cell_id))
    for room in ("101", "102", "201"):
        db.add(
            Household(
                building_id=building_id,
                unit="1单元",
                room=room,
                size=3,
                head_name="王小明",
                phone="13812341234",
                low_income=room == "101",
            )
        )
    db.flush()
    staff = client.get(
        f"/api/v1/cells/{code}/households?limit=2", headers=token_for(client, "leader1")
    ).json()
    assert staff["number_matched"] == 3 and staff["number_returned"] == 2
    assert staff["items"][0]["phone"] == "13812341234"
    viewer = client.get(
        f"/api/v1/cells/{code}/households", headers=token_for(client, "viewer1")
    ).json()
    assert viewer["items"][0]["phone"] == "138****1234"
    assert viewer["items"][0]["head_name"] == "王**"
    assert db.scalar(select(func.count()).select_from(Household)) >= 3


def test_point_lookup(client: TestClient, users: SmallStreet) -> None:
    headers = token_for(client, "street1")
    cells = client.get("/api/v1/cells", headers=headers).json()["features"]
    ring = cells[2]["geometry"]["coordinates"][0][0]
    lon = sum(p[0] for p in ring[:4]) / 4
    lat = sum(p[1] for p in ring[:4]) / 4
    r = client.get(f"/api/v1/lookup?lon={lon}&lat={lat}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["cell_code"] == cells[2]["id"]
    assert r.json()["community_code"] == users.community_code
    # Outside every community: only an admin may ask; street staff get a 403.
    far = client.get("/api/v1/lookup?lon=100.0&lat=30.0", headers=headers)
    assert far.status_code == 403
    admin = client.get("/api/v1/lookup?lon=100.0&lat=30.0", headers=token_for(client, "admin1"))
    assert admin.json()["cell_code"] is None
    bad = client.get("/api/v1/lookup?lon=500&lat=30", headers=headers)
    assert bad.status_code == 422 and "lon" in bad.json()["detail"]


def test_leader_lookup_outside_their_cell_is_403(client: TestClient, users: SmallStreet) -> None:
    cells = client.get("/api/v1/cells", headers=token_for(client, "admin1")).json()["features"]
    ring = cells[3]["geometry"]["coordinates"][0][0]
    lon, lat = sum(p[0] for p in ring[:4]) / 4, sum(p[1] for p in ring[:4]) / 4
    r = client.get(f"/api/v1/lookup?lon={lon}&lat={lat}", headers=token_for(client, "leader1"))
    assert r.status_code == 403


def test_create_cells_via_api_and_refuse_bad_input(
    client: TestClient, db: Session, users: SmallStreet
) -> None:
    headers = token_for(client, "street1")
    before = db.scalar(select(func.count()).select_from(Cell))
    outside = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[119.5, 32.1], [119.6, 32.1], [119.6, 32.2], [119.5, 32.1]]],
                },
            }
        ],
    }
    r = client.post(
        f"/api/v1/communities/{users.community_code}/cells", json=outside, headers=headers
    )
    assert r.status_code == 422 and "outside" in r.json()["detail"]
    projected = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[500000, 3550000], [500100, 3550000], [500100, 3550100], [500000, 3550000]]
                    ],
                },
            }
        ],
    }
    r = client.post(
        f"/api/v1/communities/{users.community_code}/cells", json=projected, headers=headers
    )
    assert r.status_code == 422 and "longitude/latitude" in r.json()["detail"]
    garbage = client.post(
        f"/api/v1/communities/{users.community_code}/cells", json={"type": "Point"}, headers=headers
    )
    assert garbage.status_code == 422
    leader = client.post(
        f"/api/v1/communities/{users.community_code}/cells",
        json=outside,
        headers=token_for(client, "leader1"),
    )
    assert leader.status_code == 403
    assert db.scalar(select(func.count()).select_from(Cell)) == before


def test_openapi_docs_served_without_cdn(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "swagger-ui-bundle.js" in page
    assert "http://" not in page and "https://" not in page
    assert client.get("/static/docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"].startswith("gridsvc")


@pytest.mark.shared_data
def test_upload_import_dry_run_then_commit(
    client: TestClient, db: Session, users: SmallStreet, beijing
) -> None:
    from gridsvc.models import Building

    headers = token_for(client, "street1")
    path = beijing / "buildings.geojson"
    before = db.scalar(select(func.count()).select_from(Building))
    with open(path, "rb") as f:
        dry = client.post(
            "/api/v1/imports/buildings", files={"file": ("bj.geojson", f)}, headers=headers
        )
    assert dry.status_code == 200, dry.text
    assert dry.json()["inserted"] == 257 and dry.json()["committed"] is False
    assert db.scalar(select(func.count()).select_from(Building)) == before
    with open(path, "rb") as f:
        real = client.post(
            "/api/v1/imports/buildings",
            files={"file": ("bj.geojson", f)},
            data={"commit": "true"},
            headers=headers,
        )
    assert real.json()["committed"] is True
    assert db.scalar(select(func.count()).select_from(Building)) == before + 257


def test_upload_refusals(
    client: TestClient, db: Session, users: SmallStreet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridsvc.settings import get_settings

    headers = token_for(client, "street1")
    bad = client.post(
        "/api/v1/imports/buildings", files={"file": ("x.geojson", b"{nope")}, headers=headers
    )
    assert bad.status_code == 422 and "x.geojson" in bad.json()["detail"]
    empty = client.post(
        "/api/v1/imports/buildings", files={"file": ("e.geojson", b"")}, headers=headers
    )
    assert empty.status_code == 422
    monkeypatch.setattr(get_settings().app, "max_upload_bytes", 1000)
    big = client.post(
        "/api/v1/imports/buildings", files={"file": ("big.geojson", b" " * 5000)}, headers=headers
    )
    assert big.status_code == 413 and "limit" in big.json()["detail"]
    leader = client.post(
        "/api/v1/imports/buildings",
        files={"file": ("x.geojson", b"{}")},
        headers=token_for(client, "leader1"),
    )
    assert leader.status_code == 403


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    r = client.get("/api/v1/nowhere")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem")
    r = client.delete("/health")
    assert r.status_code == 405 and r.json()["status"] == 405


def test_malformed_json_body_is_422(client: TestClient, users: SmallStreet) -> None:
    r = client.post(
        f"/api/v1/communities/{users.community_code}/cells",
        content=b"{not json",
        headers={**token_for(client, "street1"), "content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["title"] == "Invalid request"


def test_geojson_responses_match_their_documented_schema(
    client: TestClient, users: SmallStreet
) -> None:
    from gridsvc.schemas import FeatureCollectionOut, FeatureOut

    headers = token_for(client, "admin1")
    spec = client.get("/openapi.json").json()
    documented = spec["paths"]["/api/v1/cells"]["get"]["responses"]["200"]["content"]
    assert "application/geo+json" in documented
    FeatureCollectionOut.model_validate(client.get("/api/v1/cells", headers=headers).json())
    FeatureOut.model_validate(
        client.get(f"/api/v1/cells/{users.cell_codes[0]}", headers=headers).json()
    )


def test_lookup_converts_amap_and_baidu_points(client: TestClient, users: SmallStreet) -> None:
    from geodata.china import wgs84_to_bd09, wgs84_to_gcj02

    headers = token_for(client, "street1")
    cells = client.get("/api/v1/cells", headers=headers).json()["features"]
    ring = cells[1]["geometry"]["coordinates"][0][0]
    lon, lat = sum(p[0] for p in ring[:4]) / 4, sum(p[1] for p in ring[:4]) / 4
    for datum, convert in (("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)):
        x, y = convert(lon, lat)
        r = client.get(f"/api/v1/lookup?lon={x}&lat={y}&datum={datum}", headers=headers).json()
        assert r["cell_code"] == cells[1]["id"], datum
        assert abs(r["lon"] - lon) < 1e-6 and abs(r["lat"] - lat) < 1e-6


def test_sign_in_is_rate_limited_per_client(
    client: TestClient, users: SmallStreet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Password guessing from one address is slowed to N attempts a minute (429 after)."""
    from gridsvc.settings import get_settings

    monkeypatch.setattr(get_settings().auth, "login_attempts_per_minute", 3)
    for _ in range(3):
        wrong = client.post("/api/v1/auth/token", data={"username": "nobody", "password": "x"})
        assert wrong.status_code == 401
    refused = client.post(
        "/api/v1/auth/token", data={"username": "street1", "password": TEST_PASSWORD}
    )
    assert refused.status_code == 429 and "sign-in attempts" in refused.json()["detail"]
    page = client.post("/ui/login", data={"username": "street1", "password": TEST_PASSWORD})
    assert page.status_code == 429  # the web form shares the limit


# -- found by the schemathesis fuzz (tests/gridsvc/test_fuzz.py) ------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/people/8950978451",
        "/api/v1/incidents/8950978451",
        "/api/v1/cells/{cell}/diff?from=1&to=8429309678",
    ],
)
def test_ids_beyond_the_database_range_are_422_not_500(
    client: TestClient, users: SmallStreet, url: str
) -> None:
    """An id PostgreSQL cannot hold (integer overflow) is bad input, not a server fault.

    One request per test: the test's shared session is unusable after the database error,
    where the server gives every request its own."""
    headers = token_for(client, "admin1")
    r = client.get(url.format(cell=users.cell_codes[0]), headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "out of range" in r.json()["detail"]


def test_openapi_declares_problem_bodies(client: TestClient, users: SmallStreet) -> None:
    """Every error the API answers is declared as a Problem, so clients can rely on it."""
    from gridsvc.schemas import ProblemOut

    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    cells = spec["paths"]["/api/v1/cells/{code}"]["get"]["responses"]
    for status in ("401", "403", "404", "422"):
        assert cells[status]["content"]["application/problem+json"]["schema"] == problem_ref
    upload = spec["paths"]["/api/v1/imports/{kind}"]["post"]["responses"]
    assert {"400", "413", "422"} <= set(upload)
    export = spec["paths"]["/api/v1/exports/{kind}/{code}"]["get"]["responses"]["200"]
    assert {"application/pdf", "image/png"} <= set(export["content"])
    # Real answers match the declared body: a validation error, a missing cell, no sign-in.
    headers = token_for(client, "admin1")
    for r in (
        client.get("/api/v1/cells?limit=0", headers=headers),
        client.get("/api/v1/cells/nope", headers=headers),
        client.get("/api/v1/cells"),
    ):
        assert r.headers["content-type"].startswith("application/problem+json")
        assert ProblemOut.model_validate(r.json()).status == r.status_code


def test_undecodable_body_is_a_declared_400(client: TestClient, users: SmallStreet) -> None:
    """A body that is not even text (invalid UTF-8) is refused with 400, as documented."""
    r = client.post(
        f"/api/v1/communities/{users.community_code}/cells",
        content=b"\xf1\x87\xb6\x96\xff",
        headers={**token_for(client, "street1"), "content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "parsing the body" in r.json()["detail"]
    spec = client.get("/openapi.json").json()
    documented = spec["paths"]["/api/v1/communities/{code}/cells"]["post"]["responses"]
    assert "400" in documented


def _ring(n: int, x0: float = 118.901, y0: float = 32.101, r: float = 0.0005) -> list[list[float]]:
    """A closed circle-like ring of n + 1 coordinates, inside the small street's first cell."""
    import math

    ring = [
        [x0 + r * math.cos(2 * math.pi * k / n), y0 + r * math.sin(2 * math.pi * k / n)]
        for k in range(n)
    ]
    return [*ring, ring[0]]


def test_coordinates_per_geometry_limit(
    client: TestClient, db: Session, users: SmallStreet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cell creation and redraw bodies refuse a geometry over the coordinate limit; nothing
    is written; one just under the limit is accepted for checking."""
    from gridsvc.settings import get_settings

    monkeypatch.setattr(get_settings().app, "max_geometry_coordinates", 50)
    headers = token_for(client, "street1")
    before = db.scalar(select(func.count()).select_from(Cell))
    big = {"type": "Polygon", "coordinates": [_ring(60)]}
    collection = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": big}],
    }
    r = client.post(
        f"/api/v1/communities/{users.community_code}/cells", json=collection, headers=headers
    )
    assert r.status_code == 422 and "61 coordinates; the limit per geometry is 50" in r.text
    url = f"/api/v1/communities/{users.community_code}/redraw"
    small = {"type": "Polygon", "coordinates": [_ring(40)]}
    body = {"op": "reshape", "cell": users.cell_codes[0], "geometry": small, "reason": "t"}
    r = client.post(f"{url}/preview", json=body, headers=headers)
    assert "limit per geometry" not in r.text and r.status_code == 200, r.text
    etag = r.headers["ETag"]
    for path, extra in (("preview", {}), ("commit", {"If-Match": etag})):
        r = client.post(
            f"{url}/{path}", json={**body, "geometry": big}, headers={**headers, **extra}
        )
        assert r.status_code == 422 and "limit per geometry is 50" in r.text, r.text
    assert db.scalar(select(func.count()).select_from(Cell)) == before


def test_features_per_payload_limit(
    client: TestClient, db: Session, users: SmallStreet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More features than GRIDSVC_MAX_IMPORT_FEATURES in one API payload: 422, nothing written."""
    from gridsvc.settings import get_settings

    monkeypatch.setattr(get_settings().app, "max_import_features", 2)
    before = db.scalar(select(func.count()).select_from(Cell))
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [_ring(8)]},
    }
    r = client.post(
        f"/api/v1/communities/{users.community_code}/cells",
        json={"type": "FeatureCollection", "features": [feature] * 3},
        headers=token_for(client, "street1"),
    )
    assert r.status_code == 422 and "3 features sent; the limit is 2" in r.json()["detail"]
    assert db.scalar(select(func.count()).select_from(Cell)) == before


def _unresolved_refs(spec: dict[str, object]) -> list[str]:
    """Every `$ref` of the document that names nothing in it (JSON pointer walk)."""
    broken: list[str] = []

    def resolves(ref: str) -> bool:
        node: object = spec
        for part in ref.removeprefix("#/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and not resolves(value):
                    broken.append(f"{where}: {value}")
                else:
                    walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(spec, "#")
    return broken


def test_openapi_is_self_consistent(client: TestClient, db: Session, users: SmallStreet) -> None:
    """Every `$ref` of /openapi.json resolves, and the media type each route really answers
    (CSV statistics, Open311 JSON and XML, their errors) is declared for that status."""
    from gridsvc.services import open311

    spec = client.get("/openapi.json").json()
    assert _unresolved_refs(spec) == []
    headers = token_for(client, "admin1")
    key = open311.create_key(db, "openapi-check")
    post = {"service_code": "sanitation", "lat": "32.101", "long": "118.901", "api_key": key}
    calls = [
        ("/api/v1/incidents/stats", "get", client.get("/api/v1/incidents/stats", headers=headers)),
        (
            "/api/v1/incidents/stats",
            "get",
            client.get("/api/v1/incidents/stats?format=csv", headers=headers),
        ),
    ]
    for fmt in ("json", "xml"):
        base = "/open311/v2"
        calls += [
            (f"{base}/discovery.{{fmt}}", "get", client.get(f"{base}/discovery.{fmt}")),
            (f"{base}/services.{{fmt}}", "get", client.get(f"{base}/services.{fmt}")),
            (f"{base}/requests.{{fmt}}", "get", client.get(f"{base}/requests.{fmt}")),
            (f"{base}/requests.{{fmt}}", "post", client.post(f"{base}/requests.{fmt}", data=post)),
            (f"{base}/requests.{{fmt}}", "post", client.post(f"{base}/requests.{fmt}", data={})),
            (
                f"{base}/requests/{{request_id}}.{{fmt}}",
                "get",
                client.get(f"{base}/requests/9.{fmt}"),
            ),
            (f"{base}/requests.{{fmt}}", "get", client.get(f"{base}/requests.{fmt}?status=x")),
        ]
    seen = set()
    for path, method, r in calls:
        media_type = r.headers["content-type"].split(";")[0].strip()
        declared = spec["paths"][path][method]["responses"].get(str(r.status_code), {})
        assert media_type in declared.get("content", {}), (path, method, r.status_code, media_type)
        seen.add((r.status_code, media_type))
    assert {(200, "text/csv"), (200, "text/xml"), (201, "text/xml"), (404, "text/xml")} <= seen
