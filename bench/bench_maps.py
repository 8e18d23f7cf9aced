"""Rendering a street: folium overview and cell page, PNG/PDF coverage maps, first paint in Chromium.

The street is geodata.synth's (5 communities × 3,000 households → 50 cells, 502 buildings),
filled up to 20,000 buildings with small rotated rectangles scattered inside the cells (as in
bench_assign), so the static export draws 20,000 footprints. Needs the map assets
(``python -m maps.assets fetch``) and, for the paint figure, Debian's chromium.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from bench.common import describe, machine, timed
from geodata.synth import SynthConfig, generate_street
from gridsvc.domain import HOUSEHOLD_FLAGS
from maps.interactive import cell_map, overview_map, render_html
from maps.static import coverage_map, to_pdf, to_png

N_BUILDINGS = 20_000


def _street() -> tuple[
    gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame
]:
    s = generate_street(SynthConfig(communities=5, households_per_community=3000))
    cells = s.cells.copy()
    rng = np.random.default_rng(7)
    extra = N_BUILDINGS - len(s.buildings)
    minx, miny, maxx, maxy = cells.total_bounds
    union = shapely.union_all(cells.geometry.to_numpy())
    shapely.prepare(union)
    x = rng.uniform(minx, maxx, extra * 2)
    y = rng.uniform(miny, maxy, extra * 2)
    keep = shapely.contains_xy(union, x, y)
    x, y = x[keep][:extra], y[keep][:extra]
    w, h = rng.uniform(8e-5, 2.5e-4, len(x)), rng.uniform(5e-5, 1.2e-4, len(x))
    boxes = shapely.box(x - w / 2, y - h / 2, x + w / 2, y + h / 2)
    filler = gpd.GeoDataFrame(
        {"name": [f"{i}栋" for i in range(len(x))], "households": rng.integers(6, 60, len(x))},
        geometry=boxes,
        crs=4326,
    )
    buildings = pd.concat(
        [s.buildings[["name", "households", "geometry"]], filler], ignore_index=True
    )
    buildings = gpd.GeoDataFrame(buildings, geometry="geometry", crs=4326)
    hit = gpd.sjoin(
        gpd.GeoDataFrame(geometry=buildings.representative_point(), crs=4326),
        cells[["code", "geometry"]],
        predicate="within",
    )
    buildings["cell"] = hit["code"].groupby(level=0).first().reindex(buildings.index)
    cells["households"] = cells["code"].map(buildings.groupby("cell")["households"].sum()).fillna(0)
    cells["leader"] = [f"格长{i:02d}" for i in range(len(cells))]
    inc = s.incidents
    incidents = gpd.GeoDataFrame(inc, geometry=gpd.points_from_xy(inc.lon, inc.lat), crs=4326)
    hh = s.households.merge(s.buildings[["building_key", "geometry"]], on="building_key")
    households = gpd.GeoDataFrame(
        hh.drop(columns="geometry"),
        geometry=gpd.GeoSeries(hh.geometry, crs=4326).representative_point(),
        crs=4326,
    )
    return cells, buildings, incidents, households, s.communities


def _first_paint(html_file: Path) -> float | None:
    chromium = os.environ.get("GRIDSVC_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        return None
    from playwright.sync_api import sync_playwright

    args = [
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        times = []
        for _ in range(3):
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.route(
                "**/*",
                lambda r: (
                    r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort()
                ),
            )
            start = time.perf_counter()
            page.goto(html_file.as_uri())
            page.wait_for_selector("path.leaflet-interactive", timeout=60_000)
            times.append(time.perf_counter() - start)
            page.close()
        browser.close()
    return min(times)


def main() -> None:
    """Print the figures."""
    print(machine())
    cells, buildings, incidents, households, communities = _street()
    print(f"street: {len(cells)} cells, {len(buildings)} buildings, {len(incidents)} incidents")

    overview = timed(
        lambda: render_html(
            overview_map(cells, metric="households", metric_label="户数"), "server"
        ),
        5,
    )
    size = len(
        render_html(
            overview_map(cells, metric="households", metric_label="户数"), "server"
        ).encode()
    )
    print(f"overview (folium HTML, server mode): {describe(overview)}, {size / 1024:.0f} KiB")

    code = cells["code"].iloc[len(cells) // 2]
    cell = cells[cells.code == code]
    shape = cell.geometry.iloc[0]
    nb = cells[(cells.code != code) & cells.intersects(shape.buffer(1e-4))]
    cb = buildings[buildings.cell == code]
    ch = households[households.within(shape)]
    ci = incidents[incidents.within(shape)]

    def page(mode: str) -> str:
        return render_html(
            cell_map(
                cell,
                neighbours=nb,
                buildings=cb,
                households=ch,
                incidents=ci,
                flag_labels=HOUSEHOLD_FLAGS,
            ),
            mode,
        )  # type: ignore[arg-type]

    cell_times = timed(lambda: page("server"), 5)
    server, inline = page("server"), page("inline")
    print(
        f"cell page ({len(cb)} buildings, {len(ch)} households, {len(ci)} incidents): {describe(cell_times)}; "
        f"HTML {len(server.encode()) / 1024:.0f} KiB served, {len(inline.encode()) / 1024:.0f} KiB self-contained"
    )

    def figure():  # type: ignore[no-untyped-def]
        return coverage_map(
            cells,
            title="示范街道网格覆盖图",
            metric="households",
            metric_label="户数",
            area=communities,
            buildings=buildings,
            paper="A3",
            orientation="landscape",
        )

    build = timed(figure, 3)
    fig = figure()
    png = timed(lambda: to_png(fig, dpi=150), 3)
    pdf = timed(lambda: to_pdf(fig), 3)
    print(
        f"coverage map, {len(buildings)} buildings, A3: figure {describe(build)}; PNG 150 dpi {describe(png)} ({len(to_png(fig, 150)) / 1024:.0f} KiB); PDF {describe(pdf)} ({len(to_pdf(fig)) / 1024:.0f} KiB)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        html_file = Path(tmp) / "cell.html"
        html_file.write_text(inline, encoding="utf-8")
        paint = _first_paint(html_file)
        ov_file = Path(tmp) / "overview.html"
        ov_file.write_text(
            render_html(overview_map(cells, metric="households"), "inline"), encoding="utf-8"
        )
        ov_paint = _first_paint(ov_file)
    if paint is not None and ov_paint is not None:
        print(
            f"first map paint in Chromium (self-contained file, best of 3): cell page {paint * 1000:.0f} ms, overview {ov_paint * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
