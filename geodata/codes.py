"""Stable cell codes: number polygons west→east, then north→south (reading order)."""

from __future__ import annotations

import numpy as np
import shapely


def reading_order(geoms: np.ndarray | list[object]) -> np.ndarray:
    """Indices that put polygons in reading order: rows north→south, west→east within a row.

    Rows are formed from the centroids: a polygon starts a new row when its centroid lies more
    than half a typical cell height south of the current row's first one. (Centroids, not
    points on surface: a two-block cell's point on surface may land in either block.)
    """
    arr = np.asarray(geoms, dtype=object)
    if len(arr) == 0:
        return np.zeros(0, dtype=int)
    pts = shapely.centroid(arr)
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    bounds = shapely.bounds(arr)
    heights = bounds[:, 3] - bounds[:, 1]
    half_row = float(np.median(heights)) / 2 if len(arr) else 0.0
    north_first = np.argsort(-y, kind="stable")
    row_of = np.empty(len(arr), dtype=int)
    row, row_top = 0, y[north_first[0]]
    for i in north_first:
        if row_top - y[i] > half_row:
            row += 1
            row_top = y[i]
        row_of[i] = row
    # Ties (same row, same centroid x: cells stacked in one row band) go north first, then by
    # shape, never by input position: the same cells get the same codes in any order (a
    # property test found codes depending on the order the cells were listed in).
    return np.lexsort((shapely.area(arr), bounds[:, 0], -bounds[:, 3], -y, x, row_of))


def sequence_codes(prefix: str, count: int, start: int = 1, width: int = 3) -> list[str]:
    """Codes prefix+001, prefix+002 … (zero-padded sequence)."""
    return [f"{prefix}{n:0{width}d}" for n in range(start, start + count)]
