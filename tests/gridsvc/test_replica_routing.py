"""Read replicas (issue 17, item 1), without a cluster: the "replica" is the same scratch
database reached through a connection that refuses writes (default_transaction_read_only), so
a write sent there fails, and which engine ran each statement shows where a request went.
The real cluster (streaming replicas, a replica that is behind) is in test_cluster.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from tests.conftest import TWO_CELLS_ORIGIN, TWO_CELLS_SIZE, scratch_database, seed_two_cells

PASSWORD = "replica-routing-password"
COMMUNITY = "320102778001"
X, Y = TWO_CELLS_ORIGIN[0] + TWO_CELLS_SIZE / 2, TWO_CELLS_ORIGIN[1] + TWO_CELLS_SIZE / 2
LOOKUP = f"/api/v1/lookup?lon={X}&lat={Y}"


@dataclass
class Routed:
    client: TestClient
    codes: list[str]


def _read_only(url: str) -> str:
    return (
        make_url(url)
        .update_query_dict(
            {"options": "-c default_transaction_read_only=on", "application_name": "replica"}
        )
        .render_as_string(hide_password=False)
    )


def _clear_caches() -> None:
    from gridsvc.db import engine as engine_module
    from gridsvc.settings import get_settings

    for cached in (
        get_settings,
        engine_module.get_engine,
        engine_module._session_factory,
        engine_module.replicas,
        engine_module._position_engine,
    ):
        cached.cache_clear()


@pytest.fixture(scope="module")
def scratch_url(database_url: str) -> Iterator[str]:
    """A committed scratch database with two cells and the admin `boss`."""
    with scratch_database("gridsvc_replica_routing") as url:
        seed_two_cells(url, "320102778", COMMUNITY, PASSWORD)
        yield url


@pytest.fixture
def routed(scratch_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Routed]:
    """The app with the scratch database as primary and a read-only way into it as its one
    replica, after an unreachable replica (port 1) that is tried first."""
    from gridsvc.db import engine as engine_module
    from gridsvc.main import create_app

    dead = make_url(scratch_url).set(port=1).render_as_string(hide_password=False)
    monkeypatch.setenv("GRIDSVC_DATABASE_URL", scratch_url)
    monkeypatch.setenv("GRIDSVC_REPLICA_URLS", f"{dead} {_read_only(scratch_url)}")
    monkeypatch.setenv("GRIDSVC_LOAD_DEMO", "false")
    _clear_caches()
    try:
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            token = client.post(
                "/api/v1/auth/token", data={"username": "boss", "password": PASSWORD}
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            yield Routed(client, [])
    finally:
        engine_module.get_engine().dispose()
        engine_module._position_engine().dispose()
        for replica in engine_module.replicas():
            replica.engine.dispose()
        monkeypatch.delenv("GRIDSVC_DATABASE_URL")
        monkeypatch.delenv("GRIDSVC_REPLICA_URLS")
        _clear_caches()


def test_reads_go_to_a_live_replica_and_writes_to_the_primary(routed: Routed) -> None:
    from gridsvc.db.engine import LSN_COOKIE, LSN_HEADER, get_engine, replicas
    from gridsvc.testing import count_statements

    client = routed.client
    dead, replica = replicas()
    # Reads: the dead replica costs at most one 503 (the client retries), then is left out.
    answers = [client.get(LOOKUP).status_code for _ in range(4)]
    assert answers.count(503) <= 1 and answers[-2:] == [200, 200], answers
    assert not dead.available
    with count_statements(get_engine()) as on_primary, count_statements(replica.engine) as there:
        hit = client.get(LOOKUP)
        cells = client.get(f"/api/v1/communities/{COMMUNITY}/cells")
    assert hit.status_code == 200 and cells.status_code == 200, (hit.text, cells.text)
    assert any(s.startswith("SELECT cell.id") for s in there), there
    assert on_primary == [], on_primary

    # A write: the primary, and the answer carries the commit position (header and cookie).
    with count_statements(get_engine()) as on_primary, count_statements(replica.engine) as there:
        person = client.post(
            "/api/v1/people",
            json={"name": "读写分离", "community": COMMUNITY, "phone": "13800003333"},
        )
    assert person.status_code == 201, person.text
    assert any(s.startswith("INSERT INTO person") for s in on_primary), on_primary
    assert not any(s.startswith("INSERT") for s in there), there
    position = person.headers[LSN_HEADER]
    assert "/" in position and client.cookies.get(LSN_COOKIE) == position


def test_a_read_goes_to_the_primary_while_the_replica_lacks_the_clients_write(
    routed: Routed,
) -> None:
    """A client whose last write lies beyond what the replica has reads from the primary; a
    replica that has it serves the read; a malformed position is ignored."""
    from gridsvc.db.engine import LSN_HEADER, get_engine, replicas
    from gridsvc.testing import count_statements

    client = routed.client
    replica = replicas()[1]
    replicas()[0].mark_down()  # not the subject here
    client.cookies.clear()
    for position, expected in (
        ("FFFFFFFF/0", "primary"),
        ("0/1", "replica"),
        ("x'; --", "replica"),
    ):
        with (
            count_statements(get_engine()) as on_primary,
            count_statements(replica.engine) as there,
        ):
            hit = client.get(LOOKUP, headers={LSN_HEADER: position})
        assert hit.status_code == 200, hit.text
        served = on_primary if expected == "primary" else there
        other = there if expected == "primary" else on_primary
        assert any(s.startswith("SELECT cell.id") for s in served), (position, served)
        assert not any(s.startswith("SELECT cell.id") for s in other), (position, other)


def test_a_replica_may_be_one_multi_host_url_preferring_standbys(scratch_url: str) -> None:
    """``…?host=a&host=b&target_session_attrs=prefer-standby``: libpq skips a host that is
    down and, with no standby among them, reads from the primary; a server that is not in
    recovery has replayed everything it has written."""
    from gridsvc.db.engine import Replica

    url = make_url(scratch_url)
    hosts = f"host=127.0.0.1:1&host={url.host}:{url.port}"
    multi = (
        f"postgresql+psycopg://{url.username}:{url.password}@/{url.database}"
        f"?{hosts}&target_session_attrs=prefer-standby"
    )
    replica = Replica(multi)
    try:
        assert replica.has_replayed("0/1")
        assert not replica.has_replayed("FFFFFFFF/0")
        with replica.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT inet_server_port()").scalar() == url.port
    finally:
        replica.engine.dispose()
