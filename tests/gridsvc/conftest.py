"""Real PostGIS for the service tests: the same embedded cluster the server uses.

The test database (``gridsvc_test``) is migrated once per run; each test runs inside a
transaction that is rolled back at its end (routes that commit only release a savepoint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

TEST_PASSWORD = "test-password-123"


def token_for(client: TestClient, username: str, password: str = TEST_PASSWORD) -> dict[str, str]:
    """Sign in and return the Authorization header."""
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def sign_in_form(
    client: TestClient, username: str, password: str = TEST_PASSWORD, next: str = "/ui/"
) -> Any:
    """Sign in through the web form as a browser does: fetch the form (its token comes in a
    hidden field and a pre-session cookie), then post it back. Returns the response."""
    form = client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    data = {"username": username, "password": password, "next": next}
    return client.post(
        "/ui/login", data={**data, "csrf_token": token[1] if token else ""}, follow_redirects=False
    )


@dataclass
class SmallStreet:
    """A hand-made street: one community of 2×2 square cells, one building per cell."""

    street_code: str
    community_code: str
    cell_codes: list[str]


@pytest.fixture
def small_street(db: Session) -> SmallStreet:
    """Street 320102099 → community 320102099001 → four cells (codes in reading order)."""
    import geopandas as gpd

    from gridsvc.models import Building, Community
    from gridsvc.repositories.bulk import to_db_geometry
    from gridsvc.services.imports import create_cells, ensure_street

    street_id = ensure_street(
        db,
        street_code="320102099",
        street_name="测试街道",
        district_code="320102",
        district_name="玄武区",
    )
    x0, y0, d = 118.90, 32.10, 0.004
    community = Community(
        code="320102099001",
        name="测试社区",
        street_id=street_id,
        geom=to_db_geometry(shapely.box(x0, y0, x0 + 2 * d, y0 + 2 * d)),
    )
    db.add(community)
    db.flush()
    # Cells given north-east, south-west, north-west, south-east: codes must follow reading order.
    squares = [(1, 1), (0, 0), (0, 1), (1, 0)]
    cells = gpd.GeoDataFrame(
        geometry=[
            shapely.box(x0 + i * d, y0 + j * d, x0 + (i + 1) * d, y0 + (j + 1) * d)
            for i, j in squares
        ],
        crs=4326,
    )
    for n, (i, j) in enumerate(squares):
        cx, cy = x0 + (i + 0.5) * d, y0 + (j + 0.5) * d
        db.add(
            Building(
                source="test",
                source_id=f"b{n}",
                name=f"{n + 1}栋",
                kind="residential",
                households=10 * (n + 1),
                community_id=community.id,
                footprint=to_db_geometry(shapely.box(cx - 1e-4, cy - 1e-4, cx + 1e-4, cy + 1e-4)),
            )
        )
    db.flush()
    summary = create_cells(db, cells, community=None)
    return SmallStreet("320102099", "320102099001", summary.codes)
