"""Routing on real data: Nanjing 新街口 buildings and roads, a proposed partition (自动划格) with
one cell left out; random points checked independently with shapely in a metric CRS."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geodata.readers import read_features
from gridsvc.models import Cell, Community
from gridsvc.repositories.areas import get_community
from gridsvc.repositories.bulk import to_db_geometry
from gridsvc.services.clock import FixedClock, get_clock
from gridsvc.services.imports import create_cells, ensure_street, import_buildings, import_roads
from gridsvc.services.incidents import route_point
from gridsvc.services.proposals import propose_for_community
from gridsvc.services.users import create_user
from gridsvc.settings import get_settings
from tests.gridsvc.conftest import TEST_PASSWORD, token_for

pytestmark = pytest.mark.shared_data

COMMUNITY = "320102777001"
AT = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
_UTM = pyproj.Transformer.from_crs(4326, 32650, always_xy=True)


def _utm(g: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(g, lambda x, y: _UTM.transform(x, y), interleaved=False)


def test_random_points_route_as_shapely_says(
    db: Session, client: TestClient, nanjing: Path
) -> None:
    extent = gpd.read_file(nanjing / "extent.geojson").geometry.iloc[0]
    street_id = ensure_street(db, street_code="320102777", street_name="新街口街道")
    db.add(
        Community(
            code=COMMUNITY, name="新街口社区", street_id=street_id, geom=to_db_geometry(extent)
        )
    )
    db.flush()
    geo = get_settings().geo
    import_buildings(
        db, read_features(nanjing / "buildings.geojson", kind="polygon"), source="nj", geo=geo
    )
    import_roads(db, read_features(nanjing / "roads.geojson", kind="line"), source="nj")
    proposal = propose_for_community(db, get_community(db, COMMUNITY), target=300, band=(200, 500))
    cells = gpd.GeoDataFrame.from_features(proposal["features"], crs=4326)
    assert len(cells) >= 4
    # One cell is left out: its area lies in the community but in no cell.
    left_out = cells.geometry.iloc[len(cells) // 2]
    kept = cells.drop(index=cells.index[len(cells) // 2]).reset_index(drop=True)
    codes = create_cells(
        db, gpd.GeoDataFrame(geometry=kept.geometry.values, crs=4326), community=None
    ).codes
    db.execute(
        text(
            "UPDATE cell_version SET valid_from = '2025-01-01' WHERE cell_id IN (SELECT id FROM cell WHERE code = ANY(:c))"
        ),
        {"c": codes},
    )
    # The stored polygons (after any repair) are the truth shapely checks against.
    stored = {
        code: shapely.from_wkb(bytes(wkb))
        for code, wkb in db.execute(
            text(
                "SELECT c.code, ST_AsBinary(cv.geom) FROM cell c JOIN cell_version cv "
                "ON cv.cell_id = c.id AND cv.valid_to IS NULL WHERE c.code = ANY(:c)"
            ),
            {"c": codes},
        ).all()
    }
    id_of = dict(db.execute(select(Cell.code, Cell.id).where(Cell.code.in_(codes))).all())
    code_of = {v: k for k, v in id_of.items()}
    metric = {code: _utm(g) for code, g in stored.items()}
    tree_codes = list(stored)
    tree = shapely.STRtree([stored[c] for c in tree_codes])

    rng = np.random.default_rng(6)
    minx, miny, maxx, maxy = extent.bounds
    points = []
    while len(points) < 300:
        p = shapely.Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if extent.contains(p):
            points.append(p)
    # Add points close to boundaries: a few metres either side of shared edges.
    for code in tree_codes[:4]:
        ring = stored[code].boundary
        for f in rng.uniform(0, 1, 10):
            points.append(ring.interpolate(f, normalized=True))
    inside_checked = flagged = community_queue = 0
    for p in points:
        route = route_point(db, p.x, p.y, AT)
        holders = [tree_codes[i] for i in tree.query(p, predicate="intersects")]
        mp = _utm(p)
        if not holders:
            assert route.queue == "community" and route.cell_id is None, p
            community_queue += 1
            continue
        assert route.queue == "cell"
        if len(holders) == 1:
            assert code_of[route.cell_id] == holders[0], p
        else:  # exactly on a shared edge: either holder is right
            assert code_of[route.cell_id] in holders
        edge_m = metric[code_of[route.cell_id]].boundary.distance(mp)
        # UTM zone 50 scales distances here by ~0.1 % against the spheroid (geography).
        assert route.boundary_distance_m == pytest.approx(edge_m, rel=3e-3, abs=0.5)
        # Flagged only when another cell lies within 20 m too (a choice to make).
        other_m = min(g.distance(mp) for c, g in metric.items() if c != code_of[route.cell_id])
        if abs(edge_m - 20) > 0.5 and abs(other_m - 20) > 0.5:
            assert route.needs_confirmation == (edge_m < 20 and other_m < 20), (p, edge_m)
        if route.needs_confirmation and route.suggested_cell_id is not None:
            # The neighbour offered really is within 20 m.
            assert metric[code_of[route.suggested_cell_id]].distance(mp) < 20.5
        flagged += route.needs_confirmation
        inside_checked += 1
    assert inside_checked > 200 and flagged >= 40 and community_queue > 0
    # Points in the left-out cell's area: all to the community queue.
    lx0, ly0, lx1, ly1 = left_out.bounds
    hits = 0
    for _ in range(200):
        p = shapely.Point(rng.uniform(lx0, lx1), rng.uniform(ly0, ly1))
        if left_out.contains(p) and not any(g.intersects(p) for g in stored.values()):
            assert route_point(db, p.x, p.y, AT).queue == "community"
            hits += 1
    assert hits > 10
    # Points just outside the community: the street queue, never lost.
    ring = _utm(extent).exterior
    back = pyproj.Transformer.from_crs(32650, 4326, always_xy=True)
    for f in np.linspace(0, 1, 12, endpoint=False):
        q = ring.interpolate(f, normalized=True)
        centre = _utm(extent).centroid
        dx, dy = q.x - centre.x, q.y - centre.y
        scale = 1 + 150 / np.hypot(dx, dy)
        lon, lat = back.transform(centre.x + dx * scale, centre.y + dy * scale)
        if extent.contains(shapely.Point(lon, lat)):
            continue
        assert route_point(db, lon, lat, AT).queue == "street"
    # And through the API, once, with the 格长 of the receiving cell assigned.
    clock = FixedClock(AT)
    client.app.dependency_overrides[get_clock] = lambda: clock  # type: ignore[attr-defined]
    create_user(db, username="nj-admin", password=TEST_PASSWORD, role="admin")
    db.flush()
    centre = stored[codes[0]].representative_point()
    r = client.post(
        "/api/v1/incidents",
        json={"lon": centre.x, "lat": centre.y, "category": "safety"},
        headers=token_for(client, "nj-admin"),
    )
    assert r.status_code == 201 and r.json()["cell_code"] == codes[0]
