"""Building → cell assignment in SQL: 100,000 synthetic buildings and 1,000 cells.

Cells are a 40 × 25 grid over one community; buildings are small rotated rectangles scattered
at random, about 8 % of them straddling a cell boundary (the largest-share rule then matters).
"""

from __future__ import annotations

import time

import numpy as np
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.common import fresh_database, machine
from gridsvc.repositories.bulk import copy_rows, ewkb_hex
from gridsvc.services.assignment import assign_buildings_to_cells

N_BUILDINGS = 100_000
NX, NY = 40, 25


def main() -> None:
    """Load the synthetic city, then time a full assignment (and a re-run with nothing to move)."""
    rng = np.random.default_rng(7)
    url = fresh_database()
    engine = create_engine(url)
    x0, y0, step = 118.70, 32.00, 0.004  # ≈ 380 × 445 m cells
    with Session(engine) as session:
        session.execute(text("INSERT INTO district (code, name) VALUES ('320102', '玄武区')"))
        session.execute(
            text(
                "INSERT INTO street (code, name, district_id) "
                "SELECT '320102001', '基准街道', id FROM district"
            )
        )
        area = shapely.box(x0, y0, x0 + NX * step, y0 + NY * step)
        session.execute(
            text(
                "INSERT INTO community (code, name, street_id, geom) SELECT "
                "'320102001001', '基准社区', id, ST_Multi(ST_GeomFromText(:wkt, 4326)) "
                "FROM street"
            ),
            {"wkt": area.wkt},
        )
        cells = [
            shapely.box(x0 + i * step, y0 + j * step, x0 + (i + 1) * step, y0 + (j + 1) * step)
            for j in range(NY)
            for i in range(NX)
        ]
        session.execute(
            text(
                "INSERT INTO cell (code, name, community_id) SELECT '320102001001' || lpad(g::text, 4, '0'), "
                "'网格' || g, (SELECT id FROM community) FROM generate_series(1, :n) g"
            ),
            {"n": len(cells)},
        )
        ids = session.execute(text("SELECT id FROM cell ORDER BY code")).scalars().all()
        community_id = session.execute(text("SELECT id FROM community")).scalar_one()
        copy_rows(
            session, "cell_version", ("cell_id", "geom"), zip(ids, ewkb_hex(cells), strict=True)
        )
        cx = rng.uniform(x0, x0 + NX * step, N_BUILDINGS)
        cy = rng.uniform(y0, y0 + NY * step, N_BUILDINGS)
        w, h = rng.uniform(1e-4, 4e-4, N_BUILDINGS), rng.uniform(1e-4, 2e-4, N_BUILDINGS)
        boxes = shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        boxes = np.array(
            [
                shapely.affinity.rotate(b, a)
                for b, a in zip(boxes, rng.uniform(0, 90, N_BUILDINGS), strict=True)
            ],
            dtype=object,
        )
        boxes = shapely.intersection(boxes, area)
        t = time.perf_counter()
        copy_rows(
            session,
            "building",
            ("source", "source_id", "kind", "households", "community_id", "footprint"),
            (
                ("bench", str(i), "residential", 40, community_id, g)
                for i, g in enumerate(ewkb_hex([shapely.MultiPolygon([b]) for b in boxes]))
            ),
        )
        session.commit()
        load = time.perf_counter() - t
        session.execute(text("ANALYZE"))
        print(f"machine: {machine()}")
        print(
            f"loaded {N_BUILDINGS:,} buildings with COPY in {load:.1f} s "
            f"({N_BUILDINGS / load:,.0f} rows/s)"
        )
        straddling = session.execute(
            text(
                "SELECT count(*) FROM building b WHERE (SELECT count(*) FROM cell_version v "
                "WHERE ST_Intersects(v.geom, b.footprint)) > 1"
            )
        ).scalar_one()
        print(f"buildings straddling a cell boundary: {straddling:,}")
        for label in ("first assignment", "re-run, nothing to move"):
            t = time.perf_counter()
            result = assign_buildings_to_cells(session)
            session.commit()
            dt = time.perf_counter() - t
            print(
                f"{label}: {result.considered:,} buildings, {result.changed:,} changed, "
                f"{result.unassigned} unassigned in {dt:.2f} s → {result.considered / dt:,.0f} "
                "buildings/s"
            )


if __name__ == "__main__":
    main()
