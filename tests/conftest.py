"""Fixtures shared by every test package: where the real OSM extracts live."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

T = TypeVar("T")

SHARED_DATA = Path(
    os.environ.get(
        "GRIDSVC_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


def _require_shared() -> bool:
    return os.environ.get("GRIDSVC_REQUIRE_SHARED_DATA", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real OpenStreetMap extracts (../shared/data).

    Skips the test when it is absent, unless GRIDSVC_REQUIRE_SHARED_DATA=1, where it fails.
    """
    if not (SHARED_DATA / "nanjing_xinjiekou" / "buildings.geojson").is_file():
        message = f"real OSM extracts not found at {SHARED_DATA}"
        if _require_shared():
            pytest.fail(message + " (GRIDSVC_REQUIRE_SHARED_DATA is set)")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def nanjing(shared_data: Path) -> Path:
    """Nanjing 新街口 extract folder."""
    return shared_data / "nanjing_xinjiekou"


@pytest.fixture(scope="session")
def beijing(shared_data: Path) -> Path:
    """Beijing 学院路 extract folder."""
    return shared_data / "beijing_haidian_xueyuanlu"


# -- real PostGIS: the embedded cluster the server uses, database gridsvc_test ----------
os.environ.setdefault("GRIDSVC_ENVIRONMENT", "test")
os.environ.setdefault("GRIDSVC_EMBEDDED_DB_NAME", "gridsvc_test")
# Each test's users live in a rolled-back transaction: never reuse a verified token across tests.
os.environ.setdefault("GRIDSVC_PRINCIPAL_CACHE_SECONDS", "0")
# Tests sign in far more often than a person: the sign-in rate limit has its own test.
os.environ.setdefault("GRIDSVC_LOGIN_ATTEMPTS_PER_MINUTE", "1000000")

from gridsvc.db import migrate  # noqa: E402  (after the environment defaults above)
from gridsvc.db.engine import get_session  # noqa: E402
from gridsvc.settings import get_settings  # noqa: E402


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


@contextlib.contextmanager
def scratch_database(name: str, *, migrated: bool = True) -> Iterator[str]:
    """A database of its own in the embedded cluster (migrated unless told not to), dropped
    afterwards: for tests whose writes must really commit (live servers, the CLI, faults).

    Skips the test when an external database is configured (no cluster to create it in)."""
    from gridsvc.localdb import embedded_cluster

    if get_settings().db.database_url:
        pytest.skip("needs the embedded cluster for a scratch database")
    cluster = embedded_cluster()
    cluster.drop_database(name)
    url = cluster.ensure_database(name)
    if migrated:
        migrate.upgrade(url)
    try:
        yield url
    finally:
        cluster.drop_database(name)


def load_demo(url: str) -> str:
    """Load the generated demo street and its users (jiedao, shequ, gezhang) into the database
    at `url`; returns their shared password."""
    from gridsvc.bootstrap import ensure_demo

    engine = create_engine(url)
    with Session(engine) as session:
        logins = ensure_demo(session, say=lambda *_: None)
        session.commit()
    engine.dispose()
    return logins[0][1]


#: The two-cell community of the live-server tests: 2 × 1 squares of 0.004° from here.
TWO_CELLS_ORIGIN, TWO_CELLS_SIZE = (118.9, 32.1), 0.004


def seed_two_cells(url: str, street: str, community: str, password: str) -> list[str]:
    """A 2×1 community (west and east cell) with a 格长 person for the west cell, an admin
    user `boss` and a 格长 user `gz` of the west cell, committed; returns the cell codes."""
    import geopandas as gpd
    import shapely
    from sqlalchemy import text

    from gridsvc.models import Community, Person, RoleAssignment
    from gridsvc.repositories.bulk import to_db_geometry
    from gridsvc.services.imports import create_cells, ensure_street
    from gridsvc.services.users import ScopeSpec, create_user

    (x0, y0), d = TWO_CELLS_ORIGIN, TWO_CELLS_SIZE
    migrate.upgrade(url)
    engine = create_engine(url)
    with Session(engine) as s:
        street_id = ensure_street(s, street_code=street, street_name="测试街道")
        s.add(
            Community(
                code=community,
                name="测试社区",
                street_id=street_id,
                geom=to_db_geometry(shapely.box(x0, y0, x0 + 2 * d, y0 + d)),
            )
        )
        s.flush()
        cells = gpd.GeoDataFrame(
            geometry=[
                shapely.box(x0, y0, x0 + d, y0 + d),
                shapely.box(x0 + d, y0, x0 + 2 * d, y0 + d),
            ],
            crs=4326,
        )
        codes = sorted(create_cells(s, cells).codes)
        west = s.execute(text("SELECT id FROM cell WHERE code = :c"), {"c": codes[0]}).scalar()
        leader = Person(name="钱格长")
        s.add(leader)
        s.flush()
        s.add(RoleAssignment(person_id=leader.id, role="leader", cell_id=west))
        create_user(s, username="boss", password=password, role="admin")
        create_user(
            s, username="gz", password=password, role="leader", scope=ScopeSpec("cell", codes[0])
        )
        s.commit()
    engine.dispose()
    return codes


def race(calls: list[Callable[[], T]], timeout: float = 60) -> list[T]:
    """Run the calls at the same instant from one thread each (real concurrent clients);
    their results in order. Fails if a call has not returned within `timeout` seconds."""
    barrier = threading.Barrier(len(calls))
    results: list[T | None] = [None] * len(calls)

    def go(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert all(r is not None for r in results), "a racing call did not return"
    return results  # type: ignore[return-value]
