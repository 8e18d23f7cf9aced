"""Does a request about one target cost the same in a bigger city? (issue 14, "cost follows
the target, not the city").

Loads generated demo streets into one database in steps (BENCH_STREETS, default 1,10,30:
the first street, then more streets beside it, each with its communities, cells, buildings,
households, people and a year of incidents) and, after each step, times the same requests about
the first street over HTTP (one uvicorn worker): its first community's overview page, a cell page,
that community's coverage, and a point lookup. Prints a growth table: the figures should stay
flat (within 30 %) as the city grows.
"""

from __future__ import annotations

import os
import statistics
import time

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.common import fresh_database, machine, serve

STEPS = [int(s) for s in os.environ.get("BENCH_STREETS", "1,10,30").split(",")]
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))


def _street_config(i: int):  # type: ignore[no-untyped-def]
    """Street i of the city: its own code, seed and place (a 10-wide grid, 0.05° apart)."""
    from geodata.synth import SynthConfig

    return SynthConfig(
        seed=42 + i,
        street_code=f"320102{i + 1:03d}",
        street_name=f"第{i + 1}街道",
        origin=(118.80 + 0.05 * (i % 10), 32.05 + 0.05 * (i // 10)),
    )


def _load(url: str, first: int, last: int) -> float:
    from geodata.synth import generate_street
    from gridsvc.services.demo import load_street

    engine = create_engine(url)
    start = time.perf_counter()
    with Session(engine) as session:
        for i in range(first, last):
            load_street(session, generate_street(_street_config(i)))
            session.commit()
        session.execute(text("ANALYZE"))
        session.commit()
    engine.dispose()
    return time.perf_counter() - start


def _median_ms(client: httpx.Client, path: str, **params: str) -> float:
    client.get(path, params=params).raise_for_status()  # warm-up (plans, caches), not timed
    seconds = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) * 1000


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        out = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("cell", "building", "household", "person", "incident")
        }
    engine.dispose()
    return out


def main() -> None:
    """Load the city step by step and print the growth table."""
    from gridsvc.services.users import create_user

    print(machine())
    url = fresh_database("gridsvc_bench_growth")
    loaded = 0
    rows = []
    for streets in STEPS:
        seconds = _load(url, loaded, streets)
        if loaded == 0:
            engine = create_engine(url)
            with Session(engine) as session:
                create_user(session, username="bench", password="bench-password-1", role="admin")
                session.commit()
            engine.dispose()
        loaded = streets
        counts = _counts(url)
        with serve(url) as base:
            client = httpx.Client(base_url=base, timeout=600)
            token = client.post(
                "/api/v1/auth/token", data={"username": "bench", "password": "bench-password-1"}
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            community = "320102001001"
            cells = client.get(f"/api/v1/communities/{community}/cells").json()["features"]
            cell = cells[0]["properties"]["code"]
            x, y = 118.80 + 0.003, 32.05 + 0.003
            figures = {
                "overview": _median_ms(client, f"/ui/communities/{community}"),
                "cell page": _median_ms(client, f"/ui/cells/{cell}"),
                "coverage": _median_ms(client, f"/api/v1/communities/{community}/coverage"),
                "lookup": _median_ms(client, "/api/v1/lookup", lon=str(x), lat=str(y)),
            }
        rows.append((streets, counts, seconds, figures))
        print(
            f"{streets} streets ({counts['cell']} cells, {counts['building']} buildings, "
            f"{counts['household']} households, {counts['incident']} incidents; loaded in "
            f"{seconds:.0f} s): " + ", ".join(f"{k} {v:.0f} ms" for k, v in figures.items())
        )
    print("\n| streets | cells | households | overview | cell page | coverage | lookup |")
    print("|---|---|---|---|---|---|---|")
    base_figures = rows[0][3]
    for streets, counts, _, figures in rows:
        cells = " | ".join(
            f"{figures[k]:.0f} ms ({figures[k] / base_figures[k]:.2f}×)" for k in figures
        )
        print(f"| {streets} | {counts['cell']} | {counts['household']} | {cells} |")


if __name__ == "__main__":
    main()
