# ruff: noqa: F811  (fixtures imported from other test modules are redefined as arguments)
"""Exports opened and checked: PNG decoded, PDF rendered with pdftoppm, XLSX and GeoPackage
read back, shapefile and KML parsed; scope and personal-data rules hold for every format."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsvc.models import Building, Cell
from maps.assets import external_assets
from tests.gridsvc.conftest import SmallStreet, token_for
from tests.gridsvc.test_api import users  # noqa: F401  (fixture)
from tests.gridsvc.test_redraw import COMMUNITY, RealCommunity, nanjing_cells  # noqa: F401

URL = "/api/v1/exports"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _get(client: TestClient, path: str, headers: dict[str, str], **params: str) -> bytes:
    response = client.get(path, headers=headers, params=params)
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    return response.content


def _distinct_colours(png: bytes) -> tuple[tuple[int, int], int]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    pixels = np.asarray(image).reshape(-1, 3)
    return image.size, len(np.unique(pixels, axis=0))


@pytest.mark.shared_data
def test_geopackage_of_a_real_community_reads_back(
    client: TestClient, db: Session, nanjing_cells: RealCommunity, tmp_path: Path
) -> None:
    content = _get(client, f"{URL}/community/{COMMUNITY}", nanjing_cells.headers, format="gpkg")
    path = tmp_path / "export.gpkg"
    path.write_bytes(content)
    layers = {name for name, _ in pyogrio.list_layers(path)}
    assert layers == {"cells", "buildings", "incidents", "households"}
    cells = pyogrio.read_dataframe(path, layer="cells")
    assert sorted(cells["code"]) == nanjing_cells.codes
    assert cells.crs.to_epsg() == 4326
    buildings = pyogrio.read_dataframe(path, layer="buildings")
    community_buildings = db.scalar(
        select(func.count())
        .select_from(Building)
        .join(Cell, Cell.id == Building.cell_id)
        .where(Cell.code.in_(nanjing_cells.codes))
    )
    assert len(buildings) == community_buildings > 1000
    # Households per cell in the export add up to the buildings' households.
    assert (
        cells["households"].sum()
        == buildings.loc[buildings["cell_code"].notna(), "households"].sum()
    )
    assert (
        "OpenStreetMap contributors"
        in _get(
            client, f"{URL}/community/{COMMUNITY}", nanjing_cells.headers, format="html"
        ).decode()
    )


@pytest.mark.shared_data
def test_coverage_map_png_and_pdf(
    client: TestClient, nanjing_cells: RealCommunity, tmp_path: Path
) -> None:
    png = _get(client, f"{URL}/community/{COMMUNITY}", nanjing_cells.headers, format="png")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "coverage-map-a4.png").write_bytes(png)
    size, colours = _distinct_colours(png)
    # A4 landscape at the export resolution: wider than tall, in the A4 ratio, not blank.
    assert size[0] > size[1] and abs(size[0] / size[1] - 297 / 210) < 0.01
    assert colours > 50

    pdf = tmp_path / "map.pdf"
    pdf.write_bytes(
        _get(
            client,
            f"{URL}/community/{COMMUNITY}",
            nanjing_cells.headers,
            format="pdf",
            paper="A3",
            orientation="portrait",
            metric="open_incidents",
        )
    )
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    assert fields["Pages"].strip() == "1"
    width, height = (float(v) for v in fields["Page size"].split("pts")[0].split(" x "))
    assert (round(width), round(height)) == (842, 1191)  # A3 portrait, in points
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True)
    assert (
        "Noto" in fonts.stdout and "CJK" in fonts.stdout
    )  # Chinese text with an embedded CJK font
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True)
    _, rendered_colours = _distinct_colours((tmp_path / "page-1.png").read_bytes())
    assert rendered_colours > 20


@pytest.mark.shared_data
@pytest.mark.parametrize("kind", ["area", "buildings"])
def test_three_maps_render(client: TestClient, nanjing_cells: RealCommunity, kind: str) -> None:
    png = _get(
        client, f"{URL}/community/{COMMUNITY}", nanjing_cells.headers, format="png", map=kind
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"three-maps-{kind}.png").write_bytes(png)
    _, colours = _distinct_colours(png)
    assert colours > 20


@pytest.mark.shared_data
def test_xlsx_tables_read_back(client: TestClient, nanjing_cells: RealCommunity) -> None:
    content = _get(client, f"{URL}/community/{COMMUNITY}", nanjing_cells.headers, format="xlsx")
    book = load_workbook(io.BytesIO(content), read_only=True)
    assert book.sheetnames == ["网格覆盖", "事件"]
    rows = list(book["网格覆盖"].values)
    header = rows[0]
    assert header[:6] == ("层级", "社区编码", "社区", "网格编码", "网格", "截至日期")
    # Every figure names its denominator in its header.
    assert any(h.startswith("近期走访覆盖率(分母:登记户数)") for h in header)
    cell_rows = [dict(zip(header, r, strict=True)) for r in rows[1:] if r[0] == "网格"]
    assert sorted(r["网格编码"] for r in cell_rows) == nanjing_cells.codes
    cells = client.get(
        f"/api/v1/communities/{COMMUNITY}/cells", headers=nanjing_cells.headers
    ).json()["features"]
    by_code = {f["properties"]["code"]: f["properties"]["households"] for f in cells}
    assert {r["网格编码"]: r["估算户数"] for r in cell_rows} == by_code
    community_row = next(dict(zip(header, r, strict=True)) for r in rows[1:] if r[0] == "社区")
    assert community_row["估算户数"] == sum(by_code.values())
    incident_rows = list(book["事件"].values)
    assert incident_rows[0][:4] == ("编号", "网格编码", "类别", "状态")


def test_vector_formats_and_personal_data_rules(
    client: TestClient,
    users: SmallStreet,
    tmp_path: Path,
) -> None:
    street = token_for(client, "street1")
    viewer = token_for(client, "viewer1")
    leader = token_for(client, "leader1")
    community = users.community_code

    shp = zipfile.ZipFile(
        io.BytesIO(
            _get(
                client,
                f"{URL}/community/{community}",
                street,
                format="shp",
                layers="cells,buildings",
            )
        )
    )
    names = set(shp.namelist())
    assert {
        "cells.shp",
        "cells.dbf",
        "cells.shx",
        "cells.prj",
        "cells.cpg",
        "buildings.shp",
    } <= names
    shp.extractall(tmp_path)
    assert len(pyogrio.read_dataframe(tmp_path / "cells.shp")) == 4

    kml = _get(client, f"{URL}/community/{community}", street, format="kml", layers="cells")
    assert kml.startswith(b"<?xml") and kml.count(b"<Placemark") == 4
    geojson = client.get(
        f"{URL}/community/{community}",
        headers=street,
        params={"format": "geojson", "layers": "buildings"},
    )
    assert geojson.headers["content-type"].startswith("application/geo+json")
    assert len(geojson.json()["features"]) == 4

    # A viewer's export has no households; asking for them is refused.
    path = tmp_path / "viewer.gpkg"
    path.write_bytes(_get(client, f"{URL}/street/{users.street_code}", viewer, format="gpkg"))
    assert "households" not in {name for name, _ in pyogrio.list_layers(path)}
    refused = client.get(
        f"{URL}/community/{community}",
        headers=viewer,
        params={"format": "gpkg", "layers": "households"},
    )
    assert refused.status_code == 403 and "personal data" in refused.json()["detail"]

    # A 格长 exports their own cell, not the neighbour's.
    own = client.get(
        f"{URL}/cell/{users.cell_codes[0]}",
        headers=leader,
        params={"format": "geojson", "layers": "cells"},
    )
    assert (
        own.status_code == 200
        and own.json()["features"][0]["properties"]["code"] == users.cell_codes[0]
    )
    other = client.get(
        f"{URL}/cell/{users.cell_codes[1]}", headers=leader, params={"format": "png"}
    )
    assert other.status_code == 403

    # Bad requests are clear 4xx problems.
    assert (
        client.get(f"{URL}/community/nope", headers=street, params={"format": "png"}).status_code
        == 404
    )
    bad = client.get(f"{URL}/community/{community}", headers=street, params={"format": "docx"})
    assert bad.status_code == 422
    bad_layer = client.get(
        f"{URL}/community/{community}", headers=street, params={"format": "gpkg", "layers": "trees"}
    )
    assert bad_layer.status_code == 422 and "trees" in bad_layer.json()["detail"]


def test_responsibility_chart_export(
    client: TestClient, users: SmallStreet, tmp_path: Path
) -> None:
    """The third of the 三图: drawn as PNG and PDF for a community."""
    street = token_for(client, "street1")
    path = f"{URL}/community/{users.community_code}"
    png = _get(client, path, street, format="png", map="responsibility")
    assert _distinct_colours(png)[1] > 10
    pdf = tmp_path / "chart.pdf"
    pdf.write_bytes(_get(client, path, street, format="pdf", map="responsibility"))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    assert "责任网络图" in text.stdout and "测试社区" in text.stdout


def test_self_contained_html_has_no_internet_assets(
    client: TestClient,
    users: SmallStreet,
) -> None:
    street = token_for(client, "street1")
    html = _get(client, f"{URL}/cell/{users.cell_codes[0]}", street, format="html").decode()
    assert external_assets(html) == []
    assert "<script src=" not in html  # everything is inline: it opens from a file
    assert users.cell_codes[0] in html
