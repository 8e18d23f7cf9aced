"""`gridsvc incidents …` as a user runs it: list, show, transition (409 → exit 3), stats,
Open311 keys create/list/revoke."""

from __future__ import annotations

import json

import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gridsvc.cli import app
from gridsvc.repositories.bulk import to_db_geometry
from tests.gridsvc.incidents.conftest import T0

runner = CliRunner()


def _seed(url: str) -> int:
    import geopandas as gpd

    from gridsvc.models import Community
    from gridsvc.services import incidents as svc
    from gridsvc.services.imports import create_cells, ensure_street
    from gridsvc.services.users import ScopeSpec, create_user

    engine = create_engine(url)
    with Session(engine) as s:
        street_id = ensure_street(s, street_code="320102666", street_name="命令街道")
        box = shapely.box(118.9, 32.1, 118.904, 32.104)
        s.add(
            Community(
                code="320102666001", name="命令社区", street_id=street_id, geom=to_db_geometry(box)
            )
        )
        s.flush()
        create_cells(s, gpd.GeoDataFrame(geometry=[box], crs=4326))
        s.execute(text("UPDATE cell_version SET valid_from = '2025-01-01'"))
        create_user(
            s,
            username="sq",
            password="cli-password-1",
            role="community_staff",
            scope=ScopeSpec("community", "320102666001"),
        )
        s.commit()
        detail = svc.report(
            s,
            svc.NewIncident(lon=118.902, lat=32.102, category="municipal", description="井盖缺失"),
            actor=svc.Actor("test"),
            now=T0,
        )
    engine.dispose()
    return int(detail["id"])


def test_incident_commands(cli_db: str) -> None:
    case = _seed(cli_db)
    listed = runner.invoke(app, ["incidents", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    items = json.loads(listed.stdout)["items"]
    assert [i["id"] for i in items] == [case] and items[0]["cell_code"] == "320102666001001"
    # The case is long overdue by the real clock (reported in March 2026, 5-day deadline).
    overdue = json.loads(runner.invoke(app, ["incidents", "list", "--overdue", "--json"]).stdout)
    assert overdue["numberMatched"] == 1
    r = runner.invoke(app, ["incidents", "transition", str(case), "close", "--as", "sq"])
    assert r.exit_code == 3 and "cannot close" in r.output
    r = runner.invoke(app, ["incidents", "transition", str(case), "dispatch", "--as", "sq"])
    assert r.exit_code == 0 and "dispatched" in r.output
    r = runner.invoke(app, ["incidents", "transition", str(case), "dispatch", "--as", "nobody"])
    assert r.exit_code == 1
    shown = json.loads(runner.invoke(app, ["incidents", "show", str(case), "--json"]).stdout)
    assert [e["action"] for e in shown["events"]] == ["file", "dispatch"]
    assert shown["events"][1]["actor"] == "sq"
    stats = json.loads(
        runner.invoke(
            app, ["incidents", "stats", "--by", "street", "--period", "all", "--json"]
        ).stdout
    )
    [row] = stats["rows"]
    assert row["street"] == "320102666" and row["reported"] == 1 and row["closed"] == 0
    assert runner.invoke(app, ["incidents", "stats", "--by", "planet"]).exit_code == 1


def test_open311_key_commands(cli_db: str) -> None:
    made = runner.invoke(app, ["incidents", "open311", "keys", "create", "市民通"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("o311_") and len(key) > 40
    engine = create_engine(cli_db)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash, revoked_at FROM open311_key")).one()
    assert key not in stored.key_hash and stored.revoked_at is None
    again = runner.invoke(app, ["incidents", "open311", "keys", "create", "市民通"])
    assert again.exit_code == 1
    listed = runner.invoke(app, ["incidents", "open311", "keys", "list"])
    assert "市民通" in listed.output and key not in listed.output
    assert runner.invoke(app, ["incidents", "open311", "keys", "revoke", "市民通"]).exit_code == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT revoked_at FROM open311_key")).scalar() is not None
    engine.dispose()
    assert runner.invoke(app, ["incidents", "open311", "keys", "revoke", "其他"]).exit_code == 1


def test_open311_scoped_keys_and_public_categories(cli_db: str) -> None:
    """A partner key gets a read scope (shown in the list); staff publish or withdraw a
    category from the public feed; bad scopes and unknown categories fail cleanly."""
    from gridsvc.services.imports import ensure_street

    engine = create_engine(cli_db)
    with Session(engine) as s:
        ensure_street(s, street_code="320102666", street_name="命令街道")
        s.commit()
    keys = ["incidents", "open311", "keys"]
    made = runner.invoke(app, [*keys, "create", "调解平台", "--street", "320102666"])
    assert made.exit_code == 0, made.output
    assert runner.invoke(app, [*keys, "create", "x", "--street", "nope"]).exit_code == 1
    both = runner.invoke(app, [*keys, "create", "y", "--street", "320102666", "--cell", "c"])
    assert both.exit_code == 1 and "at most one" in both.output
    assert runner.invoke(app, [*keys, "create", "市民通"]).exit_code == 0
    listed = runner.invoke(app, [*keys, "list"], terminal_width=200)
    assert "street 320102666" in listed.output and "(submit only)" in listed.output
    publish = ["incidents", "open311", "publish"]
    r = runner.invoke(app, [*publish, "矛盾纠纷", "--public"])
    assert r.exit_code == 0 and "dispute" in r.output and "public" in r.output
    assert runner.invoke(app, [*publish, "sanitation", "--private"]).exit_code == 0
    assert runner.invoke(app, [*publish, "nope", "--public"]).exit_code == 1
    with engine.connect() as conn:
        public = dict(conn.execute(text("SELECT code, public FROM incident_category")).all())
    engine.dispose()
    assert public["dispute"] is True and public["sanitation"] is False
    assert public["municipal"] is True and public["opinion"] is False  # the defaults
