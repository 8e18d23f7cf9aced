"""The hot path's round trips (issue 14): a point lookup runs its query and nothing else — no
pool ping, no BEGIN/ROLLBACK, no actor settings — and a write sends its actor once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from tests.conftest import TWO_CELLS_ORIGIN, TWO_CELLS_SIZE, scratch_database, seed_two_cells

PASSWORD = "hot-path-password"
COMMUNITY = "320102777001"


@pytest.fixture
def live_app(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, str, list[str]]]:
    """The app on its own engine and a committed scratch database (with the principal cache
    on, as in production), its client signed in as the admin `boss`."""
    from gridsvc.db import engine as engine_module
    from gridsvc.main import create_app
    from gridsvc.settings import get_settings

    caches = (get_settings, engine_module.get_engine, engine_module._session_factory)
    with scratch_database("gridsvc_hot_path") as url:
        codes = seed_two_cells(url, "320102777", COMMUNITY, PASSWORD)
        monkeypatch.setenv("GRIDSVC_DATABASE_URL", url)
        monkeypatch.setenv("GRIDSVC_PRINCIPAL_CACHE_SECONDS", "10")
        monkeypatch.setenv("GRIDSVC_LOAD_DEMO", "false")
        for cached in caches:
            cached.cache_clear()
        try:
            with TestClient(create_app()) as client:
                token = client.post(
                    "/api/v1/auth/token", data={"username": "boss", "password": PASSWORD}
                ).json()["access_token"]
                client.headers["Authorization"] = f"Bearer {token}"
                yield client, url, codes
        finally:
            engine_module.get_engine().dispose()
            monkeypatch.delenv("GRIDSVC_DATABASE_URL")
            for cached in caches:
                cached.cache_clear()


def test_a_lookup_is_one_query_and_a_write_names_its_actor_once(
    live_app: tuple[TestClient, str, list[str]],
) -> None:
    from gridsvc.db.engine import get_engine
    from gridsvc.testing import count_statements

    client, url, codes = live_app
    x0, y0 = TWO_CELLS_ORIGIN
    path = f"/api/v1/lookup?lon={x0 + TWO_CELLS_SIZE / 2}&lat={y0 + TWO_CELLS_SIZE / 2}"
    assert client.get(path).json()["cell_code"] == codes[0]  # the token's check is cached now

    with count_statements(get_engine()) as seen:
        hit = client.get(path)
    assert hit.status_code == 200 and hit.json()["cell_code"] == codes[0]
    # The lookup's SELECT alone: no pre-ping, no BEGIN/ROLLBACK, no set_config of the actor.
    assert len(seen) == 1 and seen[0].startswith("SELECT cell.id"), seen
    assert not any("set_config" in s for s in seen), seen

    with count_statements(get_engine()) as seen:
        person = client.post(
            "/api/v1/people",
            json={"name": "热路径", "community": COMMUNITY, "phone": "13800002222"},
        )
    assert person.status_code == 201, person.text
    assert sum("gridsvc.actor" in s for s in seen) == 1, seen  # once, before the write
    engine = create_engine(url)
    with engine.connect() as conn:
        actor = conn.execute(
            text("SELECT actor FROM audit_event WHERE table_name = 'person' AND row_id = :id"),
            {"id": person.json()["id"]},
        ).scalar_one()
    engine.dispose()
    assert actor == "boss"  # the audit trigger still names who wrote


def test_a_rolled_back_savepoint_does_not_lose_the_actor(db: Session) -> None:
    """The actor is sent with the first write; when that write was inside a SAVEPOINT that is
    rolled back (a dry run, a failed roster row), the next write still names the actor."""
    from gridsvc.models import User
    from gridsvc.services import audit

    audit.set_actor(db, "审计员")
    with db.begin_nested() as savepoint:
        db.add(User(username="dry-run", password_hash="x", role="admin"))
        db.flush()
        savepoint.rollback()
    db.add(User(username="kept", password_hash="x", role="admin"))
    db.flush()
    actor = db.execute(
        text("SELECT actor FROM audit_event WHERE table_name = 'app_user' ORDER BY id DESC LIMIT 1")
    ).scalar_one()
    assert actor == "审计员"


def test_a_read_only_session_refuses_to_write(engine: Engine) -> None:
    """A session made for plain reads (autocommit) would write outside any transaction and
    unaudited: refused before anything is sent, and nothing is stored."""
    from gridsvc.db.engine import read_only
    from gridsvc.models import User

    with Session(engine) as session:
        read_only(session)
        assert session.execute(text("SELECT 1")).scalar_one() == 1
        session.add(User(username="never-stored", password_hash="x", role="admin"))
        with pytest.raises(RuntimeError, match="read-only"):
            session.flush()
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM app_user WHERE username = 'never-stored'"))
        assert stored.scalar_one() == 0
