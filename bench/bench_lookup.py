"""Point → cell lookup over HTTP: one uvicorn worker, concurrent clients on loopback.

Serves the demo street from a fresh database, signs in as the admin, then sends GET
/api/v1/lookup for random points inside the street from `CONCURRENCY` connections.
Reports requests/s and p50/p95/p99 latency. The load comes from `wrk` (Debian package; C, so the
client does not steal the server's CPU) with a Lua script that picks random points, for
DURATION seconds; without wrk, from a Python asyncio client, bounded to REQUESTS requests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import time

import httpx
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.common import describe_wrk, fresh_database, machine, run_wrk, serve

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "5000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
DURATION = int(os.environ.get("BENCH_SECONDS", "20"))

WRK_SCRIPT = """
math.randomseed(7)
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  local lon = %(x0)f + math.random() * %(dx)f
  local lat = %(y0)f + math.random() * %(dy)f
  return wrk.format("GET", string.format("/api/v1/lookup?lon=%%.6f&lat=%%.6f", lon, lat))
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%.3f %%.3f %%.3f\\n", summary.requests,
    summary.duration, summary.errors.status + summary.errors.connect + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def _wrk(base: str, token: str, bounds: tuple[float, float, float, float]) -> str:
    script = WRK_SCRIPT % {
        "token": token,
        "x0": bounds[0],
        "y0": bounds[1],
        "dx": bounds[2] - bounds[0],
        "dy": bounds[3] - bounds[1],
    }
    return describe_wrk(run_wrk(base, script, CONCURRENCY, DURATION), CONCURRENCY, DURATION)


def _prepare(url: str) -> tuple[np.ndarray, str, tuple[float, float, float, float]]:
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
    rng = np.random.default_rng(3)
    pts = np.column_stack(
        [rng.uniform(bounds[0], bounds[2], REQUESTS), rng.uniform(bounds[1], bounds[3], REQUESTS)]
    )
    return pts, "bench-password", tuple(float(v) for v in bounds)  # type: ignore[return-value]


async def _load(base: str, token: str, pts: np.ndarray) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[float, float]] = asyncio.Queue()
    for p in pts:
        queue.put_nowait((float(p[0]), float(p[1])))
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=CONCURRENCY)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            lon, lat = queue.get_nowait()
            t = time.perf_counter()
            r = await client.get(
                f"{base}/api/v1/lookup", params={"lon": lon, "lat": lat}, headers=headers
            )
            latencies.append(time.perf_counter() - t)
            errors += r.status_code != 200

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return latencies, errors


def main() -> None:
    """Start the server, run the bounded load, print the figures, stop the server."""
    url = fresh_database("gridsvc_bench_lookup")
    pts, password, bounds = _prepare(url)
    with serve(url) as base:
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "bench", "password": password}
        ).json()["access_token"]
        asyncio.run(_load(base, token, pts[:200]))  # warm-up
        print(f"machine: {machine()}")
        if shutil.which("wrk"):
            print(_wrk(base, token, bounds))
            return
        start = time.perf_counter()
        latencies, errors = asyncio.run(_load(base, token, pts))
        elapsed = time.perf_counter() - start
    q = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
    print(f"machine: {machine()}")
    print(
        f"{len(latencies)} lookups, {CONCURRENCY} connections, 1 worker: "
        f"{len(latencies) / elapsed:,.0f} req/s; p50 {q[0]:.1f} ms, p95 {q[1]:.1f} ms, "
        f"p99 {q[2]:.1f} ms; errors {errors}; mean {statistics.mean(latencies) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
