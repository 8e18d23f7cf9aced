"""`gridsvc --help` and the help of each sub-command start without the heavy libraries.

Start-up time is what a user notices (it was ~1.1 s, mostly importing geopandas, pandas,
shapely, pyproj, sqlalchemy …); bench/bench_cli.py measures it. Here each command runs as the
user runs it, the installed console script in a fresh interpreter, and ``-X importtime`` lists
every module it imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from gridsvc.db import migrate
from tests.conftest import scratch_database

#: Libraries that only the commands working on data, maps or the server may import.
HEAVY = frozenset(
    {
        "alembic",
        "fastapi",
        "folium",
        "geoalchemy2",
        "geopandas",
        "matplotlib",
        "numpy",
        "pandas",
        "playwright",
        "psycopg",
        "pyogrio",
        "pyproj",
        "shapely",
        "sqlalchemy",
        "starlette",
        "uvicorn",
    }
)

GRIDSVC = Path(sys.executable).with_name("gridsvc")

LIGHT_COMMANDS = [
    ["--help"],
    ["users", "--help"],
    ["users", "list", "--help"],
    ["cells", "--help"],
    ["cells", "validate", "--help"],
    ["import", "buildings", "--help"],
    ["db", "--help"],
    ["incidents", "--help"],
]


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """`gridsvc ARGS` in a fresh interpreter with -X importtime (one stderr line per module)."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", str(GRIDSVC), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "100", **env},
    )


def _imported(done: subprocess.CompletedProcess[str]) -> set[str]:
    """The top-level packages a finished run imported."""
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "typer" in names  # the listing really is there
    return names


@pytest.mark.parametrize("args", LIGHT_COMMANDS, ids=" ".join)
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    assert GRIDSVC.exists(), f"the console script is not installed at {GRIDSVC}"
    done = _run(args)
    assert "Usage" in done.stdout
    heavy = sorted(_imported(done) & HEAVY)
    assert heavy == [], f"`gridsvc {' '.join(args)}` imported {heavy}"


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return migrate.current_revision(engine)
    finally:
        engine.dispose()


def test_code_head_is_alembics_head() -> None:
    """The head read from the migration files is Alembic's (else every command imports it)."""
    assert migrate.code_head() == migrate.head_revision()


def test_command_on_a_current_database_does_not_load_alembic(database_url: str) -> None:
    """`gridsvc users list` on a migrated database: no migration machinery is loaded."""
    with scratch_database("gridsvc_cli_startup") as url:
        names = _imported(_run(["users", "list"], GRIDSVC_DATABASE_URL=url))
    assert "alembic" not in names
    assert {"pandas", "geopandas", "pyproj", "folium", "matplotlib", "fastapi"}.isdisjoint(names)


@pytest.mark.parametrize("behind", ["0006", None], ids=["one-behind", "never-migrated"])
def test_command_still_migrates_a_database_that_is_behind(
    database_url: str, behind: str | None
) -> None:
    with scratch_database("gridsvc_cli_startup", migrated=behind is not None) as url:
        if behind:
            migrate.downgrade(url, behind)
        assert _revision(url) == behind
        done = _run(["users", "list"], GRIDSVC_DATABASE_URL=url)
        assert done.returncode == 0, done.stderr[-2000:]
        assert _revision(url) == migrate.head_revision()
