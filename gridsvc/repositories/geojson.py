"""Build GeoJSON (RFC 7946) in SQL: the database writes the JSON, Python only joins strings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Select, Text, func, literal_column, select
from sqlalchemy.orm import Session

#: Decimal places for coordinates (6 ≈ 0.1 m, as RFC 7946 suggests).
COORD_DECIMALS = 6


def geometry_json(geom_column: Any) -> Any:
    """SQL expression: the column as a GeoJSON geometry object."""
    return func.ST_AsGeoJSON(geom_column, COORD_DECIMALS).cast(JSON)


def feature(id_column: Any, geom_column: Any, properties: dict[str, Any]) -> Any:
    """SQL expression: one GeoJSON Feature built from columns."""
    props: list[Any] = []
    for key, column in properties.items():
        props += [key, column]
    return func.json_build_object(
        "type",
        "Feature",
        "id",
        id_column,
        "geometry",
        geometry_json(geom_column),
        "properties",
        func.json_build_object(*props),
    )


def json_array(session: Session, stmt: Select[Any]) -> tuple[str, int]:
    """Run a select of one JSON column; its rows as one JSON array text, and how many."""
    sub = stmt.subquery()
    column = next(iter(sub.c))
    agg = func.coalesce(func.json_agg(column), literal_column("'[]'::json")).cast(Text)
    text, count = session.execute(select(agg, func.count())).one()
    return text or "[]", int(count)


def feature_collection(features_json: str, **members: Any) -> str:
    """Wrap a JSON array of features as a FeatureCollection (extra members as JSON literals)."""
    import json

    extra = "".join(
        f', "{k}": {json.dumps(v, ensure_ascii=False, default=str)}' for k, v in members.items()
    )
    return f'{{"type": "FeatureCollection", "features": {features_json}{extra}}}'
