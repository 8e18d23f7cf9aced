"""Web pages and exports end to end: a demo street served by gridsvc (one worker).

Measures, for a generated street of COMMUNITIES communities (about 11 cells each):
- server time of the street's community overview page and of a cell page, and their HTML sizes;
- time to first map paint in headless Chromium (navigation start → first vector path drawn),
  internet blocked, for the cell page and the overview;
- the street's PNG and PDF coverage-map exports and its GeoPackage over HTTP.
The pure rendering of a 50-cell, 20,000-building street is measured in bench_maps.py.
"""

from __future__ import annotations

import os
import statistics
import time

import httpx
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.common import fresh_database, machine, serve

COMMUNITIES = int(os.environ.get("BENCH_COMMUNITIES", "5"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
]


def _load(url: str) -> tuple[str, str]:
    from geodata.synth import SynthConfig, generate_street
    from gridsvc.services.demo import load_street
    from gridsvc.services.users import create_user

    engine = create_engine(url)
    with Session(engine) as session:
        loaded = load_street(session, generate_street(SynthConfig(communities=COMMUNITIES)))
        create_user(session, username="bench", password="bench-password-1", role="admin")
        session.commit()
    engine.dispose()
    print(f"street: {loaded}")
    return "bench", "bench-password-1"


def _timed_get(client: httpx.Client, path: str, **params: str) -> tuple[list[float], int]:
    seconds, size = [], 0
    for _ in range(REPEAT):
        start = time.perf_counter()
        response = client.get(path, params=params)
        seconds.append(time.perf_counter() - start)
        response.raise_for_status()
        size = len(response.content)
    return seconds, size


def _first_paint(base: str, user: str, password: str, paths: list[str]) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {p: [] for p in paths}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route(
            "**/*",
            lambda r: r.continue_() if r.request.url.startswith(base) else r.abort(),
        )
        page.goto(f"{base}/ui/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/ui/**")
        for path in paths:
            for _ in range(REPEAT):
                page.goto(f"{base}{path}", wait_until="commit")
                page.wait_for_selector(".leaflet-overlay-pane path", timeout=60_000)
                # performance.now() counts from this navigation's start.
                out[path].append(page.evaluate("performance.now()") / 1000)
        browser.close()
    return out


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.0f} ms (best {min(values) * 1000:.0f})"


def main() -> None:
    """Run the measurements and print them."""
    print(machine())
    url = fresh_database("gridsvc_bench_pages")
    user, password = _load(url)
    with serve(url) as base:
        client = httpx.Client(base_url=base, timeout=300)
        token = client.post(
            "/api/v1/auth/token", data={"username": user, "password": password}
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        communities = client.get("/api/v1/communities").json()["features"]
        community = communities[0]["properties"]["code"]
        street = communities[0]["properties"]["street_code"]
        cells = client.get("/api/v1/cells", params={"limit": 1000}).json()
        cell = cells["features"][0]["properties"]["code"]
        print(f"{len(communities)} communities, {cells['numberMatched']} cells")

        for label, path in [
            ("cell page", f"/ui/cells/{cell}"),
            ("community overview page", f"/ui/communities/{community}"),
        ]:
            seconds, size = _timed_get(client, path)
            print(f"{label}: server {_ms(seconds)}, HTML {size / 1024:.0f} KiB")
        for fmt in ("png", "pdf", "gpkg"):
            seconds, size = _timed_get(client, f"/api/v1/exports/street/{street}", format=fmt)
            print(f"street export {fmt}: {_ms(seconds)}, {size / 1024:.0f} KiB")
        paints = _first_paint(
            base, user, password, [f"/ui/cells/{cell}", f"/ui/communities/{community}"]
        )
        for path, seconds in paints.items():
            print(f"first map paint in Chromium, {path}: {_ms(seconds)}")


if __name__ == "__main__":
    main()
