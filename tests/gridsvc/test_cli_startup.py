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


def _imported(args: list[str]) -> set[str]:
    """Top-level packages `gridsvc ARGS` imports, from -X importtime (one line per module)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(GRIDSVC), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage" in done.stdout
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "typer" in names  # the listing really is there
    return names


@pytest.mark.parametrize("args", LIGHT_COMMANDS, ids=" ".join)
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    assert GRIDSVC.exists(), f"the console script is not installed at {GRIDSVC}"
    heavy = sorted(_imported(args) & HEAVY)
    assert heavy == [], f"`gridsvc {' '.join(args)}` imported {heavy}"
