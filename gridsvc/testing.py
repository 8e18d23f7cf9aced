"""Helpers for tests and benchmarks: gridsvc served by uvicorn in a child process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection, Engine, event


@contextlib.contextmanager
def serve_in_subprocess(database_url: str, *, workers: int = 1) -> Iterator[str]:
    """gridsvc on a free loopback port against `database_url`; yields its base URL and stops
    it afterwards. Raises RuntimeError if it does not answer /health within 30 s."""
    import httpx

    from gridsvc.settings import get_settings

    proxies = get_settings().app.forwarded_allow_ips.strip()  # as `gridsvc serve` does
    proxy_args = ["--forwarded-allow-ips", proxies] if proxies else ["--no-proxy-headers"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(
        os.environ,
        GRIDSVC_DATABASE_URL=database_url,
        GRIDSVC_LOG_LEVEL="WARNING",
        GRIDSVC_LOAD_DEMO="false",
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
            *proxy_args,
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError("gridsvc did not start within 30 s")
        yield base
    finally:
        server.terminate()
        server.wait(10)


@contextlib.contextmanager
def count_statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL round trips `engine` makes inside the block, as a list of statements: each
    statement executed, each BEGIN/COMMIT/ROLLBACK, and a pool pre-ping per checkout."""
    seen: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    def on_checkout(*_args: Any) -> None:
        if getattr(engine.pool, "_pre_ping", False):
            seen.append("SELECT 1 -- pool pre-ping")

    def transactional(name: str) -> Callable[..., None]:
        def on_event(conn: Connection, *_args: Any) -> None:
            if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                seen.append(name)

        return on_event

    listeners: list[tuple[Any, str, Callable[..., None]]] = [
        (engine, "before_cursor_execute", on_execute),
        (engine.pool, "checkout", on_checkout),
        (engine, "begin", transactional("BEGIN")),
        (engine, "commit", transactional("COMMIT")),
        (engine, "rollback", transactional("ROLLBACK")),
    ]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    try:
        yield seen
    finally:
        for target, name, fn in listeners:
            event.remove(target, name, fn)
