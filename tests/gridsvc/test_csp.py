"""Every response carries the Content-Security-Policy and nosniff; pages run only nonced or
hashed scripts; violation reports are counted (issue 12 item 3)."""

# ruff: noqa: F811  (the users fixture is imported from test_api)
from __future__ import annotations

import re

from fastapi.testclient import TestClient

from gridsvc import csp
from gridsvc.api.csp import violations
from tests.gridsvc.conftest import SmallStreet, token_for
from tests.gridsvc.test_api import users  # noqa: F401  (fixture)
from tests.gridsvc.test_pages import _sign_in


def _directives(value: str) -> dict[str, list[str]]:
    out = {}
    for part in value.split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


def _check_policy(value: str, *, meta: bool = False) -> dict[str, list[str]]:
    d = _directives(value)
    assert d["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in d["script-src"] and "'unsafe-eval'" not in d["script-src"]
    assert d["object-src"] == ["'none'"] and d["base-uri"] == ["'none'"]
    assert d["form-action"] == ["'self'"]
    if not meta:
        assert d["frame-ancestors"] == ["'none'"]
        assert d["report-uri"] == [csp.REPORT_PATH]
    return d


def _check_scripts_nonced(page: str, nonce: str) -> None:
    tags = re.findall(r"<script\b[^>]*>", page)
    assert tags
    for tag in tags:
        assert f'nonce="{nonce}"' in tag or " src=" in tag, tag
    # No inline event handlers: the policy would block them (and so would break the page).
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", page)


def test_every_html_response_has_the_policy(client: TestClient, users: SmallStreet) -> None:
    _sign_in(client, "street1")
    pages = {
        "/ui/": False,
        "/ui/login": False,
        f"/ui/cells/{users.cell_codes[0]}": True,
        f"/ui/communities/{users.community_code}": True,
        f"/ui/communities/{users.community_code}/editor": False,
        "/ui/cells/000": False,  # the 404 page
        "/docs": True,
        "/docs/oauth2-redirect": True,
    }
    nonces = set()
    for path, inline_scripts in pages.items():
        response = client.get(path)
        assert response.headers["content-type"].startswith("text/html"), path
        assert response.headers["x-content-type-options"] == "nosniff", path
        d = _check_policy(response.headers["content-security-policy"])
        given = [s[len("'nonce-") : -1] for s in d["script-src"] if s.startswith("'nonce-")]
        if inline_scripts:
            (nonce,) = given
            nonces.add(nonce)
            _check_scripts_nonced(response.text, nonce)
        else:  # no inline script, no nonce: nothing inline may run at all
            assert given == [], path
            assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", response.text), path
    assert len(nonces) == sum(pages.values())  # a fresh nonce every time
    # JSON, static files and errors too.
    for path in ("/health", "/api/v1/cells", "/static/ui/editor.js", "/api/v1/nothing-here"):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert "content-security-policy" in response.headers, path


def test_the_html_export_carries_its_policy_with_hashes(
    client: TestClient, users: SmallStreet
) -> None:
    headers = token_for(client, "street1")
    response = client.get(
        f"/api/v1/exports/community/{users.community_code}",
        headers=headers,
        params={"format": "html"},
    )
    assert response.status_code == 200, response.text
    page = response.text
    head = page[: page.index("<script")]
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', head)
    assert meta, "the policy comes before the first script"
    d = _check_policy(meta.group(1), meta=True)
    assert "frame-ancestors" not in d and "report-uri" not in d  # not allowed in a <meta>
    hashes = {s[len("'sha256-") : -1] for s in d["script-src"] if s.startswith("'sha256-")}
    assert hashes == set(csp.script_hashes(page)) and len(hashes) >= 3
    assert "<script src=" not in page


def test_violation_reports_are_counted(client: TestClient, users: SmallStreet) -> None:
    before = violations.count
    report = {
        "csp-report": {
            "document-uri": "http://127.0.0.1/ui/",
            "violated-directive": "script-src-elem",
            "effective-directive": "script-src-elem",
            "blocked-uri": "inline",
        }
    }
    response = client.post(
        csp.REPORT_PATH, json=report, headers={"Content-Type": "application/csp-report"}
    )
    assert response.status_code == 204
    assert violations.count == before + 1
    # Junk is a clear 4xx, never a 500, and is not counted.
    assert client.post(csp.REPORT_PATH, content=b"\xff not json").status_code == 422
    huge = client.post(csp.REPORT_PATH, content=b"[" + b"{}," * 10_000 + b"{}]")
    assert huge.status_code == 413
    assert client.post(csp.REPORT_PATH, json=[1, 2]).status_code == 422
    assert violations.count == before + 1
    # Staff read the figures; a viewer may not.
    summary = client.get(csp.REPORT_PATH, headers=token_for(client, "street1"))
    assert summary.json()["count"] == before + 1
    assert summary.json()["by_directive"]["script-src-elem"] >= 1
    assert client.get(csp.REPORT_PATH, headers=token_for(client, "viewer1")).status_code == 403


def test_a_flood_of_reports_is_counted_but_not_logged_line_by_line(caplog) -> None:  # type: ignore[no-untyped-def]
    from gridsvc.api.csp import ViolationLog

    log = ViolationLog(log_per_minute=2)
    with caplog.at_level("WARNING", logger="gridsvc.api.csp"):
        for _ in range(50):
            log.add({"csp-report": {"violated-directive": "script-src-elem"}})
    assert log.count == 50 and log.summary()["by_directive"] == {"script-src-elem": 50}
    assert len(caplog.records) == 3  # two reports, then one line saying the rest are counted


def test_a_configured_basemap_may_load_its_tiles(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from gridsvc.services.maps import tile_sources
    from gridsvc.settings import get_settings

    try:
        monkeypatch.setenv("GRIDSVC_MAP_BASEMAP", "tianditu")
        monkeypatch.setenv("GRIDSVC_MAP_TIANDITU_KEY", "k")
        get_settings.cache_clear()
        assert tile_sources() == ["https://*.tianditu.gov.cn"]
        monkeypatch.setenv("GRIDSVC_MAP_BASEMAP", "local")
        monkeypatch.setenv("GRIDSVC_MAP_LOCAL_TILES_URL", "/tiles/{z}/{x}/{y}.png")
        monkeypatch.setenv("GRIDSVC_MAP_LOCAL_TILES_ATTRIBUTION", "区测绘院")
        get_settings.cache_clear()
        assert tile_sources() == []  # our own origin: 'self'
        monkeypatch.setenv("GRIDSVC_MAP_BASEMAP", "none")
        get_settings.cache_clear()
        assert tile_sources() == []
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    policy = _directives(csp.policy(nonce="n", img_sources=["https://*.tianditu.gov.cn"]))
    assert policy["img-src"] == ["'self'", "data:", "blob:", "https://*.tianditu.gov.cn"]


def test_page_templates_escape_everything() -> None:
    from pathlib import Path

    from gridsvc.api.pages import templates

    env = templates.env
    autoescape = env.autoescape(None) if callable(env.autoescape) else env.autoescape
    assert autoescape
    rendered = env.get_template("map_chrome.html").render(
        user={"username": "<b>u</b>"}, title='"><script>x</script>', table=None, links=[]
    )
    assert "<script>x" not in rendered and "&lt;script&gt;x" in rendered
    for path in (Path(__file__).parents[2] / "gridsvc" / "templates").glob("*.html"):
        text = path.read_text()
        assert "|safe" not in text.replace(" ", "") and "autoescape false" not in text, path
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", text), f"inline handler in {path.name}"
