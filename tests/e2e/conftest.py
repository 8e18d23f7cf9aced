"""A real gridsvc server on loopback and headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import load_demo, scratch_database

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _chromium() -> str:
    path = os.environ.get("GRIDSVC_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Debian chromium not found: apt-get install chromium (scripts/dev does it)")
    return path


@pytest.fixture(scope="session")
def server_url(database_url: str) -> Iterator[str]:
    """gridsvc served by uvicorn on a free loopback port, on the (migrated) test database."""
    from gridsvc.testing import serve_in_subprocess

    with serve_in_subprocess(database_url) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium (Debian's), launched by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    """A fresh page that blocks every request leaving loopback and records it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.external_requests = []  # type: ignore[attr-defined]

    def route(r):  # type: ignore[no-untyped-def]
        url = r.request.url
        if url.startswith(("http://127.0.0.1", "data:", "blob:")):
            r.continue_()
        else:
            page.external_requests.append(url)  # type: ignore[attr-defined]
            r.abort()

    page.route("**/*", route)
    ARTIFACTS.mkdir(exist_ok=True)
    yield page
    context.close()


@pytest.fixture(scope="session")
def demo_site(database_url: str) -> Iterator[dict[str, object]]:
    """A scratch database with the generated demo street and its users, served by gridsvc.

    Yields {"url": ..., "database_url": ..., "password": ...}: the demo users jiedao (street
    staff), shequ (community staff) and gezhang (格长 of the first cell) share that password.
    Pages may commit here without disturbing other tests.
    """
    from gridsvc.testing import serve_in_subprocess

    with scratch_database("gridsvc_e2e") as url:
        password = load_demo(url)
        with serve_in_subprocess(url) as base:
            yield {"url": base, "database_url": url, "password": password}


def sign_in(page, base: str, user: str, password: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in through the web form (sets the session cookie)."""
    page.goto(f"{base}/ui/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/ui/**")


def wait_until(page, expression: str, timeout: float = 20_000) -> None:  # type: ignore[no-untyped-def]
    """Poll a JavaScript expression until it is truthy (``timeout`` in ms).

    Not ``page.wait_for_function``: its polling compiles the predicate with ``new Function`` in
    the page, which our Content-Security-Policy (no 'unsafe-eval') rightly refuses; a plain
    ``evaluate`` is run by the debugger protocol and is not subject to the page's policy.
    """
    import time

    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout / 1000:.0f} s: {expression}")
        page.wait_for_timeout(100)
