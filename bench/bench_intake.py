"""Incident intake over HTTP: one uvicorn worker, concurrent clients on loopback.

Serves the demo street (33 cells with their 格长, a year of incidents) from a fresh database,
signs in as an admin and POSTs /api/v1/incidents for random points and categories: each report
is routed (cell at report time, boundary distance and neighbour, duplicate search), assigned,
written with its 立案 event and committed. Load from `wrk` (C client, Lua script) for DURATION
seconds at CONCURRENCY connections; without wrk, a bounded Python asyncio client.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time

import httpx
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.common import describe_wrk, fresh_database, machine, run_wrk, serve

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
DURATION = int(os.environ.get("BENCH_SECONDS", "20"))
CATEGORIES = ("sanitation", "municipal", "safety", "dispute", "livelihood", "public_order")

WRK_SCRIPT = """
math.randomseed(11)
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Content-Type"] = "application/json"
local cats = {%(cats)s}
request = function()
  local lon = %(x0)f + math.random() * %(dx)f
  local lat = %(y0)f + math.random() * %(dy)f
  local body = string.format(
    '{"lon": %%.6f, "lat": %%.6f, "category": "%%s", "description": "bench"}',
    lon, lat, cats[math.random(#cats)])
  return wrk.format(nil, "/api/v1/incidents", nil, body)
end
response = function(status, headers, body)
  if status ~= 201 then bad = (bad or 0) + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%.3f %%.3f %%.3f\\n", summary.requests,
    summary.duration, summary.errors.status + summary.errors.connect + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def _prepare(url: str) -> tuple[str, tuple[float, float, float, float]]:
    from geodata.synth import SynthConfig, generate_street
    from gridsvc.services.demo import load_street
    from gridsvc.services.users import create_user

    engine = create_engine(url)
    with Session(engine) as session:
        load_street(session, generate_street(SynthConfig(seed=1)))
        create_user(session, username="bench", password="bench-password", role="admin")
        session.commit()
        bounds = session.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                "FROM (SELECT ST_Extent(geom) e FROM community) t"
            )
        ).one()
    engine.dispose()
    return "bench-password", tuple(float(v) for v in bounds)  # type: ignore[return-value]


def _wrk(base: str, token: str, bounds: tuple[float, float, float, float]) -> str:
    script = WRK_SCRIPT % {
        "token": token,
        "cats": ", ".join(f'"{c}"' for c in CATEGORIES),
        "x0": bounds[0],
        "y0": bounds[1],
        "dx": bounds[2] - bounds[0],
        "dy": bounds[3] - bounds[1],
    }
    return describe_wrk(run_wrk(base, script, CONCURRENCY, DURATION), CONCURRENCY, DURATION)


async def _load(
    base: str, token: str, n: int, bounds: tuple[float, ...]
) -> tuple[list[float], int]:
    rng = np.random.default_rng(3)
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for _ in range(n):
        queue.put_nowait(
            {
                "lon": float(rng.uniform(bounds[0], bounds[2])),
                "lat": float(rng.uniform(bounds[1], bounds[3])),
                "category": str(rng.choice(CATEGORIES)),
                "description": "bench",
            }
        )
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            body = queue.get_nowait()
            t = time.perf_counter()
            r = await client.post(f"{base}/api/v1/incidents", json=body, headers=headers)
            latencies.append(time.perf_counter() - t)
            errors += r.status_code != 201

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return latencies, errors


def main() -> None:
    """Start the server, run the load, print the figures, stop the server."""
    url = fresh_database("gridsvc_bench_intake")
    password, bounds = _prepare(url)
    with serve(url) as base:
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "bench", "password": password}
        ).json()["access_token"]
        asyncio.run(_load(base, token, 100, bounds))  # warm-up
        print(f"machine: {machine()}")
        if shutil.which("wrk"):
            print(_wrk(base, token, bounds))
        else:
            start = time.perf_counter()
            latencies, errors = asyncio.run(_load(base, token, REQUESTS, bounds))
            elapsed = time.perf_counter() - start
            q = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
            print(
                f"{len(latencies)} reports, {CONCURRENCY} connections, 1 worker: "
                f"{len(latencies) / elapsed:,.0f} incidents/s; p50 {q[0]:.1f} ms, "
                f"p95 {q[1]:.1f} ms, p99 {q[2]:.1f} ms; errors {errors}"
            )
    engine = create_engine(url)
    with engine.connect() as conn:
        flags = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE needs_confirmation), "
                "count(*) FILTER (WHERE duplicate_of_id IS NOT NULL), "
                "count(*) FILTER (WHERE queue <> 'cell') FROM incident WHERE source = 'api'"
            )
        ).one()
    engine.dispose()
    print(
        f"written: {flags[0]} incidents via the API; {flags[1]} near a boundary, "
        f"{flags[2]} possible duplicates, {flags[3]} in a community/street queue"
    )


if __name__ == "__main__":
    main()
