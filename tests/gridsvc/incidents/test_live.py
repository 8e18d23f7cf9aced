"""Against a live server on a scratch database: concurrent transitions on one case (one wins,
the other gets 409), and an Open311 client nobody here wrote (``georeport`` from PyPI)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tests.conftest import race, scratch_database, seed_two_cells

STREET, COMMUNITY = "320102555", "320102555001"
PASSWORD = "live-password-1"


@dataclass
class Live:
    """The server's base URL, the scratch database URL, an Open311 key."""

    base: str
    url: str
    api_key: str

    def headers(self, username: str) -> dict[str, str]:
        """Sign in."""
        r = httpx.post(
            f"{self.base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def live(database_url: str) -> Iterator[Live]:
    """A 2×1 community with a 格长 for the west cell, users, an Open311 key; gridsvc serving."""
    from gridsvc.services.open311 import create_key
    from gridsvc.testing import serve_in_subprocess

    with scratch_database("gridsvc_incidents_live") as url:
        seed_two_cells(url, STREET, COMMUNITY, PASSWORD)
        engine = create_engine(url)
        with Session(engine) as s:
            key = create_key(s, "live-client")
        engine.dispose()
        with serve_in_subprocess(url) as base:
            yield Live(base, url, key)


def test_concurrent_transitions_one_wins(live: Live) -> None:
    boss, gz = live.headers("boss"), live.headers("gz")
    base = f"{live.base}/api/v1/incidents"
    cases = []
    for _ in range(5):
        r = httpx.post(
            base, json={"lon": 118.902, "lat": 32.102, "category": "sanitation"}, headers=gz
        )
        assert r.status_code == 201, r.text
        cases.append(r.json()["id"])
        assert (
            httpx.post(
                f"{base}/{cases[-1]}/transitions", json={"action": "dispatch"}, headers=gz
            ).status_code
            == 200
        )

    def step(case: int, body: dict, headers: dict):  # type: ignore[no-untyped-def, type-arg]
        return lambda: httpx.post(
            f"{base}/{case}/transitions", json=body, headers=headers, timeout=30
        )

    for case in cases[:3]:
        # The same step twice at once: the second finds the case handled already.
        results = race(
            [step(case, {"action": "handle"}, gz), step(case, {"action": "handle"}, boss)]
        )
        assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    for case in cases[3:]:
        # Two different steps, both legal from the version both clients saw: one wins.
        results = race(
            [
                step(case, {"action": "handle", "expected_version": 2}, gz),
                step(case, {"action": "park", "note": "停工", "expected_version": 2}, boss),
            ]
        )
        assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    engine = create_engine(live.url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT i.id, i.version, count(e.id) FROM incident i "
                "JOIN incident_event e ON e.incident_id = i.id GROUP BY i.id, i.version"
            )
        ).all()
    engine.dispose()
    # file + dispatch + exactly one of the racing steps, and the version counts the same.
    assert sorted((v, n) for _, v, n in rows) == [(3, 3)] * 5


def test_georeport_client_reads_our_endpoint(live: Live) -> None:
    georeport = pytest.importorskip("georeport")
    root = f"{live.base}/open311/v2"
    posted = httpx.post(
        f"{root}/requests.json",
        data={
            "api_key": live.api_key,
            "service_code": "municipal",
            "lat": "32.102",
            "long": "118.902",
            "description": "路灯不亮",
        },
    )
    assert posted.status_code == 201, posted.text
    rid = posted.json()[0]["service_request_id"]
    for fmt in ("json", "xml"):
        client = georeport.GeoReport(root, output_format=fmt)
        services = client.get_service_list()
        codes = {s["service_code"] for s in services}
        assert {"municipal", "sanitation"} <= codes and "dispute" not in codes  # not public
        assert client.get_service_definition("municipal")["service_code"] == "municipal"
        found = client.get_service_requests(status="open", service_code="municipal")
        if isinstance(found, dict):  # xmltodict gives a dict for a single element
            found = [found]
        assert [r["service_request_id"] for r in found] == [rid]
        one = client.get_service_request(rid)
        assert one["status"] == "open" and one["grid_code"].startswith(COMMUNITY)
        assert not one["description"]  # the public view carries no reporter's words
