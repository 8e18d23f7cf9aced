"""Maps in a real browser with the network blocked: the inline export from a file, server pages."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridsvc.domain import HOUSEHOLD_FLAGS
from maps.interactive import cell_map, overview_map, render_html
from tests.e2e.conftest import ARTIFACTS
from tests.maps.fixtures import CellLayers, ensure_assets, household_flag_counts, synthetic_layers

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def asset_root() -> Path:
    """The asset folder with every pinned Leaflet asset."""
    return ensure_assets()


@pytest.fixture(scope="session")
def street() -> CellLayers:
    """One synthetic cell with everything around it, and its whole street."""
    return synthetic_layers()


@pytest.fixture
def offline_page(browser):  # type: ignore[no-untyped-def]
    """A page that lets through only file:, data:, blob: and loopback; records everything else."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.blocked = []  # type: ignore[attr-defined]
    page.failed = []  # type: ignore[attr-defined]
    page.errors = []  # type: ignore[attr-defined]

    def route(r):  # type: ignore[no-untyped-def]
        url = r.request.url
        if url.startswith(("file://", "data:", "blob:", "http://127.0.0.1")):
            r.continue_()
        else:
            page.blocked.append(url)  # type: ignore[attr-defined]
            r.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda r: page.failed.append(r.url))  # type: ignore[attr-defined]
    page.on("response", lambda r: page.failed.append(r.url) if r.status >= 400 else None)  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    yield page
    context.close()


def _full_cell_map(street: CellLayers):  # type: ignore[no-untyped-def]
    return cell_map(
        street.cell,
        neighbours=street.neighbours,
        buildings=street.buildings,
        households=street.households,
        incidents=street.incidents,
        volunteers=street.volunteers,
        flag_labels=HOUSEHOLD_FLAGS,  # as gridsvc passes them
    )


_COUNT_JS = """() => {
    let n = document.querySelectorAll('.leaflet-marker-icon.gridsvc-hh').length;
    document.querySelectorAll('.marker-cluster > div > span').forEach(s => n += parseInt(s.textContent));
    return n;
}"""


def _shows_households(page, expected: int) -> bool:  # type: ignore[no-untyped-def]
    """Whether the map settles showing ``expected`` households (cluster numbers + single markers)."""
    try:
        page.wait_for_function(f"({_COUNT_JS})() === {expected}", timeout=5_000)
    except Exception:  # playwright's TimeoutError: report the count seen
        print("households shown:", page.evaluate(_COUNT_JS), "expected:", expected)
        return False
    return True


def test_inline_cell_map_opens_from_a_file_with_no_network(
    offline_page, street: CellLayers, asset_root: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    html_file = tmp_path / "网格地图.html"
    html_file.write_text(
        render_html(_full_cell_map(street), "inline", asset_root=asset_root), encoding="utf-8"
    )
    page = offline_page
    page.goto(html_file.as_uri())
    page.wait_for_selector("path.leaflet-interactive", timeout=20_000)
    assert page.evaluate("typeof L") == "object"
    drawn = page.locator("path.leaflet-interactive").count()
    assert drawn >= len(street.buildings) + len(street.neighbours) + 1
    page.wait_for_selector(".marker-cluster, .gridsvc-hh", timeout=10_000)
    assert _shows_households(page, len(street.households))

    # Tick 低保: only those households remain (counted independently from the data).
    expected = household_flag_counts(street.households, ["low_income"])["low_income"]
    page.locator(".gridsvc-filter label", has_text="低保").locator("input").check()
    assert _shows_households(page, expected)

    # A building's popup, in Chinese, with its household count.
    page.locator("path.leaflet-interactive").nth(len(street.neighbours)).dispatch_event("click")
    popup = page.wait_for_selector(".leaflet-popup-content", timeout=5_000).inner_text()
    first = street.buildings.iloc[0]
    assert first["name"] in popup and f"户数\t{first['households']}" in popup
    # The heat map switches on from the layer control.
    page.locator(".leaflet-control-layers").hover()
    page.locator(".leaflet-control-layers-overlays label", has_text="事件热力图").locator(
        "input"
    ).check()
    page.wait_for_selector("canvas.leaflet-heatmap-layer", timeout=5_000)
    page.screenshot(path=str(ARTIFACTS / "maps-cell-inline.png"))
    assert page.blocked == [] and page.failed == [] and page.errors == []


def test_inline_overview_labels_every_cell(
    offline_page, street: CellLayers, asset_root: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    html_file = tmp_path / "overview.html"
    m = overview_map(
        street.cells, metric="households", metric_label="户数", cell_url="/cells/{code}"
    )
    html_file.write_text(render_html(m, "inline", asset_root=asset_root), encoding="utf-8")
    page = offline_page
    page.goto(html_file.as_uri())
    page.wait_for_selector(".gridsvc-label", timeout=20_000)
    assert page.locator(".gridsvc-label").count() == len(street.cells)
    assert page.locator("path.leaflet-interactive").count() == len(street.cells)
    first = street.cells.iloc[0]
    assert first["leader"] in page.inner_text(".leaflet-tooltip-pane")
    page.screenshot(path=str(ARTIFACTS / "maps-overview-inline.png"))
    assert page.blocked == [] and page.failed == [] and page.errors == []


@pytest.fixture
def loopback_site(tmp_path: Path, asset_root: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server: pages from tmp_path, the asset folder under /static/vendor/."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            if path.startswith("/static/vendor/"):
                from urllib.parse import unquote

                return str(asset_root / unquote(path.removeprefix("/static/vendor/").split("?")[0]))
            return super().translate_path(path)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_server_mode_page_loads_its_assets_from_the_prefix(
    offline_page, street: CellLayers, asset_root: Path, loopback_site
) -> None:  # type: ignore[no-untyped-def]
    url, folder = loopback_site
    (folder / "cell.html").write_text(
        render_html(_full_cell_map(street), "server", asset_root=asset_root), encoding="utf-8"
    )
    page = offline_page
    page.goto(f"{url}/cell.html")
    page.wait_for_selector("path.leaflet-interactive", timeout=20_000)
    assert page.evaluate("typeof L") == "object"
    assert page.evaluate("typeof L.markerClusterGroup") == "function"
    assert page.evaluate("typeof L.control.locate") == "function"
    # Leaflet found its images through the stylesheet (the layer control icon loads).
    assert page.locator(".leaflet-control-layers-toggle").is_visible()
    assert page.blocked == [] and page.failed == [] and page.errors == []
