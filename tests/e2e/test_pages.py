"""The 格长's cell map and the community overview in a real browser, internet blocked."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.conftest import ARTIFACTS, sign_in, wait_until

pytestmark = pytest.mark.browser


def _map_ready(page) -> None:  # type: ignore[no-untyped-def]
    wait_until(page, "typeof L === 'object'")
    page.wait_for_selector(".leaflet-overlay-pane path", timeout=20_000)


def test_leader_opens_their_cell(page, demo_site) -> None:  # type: ignore[no-untyped-def]
    base = str(demo_site["url"])
    sign_in(page, base, "gezhang", str(demo_site["password"]))
    page.click("#my-cell")
    page.wait_for_url(re.compile(r".*/ui/cells/\d+"))
    _map_ready(page)
    code = page.url.rsplit("/", 1)[-1]
    assert code in page.inner_text(".gs-bar")
    # Layer control lists our layers in Chinese; switching one off removes its paths.
    page.hover(".leaflet-control-layers")
    labels = page.inner_text(".leaflet-control-layers-overlays")
    assert "楼栋" in labels and "住户" in labels
    paths_before = page.locator(".leaflet-overlay-pane path").count()
    building_box = page.locator(".leaflet-control-layers-overlays label", has_text="楼栋").first
    building_box.locator("input").uncheck()
    assert page.locator(".leaflet-overlay-pane path").count() < paths_before
    building_box.locator("input").check()
    # With only the buildings shown, clicking one opens a Chinese popup with its households.
    overlays = page.locator(".leaflet-control-layers-overlays label")
    for i in range(overlays.count()):
        label = overlays.nth(i)
        if label.inner_text().strip() != "楼栋" and label.locator("input").is_checked():
            label.locator("input").uncheck()
    page.mouse.move(5, 400)  # the layer control collapses
    page.locator(".leaflet-overlay-pane path").last.click()
    page.wait_for_selector(".leaflet-popup-content", timeout=10_000)
    assert "户" in page.inner_text(".leaflet-popup-content")
    assert (
        page.locator(".leaflet-control-fullscreen, .leaflet-control-zoom-fullscreen").count() >= 1
    )
    assert page.locator(".leaflet-control-locate").count() == 1
    page.screenshot(path=str(ARTIFACTS / "cell-map.png"))
    assert page.external_requests == []

    # Another cell of the street is outside a 格长's scope: a clear page, not a map.
    api = httpx.Client(base_url=base)
    token = api.post(
        "/api/v1/auth/token", data={"username": "jiedao", "password": demo_site["password"]}
    ).json()["access_token"]
    cells = api.get("/api/v1/cells", headers={"Authorization": f"Bearer {token}"}).json()
    other = next(
        f["properties"]["code"] for f in cells["features"] if f["properties"]["code"] != code
    )
    response = page.goto(f"{base}/ui/cells/{other}")
    assert response.status == 403
    assert "没有权限" in page.inner_text("h1")


def test_cell_map_on_a_phone(browser, demo_site) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    blocked: list[str] = []
    page.route(
        "**/*",
        lambda r: (
            r.continue_()
            if r.request.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            else (blocked.append(r.request.url), r.abort())
        ),
    )
    base = str(demo_site["url"])
    sign_in(page, base, "gezhang", str(demo_site["password"]))
    page.click("#my-cell")
    _map_ready(page)
    box = page.locator(".folium-map").bounding_box()
    assert box is not None and box["width"] >= 380 and box["height"] > 500
    page.screenshot(path=str(ARTIFACTS / "cell-map-phone.png"))
    context.close()
    assert blocked == []


def test_overview_switches_metric(page, demo_site) -> None:  # type: ignore[no-untyped-def]
    base = str(demo_site["url"])
    sign_in(page, base, "shequ", str(demo_site["password"]))
    page.locator("#communities a", has_text="总览").first.click()
    _map_ready(page)
    rows = page.locator("#cell-table tr[data-code]").count()
    assert rows > 3
    # One choropleth polygon per cell, plus a legend naming the metric.
    assert "户数" in page.inner_text(".leaflet-container")
    page.select_option("#metric", "visited_share")
    page.wait_for_url(re.compile(r".*metric=visited_share"))
    _map_ready(page)
    assert "走访覆盖率" in page.inner_text(".leaflet-container")
    assert page.locator("#cell-table tr[data-code]").count() == rows
    page.screenshot(path=str(ARTIFACTS / "overview.png"))
    # A row links to its cell's map.
    page.locator("#cell-table tr[data-code] a").first.click()
    page.wait_for_url(re.compile(r".*/ui/cells/\d+"))
    _map_ready(page)
    assert page.external_requests == []


def test_pages_need_sign_in(page, demo_site) -> None:  # type: ignore[no-untyped-def]
    base = str(demo_site["url"])
    page.goto(f"{base}/ui/")
    assert "/ui/login" in page.url
    page.fill("input[name=username]", "jiedao")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "用户名或密码错误" in page.inner_text("#login-error")
