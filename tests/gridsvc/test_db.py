"""Schema: migrations up and down on a scratch database; constraints enforced by PostgreSQL."""

from __future__ import annotations

import pytest
import shapely
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridsvc.db import migrate
from gridsvc.models import Person, RoleAssignment
from gridsvc.repositories.bulk import to_db_geometry
from tests.conftest import scratch_database
from tests.gridsvc.conftest import SmallStreet


@pytest.fixture
def scratch_url(database_url: str) -> str:
    """An empty database beside the test database."""
    with scratch_database("gridsvc_scratch", migrated=False) as url:
        yield url


def test_migrations_up_down_up(scratch_url: str) -> None:
    migrate.upgrade(scratch_url)
    engine = create_engine(scratch_url)
    tables = set(inspect(engine).get_table_names())
    assert {"building", "cell", "cell_version", "household", "incident", "app_user"} <= tables
    # Every geometry column has a GiST index.
    with engine.connect() as conn:
        unindexed = conn.execute(
            text("""
            SELECT f_table_name, f_geometry_column FROM geometry_columns g
            WHERE NOT EXISTS (
                SELECT 1 FROM pg_indexes i
                WHERE i.tablename = g.f_table_name AND i.indexdef ILIKE '%gist%'
                  AND i.indexdef LIKE '%' || g.f_geometry_column || '%')
        """)
        ).all()
    assert unindexed == []
    migrate.downgrade(scratch_url, "base")
    assert set(inspect(engine).get_table_names()) <= {"spatial_ref_sys", "alembic_version"}
    migrate.upgrade(scratch_url)
    assert migrate.current_revision(scratch_url) == migrate.head_revision()
    engine.dispose()


def test_models_match_migrations(database_url: str) -> None:
    """Autogenerate finds nothing to add: the ORM and the migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from geoalchemy2 import alembic_helpers

    from gridsvc.db.base import Base

    engine = create_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_object": lambda o, n, t, r, c: (
                    n != "spatial_ref_sys" and alembic_helpers.include_object(o, n, t, r, c)
                ),
            },
        )
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_second_active_leader_refused_by_database(db: Session, small_street: SmallStreet) -> None:
    from sqlalchemy import select

    from gridsvc.models import Cell

    cell_id = db.scalar(select(Cell.id).where(Cell.code == small_street.cell_codes[0]))
    a, b = Person(name="张三"), Person(name="李四")
    db.add_all([a, b])
    db.flush()
    db.add(RoleAssignment(person_id=a.id, role="leader", cell_id=cell_id))
    db.flush()
    with pytest.raises(IntegrityError, match="one_active_leader"), db.begin_nested():
        db.add(RoleAssignment(person_id=b.id, role="leader", cell_id=cell_id))
        db.flush()
    # Ending the first assignment frees the post.
    db.execute(
        text("UPDATE role_assignment SET ends_on = current_date WHERE person_id = :p"), {"p": a.id}
    )
    db.add(RoleAssignment(person_id=b.id, role="leader", cell_id=cell_id))
    db.flush()


def test_invalid_geometry_refused_by_database(db: Session, small_street: SmallStreet) -> None:
    from gridsvc.models import Building

    bowtie = shapely.Polygon([(118.9, 32.1), (118.91, 32.11), (118.91, 32.1), (118.9, 32.11)])
    with pytest.raises(IntegrityError, match="footprint_valid"), db.begin_nested():
        db.add(Building(source="t", source_id="bad", footprint=to_db_geometry(bowtie)))
        db.flush()


def test_user_scope_must_match_role(db: Session) -> None:
    with pytest.raises(IntegrityError, match="scope_matches_role"), db.begin_nested():
        db.execute(
            text("INSERT INTO app_user (username, password_hash, role) VALUES ('x', 'h', 'leader')")
        )
