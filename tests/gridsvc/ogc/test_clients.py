"""OGC API – Features read by clients nobody here wrote, against a live server: GDAL's OAPIF
driver (Debian's ogrinfo/ogr2ogr, with the bearer token as a configured header) and OWSLib.

Every collection is copied in full through several pages and compared with the database."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tests.conftest import scratch_database, seed_two_cells

STREET, COMMUNITY = "320102556", "320102556001"
PASSWORD = "ogc-live-password-1"
#: Buildings seeded: more than two GDAL pages of 100.
BUILDINGS = 230

pytestmark = [
    pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="needs gdal-bin"),
    # Live servers and clients in child processes: not for the faked clock of the second pass.
    pytest.mark.live,
]

#: What each collection holds in the database, for an admin (the SQL nobody else wrote).
DB_COUNTS = {
    "communities": "SELECT count(*) FROM community",
    "cells": "SELECT count(*) FROM cell c JOIN cell_version v ON v.cell_id = c.id "
    "WHERE v.valid_to IS NULL AND c.retired_at IS NULL",
    "cell_versions": "SELECT count(*) FROM cell_version",
    "buildings": "SELECT count(*) FROM building",
    "households": "SELECT count(*) FROM household",
    "incidents": "SELECT count(*) FROM incident",
    "volunteers": "SELECT count(*) FROM person WHERE volunteer_team_id IS NOT NULL "
    "AND household_id IS NOT NULL",
    "roads": "SELECT count(*) FROM road",
}


@dataclass
class Live:
    """The server's /ogc root, the scratch database and a desktop token of each user."""

    root: str
    url: str
    tokens: dict[str, str]

    def gdal(self, tool: str, *args: str, user: str = "boss") -> str:
        """Run ogrinfo/ogr2ogr with the user's token as GDAL_HTTP_HEADERS; its stdout."""
        header = f"Authorization: Bearer {self.tokens[user]}"
        done = subprocess.run(
            [tool, "--config", "GDAL_HTTP_HEADERS", header, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "Warning" not in done.stderr and "ERROR" not in done.stderr, done.stderr
        return done.stdout


def _seed(url: str) -> None:
    """Buildings in a grid over both cells, a household in each, a volunteer, an incident and
    a road; everything assigned to its cell."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO building (source, source_id, name, kind, households, community_id,
                                      cell_id, footprint)
                SELECT 'test', 'b' || n, n || '号楼', 'residential', 1, co.id,
                       (SELECT v.cell_id FROM cell_version v WHERE v.valid_to IS NULL
                          AND ST_Contains(v.geom, ST_SetSRID(ST_MakePoint(x, y), 4326))),
                       ST_Multi(ST_Expand(ST_SetSRID(ST_MakePoint(x, y), 4326), 0.00005))
                FROM generate_series(0, :n - 1) AS n
                CROSS JOIN LATERAL (SELECT 118.9001 + (n % 23) * 0.00034 AS x,
                                           32.1001 + (n / 23) * 0.00034 AS y) p
                CROSS JOIN community co
                """
            ),
            {"n": BUILDINGS},
        )
        conn.execute(
            text(
                "INSERT INTO household (building_id, room, head_name, phone, size) "
                "SELECT id, '101', '王五', '13700001234', 2 FROM building"
            )
        )
        conn.execute(text("INSERT INTO volunteer_team (name, kind) VALUES ('巾帼服务队', 'women')"))
        conn.execute(
            text(
                "INSERT INTO person (name, phone, household_id, volunteer_team_id) "
                "SELECT '赵志愿', '13600002222', min(h.id), (SELECT id FROM volunteer_team) "
                "FROM household h"
            )
        )
        conn.execute(
            text(
                "INSERT INTO road (source, source_id, name, highway, geom) VALUES ('test', 'r1', "
                "'北京东路', 'primary', ST_GeomFromText("
                "'MULTILINESTRING((118.9 32.102, 118.908 32.102))', 4326))"
            )
        )
    engine.dispose()


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[Live]:
    """The two-cell community with 230 buildings and their households, gridsvc serving."""
    from gridsvc.services.users import desktop_token
    from gridsvc.testing import serve_in_subprocess

    with scratch_database("gridsvc_ogc_live") as url:
        seed_two_cells(url, STREET, COMMUNITY, PASSWORD)
        _seed(url)
        engine = create_engine(url)
        with Session(engine) as s:
            tokens = {u: desktop_token(s, u, 1) for u in ("boss", "gz")}
        engine.dispose()
        with serve_in_subprocess(url) as base:
            for n in range(3):  # reported through the API, as a 格长 does
                reported = httpx.post(
                    f"{base}/api/v1/incidents",
                    json={"lon": 118.9021 + n * 0.004, "lat": 32.1021, "category": "sanitation"},
                    headers={"Authorization": f"Bearer {tokens['boss']}"},
                )
                assert reported.status_code == 201, reported.text
            yield Live(f"{base}/ogc", url, tokens)


def _db_count(live: Live, sql: str) -> int:
    engine = create_engine(live.url)
    with engine.connect() as conn:
        count = int(conn.execute(text(sql)).scalar_one())
    engine.dispose()
    return count


def test_gdal_lists_the_collections(live: Live) -> None:
    out = live.gdal("ogrinfo", "-ro", "-q", f"OAPIF:{live.root}")
    listed = [
        line.split(":", 1)[1].split("(")[0].strip() for line in out.splitlines() if ":" in line
    ]
    assert listed == list(DB_COUNTS)


def test_gdal_copies_every_collection_in_full(live: Live, tmp_path: Path) -> None:
    for name, sql in DB_COUNTS.items():
        out = tmp_path / f"{name}.geojson"
        live.gdal(
            "ogr2ogr",
            "-f",
            "GeoJSON",
            str(out),
            f"OAPIF:{live.root}",
            name,
            "-oo",
            "PAGE_SIZE=100",
        )
        features = json.loads(out.read_text())["features"]
        expected = _db_count(live, sql)
        assert expected > 0, name
        assert len(features) == expected, name
    # The buildings came in three pages: all of them, each once.
    buildings = json.loads((tmp_path / "buildings.geojson").read_text())["features"]
    assert len({f["properties"]["source_id"] for f in buildings}) == BUILDINGS


def test_gdal_reads_the_crs_and_the_coordinates(live: Live) -> None:
    info = live.gdal("ogrinfo", "-ro", "-so", f"OAPIF:{live.root}", "cells")
    assert 'ID["EPSG",4326]' in info or "WGS 84" in info
    assert "Feature Count: 2" in info
    # Extent in lon/lat order (GDAL's data axis order for CRS84), as the database has it.
    engine = create_engine(live.url)
    with engine.connect() as conn:
        x0, y0 = conn.execute(
            text("SELECT ST_XMin(ST_Extent(geom)), ST_YMin(ST_Extent(geom)) FROM cell_version")
        ).one()
    engine.dispose()
    assert f"Extent: ({x0:.6f}, {y0:.6f})" in info


def test_gdal_sees_only_the_leaders_cell(live: Live, tmp_path: Path) -> None:
    out = tmp_path / "gz_cells.geojson"
    live.gdal("ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{live.root}", "cells", user="gz")
    features = json.loads(out.read_text())["features"]
    assert len(features) == 1
    households = tmp_path / "gz_households.geojson"
    live.gdal(
        "ogr2ogr",
        "-f",
        "GeoJSON",
        str(households),
        f"OAPIF:{live.root}",
        "households",
        "-oo",
        "PAGE_SIZE=50",
        user="gz",
    )
    west = _db_count(
        live,
        "SELECT count(*) FROM household h JOIN building b ON b.id = h.building_id "
        "JOIN cell c ON c.id = b.cell_id WHERE c.code = (SELECT min(code) FROM cell)",
    )
    assert 0 < len(json.loads(households.read_text())["features"]) == west < BUILDINGS


def test_owslib_lists_and_pages_collections(live: Live) -> None:
    features = pytest.importorskip("owslib.ogcapi.features")
    api = features.Features(live.root, headers={"Authorization": f"Bearer {live.tokens['boss']}"})
    ids = [c["id"] for c in api.collections()["collections"]]
    assert ids == list(DB_COUNTS)
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in api.conformance()["conformsTo"]
    )
    seen: list[object] = []
    page = api.collection_items("buildings", limit=100)
    seen += [f["id"] for f in page["features"]]
    while True:
        nxt = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        if nxt is None:
            break
        after = nxt.split("after=")[1].split("&")[0]
        page = api.collection_items("buildings", limit=100, after=after)
        seen += [f["id"] for f in page["features"]]
    assert page["numberMatched"] == BUILDINGS
    assert len(seen) == len(set(seen)) == BUILDINGS
    first = api.collection_items("cells")["features"][0]
    one = api.collection_item("cells", first["id"])
    assert one["id"] == first["id"] and one["geometry"] == first["geometry"]
    # Part 2: the same cell in CGCS2000, latitude first as EPSG:4490 defines its axes.
    cgcs = api.collection_items("cells", crs="http://www.opengis.net/def/crs/EPSG/0/4490")
    lon, lat = first["geometry"]["coordinates"][0][0][0]
    assert cgcs["features"][0]["geometry"]["coordinates"][0][0][0] == [lat, lon]
