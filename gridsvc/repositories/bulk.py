"""Bulk writes with PostgreSQL COPY (50× faster than row-by-row INSERT, DESIGN §8)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import shapely
from sqlalchemy.orm import Session

from gridsvc.db.actor import before_write
from gridsvc.models._types import SRID


def promote_to_multi(geoms: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Polygons become MultiPolygons, lines MultiLineStrings (the storage types); others stay."""
    arr = np.asarray(geoms, dtype=object)
    types = shapely.get_type_id(arr)
    out = arr.copy()
    for type_id, multi in ((3, shapely.MultiPolygon), (1, shapely.MultiLineString)):
        for i in np.flatnonzero(types == type_id):
            out[i] = multi([arr[i]])
    return out


def ewkb_hex(geoms: Sequence[Any] | np.ndarray) -> list[str]:
    """Hex EWKB (SRID 4326, single parts promoted to multi) — the text PostGIS parses fastest."""
    arr = shapely.set_srid(promote_to_multi(geoms), SRID)
    return list(shapely.to_wkb(arr, hex=True, include_srid=True))


def to_db_geometry(geom: Any) -> Any:
    """A shapely geometry as a value for a GeoAlchemy2 column (multi-part, SRID 4326)."""
    from geoalchemy2.shape import from_shape

    return from_shape(promote_to_multi([geom])[0], srid=SRID)


def reserve_ids(session: Session, table: str, count: int) -> np.ndarray:
    """Take `count` ids from a table's id sequence, so COPY can write rows with known ids."""
    from sqlalchemy import text

    rows = session.execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
        {"table": table, "n": count},
    ).scalars()
    return np.fromiter(rows, dtype=np.int64, count=count)


def copy_rows(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """COPY rows into a table inside the session's transaction; returns the row count."""
    before_write(session)  # the audit trigger names the actor of the rows
    dbapi = session.connection().connection.driver_connection
    count = 0
    cols = ", ".join(columns)
    with dbapi.cursor() as cursor, cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def create_staging(session: Session, name: str, like: str, columns: Sequence[str]) -> None:
    """A temporary table with some columns of another, dropped at commit/rollback."""
    dbapi = session.connection().connection.driver_connection
    cols = ", ".join(columns)
    dbapi.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
    dbapi.execute(
        f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {cols} FROM {like} WITH NO DATA"
    )


def upsert_rows(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> tuple[int, int]:
    """COPY rows into a staging table, then insert them or update the rows with the same
    (source, source_id); returns (inserted, updated)."""
    from sqlalchemy import text

    stage = f"{table}_stage"
    create_staging(session, stage, table, columns)
    copy_rows(session, stage, columns, rows)
    cols = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in ("source", "source_id"))
    flags = (
        session.execute(
            text(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "
                f"ON CONFLICT (source, source_id) DO UPDATE SET {updates} RETURNING (xmax = 0)"
            )
        )
        .scalars()
        .all()
    )
    inserted = sum(1 for f in flags if f)
    return inserted, len(flags) - inserted
