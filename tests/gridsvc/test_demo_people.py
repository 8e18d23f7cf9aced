"""The demo street comes with people and duties: every coverage figure has data behind it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from geodata.synth import SynthConfig, generate_street
from gridsvc.auth.principal import Principal
from gridsvc.services.coverage import FIGURES, coverage
from gridsvc.services.demo import load_street
from gridsvc.services.people import responsibility_tree

ADMIN = Principal(id=0, username="t", role="admin")


def test_demo_street_has_non_zero_coverage_and_a_full_chart(db: Session) -> None:
    street = generate_street(
        SynthConfig(seed=9, communities=2, street_code="320102056", street_name="演示二街道")
    )
    load_street(db, street)
    report = coverage(db, ADMIN, street_code="320102056")
    total = next(r for r in report["rows"] if r["level"] == "street")
    assert total["counts"]["households_registered"] == len(street.households)
    for spec in FIGURES:
        fig = total["figures"][spec.key]
        assert fig["denominator"] > 0, spec.key
        if spec.key != "open_incident_share":
            assert fig["value"] > 0, spec.key
    # Shares stay shares.
    assert 0.2 < total["figures"]["linked_share"]["value"] < 0.5
    assert 0.05 < total["figures"]["visited_share"]["value"] < 0.5
    cells = [r for r in report["rows"] if r["level"] == "cell"]
    assert len(cells) == len(street.cells)
    # The chart: every community has a head, sectors with heads, every cell a 格长.
    tree = responsibility_tree(db, ADMIN, "320102056")
    for community in tree["children"]:
        assert [p["role"] for p in community["people"]] == ["community_head"]
        for sector in community["children"]:
            assert sector["name"] != "未划片" and sector["people"], sector["code"]
            for cell in sector["children"]:
                assert [p["role"] for p in cell["people"]].count("leader") == 1
    organisations = db.execute(
        text(
            "SELECT count(*) FROM organisation o JOIN community c ON c.id = o.community_id "
            "JOIN street s ON s.id = c.street_id WHERE s.code = '320102056'"
        )
    ).scalar_one()
    assert organisations >= 2
