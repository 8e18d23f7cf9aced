"""Real PostGIS for the service tests: the same embedded cluster the server uses.

The test database (``gridsvc_test``) is migrated once per run; each test runs inside a
transaction that is rolled back at its end (routes that commit only release a savepoint).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

os.environ.setdefault("GRIDSVC_ENVIRONMENT", "test")
os.environ.setdefault("GRIDSVC_EMBEDDED_DB_NAME", "gridsvc_test")

from gridsvc.db import migrate
from gridsvc.db.engine import get_session
from gridsvc.settings import get_settings

TEST_PASSWORD = "test-password-123"


def _test_database_url() -> tuple[str, bool]:
    """URL of a clean, migrated test database, and whether we started the cluster."""
    settings = get_settings()
    if settings.db.database_url:
        return settings.db.database_url, False
    from gridsvc.localdb import embedded_cluster

    cluster = embedded_cluster()
    started = cluster.start()
    cluster.drop_database(settings.db.embedded_db_name)
    return cluster.ensure_database(settings.db.embedded_db_name), started


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated test database; the embedded cluster is stopped afterwards if we started it."""
    url, started = _test_database_url()
    migrate.upgrade(url)
    yield url
    if started:
        from gridsvc.localdb import embedded_cluster

        embedded_cluster().stop()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """Engine on the test database."""
    eng = create_engine(database_url, pool_pre_ping=True)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back when the test ends."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def client(db: Session) -> Iterator[TestClient]:
    """An HTTP client of the app, whose requests use the test's session."""
    from gridsvc.main import create_app

    app = create_app()

    def _session() -> Iterator[Session]:
        yield db

    app.dependency_overrides[get_session] = _session
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def token_for(client: TestClient, username: str, password: str = TEST_PASSWORD) -> dict[str, str]:
    """Sign in and return the Authorization header."""
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


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
