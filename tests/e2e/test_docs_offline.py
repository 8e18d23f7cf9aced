"""The API docs page renders in a real browser with the internet blocked."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_swagger_docs_render_offline(page, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server_url}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "gridsvc" in page.inner_text(".swagger-ui .info .title")
    # The operations of the API are listed (the OpenAPI document loaded and rendered).
    page.wait_for_selector('[data-path="/api/v1/lookup"]', timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "docs.png"))
    assert page.external_requests == []
