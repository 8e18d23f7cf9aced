"""Coverage figures against values computed by hand on a small street, as-of dates across a
redraw, roll-ups, CSV for Excel, and scope."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridsvc.auth.principal import Principal
from gridsvc.models import Building, Cell, Household, Person, RoleAssignment, VolunteerTeam
from gridsvc.services.coverage import coverage
from gridsvc.settings import get_settings
from tests.gridsvc.conftest import TEST_PASSWORD, SmallStreet, token_for

AS_OF = date(2026, 11, 1)
ADMIN = Principal(id=0, username="t", role="admin")
TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class Covered:
    """The small street with households, people, links, visits, captains and incidents."""

    street: SmallStreet
    nw: str
    ne: str
    sw: str
    se: str


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=TZ)


@pytest.fixture
def covered(db: Session, small_street: SmallStreet) -> Covered:
    """Cells (reading order) NW, NE, SW, SE; one building each (NE 10, SW 20, NW 30, SE 40
    estimated households; see tests/gridsvc/conftest.py). Cells valid since 2025-01-01."""
    nw, ne, sw, se = sorted(small_street.cell_codes)  # codes follow reading order
    db.execute(text("UPDATE cell_version SET valid_from = '2025-01-01T00:00:00+08'"))
    bid = {
        code: db.scalar(
            select(Building.id).join(Cell, Cell.id == Building.cell_id).where(Cell.code == code)
        )
        for code in (nw, ne, sw, se)
    }
    community_id = db.scalar(select(Cell.community_id).where(Cell.code == nw))
    team = VolunteerTeam(name="测试社区党员志愿服务队", kind="party", community_id=community_id)
    db.add(team)
    db.flush()

    def household(code: str, size: int, **flags: bool) -> int:
        h = Household(building_id=bid[code], size=size, **flags)
        db.add(h)
        db.flush()
        return h.id

    h1 = household(nw, 3, low_income=True)
    h2 = household(nw, 2, elderly_alone=True)
    household(nw, 1)
    h4 = household(ne, 4, rental=True, floating=True)
    h5 = household(ne, 2)
    h6 = household(sw, 1, disabled=True)

    def person(name: str, hh: int, **kw: object) -> int:
        p = Person(name=name, household_id=hh, community_id=community_id, **kw)
        db.add(p)
        db.flush()
        return p.id

    p1 = person("甲", h1, party_status="in_service", party_registered_on=date(2026, 1, 1))
    p2 = person("乙", h1, volunteer_team_id=team.id)
    p3 = person("丙", h4, party_status="retired")
    person("丁", h5, party_status="direct", volunteer_team_id=team.id)
    person("戊", h6)
    db.add_all(
        [
            RoleAssignment(
                person_id=p2,
                role="building_captain",
                building_id=bid[nw],
                starts_on=date(2025, 1, 1),
            ),
            RoleAssignment(
                person_id=p3,
                role="building_captain",
                building_id=bid[ne],
                starts_on=date(2025, 1, 1),
                ends_on=date(2026, 5, 1),
            ),
        ]
    )
    db.execute(
        text(
            "INSERT INTO linked_household (person_id, household_id, starts_on, ends_on) VALUES "
            "(:p1, :h2, '2026-01-01', NULL), (:p3, :h5, '2026-01-01', '2026-06-01')"
        ),
        {"p1": p1, "h2": h2, "p3": p3, "h5": h5},
    )
    db.execute(
        text(
            "INSERT INTO visit (household_id, person_id, visited_on) VALUES "
            "(:h1, :p1, '2026-10-20'), (:h6, :p1, '2026-08-01'), (:h4, :p1, '2026-11-02')"
        ),
        {"h1": h1, "h6": h6, "h4": h4, "p1": p1},
    )

    def centre(code: str) -> str:
        return db.scalar(
            text("SELECT ST_AsText(ST_PointOnSurface(footprint)) FROM building WHERE id = :b"),
            {"b": bid[code]},
        )

    for code, reported, status, closed in (
        (nw, "2026-10-01", "filed", None),  # 7-day deadline ('other'): overdue by 11-01
        (nw, "2026-10-01", "parked", None),  # 挂账: open, never overdue
        (nw, "2026-10-30", "dispatched", None),  # dispatched, closing due 11-06: not overdue
        (nw, "2026-09-01", "closed", "2026-09-05"),
        (se, "2026-10-01", "closed", "2026-11-05"),
    ):
        db.execute(
            text(
                "INSERT INTO incident (location, category, status, reported_at, closed_at, "
                "reporter_kind) "
                "VALUES (ST_GeomFromText(:p, 4326), 'other', :s, :r, :c, 'resident')"
            ),
            {
                "p": centre(code),
                "s": status,
                "r": _at(reported),
                "c": _at(closed) if closed else None,
            },
        )
    db.flush()
    return Covered(small_street, nw, ne, sw, se)


def _rows(report: dict) -> dict[str, dict]:
    return {r["cell_code"] or r["community_code"] or "street": r for r in report["rows"]}


def test_counts_and_figures_match_hand_computed_values(db: Session, covered: Covered) -> None:
    report = coverage(db, ADMIN, street_code=covered.street.street_code, as_of=AS_OF)
    rows = _rows(report)
    assert report["distance_m"] == 300.0 and report["as_of"] == "2026-11-01"
    # Hand-computed from the fixture (see its docstring and inserts).
    expected = {
        covered.nw: dict(
            households_registered=3, households_estimated=30, residents=6, flag_low_income=1,
            flag_elderly_alone=1, households_near_volunteer=3, households_linked=1,
            households_visited=1, party_members=1, party_in_service=1,
            party_in_service_registered=1, volunteers=1, residential_buildings=1,
            buildings_without_captain=0, incidents_reported=4, incidents_open=3,
            incidents_overdue=1,
        ),
        covered.ne: dict(
            households_registered=2, households_estimated=10, residents=6, flag_rental=1,
            flag_floating=1, households_near_volunteer=2, households_linked=0,
            households_visited=0, party_members=2, party_retired=1, party_direct=1,
            volunteers=1, buildings_without_captain=1, incidents_reported=0, incidents_open=0,
            incidents_overdue=0,
        ),
        covered.sw: dict(
            households_registered=1, residents=1, flag_disabled=1, households_near_volunteer=0,
            households_visited=0, party_members=0, volunteers=0, buildings_without_captain=1,
        ),
        covered.se: dict(
            households_registered=0, households_estimated=40, residential_buildings=1,
            buildings_without_captain=1, incidents_reported=1, incidents_open=1,
            incidents_overdue=1,  # closed only on 11-05, a week late: overdue as of 11-01
        ),
    }  # fmt: skip
    for code, counts in expected.items():
        got = rows[code]["counts"]
        assert {k: got[k] for k in counts} == counts, code
    # The community and the street are the sums of their cells.
    for key in (
        "households_registered",
        "residents",
        "households_linked",
        "incidents_open",
        "incidents_overdue",
    ):
        total = sum(rows[c]["counts"][key] for c in expected)
        assert rows[covered.street.community_code]["counts"][key] == total
        assert rows["street"]["counts"][key] == total
    # Figures name their denominators.
    linked = rows[covered.nw]["figures"]["linked_share"]
    assert linked == {
        "label": "党员联系户覆盖率",
        "value": round(1 / 3, 4),
        "numerator": 1,
        "denominator": 3,
        "denominator_label": "登记户数",
        "unit": "share",
    }
    street_vol = rows["street"]["figures"]["volunteers_per_100_households"]
    assert (street_vol["numerator"], street_vol["denominator"]) == (2, 6)
    assert street_vol["value"] == round(2 / 6 * 100, 4)
    # A cell without registered households has no share (not 0, not a division error).
    assert rows[covered.se]["figures"]["linked_share"]["value"] is None
    captains = rows["street"]["figures"]["buildings_without_captain_share"]
    assert (captains["numerator"], captains["denominator"]) == (3, 4)


def test_walking_distance_is_configurable(db: Session, covered: Covered) -> None:
    # SW's building is ~444 m south of NW's (a volunteer lives there): out at 300 m, in at 500.
    near = lambda d: _rows(  # noqa: E731
        coverage(db, ADMIN, street_code=covered.street.street_code, as_of=AS_OF, distance_m=d)
    )[covered.sw]["counts"]["households_near_volunteer"]
    assert near(300) == 0 and near(500) == 1


def test_as_of_uses_the_cell_versions_valid_then(db: Session, covered: Covered) -> None:
    from gridsvc.repositories.areas import get_community
    from gridsvc.services import redraw
    from gridsvc.services.clock import local_today

    # The merge below happens now, so "today" and "yesterday" are the users' local dates
    # (Asia/Shanghai), and every comparison is between reports of the same as-of date: the
    # 30-day visit window then moves with the date on both sides and cannot flip the result.
    street = covered.street.street_code
    today_date = local_today()
    yesterday_date = today_date - timedelta(days=1)
    before = _rows(coverage(db, ADMIN, street_code=street, as_of=today_date))
    before_yesterday = _rows(coverage(db, ADMIN, street_code=street, as_of=yesterday_date))
    community = get_community(db, covered.street.community_code)
    plan = redraw.plan_merge(db, community, [covered.nw, covered.ne])
    redraw.run(db, community, plan, request={}, reason="合并", user="t", commit=False)
    plan = redraw.plan_merge(db, community, [covered.nw, covered.ne])
    etag = redraw.etag_for(community.code, 0)
    redraw.run(db, community, plan, request={}, reason="合并", user="t", commit=True, if_match=etag)
    today = _rows(coverage(db, ADMIN, street_code=street, as_of=today_date))
    yesterday = _rows(coverage(db, ADMIN, street_code=street, as_of=yesterday_date))
    assert covered.nw not in today and covered.ne not in today
    merged = [c for c in today if c not in before and c not in ("street",)]
    assert len(merged) == 1
    assert today[merged[0]]["counts"]["households_registered"] == 5  # NW 3 + NE 2
    # The merge changes cells, not what the street holds.
    assert today["street"]["counts"] == before["street"]["counts"]
    # As of yesterday the old cells (and their versions) are back, exactly as reported then.
    assert yesterday[covered.nw]["counts"]["households_registered"] == 3
    assert yesterday == before_yesterday
    # Before the cells existed there is nothing to count.
    empty = coverage(db, ADMIN, street_code=street, as_of=date(2020, 1, 1))
    assert [r["level"] for r in empty["rows"]] == ["street"]
    assert empty["rows"][0]["counts"]["households_registered"] == 0


def test_api_json_and_csv_for_excel(client: TestClient, db: Session, covered: Covered) -> None:
    from gridsvc.services.users import create_user

    create_user(db, username="cov_admin", password=TEST_PASSWORD, role="admin")
    headers = token_for(client, "cov_admin")
    url = f"/api/v1/streets/{covered.street.street_code}/coverage?as_of=2026-11-01"
    data = client.get(url, headers=headers).json()
    response = client.get(url + "&format=csv", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    lines = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(lines) == len(data["rows"]) == 6  # 4 cells, the community, the street
    by_cell = {line["网格编码"]: line for line in lines}
    nw = by_cell[covered.nw]
    assert nw["层级"] == "网格" and nw["登记户数"] == "3"
    assert float(nw["党员联系户覆盖率(分母:登记户数)"]) == pytest.approx(1 / 3, abs=1e-4)
    community = client.get(
        f"/api/v1/communities/{covered.street.community_code}/coverage?as_of=2026-11-01",
        headers=headers,
    ).json()
    assert [r["level"] for r in community["rows"]].count("street") == 0
    assert len(community["rows"]) == 5
    # Bad input is a 422 problem, another street's staff get 403, an unknown street 404.
    bad = client.get(url + "&distance_m=-5", headers=headers)
    assert bad.status_code == 422
    unknown = client.get("/api/v1/streets/999999999/coverage", headers=headers)
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith(
        "application/problem+json"
    )


def test_coverage_is_scoped(client: TestClient, db: Session, covered: Covered) -> None:
    from gridsvc.services.imports import ensure_street
    from gridsvc.services.users import ScopeSpec, create_user

    ensure_street(db, street_code="320102098", street_name="别的街道")
    create_user(
        db,
        username="elsewhere",
        password=TEST_PASSWORD,
        role="street_staff",
        scope=ScopeSpec("street", "320102098"),
    )
    headers = token_for(client, "elsewhere")
    response = client.get(f"/api/v1/streets/{covered.street.street_code}/coverage", headers=headers)
    assert response.status_code == 403


def test_the_visit_window_includes_the_as_of_day_and_the_days_before_it(
    db: Session, covered: Covered
) -> None:
    """ "Visited in the last N days" as of day D counts visits on D-(N-1) … D, both ends
    included; a visit exactly N days before D is out. The fixture's latest visit is on
    2026-11-02 (the one before it on 2026-10-20)."""
    window = get_settings().coverage.visit_window_days
    last_visit = date(2026, 11, 2)

    def visited(day: date) -> int:
        rows = _rows(coverage(db, ADMIN, street_code=covered.street.street_code, as_of=day))
        return rows["street"]["counts"]["households_visited"]

    assert visited(last_visit) == 2  # 11-02 and 10-20 (13 days before)
    assert visited(last_visit - timedelta(days=1)) == 1  # a visit after the as-of day is out
    assert visited(last_visit + timedelta(days=window - 1)) == 1  # day N of the window
    assert visited(last_visit + timedelta(days=window)) == 0  # N days before: out
