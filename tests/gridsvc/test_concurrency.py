"""Real concurrent clients against a live server: two commits of the same preview race; one
wins, the other gets 409, nothing is lost; the database enforces one 格长 per cell under load."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import shapely
from sqlalchemy import create_engine, text

from tests.conftest import race, scratch_database, seed_two_cells

STREET, COMMUNITY = "320102444", "320102444001"
PASSWORD = "race-password-1"


@pytest.fixture
def live(database_url: str) -> Iterator[tuple[str, str]]:
    """A scratch database with a 2×1 community, an admin, and gridsvc serving it."""
    from gridsvc.testing import serve_in_subprocess

    with scratch_database("gridsvc_race") as url:
        seed_two_cells(url, STREET, COMMUNITY, PASSWORD)
        with serve_in_subprocess(url) as base:
            yield base, url


def test_two_commits_of_one_previewrace(live: tuple[str, str]) -> None:
    base, url = live
    token = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": "boss", "password": PASSWORD}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    codes = [f"{COMMUNITY}001", f"{COMMUNITY}002"]
    merge = {"op": "merge", "cells": codes, "reason": "并发测试"}
    etag = httpx.post(
        f"{base}/api/v1/communities/{COMMUNITY}/redraw/preview", json=merge, headers=headers
    ).json()["etag"]
    second = {
        "op": "reshape",
        "cell": codes[0],
        "reason": "并发测试二",
        "geometry": shapely.geometry.mapping(shapely.box(118.9, 32.1, 118.9035, 32.104)),
    }
    commit = f"{base}/api/v1/communities/{COMMUNITY}/redraw/commit"
    results = race(
        [
            lambda: httpx.post(
                commit, json=merge, headers={**headers, "If-Match": etag}, timeout=30
            ),
            lambda: httpx.post(
                commit, json=second, headers={**headers, "If-Match": etag}, timeout=30
            ),
        ]
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 409], [r.text for r in results]
    engine = create_engine(url)
    with engine.connect() as conn:
        revision = conn.execute(
            text("SELECT revision FROM community WHERE code = :c"), {"c": COMMUNITY}
        ).scalar_one()
        changes = conn.execute(text("SELECT count(*) FROM cell_change")).scalar_one()
        current = conn.execute(
            text("SELECT count(*) FROM cell_version WHERE valid_to IS NULL")
        ).scalar_one()
    engine.dispose()
    assert revision == 1 and changes == 1  # exactly one change happened, fully
    assert current in (1, 2)  # merged into one cell, or two cells after the reshape


def test_second_active_leader_refused_under_concurrency(live: tuple[str, str]) -> None:
    _, url = live
    engine = create_engine(url, pool_size=8)
    with engine.begin() as conn:
        # The east cell: it has no 格长 yet (the west one has, see seed_two_cells).
        cell_id = conn.execute(text("SELECT id FROM cell ORDER BY code DESC LIMIT 1")).scalar_one()
        people = [
            conn.execute(
                text("INSERT INTO person (name) VALUES (:n) RETURNING id"), {"n": f"候选人{i}"}
            ).scalar_one()
            for i in range(6)
        ]

    def appoint(person: int):  # type: ignore[no-untyped-def]
        def run() -> str:
            try:
                with engine.begin() as conn:
                    conn.execute(
                        text(
                            "INSERT INTO role_assignment (person_id, role, cell_id) "
                            "VALUES (:p, 'leader', :c)"
                        ),
                        {"p": person, "c": cell_id},
                    )
                return "ok"
            except Exception as exc:  # the unique index refuses all but one
                return type(exc).__name__

        return run

    outcomes = race([appoint(p) for p in people])
    assert outcomes.count("ok") == 1 and outcomes.count("IntegrityError") == 5
    with engine.connect() as conn:
        leaders = conn.execute(
            text(
                "SELECT count(*) FROM role_assignment WHERE cell_id = :c "
                "AND role = 'leader' AND ends_on IS NULL"
            ),
            {"c": cell_id},
        )
        assert leaders.scalar_one() == 1
    engine.dispose()
