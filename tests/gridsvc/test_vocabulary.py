"""A rule is stated once: statuses and flags are spelled in gridsvc.domain only, and SQL is
rendered from there (issue 13: "open" lived in four places and drifted into a visible bug)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridsvc import domain
from gridsvc.domain import (
    HOUSEHOLD_FLAGS,
    INCIDENT_OPEN_STATUSES,
    INCIDENT_STATUSES,
    PARTY_STATUSES,
    incident_open_sql,
    sql_in,
    sql_literal,
)

ROOT = Path(__file__).resolve().parents[2]
_SQL_WORDS = re.compile(r"\b(SELECT|UPDATE|INSERT|DELETE|WHERE|FILTER|JOIN)\b")
#: Identifiers that must never be spelled inside SQL outside gridsvc.domain.
_WORDS = sorted({*INCIDENT_STATUSES, *PARTY_STATUSES, *HOUSEHOLD_FLAGS})
_QUOTED = re.compile(r"'(" + "|".join(map(re.escape, _WORDS)) + r")'")


def _string_parts(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string of a module: constants, and f-strings with their fields as ``{}``."""
    inside_fstrings = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            joined = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            found.append((node.lineno, joined))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in inside_fstrings
        ):
            found.append((node.lineno, node.value))
    return found


def _sql_literals(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for line, value in _string_parts(ast.parse(path.read_text(encoding="utf-8"))):
        if _SQL_WORDS.search(value):
            found += [f"{path.relative_to(root)}:{line}: '{m}'" for m in _QUOTED.findall(value)]
    return found


def test_no_status_or_flag_is_spelled_in_sql_outside_the_vocabulary() -> None:
    files = [p for p in (ROOT / "gridsvc").rglob("*.py") if p.name != "domain.py"]
    files = [p for p in files if "migrations" not in p.parts]  # history stays as it was
    found = [hit for p in files for hit in _sql_literals(p)]
    assert found == [], "render these from gridsvc.domain instead:\n" + "\n".join(found)


def _maps_literals(root: Path = ROOT) -> list[str]:
    """String constants of maps/ that are a status or flag identifier (maps draws what it is
    given: labels, ranks and derived columns come from gridsvc)."""
    return [
        f"{path.relative_to(root)}:{line}: {value!r}"
        for path in sorted((root / "maps").rglob("*.py"))
        for line, value in _string_parts(ast.parse(path.read_text(encoding="utf-8")))
        if value in _WORDS
    ]


def test_maps_never_restates_the_vocabulary() -> None:
    assert _maps_literals() == [], "pass these from gridsvc instead"


def test_the_scan_finds_a_spelled_status(tmp_path: Path) -> None:
    """The check above can fail: a query spelling 'parked' is caught, its rendering is not."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "Q = \"SELECT id FROM incident WHERE status <> 'parked'\"\n"
        "A = 'i'\n"
        "R = f\"SELECT id FROM incident {A} WHERE {A}.status = 'closed'\"\n",
        encoding="utf-8",
    )
    good = tmp_path / "good.py"
    good.write_text(
        "from gridsvc.domain import incident_parked_sql\n"
        'Q = f"SELECT id FROM incident i WHERE NOT {incident_parked_sql()}"\n',
        encoding="utf-8",
    )
    assert _sql_literals(bad, tmp_path) == ["bad.py:1: 'parked'", "bad.py:3: 'closed'"]
    assert _sql_literals(good, tmp_path) == []
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "styles.py").write_text('COLOURS = {"parked": "#525252"}\n')
    assert _maps_literals(tmp_path) == ["maps/styles.py:1: 'parked'"]


def test_sql_literal_refuses_what_the_vocabulary_does_not_hold() -> None:
    assert sql_literal("closed", INCIDENT_STATUSES) == "'closed'"
    with pytest.raises(ValueError):
        sql_literal("closed'; DROP TABLE incident; --", INCIDENT_STATUSES)
    with pytest.raises(ValueError):
        sql_literal("archived", INCIDENT_STATUSES)
    with pytest.raises(ValueError):
        sql_in("i.status", ["filed", "lost"], INCIDENT_STATUSES)


def test_rendered_open_rule_agrees_with_the_vocabulary(db: Session) -> None:
    """The SQL rule and the Python tuple say the same of every status the workflow has."""
    values = ", ".join(f"({sql_literal(s, INCIDENT_STATUSES)})" for s in INCIDENT_STATUSES)
    rows = db.execute(
        text(f"SELECT i.status, {incident_open_sql('i')} FROM (VALUES {values}) AS i(status)")
    ).all()
    assert {s: is_open for s, is_open in rows} == {
        s: s in INCIDENT_OPEN_STATUSES for s in INCIDENT_STATUSES
    }
    assert "parked" not in INCIDENT_OPEN_STATUSES and "closed" not in INCIDENT_OPEN_STATUSES


def test_rendered_rules_are_valid_sql(db: Session) -> None:
    """Every incident rule of the vocabulary parses and runs against the incident table."""
    rules = [
        domain.incident_closed_sql("i"),
        domain.incident_parked_sql("i"),
        domain.incident_open_sql("i"),
        domain.incident_awaiting_dispatch_sql("i"),
        domain.incident_awaiting_dispatch_sql("i", ":now"),
        domain.incident_past_due_sql("i", ":now"),
        domain.incident_past_due_sql("i", ":now", historical=True),
        domain.incident_overdue_sql("i", ":now"),
        domain.incident_unclosed_at_sql("i", ":now"),
    ]
    for rule in rules:
        db.execute(
            text(f"SELECT count(*) FROM incident i WHERE {rule}"), {"now": "2026-01-01T00:00Z"}
        )
