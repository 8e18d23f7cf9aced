"""Coverage on the real Nanjing 新街口 buildings with synthetic households and people, checked
against an independent geopandas computation (UTM zone 50N, largest-share overlay, metric
distances), cell by cell."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geodata.readers import read_features
from gridsvc.auth.principal import Principal
from gridsvc.models import Community
from gridsvc.repositories.bulk import copy_rows, reserve_ids, to_db_geometry
from gridsvc.services.coverage import coverage
from gridsvc.services.imports import create_cells, ensure_street, import_buildings
from gridsvc.settings import get_settings

UTM50N = 32650
ADMIN = Principal(id=0, username="t", role="admin")
DISTANCE = 300.0


@pytest.mark.shared_data
def test_coverage_matches_an_independent_geopandas_computation(db: Session, nanjing: Path) -> None:
    today = date(2026, 11, 1)  # a fixed as-of date; visits and roles are dated from it
    import_buildings(
        db,
        read_features(nanjing / "buildings.geojson", kind="polygon"),
        source="nj-cov",
        geo=get_settings().geo,
    )
    buildings = gpd.read_postgis(
        text("SELECT id, households, footprint FROM building WHERE source = 'nj-cov'"),
        db.connection(),
        geom_col="footprint",
    ).set_geometry("footprint")
    # A street and community around the buildings, cut into a 4×3 grid of cells.
    minx, miny, maxx, maxy = buildings.total_bounds
    pad = 0.0005
    box = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    street_id = ensure_street(db, street_code="320102077", street_name="新街口街道")
    db.add(
        Community(
            code="320102077001", name="新街口社区", street_id=street_id, geom=to_db_geometry(box)
        )
    )
    db.flush()
    xs = np.linspace(box.bounds[0], box.bounds[2], 5)
    ys = np.linspace(box.bounds[1], box.bounds[3], 4)
    grid = gpd.GeoDataFrame(
        geometry=[
            shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(4) for j in range(3)
        ],
        crs=4326,
    )
    codes = create_cells(db, grid, reason="grid").codes
    db.execute(text("UPDATE cell_version SET valid_from = now() - interval '1 year'"))
    grid["code"] = codes

    # Synthetic households (0–12 per building), people, volunteers, links, visits, captains.
    rng = np.random.default_rng(5)
    per_building = rng.integers(0, 13, len(buildings)) * (rng.random(len(buildings)) < 0.7)
    h_building = np.repeat(buildings["id"].to_numpy(), per_building)
    n = len(h_building)
    households = pd.DataFrame(
        {
            "building_id": h_building,
            "size": rng.integers(1, 6, n),
            "low_income": rng.random(n) < 0.05,
            "elderly_alone": rng.random(n) < 0.08,
            "volunteer": rng.random(n) < 0.015,
            "party": rng.choice([None, "in_service", "retired"], n, p=[0.9, 0.06, 0.04]),
            "linked": rng.random(n) < 0.2,
            "visited_days_ago": np.where(rng.random(n) < 0.4, rng.integers(0, 90, n), -1),
        }
    )
    households["id"] = reserve_ids(db, "household", n)
    copy_rows(
        db,
        "household",
        ("id", "building_id", "size", "low_income", "elderly_alone"),
        households[["id", "building_id", "size", "low_income", "elderly_alone"]]
        .astype(object)
        .itertuples(index=False),
    )
    team = db.execute(
        text(
            "INSERT INTO volunteer_team (name, kind) VALUES ('治安志愿服务队', 'public_security') RETURNING id"
        )
    ).scalar_one()
    person_ids = reserve_ids(db, "person", n)
    households["person_id"] = person_ids
    copy_rows(
        db,
        "person",
        ("id", "name", "household_id", "party_status", "volunteer_team_id"),
        (
            (
                int(pid),
                "居民",
                int(hid),
                party if isinstance(party, str) else None,
                team if vol else None,
            )
            for pid, hid, party, vol in zip(
                person_ids,
                households["id"],
                households["party"],
                households["volunteer"],
                strict=True,
            )
        ),
    )
    member = int(person_ids[np.flatnonzero(households["party"].notna())[0]])
    copy_rows(
        db,
        "linked_household",
        ("person_id", "household_id", "starts_on"),
        (
            (member, int(h), today - timedelta(days=10))
            for h in households.loc[households["linked"], "id"]
        ),
    )
    visited = households[households["visited_days_ago"] >= 0]
    copy_rows(
        db,
        "visit",
        ("household_id", "visited_on"),
        (
            (int(h), today - timedelta(days=int(d)))
            for h, d in zip(visited["id"], visited["visited_days_ago"], strict=True)
        ),
    )
    residential = buildings[(buildings["households"] > 0) | buildings["id"].isin(h_building)]
    captained = residential["id"].to_numpy()[rng.random(len(residential)) < 0.5]
    copy_rows(
        db,
        "role_assignment",
        ("person_id", "role", "building_id", "starts_on"),
        ((member, "building_captain", int(b), today - timedelta(days=5)) for b in captained),
    )
    db.flush()

    report = coverage(db, ADMIN, street_code="320102077", as_of=today, distance_m=DISTANCE)
    sql = {r["cell_code"]: r["counts"] for r in report["rows"] if r["level"] == "cell"}

    # ---- independent computation in geopandas --------------------------------------------
    b_utm = buildings.to_crs(UTM50N)
    cells_utm = grid.to_crs(UTM50N)
    pieces = gpd.overlay(b_utm[["id", "footprint"]], cells_utm, how="intersection")
    pieces["area"] = pieces.area
    best = pieces.sort_values(["id", "area", "code"], ascending=[True, False, True])
    cell_of = best.drop_duplicates("id").set_index("id")["code"]
    homes = b_utm.set_index("id").loc[
        households.loc[households["volunteer"], "building_id"].unique()
    ]
    home_points = homes.representative_point()
    points = b_utm.set_index("id").representative_point()

    def near(distance: float) -> pd.Series:
        hits = gpd.sjoin(
            gpd.GeoDataFrame(geometry=points),
            gpd.GeoDataFrame(geometry=home_points.buffer(distance, 64)),
            predicate="within",
        )
        return pd.Series(points.index.isin(hits.index), index=points.index)

    hh = households.assign(cell=households["building_id"].map(cell_of))
    hh["near_lo"] = hh["building_id"].map(near(DISTANCE - 1))
    hh["near_hi"] = hh["building_id"].map(near(DISTANCE + 1))
    hh["recent"] = (hh["visited_days_ago"] >= 0) & (hh["visited_days_ago"] < 30)
    checked = 0
    for code, g in hh.groupby("cell"):
        got = sql[code]
        assert got["households_registered"] == len(g), code
        assert got["residents"] == int(g["size"].sum())
        assert got["flag_low_income"] == int(g["low_income"].sum())
        assert got["flag_elderly_alone"] == int(g["elderly_alone"].sum())
        assert got["volunteers"] == int(g["volunteer"].sum())
        assert got["party_in_service"] == int((g["party"] == "in_service").sum())
        assert got["households_linked"] == int(g["linked"].sum())
        assert got["households_visited"] == int(g["recent"].sum())
        assert (
            int(g["near_lo"].sum()) <= got["households_near_volunteer"] <= int(g["near_hi"].sum())
        )
        checked += 1
    assert checked >= 8  # most of the 12 cells hold households
    for code in grid["code"]:
        in_cell = cell_of[cell_of == code].index
        res = residential[residential["id"].isin(in_cell)]
        assert sql[code]["buildings"] == len(in_cell)
        assert sql[code]["households_estimated"] == int(
            buildings.set_index("id").loc[in_cell, "households"].sum()
        )
        assert sql[code]["buildings_without_captain"] == int((~res["id"].isin(captained)).sum())
    # The walking-distance figure is not trivial on this data: some households are out of reach.
    street = next(r for r in report["rows"] if r["level"] == "street")["figures"]
    assert 0 < street["near_volunteer_share"]["value"] < 1
