"""The queries behind a cell page, a community overview, coverage and a lookup are bounded by
their target: in a city of two generated streets (the target street and a larger "rest of the
city", analysed), every statement they run is planned (EXPLAIN, as PostgreSQL really plans it)
without reading a table that grows with the city whole — no sequential scan, no walk of a whole
index. A distance test that cannot use its index (``ST_DWithin`` on geography without a box
prefilter) or a CTE that reads every volunteer of the city fails here (issue 14)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session

from gridsvc.auth.principal import Principal
from gridsvc.repositories.layers import Area

ADMIN = Principal(id=0, username="t", role="admin")

#: Tables whose size grows with the city (or with time): never scanned whole for one target.
CITY_TABLES = {
    "building",
    "household",
    "person",
    "incident",
    "cell",
    "cell_version",
    "community",
    "road",
    "role_assignment",
    "visit",
    "linked_household",
    "volunteer_team",
}


def _seq_scans(plan: dict[str, Any], big: set[str]) -> Iterator[str]:
    """City tables read whole: a sequential scan, or an index scan with no index condition
    (walking a whole index, e.g. every cell version, or every volunteer by a partial index)."""
    table = plan.get("Relation Name")
    if table in big:
        kind = plan.get("Node Type")
        if kind == "Seq Scan":
            yield table
        elif kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in plan:
            yield f"{table} (whole index {plan.get('Index Name')})"
        elif kind == "Bitmap Heap Scan":
            for index in _bitmap_indexes(plan):
                if "Index Cond" not in index:
                    yield f"{table} (whole index {index.get('Index Name')})"
    for child in plan.get("Plans", []):
        yield from _seq_scans(child, big)


def _bitmap_indexes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for child in plan.get("Plans", []):
        if child.get("Node Type") == "Bitmap Index Scan":
            yield child
        elif child.get("Node Type") in ("BitmapAnd", "BitmapOr"):
            yield from _bitmap_indexes(child)


@contextmanager
def explained(session: Session, big: set[str]) -> Iterator[list[tuple[str, list[str]]]]:
    """Every SELECT (or CREATE TABLE AS) run inside the block, EXPLAINed just before it runs,
    with the city tables each plan reads whole."""
    found: list[tuple[str, list[str]]] = []
    engine = session.get_bind()

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:  # fmt: skip
        head = statement.lstrip().split(None, 1)[0].upper()
        if many or head not in ("SELECT", "WITH", "CREATE") or "pg_catalog" in statement:
            return
        if head == "CREATE" and " AS" not in statement.upper():
            return
        explain = cursor.connection.cursor()
        explain.execute("EXPLAIN (FORMAT JSON) " + statement, params)
        (plan,) = explain.fetchone()
        plan = plan if isinstance(plan, list) else json.loads(plan)
        found.append(
            (" ".join(statement.split())[:200], sorted(set(_seq_scans(plan[0]["Plan"], big))))
        )

    # Sequential scans and hash/merge joins priced out: on tables this small PostgreSQL rightly
    # prefers them, in a city it would not. What still reads a city table whole (a scan with
    # no index condition) is a table that no index can answer from the target.
    for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
        session.execute(text(f"SET {setting} = off"))
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", before)


@dataclass(frozen=True)
class City:
    url: str
    street: str
    community: str
    cell: str
    point: tuple[float, float]
    #: City tables with enough rows here that reading them whole costs more than an index.
    big: set[str]


@pytest.fixture(scope="module")
def city(database_url: str) -> Iterator[City]:  # database_url: the cluster is running
    """The target street (1 community) and the rest of the city (a street of 6 communities)."""
    from geodata.synth import SynthConfig, generate_street
    from gridsvc.services.demo import load_street
    from tests.conftest import scratch_database

    with scratch_database("gridsvc_test_plans") as url:
        engine = create_engine(url)
        with Session(engine) as session:
            target = load_street(session, generate_street(SynthConfig(communities=1)))
            load_street(
                session,
                generate_street(
                    SynthConfig(
                        seed=7, communities=6, origin=(118.90, 32.05), street_code="320102002",
                        street_name="其余街道", cell_target_households=20,
                    )
                ),
            )  # fmt: skip
            session.commit()
            session.execute(text("ANALYZE"))
            session.commit()
            community, cell, x, y = session.execute(
                text(
                    "SELECT co.code, c.code, ST_X(ST_PointOnSurface(v.geom)), "
                    "ST_Y(ST_PointOnSurface(v.geom)) FROM cell c "
                    "JOIN community co ON co.id = c.community_id "
                    "JOIN street s ON s.id = co.street_id AND s.code = :s "
                    "JOIN cell_version v ON v.cell_id = c.id AND v.valid_to IS NULL "
                    "WHERE c.kind = 'general' ORDER BY c.code LIMIT 1"
                ),
                {"s": target.street_code},
            ).one()
            big = set(
                session.scalars(
                    text(
                        "SELECT relname FROM pg_class WHERE relname = ANY(:t) AND reltuples >= 500"
                    ),
                    {"t": sorted(CITY_TABLES)},
                )
            )
        engine.dispose()
        assert {"building", "household", "person", "incident", "cell_version"} <= big, big
        yield City(url, target.street_code, community, cell, (x, y), big)


def _area(session: Session, kind: str, code: str) -> Area:
    row = session.execute(text(f"SELECT id, name FROM {kind} WHERE code = :c"), {"c": code}).one()
    return Area(kind, row.id, code, row.name)  # type: ignore[arg-type]


def _run(case: str, session: Session, city: City) -> object:
    from gridsvc.repositories.cells import lookup_point
    from gridsvc.services import coverage
    from gridsvc.services import maps as map_service
    from gridsvc.services.clock import Clock
    from gridsvc.services.incidents import route_point

    if case == "cell page":
        return map_service.cell_map(session, ADMIN, _area(session, "cell", city.cell))
    if case == "community overview":
        area = _area(session, "community", city.community)
        return map_service.overview_map(session, ADMIN, area, "households")
    if case == "community coverage":
        return coverage.coverage(session, ADMIN, community_code=city.community)
    if case == "point lookup":
        return lookup_point(session, *city.point)
    if case.startswith("ogc"):
        return _ogc(case, session, city)
    return route_point(session, *city.point, Clock().now())


def _ogc(case: str, session: Session, city: City) -> object:
    """An OGC API page as a 格长 (their cell) or community staff asks for it."""
    from gridsvc.ogc import items
    from gridsvc.ogc.collections import COLLECTIONS

    cell_id, community_id = session.execute(
        text("SELECT id, community_id FROM cell WHERE code = :c"), {"c": city.cell}
    ).one()
    leader = Principal(
        id=0, username="t", role="leader", cell_id=cell_id, cell_community_id=community_id
    )
    staff = Principal(id=0, username="t", role="community_staff", community_id=community_id)
    name = case.split()[1]
    who = leader if "leader" in case else staff
    first = items.items(session, who, COLLECTIONS[name], items.ItemsQuery(limit=50))
    if first.next_after is None:
        return first
    return items.items(
        session, who, COLLECTIONS[name], items.ItemsQuery(limit=50, after=first.next_after)
    )


@pytest.mark.parametrize(
    "case",
    [
        "cell page",
        "community overview",
        "community coverage",
        "point lookup",
        "incident routing",
        "ogc households leader",
        "ogc households staff",
        "ogc buildings leader",
        "ogc incidents staff",
        "ogc cells staff",
        "ogc volunteers leader",
    ],
)
def test_no_statement_about_a_target_reads_a_city_table_whole(city: City, case: str) -> None:
    engine = create_engine(city.url)
    try:
        with Session(engine) as session, explained(session, city.big) as plans:
            _run(case, session, city)
            session.rollback()
    finally:
        engine.dispose()
    assert plans, "no statement was captured"
    scans = [(sql, tables) for sql, tables in plans if tables]
    assert not scans, "\n".join(f"{tables}: {sql}" for sql, tables in scans)
