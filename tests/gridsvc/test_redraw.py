"""Redraws on real data (Nanjing 新街口) through the API: preview, commit, history, conflicts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geodata.readers import read_features
from gridsvc.models import Building, Cell, CellChange, Community, Incident, Person, RoleAssignment
from gridsvc.repositories.bulk import to_db_geometry
from gridsvc.services.imports import create_cells, ensure_street, import_buildings
from gridsvc.services.users import ScopeSpec, create_user
from gridsvc.settings import get_settings
from tests.gridsvc.conftest import TEST_PASSWORD, token_for

pytestmark = pytest.mark.shared_data

COMMUNITY = "320102888001"


@dataclass
class RealCommunity:
    """Nanjing's core box as one community, cut into a 3 × 2 grid of cells."""

    area: shapely.Polygon
    codes: list[str]
    headers: dict[str, str]


@pytest.fixture
def nanjing_cells(db: Session, client: TestClient, nanjing: Path) -> RealCommunity:
    extent = gpd.read_file(nanjing / "extent.geojson").geometry.iloc[0]
    street_id = ensure_street(db, street_code="320102888", street_name="新街口街道")
    db.add(
        Community(
            code=COMMUNITY, name="新街口社区", street_id=street_id, geom=to_db_geometry(extent)
        )
    )
    db.flush()
    result = read_features(nanjing / "buildings.geojson", kind="polygon")
    import_buildings(db, result, source="nj", geo=get_settings().geo)
    minx, miny, maxx, maxy = extent.bounds
    xs, ys = np.linspace(minx, maxx, 4), np.linspace(miny, maxy, 3)
    grid = [
        shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]).intersection(extent)
        for i in range(3)
        for j in range(2)
    ]
    summary = create_cells(db, gpd.GeoDataFrame(geometry=grid, crs=4326), community=None)
    # The partition has been in force since 2025: incidents of 2025 belong to these versions.
    db.execute(
        text(
            "UPDATE cell_version SET valid_from = '2025-01-01' WHERE cell_id IN "
            "(SELECT id FROM cell WHERE code = ANY(:c))"
        ),
        {"c": summary.codes},
    )
    create_user(
        db,
        username="jd",
        password=TEST_PASSWORD,
        role="street_staff",
        scope=ScopeSpec("street", "320102888"),
    )
    db.flush()
    return RealCommunity(extent, sorted(summary.codes), token_for(client, "jd"))


def _cell_geom(client: TestClient, rc: RealCommunity, code: str) -> shapely.Geometry:
    feature = client.get(f"/api/v1/cells/{code}", headers=rc.headers).json()
    return shapely.geometry.shape(feature["geometry"])


def _preview(client: TestClient, rc: RealCommunity, body: dict) -> dict:
    r = client.post(
        f"/api/v1/communities/{COMMUNITY}/redraw/preview", json=body, headers=rc.headers
    )
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == r.json()["etag"]
    return r.json()


def _commit(client: TestClient, rc: RealCommunity, body: dict, etag: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/communities/{COMMUNITY}/redraw/commit",
        json=body,
        headers={**rc.headers, "If-Match": etag},
    )


def _buildings_per_cell(db: Session) -> dict[str, int]:
    return dict(
        db.execute(
            text(
                "SELECT c.code, count(*) FROM building b JOIN cell c ON c.id = b.cell_id "
                "WHERE b.source = 'nj' GROUP BY c.code"
            )
        ).all()
    )


def test_validation_of_a_clean_grid(client: TestClient, nanjing_cells: RealCommunity) -> None:
    r = client.get(f"/api/v1/communities/{COMMUNITY}/validation", headers=nanjing_cells.headers)
    assert r.status_code == 200
    counts = r.json()["counts"]
    assert counts.get("gap", 0) == 0 and counts.get("overlap", 0) == 0
    assert counts.get("no_leader") == 6  # nobody has been named 格长 yet
    geo = client.get(
        f"/api/v1/communities/{COMMUNITY}/validation?format=geojson", headers=nanjing_cells.headers
    ).json()
    assert geo["type"] == "FeatureCollection"


def test_split_by_line_preview_then_commit(
    client: TestClient, db: Session, nanjing_cells: RealCommunity
) -> None:
    rc = nanjing_cells
    code = rc.codes[0]
    geom = _cell_geom(client, rc, code)
    minx, miny, maxx, maxy = geom.bounds
    mid = (minx + maxx) / 2
    line = {"type": "LineString", "coordinates": [[mid, miny - 0.001], [mid, maxy + 0.001]]}
    body = {"op": "split", "cell": code, "line": line, "reason": "人口增长，拆分网格"}
    before_changes = db.scalar(select(func.count()).select_from(CellChange))
    before = _buildings_per_cell(db)
    preview = _preview(client, rc, body)
    impact = preview["impact"]
    assert impact["cells_retired"] == [code] and len(impact["cells_created"]) == 2
    assert len(impact["moved"]["buildings"]) == before[code]
    assert impact["validation"]["counts"].get("gap", 0) == 0
    # A preview writes nothing.
    assert _buildings_per_cell(db) == before
    assert db.scalar(select(func.count()).select_from(CellChange)) == before_changes
    r = _commit(client, rc, body, preview["etag"])
    assert r.status_code == 200, r.text
    assert r.json()["impact"]["cells_created"] == impact["cells_created"]
    after = _buildings_per_cell(db)
    assert code not in after
    assert sum(after[c] for c in impact["cells_created"]) == before[code]
    history = client.get(
        f"/api/v1/cells/{impact['cells_created'][0]}/versions", headers=rc.headers
    ).json()
    assert history["parents"] == [code]
    retired = client.get(f"/api/v1/cells/{code}/versions", headers=rc.headers).json()
    assert retired["versions"][-1]["valid_to"] is not None
    assert set(retired["children"]) == set(impact["cells_created"])
    log = client.get(f"/api/v1/communities/{COMMUNITY}/changes", headers=rc.headers).json()
    assert log["items"][0]["kind"] == "split" and log["items"][0]["reason"] == "人口增长，拆分网格"
    assert log["items"][0]["changed_by"] == "jd"


def test_stale_etag_gets_409_and_nothing_changes(
    client: TestClient, db: Session, nanjing_cells: RealCommunity
) -> None:
    rc = nanjing_cells
    body_a = {"op": "merge", "cells": rc.codes[0:2], "reason": "合并"}
    body_b = {"op": "merge", "cells": rc.codes[3:5], "reason": "另一项合并"}
    etag_a = _preview(client, rc, body_a)["etag"]
    etag_b = _preview(client, rc, body_b)["etag"]
    assert etag_a == etag_b
    assert _commit(client, rc, body_a, etag_a).status_code == 200
    state = _buildings_per_cell(db)
    late = _commit(client, rc, body_b, etag_b)
    assert late.status_code == 409 and "preview again" in late.json()["detail"]
    assert _buildings_per_cell(db) == state
    missing = client.post(
        f"/api/v1/communities/{COMMUNITY}/redraw/commit", json=body_b, headers=rc.headers
    )
    assert missing.status_code == 428


def test_merge_moves_the_leader_by_the_stated_rule(
    client: TestClient, db: Session, nanjing_cells: RealCommunity
) -> None:
    rc = nanjing_cells
    a, b = rc.codes[0], rc.codes[1]
    people = []
    for code, name in ((a, "王格长"), (b, "李格长")):
        person = Person(name=name)
        db.add(person)
        db.flush()
        cell_id = db.scalar(select(Cell.id).where(Cell.code == code))
        db.add(RoleAssignment(person_id=person.id, role="leader", cell_id=cell_id))
        people.append(person)
    db.flush()
    body = {"op": "merge", "cells": [a, b], "reason": "两格合并"}
    impact = _preview(client, rc, body)["impact"]
    merged = impact["cells_created"][0]
    moves = {m["person"]: m for m in impact["people"]}
    assert {m["action"] for m in moves.values()} == {"moved", "ended"}
    assert [m["to"] for m in moves.values() if m["action"] == "moved"] == [merged]
    assert merged not in impact["cells_without_leader"]
    r = _commit(client, rc, body, _preview(client, rc, body)["etag"])
    assert r.status_code == 200
    leaders = db.execute(
        text(
            "SELECT count(*) FROM role_assignment r JOIN cell c ON c.id = r.cell_id "
            "WHERE c.code = :m AND r.role = 'leader' AND r.ends_on IS NULL"
        ),
        {"m": merged},
    ).scalar()
    assert leaders == 1


def test_move_buildings_and_revert(
    client: TestClient, db: Session, nanjing_cells: RealCommunity
) -> None:
    rc = nanjing_cells
    source, target = rc.codes[0], rc.codes[1]  # neighbours in the north row of the grid
    target_geom = _cell_geom(client, rc, target)
    ids = (
        db.execute(
            text(
                "SELECT b.id FROM building b JOIN cell c ON c.id = b.cell_id WHERE c.code = :s "
                "ORDER BY ST_Distance(b.footprint, ST_GeomFromText(:t, 4326)) LIMIT 3"
            ),
            {"s": source, "t": target_geom.wkt},
        )
        .scalars()
        .all()
    )
    body = {"op": "move_buildings", "buildings": list(ids), "to_cell": target, "reason": "楼栋调整"}
    preview = _preview(client, rc, body)
    moved = {b["id"]: b for b in preview["impact"]["moved"]["buildings"]}
    assert set(ids) <= set(moved) and all(moved[i]["to"] == target for i in ids)
    assert _commit(client, rc, body, preview["etag"]).status_code == 200
    got = (
        db.execute(
            text(
                "SELECT c.code FROM building b JOIN cell c ON c.id = b.cell_id "
                "WHERE b.id = ANY(:ids)"
            ),
            {"ids": list(ids)},
        )
        .scalars()
        .all()
    )
    assert set(got) == {target}
    # Both cells got a version 2; reverting the source to version 1 restores its buildings.
    diff = client.get(f"/api/v1/cells/{target}/diff?from=1&to=2", headers=rc.headers).json()
    assert diff["gained_m2"] > 0 and {b["id"] for b in diff["buildings_gained"]} >= set(ids)
    body = {
        "op": "revert",
        "cell": source,
        "version": 1,
        "trim_neighbours": True,
        "reason": "恢复原边界",
    }
    preview = _preview(client, rc, body)
    assert _commit(client, rc, body, preview["etag"]).status_code == 200
    got = (
        db.execute(
            text(
                "SELECT c.code FROM building b JOIN cell c ON c.id = b.cell_id "
                "WHERE b.id = ANY(:ids)"
            ),
            {"ids": list(ids)},
        )
        .scalars()
        .all()
    )
    assert set(got) == {source}
    versions = client.get(f"/api/v1/cells/{source}/versions", headers=rc.headers).json()
    assert [v["version"] for v in versions["versions"]] == [1, 2, 3]


def test_reshape_trims_neighbours_or_refuses(
    client: TestClient, db: Session, nanjing_cells: RealCommunity
) -> None:
    rc = nanjing_cells
    code = rc.codes[0]
    bigger = _cell_geom(client, rc, code).buffer(0.0005)
    geometry = shapely.geometry.mapping(bigger)
    refused = client.post(
        f"/api/v1/communities/{COMMUNITY}/redraw/preview",
        headers=rc.headers,
        json={
            "op": "reshape",
            "cell": code,
            "geometry": geometry,
            "trim_neighbours": False,
            "reason": "扩大",
        },
    )
    assert refused.status_code == 422 and "overlaps cell" in refused.json()["detail"]
    body = {"op": "reshape", "cell": code, "geometry": geometry, "reason": "扩大"}
    preview = _preview(client, rc, body)
    assert preview["impact"]["notes"] and "trimmed" in preview["impact"]["notes"][0]
    counts = preview["impact"]["validation"]["counts"]
    assert counts.get("overlap", 0) == 0 and counts.get("gap", 0) == 0
    assert _commit(client, rc, body, preview["etag"]).status_code == 200


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [118.78, 32.04],
                        [118.79, 32.05],
                        [118.79, 32.04],
                        [118.78, 32.05],
                        [118.78, 32.04],
                    ]
                ],
            },
            "invalid",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [
                    [[500000, 3550000], [500100, 3550000], [500100, 3550100], [500000, 3550000]]
                ],
            },
            "longitude/latitude",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[120.0, 30.0], [120.1, 30.0], [120.1, 30.1], [120.0, 30.0]]],
            },
            "outside the community",
        ),
        ({"type": "Polygon", "coordinates": []}, "empty"),
        ({"type": "Polygon", "coordinates": "nonsense"}, "unreadable"),
    ],
)
def test_bad_geometry_is_422_and_nothing_written(
    client: TestClient, db: Session, nanjing_cells: RealCommunity, geometry: dict, message: str
) -> None:
    before = db.scalar(select(func.count()).select_from(CellChange))
    r = client.post(
        f"/api/v1/communities/{COMMUNITY}/redraw/preview",
        headers=nanjing_cells.headers,
        json={"op": "reshape", "cell": nanjing_cells.codes[0], "geometry": geometry, "reason": "x"},
    )
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert db.scalar(select(func.count()).select_from(CellChange)) == before


def test_incident_history_survives_a_redraw(
    client: TestClient, db: Session, nanjing_cells: RealCommunity
) -> None:
    """Last year's incident count per cell (by the version valid then) is unchanged by a split."""
    rc = nanjing_cells
    code = rc.codes[2]
    c = _cell_geom(client, rc, code).representative_point()
    db.add(
        Incident(
            location=f"SRID=4326;POINT({c.x} {c.y})",
            category="sanitation",
            status="closed",
            reported_at="2025-06-01T10:00:00+08:00",
            closed_at="2025-06-02T10:00:00+08:00",
        )
    )
    db.add(
        Incident(
            location=f"SRID=4326;POINT({c.x} {c.y})",
            category="dispute",
            status="filed",
            reported_at="2025-07-01T10:00:00+08:00",
        )
    )
    db.flush()
    from gridsvc.services.assignment import attribute_incidents

    attribute_incidents(db)
    count_2025 = text(
        "SELECT count(*) FROM incident i JOIN cell_version v ON v.id = i.cell_version_id "
        "JOIN cell c ON c.id = v.cell_id WHERE c.code = :c "
        "AND i.reported_at >= '2025-01-01' AND i.reported_at < '2026-01-01'"
    )
    assert db.scalar(count_2025, {"c": code}) == 2
    geom = _cell_geom(client, rc, code)
    minx, miny, maxx, maxy = geom.bounds
    line = {
        "type": "LineString",
        "coordinates": [[minx - 0.001, (miny + maxy) / 2], [maxx + 0.001, (miny + maxy) / 2]],
    }
    body = {"op": "split", "cell": code, "line": line, "reason": "拆分"}
    preview = _preview(client, rc, body)
    assert preview["impact"]["open_incidents_moved"] == 1
    assert _commit(client, rc, body, preview["etag"]).status_code == 200
    assert db.scalar(count_2025, {"c": code}) == 2
    open_cell = db.scalar(
        select(Cell.code)
        .join(Incident, Incident.cell_id == Cell.id)
        .where(Incident.status == "filed", Incident.category == "dispute")
    )
    assert open_cell in preview["impact"]["cells_created"]


def test_leader_may_not_redraw(
    client: TestClient, db: Session, nanjing_cells: RealCommunity
) -> None:
    create_user(
        db,
        username="gz",
        password=TEST_PASSWORD,
        role="leader",
        scope=ScopeSpec("cell", nanjing_cells.codes[0]),
    )
    db.flush()
    r = client.post(
        f"/api/v1/communities/{COMMUNITY}/redraw/preview",
        headers=token_for(client, "gz"),
        json={"op": "merge", "cells": nanjing_cells.codes[:2], "reason": "x"},
    )
    assert r.status_code == 403
    assert (
        db.scalar(select(func.count()).select_from(Building).where(Building.source == "nj")) == 1277
    )


def test_split_by_buildings_keeps_them_together(
    client: TestClient, db: Session, nanjing_cells: RealCommunity
) -> None:
    rc = nanjing_cells
    code = rc.codes[4]
    ids = (
        db.execute(
            text(
                "SELECT b.id FROM building b JOIN cell c ON c.id = b.cell_id WHERE c.code = :c "
                "ORDER BY ST_X(ST_Centroid(b.footprint)) LIMIT 10"
            ),
            {"c": code},
        )
        .scalars()
        .all()
    )
    body = {"op": "split", "cell": code, "buildings": list(ids), "reason": "西侧楼栋单独成格"}
    preview = _preview(client, rc, body)
    assert _commit(client, rc, body, preview["etag"]).status_code == 200
    new_cells = (
        db.execute(
            text(
                "SELECT DISTINCT c.code FROM building b JOIN cell c ON "
                "c.id = b.cell_id WHERE b.id = ANY(:ids)"
            ),
            {"ids": list(ids)},
        )
        .scalars()
        .all()
    )
    assert len(new_cells) == 1 and new_cells[0] in preview["impact"]["cells_created"]
    counts = preview["impact"]["validation"]["counts"]
    assert counts.get("gap", 0) == 0 and counts.get("overlap", 0) == 0
    assert counts.get("not_contiguous", 0) == 0


def test_shrink_leaves_a_gap_that_create_fills(
    client: TestClient, db: Session, nanjing_cells: RealCommunity
) -> None:
    rc = nanjing_cells
    code = rc.codes[5]
    geom = _cell_geom(client, rc, code)
    smaller = geom.buffer(-0.0008)
    body = {
        "op": "reshape",
        "cell": code,
        "geometry": shapely.geometry.mapping(smaller),
        "reason": "缩小",
    }
    preview = _preview(client, rc, body)
    assert preview["impact"]["validation"]["counts"]["gap"] >= 1
    assert _commit(client, rc, body, preview["etag"]).status_code == 200
    body = {
        "op": "create",
        "geometry": shapely.geometry.mapping(geom),
        "reason": "补齐空白",
        "name": "新设网格",
    }
    preview = _preview(client, rc, body)
    assert len(preview["impact"]["cells_created"]) == 1
    assert preview["impact"]["validation"]["counts"].get("gap", 0) == 0
    assert _commit(client, rc, body, preview["etag"]).status_code == 200
    nothing = client.post(
        f"/api/v1/communities/{COMMUNITY}/redraw/preview", headers=rc.headers, json=body
    )
    assert nothing.status_code == 422 and "covers no gap" in nothing.json()["detail"]


def test_proposal_previewed_and_committed_as_a_whole(
    client: TestClient, db: Session, nanjing_cells: RealCommunity, nanjing: Path
) -> None:
    from gridsvc.services.imports import import_roads

    rc = nanjing_cells
    import_roads(db, read_features(nanjing / "roads.geojson", kind="line"), source="nj-roads")
    r = client.post(
        f"/api/v1/communities/{COMMUNITY}/proposal",
        headers=rc.headers,
        json={"target": 300, "band_min": 200, "band_max": 500},
    )
    assert r.status_code == 200, r.text
    proposal = r.json()
    assert proposal["features"] and proposal["summary"]
    for f in proposal["features"]:
        p = f["properties"]
        assert p["in_band"] or p["reason"], p
    body = {
        "op": "proposal",
        "cells": {"type": "FeatureCollection", "features": proposal["features"]},
        "reason": "采用自动划格方案",
    }
    preview = _preview(client, rc, body)
    impact = preview["impact"]
    assert sorted(impact["cells_retired"]) == rc.codes
    assert len(impact["cells_created"]) == len(proposal["features"])
    counts = impact["validation"]["counts"]
    assert counts.get("gap", 0) == 0 and counts.get("overlap", 0) == 0
    assert counts.get("building_unassigned", 0) == 0
    assert _commit(client, rc, body, preview["etag"]).status_code == 200
    in_cells = db.scalar(
        text(
            "SELECT count(*) FROM building WHERE source = 'nj' AND cell_id IS "
            "NOT NULL AND ST_Intersects(footprint, ST_GeomFromText(:a, 4326))"
        ),
        {"a": rc.area.wkt},
    )
    touching = db.scalar(
        text(
            "SELECT count(*) FROM building WHERE source = 'nj' AND "
            "ST_Intersects(footprint, ST_GeomFromText(:a, 4326))"
        ),
        {"a": rc.area.wkt},
    )
    assert in_cells == touching
