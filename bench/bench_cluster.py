"""Read throughput with read replicas, and what synchronous replication costs a write (issue 17).

Starts the local HA cluster (`gridsvc cluster up`: etcd, three Patroni members, PgBouncer) in
var/cluster-bench, loads the demo street on the primary, then serves gridsvc with
BENCH_WORKERS uvicorn workers and 0, 1, 2 and 3 read members in GRIDSVC_REPLICA_URLS (the two
streaming replicas, then the primary as the third reader), and sends point lookups and
community cell lists from BENCH_CONCURRENCY asyncio connections for BENCH_REQUESTS requests
each. Per run it prints req/s, latency and how the reads spread over the members (transactions
counted in pg_stat_database on each member).

Then, writes: BENCH_WRITES sequential POST /api/v1/people with Patroni's synchronous_mode on
(the commit waits for a replica's flush) and off (asynchronous streaming), alternating
blocks so drift in the machine's load hits both alike.

Everything (clients, three PostgreSQL servers, etcd, gridsvc workers) shares this machine's
cores: on 2 cores the replicas add no CPU, so the figures show the mechanism (reads spread,
none lost) and its overhead, not the scale-out of separate hosts; see bench/README.md.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import psycopg

from bench.common import machine, serve
from gridsvc.cluster import LocalCluster
from gridsvc.settings import PROJECT_ROOT

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "3000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
WRITES = int(os.environ.get("BENCH_WRITES", "200"))
BASE_PORT = int(os.environ.get("BENCH_BASE_PORT", "28400"))


def _prepare(cluster: LocalCluster) -> tuple[tuple[float, float, float, float], str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from geodata.synth import SynthConfig, generate_street
    from gridsvc.services.demo import load_street
    from gridsvc.services.users import create_user

    engine = create_engine(cluster.primary_url())
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
        community = session.execute(text("SELECT code FROM community LIMIT 1")).scalar_one()
    engine.dispose()
    return tuple(float(v) for v in bounds), community  # type: ignore[return-value]


def _transactions(cluster: LocalCluster) -> list[int]:
    counts = []
    for i in range(3):
        with psycopg.connect(cluster.dsn(i)) as conn:
            counts.append(
                int(
                    conn.execute(
                        "SELECT xact_commit FROM pg_stat_database WHERE datname = 'gridsvc'"
                    ).fetchone()[0]
                )
            )
    return counts


async def _reads(base: str, token: str, paths: list[str]) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in paths:
        queue.put_nowait(p)
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            path = queue.get_nowait()
            t = time.perf_counter()
            try:
                r = await client.get(base + path, headers=headers)
            except httpx.TransportError:  # counted, not fatal: the figures say how many
                errors += 1
                continue
            latencies.append(time.perf_counter() - t)
            errors += r.status_code != 200

    start = time.perf_counter()
    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=CONCURRENCY), timeout=30
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return latencies, errors, time.perf_counter() - start


def _describe(label: str, latencies: list[float], errors: int, elapsed: float) -> str:
    q = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
    return (
        f"{label}: {len(latencies) / elapsed:,.0f} req/s; p50 {q[0]:.1f} ms, "
        f"p95 {q[1]:.1f} ms, p99 {q[2]:.1f} ms; errors {errors}"
    )


def _set_synchronous(cluster: LocalCluster, on: bool) -> None:
    cluster.patch_config({"synchronous_mode": on})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the primary's setting follows
        with psycopg.connect(cluster.dsn(cluster.leader() or 0)) as conn:
            names = conn.execute("SHOW synchronous_standby_names").fetchone()[0]
        if bool(names) == on:
            return
        time.sleep(0.3)
    raise RuntimeError("synchronous_standby_names did not follow synchronous_mode")


def _writes(base: str, token: str, community: str, n: int, tag: str) -> list[float]:
    out = []
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        for k in range(n):
            t = time.perf_counter()
            r = client.post(
                "/api/v1/people",
                json={"name": f"{tag}-{k}", "community": community, "phone": "13700000000"},
            )
            out.append(time.perf_counter() - t)
            assert r.status_code == 201, r.text
    return out


def main() -> None:
    """Start the cluster, run the read and write measurements, print them, stop it."""
    folder = PROJECT_ROOT / "var" / "cluster-bench"
    cluster = LocalCluster(Path(folder), BASE_PORT)
    print(f"machine: {machine()}; load before: {os.getloadavg()}")
    cluster.up()
    try:
        bounds, community = _prepare(cluster)
        rng = np.random.default_rng(3)
        lookups = [
            f"/api/v1/lookup?lon={x:.6f}&lat={y:.6f}"
            for x, y in zip(
                rng.uniform(bounds[0], bounds[2], REQUESTS),
                rng.uniform(bounds[1], bounds[3], REQUESTS),
                strict=True,
            )
        ]
        cells = [f"/api/v1/communities/{community}/cells"] * (REQUESTS // 4)
        leader = cluster.wait_healthy()
        readers = [i for i in range(3) if i != leader] + [leader]
        for n in (0, 1, 2, 3):
            members = readers[:n]
            os.environ["GRIDSVC_REPLICA_URLS"] = " ".join(cluster.member_url(i) for i in members)
            with ExitStack() as stack:
                base = stack.enter_context(serve(cluster.primary_url(), workers=WORKERS))
                token = httpx.post(
                    f"{base}/api/v1/auth/token",
                    data={"username": "bench", "password": "bench-password"},
                ).json()["access_token"]
                asyncio.run(_reads(base, token, lookups[:300]))  # warm-up
                before = _transactions(cluster)
                lat, err, el = asyncio.run(_reads(base, token, lookups))
                lat2, err2, el2 = asyncio.run(_reads(base, token, cells))
                spread = [a - b for a, b in zip(_transactions(cluster), before, strict=True)]
                names = ["primary" if i == leader else f"replica pg{i}" for i in range(3)]
                share = ", ".join(f"{names[i]} {spread[i]}" for i in range(3))
                print(
                    f"{n} read member(s) {[names[i] for i in members]}, {WORKERS} workers, "
                    f"{CONCURRENCY} connections:"
                )
                print("  " + _describe(f"{REQUESTS} lookups", lat, err, el))
                print("  " + _describe(f"{len(cells)} community cell lists", lat2, err2, el2))
                print(f"  transactions per member: {share}; load {os.getloadavg()[0]:.2f}")
        os.environ.pop("GRIDSVC_REPLICA_URLS")
        with serve(cluster.primary_url(), workers=1) as base:
            token = httpx.post(
                f"{base}/api/v1/auth/token",
                data={"username": "bench", "password": "bench-password"},
            ).json()["access_token"]
            _writes(base, token, community, 20, "warm")
            timings: dict[bool, list[float]] = {True: [], False: []}
            for block in range(4):
                for mode in (True, False) if block % 2 == 0 else (False, True):
                    _set_synchronous(cluster, mode)
                    timings[mode] += _writes(base, token, community, WRITES // 4, f"w{block}")
            _set_synchronous(cluster, True)
        for mode, values in timings.items():
            ms = sorted(v * 1000 for v in values)
            print(
                f"POST /api/v1/people, synchronous_mode {'on ' if mode else 'off'}: "
                f"median {statistics.median(ms):.1f} ms, p95 {ms[int(len(ms) * 0.95)]:.1f} ms "
                f"({len(ms)} sequential writes)"
            )
        print(f"load after: {os.getloadavg()}")
    finally:
        cluster.down(delete=True)


if __name__ == "__main__":
    main()
