"""The 格长's day in a real browser on a phone (390×844) and on a desktop, internet blocked:
sign in, see 待办 with an overdue case marked 超期, take it through 派遣 and 处置 with a photo
from the camera input; the first paint of the workbench and of the cell map is printed."""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import psycopg
import pytest
from PIL import Image

from tests.e2e.conftest import ARTIFACTS, sign_in, wait_until

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _blocking_context(browser: Any, **options: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(**options)
    page = context.new_page()
    blocked: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    ARTIFACTS.mkdir(exist_ok=True)
    return context, page, blocked


def _first_paint_ms(page: Any) -> float:
    """First contentful paint of the current page, from the browser's Performance API."""
    wait_until(page, "performance.getEntriesByType('paint').length > 0")
    return float(
        page.evaluate(
            "(performance.getEntriesByType('paint').find(e => e.name === "
            "'first-contentful-paint') || performance.getEntriesByType('paint')[0]).startTime"
        )
    )


def _sql(site: dict[str, Any], query: str, *args: Any) -> Any:
    with psycopg.connect(str(site["database_url"]).replace("+psycopg", "")) as conn:
        return conn.execute(query, args).fetchall()


def _overdue_case(site: dict[str, Any]) -> tuple[int, str]:
    """A case reported by gezhang (格长 of the demo's first cell) in their cell through the
    API, then made overdue (past both deadlines); returns its id and the cell code."""
    code, lon, lat = _sql(
        site,
        "SELECT c.code, ST_X(ST_PointOnSurface(v.geom)), ST_Y(ST_PointOnSurface(v.geom)) "
        "FROM cell c JOIN cell_version v ON v.cell_id = c.id AND v.valid_to IS NULL "
        "WHERE c.kind = 'general' ORDER BY c.code LIMIT 1",
    )[0]
    api = httpx.Client(base_url=str(site["url"]))
    token = api.post(
        "/api/v1/auth/token", data={"username": "gezhang", "password": site["password"]}
    ).json()["access_token"]
    r = api.post(
        "/api/v1/incidents",
        json={"lon": lon, "lat": lat, "category": "sanitation", "description": "楼道堆放杂物"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    case = int(r.json()["id"])
    _sql(
        site,
        "UPDATE incident SET reported_at = now() - interval '3 days', "
        "dispatch_due_at = now() - interval '30 days', "
        "close_due_at = now() - interval '29 days' WHERE id = %s RETURNING id",
        case,
    )
    return case, code


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def _header_is_whole(page: Any) -> None:
    """Every item of the top bar is on one line (no word broken into a column)."""
    heights = page.evaluate(
        "[...document.querySelectorAll('header.bar > *, .gs-bar > *')]"
        ".filter(e => e.offsetParent !== null).map(e => e.getBoundingClientRect().height)"
    )
    assert heights and max(heights) < 48, heights


def test_leader_works_a_case_on_a_phone(browser, demo_site) -> None:  # type: ignore[no-untyped-def]
    case, code = _overdue_case(demo_site)
    base = str(demo_site["url"])
    context, page, blocked = _blocking_context(
        browser, viewport=PHONE, is_mobile=True, has_touch=True
    )
    sign_in(page, base, "gezhang", str(demo_site["password"]))
    workbench_paint = _first_paint_ms(page)
    row = page.locator(f"#todo li[data-id='{case}']")
    assert row.count() == 1
    assert "超期" in row.inner_text() and "期限已过" in row.inner_text()
    assert "overdue" in (row.get_attribute("class") or "")
    _header_is_whole(page)
    # Thumb-size targets: the row and the buttons are at least 44 px high.
    assert row.locator("a").bounding_box()["height"] >= 44
    page.screenshot(path=str(ARTIFACTS / "workbench-phone.png"), full_page=True)

    row.locator("a").click()
    page.wait_for_url(re.compile(rf".*/ui/cases/{case}$"))
    steps = page.locator("#steps button[data-action]")
    offered = {steps.nth(i).get_attribute("data-action") for i in range(steps.count())}
    assert offered == {"dispatch", "escalate"}  # what the workflow lets a 格长 do from 立案
    assert page.locator("input[type=file][capture][accept='image/*']").count() == 1
    page.screenshot(path=str(ARTIFACTS / "case-phone.png"), full_page=True)
    page.click("#steps button[data-action=dispatch]")
    page.wait_for_url(re.compile(r".*done=dispatch"))
    assert page.get_attribute("#case", "data-status") == "dispatched"

    page.fill("#note", "已清理楼道，拍照留存。")
    page.set_input_files(
        "input[name=photos]", files=[{"name": "p.png", "mimeType": "image/png", "buffer": _png()}]
    )
    assert page.inner_text("#photo-count") == "已选择 1 张照片"
    page.click("#steps button[data-action=handle]")
    page.wait_for_url(re.compile(r".*done=handle"))
    assert page.get_attribute("#case", "data-status") == "handled"
    assert "已处置" in page.inner_text("#case-ok")
    wait_until(page, "[...document.querySelectorAll('#photos img')].some(i => i.naturalWidth > 0)")
    events = page.inner_text("#events")
    assert "派遣" in events and "处置" in events and "已清理楼道" in events
    page.screenshot(path=str(ARTIFACTS / "case-handled-phone.png"), full_page=True)

    # A tab opened before the 处置 still shows version 1: its step is refused, explained.
    stale = context.new_page()
    stale.route("**/*", lambda r: r.continue_())
    stale.goto(page.url)
    stale.evaluate("document.querySelector('input[name=expected_version]').value = '1'")
    stale.click("#steps button[data-action=verify]")
    assert "版本冲突" in stale.inner_text("#case-error")
    assert stale.get_attribute("#case", "data-status") == "handled"
    stale.close()

    page.goto(f"{base}/ui/")
    # Handled, it waits for the 格长's 核查: still in 待办, no longer overdue-first for 派遣.
    assert page.locator(f"#todo li[data-id='{case}']").count() == 1
    page.click("#my-cell")
    wait_until(page, "typeof L === 'object'")
    page.wait_for_selector(".leaflet-overlay-pane path", timeout=30_000)
    map_paint = _first_paint_ms(page)
    _header_is_whole(page)
    # Leaflet's controls speak Chinese; the scale bar is metric only.
    assert page.get_attribute(".leaflet-control-zoom-in", "title") == "放大"
    assert page.get_attribute(".leaflet-control-zoom-out", "title") == "缩小"
    assert page.get_attribute(".leaflet-control-layers-toggle", "title") == "图层"
    scale = page.inner_text(".leaflet-control-scale")
    assert re.search(r"\d+ k?m", scale) and "ft" not in scale and "mi" not in scale
    # The legend and the household filter are folded to a button each, and open on a tap.
    legend = page.locator(".gridsvc-legend")
    assert legend.locator("h4").first.is_hidden()
    folded = legend.bounding_box()
    assert folded["height"] < 60
    legend.locator(".gridsvc-toggle").tap()
    assert legend.locator("h4").first.is_visible()
    legend.locator(".gridsvc-toggle").tap()
    assert page.locator(".gridsvc-filter input").first.is_hidden()
    page.screenshot(path=str(ARTIFACTS / "cell-map-phone-workbench.png"))

    # 上报事件 by tapping the map: the popup offers the form at that point.
    wait_until(page, "document.body.dataset.reportReady === '1'")
    box = page.locator(".folium-map").bounding_box()
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(".leaflet-popup-content a.gs-report", timeout=10_000)
    page.click(".leaflet-popup-content a.gs-report")
    page.wait_for_url(re.compile(r".*/ui/report\?lon=.*"))
    _header_is_whole(page)
    page.select_option("#category", "safety")
    page.fill("#description", "井盖松动，路过时发现")
    page.set_input_files(
        "input[name=photos]", files=[{"name": "w.png", "mimeType": "image/png", "buffer": _png()}]
    )
    page.screenshot(path=str(ARTIFACTS / "report-phone.png"), full_page=True)
    page.click("#report-submit")
    page.wait_for_url(re.compile(r".*/ui/cases/\d+\?done=file"))
    assert "已立案" in page.inner_text("#case-ok")
    reported = int(re.search(r"/ui/cases/(\d+)", page.url).group(1))
    cell, kind, photos = _sql(
        demo_site,
        "SELECT c.code, i.reporter_kind, (SELECT count(*) FROM incident_photo p "
        "WHERE p.incident_id = i.id) FROM incident i JOIN cell c ON c.id = i.cell_id "
        "WHERE i.id = %s",
        reported,
    )[0]
    assert (cell, kind, photos) == (code, "leader", 1)  # routed to the cell tapped
    page.screenshot(path=str(ARTIFACTS / "reported-phone.png"), full_page=True)
    print(
        f"\nfirst paint on a 390×844 phone: workbench {workbench_paint:.0f} ms, "
        f"cell map {map_paint:.0f} ms (cell {code})"
    )
    context.close()
    assert blocked == []


def test_task_list_and_my_position_on_a_desktop(browser, demo_site) -> None:  # type: ignore[no-untyped-def]
    code, lon, lat = _sql(
        demo_site,
        "SELECT c.code, ST_X(ST_PointOnSurface(v.geom)), ST_Y(ST_PointOnSurface(v.geom)) "
        "FROM cell c JOIN cell_version v ON v.cell_id = c.id AND v.valid_to IS NULL "
        "WHERE c.kind = 'general' ORDER BY c.code LIMIT 1",
    )[0]
    context, page, blocked = _blocking_context(
        browser,
        viewport={"width": 1280, "height": 900},
        geolocation={"longitude": lon, "latitude": lat, "accuracy": 12},
        permissions=["geolocation"],
    )
    base = str(demo_site["url"])
    sign_in(page, base, "gezhang", str(demo_site["password"]))
    # 上报事件 from where I stand: the phone's position fills the point.
    page.goto(f"{base}/ui/report")
    page.click("#use-my-position")
    wait_until(page, "document.getElementById('lon').value !== ''")
    assert "我的位置" in page.inner_text("#where")
    page.select_option("#category", "sanitation")
    page.click("#report-submit")
    page.wait_for_url(re.compile(r".*/ui/cases/\d+\?done=file"))
    reported = int(re.search(r"/ui/cases/(\d+)", page.url).group(1))
    assert (
        _sql(
            demo_site,
            "SELECT c.code FROM incident i JOIN cell c ON c.id = i.cell_id WHERE i.id = %s",
            reported,
        )[0][0]
        == code
    )

    page.goto(f"{base}/ui/")
    page.click("text=全部任务")
    page.wait_for_url(re.compile(r".*/ui/tasks"))
    page.click("details.filters summary")
    page.select_option("select[name=show]", "all")
    page.select_option("select[name=overdue]", "yes")
    page.click("#task-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*overdue=yes"))
    rows = page.locator("#tasks li")
    assert rows.count() >= 1
    for i in range(rows.count()):
        assert "超期" in rows.nth(i).inner_text()
    page.screenshot(path=str(ARTIFACTS / "tasks-desktop.png"), full_page=True)

    # 台账: search, a 走访 from a household row, then a flag changed on the same row.
    page.goto(f"{base}/ui/")
    page.click("#my-ledger")
    page.wait_for_url(re.compile(r".*/ledger"))
    first = page.locator("#ledger li[data-id]").first
    household = int(first.get_attribute("data-id"))
    page.screenshot(path=str(ARTIFACTS / "ledger-desktop.png"), full_page=True)
    first.locator("a", has_text="走访").click()
    page.wait_for_url(re.compile(rf".*/households/{household}/visit"))
    page.fill("#note", "老人反映腿脚不便，希望上门代办")
    page.fill("#follow_up", "联系志愿者每周上门")
    page.screenshot(path=str(ARTIFACTS / "visit-desktop.png"), full_page=True)
    page.click("#visit-submit")
    page.wait_for_url(re.compile(r".*/diary\?done=visit"))
    assert "联系志愿者每周上门" in page.inner_text("#diary li >> nth=0")
    page.screenshot(path=str(ARTIFACTS / "diary-desktop.png"), full_page=True)
    page.goto(f"{base}/ui/cells/{code}/ledger")
    row = page.locator(f"#ledger li[data-id='{household}']")
    was = row.locator("input[value=disabled]").is_checked()
    row.locator("details.edit-flags summary").click()
    row.locator("input[value=disabled]").set_checked(not was)
    row.locator("button", has_text="保存标记").click()
    page.wait_for_url(re.compile(r".*done=flags"))
    assert "标记已保存" in page.inner_text("#ledger-ok")
    disabled, audited = _sql(
        demo_site,
        "SELECT h.disabled, (SELECT count(*) FROM audit_event a WHERE a.action = "
        "'household.flags' AND a.row_id = h.id) FROM household h WHERE h.id = %s",
        household,
    )[0]
    assert disabled is (not was) and audited == 1
    context.close()
    assert blocked == []
