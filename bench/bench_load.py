"""Bounded load test on loopback: a realistic mix against one uvicorn worker.

Serves the demo street (generated, seed 1) from a fresh database and sends, from CONNECTIONS
connections for DURATION seconds, a mix of what the clients of a street office do:

* 60 % cell map data — GET /api/v1/cells/{code} (one cell, GeoJSON) 20 %, GET
  /api/v1/communities/{code}/cells (a community's cells) 10 %, GET /api/v1/cells/{code}/buildings
  (the buildings of a cell) 30 %;
* 30 % point lookup — GET /api/v1/lookup at random points of the street;
* 10 % incident intake — POST /api/v1/incidents at random points and categories.

Reports throughput, p50/p95/p99 and errors (socket errors, timeouts and any unexpected status)
per request kind and overall. The load comes from `wrk` (C; Debian package) with a Lua script:
one connection per wrk thread, so the script can time each request itself (LuaJIT ffi,
CLOCK_MONOTONIC) and keep latencies per kind. Without wrk a Python thread pool does the same.

    python -m bench.bench_load          # BENCH_CONNECTIONS=8 BENCH_SECONDS=30 by default
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
DURATION = int(os.environ.get("BENCH_SECONDS", "30"))
CATEGORIES = ("sanitation", "municipal", "safety", "dispute", "livelihood", "public_order")
PASSWORD = "bench-password"

#: (kind, percentage of requests, expected status)
MIX = (
    ("cell", 20, 200),
    ("community_cells", 10, 200),
    ("buildings", 30, 200),
    ("lookup", 30, 200),
    ("intake", 10, 201),
)


@dataclass
class Site:
    """What the load needs to know about the served street."""

    cells: list[str]
    communities: list[str]
    bounds: tuple[float, float, float, float]


@dataclass
class KindResult:
    """Figures for one request kind."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    server_errors: int = 0

    def percentiles(self) -> tuple[float, float, float]:
        """p50, p95, p99 in milliseconds."""
        if not self.latencies_ms:
            return (float("nan"),) * 3  # type: ignore[return-value]
        q = np.percentile(np.array(self.latencies_ms), [50, 95, 99])
        return float(q[0]), float(q[1]), float(q[2])


@dataclass
class MixResult:
    """The outcome of one run of the mix."""

    tool: str
    connections: int
    seconds: float
    kinds: dict[str, KindResult]
    socket_errors: int = 0

    @property
    def requests(self) -> int:
        """Requests answered."""
        return sum(len(k.latencies_ms) for k in self.kinds.values())

    @property
    def errors(self) -> int:
        """Unexpected statuses plus socket errors and timeouts."""
        return sum(k.errors for k in self.kinds.values()) + self.socket_errors

    @property
    def server_errors(self) -> int:
        """5xx answers."""
        return sum(k.server_errors for k in self.kinds.values())

    def table(self) -> str:
        """A Markdown table of the figures, one row per kind and a total."""
        lines = [
            "| kind | share | requests | req/s | p50 ms | p95 ms | p99 ms | errors |",
            "|---|---|---|---|---|---|---|---|",
        ]
        total = KindResult()
        for kind, _, _ in MIX:
            k = self.kinds[kind]
            total.latencies_ms += k.latencies_ms
            total.errors += k.errors
            lines.append(self._row(kind, k))
        total.errors += self.socket_errors
        lines.append(self._row("**all**", total))
        return "\n".join(lines)

    def _row(self, label: str, k: KindResult) -> str:
        p50, p95, p99 = k.percentiles()
        n = len(k.latencies_ms)
        share = n / max(self.requests, 1) * 100
        return (
            f"| {label} | {share:.0f} % | {n} | {n / self.seconds:,.1f} | {p50:.1f} | "
            f"{p95:.1f} | {p99:.1f} | {k.errors} |"
        )


def prepare(url: str) -> Site:
    """Load the generated demo street and a bench admin into an empty, migrated database."""
    from geodata.synth import SynthConfig, generate_street
    from gridsvc.services.demo import load_street
    from gridsvc.services.users import create_user

    engine = create_engine(url)
    with Session(engine) as session:
        load_street(session, generate_street(SynthConfig(seed=1)))
        create_user(session, username="bench", password=PASSWORD, role="admin")
        session.commit()
        bounds = session.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                "FROM (SELECT ST_Extent(geom) e FROM community) t"
            )
        ).one()
        cells = list(session.scalars(text("SELECT code FROM cell WHERE kind = 'general'")))
        communities = list(session.scalars(text("SELECT code FROM community")))
    engine.dispose()
    return Site(sorted(cells), sorted(communities), tuple(float(v) for v in bounds))  # type: ignore[arg-type]


def sign_in(base: str) -> str:
    """A bearer token for the bench admin."""
    r = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": "bench", "password": PASSWORD}, timeout=30
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


# -- wrk ----------------------------------------------------------------------------------

WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local cells = {%(cells)s}
local communities = {%(communities)s}
local cats = {%(cats)s}
local x0, y0, dx, dy = %(x0)f, %(y0)f, %(dx)f, %(dy)f
local token = "Bearer %(token)s"
local get_headers = {["Authorization"] = token}
local post_headers = {["Authorization"] = token, ["Content-Type"] = "application/json"}

local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("id", counter)
end

init = function(args)
  math.randomseed(id * 7919)
  -- One file per thread (wrk cannot hand tables back from its threads safely).
  samples = io.open(string.format("%(prefix)s%%d.txt", id), "w")
  written = 0
end

local kind, started
request = function()
  local r = math.random(100)
  local path, method, body, headers
  if r <= %(cut_cell)d then
    kind = "cell"
    path = "/api/v1/cells/" .. cells[math.random(#cells)]
  elseif r <= %(cut_community)d then
    kind = "community_cells"
    path = "/api/v1/communities/" .. communities[math.random(#communities)] .. "/cells"
  elseif r <= %(cut_buildings)d then
    kind = "buildings"
    path = "/api/v1/cells/" .. cells[math.random(#cells)] .. "/buildings"
  elseif r <= %(cut_lookup)d then
    kind = "lookup"
    path = string.format("/api/v1/lookup?lon=%%.6f&lat=%%.6f",
      x0 + math.random() * dx, y0 + math.random() * dy)
  else
    kind = "intake"
    method = "POST"
    path = "/api/v1/incidents"
    body = string.format(
      '{"lon": %%.6f, "lat": %%.6f, "category": "%%s", "description": "load test"}',
      x0 + math.random() * dx, y0 + math.random() * dy, cats[math.random(#cats)])
  end
  started = now_us()
  if method == "POST" then
    return wrk.format("POST", path, post_headers, body)
  end
  return wrk.format("GET", path, get_headers)
end

response = function(status, headers, body)
  samples:write(kind, " ", status, " ", string.format("%%.3f", (now_us() - started) / 1000), "\n")
  written = written + 1
  if written %% 100 == 0 then samples:flush() end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SOCKET %%d %%d\n",
    e.connect + e.read + e.write + e.timeout, summary.duration))
end
"""


def _lua_list(values: list[str]) -> str:
    return ", ".join(f'"{v}"' for v in values)


def run_wrk(base: str, token: str, site: Site, connections: int, seconds: int) -> MixResult:
    """The mix from wrk: `connections` threads of one connection each, for `seconds`."""
    cuts = np.cumsum([share for _, share, _ in MIX]).tolist()
    x0, y0, x1, y1 = site.bounds
    folder = tempfile.mkdtemp(prefix="bench-load-")
    script = WRK_SCRIPT % {
        "prefix": f"{folder}/samples-",
        "cells": _lua_list(site.cells),
        "communities": _lua_list(site.communities),
        "cats": _lua_list(list(CATEGORIES)),
        "x0": x0,
        "y0": y0,
        "dx": x1 - x0,
        "dy": y1 - y0,
        "token": token,
        "cut_cell": cuts[0],
        "cut_community": cuts[1],
        "cut_buildings": cuts[2],
        "cut_lookup": cuts[3],
    }
    try:
        lua = Path(folder) / "mix.lua"
        lua.write_text(script)
        out = subprocess.run(
            [
                "wrk",
                f"-t{connections}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(lua),
                base,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        lines = [
            line.split()
            for f in sorted(Path(folder).glob("samples-*.txt"))
            for line in f.read_text().splitlines()
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    expected = {kind: status for kind, _, status in MIX}
    kinds = {kind: KindResult() for kind, _, _ in MIX}
    for kind, status, ms in lines:
        k = kinds[kind]
        k.latencies_ms.append(float(ms))
        k.errors += int(status) != expected[kind]
        k.server_errors += int(status) >= 500
    socket_errors, micros = 0, seconds * 1_000_000
    for line in out.splitlines():
        if line.startswith("SOCKET "):
            socket_errors, micros = (int(v) for v in line.split()[1:])
    return MixResult("wrk", connections, micros / 1e6, kinds, socket_errors)


# -- Python fallback ----------------------------------------------------------------------


def run_python(base: str, token: str, site: Site, connections: int, seconds: int) -> MixResult:
    """The same mix from `connections` Python threads (when wrk is not installed)."""
    kinds = {kind: KindResult() for kind, _, _ in MIX}
    lock = threading.Lock()
    socket_errors = 0
    deadline = time.monotonic() + seconds
    x0, y0, x1, y1 = site.bounds
    weights = [share for _, share, _ in MIX]

    def worker(seed: int) -> None:
        nonlocal socket_errors
        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            while time.monotonic() < deadline:
                kind, _, expected = rng.choices(MIX, weights)[0]
                started = time.perf_counter()
                try:
                    if kind == "cell":
                        r = client.get(f"/api/v1/cells/{rng.choice(site.cells)}")
                    elif kind == "community_cells":
                        r = client.get(f"/api/v1/communities/{rng.choice(site.communities)}/cells")
                    elif kind == "buildings":
                        r = client.get(f"/api/v1/cells/{rng.choice(site.cells)}/buildings")
                    elif kind == "lookup":
                        point = {"lon": rng.uniform(x0, x1), "lat": rng.uniform(y0, y1)}
                        r = client.get("/api/v1/lookup", params=point)
                    else:
                        r = client.post(
                            "/api/v1/incidents",
                            json={
                                "lon": rng.uniform(x0, x1),
                                "lat": rng.uniform(y0, y1),
                                "category": rng.choice(CATEGORIES),
                                "description": "load test",
                            },
                        )
                except httpx.HTTPError:
                    with lock:
                        socket_errors += 1
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    k = kinds[kind]
                    k.latencies_ms.append(elapsed)
                    k.errors += r.status_code != expected
                    k.server_errors += r.status_code >= 500

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return MixResult("python", connections, time.monotonic() - start, kinds, socket_errors)


def run_mix(base: str, token: str, site: Site, connections: int, seconds: int) -> MixResult:
    """The mix, from wrk when installed, else from Python threads."""
    if shutil.which("wrk"):
        return run_wrk(base, token, site, connections, seconds)
    return run_python(base, token, site, connections, seconds)


def main() -> None:
    """Start the server, warm up, run the bounded load, print the figures, stop the server."""
    from bench.common import fresh_database, machine, serve

    url = fresh_database("gridsvc_bench_load")
    site = prepare(url)
    with serve(url) as base:
        token = sign_in(base)
        run_mix(base, token, site, 2, 3)  # warm-up: caches, pool, plans
        result = run_mix(base, token, site, CONNECTIONS, DURATION)
    print(f"machine: {machine()}")
    print(
        f"{result.tool}, {result.connections} connections, {result.seconds:.0f} s, 1 uvicorn "
        f"worker: {result.requests / result.seconds:,.1f} req/s; {result.requests} requests, "
        f"{result.errors} errors ({result.server_errors} × 5xx, "
        f"{result.socket_errors} socket errors/timeouts)"
    )
    print(f"demo street: {len(site.cells)} cells, {len(site.communities)} communities")
    print(result.table())


if __name__ == "__main__":
    main()
