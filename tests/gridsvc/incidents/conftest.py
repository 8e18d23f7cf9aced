"""Fixtures: a small street ready for incidents: 格长 for two cells, users of every role, a fixed clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridsvc.models import Cell, Community, Person, RoleAssignment
from gridsvc.repositories.bulk import to_db_geometry
from gridsvc.services.clock import FixedClock, get_clock
from gridsvc.services.users import ScopeSpec, create_user
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet, token_for

#: The small street's south-west corner and cell size (degrees), as tests/gridsvc/conftest.py.
X0, Y0, D = 118.90, 32.10, 0.004
#: 2026-03-02 09:00 Beijing time.
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@dataclass
class IncidentStreet:
    """The small street with leaders, users (headers by username) and a controllable clock."""

    street: SmallStreet
    clock: FixedClock
    headers: dict[str, dict[str, str]]
    cell_ids: dict[str, int]
    leaders: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        """Cell codes: NW, NE, SW, SE (reading order)."""
        return sorted(self.street.cell_codes)

    def centre(self, code: str) -> tuple[float, float]:
        """The centre of a cell."""
        i = self.codes.index(code)
        col, row = [(0, 1), (1, 1), (0, 0), (1, 0)][i]
        return X0 + (col + 0.5) * D, Y0 + (row + 0.5) * D


def report(client: TestClient, headers: dict[str, str], lon: float, lat: float, **body: Any):  # type: ignore[no-untyped-def]
    """POST an incident; returns the response."""
    payload = {"lon": lon, "lat": lat, "category": "sanitation", "description": "垃圾堆放"}
    payload.update(body)
    return client.post("/api/v1/incidents", json=payload, headers=headers)


def act(client: TestClient, headers: dict[str, str], incident_id: int, action: str, **body: Any):  # type: ignore[no-untyped-def]
    """POST a transition; returns the response."""
    return client.post(
        f"/api/v1/incidents/{incident_id}/transitions",
        json={"action": action, **body},
        headers=headers,
    )


@pytest.fixture
def incident_street(db: Session, client: TestClient, small_street: SmallStreet) -> IncidentStreet:
    """格长 for the NW and NE cells; users admin, 街道, 社区, 格长 ×2, 网格员, viewer; a
    neighbouring community without cells (east); the clock fixed at T0."""
    codes = sorted(small_street.cell_codes)  # NW, NE, SW, SE
    # The partition has been in force since 2025 (the clock stands in 2026).
    db.execute(
        text(
            "UPDATE cell_version SET valid_from = '2025-01-01' WHERE cell_id IN "
            "(SELECT id FROM cell WHERE code = ANY(:c))"
        ),
        {"c": codes},
    )
    cell_ids = {c: db.scalar(select(Cell.id).where(Cell.code == c)) for c in codes}
    leaders = {}
    for code, name in ((codes[0], "王格长"), (codes[1], "李格长")):
        person = Person(name=name)
        db.add(person)
        db.flush()
        db.add(RoleAssignment(person_id=person.id, role="leader", cell_id=cell_ids[code]))
        leaders[code] = person.id
    street_id = db.scalar(
        select(Community.street_id).where(Community.code == small_street.community_code)
    )
    db.add(
        Community(
            code="320102099002",
            name="东邻社区",
            street_id=street_id,
            geom=to_db_geometry(shapely.box(X0 + 2 * D, Y0, X0 + 3 * D, Y0 + 2 * D)),
        )
    )
    users = {
        "adm": ("admin", ScopeSpec()),
        "jd": ("street_staff", ScopeSpec("street", small_street.street_code)),
        "sq": ("community_staff", ScopeSpec("community", small_street.community_code)),
        "gz": ("leader", ScopeSpec("cell", codes[0])),
        "gz2": ("leader", ScopeSpec("cell", codes[1])),
        "wy": ("grid_worker", ScopeSpec("cell", codes[0])),
        "ro": ("viewer", ScopeSpec("street", small_street.street_code)),
    }
    for username, (role, scope) in users.items():
        create_user(db, username=username, password=TEST_PASSWORD, role=role, scope=scope)
    db.flush()
    clock = FixedClock(T0)
    client.app.dependency_overrides[get_clock] = lambda: clock  # type: ignore[attr-defined]
    headers = {u: token_for(client, u) for u in users}
    return IncidentStreet(small_street, clock, headers, cell_ids, leaders)


from tests.gridsvc.test_cli import cli_db  # noqa: E402, F401  (a scratch database for the CLI)
