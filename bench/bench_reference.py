"""gridsvc's point lookup against a minimal FastAPI + asyncpg app doing the same (issue 14).

Loads the demo street into a fresh database, starts gridsvc (one uvicorn worker) and the
reference app (bench/reference_app.py: the same lookup SQL, the same JWT check with the same
secret, one worker), then runs wrk against each in interleaved pairs (ROUNDS × BENCH_SECONDS
each, alternating, the same random points) and prints req/s and p50/p95 of both and the
ratios. It also prints how many SQL statements one lookup request runs in gridsvc (counted in
process through the engine's events, with the principal cache warm, as in the server)."""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from bench.bench_lookup import WRK_SCRIPT, _prepare
from bench.common import fresh_database, machine, run_wrk, serve

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
DURATION = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))

_POSITIONAL = {"lon": "$1::float8", "lat": "$2::float8", "kind": "$3", "ST_SetSRID_1": "4326"}


def reference_sql() -> tuple[str, str]:
    """gridsvc's two lookup statements, compiled for PostgreSQL with asyncpg's $n parameters."""
    from gridsvc.repositories.cells import _LOOKUP_CELL, _LOOKUP_COMMUNITY

    out = []
    for statement in (_LOOKUP_CELL, _LOOKUP_COMMUNITY):
        sql = str(statement.compile(dialect=postgresql.dialect(paramstyle="named")))
        out.append(
            re.sub(r"(?<!:):(\w+)", lambda m: _POSITIONAL.get(m.group(1), "1"), sql)  # LIMIT 1
        )
    return out[0], out[1]


@contextmanager
def serve_reference(url: str) -> Iterator[str]:
    """The reference app on a free loopback port (one uvicorn worker); yields its base URL."""
    from gridsvc.settings import get_settings

    settings = get_settings()
    cell_sql, community_sql = reference_sql()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(
        os.environ,
        REF_DATABASE_URL=url.replace("postgresql+psycopg://", "postgresql://"),
        REF_JWT_SECRET=settings.jwt_secret(),
        REF_JWT_ALGORITHM=settings.auth.jwt_algorithm,
        REF_SQL_CELL=cell_sql,
        REF_SQL_COMMUNITY=community_sql,
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.reference_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                httpx.get(f"{base}/docs", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError("the reference app did not start within 30 s")
        yield base
    finally:
        server.terminate()
        server.wait(10)


def wrk(base: str, token: str, bounds: tuple[float, float, float, float]) -> dict[str, float]:
    """One wrk run: req/s, p50/p95 in ms, requests and errors."""
    script = WRK_SCRIPT % {
        "token": token,
        "x0": bounds[0],
        "y0": bounds[1],
        "dx": bounds[2] - bounds[0],
        "dy": bounds[3] - bounds[1],
    }
    return run_wrk(base, script, CONCURRENCY, DURATION)


def statements_per_lookup(url: str, password: str) -> tuple[int, int]:
    """SQL statements (and actor set_configs) of one lookup request in gridsvc, in process."""
    from fastapi.testclient import TestClient

    from gridsvc.db import engine as engine_module
    from gridsvc.main import create_app
    from gridsvc.settings import get_settings
    from gridsvc.testing import count_statements

    os.environ["GRIDSVC_DATABASE_URL"] = url
    for cached in (get_settings, engine_module.get_engine, engine_module._session_factory):
        cached.cache_clear()
    get_engine = engine_module.get_engine

    with TestClient(create_app()) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": "bench", "password": password}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with get_engine().connect() as conn:  # a point inside a cell
            lon, lat = conn.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
                    "FROM cell_version WHERE valid_to IS NULL LIMIT 1) t"
                )
            ).one()
        path = f"/api/v1/lookup?lon={lon:.6f}&lat={lat:.6f}"
        client.get(path, headers=headers).raise_for_status()  # the principal is now cached
        with count_statements(get_engine()) as seen:
            client.get(path, headers=headers).raise_for_status()
    return len(seen), sum("gridsvc.actor" in s for s in seen)


def main() -> None:
    """Start both servers, run the interleaved pairs, print the figures and the ratios."""
    url = fresh_database("gridsvc_bench_reference")
    _pts, password, bounds = _prepare(url)
    print(f"machine: {machine()}")
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    with serve(url) as base, serve_reference(url) as ref:
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "bench", "password": password}
        ).json()["access_token"]
        for target in (base, ref):  # warm-up: pools filled, statements prepared
            for _ in range(50):
                httpx.get(
                    f"{target}/api/v1/lookup?lon={bounds[0]}&lat={bounds[1]}",
                    headers={"Authorization": f"Bearer {token}"},
                )
        runs: dict[str, list[dict[str, float]]] = {"gridsvc": [], "reference": []}
        for i in range(ROUNDS):
            pair = [("gridsvc", base), ("reference", ref)]
            for name, target in pair if i % 2 == 0 else pair[::-1]:
                result = wrk(target, token, bounds)
                runs[name].append(result)
                print(
                    f"round {i + 1} {name:9}: {result['rate']:7,.0f} req/s, p50 "
                    f"{result['p50']:6.1f} ms, p95 {result['p95']:6.1f} ms, "
                    f"{result['n']} requests, errors {result['errors']}"
                )
    med = {
        name: {k: statistics.median(r[k] for r in rs) for k in ("rate", "p50", "p95")}
        for name, rs in runs.items()
    }
    ratios = [
        g["rate"] / r["rate"] for g, r in zip(runs["gridsvc"], runs["reference"], strict=True)
    ]
    for name, m in med.items():
        print(
            f"median {name:9}: {m['rate']:7,.0f} req/s, p50 {m['p50']:.1f} ms, "
            f"p95 {m['p95']:.1f} ms"
        )
    print(
        f"ratio gridsvc/reference: req/s {med['gridsvc']['rate'] / med['reference']['rate']:.2f} "
        f"(pairs {', '.join(f'{x:.2f}' for x in ratios)}), "
        f"p95 {med['gridsvc']['p95'] / med['reference']['p95']:.2f}×, "
        f"wrk -c{CONCURRENCY}, {ROUNDS} × {DURATION} s each"
    )
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    statements, actors = statements_per_lookup(url, password)
    print(f"SQL statements per lookup request in gridsvc: {statements} (actor set {actors}×)")


if __name__ == "__main__":
    main()
