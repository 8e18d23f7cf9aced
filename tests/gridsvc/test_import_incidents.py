"""Incidents from a spreadsheet with Chinese headers and GCJ-02 coordinates (as AMap exports)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geodata.china import wgs84_to_gcj02
from geodata.readers import read_features
from gridsvc.errors import InvalidInput
from gridsvc.models import Incident
from gridsvc.services.imports import import_incidents
from tests.gridsvc.conftest import SmallStreet

# Centres of the small street's four cells (WGS84), in the fixture's order of squares.
X0, Y0, D = 118.90, 32.10, 0.004


def _centre(i: int, j: int) -> tuple[float, float]:
    return X0 + (i + 0.5) * D, Y0 + (j + 0.5) * D


def _sheet(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "事件.xlsx"
    pd.DataFrame(rows).to_excel(path, index=False)
    return path


def test_xlsx_incidents_land_in_their_cells(
    db: Session, small_street: SmallStreet, tmp_path: Path
) -> None:
    # The partition has been in force since 2025; one report predates it (2024).
    db.execute(
        text(
            "UPDATE cell_version SET valid_from = '2025-01-01' WHERE cell_id IN "
            "(SELECT id FROM cell WHERE code = ANY(:codes))"
        ),
        {"codes": small_street.cell_codes},
    )
    wgs = [_centre(0, 1), _centre(1, 0), _centre(0, 0)]  # NW, SE, SW cells
    lon, lat = wgs84_to_gcj02(np.array([p[0] for p in wgs]), np.array([p[1] for p in wgs]))
    path = _sheet(
        tmp_path,
        [
            {
                "经度": lon[0],
                "纬度": lat[0],
                "类别": "环境卫生",
                "描述": "垃圾堆放",
                "上报时间": "2026-03-01 09:30",
            },
            {
                "经度": lon[1],
                "纬度": lat[1],
                "类别": "dispute",
                "描述": "邻里纠纷",
                "上报时间": "2026-03-02 14:00",
            },
            {
                "经度": lon[2],
                "纬度": lat[2],
                "类别": "其他",
                "描述": "旧事",
                "上报时间": "2024-06-01 08:00",
            },
        ],
    )
    summary = import_incidents(db, read_features(path, kind="point", datum="gcj02"), source="xlsx")
    assert summary.inserted == 3 and summary.assigned_to_cells == 2
    rows = db.execute(
        text(
            "SELECT i.category, c.code, i.reported_at FROM incident i JOIN cell c ON c.id = i.cell_id "
            "WHERE i.description IN ('垃圾堆放', '邻里纠纷') ORDER BY i.reported_at"
        )
    ).all()
    codes = sorted(small_street.cell_codes)  # reading order: NW, NE, SW, SE
    assert [(r.category, r.code) for r in rows] == [("sanitation", codes[0]), ("dispute", codes[3])]
    # Reported before any cell existed: no cell, but still in the community's queue.
    old = db.execute(
        text("SELECT cell_id, community_id FROM incident WHERE description = '旧事'")
    ).one()
    assert old.cell_id is None and old.community_id is not None
    # 09:30 Beijing time is 01:30 UTC.
    assert rows[0].reported_at.astimezone(pd.Timestamp(0, tz="UTC").tz).hour == 1


def test_bad_category_names_the_row_and_writes_nothing(
    db: Session, small_street: SmallStreet, tmp_path: Path
) -> None:
    before = db.scalar(select(func.count()).select_from(Incident))
    x, y = _centre(0, 0)
    path = _sheet(
        tmp_path,
        [
            {"lon": x, "lat": y, "category": "环境卫生"},
            {"lon": x, "lat": y, "category": "外星人"},
        ],
    )
    with pytest.raises(InvalidInput, match="row 3: unknown category '外星人'"), db.begin_nested():
        import_incidents(db, read_features(path, kind="point"), source="bad")
    assert db.scalar(select(func.count()).select_from(Incident)) == before
