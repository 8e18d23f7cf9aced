"""Incident statistics for a street with 100,000 incidents (set-based SQL, one GROUP BY).

Loads the demo street (3 communities, 33 cells), adds N synthetic incidents over a year by
COPY (attributed to the cell version of their report time by the import path's set-based
UPDATE; the database fills deadlines), carries ~85 % of them to closure at random times, then
times the statistics service: per cell × month, per community × month, per street overall,
and the overdue list count. Best and median of 5 runs each.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.common import describe, fresh_database, machine, timed

N = int(os.environ.get("BENCH_INCIDENTS", "100000"))
CATEGORIES = ("sanitation", "municipal", "safety", "dispute", "livelihood", "public_order", "other")


def _load(session: Session, now: datetime) -> str:
    from geodata.synth import SynthConfig, generate_street
    from gridsvc.repositories.bulk import copy_rows
    from gridsvc.services.assignment import attribute_incidents
    from gridsvc.services.demo import load_street

    loaded = load_street(session, generate_street(SynthConfig(seed=1)))
    session.execute(
        text("UPDATE cell_version SET valid_from = :t"), {"t": now - timedelta(days=400)}
    )
    import shapely

    area = shapely.from_wkb(
        bytes(session.scalar(text("SELECT ST_AsBinary(ST_Union(geom)) FROM community")))
    )
    x0, y0, x1, y1 = area.bounds
    rng = np.random.default_rng(5)
    shapely.prepare(area)
    lon, lat = np.empty(0), np.empty(0)
    while len(lon) < N:  # uniform points inside the street's communities
        x, y = rng.uniform(x0, x1, N), rng.uniform(y0, y1, N)
        keep = shapely.contains_xy(area, x, y)
        lon, lat = np.concatenate([lon, x[keep]]), np.concatenate([lat, y[keep]])
    lon, lat = lon[:N], lat[:N]
    reported = [now - timedelta(seconds=float(s)) for s in rng.uniform(0, 365 * 86400, N)]
    dispatch_min = rng.lognormal(3.0, 0.8, N)
    close_h = rng.lognormal(3.5, 1.0, N)
    fate = rng.random(N)
    rows = []
    for i in range(N):
        r = reported[i]
        dispatched = r + timedelta(minutes=float(dispatch_min[i]))
        closed = r + timedelta(hours=float(close_h[i]))
        is_closed = fate[i] < 0.85 and closed < now
        is_dispatched = fate[i] < 0.95 and dispatched < now
        status = "closed" if is_closed else ("dispatched" if is_dispatched else "filed")
        rows.append(
            (
                f"SRID=4326;POINT({lon[i]:.7f} {lat[i]:.7f})",
                CATEGORIES[i % len(CATEGORIES)],
                status,
                "resident",
                r.isoformat(),
                dispatched.isoformat() if is_dispatched or is_closed else None,
                closed.isoformat() if is_closed else None,
                "bench",
            )
        )
    start = time.perf_counter()
    copy_rows(
        session,
        "incident",
        (
            "location",
            "category",
            "status",
            "reporter_kind",
            "reported_at",
            "dispatched_at",
            "closed_at",
            "source",
        ),
        rows,
    )
    attribute_incidents(session)
    session.commit()
    session.execute(text("ANALYZE incident"))
    print(f"loaded {N:,} incidents (COPY + attribution) in {time.perf_counter() - start:.1f} s")
    return loaded.street_code


def main() -> None:
    """Load, then time the statistics."""
    from gridsvc.auth.principal import Principal
    from gridsvc.repositories import incidents as repo
    from gridsvc.services import incidents as svc

    url = fresh_database("gridsvc_bench_stats")
    engine = create_engine(url)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with Session(engine) as session:
        street_code = _load(session, now)
        street_id = repo.street_id(session, street_code)
        staff = Principal(id=0, username="bench", role="street_staff", street_id=street_id)
        total = session.scalar(
            text("SELECT count(*) FROM incident WHERE street_id = :s"), {"s": street_id}
        )
        print(f"machine: {machine()}")
        print(f"street {street_code}: {total:,} incidents")
        for by, period in (
            ("cell", "month"),
            ("community", "month"),
            ("street", "all"),
            ("cell", "day"),
        ):
            result: dict[str, dict] = {}  # type: ignore[type-arg]

            def run(by: str = by, period: str = period, out: dict = result) -> None:  # type: ignore[type-arg]
                out["r"] = svc.stats(session, staff, by=by, period=period, now=now)

            times = timed(run)
            rows = result["r"]["rows"]
            print(f"stats by {by} × {period}: {len(rows):,} rows; {describe(times)}")
        times = timed(
            lambda: repo.incident_list(
                session, staff, repo.IncidentFilter(overdue=True), now=now, limit=100, offset=0
            )
        )
        print(f"overdue list (first page of 100, with count): {describe(times)}")
    engine.dispose()


if __name__ == "__main__":
    main()
