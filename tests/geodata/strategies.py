"""Shared hypothesis strategies and helpers for the geodata property tests."""

from __future__ import annotations

import math
import os

import numpy as np
import pyproj
import shapely
from hypothesis import strategies as st
from numpy.typing import ArrayLike

GEOD = pyproj.Geod(ellps="WGS84")
LON0, LAT0 = 118.78, 32.04  # 南京 新街口: made-up communities are placed here
KY = math.pi / 180.0 * 6_371_008.8
KX = KY * math.cos(math.radians(LAT0))


def examples(n: int) -> int:
    """A property's example count: ``n``, or ten times ``n`` under the "thorough" profile."""
    return n * 10 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else n


def metres(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray:
    """Geodesic distance in metres between points (arrays or scalars)."""
    return np.abs(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def to_degrees(geom: shapely.Geometry) -> shapely.Geometry:
    """A geometry drawn in metres east/north of (LON0, LAT0), as lon/lat degrees."""
    return shapely.transform(
        geom, lambda xy: np.column_stack([LON0 + xy[:, 0] / KX, LAT0 + xy[:, 1] / KY])
    )


def box_m(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box given in metres east/north of (LON0, LAT0), in degrees."""
    return to_degrees(shapely.box(x0, y0, x1, y1))


@st.composite
def rectangles_m(
    draw: st.DrawFn, extent: float, min_size: float = 4.0, max_size: float = 60.0
) -> tuple[float, float, float, float]:
    """A rectangle (x0, y0, x1, y1) in metres inside [0, extent]², sides min_size…max_size."""
    w = draw(st.floats(min_size, max_size))
    h = draw(st.floats(min_size, max_size))
    x0 = draw(st.floats(0.0, max(extent - w, 0.0)))
    y0 = draw(st.floats(0.0, max(extent - h, 0.0)))
    return x0, y0, x0 + w, y0 + h


@st.composite
def guillotine_m(
    draw: st.DrawFn, width: float, height: float, min_side: float = 20.0, max_cells: int = 16
) -> list[tuple[float, float, float, float]]:
    """Boxes (x0, y0, x1, y1) in metres tiling [0, width] × [0, height] by random straight cuts.

    Cuts fall on whole metres, so neighbouring boxes share exact coordinates.
    """
    boxes = [(0.0, 0.0, float(width), float(height))]
    for _ in range(max_cells - 1):
        splittable = [
            k
            for k, (x0, y0, x1, y1) in enumerate(boxes)
            if x1 - x0 >= 2 * min_side or y1 - y0 >= 2 * min_side
        ]
        if not splittable or not draw(st.booleans()):
            break
        x0, y0, x1, y1 = boxes.pop(draw(st.sampled_from(splittable)))
        vertical = x1 - x0 >= 2 * min_side and (y1 - y0 < 2 * min_side or draw(st.booleans()))
        if vertical:
            cut = float(draw(st.integers(int(x0 + min_side), int(x1 - min_side))))
            boxes += [(x0, y0, cut, y1), (cut, y0, x1, y1)]
        else:
            cut = float(draw(st.integers(int(y0 + min_side), int(y1 - min_side))))
            boxes += [(x0, y0, x1, cut), (x0, cut, x1, y1)]
    return boxes
