"""A vector tile reads only what meets its envelope: in the two-street city of
tests/gridsvc/test_query_plans.py, every statement a tile request runs — each layer, the
combined tile, the cells revision behind the ETag — is planned without reading a city table
whole (the GiST indexes answer ``geom && ST_TileEnvelope``), for an admin, who has no scope
filter to lean on, and for a viewer of the target street (issue 14)."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from gridsvc.auth.principal import Principal
from gridsvc.services import tiles
from tests.gridsvc.test_query_plans import ADMIN, City, city, explained  # noqa: F401 (fixture)


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


@pytest.mark.parametrize("layer", [*tiles.LAYERS, tiles.COMBINED])
@pytest.mark.parametrize("z", [14, 17])
def test_a_tile_reads_no_city_table_whole(city: City, layer: str, z: int) -> None:  # noqa: F811
    x, y = _tile_of(*city.point, z)
    engine = create_engine(city.url)
    try:
        with Session(engine) as session:
            street_id = session.scalar(
                text("SELECT id FROM street WHERE code = :c"), {"c": city.street}
            )
            viewer = Principal(id=0, username="v", role="viewer", street_id=street_id)
            with explained(session, city.big) as plans:
                for who in (ADMIN, viewer):
                    found = tiles.get_tile(session, who, layer, z, x, y)
                    assert found.data, f"{layer} {z}/{x}/{y} is empty for {who.role}"
            session.rollback()
    finally:
        engine.dispose()
    assert plans, "no statement was captured"
    scans = [(sql, tables) for sql, tables in plans if tables]
    assert not scans, "\n".join(f"{tables}: {sql}" for sql, tables in scans)
