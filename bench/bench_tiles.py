"""Vector tiles of one street in a many-street city (issue 14 item 5): time and size per tile.

Loads the demo generator's streets into one database (``BENCH_STREETS``, default 10: street 1
and more streets beside it, as ``bench_growth`` builds them), then requests every tile covering
street 1 at zooms 14–17 (``BENCH_ZOOMS``) over HTTP from one uvicorn worker, as that street's
staff (scoped, personal fields included: the most expensive view), layer by layer and combined.
Each tile is requested once cold (no ETag) after one warm-up pass; prints median and p95 per
zoom and layer, the tile sizes, and — the comparison a user would otherwise make — the same
SQL run straight through asyncpg (no HTTP, no auth, no ETag), in the same run, with the ratio.
Goal (issue 14): median < 20 ms, p95 < 100 ms at z14–z17.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import statistics
import time
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.bench_growth import _load
from bench.common import fresh_database, machine, serve

STREETS = int(os.environ.get("BENCH_STREETS", "10"))
ZOOMS = [int(z) for z in os.environ.get("BENCH_ZOOMS", "14,15,16,17").split(",")]
LAYERS = ["cells", "buildings", "incidents", "volunteers", "all"]
PASSWORD = "bench-password-1"


def _tiles(z: int, bbox: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    def tile(lon: float, lat: float) -> tuple[int, int]:
        n = 1 << z
        y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
        return int((lon + 180) / 360 * n), int(y)

    x0, y1 = tile(bbox[0], bbox[1])
    x1, y0 = tile(bbox[2], bbox[3])
    return [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _as_sent(
    url: str, jobs: list[tuple[list[str], Any, int, int, int]]
) -> list[tuple[str, list[Any]]]:
    """The SQL and parameters gridsvc sends for each tile (captured from its engine), as
    asyncpg takes them ($1 … parameters)."""
    from sqlalchemy import event

    from gridsvc.repositories import tiles as repo

    engine = create_engine(url)
    sent: list[tuple[str, dict[str, Any]]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:  # fmt: skip
        sent.append((statement, dict(params)))

    out = []
    with Session(engine) as session:
        for layers, view, z, x, y in jobs:
            event.listen(engine, "before_cursor_execute", capture)
            try:
                repo.tile(session, layers, view, z, x, y)
            finally:
                event.remove(engine, "before_cursor_execute", capture)
            statement, params = sent.pop()
            names: list[str] = []

            def number(match: re.Match[str], names: list[str] = names) -> str:
                if match[1] not in names:
                    names.append(match[1])
                return f"${names.index(match[1]) + 1}"

            sql = re.sub(r"%\((\w+)\)s", number, statement)
            values = [params[n] for n in names]  # psycopg's Binary wrapper → bytes
            out.append((sql, [v.obj if type(v).__name__ == "Binary" else v for v in values]))
    engine.dispose()
    return out


async def _reference(url: str, statements: list[tuple[str, list[Any]]]) -> list[float]:
    """Seconds per tile for the same SQL through one asyncpg connection (after one warm-up)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        out = []
        for sql, args in statements:
            await conn.fetchval(sql, *args)
        for sql, args in statements:
            start = time.perf_counter()
            await conn.fetchval(sql, *args)
            out.append(time.perf_counter() - start)
        return out
    finally:
        await conn.close()


def main() -> None:
    """Build the city, time every tile of street 1, print the table."""
    from gridsvc.auth.principal import Principal
    from gridsvc.repositories import tiles as repo
    from gridsvc.services import tiles as svc
    from gridsvc.services.users import ScopeSpec, create_user

    print(machine())
    url = fresh_database("gridsvc_bench_tiles")
    seconds = _load(url, 0, STREETS)
    engine = create_engine(url)
    with Session(engine) as session:
        user = create_user(
            session,
            username="bench",
            password=PASSWORD,
            role="street_staff",
            scope=ScopeSpec("street", "320102001"),
        )
        session.commit()
        principal = Principal(
            id=user.id, username="bench", role=user.role, street_id=user.street_id
        )
        bbox = session.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                "ST_Extent(co.geom) AS e FROM community co JOIN street s ON s.id = co.street_id "
                "WHERE s.code = '320102001') AS x"
            )
        ).one()
        counts = {
            t: session.scalar(text(f"SELECT count(*) FROM {t}"))
            for t in ("cell", "building", "household", "incident")
        }
    engine.dispose()
    print(
        f"{STREETS} streets ({counts['cell']} cells, {counts['building']} buildings, "
        f"{counts['household']} households, {counts['incident']} incidents) loaded in "
        f"{seconds:.0f} s; street 1 spans {bbox[2] - bbox[0]:.4f}° × {bbox[3] - bbox[1]:.4f}°"
    )
    view = repo.TileView(principal=principal, personal=True)
    jobs = [(layer, z, x, y) for layer in LAYERS for z in ZOOMS for x, y in _tiles(z, tuple(bbox))]
    http: dict[tuple[str, int], list[float]] = {}
    sizes: dict[tuple[str, int], list[int]] = {}
    with serve(url) as base:
        client = httpx.Client(base_url=base, timeout=120)
        token = client.post(
            "/api/v1/auth/token", data={"username": "bench", "password": PASSWORD}
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        for layer, z, x, y in jobs:  # warm-up: plans, caches, the principal check
            client.get(f"/api/v1/tiles/{layer}/{z}/{x}/{y}.mvt").raise_for_status()
        for layer, z, x, y in jobs:
            start = time.perf_counter()
            r = client.get(f"/api/v1/tiles/{layer}/{z}/{x}/{y}.mvt")
            http.setdefault((layer, z), []).append(time.perf_counter() - start)
            r.raise_for_status()
            sizes.setdefault((layer, z), []).append(len(r.content))
        floor = []  # the cheapest signed-in request: the stack's own cost per request
        for _ in range(50):
            start = time.perf_counter()
            client.get("/api/v1/me").raise_for_status()
            floor.append(time.perf_counter() - start)
        lookup = []  # one SQL statement and one thread hop: the point lookup, same run
        lon, lat = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
        for _ in range(50):
            start = time.perf_counter()
            client.get("/api/v1/lookup", params={"lon": lon, "lat": lat}).raise_for_status()
            lookup.append(time.perf_counter() - start)
        etag_job = next(j for j in jobs if j[0] == "cells")
        path = "/api/v1/tiles/{}/{}/{}/{}.mvt".format(*etag_job)
        etag = client.get(path).headers["ETag"]
        revalidate = []
        for _ in range(20):
            start = time.perf_counter()
            assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
            revalidate.append(time.perf_counter() - start)
    ref_jobs = []
    for layer, z, x, y in jobs:
        shown = [n for n in svc.layer_names(layer) if svc.LAYERS[n].minzoom <= z]
        ref_jobs.append((shown, view, z, x, y))
    ref_seconds = asyncio.run(_reference(url, _as_sent(url, ref_jobs)))
    reference: dict[tuple[str, int], list[float]] = {}
    for (layer, z, _, _), s in zip(jobs, ref_seconds, strict=True):
        reference.setdefault((layer, z), []).append(s)

    print(
        "\n| layer | zoom | tiles | median | p95 | asyncpg median | ratio | median size | largest |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for layer in LAYERS:
        for z in ZOOMS:
            t = http[(layer, z)]
            ref = reference[(layer, z)]
            size = sizes[(layer, z)]
            print(
                f"| {layer} | {z} | {len(t)} | {statistics.median(t) * 1000:.1f} ms | "
                f"{_p95(t) * 1000:.1f} ms | {statistics.median(ref) * 1000:.1f} ms | "
                f"{statistics.median(ref) / statistics.median(t):.2f} | "
                f"{statistics.median(size) / 1024:.1f} KiB | {max(size) / 1024:.1f} KiB |"
            )
    every = [s for v in http.values() for s in v]
    print(
        f"\nall {len(every)} tiles: median {statistics.median(every) * 1000:.1f} ms, "
        f"p95 {_p95(every) * 1000:.1f} ms; asyncpg median "
        f"{statistics.median(ref_seconds) * 1000:.1f} ms; a 304 revalidation of a cells tile: "
        f"median {statistics.median(revalidate) * 1000:.1f} ms; GET /api/v1/me (no SQL, the "
        f"stack's floor): median {statistics.median(floor) * 1000:.1f} ms; GET /api/v1/lookup "
        f"(one statement, one thread hop): median {statistics.median(lookup) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
