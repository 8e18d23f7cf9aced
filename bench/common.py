"""Shared set-up for the benchmarks: a fresh, migrated database and machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gridsvc.db import migrate
from gridsvc.testing import serve_in_subprocess

SHARED_DATA = Path(
    os.environ.get("GRIDSVC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def fresh_database(name: str = "gridsvc_bench") -> str:
    """URL of an empty, migrated database (GRIDSVC_DATABASE_URL, else the embedded cluster)."""
    url = os.environ.get("GRIDSVC_BENCH_DATABASE_URL")
    if url:
        migrate.upgrade(url)
        return url
    from gridsvc.localdb import embedded_cluster

    cluster = embedded_cluster()
    cluster.start()
    cluster.drop_database(name)
    url = cluster.ensure_database(name)
    migrate.upgrade(url)
    return url


def machine() -> str:
    """One line describing this machine."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def timed(fn: Callable[[], object], repeat: int = 5) -> list[float]:
    """Wall-clock seconds of `repeat` runs of fn."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def describe(seconds: list[float]) -> str:
    """best / median of a list of timings."""
    return f"best {min(seconds) * 1000:.0f} ms, median {statistics.median(seconds) * 1000:.0f} ms"


#: gridsvc served in a child process (shared with the tests).
serve = serve_in_subprocess


def run_wrk(base: str, script: str, connections: int, seconds: int) -> dict[str, float]:
    """One wrk run (1 thread) with a Lua script whose ``done`` prints
    ``RESULT requests duration_us errors p50_ms p95_ms p99_ms``: req/s, the latencies, the
    request and error counts."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", f.name, base],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    n, micros, errors, p50, p95, p99 = line.split()[1:]
    return {
        "rate": int(n) / (int(micros) / 1e6),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "n": int(n),
        "errors": int(errors),
    }


def describe_wrk(result: dict[str, float], connections: int, seconds: int) -> str:
    """One line for a wrk result."""
    return (
        f"wrk, {connections} connections, {seconds} s, 1 worker: {result['rate']:,.0f} req/s; "
        f"p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, p99 {result['p99']:.1f} ms; "
        f"{result['n']} requests, errors {result['errors']}"
    )
