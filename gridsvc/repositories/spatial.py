"""Distance tests that keep the spatial indexes in use: one rule for "within so many metres".

Geometries are stored in EPSG:4326 and distances are metres on the WGS84 spheroid (geography).
``ST_DWithin(a::geography, b::geography, d)`` alone cannot use the GiST index on ``a`` (it is
an index on the geometry), so every distance test first asks the index for the rows whose box
meets ``b``'s box grown by enough degrees to surely cover ``d`` metres, then checks the exact
distance on those few rows. One degree of latitude is about 111.3 km everywhere; a degree of
longitude shrinks with cos(latitude), so the box is grown for the latitude farthest from the
equator that ``b`` reaches (capped at 85°) and by a 20 % margin.
"""

from __future__ import annotations

import math

#: Metres per degree of latitude (WGS84 mean).
M_PER_DEG = 111_320.0
#: Safety margin on the box (the spheroid is not a sphere; boxes are cheap).
MARGIN = 1.2


def expand_degrees(lat: float, metres: float) -> float:
    """Degrees to grow a box at latitude `lat` by so that it surely covers `metres`."""
    return MARGIN * metres / (M_PER_DEG * max(math.cos(math.radians(min(abs(lat), 85.0))), 0.05))


def degrees_sql(geom: str, metres: str) -> str:
    """SQL: the same number of degrees, for the geometry expression `geom` (a column or a
    subquery result) and the metres expression `metres` (a literal or a bound parameter)."""
    lat = f"least(85, greatest(abs(ST_YMin({geom})), abs(ST_YMax({geom}))))"
    return f"({MARGIN} * {metres} / ({M_PER_DEG} * greatest(cos(radians({lat})), 0.05)))"


def within_metres_sql(indexed: str, other: str, metres: str) -> str:
    """SQL: `indexed` (a column with a GiST index) lies within `metres` of `other`; the box
    test comes first so that the planner answers it from the index."""
    return (
        f"{indexed} && ST_Expand({other}, {degrees_sql(other, metres)}) "
        f"AND ST_DWithin({indexed}::geography, {other}::geography, {metres})"
    )
