"""The community overview drawing its buildings from vector tiles, in a real browser with the
internet blocked: Leaflet.VectorGrid (served from our pinned copy) fetches the MVT tiles with
the page's session cookie and draws every building; nothing loads from off loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import ARTIFACTS, sign_in, wait_until

pytestmark = pytest.mark.browser

#: Paths VectorGrid drew (its SVG renderer puts each tile in an <svg class="leaflet-tile">).
TILE_PATHS = "document.querySelectorAll('svg.leaflet-tile path').length"


@pytest.fixture(scope="module")
def tiled_site(demo_site: dict[str, object]) -> Iterator[str]:
    """A second gridsvc on the demo database that tiles every building (threshold 0)."""
    from gridsvc.testing import serve_in_subprocess

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRIDSVC_MAP_TILED_BUILDINGS_ABOVE", "0")
        with serve_in_subprocess(str(demo_site["database_url"])) as base:
            yield base


def test_overview_draws_buildings_from_tiles_offline(page, demo_site, tiled_site) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(str(demo_site["database_url"]))
    with engine.connect() as conn:
        community, buildings = conn.execute(
            text(
                "SELECT co.code, count(b.id) FROM community co "
                "JOIN building b ON b.community_id = co.id GROUP BY co.code ORDER BY co.code LIMIT 1"
            )
        ).one()
    engine.dispose()
    tiles: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: tiles.append((r.url, r.status)) if ".mvt" in r.url else None,
    )
    sign_in(page, tiled_site, "shequ", str(demo_site["password"]))
    page.goto(f"{tiled_site}/ui/communities/{community}")
    wait_until(page, "typeof L === 'object' && typeof L.vectorGrid === 'function'")
    wait_until(page, f"{TILE_PATHS} > 0")
    html = page.content()
    assert "L.vectorGrid.protobuf" in html
    assert re.search(r"/static/vendor/leaflet\.vectorgrid@1\.3\.0/", html)
    assert tiles and all(status in (200, 204) for _, status in tiles), tiles
    assert any(status == 200 for _, status in tiles)
    assert all("/api/v1/tiles/buildings/" in url for url, _ in tiles)
    # Every building of the community is drawn (a building cut by a tile edge is drawn in
    # each tile it meets, so at least as many paths as buildings).
    page.wait_for_load_state("networkidle")
    assert page.evaluate(TILE_PATHS) >= buildings
    # The choropleth (inline GeoJSON) is still there above the tiles.
    assert page.locator(".leaflet-overlay-pane path").count() > 0
    page.screenshot(path=str(ARTIFACTS / "overview_tiles.png"))
    # Zoomed out past the tiles' first zoom, the scaled tiles still show the buildings.
    page.evaluate("(() => { const m = Object.values(window).find(v => v instanceof L.Map);"
                  " m.setZoom(m.getZoom() - 3); })()")  # fmt: skip
    page.wait_for_load_state("networkidle")
    wait_until(page, f"{TILE_PATHS} > 0")
    assert page.external_requests == []


def test_editor_selects_a_tiled_building(page, demo_site, tiled_site) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, tiled_site, "shequ", str(demo_site["password"]))
    page.locator("#communities a", has_text="总览").first.click()
    page.wait_for_url(re.compile(r".*/ui/communities/\d+"))
    page.goto(page.url.split("?")[0] + "/editor")
    wait_until(page, "document.getElementById('editor').dataset.ready === 'true'")
    assert page.evaluate("window.gridsvcEditor.tiledBuildings !== null")
    # No building GeoJSON was fetched: they come from the tiles.
    assert page.evaluate("window.gridsvcEditor.buildingsLayer.getLayers().length") == 0
    pane = ".leaflet-buildingTiles-pane svg.leaflet-tile path"
    wait_until(page, f"document.querySelectorAll({pane!r}).length > 0")
    page.click("#tool-move")
    # The largest footprint on screen: the surest to click.
    index = page.evaluate(
        f"""(() => {{ const paths = [...document.querySelectorAll({pane!r})];
        const area = (p) => {{ const b = p.getBoundingClientRect(); return b.width * b.height; }};
        return paths.indexOf(paths.reduce((a, b) => (area(b) > area(a) ? b : a))); }})()"""
    )
    page.locator(pane).nth(index).click()
    wait_until(page, "window.gridsvcEditor.state.selectedBuildings.size === 1")
    assert "已选楼栋：1 栋" in page.inner_text("#selection")
    page.screenshot(path=str(ARTIFACTS / "editor_tiles.png"))
    assert page.external_requests == []
