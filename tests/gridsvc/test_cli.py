"""The `gridsvc` command as a user runs it: dry-run imports, --commit, errors, users, db status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from gridsvc.cli import app
from tests.conftest import scratch_database

runner = CliRunner()


@pytest.fixture
def cli_db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A scratch database the CLI writes to (commits are real there)."""
    from gridsvc.db import engine as engine_module
    from gridsvc.settings import get_settings

    with scratch_database("gridsvc_cli_test") as url:
        monkeypatch.setenv("GRIDSVC_DATABASE_URL", url)
        for cached in (get_settings, engine_module.get_engine, engine_module._session_factory):
            cached.cache_clear()
        yield url
        engine_module.get_engine().dispose()
        monkeypatch.delenv("GRIDSVC_DATABASE_URL")
        for cached in (get_settings, engine_module.get_engine, engine_module._session_factory):
            cached.cache_clear()


def _buildings(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM building")).scalar_one()
    engine.dispose()
    return n


@pytest.mark.shared_data
def test_import_is_dry_run_until_commit(cli_db: str, nanjing: Path) -> None:
    path = str(nanjing / "buildings.geojson")
    dry = runner.invoke(app, ["import", "buildings", path])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and "1277" in dry.output
    assert _buildings(cli_db) == 0
    real = runner.invoke(app, ["import", "buildings", path, "--commit"])
    assert real.exit_code == 0, real.output
    assert "committed" in real.output
    assert _buildings(cli_db) == 1277


def test_bad_file_is_a_clear_error_and_writes_nothing(cli_db: str, tmp_path: Path) -> None:
    bad = tmp_path / "cells.geojson"
    bad.write_text("this is not json")
    result = runner.invoke(app, ["import", "buildings", str(bad), "--commit"])
    assert result.exit_code == 1
    assert "error" in result.output and "cells.geojson" in result.output
    assert "Traceback" not in result.output
    assert _buildings(cli_db) == 0
    missing = runner.invoke(app, ["import", "buildings", str(tmp_path / "nope.gpkg")])
    assert missing.exit_code == 1 and "nope.gpkg" in missing.output


def test_users_create_checks_role_and_scope(cli_db: str) -> None:
    no_scope = runner.invoke(app, ["users", "create", "gz", "--role", "leader"])
    assert no_scope.exit_code == 1 and "cell" in no_scope.output
    unknown = runner.invoke(app, ["users", "create", "gz", "--role", "leader", "--cell", "000"])
    assert unknown.exit_code == 1 and "no cell" in unknown.output
    ok = runner.invoke(app, ["users", "create", "boss", "--role", "admin"])
    assert ok.exit_code == 0 and "password:" in ok.output
    again = runner.invoke(app, ["users", "create", "boss", "--role", "admin"])
    assert again.exit_code == 1 and "already exists" in again.output


def test_db_status_names_the_revision(cli_db: str) -> None:
    result = runner.invoke(app, ["db", "status"])
    assert result.exit_code == 0
    from gridsvc.db.migrate import head_revision

    assert str(head_revision()) in result.output


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "db", "import", "users", "cells", "demo"):
        assert command in result.output


@pytest.mark.shared_data
def test_street_set_up_from_files(cli_db: str, nanjing: Path, tmp_path: Path) -> None:
    """A street office's first day: community from a file, cells from a file, then buildings."""
    import geopandas as gpd
    import numpy as np
    import shapely

    extent = gpd.read_file(nanjing / "extent.geojson")
    community = extent.assign(name="新街口社区")[["name", "geometry"]]
    community_file = tmp_path / "社区.geojson"
    community.to_file(community_file)
    result = runner.invoke(
        app,
        [
            "import",
            "communities",
            str(community_file),
            "--street",
            "320102005",
            "--street-name",
            "新街口街道",
            "--district",
            "320102",
            "--district-name",
            "玄武区",
            "--commit",
        ],
    )
    assert result.exit_code == 0, result.output
    minx, miny, maxx, maxy = extent.total_bounds
    xs, ys = np.linspace(minx, maxx, 4), np.linspace(miny, maxy, 3)
    area = extent.geometry.iloc[0]
    grid = [
        shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]).intersection(area)
        for i in range(3)
        for j in range(2)
    ]
    cells_file = tmp_path / "网格.gpkg"
    gpd.GeoDataFrame(geometry=grid, crs=4326).to_file(cells_file)
    result = runner.invoke(app, ["import", "cells", str(cells_file), "--commit"])
    assert result.exit_code == 0, result.output
    assert "320102005001001" in result.output
    result = runner.invoke(
        app, ["import", "buildings", str(nanjing / "buildings.geojson"), "--commit"]
    )
    assert result.exit_code == 0, result.output
    engine = create_engine(cli_db)
    with engine.connect() as conn:
        total, in_cell, missed, stray = conn.execute(
            text(
                "SELECT count(*), count(b.cell_id), "
                "count(*) FILTER (WHERE b.cell_id IS NULL AND ST_Intersects(b.footprint, c.geom)), "
                "count(*) FILTER (WHERE b.cell_id IS NOT NULL "
                "AND NOT ST_Intersects(b.footprint, c.geom)) "
                "FROM building b, community c"
            )
        ).one()
        cells = conn.execute(text("SELECT count(*) FROM cell")).scalar_one()
    engine.dispose()
    assert cells == 6 and total == 1277
    # Every building touching the community has a cell; none outside it has one.
    assert in_cell > 1000 and missed == 0 and stray == 0
    # The cells tile the community; only the missing 格长 are reported (exit code 2).
    result = runner.invoke(app, ["cells", "validate", "320102005001"])
    assert result.exit_code == 2, result.output
    assert "no_leader" in result.output and "gap" not in result.output
    result = runner.invoke(app, ["cells", "history", "320102005001001"])
    assert result.exit_code == 0 and "current" in result.output


@pytest.mark.shared_data
def test_outline_then_import_as_community(cli_db: str, beijing: Path, tmp_path: Path) -> None:
    """No community polygon exists for 学院路: derive one from buildings and roads, import it."""
    out = tmp_path / "学院路.geojson"
    result = runner.invoke(
        app,
        [
            "outline",
            str(beijing / "buildings.geojson"),
            "--roads",
            str(beijing / "roads.geojson"),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "import",
            "communities",
            str(out),
            "--street",
            "110108016",
            "--street-name",
            "学院路街道",
            "--commit",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["import", "buildings", str(beijing / "buildings.geojson"), "--commit"]
    )
    assert "buildings outside every community │ 0" in result.output.replace("  ", " ") or (
        _outside(cli_db) == 0
    )


def _outside(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM building WHERE community_id IS NULL")
        ).scalar_one()
    engine.dispose()
    return n


def test_import_incidents_from_csv(cli_db: str, tmp_path: Path) -> None:
    csv = tmp_path / "事件.csv"
    csv.write_text(
        "经度,纬度,类别,描述\n118.80,32.05,环境卫生,垃圾\n118.81,32.06,治安隐患,路灯坏\n",
        encoding="utf-8",
    )
    dry = runner.invoke(app, ["import", "incidents", str(csv)])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output
    result = runner.invoke(app, ["import", "incidents", str(csv), "--commit"])
    assert result.exit_code == 0, result.output
    engine = create_engine(cli_db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT category FROM incident ORDER BY id")).scalars().all()
    engine.dispose()
    assert rows == ["sanitation", "public_order"]


def test_users_token_mints_a_desktop_token(cli_db: str) -> None:
    from gridsvc.security import decode_access_token

    assert runner.invoke(app, ["users", "create", "qgis", "--role", "admin"]).exit_code == 0
    minted = runner.invoke(app, ["users", "token", "qgis", "--days", "30"])
    assert minted.exit_code == 0, minted.output
    token = minted.output.strip().splitlines()[-1]
    claims = decode_access_token(token)
    assert 29 * 86400 < claims["exp"] - claims["iat"] <= 30 * 86400
    too_long = runner.invoke(app, ["users", "token", "qgis", "--days", "5000"])
    assert too_long.exit_code == 1 and "天" in too_long.output
    assert runner.invoke(app, ["users", "token", "nobody"]).exit_code == 1
