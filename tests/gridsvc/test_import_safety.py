"""Imports that never silently damage (issue 19): what moves is reported and refused unless
allowed, overlapping areas are refused, foreign schemas are read through declared columns,
and validation counts what a proposal reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geodata.readers import read_features
from gridsvc.errors import Conflict, InvalidInput
from gridsvc.models import Building, Community, Road
from gridsvc.repositories.areas import get_community
from gridsvc.repositories.bulk import to_db_geometry
from gridsvc.services.imports import (
    import_buildings,
    import_communities,
    import_roads,
    run_in_savepoint,
)
from gridsvc.services.proposals import propose_for_community
from gridsvc.services.users import create_user
from gridsvc.services.validation import validate_community
from gridsvc.settings import get_settings
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet, token_for
from tests.gridsvc.test_cli import cli_db  # noqa: F401  (a scratch database for the CLI)

X0, Y0, D = 118.90, 32.10, 0.004  # the small street's community (2×2 cells of D degrees)


def _file(
    tmp_path: Path, name: str, features: list[tuple[shapely.Geometry, dict[str, Any]]]
) -> Path:
    path = tmp_path / name
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": p, "geometry": shapely.geometry.mapping(g)}
                    for g, p in features
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return path


def _square(cx: float, cy: float, r: float = 1e-4) -> shapely.Geometry:
    return shapely.box(cx - r, cy - r, cx + r, cy + r)


def _communities(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Community)) or 0


# -- overlaps --------------------------------------------------------------------------------
def test_overlapping_districts_in_one_file_are_refused_naming_the_pair(
    db: Session, small_street: SmallStreet, tmp_path: Path
) -> None:
    street_id = get_community(db, small_street.community_code).street_id
    east = X0 + 3 * D
    outer = shapely.box(east, Y0, east + 4 * D, Y0 + 4 * D)
    inner = shapely.box(east + D, Y0 + D, east + 2 * D, Y0 + 2 * D)
    beside = shapely.box(east + 3.5 * D, Y0, east + 6 * D, Y0 + D)  # overlaps `outer` partly
    before = _communities(db)
    nested = _file(
        tmp_path, "d.geojson", [(outer, {"district": "玄武区"}), (inner, {"district": "新街口"})]
    )
    with pytest.raises(InvalidInput) as refused:
        import_communities(
            db,
            read_features(nested, kind="polygon"),
            street_id=street_id,
            street_code=small_street.street_code,
            source="d",
        )
    assert "「新街口」位于「玄武区」之内" in refused.value.detail
    assert "不同层级" in refused.value.detail
    partial = _file(tmp_path, "p.geojson", [(outer, {"名称": "甲"}), (beside, {"名称": "乙"})])
    with pytest.raises(InvalidInput) as refused:
        import_communities(
            db,
            read_features(partial, kind="polygon"),
            street_id=street_id,
            street_code=small_street.street_code,
            source="p",
        )
    assert "「甲」与「乙」重叠" in refused.value.detail
    # Against an existing community: the new polygon covers part of 测试社区.
    over = _file(
        tmp_path, "o.geojson", [(shapely.box(X0 + D, Y0, X0 + 3 * D, Y0 + D), {"name": "新区"})]
    )
    with pytest.raises(InvalidInput) as refused:
        import_communities(
            db,
            read_features(over, kind="polygon"),
            street_id=street_id,
            street_code=small_street.street_code,
            source="o",
        )
    assert "已有社区「测试社区」" in refused.value.detail
    assert _communities(db) == before


def test_names_from_district_or_mapping_and_codes_returned(
    db: Session, small_street: SmallStreet, tmp_path: Path
) -> None:
    street_id = get_community(db, small_street.community_code).street_id
    east = X0 + 3 * D
    path = _file(
        tmp_path,
        "c.geojson",
        [
            (shapely.box(east, Y0, east + D, Y0 + D), {"district": "东一社区", "label": "甲"}),
            (
                shapely.box(east + D, Y0, east + 2 * D, Y0 + D),
                {"district": "东二社区", "label": "乙"},
            ),
        ],
    )
    summary = import_communities(
        db,
        read_features(path, kind="polygon"),
        street_id=street_id,
        street_code=small_street.street_code,
        source="c",
    )
    assert summary.fields["name"] == "district"
    assert len(summary.codes) == 2 and summary.as_dict()["codes"] == summary.codes
    names = dict(
        db.execute(
            select(Community.code, Community.name).where(Community.code.in_(summary.codes))
        ).all()
    )
    assert sorted(names.values()) == ["东一社区", "东二社区"]
    # --field name=label wins over the known names.
    db.execute(text("DELETE FROM community WHERE code = ANY(:c)"), {"c": summary.codes})
    mapped = import_communities(
        db,
        read_features(path, kind="polygon"),
        street_id=street_id,
        street_code=small_street.street_code,
        source="c",
        fields={"name": "label"},
    )
    assert mapped.fields["name"] == "label"
    assert set(db.scalars(select(Community.name).where(Community.code.in_(mapped.codes)))) == {
        "甲",
        "乙",
    }


# -- moves -----------------------------------------------------------------------------------
def _moved_file(tmp_path: Path) -> Path:
    """The small street's buildings again, with b0 (NE cell, 10 households) now in the SW cell."""
    centres = {
        "b0": (X0 + 0.3 * D, Y0 + 0.3 * D),
        "b1": (X0 + 0.5 * D, Y0 + 0.5 * D),
        "b2": (X0 + 0.5 * D, Y0 + 1.5 * D),
        "b3": (X0 + 1.5 * D, Y0 + 0.5 * D),
    }
    households = {"b0": 10, "b1": 20, "b2": 30, "b3": 40}
    return _file(
        tmp_path,
        "moved.geojson",
        [
            (_square(*c), {"source_id": i, "building": "residential", "households": households[i]})
            for i, c in centres.items()
        ],
    )


def test_an_import_that_moves_buildings_is_reported_and_refused_unless_allowed(
    db: Session, small_street: SmallStreet, tmp_path: Path
) -> None:
    ne, sw, nw, se = small_street.cell_codes  # in the fixture's creation order
    community = small_street.community_code
    geo = get_settings().geo
    result = read_features(_moved_file(tmp_path), kind="polygon")

    def work():  # type: ignore[no-untyped-def]
        return import_buildings(db, result, source="test", geo=geo)

    def cell_of(source_id: str) -> str | None:
        return db.scalar(
            text(
                "SELECT c.code FROM building b LEFT JOIN cell c ON c.id = b.cell_id "
                "WHERE b.source = 'test' AND b.source_id = :s"
            ),
            {"s": source_id},
        )

    dry = run_in_savepoint(db, work, commit=False)
    assert dry.moves is not None
    assert [(g.what, g.from_cell, g.to_cell, g.count, g.households) for g in dry.moves.groups] == [
        ("building", ne, sw, 1, 10)
    ]
    assert dry.moves.groups[0].from_community == dry.moves.groups[0].to_community == community
    assert [i["source_id"] for i in dry.moves.items] == ["b0"]
    assert cell_of("b0") == ne  # a dry run writes nothing
    with pytest.raises(Conflict) as refused:
        run_in_savepoint(db, work, commit=True)
    assert "1 栋楼（10 户）" in refused.value.detail and "--allow-move" in refused.value.detail
    assert cell_of("b0") == ne
    done = run_in_savepoint(db, work, commit=True, allow_move=True)
    assert done.committed and done.moves.moved_buildings == 1
    assert cell_of("b0") == sw
    # Validation's household counts are the rows' (and what a proposal reads).
    report = validate_community(db, get_community(db, community))
    band_details = {
        p.cells[0]: p.detail for p in report.problems if p.kind == "households_out_of_band"
    }
    rows = dict(
        db.execute(
            text(
                "SELECT c.code, coalesce(sum(b.households), 0) FROM cell c LEFT JOIN building b "
                "ON b.cell_id = c.id AND b.community_id = c.community_id "
                "WHERE c.community_id = (SELECT id FROM community WHERE code = :c) GROUP BY c.code"
            ),
            {"c": community},
        ).all()
    )
    assert rows == {nw: 30, ne: 0, sw: 30, se: 40}
    for code, households in rows.items():
        assert f"has {households} households" in band_details[code]


def test_validation_counts_only_the_communitys_own_buildings(
    db: Session, small_street: SmallStreet
) -> None:
    # The state issue 19 found: a building given to another community still points at a
    # cell of this one. Validation must count what a proposal reads (this community's rows).
    nw = small_street.cell_codes[2]
    other = Community(
        code="320102099009",
        name="别处",
        street_id=get_community(db, small_street.community_code).street_id,
        geom=to_db_geometry(shapely.box(100, 30, 100.01, 30.01)),
    )
    db.add(other)
    db.flush()
    db.execute(
        text(
            "UPDATE building SET community_id = :o WHERE cell_id = (SELECT id FROM cell WHERE code = :c)"
        ),
        {"o": other.id, "c": nw},
    )
    report = validate_community(db, get_community(db, small_street.community_code))
    detail = next(
        p.detail
        for p in report.problems
        if p.kind == "households_out_of_band" and list(p.cells) == [nw]
    )
    assert f"{nw} has 0 households" in detail


# -- schemas ---------------------------------------------------------------------------------
def test_tilezen_buildings_read_kind_detail_and_levels_from_height(
    db: Session, tmp_path: Path
) -> None:
    features = [
        (
            _square(X0 + 0.01 * k, Y0 + 0.05, 2e-4),
            {"id": f"t{k}", "kind": "building", "kind_detail": kd, "height": 18},
        )
        for k, kd in enumerate(["residential", "apartments", "", "commercial"])
    ]
    path = _file(tmp_path, "tilezen.geojson", features)
    summary = import_buildings(
        db, read_features(path, kind="polygon"), source="tz", geo=get_settings().geo
    )
    assert summary.schema == "Tilezen"
    assert summary.fields["building"] == "kind_detail" and summary.fields["levels"] == "height/3"
    rows = dict(db.execute(select(Building.source_id, Building.kind)).all())
    levels = dict(db.execute(select(Building.source_id, Building.levels)).all())
    households = dict(db.execute(select(Building.source_id, Building.households)).all())
    assert rows == {"t0": "residential", "t1": "apartments", "t2": "yes", "t3": "commercial"}
    assert levels["t0"] == 6 and households["t0"] > 0 and households["t1"] > 0
    assert households["t2"] == households["t3"] == 0
    # A mapping given by the user wins: here levels are storeys of 6 m.
    mapped = import_buildings(
        db,
        read_features(path, kind="polygon"),
        source="tz",
        geo=get_settings().geo,
        fields={"levels": "height/6"},
    )
    assert mapped.fields["levels"] == "height/6" and mapped.schema == "自定义映射"
    assert db.scalar(select(Building.levels).where(Building.source_id == "t0")) == 3


def test_misread_buildings_warn_and_the_proposal_refuses(
    db: Session, small_street: SmallStreet, tmp_path: Path
) -> None:
    # kind is "building" everywhere and the class lives in a column nobody knows: 0 households.
    features = [
        (
            _square(X0 + (0.2 + 0.15 * (k % 5)) * D, Y0 + (0.2 + 0.3 * (k // 5)) * D, 5e-5),
            {"id": f"m{k}", "kind": "building", "usage": "住宅"},
        )
        for k in range(10)
    ]
    path = _file(tmp_path, "misread.geojson", features)
    summary = import_buildings(
        db, read_features(path, kind="polygon"), source="m", geo=get_settings().geo
    )
    assert "building" not in summary.fields  # kind=building everywhere is not a class
    assert any("户数为 0" in w for w in summary.warnings), summary.warnings
    with pytest.raises(InvalidInput) as refused:
        propose_for_community(
            db, get_community(db, small_street.community_code), target=300, band=(200, 500)
        )
    assert "无法自动划格" in refused.value.detail and "户数为 0" in refused.value.detail
    # Re-imported with the class declared, the estimate works and the warning is gone.
    fixed = import_buildings(
        db,
        read_features(path, kind="polygon"),
        source="m",
        geo=get_settings().geo,
        fields={"building": "usage"},
    )
    assert fixed.warnings == [] and fixed.fields["building"] == "usage"
    assert db.scalar(select(func.min(Building.households)).where(Building.source == "m")) > 0


def test_amap_style_buildings_and_roads(db: Session, tmp_path: Path) -> None:
    buildings = _file(
        tmp_path,
        "高德楼栋.geojson",
        [
            (
                _square(X0 + 0.1, Y0, 2e-4),
                {"编号": "g1", "名称": "1号楼", "类型": "商务住宅;住宅区", "楼层": "18层"},
            ),
            (
                _square(X0 + 0.11, Y0, 2e-4),
                {"编号": "g2", "名称": "万达广场", "类型": "购物服务;商场", "楼层": "5"},
            ),
        ],
    )
    summary = import_buildings(
        db, read_features(buildings, kind="polygon"), source="amap", geo=get_settings().geo
    )
    assert summary.schema == "天地图 / 高德"
    assert summary.fields == {"building": "类型", "levels": "楼层", "name": "名称"}
    rows = {
        r.name: r
        for r in db.execute(
            select(Building.name, Building.kind, Building.levels, Building.households)
        )
    }
    assert (
        rows["1号楼"].kind == "residential"
        and rows["1号楼"].levels == 18
        and rows["1号楼"].households > 0
    )
    assert rows["万达广场"].kind == "retail" and rows["万达广场"].households == 0
    line = shapely.LineString([(X0, Y0), (X0 + 0.001, Y0)])
    roads = _file(
        tmp_path,
        "高德道路.geojson",
        [
            (line, {"id": "r1", "道路名称": "中山路", "道路等级": "主干道"}),
            (line, {"id": "r2", "道路名称": "沪宁铁路", "道路等级": "铁路"}),
            (line, {"id": "r3", "道路名称": "中山码头轮渡", "道路等级": "轮渡航线"}),
            (line, {"id": "r4", "道路名称": "玄武湖隧道", "道路等级": "城市快速路", "隧道": "是"}),
        ],
    )
    road_summary = import_roads(db, read_features(roads, kind="line"), source="amap")
    assert (
        road_summary.fields["road_class"] == "道路等级"
        and road_summary.fields["name"] == "道路名称"
    )
    stored = {r.name: r for r in db.execute(select(Road.name, Road.highway, Road.properties))}
    assert stored["中山路"].highway == "primary" and stored["沪宁铁路"].highway == "rail"
    assert stored["中山码头轮渡"].highway == "ferry"
    assert (
        stored["玄武湖隧道"].highway == "trunk"
        and stored["玄武湖隧道"].properties["tunnel"] == "yes"
    )
    assert "tunnel" not in (stored["中山路"].properties or {})


def test_tilezen_and_openmaptiles_roads(db: Session, tmp_path: Path) -> None:
    line = shapely.LineString([(X0, Y0), (X0 + 0.001, Y0)])
    tilezen = _file(
        tmp_path,
        "tilezen_roads.geojson",
        [
            (line, {"id": "z1", "kind": "major_road", "kind_detail": "primary", "is_bridge": True}),
            (line, {"id": "z2", "kind": "rail", "kind_detail": "rail"}),
            (line, {"id": "z3", "kind": "ferry"}),
            (line, {"id": "z4", "kind": "path", "kind_detail": "footway", "is_tunnel": True}),
            (
                line,
                {
                    "id": "z5",
                    "kind": "minor_road",
                    "kind_detail": "residential",
                    "is_bridge": False,
                },
            ),
        ],
    )
    summary = import_roads(db, read_features(tilezen, kind="line"), source="tz")
    assert summary.schema == "Tilezen" and summary.warnings == []
    assert summary.fields["road_class"] == "kind_detail"
    assert summary.fields["bridge"] == "is_bridge" and summary.fields["tunnel"] == "is_tunnel"
    got = {
        r.source_id: (
            r.highway,
            (r.properties or {}).get("bridge"),
            (r.properties or {}).get("tunnel"),
        )
        for r in db.execute(select(Road.source_id, Road.highway, Road.properties))
    }
    assert got == {
        "z1": ("primary", "yes", None),
        "z2": ("rail", None, None),
        "z3": ("ferry", None, None),
        "z4": ("footway", None, "yes"),
        "z5": ("residential", None, None),
    }
    omt = _file(
        tmp_path,
        "omt_roads.geojson",
        [
            (line, {"id": "o1", "class": "minor", "brunnel": "bridge"}),
            (line, {"id": "o2", "class": "transit", "brunnel": "tunnel"}),
            (line, {"id": "o3", "class": "primary"}),
        ],
    )
    summary = import_roads(db, read_features(omt, kind="line"), source="omt")
    assert (
        summary.fields["bridge"] == "brunnel=bridge"
        and summary.fields["tunnel"] == "brunnel=tunnel"
    )
    got = {
        r.source_id: (
            r.highway,
            (r.properties or {}).get("bridge"),
            (r.properties or {}).get("tunnel"),
        )
        for r in db.execute(
            select(Road.source_id, Road.highway, Road.properties).where(Road.source == "omt")
        )
    }
    assert got == {
        "o1": ("residential", "yes", None),
        "o2": ("rail", None, "yes"),
        "o3": ("primary", None, None),
    }
    # Lines with no class at all: a loud warning (every line would bound a block).
    bare = _file(
        tmp_path, "bare.geojson", [(line, {"id": f"x{k}", "名字": "路"}) for k in range(3)]
    )
    summary = import_roads(db, read_features(bare, kind="line"), source="bare")
    assert any("没有道路等级" in w for w in summary.warnings)


# -- over HTTP -------------------------------------------------------------------------------
def test_http_import_reports_fields_and_refuses_moves(
    client: TestClient, db: Session, small_street: SmallStreet, tmp_path: Path
) -> None:
    create_user(db, username="imp-admin", password=TEST_PASSWORD, role="admin")
    db.flush()
    headers = token_for(client, "imp-admin")
    path = _moved_file(tmp_path)

    def post(query: str = "", **form: str):  # type: ignore[no-untyped-def]
        with path.open("rb") as f:
            return client.post(
                f"/api/v1/imports/buildings{query}",
                files={"file": ("test.geojson", f, "application/geo+json")},  # source "test"
                data=form,
                headers=headers,
            )

    dry = post("?show_moves=true")
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["fields"]["building"] == "building" and body["schema_name"] == "OSM"
    assert body["moves"]["moved_buildings"] == 1 and body["moves"]["items"][0]["source_id"] == "b0"
    refused = post(commit="true")
    assert refused.status_code == 409 and "allow_move" in refused.json()["detail"]
    ne = small_street.cell_codes[0]
    assert (
        db.scalar(
            text(
                "SELECT c.code FROM building b JOIN cell c ON c.id = b.cell_id WHERE b.source_id = 'b0'"
            )
        )
        == ne
    )
    bad_mapping = post(fields='{"building": "no_such_column"}')
    assert bad_mapping.status_code == 422 and "no_such_column" in bad_mapping.json()["detail"]
    allowed = post("?allow_move=true", commit="true")
    assert allowed.status_code == 200 and allowed.json()["committed"] is True
    assert allowed.json()["moves"]["items"] == []  # listed only with show_moves


# -- the command line ------------------------------------------------------------------------
def test_cli_names_columns_codes_overlaps_and_moves(cli_db: str, tmp_path: Path) -> None:  # noqa: F811
    from typer.testing import CliRunner

    from gridsvc.cli import app

    runner = CliRunner()

    def flat(result: Any) -> str:  # the console wraps long lines
        return "".join(result.output.split())

    street = ["--street", "320102088", "--street-name", "试验街道"]
    outer = shapely.box(X0, Y0, X0 + 2 * D, Y0 + 2 * D)
    nested = _file(
        tmp_path,
        "nested.geojson",
        [
            (outer, {"district": "大区"}),
            (shapely.box(X0, Y0, X0 + D, Y0 + D), {"district": "小区"}),
        ],
    )
    refused = runner.invoke(app, ["import", "communities", str(nested), *street, "--commit"])
    assert refused.exit_code == 1 and "「小区」位于「大区」之内" in flat(refused)
    one = _file(tmp_path, "one.geojson", [(outer, {"district": "试验社区"})])
    done = runner.invoke(app, ["import", "communities", str(one), *street, "--commit"])
    assert done.exit_code == 0, done.output
    assert "新建编码（1）：320102088001" in flat(done) and "district" in done.output
    halves = _file(
        tmp_path,
        "cells.geojson",
        [
            (shapely.box(X0, Y0, X0 + D, Y0 + 2 * D), {}),
            (shapely.box(X0 + D, Y0, X0 + 2 * D, Y0 + 2 * D), {}),
        ],
    )
    cells = runner.invoke(
        app, ["import", "cells", str(halves), "--community", "320102088001", "--commit"]
    )
    assert cells.exit_code == 0 and "320102088001001" in cells.output, cells.output

    def buildings(name: str, x: float) -> str:
        return str(
            _file(
                tmp_path,
                name,
                [(_square(x, Y0 + D), {"id": "w1", "building": "residential", "households": 50})],
            )
        )

    first = runner.invoke(
        app, ["import", "buildings", buildings("b.geojson", X0 + 0.5 * D), "--commit"]
    )
    assert first.exit_code == 0 and "building" in first.output, first.output
    moved = buildings("b2.geojson", X0 + 1.5 * D)
    dry = runner.invoke(app, ["import", "buildings", moved, "--source", "b", "--show-moves"])
    assert dry.exit_code == 0 and "1栋楼（50户）" in flat(dry) and "楼栋w1" in flat(dry)
    no = runner.invoke(app, ["import", "buildings", moved, "--source", "b", "--commit"])
    assert no.exit_code == 1 and "--allow-move" in flat(no)
    yes = runner.invoke(
        app, ["import", "buildings", moved, "--source", "b", "--commit", "--allow-move"]
    )
    assert yes.exit_code == 0 and "committed" in yes.output, yes.output
    bad = runner.invoke(app, ["import", "buildings", moved, "--field", "levels=floors"])
    assert bad.exit_code == 1 and "没有列'floors'" in flat(bad)


def test_a_building_taken_by_a_new_community_leaves_its_old_cell(
    db: Session, small_street: SmallStreet, tmp_path: Path
) -> None:
    # A building just east of the community, counted in its NE cell (as a footprint-share
    # assignment once could), in no community. A new community east of the old one takes it:
    # the move is reported, refused on commit, and when allowed the building leaves the cell
    # of the other community, so no cell counts a building of another community.
    ne = small_street.cell_codes[0]
    street_id = get_community(db, small_street.community_code).street_id
    db.add(
        Building(
            source="edge",
            source_id="e1",
            kind="residential",
            households=70,
            footprint=to_db_geometry(_square(X0 + 2 * D + 2e-4, Y0 + 1.5 * D)),
            cell_id=db.scalar(text("SELECT id FROM cell WHERE code = :c"), {"c": ne}),
        )
    )
    db.flush()
    path = _file(
        tmp_path,
        "east.geojson",
        [(shapely.box(X0 + 2 * D, Y0, X0 + 3 * D, Y0 + 2 * D), {"名称": "东社区"})],
    )

    def work():  # type: ignore[no-untyped-def]
        return import_communities(
            db,
            read_features(path, kind="polygon"),
            street_id=street_id,
            street_code=small_street.street_code,
            source="east",
        )

    dry = run_in_savepoint(db, work, commit=False)
    assert [(g.from_cell, g.to_cell, g.to_community, g.households) for g in dry.moves.groups] == [
        (ne, None, dry.codes[0], 70)
    ]
    with pytest.raises(Conflict):
        run_in_savepoint(db, work, commit=True)
    done = run_in_savepoint(db, work, commit=True, allow_move=True)
    row = db.execute(
        text(
            "SELECT b.cell_id, co.code FROM building b JOIN community co ON co.id = b.community_id "
            "WHERE b.source_id = 'e1'"
        )
    ).one()
    assert row.cell_id is None and row.code == done.codes[0]
