"""Vector tiles against real PostGIS: decoded with mapbox-vector-tile, per role (viewer, 格长,
staff), with 304 on a matching ETag, a new ETag after a redraw, and the OGC API – Tiles and
TileJSON documents."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mapbox_vector_tile
import pytest
import shapely
import shapely.geometry
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridsvc.models import Building, Cell, Household, Incident, Person, VolunteerTeam
from gridsvc.repositories.bulk import to_db_geometry
from gridsvc.security import create_access_token
from gridsvc.services.users import ScopeSpec, create_user
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet

#: The small street's extent (tests/gridsvc/conftest.py: 2×2 cells of 0.004° from 118.90, 32.10).
BBOX = (118.90, 32.10, 118.908, 32.108)


def _tiles_covering(z: int, bbox: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    """(x, y) of the WebMercatorQuad tiles at zoom z that meet the box."""

    def tile(lon: float, lat: float) -> tuple[int, int]:
        n = 1 << z
        x = int((lon + 180) / 360 * n)
        lat_r = math.radians(lat)
        y = int((1 - math.asinh(math.tan(lat_r)) / math.pi) / 2 * n)
        return x, y

    x0, y1 = tile(bbox[0], bbox[1])
    x1, y0 = tile(bbox[2], bbox[3])
    return [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


@dataclass
class Place:
    """The small street with people, incidents and a sign-in per role."""

    street: SmallStreet
    headers: dict[str, dict[str, str]]


@pytest.fixture
def place(client: TestClient, db: Session, small_street: SmallStreet) -> Place:
    """Households with flags in the first two cells, a volunteer in each, an open incident in
    each, and admin / street staff / a 格长 of the first cell / a viewer of the street."""
    s = small_street
    cells = {code: db.scalar(select(Cell).where(Cell.code == code)) for code in s.cell_codes[:2]}
    team = VolunteerTeam(name="党员志愿服务队", kind="party")
    db.add(team)
    db.flush()
    category = db.scalar(text("SELECT code FROM incident_category ORDER BY code LIMIT 1"))
    community_id, street_id = db.execute(
        text("SELECT co.id, co.street_id FROM community co WHERE co.code = :c"),
        {"c": s.community_code},
    ).one()
    for n, (code, cell) in enumerate(cells.items()):
        assert cell is not None
        building = db.scalar(select(Building).where(Building.cell_id == cell.id))
        assert building is not None
        home = Household(building_id=building.id, head_name="王大明", phone="13812345678",
                         low_income=True, disabled=n == 0, room="101")  # fmt: skip
        db.add(home)
        db.flush()
        db.add(Person(name=f"张志{n}", phone="13900001111", household_id=home.id,
                      volunteer_team_id=team.id))  # fmt: skip
        centre = shapely.centroid(shapely.from_wkb(bytes(db.scalar(
            text("SELECT ST_AsBinary(footprint) FROM building WHERE id = :i"), {"i": building.id}
        ))))  # fmt: skip
        db.add(
            Incident(
                location=to_db_geometry(shapely.Point(centre.x + 3e-4, centre.y)),
                category=category,
                status="filed",
                description=f"楼道堆物 {code}",
                address="某路1号",
                reporter_name="李四",
                reporter_phone="13700000000",
                cell_id=cell.id,
                community_id=community_id,
                street_id=street_id,
            )
        )
    users = {
        "admin1": create_user(db, username="admin1", password=TEST_PASSWORD, role="admin"),
        "street1": create_user(db, username="street1", password=TEST_PASSWORD,
                               role="street_staff", scope=ScopeSpec("street", s.street_code)),
        "leader1": create_user(db, username="leader1", password=TEST_PASSWORD, role="leader",
                               scope=ScopeSpec("cell", s.cell_codes[0])),
        "viewer1": create_user(db, username="viewer1", password=TEST_PASSWORD, role="viewer",
                               scope=ScopeSpec("street", s.street_code)),
    }  # fmt: skip
    db.flush()
    # Tokens minted as the sign-in route mints them (tests/gridsvc/test_auth.py signs in).
    return Place(
        s,
        {
            name: {"Authorization": "Bearer " + create_access_token(u.id, u.role, u.token_version)}
            for name, u in users.items()
        },
    )


def _features(
    client: TestClient, headers: dict[str, str], layer: str, z: int = 15
) -> dict[str, list[dict[str, Any]]]:
    """Every feature of the layer's tiles over the small street, by tile layer name (a
    feature cut by a tile edge is counted once, by its id)."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for x, y in _tiles_covering(z, BBOX):
        r = client.get(f"/api/v1/tiles/{layer}/{z}/{x}/{y}.mvt", headers=headers)
        assert r.status_code in (200, 204), r.text
        if r.status_code == 204:
            assert r.content == b""
            continue
        assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        for name, data in mapbox_vector_tile.decode(r.content).items():
            assert data["extent"] == 4096
            for f in data["features"]:
                found.setdefault(name, {})[f["id"]] = f
    return {name: list(by_id.values()) for name, by_id in found.items()}


def test_cells_tile_is_scoped(client: TestClient, place: Place) -> None:
    codes = place.street.cell_codes
    for user, expected in (("admin1", codes), ("viewer1", codes), ("leader1", codes[:1])):
        cells = _features(client, place.headers[user], "cells")["cells"]
        assert sorted(f["properties"]["code"] for f in cells) == sorted(expected), user
        assert all(f["geometry"]["type"] == "Polygon" for f in cells)
        assert all(f["properties"]["kind"] == "general" for f in cells)


def test_buildings_tile_masks_flags_by_role_and_cell(client: TestClient, place: Place) -> None:
    own, other = place.street.cell_codes[0], place.street.cell_codes[1]
    staff = {
        f["properties"]["cell_code"]: f["properties"]
        for f in _features(client, place.headers["street1"], "buildings")["buildings"]
    }
    assert len(staff) == 4 and all(p["households"] > 0 for p in staff.values())
    assert staff[own]["low_income"] == 1 and staff[own]["disabled"] == 1
    assert staff[other]["low_income"] == 1 and staff[other]["disabled"] == 0
    viewer = _features(client, place.headers["viewer1"], "buildings")["buildings"]
    assert len(viewer) == 4
    for f in viewer:  # households counted, no flag counts at all
        assert "households" in f["properties"]
        assert not {"low_income", "disabled", "elderly_alone"} & f["properties"].keys()
    leader = {
        f["properties"]["cell_code"]: f["properties"]
        for f in _features(client, place.headers["leader1"], "buildings")["buildings"]
    }
    assert len(leader) == 4  # the community's buildings, as /communities/{code}/buildings
    assert leader[own]["low_income"] == 1
    assert "low_income" not in leader[other]  # another cell's households are not theirs


def test_incidents_tile_scoped_and_masked(client: TestClient, place: Place) -> None:
    own = place.street.cell_codes[0]
    staff = _features(client, place.headers["street1"], "incidents")["incidents"]
    assert sorted(f["properties"]["cell_code"] for f in staff) == sorted(
        place.street.cell_codes[:2]
    )
    assert all(f["properties"]["description"].startswith("楼道堆物") for f in staff)
    assert all(f["properties"]["overdue"] in (True, False) for f in staff)
    leader = _features(client, place.headers["leader1"], "incidents")["incidents"]
    assert [f["properties"]["cell_code"] for f in leader] == [own]
    viewer = _features(client, place.headers["viewer1"], "incidents")["incidents"]
    assert len(viewer) == 2
    for f in [*staff, *leader, *viewer]:
        assert not {"reporter_name", "reporter_phone"} & f["properties"].keys()
    for f in viewer:
        assert not {"description", "address"} & f["properties"].keys()


def test_volunteers_tile_names_masked_for_viewers(client: TestClient, place: Place) -> None:
    staff = _features(client, place.headers["street1"], "volunteers")["volunteers"]
    assert sorted(f["properties"]["name"] for f in staff) == ["张志0", "张志1"]
    viewer = _features(client, place.headers["viewer1"], "volunteers")["volunteers"]
    assert sorted(f["properties"]["name"] for f in viewer) == ["张**", "张**"]
    leader = _features(client, place.headers["leader1"], "volunteers")["volunteers"]
    assert [f["properties"]["cell_code"] for f in leader] == [place.street.cell_codes[0]]
    for f in [*staff, *viewer, *leader]:
        assert "phone" not in f["properties"]
        assert f["properties"]["team"] == "党员志愿服务队"


def test_combined_tile_holds_every_layer(client: TestClient, place: Place) -> None:
    layers = _features(client, place.headers["admin1"], "all")
    assert set(layers) == {"cells", "buildings", "incidents", "volunteers"}
    # Below the buildings' first zoom only the cells are drawn.
    low = _features(client, place.headers["admin1"], "all", z=11)
    assert set(low) == {"cells"}


def test_empty_tile_is_204_and_bad_tiles_are_4xx(client: TestClient, place: Place) -> None:
    h = place.headers["admin1"]
    r = client.get("/api/v1/tiles/buildings/15/0/0.mvt", headers=h)  # the Arctic Ocean
    assert r.status_code == 204 and r.content == b"" and r.headers["ETag"]
    assert client.get("/api/v1/tiles/households/15/0/0.mvt", headers=h).status_code == 404
    assert client.get("/api/v1/tiles/cells/3/8/0.mvt", headers=h).status_code == 404
    assert client.get("/api/v1/tiles/cells/23/0/0.mvt", headers=h).status_code == 422
    r = client.get("/api/v1/tiles/cells/15/0/0.mvt")
    assert r.status_code == 401


def _one_tile(z: int = 15) -> tuple[int, int]:
    tiles = _tiles_covering(z, (118.902, 32.102, 118.902, 32.102))
    return tiles[0]


@pytest.mark.parametrize("layer", ["cells", "buildings"])
def test_matching_etag_is_304(client: TestClient, place: Place, layer: str) -> None:
    x, y = _one_tile()
    url = f"/api/v1/tiles/{layer}/15/{x}/{y}.mvt"
    h = place.headers["street1"]
    first = client.get(url, headers=h)
    assert first.status_code == 200
    assert first.headers["Cache-Control"].startswith("private, max-age=")
    again = client.get(url, headers={**h, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    other = client.get(url, headers={**h, "If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == first.content


def test_cells_etag_differs_by_what_the_user_may_see(client: TestClient, place: Place) -> None:
    x, y = _one_tile()
    url = f"/api/v1/tiles/cells/15/{x}/{y}.mvt"
    staff = client.get(url, headers=place.headers["street1"])
    leader = client.get(
        url, headers={**place.headers["leader1"], "If-None-Match": staff.headers["ETag"]}
    )
    assert leader.status_code == 200 and leader.headers["ETag"] != staff.headers["ETag"]


def test_cells_etag_changes_after_a_redraw(client: TestClient, place: Place) -> None:
    z = 14
    (x, y), *_ = _tiles_covering(z, (118.902, 32.102, 118.902, 32.102))
    url = f"/api/v1/tiles/cells/{z}/{x}/{y}.mvt"
    h = place.headers["street1"]
    before = client.get(url, headers=h)
    assert before.status_code == 200
    code = place.street.cell_codes[1]
    cell = shapely.geometry.shape(client.get(f"/api/v1/cells/{code}", headers=h).json()["geometry"])
    minx, miny, maxx, maxy = cell.bounds
    mid = (minx + maxx) / 2
    line = {"type": "LineString", "coordinates": [[mid, miny - 0.001], [mid, maxy + 0.001]]}
    body = {"op": "split", "cell": code, "line": line, "reason": "测试：拆分网格"}
    community = place.street.community_code
    preview = client.post(f"/api/v1/communities/{community}/redraw/preview", json=body, headers=h)
    assert preview.status_code == 200, preview.text
    commit = client.post(
        f"/api/v1/communities/{community}/redraw/commit",
        json=body,
        headers={**h, "If-Match": preview.json()["etag"]},
    )
    assert commit.status_code == 200, commit.text
    after = client.get(url, headers={**h, "If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    codes = {
        f["properties"]["code"]
        for f in mapbox_vector_tile.decode(after.content)["cells"]["features"]
    }
    assert code not in codes and len(codes) == 5


def test_ogc_tiles_and_tilejson(client: TestClient, place: Place) -> None:
    sets = client.get("/ogc/tileMatrixSets").json()
    assert [s["id"] for s in sets["tileMatrixSets"]] == ["WebMercatorQuad"]
    tms = client.get("/ogc/tileMatrixSets/WebMercatorQuad").json()
    assert tms["crs"].endswith("/EPSG/0/3857") and len(tms["tileMatrices"]) == 23
    z15 = tms["tileMatrices"][15]
    assert z15["matrixWidth"] == 32768 and abs(z15["scaleDenominator"] - 17061.8366707982) < 1e-3
    assert client.get("/ogc/tileMatrixSets/WorldCRS84Quad").status_code == 404

    h = place.headers["viewer1"]
    listing = client.get("/ogc/collections/buildings/tiles", headers=h).json()
    (tileset,) = listing["tilesets"]
    assert tileset["dataType"] == "vector"
    item = next(link for link in tileset["links"] if link["rel"] == "item")
    assert item["templated"] and item["type"] == "application/vnd.mapbox-vector-tile"
    assert "low_income" not in tileset["layers"][0]["propertiesSchema"]
    # The OGC tile is the same tile (tileRow = y, tileCol = x).
    x, y = _one_tile()
    href = item["href"].replace("{tileMatrix}", "15").replace("{tileRow}", str(y))
    ogc = client.get(href.replace("{tileCol}", str(x)), headers=h)
    plain = client.get(f"/api/v1/tiles/buildings/15/{x}/{y}.mvt", headers=h)
    assert ogc.status_code == 200 and ogc.content == plain.content

    viewer = client.get("/api/v1/tiles/buildings.json", headers=h).json()
    assert viewer["tilejson"] == "3.0.0" and viewer["minzoom"] == 13
    assert viewer["tiles"][0].endswith("/api/v1/tiles/buildings/{z}/{x}/{y}.mvt")
    (layer,) = viewer["vector_layers"]
    assert layer["id"] == "buildings" and layer["fields"]["households"] == "Number"
    assert "low_income" not in layer["fields"]
    staff = client.get("/api/v1/tiles/buildings.json", headers=place.headers["street1"]).json()
    assert staff["vector_layers"][0]["fields"]["low_income"] == "Number"

    # The OGC API – Features side declares and links the tiles.
    conforms = client.get("/ogc/conformance", headers=h).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in conforms
    landing = client.get("/ogc", headers=h).json()["links"]
    assert any(link["href"].endswith("/ogc/tileMatrixSets") for link in landing)
    collection = client.get("/ogc/collections/buildings", headers=h).json()["links"]
    tilesets = [link["href"] for link in collection if link["rel"].endswith("tilesets-vector")]
    assert len(tilesets) == 1 and tilesets[0].endswith("/ogc/collections/buildings/tiles")
    households = client.get("/ogc/collections/households", headers=h).json()["links"]
    assert not [link for link in households if link["rel"].endswith("tilesets-vector")]


def test_street_page_draws_buildings_from_tiles_above_the_threshold(
    client: TestClient, place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridsvc.settings import get_settings
    from tests.gridsvc.conftest import sign_in_form

    street = place.street.street_code
    assert sign_in_form(client, "street1", TEST_PASSWORD).status_code == 303
    assert f"/ui/streets/{street}" in client.get("/ui/").text
    inline = client.get(f"/ui/streets/{street}")  # 4 buildings: below the default 3,000
    assert inline.status_code == 200, inline.text[:300]
    assert "vectorGrid" not in inline.text
    monkeypatch.setenv("GRIDSVC_MAP_TILED_BUILDINGS_ABOVE", "3")
    get_settings.cache_clear()
    try:
        tiled = client.get(f"/ui/streets/{street}")
        assert tiled.status_code == 200
        assert "L.vectorGrid.protobuf" in tiled.text
        assert "/api/v1/tiles/buildings/{z}/{x}/{y}.mvt" in tiled.text
        assert "/static/vendor/leaflet.vectorgrid@1.3.0/" in tiled.text
        editor = client.get(f"/ui/communities/{place.street.community_code}/editor")
        assert 'data-building-tiles="/api/v1/tiles/buildings/{z}/{x}/{y}.mvt"' in editor.text
    finally:
        get_settings.cache_clear()
    client.cookies.clear()
    assert sign_in_form(client, "leader1", TEST_PASSWORD).status_code == 303
    assert client.get(f"/ui/streets/{street}").status_code == 403  # a 格长's scope is a cell
