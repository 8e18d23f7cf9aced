"""Text from the data never becomes markup in a folium page: every tooltip, label, popup, title,
legend and layer name is escaped once, where the page is written (issue 12)."""

from __future__ import annotations

import html
import json
import re

import geopandas as gpd
import shapely

from maps.interactive import cell_map, overview_map, render_html
from tests.maps.fixtures import CellLayers

PAYLOAD = '<img src=x onerror="window.__xss=1">'
BREAKOUT = '"><script>window.__xss=1</script>'


def _roads(cell: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    minx, miny, maxx, maxy = cell.total_bounds
    line = shapely.LineString([(minx, (miny + maxy) / 2), (maxx, (miny + maxy) / 2)])
    return gpd.GeoDataFrame({"name": [PAYLOAD]}, geometry=[line], crs=4326)


def _properties(page: str) -> list[dict]:
    """Every feature's properties, as the browser's JSON.parse would see them."""
    out = []
    for block in re.finditer(r"_add\((\{\"features\".*?\})\);\n", page):
        out += [f["properties"] for f in json.loads(block.group(1))["features"]]
    return out


def _assert_no_markup_from_data(page: str) -> None:
    # Nowhere in the page (JSON or HTML) does the payload appear as a tag a browser would build.
    decoded = page.replace("\\u003c", "<").replace("\\u003e", ">").replace('\\"', '"')
    assert "<img src=x" not in decoded
    assert "<script>window.__xss" not in decoded


def test_cell_map_tooltips_and_titles_are_escaped(street: CellLayers) -> None:
    cell = street.cell.assign(name=BREAKOUT, leader=PAYLOAD)
    neighbours = street.neighbours.assign(code=PAYLOAD, name=PAYLOAD, leader=BREAKOUT)
    buildings = street.buildings.assign(name=PAYLOAD, captain=BREAKOUT, address=PAYLOAD)
    incidents = street.incidents.assign(description=PAYLOAD, category=BREAKOUT)
    volunteers = street.volunteers.assign(name=PAYLOAD, team=BREAKOUT)
    m = cell_map(
        cell,
        neighbours=neighbours,
        buildings=buildings,
        households=street.households.assign(label=PAYLOAD, head_name=BREAKOUT),
        incidents=incidents,
        volunteers=volunteers,
        roads=_roads(street.cell),
        title=BREAKOUT,
        flag_labels={"low_income": BREAKOUT},
    )
    page = render_html(m, "server")
    props = _properties(page)
    tips = [p["_tip"] for p in props if "_tip" in p]
    # The road's and the neighbours' hover tooltips carry the names as escaped text.
    assert "&lt;img src=x onerror=&#34;window.__xss=1&#34;&gt;" in tips
    assert all("<" not in t for t in tips)
    popups = [p["_popup"] for p in props if p.get("_popup")]
    assert popups and all("<img" not in p and "<script" not in p for p in popups)
    assert any("&lt;img src=x" in p for p in popups)
    _assert_no_markup_from_data(page)


def test_overview_labels_are_escaped(street: CellLayers) -> None:
    cells = street.cells.assign(leader=PAYLOAD, name=BREAKOUT)
    cells.loc[cells.index[0], "code"] = BREAKOUT
    m = overview_map(cells, roads=_roads(street.cell), title=PAYLOAD, metric_label=PAYLOAD)
    page = render_html(m, "inline")
    labels = [p["_label"] for p in _properties(page) if "_label" in p]
    assert labels and all("<img" not in label and "<script" not in label for label in labels)
    assert any(html.unescape(label.split("<br>")[-1]) == PAYLOAD for label in labels)
    _assert_no_markup_from_data(page)


def test_report_maps_draw_names_as_text(street: CellLayers) -> None:
    # "$…$" in a name is not mathtext: the PNG/PDF export used to fail on it (a 500).
    from maps import charts, reports, static

    odd = r"$\bad{$ <b>x</b>"
    cells = street.cells.assign(name=odd, leader=odd)
    cells.loc[cells.index[0], "code"] = odd
    figure = static.coverage_map(cells, title=odd, metric="households", footer=odd, attribution=odd)
    assert static.to_png(figure)[:4] == b"\x89PNG"
    assert static.to_pdf(figure, title=odd)[:4] == b"%PDF"
    plan = reports.area_plan(street.communities, cells, title=odd)
    assert static.to_png(plan)[:4] == b"\x89PNG"
    tree = {
        "level_label": odd,
        "name": BREAKOUT,
        "code": "1",
        "people": [{"role_label": odd, "name": PAYLOAD}],
        "children": [],
    }
    assert charts.responsibility_chart(tree, fmt="png")[:4] == b"\x89PNG"
    svg = charts.responsibility_chart(tree, fmt="svg")
    assert b"<script>" not in svg and b"<img" not in svg and b"&lt;script&gt;" in svg
