"""Bounded work for every upload (issue 12 items 6, 7, 10): zip bombs, lying zip headers, XLSX
shared-string bombs, coordinate floods and deep JSON nesting are refused with a clear 4xx,
quickly, before the work is done, and nothing is written."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsvc.models import AuditEvent, Building, Cell, CellVersion, Incident, Person
from gridsvc.services.users import ScopeSpec, create_user
from tests import bombs
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet, token_for

GIB = 1024**3
MIB = 1024**2
_TABLES = (Building, Cell, CellVersion, Incident, Person, AuditEvent)


@pytest.fixture
def street1(client: TestClient, db: Session, small_street: SmallStreet) -> dict[str, str]:
    """Headers of a street staff user of the small street (may import every kind)."""
    create_user(
        db,
        username="street1",
        password=TEST_PASSWORD,
        role="street_staff",
        scope=ScopeSpec("street", small_street.street_code),
    )
    db.flush()
    return token_for(client, "street1")


def _counts(db: Session) -> dict[str, int]:
    return {t.__name__: db.scalar(select(func.count()).select_from(t)) or 0 for t in _TABLES}


def _upload(
    client: TestClient, headers: dict[str, str], route: str, name: str, data: bytes
) -> tuple[int, dict, float]:
    started = time.perf_counter()
    r = client.post(route, files={"file": (name, data)}, data={"commit": "true"}, headers=headers)
    return r.status_code, r.json(), time.perf_counter() - started


@pytest.fixture(scope="module")
def shapefile_parts(tmp_path_factory: pytest.TempPathFactory) -> list[bombs.Member]:
    """A valid one-building shapefile, as zip members."""
    return bombs.shapefile_members(tmp_path_factory.mktemp("shp"))


def test_valid_shapefile_zip_still_imports(
    client: TestClient, db: Session, street1: dict[str, str], shapefile_parts: list[bombs.Member]
) -> None:
    """The crafted archive is a real shapefile: without a bomb it imports (the control)."""
    status, body, _ = _upload(
        client, street1, "/api/v1/imports/buildings", "b.zip", bombs.write_zip(shapefile_parts)
    )
    assert status == 200, body
    assert body["inserted"] == 1


@pytest.mark.parametrize("route", ["/api/v1/imports/buildings", "/api/v1/imports/cells"])
def test_shapefile_zip_with_a_1_gib_prj_is_refused_before_inflating(
    client: TestClient,
    db: Session,
    street1: dict[str, str],
    shapefile_parts: list[bombs.Member],
    route: str,
) -> None:
    """1 MB upload, 1 GiB .prj: 413 naming the .prj, well under a second (the old code took
    58 s and 3 GB inflating it), nothing written."""
    archive = bombs.write_zip([*shapefile_parts, bombs.repeated("buildings.prj", GIB)])
    assert len(archive) < 2 * MIB
    before = _counts(db)
    status, body, seconds = _upload(client, street1, route, "bomb.zip", archive)
    assert status == 413, body
    assert "buildings.prj" in body["detail"] and "limit" in body["detail"]
    assert seconds < 1.0
    assert _counts(db) == before


def test_shapefile_zip_with_a_large_prj_is_refused(
    client: TestClient, db: Session, street1: dict[str, str], shapefile_parts: list[bombs.Member]
) -> None:
    """A .prj of 2 MiB (plain spaces, so it is text) is not a projection: 413 (old code read
    it whole and handed it to GDAL)."""
    archive = bombs.write_zip([*shapefile_parts, bombs.repeated("buildings.prj", 2 * MIB)])
    before = _counts(db)
    status, body, _ = _upload(client, street1, "/api/v1/imports/buildings", "big.zip", archive)
    assert status == 413 and "buildings.prj" in body["detail"], body
    assert _counts(db) == before


def test_shapefile_zip_whose_header_lies_about_a_size_is_refused(
    client: TestClient, db: Session, street1: dict[str, str], shapefile_parts: list[bombs.Member]
) -> None:
    """A .dbf declared as 100 bytes that inflates to 200 MiB gets no further than its declared
    size: a clear 4xx, quickly, nothing written."""
    dbf = next(m for m in shapefile_parts if m.name.endswith(".dbf"))
    liar = bombs.repeated("buildings.dbf", 200 * MIB, byte=b" ")
    liar.declared_size = 100
    parts = [m for m in shapefile_parts if m is not dbf] + [liar]
    before = _counts(db)
    status, body, seconds = _upload(
        client, street1, "/api/v1/imports/buildings", "liar.zip", bombs.write_zip(parts)
    )
    assert 400 <= status < 500, body
    assert "buildings.dbf" in body["detail"], body
    assert seconds < 1.0
    assert _counts(db) == before


def test_zip_with_too_many_members_is_refused(
    client: TestClient, db: Session, street1: dict[str, str], shapefile_parts: list[bombs.Member]
) -> None:
    """Thousands of empty entries: refused from the directory alone."""
    filler = [bombs.deflated(b"", f"junk/{i}.txt") for i in range(1500)]
    status, body, _ = _upload(
        client,
        street1,
        "/api/v1/imports/buildings",
        "many.zip",
        bombs.write_zip([*shapefile_parts, *filler]),
    )
    assert status == 413 and "1504 entries" in body["detail"], body


@pytest.mark.parametrize(
    ("route", "rows"),
    [
        ("/api/v1/imports/roster", [["姓名", "电话"], ["张三", "13800000000"]]),
        ("/api/v1/imports/incidents", [["lon", "lat", "category"], ["118.9", "32.1", "other"]]),
    ],
)
def test_xlsx_with_a_300_mb_shared_string_is_refused_before_inflating(
    client: TestClient, db: Session, street1: dict[str, str], route: str, rows: list[list[str]]
) -> None:
    """A 0.3 MB workbook whose shared strings unzip to 300 MB: 413 naming the part, in well
    under a second (the old code took 10 s and 2.7 GB), nothing written."""
    workbook = bombs.shared_strings_bomb(rows, 300 * 1000 * 1000)
    assert len(workbook) < MIB
    before = _counts(db)
    status, body, seconds = _upload(client, street1, route, "bomb.xlsx", workbook)
    assert status == 413, body
    assert "xl/sharedStrings.xml" in body["detail"]
    assert seconds < 1.0
    assert _counts(db) == before


def test_xlsx_whose_header_lies_about_its_shared_strings_is_refused(
    client: TestClient, db: Session, street1: dict[str, str]
) -> None:
    """Shared strings declared as 1 KB that inflate to 300 MB: reading stops at the declared
    size and the workbook is refused as damaged, quickly."""
    liar = bombs.shared_strings(300 * 1000 * 1000)
    liar.declared_size = 1000
    members = bombs.workbook_parts([["姓名"], ["张三"]])
    before = _counts(db)
    status, body, seconds = _upload(
        client, street1, "/api/v1/imports/roster", "liar.xlsx", bombs.write_zip([*members, liar])
    )
    assert status == 422, body
    assert seconds < 1.0
    assert _counts(db) == before


def _polygon(vertices: int, x0: float = 118.9, y0: float = 32.1) -> dict:
    import math

    ring = [
        [
            round(x0 + 0.003 + 0.002 * math.cos(2 * math.pi * k / vertices), 7),
            round(y0 + 0.003 + 0.002 * math.sin(2 * math.pi * k / vertices), 7),
        ]
        for k in range(vertices)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _collection(*geometries: dict) -> bytes:
    features = [
        {"type": "Feature", "id": f"f{i}", "properties": {"name": f"{i}栋"}, "geometry": g}
        for i, g in enumerate(geometries)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def test_building_with_a_million_vertices_is_refused(
    client: TestClient, db: Session, street1: dict[str, str]
) -> None:
    """The 10⁶-vertex building that made the cell map 23 MB for everyone: 413/422 naming the
    feature and the limit, nothing written (the old code stored it)."""
    data = _collection(_polygon(8), _polygon(1_000_000))
    before = _counts(db)
    status, body, seconds = _upload(
        client, street1, "/api/v1/imports/buildings", "huge.geojson", data
    )
    assert status == 422, body
    assert "feature #1: 1000001 coordinates; the limit per geometry is 100000" in body["detail"]
    assert seconds < 2.0  # counted in the text, before GDAL builds it (old code: 11 s)
    assert _counts(db) == before


@pytest.mark.parametrize("route", ["/api/v1/imports/cells", "/api/v1/imports/estates"])
def test_coordinate_limit_per_geometry_applies_to_every_import(
    client: TestClient,
    db: Session,
    street1: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    route: str,
) -> None:
    """Cells and estates from a file obey GRIDSVC_MAX_GEOMETRY_COORDINATES too."""
    from gridsvc.settings import get_settings

    monkeypatch.setattr(get_settings().app, "max_geometry_coordinates", 100)
    before = _counts(db)
    status, body, _ = _upload(
        client, street1, route, "c.geojson", _collection(_polygon(8), _polygon(300))
    )
    assert status == 422, body
    assert "feature #1: 301 coordinates; the limit per geometry is 100" in body["detail"]
    assert _counts(db) == before


def test_coordinate_limit_per_file(
    client: TestClient, db: Session, street1: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many modest geometries: the per-file total is bounded as well (CSV points, incidents)."""
    from gridsvc.settings import get_settings

    monkeypatch.setattr(get_settings().app, "max_file_coordinates", 50)
    csv = "lon,lat,category\n" + "118.901,32.101,other\n" * 60
    before = _counts(db)
    status, body, _ = _upload(client, street1, "/api/v1/imports/incidents", "i.csv", csv.encode())
    assert status == 422, body
    assert "60 coordinates in all; the limit per file is 50" in body["detail"]
    assert _counts(db) == before


def test_api_payload_obeys_the_per_payload_coordinate_limit(
    client: TestClient,
    db: Session,
    street1: dict[str, str],
    small_street: SmallStreet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same rule for API bodies: many small polygons over the total are refused."""
    from gridsvc.settings import get_settings

    monkeypatch.setattr(get_settings().app, "max_file_coordinates", 30)
    before = _counts(db)
    r = client.post(
        f"/api/v1/communities/{small_street.community_code}/cells",
        json=json.loads(_collection(*[_polygon(8)] * 4)),
        headers=street1,
    )
    assert r.status_code == 422 and "36 coordinates in all" in r.json()["detail"], r.text
    assert _counts(db) == before


@pytest.mark.parametrize("depth", [100, 200_000])
def test_deeply_nested_geojson_upload_is_a_4xx(
    client: TestClient, db: Session, street1: dict[str, str], depth: int
) -> None:
    """200k nested '[' in an upload was a 500 (RecursionError): now 422 naming the nesting."""
    before = _counts(db)
    status, body, _ = _upload(
        client, street1, "/api/v1/imports/buildings", "deep.geojson", bombs.nested_geojson(depth)
    )
    assert status == 422, body
    assert "deep.geojson" in body["detail"]
    assert depth < 1000 or "nested 200004 levels deep; the limit is 64" in body["detail"]
    assert _counts(db) == before


@pytest.mark.parametrize("depth", [900, 200_000])
def test_deeply_nested_json_bodies_are_4xx(
    client: TestClient,
    db: Session,
    street1: dict[str, str],
    small_street: SmallStreet,
    depth: int,
) -> None:
    """JSON bodies that can recurse (cells, redraws) refuse deep nesting with a 4xx."""
    community = small_street.community_code
    nested = b"[" * depth + b"]" * depth
    bodies = {
        f"/api/v1/communities/{community}/cells": bombs.nested_geojson(depth),
        f"/api/v1/communities/{community}/redraw/preview": (
            b'{"op":"create","reason":"t","geometry":{"type":"Polygon","coordinates":'
            + nested
            + b"}}"
        ),
    }
    before = _counts(db)
    for url, body in bodies.items():
        r = client.post(url, content=body, headers={**street1, "Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text[:300])
    assert _counts(db) == before


def test_bomb_refusals_leave_no_scratch_files(
    client: TestClient, street1: dict[str, str], shapefile_parts: list[bombs.Member]
) -> None:
    """The unzipped parts of a refused shapefile are removed with their scratch folder."""
    import tempfile

    scratch = Path(tempfile.gettempdir())
    before = set(scratch.glob("geodata-*"))
    liar = bombs.repeated("buildings.dbf", 50 * MIB)
    liar.declared_size = 100
    parts = [m for m in shapefile_parts if not m.name.endswith(".dbf")] + [liar]
    _upload(client, street1, "/api/v1/imports/buildings", "liar.zip", bombs.write_zip(parts))
    assert set(scratch.glob("geodata-*")) == before


# -- string lengths (item 10b) -----------------------------------------------------------------
def _unbounded_strings(spec: dict) -> list[str]:
    """Request strings (parameters and bodies) of an OpenAPI document without a maxLength."""
    components = spec.get("components", {}).get("schemas", {})
    found: list[str] = []

    def walk(schema: dict, where: str, seen: frozenset[str]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(components[name], where, seen | {name})
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in schema.get(key, []):
                walk(sub, where, seen)
        exempt = {"enum", "const", "format", "contentMediaType", "maxLength"}
        if schema.get("type") == "string" and not exempt & schema.keys():
            found.append(where)
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], where + "[]", seen)
        for name, prop in schema.get("properties", {}).items():
            walk(prop, f"{where}.{name}", seen)
        if isinstance(schema.get("additionalProperties"), dict):
            walk(schema["additionalProperties"], where + "{}", seen)

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                walk(
                    parameter.get("schema", {}),
                    f"{label} {parameter['in']} {parameter['name']}",
                    frozenset(),
                )
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk(content.get("schema", {}), f"{label} body", frozenset())
    return found


def test_every_request_string_has_a_max_length(client: TestClient) -> None:
    """Every string a client can send (body property, form field, query, path or header
    parameter) declares maxLength in the OpenAPI document (enums and formats excepted), so a
    new field cannot forget it."""
    spec = client.get("/openapi.json").json()
    missing = _unbounded_strings(spec)
    assert not missing, "request strings without maxLength:\n" + "\n".join(sorted(set(missing)))


def test_the_walk_finds_an_unbounded_string() -> None:
    """The check itself: a body property, a nested list item and a query string are found."""
    spec = {
        "paths": {
            "/x": {
                "post": {
                    "parameters": [{"in": "query", "name": "q", "schema": {"type": "string"}}],
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/B"}}
                        }
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "B": {
                    "properties": {
                        "ok": {"type": "string", "maxLength": 5},
                        "kind": {"type": "string", "enum": ["a"]},
                        "bad": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                        "items": {"type": "array", "items": {"type": "string"}},
                    }
                }
            }
        },
    }
    assert _unbounded_strings(spec) == [
        "POST /x query q",
        "POST /x body.bad",
        "POST /x body.items[]",
    ]


TEN_MB = 10 * 1000 * 1000


def test_a_10_mb_redraw_reason_is_refused(
    client: TestClient, db: Session, street1: dict[str, str], small_street: SmallStreet
) -> None:
    """The 10 MB reason that was accepted into the audit log: 422 naming the field."""
    before = _counts(db)
    r = client.post(
        f"/api/v1/communities/{small_street.community_code}/redraw/preview",
        json={"op": "merge", "cells": small_street.cell_codes[:2], "reason": "x" * TEN_MB},
        headers=street1,
    )
    assert r.status_code == 422, r.text[:300]
    assert "reason" in r.json()["detail"] and "4000" in r.json()["detail"]
    assert _counts(db) == before


def test_10_mb_strings_in_query_form_and_header_parameters_are_refused(
    client: TestClient, street1: dict[str, str], small_street: SmallStreet
) -> None:
    """A query filter, a form field and the If-Match header are bounded too."""
    huge = "x" * 5000
    r = client.get("/api/v1/incidents", params={"cell": huge}, headers=street1)
    assert r.status_code == 422 and "cell" in r.json()["detail"]
    r = client.post("/api/v1/auth/token", data={"username": huge, "password": "p"})
    assert r.status_code == 422 and "username" in r.json()["detail"]
    r = client.post(
        f"/api/v1/communities/{small_street.community_code}/redraw/commit",
        json={"op": "merge", "cells": small_street.cell_codes[:2], "reason": "t"},
        headers={**street1, "If-Match": huge},
    )
    assert r.status_code == 422 and "if-match" in r.json()["detail"].lower()


def test_a_10_mb_roster_name_is_refused_naming_row_and_column(
    client: TestClient, db: Session, street1: dict[str, str], small_street: SmallStreet
) -> None:
    """A roster row whose 姓名 is 10 MB is reported (row 3, column 姓名) and not written;
    the good row still is."""
    from gridsvc.services.users import create_user

    create_user(db, username="admin9", password=TEST_PASSWORD, role="admin")
    db.flush()
    headers = token_for(client, "admin9")
    csv = f"姓名,社区编码\n张三,{small_street.community_code}\n{'王' * TEN_MB},{small_street.community_code}\n"
    before = _counts(db)
    status, body, _ = _upload(client, headers, "/api/v1/imports/roster", "r.csv", csv.encode())
    assert status == 200, body
    assert body["good_rows"] == 1 and body["bad_rows"] == 1
    (error,) = body["errors"]
    assert error["row"] == 3 and error["column"] == "姓名"
    assert f"{TEN_MB} characters; the limit is 64" in error["message"]
    after = _counts(db)
    assert after["Person"] == before["Person"] + 1
    assert db.scalar(select(func.max(func.length(Person.name)))) < 100


def test_a_10_mb_building_name_in_an_import_file_is_refused(
    client: TestClient, db: Session, street1: dict[str, str]
) -> None:
    """The same limits for text read from files: 422 naming the feature and the column
    (a CSV with a WKT column and a 10 MB name; a GeoJSON address of 5000 characters)."""
    wkt = "POLYGON((118.9 32.1,118.901 32.1,118.901 32.101,118.9 32.101,118.9 32.1))"
    csv = f'id,wkt,name\nb1,"{wkt}",1栋\nb2,"{wkt}",{"x" * TEN_MB}\n'
    before = _counts(db)
    status, body, _ = _upload(client, street1, "/api/v1/imports/buildings", "b.csv", csv.encode())
    assert status == 422, body
    assert f"feature 'b2': name is {TEN_MB} characters long; the limit is 200" in body["detail"]
    features = [
        {
            "type": "Feature",
            "id": "b1",
            "properties": {"name": "1栋", "address": "路" * 5000},
            "geometry": _polygon(8),
        }
    ]
    data = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    status, body, _ = _upload(client, street1, "/api/v1/imports/buildings", "b.geojson", data)
    assert status == 422, body
    assert "feature 'b1': address is 5000 characters long; the limit is 500" in body["detail"]
    assert _counts(db) == before


def test_json_body_over_the_upload_limit_is_413(
    client: TestClient,
    db: Session,
    street1: dict[str, str],
    small_street: SmallStreet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A JSON body is bounded like an upload (it was read whole, without a limit)."""
    from gridsvc.settings import get_settings

    monkeypatch.setattr(get_settings().app, "max_upload_bytes", 2000)
    before = _counts(db)
    r = client.post(
        f"/api/v1/communities/{small_street.community_code}/cells",
        content=_collection(_polygon(200)),
        headers={**street1, "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and "request body is larger" in r.json()["detail"], r.text
    assert _counts(db) == before
