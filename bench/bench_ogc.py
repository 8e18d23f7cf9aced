"""OGC API – Features over HTTP: gridsvc (one uvicorn worker) serving a generated street.

Measures, in one run and on one database:
- one /items request of 1,000 households (GeoJSON, scope filter and masking applied), the
  first page and a deep one (keyset: the same cost), and of all the street's buildings
  (fewer than 1,000 in the generated street) — median of BENCH_REPEAT;
- against the tool a user would otherwise use: ``ogr2ogr`` reading the same 1,000 households
  straight from PostGIS (``PG:`` + ``-sql``) into GeoJSON on stdout, same repeats; the ratio;
- the whole households collection copied by GDAL's OAPIF driver through gridsvc (``ogr2ogr``
  from ``OAPIF:``, pages of 1,000) against ``ogr2ogr`` of the same rows from ``PG:``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time

import httpx
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from bench.common import fresh_database, machine, serve

COMMUNITIES = int(os.environ.get("BENCH_COMMUNITIES", "5"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "10"))


def _load(url: str) -> str:
    from geodata.synth import SynthConfig, generate_street
    from gridsvc.services.demo import load_street
    from gridsvc.services.users import create_user, desktop_token

    engine = create_engine(url)
    with Session(engine) as session:
        loaded = load_street(session, generate_street(SynthConfig(communities=COMMUNITIES)))
        create_user(session, username="bench", password="bench-password-1", role="admin")
        session.flush()
        token = desktop_token(session, "bench", 1)
        session.commit()
    engine.dispose()
    print(f"street: {loaded}")
    return token


def _median_ms(fn, repeat: int = REPEAT) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) * 1000


def main() -> None:
    """Run the benchmark and print its figures."""
    url = fresh_database("gridsvc_bench_ogc")
    token = _load(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        buildings = int(conn.execute(text("SELECT count(*) FROM building")).scalar_one())
        households = int(conn.execute(text("SELECT count(*) FROM household")).scalar_one())
        deep = int(
            conn.execute(
                text("SELECT id FROM household ORDER BY id OFFSET :n LIMIT 1"),
                {"n": max(households - 1001, 0)},
            ).scalar_one()
        )
    engine.dispose()
    print(f"machine: {machine()}; load: {os.getloadavg()[0]:.2f}")
    print(f"buildings: {buildings:,}, households: {households:,}")
    headers = {"Authorization": f"Bearer {token}"}
    ogr = shutil.which("ogr2ogr")
    u = make_url(url)
    pg = f"PG:host={u.host} port={u.port} dbname={u.database} user={u.username}" + (
        f" password={u.password}" if u.password else ""
    )
    with serve(url) as base, httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        items = "/ogc/collections/{}/items"

        def page(collection: str, expected: int, **params: str | int) -> None:
            r = client.get(items.format(collection), params={"limit": 1000, **params})
            r.raise_for_status()
            assert r.json()["numberReturned"] == expected

        first = _median_ms(lambda: page("households", 1000))
        later = _median_ms(lambda: page("households", 1000, after=deep - 1))
        polygons = _median_ms(lambda: page("buildings", min(buildings, 1000)))
        print(
            f"items, 1,000 households: first page median {first:.0f} ms, last page {later:.0f} ms"
        )
        print(f"items, {min(buildings, 1000)} buildings (polygons): median {polygons:.0f} ms")
        if not ogr:
            print("ogr2ogr not found (apt-get install gdal-bin): no comparison")
            return
        columns = (
            "h.id, h.building_id, b.name AS building, c.code AS cell_code, h.unit, h.room, "
            "h.size, h.head_name, h.phone, h.low_income, h.elderly_alone, h.disabled, "
            "h.extreme_poverty, h.floating, h.rental, ST_PointOnSurface(b.footprint) AS geom "
            "FROM household h JOIN building b ON b.id = h.building_id "
            "LEFT JOIN cell c ON c.id = b.cell_id"
        )
        sql = f"SELECT {columns} ORDER BY h.id LIMIT 1000"

        def direct() -> None:
            subprocess.run(
                [ogr, "-f", "GeoJSON", "/vsistdout/", pg, "-sql", sql],
                check=True,
                capture_output=True,
            )

        theirs = _median_ms(direct)
        print(
            f"ogr2ogr PG: → GeoJSON, the same 1,000 households: median {theirs:.0f} ms; "
            f"ratio gridsvc/ogr2ogr {first / theirs:.2f}"
        )
        oapif = [
            *["--config", "GDAL_HTTP_HEADERS", f"Authorization: Bearer {token}"],
            *["-oo", "PAGE_SIZE=1000"],
        ]

        def through_oapif() -> None:
            subprocess.run(
                [ogr, *oapif, "-f", "GeoJSON", "/vsistdout/", f"OAPIF:{base}/ogc", "households"],
                check=True,
                capture_output=True,
            )

        def from_pg() -> None:
            subprocess.run(
                [ogr, "-f", "GeoJSON", "/vsistdout/", pg, "-sql", f"SELECT {columns}"],
                check=True,
                capture_output=True,
            )

        whole = _median_ms(through_oapif, 3)
        table = _median_ms(from_pg, 3)
        print(
            f"whole households collection ({households:,}): ogr2ogr OAPIF: through gridsvc median "
            f"{whole:.0f} ms, ogr2ogr PG: median {table:.0f} ms, ratio {whole / table:.2f}"
        )


if __name__ == "__main__":
    main()
