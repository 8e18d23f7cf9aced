"""Coverage of a synthetic street of 200 cells and 100,000 households (geodata.synth, with the
demo's people and duties), as of today: the service call (two SQL statements, set-based), best
and median of several runs, plus the same as CSV. The issue's target: a street of about 50 cells
and 20,000 households "in well under a second"; the first figure here is five times that size.
"""

from __future__ import annotations

import os
import statistics
import time

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.common import describe, fresh_database, machine, timed
from geodata.synth import SynthConfig, generate_street
from gridsvc.auth.principal import Principal
from gridsvc.services.coverage import coverage, to_csv
from gridsvc.services.demo import load_street

REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
ADMIN = Principal(id=0, username="bench", role="admin")


def main() -> None:
    """Load the streets and time coverage."""
    url = fresh_database("gridsvc_bench_coverage")
    engine = create_engine(url)
    sizes = {
        "320102301": SynthConfig(
            seed=3,
            communities=10,
            households_per_community=10_000,
            cell_target_households=500,
            street_code="320102301",
            street_name="基准一街道",
        ),
        "320102302": SynthConfig(
            seed=4,
            communities=2,
            households_per_community=10_000,
            cell_target_households=400,
            street_code="320102302",
            street_name="基准二街道",
            origin=(118.95, 32.05),
        ),
    }
    print(machine())
    for code, config in sizes.items():
        start = time.perf_counter()
        street = generate_street(config)
        with Session(engine) as session:
            load_street(session, street)
            session.commit()
        print(f"{code}: generated and loaded in {time.perf_counter() - start:.1f} s")
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    for code in sizes:
        with Session(engine) as session:
            report = coverage(session, ADMIN, street_code=code)
            street_row = next(r for r in report["rows"] if r["level"] == "street")
            cells = sum(1 for r in report["rows"] if r["level"] == "cell")
            households = street_row["counts"]["households_registered"]
            seconds = timed(
                lambda code=code: coverage(session, ADMIN, street_code=code), repeat=REPEAT
            )
            csv_seconds = timed(
                lambda code=code: to_csv(coverage(session, ADMIN, street_code=code)), repeat=3
            )
            session.rollback()
        figures = street_row["figures"]
        print(
            f"{code}: {cells} cells, {households:,} households — coverage {describe(seconds)}"
            f" (p50 {statistics.median(seconds) * 1000:.0f} ms); with CSV {describe(csv_seconds)}"
        )
        print(
            "   street figures: "
            + ", ".join(
                f"{figures[k]['label']} {figures[k]['value']}"
                for k in (
                    "linked_share",
                    "visited_share",
                    "near_volunteer_share",
                    "volunteers_per_100_households",
                    "buildings_without_captain_share",
                )
            )
        )
    engine.dispose()


if __name__ == "__main__":
    main()
