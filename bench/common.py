"""Shared set-up for the benchmarks: a fresh, migrated database and machine facts."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gridsvc.db import migrate

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


@contextlib.contextmanager
def serve(url: str, workers: int = 1) -> Iterator[str]:
    """gridsvc on a free loopback port against `url`; yields the base URL, stops it after."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(
        os.environ, GRIDSVC_DATABASE_URL=url, GRIDSVC_LOG_LEVEL="WARNING", GRIDSVC_LOAD_DEMO="false"
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gridsvc.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(10)
