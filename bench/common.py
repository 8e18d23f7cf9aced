"""Shared set-up for the benchmarks: a fresh, migrated database and machine facts."""

from __future__ import annotations

import os
import platform
import statistics
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
