"""The boundary editor in a real browser: a street officer splits a cell by drawing a line,
sees the impact, commits with a reason; a stale preview is refused and explained."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import ARTIFACTS, sign_in, wait_until

pytestmark = pytest.mark.browser


def _api(site: dict, user: str = "jiedao") -> httpx.Client:  # type: ignore[type-arg]
    client = httpx.Client(base_url=str(site["url"]), timeout=30)
    token = client.post(
        "/api/v1/auth/token", data={"username": user, "password": site["password"]}
    ).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _first_community(api: httpx.Client) -> str:
    return sorted(
        f["properties"]["code"] for f in api.get("/api/v1/communities").json()["features"]
    )[0]


def _open_editor(page, site: dict, community: str) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, str(site["url"]), "jiedao", str(site["password"]))
    page.goto(f"{site['url']}/ui/communities/{community}/editor")
    page.wait_for_selector("#editor[data-ready=true]", timeout=30_000)


def _pixel(page, lon: float, lat: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Page coordinates of a lon/lat on the editor's map."""
    x, y = page.evaluate(
        "([lon, lat]) => { const m = window.gridsvcEditor.map;"
        " const p = m.latLngToContainerPoint([lat, lon]);"
        " const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
        [lon, lat],
    )
    return x, y


def test_editor_previews_and_commits_a_split(page, demo_site) -> None:  # type: ignore[no-untyped-def]
    api = _api(demo_site)
    community = _first_community(api)
    cells = api.get(f"/api/v1/communities/{community}/cells").json()["features"]
    # Not the first cell: it is the demo 格长's own cell, which the page tests open.
    first = min(f["properties"]["code"] for f in cells)
    target = max(
        (f for f in cells if f["properties"]["code"] != first),
        key=lambda f: f["properties"]["households"],
    )
    code = target["properties"]["code"]
    import shapely.geometry

    shape = shapely.geometry.shape(target["geometry"])
    centre = shape.representative_point()
    minx, _, maxx, _ = shape.bounds

    _open_editor(page, demo_site, community)
    # Zoom to the cell so the line is drawn precisely.
    page.evaluate(
        "(code) => window.gridsvcEditor.map.fitBounds(window.gridsvcEditor.state.cellsByCode.get(code).getBounds(), {padding: [150, 150]})",
        code,
    )
    page.click("#tool-split")
    page.mouse.click(*_pixel(page, centre.x, centre.y))
    assert code in page.inner_text("#selection")
    # A west-east line through the cell's inner point, starting and ending outside it.
    span = maxx - minx
    start = _pixel(page, minx - 0.1 * span, centre.y)
    end = _pixel(page, maxx + 0.1 * span, centre.y)
    for point in (start, end, end):  # clicking the last vertex again finishes the line (Geoman)
        page.wait_for_timeout(400)
        page.mouse.click(*point)
    wait_until(page, "document.querySelector('#selection').textContent.includes('拆分线')")

    page.click("#preview")
    page.wait_for_selector("#balance", timeout=30_000)
    impact_text = page.inner_text("#impact")
    assert code in impact_text  # the split cell is listed as retired
    rows = page.locator("#balance tr").count()
    assert rows >= 3  # header + the retired cell + at least two new parts
    page.screenshot(path=str(ARTIFACTS / "editor-preview.png"))
    # Nothing is written by a preview.
    assert code in {
        f["properties"]["code"]
        for f in api.get(f"/api/v1/communities/{community}/cells").json()["features"]
    }

    page.fill("#reason", "楼栋增多，拆分以均衡户数（浏览器测试）")
    page.click("#commit")
    wait_until(
        page, "/已提交|失败|错误/.test(document.querySelector('#notice').textContent)", 30_000
    )
    assert "已提交" in page.inner_text("#notice")
    after = {
        f["properties"]["code"]
        for f in api.get(f"/api/v1/communities/{community}/cells").json()["features"]
    }
    assert code not in after and len(after) >= len(cells) + 1
    changes = api.get(f"/api/v1/communities/{community}/changes").json()
    assert any("浏览器测试" in (c.get("reason") or "") for c in changes["items"])
    page.screenshot(path=str(ARTIFACTS / "editor-committed.png"))
    assert page.external_requests == []


def test_editor_explains_a_conflict(page, demo_site) -> None:  # type: ignore[no-untyped-def]
    api = _api(demo_site)
    community = _first_community(api)
    cells = sorted(
        api.get(f"/api/v1/communities/{community}/cells").json()["features"],
        key=lambda f: f["properties"]["code"],
    )
    _open_editor(page, demo_site, community)
    # Merge two neighbouring cells in the browser: preview only.
    a, b = _touching_pair(cells[1:])  # not the first cell (the demo 格长's own)
    page.click("#tool-merge")
    import shapely.geometry

    for feature in (a, b):
        p = shapely.geometry.shape(feature["geometry"]).representative_point()
        page.mouse.click(*_pixel(page, p.x, p.y))
    assert a["properties"]["code"] in page.inner_text("#selection")
    assert b["properties"]["code"] in page.inner_text("#selection")
    page.click("#preview")
    page.wait_for_selector("#balance", timeout=30_000)
    # Meanwhile someone else changes the community (a commit through the API).
    other = api.post(
        f"/api/v1/communities/{community}/redraw/preview",
        json={
            "op": "merge",
            "cells": [a["properties"]["code"], b["properties"]["code"]],
            "reason": "x",
        },
    )
    assert other.status_code == 200, other.text
    committed = api.post(
        f"/api/v1/communities/{community}/redraw/commit",
        json={
            "op": "merge",
            "cells": [a["properties"]["code"], b["properties"]["code"]],
            "reason": "他人先提交",
        },
        headers={"If-Match": other.headers["ETag"]},
    )
    assert committed.status_code == 200, committed.text
    page.fill("#reason", "合并（浏览器测试）")
    page.click("#commit")
    page.wait_for_selector("#notice.error", timeout=30_000)
    assert "版本冲突" in page.inner_text("#notice")
    assert page.is_visible("#reload")
    page.screenshot(path=str(ARTIFACTS / "editor-conflict.png"))


def _touching_pair(cells: list[dict]) -> tuple[dict, dict]:  # type: ignore[type-arg]
    import shapely.geometry

    shapes = [shapely.geometry.shape(f["geometry"]) for f in cells]
    for i, a in enumerate(shapes):
        for j in range(i + 1, len(shapes)):
            if a.intersection(shapes[j]).length > 1e-4:
                return cells[i], cells[j]
    raise AssertionError("no two cells share a boundary")
