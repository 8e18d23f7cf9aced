"""Imports of the real OSM extracts into PostGIS, datum handling, and refusal of bad files."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geodata.china import wgs84_to_gcj02
from geodata.errors import GeodataError
from geodata.readers import read_features
from gridsvc.errors import InvalidInput
from gridsvc.models import Building, Cell, Community
from gridsvc.repositories.bulk import to_db_geometry
from gridsvc.services.imports import create_cells, ensure_street, import_buildings
from gridsvc.settings import get_settings

GEOD = Geod(ellps="WGS84")


def _import(db: Session, path: Path, source: str, **kwargs: object):  # type: ignore[no-untyped-def]
    result = read_features(path, kind="polygon", **kwargs)  # type: ignore[arg-type]
    return import_buildings(db, result, source=source, geo=get_settings().geo)


def _count(db: Session, source: str) -> int:
    return db.scalar(select(func.count()).where(Building.source == source)) or 0


@pytest.mark.shared_data
def test_all_nanjing_buildings_imported_valid(db: Session, nanjing: Path) -> None:
    summary = _import(db, nanjing / "buildings.geojson", "nanjing")
    assert summary.inserted == 1277 and summary.rejected == []
    assert _count(db, "nanjing") == 1277
    invalid = db.scalar(
        select(func.count()).where(
            Building.source == "nanjing", ~func.ST_IsValid(Building.footprint)
        )
    )
    assert invalid == 0
    # Residential buildings got an estimate, marked as such; others have none.
    residential = db.execute(
        select(Building.kind, Building.households, Building.households_estimated).where(
            Building.source == "nanjing", Building.kind == "residential"
        )
    ).all()
    assert residential and all(h > 0 and est for _, h, est in residential)
    school = (
        db.execute(
            select(Building.households).where(
                Building.source == "nanjing", Building.kind == "school"
            )
        )
        .scalars()
        .all()
    )
    assert school and set(school) == {0}
    # Re-importing the same file updates, never duplicates.
    again = _import(db, nanjing / "buildings.geojson", "nanjing")
    assert again.inserted == 0 and again.updated == 1277
    assert _count(db, "nanjing") == 1277


@pytest.mark.shared_data
def test_all_beijing_buildings_imported(db: Session, beijing: Path) -> None:
    summary = _import(db, beijing / "buildings.geojson", "beijing")
    assert summary.inserted == 257
    named = db.scalar(
        select(func.count()).where(Building.source == "beijing", Building.name.is_not(None))
    )
    assert named == 49


@pytest.mark.shared_data
def test_osm_xml_matches_geojson(db: Session, nanjing: Path, beijing: Path) -> None:
    for folder, raw, expected in ((nanjing, "osm_bbox.osm.xml", 1277), (beijing, "map.osm", 257)):
        summary = _import(
            db, folder / "raw" / raw, f"osm-{folder.name}", osm_filter={"building": None}
        )
        assert summary.inserted == expected, folder.name
    ids = db.scalars(
        select(Building.source_id).where(Building.source == "osm-nanjing_xinjiekou").limit(5)
    ).all()
    assert all(i.startswith(("way/", "relation/")) for i in ids)


@pytest.mark.shared_data
def test_gcj02_input_lands_within_a_metre(db: Session, nanjing: Path, tmp_path: Path) -> None:
    truth = read_features(nanjing / "buildings.geojson", kind="polygon").gdf.iloc[:300]
    shifted = truth.copy()
    shifted["geometry"] = shapely.transform(
        truth.geometry.values, lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))
    )
    path = tmp_path / "gcj.geojson"
    shifted[["source_id", "building", "geometry"]].to_file(path, driver="GeoJSON")
    _import(db, path, "gcj", datum="gcj02")
    rows = db.execute(
        text(
            "SELECT source_id, ST_X(ST_Centroid(footprint)), ST_Y(ST_Centroid(footprint)) "
            "FROM building WHERE source = 'gcj'"
        )
    ).all()
    assert len(rows) == 300
    truth_c = dict(zip(truth["source_id"], shapely.centroid(truth.geometry.values), strict=True))
    errors = []
    for source_id, x, y in rows:
        c = truth_c[source_id]
        errors.append(GEOD.inv(c.x, c.y, x, y)[2])
    assert max(errors) < 1.0
    # Without the declared datum the same file lands hundreds of metres off.
    raw = read_features(path, kind="polygon")
    c0 = raw.gdf.geometry.iloc[0].centroid
    t0 = truth.geometry.iloc[0].centroid
    assert GEOD.inv(c0.x, c0.y, t0.x, t0.y)[2] > 100


def test_bad_files_refused_and_nothing_written(db: Session, tmp_path: Path) -> None:
    before = db.scalar(select(func.count()).select_from(Building))
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [ {"type": "Feat')
    with pytest.raises(GeodataError):
        read_features(broken, kind="polygon")
    dup = tmp_path / "dup.geojson"
    square = [[[118.9, 32.1], [118.901, 32.1], [118.901, 32.101], [118.9, 32.1]]]
    feature = {
        "type": "Feature",
        "properties": {"id": "same"},
        "geometry": {"type": "Polygon", "coordinates": square},
    }
    dup.write_text(json.dumps({"type": "FeatureCollection", "features": [feature, feature]}))
    with pytest.raises(InvalidInput, match="same id"), db.begin_nested():
        _import(db, dup, "dup")
    assert db.scalar(select(func.count()).select_from(Building)) == before


@pytest.mark.shared_data
def test_real_area_partition_puts_every_building_in_one_cell(db: Session, nanjing: Path) -> None:
    """A 4×4 grid over Nanjing 新街口: the SQL assignment matches an independent geopandas one."""
    buildings = read_features(nanjing / "buildings.geojson", kind="polygon").gdf
    minx, miny, maxx, maxy = buildings.total_bounds
    pad = 0.001
    area = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    street_id = ensure_street(db, street_code="320102777", street_name="新街口街道")
    community = Community(
        code="320102777001", name="新街口测试社区", street_id=street_id, geom=to_db_geometry(area)
    )
    db.add(community)
    db.flush()
    xs = np.linspace(area.bounds[0], area.bounds[2], 5)
    ys = np.linspace(area.bounds[1], area.bounds[3], 5)
    grid = gpd.GeoDataFrame(
        geometry=[
            shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(4) for j in range(4)
        ],
        crs=4326,
    )
    _import(db, nanjing / "buildings.geojson", "nanjing-grid")
    summary = create_cells(db, grid, community=None)
    assert len(summary.codes) == 16
    rows = db.execute(
        select(Building.source_id, Cell.code)
        .join(Cell, Cell.id == Building.cell_id)
        .where(Building.source == "nanjing-grid")
    ).all()
    assert len(rows) == 1277  # every building has exactly one cell
    # Independent check: largest overlap computed by geopandas in a metric CRS.
    cells = gpd.GeoDataFrame(
        {"code": summary.codes}, geometry=_cells_geometry(db, summary.codes), crs=4326
    ).to_crs(32650)
    b = buildings[["source_id", "geometry"]].to_crs(32650)
    pieces = gpd.overlay(b, cells, how="intersection", keep_geom_type=True)
    pieces["area"] = pieces.area
    expected = pieces.sort_values("area", ascending=False).drop_duplicates("source_id")
    expected_map = dict(zip(expected["source_id"], expected["code"], strict=True))
    got = dict(rows)
    mismatched = [k for k in got if got[k] != expected_map[k]]
    assert mismatched == []


def _cells_geometry(db: Session, codes: list[str]) -> list[object]:
    wkbs = db.execute(
        text(
            "SELECT c.code, ST_AsBinary(v.geom) FROM cell c JOIN cell_version v ON v.cell_id = c.id "
            "AND v.valid_to IS NULL WHERE c.code = ANY(:codes)"
        ),
        {"codes": codes},
    ).all()
    by_code = {code: shapely.from_wkb(bytes(w)) for code, w in wkbs}
    return [by_code[c] for c in codes]


@pytest.mark.shared_data
def test_beijing_estates_hold_their_buildings(db: Session, beijing: Path) -> None:
    """Each named 小区 of 学院路 (from OSM XML) holds the buildings geopandas finds inside it."""
    from gridsvc.services.imports import import_estates

    _import(db, beijing / "buildings.geojson", "bj-estates")
    estates = read_features(
        beijing / "raw" / "map.osm", kind="polygon", osm_filter={"landuse": "residential"}
    )
    summary = import_estates(db, estates, source="bj-osm")
    assert summary.inserted == 10
    named = db.execute(
        text(
            "SELECT e.name, count(b.id) FROM estate e JOIN building b ON b.estate_id = e.id "
            "WHERE e.source = 'bj-osm' AND e.name IS NOT NULL GROUP BY e.name"
        )
    ).all()
    assert len(named) == 9 and "富润家园" in dict(named)
    # Independent check: buildings whose representative point lies in each estate.
    b = gpd.read_file(beijing / "buildings.geojson")[["geometry"]]
    areas = gpd.read_file(beijing / "residential_areas.geojson")[["name", "geometry"]]
    points = b.set_geometry(b.representative_point())
    joined = gpd.sjoin(points, areas.rename(columns={"name": "estate"}), predicate="within")
    expected = joined.dropna(subset=["estate"]).groupby("estate").size().to_dict()
    assert dict(named) == expected


def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


MALFORMED_UPLOADS = {
    "truncated GeoJSON": (
        "b.geojson",
        b'{"type": "FeatureCollection", "features": [ {"type": "Feat',
    ),
    "GeoJSON of the wrong kind": ("b.geojson", b'{"type": "Topology", "objects": {}}'),
    "bad WKT in a CSV": ("b.csv", b"name,wkt\nA,POLYGON((118.9 32.1, 118.91\n"),
    "shapefile without .shx/.dbf": ("b.zip", _zip({"b.shp": b"\x00\x00\x27\x0a" + b"\x00" * 96})),
    "zip with no shapefile": ("b.zip", _zip({"readme.txt": b"hello"})),
    "XLSX garbage": ("b.xlsx", b"PK\x03\x04 this is not a workbook"),
    "truncated OSM XML": (
        "b.osm",
        b'<?xml version="1.0"?><osm version="0.6"><node id="1" lat="32.1" lon="118.9"/>'
        b'<way id="2"><nd ref="1"/><tag k="building" v="yes"',
    ),
}


@pytest.mark.parametrize("what", list(MALFORMED_UPLOADS))
def test_malformed_upload_refused_over_http_and_nothing_written(
    client, db: Session, small_street, what: str
) -> None:  # type: ignore[no-untyped-def]
    """POST /api/v1/imports/{kind} with commit=true: a 4xx problem naming the file; no row."""
    from gridsvc.models import Estate
    from gridsvc.services.users import create_user
    from tests.gridsvc.conftest import TEST_PASSWORD, token_for

    create_user(db, username="admin1", password=TEST_PASSWORD, role="admin")
    db.flush()
    headers = token_for(client, "admin1")
    name, content = MALFORMED_UPLOADS[what]

    def counts() -> tuple[int, int]:
        return (
            db.scalar(select(func.count()).select_from(Building)) or 0,
            db.scalar(select(func.count()).select_from(Estate)) or 0,
        )

    before = counts()
    for kind in ("buildings", "estates"):
        r = client.post(
            f"/api/v1/imports/{kind}",
            files={"file": (name, content)},
            data={"commit": "true"},
            headers=headers,
        )
        assert 400 <= r.status_code < 500, (kind, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"]
    assert counts() == before
