"""Preview latency of a split, over HTTP, in a community of 3,000 buildings and 30 cells.

Each request splits a different cell by a north–south line through its middle (a dry run:
nothing is written), so every preview does the real work: plan, apply in a savepoint,
re-assign buildings around the cell, measure the impact, validate the whole community.
Target from the issue: p95 under 200 ms.
"""

from __future__ import annotations

import os
import statistics
import time

import httpx
import numpy as np
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.common import fresh_database, machine, serve
from gridsvc.repositories.bulk import copy_rows, ewkb_hex

N_BUILDINGS, NX, NY = 3_000, 6, 5
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "60"))


def _community(url: str) -> list[str]:
    import geopandas as gpd

    from gridsvc.models import Community
    from gridsvc.repositories.bulk import to_db_geometry
    from gridsvc.services.imports import create_cells, ensure_street
    from gridsvc.services.users import create_user

    rng = np.random.default_rng(11)
    x0, y0, step = 118.80, 32.00, 0.004
    area = shapely.box(x0, y0, x0 + NX * step, y0 + NY * step)
    engine = create_engine(url)
    with Session(engine) as s:
        street_id = ensure_street(s, street_code="320102321", street_name="基准街道")
        community = Community(
            code="320102321001", name="基准社区", street_id=street_id, geom=to_db_geometry(area)
        )
        s.add(community)
        s.flush()
        cx = rng.uniform(x0, x0 + NX * step, N_BUILDINGS)
        cy = rng.uniform(y0, y0 + NY * step, N_BUILDINGS)
        boxes = shapely.intersection(shapely.box(cx - 1e-4, cy - 6e-5, cx + 1e-4, cy + 6e-5), area)
        copy_rows(
            s,
            "building",
            ("source", "source_id", "kind", "households", "community_id", "footprint"),
            (
                ("bench", str(i), "residential", 10, community.id, g)
                for i, g in enumerate(ewkb_hex(boxes))
            ),
        )
        cells = [
            shapely.box(x0 + i * step, y0 + j * step, x0 + (i + 1) * step, y0 + (j + 1) * step)
            for j in range(NY)
            for i in range(NX)
        ]
        summary = create_cells(s, gpd.GeoDataFrame(geometry=cells, crs=4326))
        create_user(s, username="bench", password="bench-password", role="admin")
        s.commit()
        s.execute(text("ANALYZE"))
    engine.dispose()
    return summary.codes


def main() -> None:
    """Time REQUESTS split previews, one at a time, and print p50/p95."""
    url = fresh_database("gridsvc_bench_preview")
    codes = _community(url)
    with serve(url) as base:
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "bench", "password": "bench-password"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            latencies = []
            for i in range(REQUESTS + 5):
                code = codes[i % len(codes)]
                cell = shapely.geometry.shape(
                    client.get(f"/api/v1/cells/{code}").json()["geometry"]
                )
                minx, miny, maxx, maxy = cell.bounds
                mid = (minx + maxx) / 2
                body = {
                    "op": "split",
                    "cell": code,
                    "reason": "bench",
                    "line": {
                        "type": "LineString",
                        "coordinates": [[mid, miny - 1e-4], [mid, maxy + 1e-4]],
                    },
                }
                t = time.perf_counter()
                r = client.post("/api/v1/communities/320102321001/redraw/preview", json=body)
                dt = time.perf_counter() - t
                assert r.status_code == 200, r.text
                if i >= 5:  # warm-up
                    latencies.append(dt * 1000)
    q = np.percentile(latencies, [50, 95])
    print(f"machine: {machine()}")
    print(
        f"split preview, {N_BUILDINGS:,} buildings / {len(codes)} cells, {len(latencies)} "
        f"requests: p50 {q[0]:.0f} ms, p95 {q[1]:.0f} ms, mean {statistics.mean(latencies):.0f} ms"
    )


if __name__ == "__main__":
    main()
