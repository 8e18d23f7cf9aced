"""Point lookup: which cell (and community) holds a point — the service's hottest read."""

from __future__ import annotations

import shapely
from sqlalchemy.orm import Session

from geodata.china import Datum, convert_geometries
from gridsvc.auth.policy import require_in_scope
from gridsvc.auth.principal import Principal
from gridsvc.db.engine import read_only
from gridsvc.repositories import cells as cell_repo


def locate(
    session: Session, principal: Principal, lon: float, lat: float, datum: Datum
) -> tuple[shapely.Point, cell_repo.PointHit]:
    """The WGS84 point (GCJ-02/BD-09 converted first) and what holds it, if that lies in the
    principal's scope (403 otherwise). Plain reads: no transaction of their own."""
    read_only(session)
    point = convert_geometries(shapely.Point(lon, lat), datum)
    hit = cell_repo.lookup_point(session, point.x, point.y)
    require_in_scope(principal, hit.place, "this point")
    return point, hit
