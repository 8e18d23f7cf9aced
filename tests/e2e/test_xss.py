"""No stored text ever runs in a browser (issue 12): payloads planted in every free-text field
that reaches a page stay text on every page and in the HTML export, for every role, with a
strict Content-Security-Policy that reports no violation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import load_demo, scratch_database
from tests.e2e.conftest import ARTIFACTS, sign_in, wait_until

pytestmark = pytest.mark.browser

#: Payloads: an element with a handler, and a break-out of an attribute into a script.
IMG = '<img src=x onerror="window.__xss=1;alert(1)">'
BREAKOUT = '"><script>window.__xss=1</script>'
#: A cell code holds at most 32 characters.
CODE = "<img src=x onerror=__xss=1>"

#: Every free-text field that reaches a page or the export (and which page shows it).
PLANT = [
    # cell names (overview table, editor tooltips, popups), the street's and community's names
    ("UPDATE cell SET name = :img", {}),
    ("UPDATE community SET name = :breakout", {}),
    ("UPDATE street SET name = :img", {}),
    # people: 格长 (overview labels, map title, editor preview), 楼栋长, volunteers
    ("UPDATE person SET name = CASE WHEN id % 2 = 0 THEN :img ELSE :breakout END", {}),
    ("UPDATE volunteer_team SET name = :breakout", {}),
    # buildings imported from OSM: name and address (popups, editor tooltips)
    ("UPDATE building SET name = :img, address = :breakout", {}),
    # households as shown: head, unit, room (the cell map's household popups)
    ("UPDATE household SET head_name = :img, unit = '<b>u</b>', room = '<i>r</i>'", {}),
    # incidents: description, address, and the category label (popups)
    ("UPDATE incident SET description = :img, address = :breakout", {}),
    ("UPDATE incident_category SET label = :breakout", {}),
]


def _plant(url: str) -> dict[str, Any]:
    """Payloads everywhere; a payload cell code on the 格长's neighbour; a payload road across
    the 格长's cell; an admin and a viewer. Returns the codes of the 格长's cell and community."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    engine = create_engine(url)
    values = {"img": IMG, "breakout": BREAKOUT, "code": CODE}
    with Session(engine) as s:
        mine = s.execute(
            text(
                "SELECT c.id, c.code, m.code FROM app_user u JOIN cell c ON c.id = u.cell_id "
                "JOIN community m ON m.id = c.community_id WHERE u.username = 'gezhang'"
            )
        ).one()
        street = s.scalar(text("SELECT code FROM street ORDER BY id LIMIT 1"))
        neighbour = s.scalar(
            text(
                "SELECT o.cell_id FROM cell_version o JOIN cell_version v ON v.cell_id = :cell "
                "AND v.valid_to IS NULL AND o.valid_to IS NULL AND o.cell_id <> :cell "
                "AND ST_Intersects(o.geom, v.geom) JOIN cell c ON c.id = o.cell_id "
                "WHERE c.community_id = (SELECT community_id FROM cell WHERE id = :cell) "
                "ORDER BY o.cell_id LIMIT 1"
            ),
            {"cell": mine[0]},
        )
        for sql, extra in PLANT:
            s.execute(text(sql), {**values, **extra})
        s.execute(text("UPDATE cell SET code = :code WHERE id = :id"), {**values, "id": neighbour})
        s.execute(
            text(
                "INSERT INTO road (source, source_id, name, highway, geom) "
                "SELECT 'test', 'xss', :img, 'residential', ST_Multi(ST_MakeLine("
                "ST_Translate(ST_Centroid(geom), -0.01, 0), ST_Translate(ST_Centroid(geom), 0.01, 0)))"
                " FROM cell_version WHERE cell_id = :cell AND valid_to IS NULL"
            ),
            {**values, "cell": mine[0]},
        )
        s.commit()
    engine.dispose()
    return {"cell": mine[1], "community": mine[2], "street": street, "neighbour": CODE}


@pytest.fixture(scope="module")
def planted(database_url: str) -> Iterator[dict[str, Any]]:
    """A demo street full of payloads, served by gridsvc, with users of every role."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from gridsvc.services.users import ScopeSpec, create_user
    from gridsvc.testing import serve_in_subprocess

    with scratch_database("gridsvc_xss") as url:
        password = load_demo(url)
        site = _plant(url)
        engine = create_engine(url)
        with Session(engine) as s:
            create_user(s, username="xss_admin", password=password, role="admin")
            create_user(
                s,
                username="xss_viewer",
                password=password,
                role="viewer",
                scope=ScopeSpec("street", site["street"]),
            )
            s.commit()
        engine.dispose()
        with serve_in_subprocess(url) as base:
            yield {**site, "url": base, "password": password}


#: Recorded in every page before any of its scripts: CSP violations seen by the document.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || ''));
});
"""

#: Open the popups and tooltips of a Leaflet map (folium's or the editor's): each sets its
#: content with innerHTML, the sink a payload would need. Every layer, and of each group its
#: first 40 members (every feature carries the same payloads). Returns the tooltip texts.
OPEN_ALL = """
(map) => {
  const tips = [];
  const visit = (layer) => {
    if (layer.getLayers) { layer.getLayers().slice(0, 40).forEach(visit); }
    const popup = layer.getPopup && layer.getPopup();
    if (popup) {
      popup.options.autoPan = false;
      const at = layer.getLatLng ? layer.getLatLng() : layer.getBounds().getCenter();
      popup.setLatLng(at).openOn(map);
    }
    const tip = layer.getTooltip && layer.getTooltip();
    if (tip && layer._map) {
      layer.openTooltip();
      tips.push(tip.getElement() ? tip.getElement().textContent : '');
    }
  };
  map.eachLayer(visit);
  return tips;
}
"""
FOLIUM_MAP = "Object.values(window).find((v) => v instanceof L.Map)"


class Watched:
    """A browser context for one role, recording dialogs, page errors and console errors."""

    def __init__(self, browser, base: str) -> None:  # type: ignore[no-untyped-def]
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.add_init_script(WATCH)
        self.base = base
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.external: list[str] = []
        self.page = self.context.new_page()
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror {e}"))
        self.page.on(
            "console",
            lambda m: self.errors.append(f"console {m.text}") if m.type == "error" else None,
        )
        self.page.route("**/*", self._route)

    def _route(self, r) -> None:  # type: ignore[no-untyped-def]
        url = r.request.url
        if url.startswith(("http://127.0.0.1", "data:", "blob:", "file:")):
            r.continue_()
        else:
            self.external.append(url)
            r.abort()

    def open(self, path: str) -> None:
        """Go to a page (or a file: URL) and wait for it to settle."""
        url = path if path.startswith("file:") else self.base + path
        response = self.page.goto(url)
        assert response is None or response.status == 200, (path, response.status)
        self.page.wait_for_load_state("load")

    def check(self, where: str) -> None:
        """Nothing ran, nothing was blocked, nothing failed."""
        page = self.page
        assert page.evaluate("typeof window.__xss") == "undefined", where
        assert page.evaluate("window.__csp") == [], where
        assert page.locator('img[src="x"], b:text-is("u"), i:text-is("r")').count() == 0, where
        assert self.dialogs == [], where
        assert self.errors == [], where
        assert self.external == [], where


def _open_map(w: Watched, path: str, *, expect: list[str]) -> list[str]:
    w.open(path)
    page = w.page
    wait_until(page, "typeof L === 'object'")
    page.wait_for_selector(".leaflet-overlay-pane path", state="attached", timeout=20_000)
    assert page.locator(".leaflet-map-pane .leaflet-overlay-pane").count() == 1
    tips = page.evaluate(f"({OPEN_ALL})({FOLIUM_MAP})")
    page.wait_for_timeout(100)
    text = page.inner_text("body")
    for payload in expect:
        assert payload in text or any(payload in t for t in tips), (path, payload)
    # A real hover too: the pointer over the map's middle shows a tooltip there, as text.
    box = page.locator(".folium-map").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(100)
    w.check(path)
    return tips


def _editor(w: Watched, community: str, cell: str, neighbour: str) -> None:
    page = w.page
    w.open(f"/ui/communities/{community}/editor")
    page.wait_for_selector("#editor[data-ready=true]", timeout=30_000)
    tips = page.evaluate(f"({OPEN_ALL})(window.gridsvcEditor.map)")
    assert any(IMG in t for t in tips)  # building and cell names as text
    assert any(neighbour in t for t in tips)  # the payload code as text
    # Preview a merge of the 格长's cell with the payload-coded neighbour.
    page.click("#tool-merge")
    page.evaluate(
        "([a, b]) => { const s = window.gridsvcEditor.state.selectedCells; s.add(a); s.add(b); }",
        [cell, neighbour],
    )
    page.click("#preview")
    page.wait_for_selector("#balance", timeout=30_000)
    impact = page.inner_text("#impact")
    assert neighbour in impact  # the code, shown as text in the balance table
    if "人员变动" in impact:  # the people who move or leave, by name
        assert IMG in impact or BREAKOUT in impact
    page.click("#cancel")
    w.check("editor")


def test_no_stored_text_runs_in_any_page(browser, planted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    base, password = planted["url"], planted["password"]
    cell, community, neighbour = planted["cell"], planted["community"], planted["neighbour"]
    api = httpx.Client(base_url=base, timeout=60)
    roles = {
        "xss_admin": True,  # may edit
        "jiedao": True,
        "shequ": True,
        "gezhang": False,
        "xss_viewer": False,
    }
    for user, edits in roles.items():
        w = Watched(browser, base)
        try:
            sign_in(w.page, base, user, password)
            w.check(f"{user} home")
            if user == "gezhang":  # a 格长's home is the workbench (待办 with the cases' text)
                assert w.page.locator("#todo, #todo-empty").count() == 1
            else:
                assert BREAKOUT in w.page.inner_text("#communities")
            tips = _open_map(w, f"/ui/cells/{cell}", expect=[IMG])
            assert IMG in tips  # the road's hover tooltip shows its name as text
            assert neighbour in tips  # the neighbour's code tooltip
            _open_map(w, f"/ui/communities/{community}", expect=[neighbour, BREAKOUT])
            if user == "xss_admin":
                w.page.select_option("#metric", "open_incidents")  # the bar's own script
                w.page.wait_for_url("**metric=open_incidents")
                w.page.wait_for_selector(
                    ".leaflet-overlay-pane path", state="attached", timeout=20_000
                )
                w.check("metric switch")
            if edits:
                _editor(w, community, cell, neighbour)
            # The self-contained export, opened from disk.
            token = api.post(
                "/api/v1/auth/token", data={"username": user, "password": password}
            ).json()["access_token"]
            for kind, code in (("cell", cell), ("community", community)):
                export = api.get(
                    f"/api/v1/exports/{kind}/{code}",
                    params={"format": "html"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert export.status_code == 200, export.text
                path = tmp_path / f"{user}-{kind}.html"
                path.write_bytes(export.content)
                _open_map(w, path.as_uri(), expect=[neighbour])
            if user == "xss_admin":
                w.open("/docs")
                w.page.wait_for_selector('[data-path="/api/v1/lookup"]', timeout=20_000)
                w.check("docs")
                w.page.screenshot(path=str(ARTIFACTS / "xss-docs.png"))
        finally:
            w.page.screenshot(path=str(ARTIFACTS / f"xss-{user}.png"))
            w.context.close()

    # The server heard of no violation either; and it does hear of one (the check is live).
    admin = api.post(
        "/api/v1/auth/token", data={"username": "xss_admin", "password": password}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {admin}"}
    time.sleep(0.5)
    assert api.get("/api/v1/csp-reports", headers=headers).json()["count"] == 0
    w = Watched(browser, base)
    sign_in(w.page, base, "xss_admin", password)
    w.page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__xss = 1'; document.body.append(s); }"
    )
    wait_until(w.page, "window.__csp.length > 0")
    assert w.page.evaluate("typeof window.__xss") == "undefined"  # blocked, not run
    for _ in range(50):
        if api.get("/api/v1/csp-reports", headers=headers).json()["count"] >= 1:
            break
        time.sleep(0.1)
    assert api.get("/api/v1/csp-reports", headers=headers).json()["count"] == 1
    w.context.close()
    assert time.monotonic() - start < 120
