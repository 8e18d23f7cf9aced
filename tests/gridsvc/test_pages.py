"""Every web page renders for its users, loads nothing from the internet, and keeps scope."""

# ruff: noqa: F811  (the users fixture is imported from test_api)
from __future__ import annotations

from fastapi.testclient import TestClient

from maps.assets import external_assets
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet, sign_in_form
from tests.gridsvc.test_api import users  # noqa: F401  (fixture)


def _sign_in(client: TestClient, username: str) -> None:
    response = sign_in_form(client, username, TEST_PASSWORD)
    assert response.status_code == 303, response.text
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_every_page_renders_offline(client: TestClient, users: SmallStreet) -> None:
    _sign_in(client, "street1")
    pages = [
        "/ui/",
        f"/ui/cells/{users.cell_codes[0]}",
        f"/ui/cells/{users.cell_codes[0]}?colour_by=elderly_alone",
        f"/ui/communities/{users.community_code}",
        f"/ui/communities/{users.community_code}?metric=visited_share",
        f"/ui/communities/{users.community_code}/editor",
        "/ui/logout",  # only asks to confirm: the pages after it still load
        "/ui/login",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")
        assert external_assets(response.text) == [], path
        for asset in ("/static/vendor/", "/static/ui/"):
            for url in [u for u in response.text.split('"') if u.startswith(asset)]:
                assert client.get(url).status_code == 200, url


def test_pages_keep_scope_and_roles(client: TestClient, users: SmallStreet) -> None:
    # Not signed in: sent to the sign-in page, with the way back.
    response = client.get(f"/ui/cells/{users.cell_codes[0]}", follow_redirects=False)
    assert response.status_code == 303
    assert "/ui/login?next=" in response.headers["location"]

    _sign_in(client, "leader1")
    assert client.get(f"/ui/cells/{users.cell_codes[0]}").status_code == 200
    other = client.get(f"/ui/cells/{users.cell_codes[1]}")
    assert other.status_code == 403 and "没有权限" in other.text
    editor = client.get(f"/ui/communities/{users.community_code}/editor")
    assert editor.status_code == 403  # 格长 do not redraw
    unknown = client.get("/ui/cells/000")
    assert unknown.status_code == 404 and "未找到" in unknown.text
    bad = client.get(f"/ui/cells/{users.cell_codes[0]}?colour_by=shoe_size")
    assert bad.status_code == 422 and "shoe_size" in bad.text

    # A viewer's cell map carries no personal names or phones.
    client.cookies.clear()
    _sign_in(client, "viewer1")
    page = client.get(f"/ui/cells/{users.cell_codes[0]}")
    assert page.status_code == 200
    assert "住户" not in page.text  # the household layer is left out for viewers


def test_sign_in_refuses_open_redirects(client: TestClient, users: SmallStreet) -> None:
    response = sign_in_form(client, "street1", next="https://evil.example/")
    assert response.headers["location"] == "/ui/"
    wrong = sign_in_form(client, "street1", "nope")
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text


def test_retired_cell_page_names_its_successor(client: TestClient, users: SmallStreet) -> None:
    from tests.gridsvc.conftest import token_for

    headers = token_for(client, "street1")
    url = f"/api/v1/communities/{users.community_code}/redraw"
    for other in users.cell_codes[1:]:  # the first cell and a neighbour sharing an edge
        body = {"op": "merge", "cells": [users.cell_codes[0], other], "reason": "合并测试"}
        preview = client.post(f"{url}/preview", json=body, headers=headers)
        if preview.status_code == 200:
            break
    assert preview.status_code == 200, preview.text
    commit = client.post(
        f"{url}/commit", json=body, headers={**headers, "If-Match": preview.headers["ETag"]}
    )
    impact = commit.json()["impact"]
    retired, created = impact["cells_retired"][0], impact["cells_created"][0]
    _sign_in(client, "street1")
    page = client.get(f"/ui/cells/{retired}")
    assert page.status_code == 404
    assert "retired" in page.text and created in page.text
