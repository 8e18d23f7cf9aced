"""Roster import (花名册) with Chinese headers: a per-row error report (row, column, message),
nothing written by a dry run, only the good rows written with commit, each row whole or not at
all; CSV and XLSX, API upload and CLI."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gridsvc.auth.principal import Principal
from gridsvc.services.roster import import_roster
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet, token_for
from tests.gridsvc.test_cli import cli_db  # noqa: F401  (fixture)

ADMIN = Principal(id=0, username="t", role="admin")
HEADER = [
    "姓名",
    "电话",
    "身份证号",
    "角色",
    "网格编码",
    "楼栋",
    "用工",
    "开始日期",
    "党员类别",
    "社区编码",
]


def _rows(s: SmallStreet) -> list[list[str]]:
    nw, ne, *_ = sorted(s.cell_codes)  # the NE cell holds building "1栋"
    return [
        ["王五", "138 0000 1111", "11010519491231002X", "格长", nw, "", "", "2026-01-05", "", ""],
        ["赵六", "138000", "", "网格员", nw, "", "兼职", "", "", ""],  # bad phone
        ["钱七", "13800002222", "", "格长", nw, "", "", "", "", ""],  # second 格长 of NW
        ["孙八", "13800003333", "", "楼栋长", ne, "1栋", "", "2026/3/1", "", ""],
        ["周九", "", "", "网格员", "320102099001999", "", "", "", "", ""],  # unknown cell
        ["吴十", "", "", "楼栋长", ne, "", "", "", "", ""],  # no building
        ["郑十一", "", "", "网格员", nw, "", "", "2026-13-01", "", ""],  # bad date
        ["", "13800009999", "", "网格员", nw, "", "", "", "", ""],  # no name
        ["冯十二", "13800004444", "", "网格员", nw, "", "专职", "2026年2月1日", "", ""],
        ["陈十三", "", "", "", "", "", "", "", "在职党员", s.community_code],  # person only
    ]


#: (row in the file, column) of every problem in _rows: the header is row 1.
EXPECTED_ERRORS = [
    (3, "电话"),
    (4, "角色"),
    (6, "网格编码"),
    (7, "楼栋"),
    (8, "开始日期"),
    (9, "姓名"),
]


def _csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def _counts(db: Session) -> tuple[int, int]:
    return (
        db.execute(text("SELECT count(*) FROM person")).scalar_one(),
        db.execute(text("SELECT count(*) FROM role_assignment")).scalar_one(),
    )


def test_dry_run_reports_every_bad_row_and_writes_nothing(
    db: Session, small_street: SmallStreet, tmp_path: Path
) -> None:
    before = _counts(db)
    report = import_roster(
        db, ADMIN, _csv(tmp_path / "花名册.csv", _rows(small_street)), commit=False
    )
    assert [(e["row"], e["column"]) for e in report.errors] == EXPECTED_ERRORS
    messages = {e["row"]: e["message"] for e in report.errors}
    assert "王五" in messages[4] and "格长" in messages[4]  # names the current holder
    assert "320102099001999" in messages[6]
    assert (report.rows, report.good_rows, report.assignments) == (10, 4, 3)
    assert not report.committed
    assert _counts(db) == before


def test_commit_writes_only_the_good_rows_each_whole(
    db: Session, small_street: SmallStreet, tmp_path: Path
) -> None:
    before = _counts(db)
    report = import_roster(db, ADMIN, _csv(tmp_path / "r.csv", _rows(small_street)), commit=True)
    assert report.committed and report.good_rows == 4
    people, assignments = _counts(db)
    assert (people - before[0], assignments - before[1]) == (4, 3)
    names = set(db.execute(text("SELECT name FROM person")).scalars())
    assert {"王五", "孙八", "冯十二", "陈十三"} <= names
    # 钱七's person row was created before the 格长 was refused: the row is undone whole.
    assert not names & {"钱七", "赵六", "周九", "吴十", "郑十一"}
    rows = db.execute(
        text(
            "SELECT p.name, r.role, r.employment, r.starts_on::text, p.phone, p.id_number "
            "FROM role_assignment r JOIN person p ON p.id = r.person_id ORDER BY p.name"
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("冯十二", "grid_worker", "full_time", "2026-02-01", "13800004444", None),
        ("孙八", "building_captain", None, "2026-03-01", "13800003333", None),
        ("王五", "leader", None, "2026-01-05", "13800001111", "11010519491231002X"),
    ]
    member = db.execute(text("SELECT party_status FROM person WHERE name = '陈十三'")).scalar_one()
    assert member == "in_service"
    # A later roster naming the same person (by 身份证号) matches them, no duplicate.
    ne = sorted(small_street.cell_codes)[1]
    again_rows = [["王五", "", "11010519491231002X", "楼栋长", ne, "1栋", "", "", "", ""]]
    again = import_roster(db, ADMIN, _csv(tmp_path / "again.csv", again_rows), commit=True)
    assert (again.people_matched, again.people_created, again.assignments) == (1, 0, 1)
    assert db.execute(text("SELECT count(*) FROM person WHERE name = '王五'")).scalar_one() == 1


def test_xlsx_upload_through_the_api(
    client: TestClient, db: Session, small_street: SmallStreet, tmp_path: Path
) -> None:
    from gridsvc.services.users import create_user

    create_user(db, username="roster_admin", password=TEST_PASSWORD, role="admin")
    headers = token_for(client, "roster_admin")
    path = tmp_path / "花名册.xlsx"
    pd.DataFrame(_rows(small_street), columns=HEADER).to_excel(path, index=False)
    before = _counts(db)
    with open(path, "rb") as fh:
        dry = client.post(
            "/api/v1/imports/roster", files={"file": (path.name, fh)}, headers=headers
        )
    assert dry.status_code == 200, dry.text
    assert [(e["row"], e["column"]) for e in dry.json()["errors"]] == EXPECTED_ERRORS
    assert dry.json()["committed"] is False and _counts(db) == before
    with open(path, "rb") as fh:
        real = client.post(
            "/api/v1/imports/roster",
            files={"file": (path.name, fh)},
            data={"commit": "true"},
            headers=headers,
        )
    assert real.json()["committed"] is True and real.json()["good_rows"] == 4
    assert _counts(db)[1] == before[1] + 3
    # A file without a 姓名 column is refused whole with a clear 422.
    bad = io.BytesIO("电话,角色\n13800001111,格长\n".encode())
    refused = client.post("/api/v1/imports/roster", files={"file": ("x.csv", bad)}, headers=headers)
    assert refused.status_code == 422 and "姓名" in refused.json()["detail"]


def test_cli_dry_run_then_commit(cli_db: str, tmp_path: Path) -> None:  # noqa: F811
    from gridsvc.cli import app
    from gridsvc.models import Community
    from gridsvc.repositories.bulk import to_db_geometry
    from gridsvc.services.imports import ensure_street

    engine = create_engine(cli_db)
    with Session(engine) as s:
        street_id = ensure_street(s, street_code="320102066", street_name="命令街道")
        s.add(
            Community(
                code="320102066001",
                name="命令社区",
                street_id=street_id,
                geom=to_db_geometry(shapely.box(118.9, 32.1, 118.91, 32.11)),
            )
        )
        s.commit()
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "姓名,电话,党员类别,社区编码\n"
        "党员甲,13900001111,直管党员,320102066001\n"
        "党员乙,139,直管党员,320102066001\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    dry = runner.invoke(app, ["people", "import", str(roster)])
    assert dry.exit_code == 2, dry.output  # rows with errors
    assert "dry run" in dry.output and "电话" in dry.output

    def people() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM person")).scalar_one()

    assert people() == 0
    real = runner.invoke(app, ["people", "import", str(roster), "--commit"])
    assert real.exit_code == 2 and "committed" in real.output
    assert people() == 1
    engine.dispose()


@pytest.mark.parametrize(
    ("value", "ok"),
    [("11010519491231002X", True), ("110105194912310021", False), ("1101051949123100", False)],
)
def test_id_number_check_digit(value: str, ok: bool) -> None:
    from gridsvc.errors import InvalidInput
    from gridsvc.services.people import check_id_number

    if ok:
        assert check_id_number(value) == value
    else:
        with pytest.raises(InvalidInput, match="身份证号"):
            check_id_number(value)


def test_cli_duties_records_coverage_and_chart(cli_db: str, tmp_path: Path) -> None:  # noqa: F811
    import geopandas as gpd

    from gridsvc.cli import app
    from gridsvc.models import Community
    from gridsvc.repositories.bulk import to_db_geometry
    from gridsvc.services.imports import create_cells, ensure_street

    engine = create_engine(cli_db)
    with Session(engine) as s:
        street_id = ensure_street(s, street_code="320102067", street_name="命令二街道")
        s.add(
            Community(
                code="320102067001",
                name="命令二社区",
                street_id=street_id,
                geom=to_db_geometry(shapely.box(118.9, 32.1, 118.92, 32.11)),
            )
        )
        s.flush()
        cells = gpd.GeoDataFrame(
            geometry=[
                shapely.box(118.9, 32.1, 118.91, 32.11),
                shapely.box(118.91, 32.1, 118.92, 32.11),
            ],
            crs=4326,
        )
        codes = create_cells(s, cells).codes
        s.commit()
    runner = CliRunner()
    duty = runner.invoke(
        app, ["people", "duties", "--level", "4", "--text", "格长每月走访全部住户"]
    )
    assert duty.exit_code == 0 and "格长每月走访全部住户" in duty.output
    sector = runner.invoke(
        app, ["people", "sector", "320102067001", "西片", "--cell", sorted(codes)[0]]
    )
    assert sector.exit_code == 0, sector.output
    org = runner.invoke(
        app,
        ["people", "record", "organisation", "--community", "320102067001", "--name", "某中学",
         "--kind", "学校", "--contact", "李老师", "--phone", "13700001111"],
    )  # fmt: skip
    assert org.exit_code == 0 and '"kind": "school"' in org.output
    missing = runner.invoke(app, ["people", "record", "visit"])
    assert missing.exit_code == 1 and "household" in missing.output
    out = tmp_path / "coverage.csv"
    cov = runner.invoke(app, ["people", "coverage", "320102067", "--csv", str(out)])
    assert cov.exit_code == 0, cov.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf") and "登记户数" in out.read_text("utf-8-sig")
    chart = tmp_path / "chart.png"
    drawn = runner.invoke(app, ["people", "chart", "320102067", "-o", str(chart)])
    assert drawn.exit_code == 0 and chart.read_bytes().startswith(b"\x89PNG")
    tree = tmp_path / "chart.json"
    assert runner.invoke(app, ["people", "chart", "320102067", "-o", str(tree)]).exit_code == 0
    assert "西片" in tree.read_text() and "未划片" in tree.read_text()
    engine.dispose()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("花名册.xlsx", b"PK\x03\x04 this is not a workbook"),
        ("花名册.xlsx", b""),
        ("花名册.csv", b"\xff\xfe\x00garbage\x00\x00"),
    ],
)
def test_garbage_roster_refused_and_nothing_written(
    client: TestClient, db: Session, small_street: SmallStreet, name: str, content: bytes
) -> None:
    """A broken XLSX, an empty file or undecodable CSV: a 4xx problem, and no row written."""
    from gridsvc.services.users import create_user

    create_user(db, username="roster_admin", password=TEST_PASSWORD, role="admin")
    headers = token_for(client, "roster_admin")
    before = _counts(db)
    r = client.post(
        "/api/v1/imports/roster",
        files={"file": (name, content)},
        data={"commit": "true"},
        headers=headers,
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _counts(db) == before
