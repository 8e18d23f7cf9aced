"""Import of the real Nanjing buildings: gridsvc vs `ogr2ogr -f PostgreSQL` on the same file.

gridsvc's figure covers the whole import a user runs: read + validate/repair + datum step +
household estimates + COPY + upsert + community/cell assignment, committed. ogr2ogr's covers
reading and loading (with PG_USE_COPY) in a new table, its process start included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.common import SHARED_DATA, describe, fresh_database, machine, timed
from geodata.readers import read_features
from gridsvc.services.imports import import_buildings
from gridsvc.settings import get_settings

REPEAT = 5


def main() -> None:
    """Print features/s for gridsvc and ogr2ogr, and their ratio."""
    path = SHARED_DATA / "nanjing_xinjiekou" / "buildings.geojson"
    if not path.exists():
        sys.exit(f"missing {path}")
    url = fresh_database()
    engine = create_engine(url)
    n = 0

    def ours() -> None:
        nonlocal n
        with Session(engine) as session:
            session.execute(text("DELETE FROM building WHERE source = 'bench'"))
            result = read_features(path, kind="polygon")
            summary = import_buildings(session, result, source="bench", geo=get_settings().geo)
            session.commit()
            n = summary.inserted

    ours_t = timed(ours, REPEAT)
    print(f"machine: {machine()}")
    print(
        f"gridsvc import: {n} buildings, {describe(ours_t)}, "
        f"{n / min(ours_t):,.0f} features/s (best)"
    )
    ogr = shutil.which("ogr2ogr")
    if not ogr:
        print("ogr2ogr not found (apt-get install gdal-bin): no comparison")
        return
    u = make_url(url)
    pg = f"PG:host={u.host} port={u.port} dbname={u.database} user={u.username} password={u.password}"

    def theirs() -> None:
        subprocess.run(
            [
                ogr,
                "-f",
                "PostgreSQL",
                pg,
                str(path),
                "-nln",
                "ogr_buildings",
                "-overwrite",
                "-lco",
                "GEOMETRY_NAME=geom",
                "-nlt",
                "PROMOTE_TO_MULTI",
                "--config",
                "PG_USE_COPY",
                "YES",
            ],
            check=True,
            capture_output=True,
        )

    ogr_t = timed(theirs, REPEAT)
    print(f"ogr2ogr -f PostgreSQL: {describe(ogr_t)}, {n / min(ogr_t):,.0f} features/s (best)")
    print(
        f"ratio gridsvc/ogr2ogr time (best): {min(ours_t) / min(ogr_t):.2f} "
        f"(< 1 means gridsvc is faster)"
    )


if __name__ == "__main__":
    main()
