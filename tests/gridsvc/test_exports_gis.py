# ruff: noqa: F811  (fixtures imported from other test modules are redefined as arguments)
"""GIS exports for other systems, opened by the tools those systems use: the GeoPackage by
Debian's GDAL 3.6 ogrinfo (no warnings, real DateTime fields, version 1.2, Chinese aliases),
shapefile field names from the documented table, and the ``crs`` option."""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient

from geodata.china import wgs84_to_gcj02
from gridsvc.services.exports import SHAPEFILE_FIELDS
from tests.gridsvc.conftest import SmallStreet, token_for
from tests.gridsvc.test_api import users  # noqa: F401  (fixture)

URL = "/api/v1/exports"
needs_ogrinfo = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="needs gdal-bin")


def _export(client: TestClient, users: SmallStreet, tmp_path: Path, name: str, **params: str):  # type: ignore[no-untyped-def]
    headers = token_for(client, "street1")
    response = client.get(f"{URL}/community/{users.community_code}", headers=headers, params=params)
    assert response.status_code == 200, response.text
    path = tmp_path / name
    path.write_bytes(response.content)
    return path, response


def _ogrinfo(*args: str) -> str:
    # No timeout: its polling sleep fails under the faked clock of the second pass (faketime).
    done = subprocess.run(["ogrinfo", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # GDAL 3.6 warns about 1.4 files and odd datetimes
    return done.stdout


@needs_ogrinfo
def test_geopackage_opens_cleanly_in_gdal_3_6_with_aliases_and_datetimes(
    client: TestClient, users: SmallStreet, tmp_path: Path
) -> None:
    reported = client.post(
        "/api/v1/incidents",
        json={"lon": 118.901, "lat": 32.101, "category": "sanitation"},
        headers=token_for(client, "street1"),
    )
    assert reported.status_code == 201, reported.text
    path, _ = _export(client, users, tmp_path, "layers.gpkg", format="gpkg")
    out = _ogrinfo("-so", "-al", str(path))
    assert "reported_at: DateTime" in out and "valid_from: DateTime" in out
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200
        aliases = dict(
            db.execute(
                "SELECT table_name || '.' || column_name, name FROM gpkg_data_columns"
            ).fetchall()
        )
        schema = db.execute(
            "SELECT count(*) FROM gpkg_extensions WHERE extension_name = 'gpkg_schema'"
        ).fetchone()[0]
    assert aliases["cells.leader"] == "格长" and aliases["incidents.reported_at"] == "上报时间"
    assert aliases["buildings.low_income"] == "低保"
    assert schema == 2
    incidents = pyogrio.read_dataframe(path, layer="incidents")
    assert str(incidents["reported_at"].dtype).startswith("datetime64")


@needs_ogrinfo
def test_crs_option_projects_marks_and_refuses(
    client: TestClient, users: SmallStreet, tmp_path: Path
) -> None:
    wgs, _ = _export(client, users, tmp_path, "wgs.gpkg", format="gpkg", layers="cells")
    merc, _ = _export(
        client, users, tmp_path, "merc.gpkg", format="gpkg", layers="cells", crs="EPSG:3857"
    )
    cgcs, _ = _export(
        client, users, tmp_path, "cgcs.gpkg", format="gpkg", layers="cells", crs="EPSG:4490"
    )
    gcj, response = _export(
        client, users, tmp_path, "gcj.gpkg", format="gpkg", layers="cells", crs="GCJ-02"
    )
    assert "gcj02" in response.headers["content-disposition"]
    assert 'ID["EPSG",3857]' in _ogrinfo("-so", str(merc), "cells")
    assert 'ID["EPSG",4490]' in _ogrinfo("-so", str(cgcs), "cells")
    marked = _ogrinfo("-so", str(gcj), "cells")
    assert "GCJ-02" in marked and 'ID["EPSG",4326]' not in marked
    base = pyogrio.read_dataframe(wgs, layer="cells")
    x, y = shapely.get_coordinates(base.geometry.iloc[0])[0]
    shifted = pyogrio.read_dataframe(gcj, layer="cells").geometry.iloc[0]
    sx, sy = shapely.get_coordinates(shifted)[0]
    assert (sx, sy) == pytest.approx(wgs84_to_gcj02(x, y), abs=1e-9)
    assert abs(sx - x) > 1e-3  # hundreds of metres, not a rounding
    same = pyogrio.read_dataframe(cgcs, layer="cells").geometry.iloc[0]
    assert same.equals_exact(base.geometry.iloc[0], 1e-12)
    projected = pyogrio.read_dataframe(merc, layer="cells").total_bounds
    assert projected[0] > 1.3e7
    headers = token_for(client, "street1")
    refused = client.get(
        f"{URL}/community/{users.community_code}",
        headers=headers,
        params={"format": "geojson", "crs": "EPSG:3857"},
    )
    assert refused.status_code == 422
    unknown = client.get(
        f"{URL}/community/{users.community_code}",
        headers=headers,
        params={"format": "gpkg", "crs": "EPSG:2000"},
    )
    assert unknown.status_code == 422


def test_shapefile_field_names_come_from_the_table(
    client: TestClient, users: SmallStreet, tmp_path: Path
) -> None:
    path, _ = _export(client, users, tmp_path, "layers.zip", format="shp")
    archive = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    archive.extractall(tmp_path)
    expected = {
        "cells": {"comm_code", "comm_name", "open_inc", "vol_per100", "bldg_nocap", "overdue"},
        "buildings": {"hh_estim", "open_inc", "elderly", "ext_pov", "low_income"},
    }
    for layer, names in expected.items():
        fields = set(pyogrio.read_info(tmp_path / f"{layer}.shp")["fields"])
        assert names <= fields, fields
        assert all(len(f.encode()) <= 10 for f in fields)
        # Nothing was cut: every field is a column name or one of the table's short names.
        assert not {f for f in fields if "_1" in f or f.endswith("_")}, fields
    assert all(len(v) <= 10 for v in SHAPEFILE_FIELDS.values())
