"""The generated demo street loads whole: every building in a cell, incidents attributed."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from geodata.synth import SynthConfig, generate_street
from gridsvc.services.demo import load_street


def test_demo_street_loads_consistently(db: Session) -> None:
    street = generate_street(
        SynthConfig(seed=7, communities=2, street_code="320102055", street_name="演示街道")
    )
    loaded = load_street(db, street)
    assert loaded.buildings == len(street.buildings)
    q = lambda sql: db.execute(text(sql), {"s": "320102055"}).one()  # noqa: E731
    unassigned, total = q(
        "SELECT count(*) FILTER (WHERE b.cell_id IS NULL), count(*) FROM building b "
        "JOIN community c ON c.id = b.community_id JOIN street s ON s.id = c.street_id "
        "WHERE s.code = :s"
    )
    assert total == len(street.buildings) and unassigned == 0
    households = q(
        "SELECT count(*) FROM household h JOIN building b ON b.id = h.building_id "
        "JOIN community c ON c.id = b.community_id JOIN street s ON s.id = c.street_id "
        "WHERE s.code = :s"
    )[0]
    assert households == len(street.households)
    # Every cell has exactly one active 格长.
    leaders = db.execute(
        text(
            "SELECT c.code, count(r.id) FROM cell c JOIN community co ON co.id = c.community_id "
            "JOIN street s ON s.id = co.street_id LEFT JOIN role_assignment r ON r.cell_id = c.id "
            "AND r.role = 'leader' AND r.ends_on IS NULL WHERE s.code = :s GROUP BY c.code"
        ),
        {"s": "320102055"},
    ).all()
    assert len(leaders) == len(street.cells) and {n for _, n in leaders} == {1}
    # Incidents lie inside cells, so each is attributed to the cell version of its report time.
    unattributed = db.execute(
        text(
            "SELECT count(*) FROM incident i JOIN community c ON c.id = i.community_id "
            "JOIN street s ON s.id = c.street_id WHERE s.code = :s AND i.cell_version_id IS NULL"
        ),
        {"s": "320102055"},
    ).scalar_one()
    assert unattributed == 0
    # The building counts per cell from SQL equal the generator's own (by centroid) counts.
    per_cell = dict(
        db.execute(
            text(
                "SELECT c.code, sum(b.households) FROM building b JOIN cell c ON c.id = b.cell_id "
                "JOIN community co ON co.id = c.community_id JOIN street s ON s.id = co.street_id "
                "WHERE s.code = :s GROUP BY c.code"
            ),
            {"s": "320102055"},
        ).all()
    )
    assert sum(per_cell.values()) == int(street.buildings["households"].sum())
    assert all(200 <= v <= 500 for v in per_cell.values())
