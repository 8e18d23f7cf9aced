"""CSRF in a real browser: a page on another port of the same host (the same *site*, so the
SameSite=Strict cookie goes along) tries to import a roster and to sign the user out; neither
works, while the service's own 退出 button does."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser

ATTACK = """<!doctype html><html><body>
<form id="out" method="post" action="{base}/ui/logout" target="sink"></form>
<iframe name="sink"></iframe>
<script>
  const fd = new FormData();
  fd.append("commit", "true");
  fd.append("file", new Blob(["姓名,电话,角色,网格编码\\n跨站人,13511112222,网格员,{cell}\\n"],
                             {{ type: "text/csv" }}), "r.csv");
  fetch("{base}/api/v1/imports/roster", {{ method: "POST", body: fd, credentials: "include",
                                          mode: "no-cors" }})
    .then(() => {{ document.getElementById("out").submit(); }})
    .finally(() => {{ setTimeout(() => {{ document.title = "done"; }}, 500); }});
</script></body></html>"""


@contextlib.contextmanager
def _neighbour(html: str) -> Iterator[str]:
    """Another web server on 127.0.0.1, on a port of its own, serving one page."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        thread.join(5)


def _people(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM person")).scalar_one()
    engine.dispose()
    return n


def test_a_neighbour_port_cannot_write_or_sign_out(page, demo_site) -> None:  # type: ignore[no-untyped-def]
    base = str(demo_site["url"])
    api = httpx.Client(base_url=base, timeout=30)
    token = api.post(
        "/api/v1/auth/token", data={"username": "jiedao", "password": demo_site["password"]}
    ).json()["access_token"]
    cells = api.get("/api/v1/cells", headers={"Authorization": f"Bearer {token}"}).json()
    cell = cells["features"][0]["properties"]["code"]
    sign_in(page, base, "jiedao", str(demo_site["password"]))
    before = _people(str(demo_site["database_url"]))
    with _neighbour(ATTACK.format(base=base, cell=cell)) as attacker:
        page.goto(attacker)
        page.wait_for_function("document.title === 'done'", timeout=30_000)
    assert _people(str(demo_site["database_url"])) == before  # nothing imported
    page.goto(f"{base}/ui/")
    assert page.url == f"{base}/ui/"  # still signed in: the forged logout did nothing
    # Our own button signs out, and then the pages ask for sign-in again.
    page.click("#logout")
    page.wait_for_url(f"{base}/ui/login")
    page.goto(f"{base}/ui/")
    assert "/ui/login" in page.url
