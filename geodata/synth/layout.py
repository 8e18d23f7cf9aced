"""Buildings inside a block: residential building plans and packing them in rows."""

from __future__ import annotations

import math

import numpy as np

from geodata.synth.reference import (
    CIVIC,
    EDGE_MARGIN,
    MARKET,
    MAX_ROTATION_DEG,
    MAX_VACANCY,
    PARK,
    SCHOOL,
    TOWER_DEPTH,
    TOWER_MAX_LENGTH,
)

# ------------------------------------------------------------------ building planning ----


def _plan_residential(
    rng: np.random.Generator, target: int, style: str
) -> list[tuple[str, int, int, float, float]]:
    """Buildings (structure, levels, units, length, depth) whose capacity covers ``target``."""
    vacancy = rng.uniform(0.03, MAX_VACANCY)
    need = math.ceil(target / (1.0 - vacancy))
    out: list[tuple[str, int, int, float, float]] = []
    if style != "slab":
        tower_need = need if style in ("tower", "dense") else need * rng.uniform(0.4, 0.75)
        while tower_need >= 72 or (style == "dense" and tower_need > 0):
            units = 2 if tower_need >= 144 and (style == "dense" or rng.random() < 0.7) else 1
            tallest = 33 if style == "dense" else int(rng.integers(18, 34))
            levels = max(18, min(tallest, math.ceil(tower_need / (4 * units))))
            cap = 4 * units * levels
            length = TOWER_MAX_LENGTH - 4 * (2 - units) - rng.uniform(0, 2)
            out.append(("tower", levels, units, length, TOWER_DEPTH))
            tower_need -= cap
            need -= cap
    while need > 0:
        levels = int(rng.choice((5, 6, 7), p=(0.15, 0.6, 0.25)))
        if need >= 2 * levels * 4:
            units = int(rng.choice((2, 3, 4), p=(0.3, 0.45, 0.25)))
        else:
            units = max(2, min(4, math.ceil(need / (2 * levels))))
        out.append(("slab", levels, units, 14.0 * units + 8.0, 12.0 + (units == 4)))
        need -= 2 * units * levels
    return out


def _layout(
    rng: np.random.Generator,
    sizes: list[tuple[float, float]],
    rect: tuple[float, float, float, float],
    tall: list[bool],
    rotate: bool = True,
) -> list[tuple[float, float, float]] | None:
    """Pack rectangles (length, depth) in rows inside ``rect``; centres and angles, or None."""
    x0, y0, x1, y1 = rect
    x0, y0, x1, y1 = x0 + EDGE_MARGIN, y0 + EDGE_MARGIN, x1 - EDGE_MARGIN, y1 - EDGE_MARGIN
    width, height = x1 - x0, y1 - y0
    if width <= 0 or height <= 0:
        return None
    for gap_x, gap_tall, gap_low in ((14.0, 26.0, 16.0), (8.0, 18.0, 12.0)):
        rows: list[list[int]] = []
        row_w = 0.0
        for i, (length, _depth) in enumerate(sizes):
            if length > width:
                return None
            if rows and tall[i] == tall[rows[-1][0]] and row_w + gap_x + length <= width:
                rows[-1].append(i)
                row_w += gap_x + length
            else:
                rows.append([i])
                row_w = length
        row_h = [max(sizes[i][1] for i in r) for r in rows]
        row_gap = [gap_tall if any(tall[i] for i in r) else gap_low for r in rows]
        used = sum(row_h) + sum(row_gap[:-1])
        if used <= height:
            break
    else:
        return None
    spare = height - used
    extra = min(spare / (len(rows) + 1), 20.0)
    top_pad = (spare - extra * (len(rows) - 1)) * rng.uniform(0.3, 0.7)
    out: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * len(sizes)
    y = y1 - top_pad
    for r, (row, h) in enumerate(zip(rows, row_h, strict=True)):
        cy = y - h / 2
        lengths = [sizes[i][0] for i in row]
        free = width - sum(lengths) - gap_x * (len(row) - 1)
        gap = gap_x + min(free / (len(row) + 1), 25.0)
        left = x0 + (free - (gap - gap_x) * (len(row) - 1)) * rng.uniform(0.3, 0.7)
        for i, length in zip(row, lengths, strict=True):
            angle = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG) if rotate else 0.0
            if rng.random() < 0.6:
                angle = 0.0
            out[i] = (left + length / 2, cy, angle)
            left += length + gap
        y -= h + row_gap[r] + extra
    return out


PUBLIC_BUILDINGS = {  # block kind → (building, name pattern, length, depth, (min, max) levels)
    CIVIC: (
        ("community_center", "{c}社区服务中心", 40.0, 20.0, (3, 4)),
        ("clinic", "{c}社区卫生服务站", 28.0, 15.0, (2, 3)),
        ("office", "{r}大厦", 40.0, 18.0, (12, 20)),
    ),
    SCHOOL: (
        ("school", "{c}小学", 80.0, 18.0, (4, 5)),
        ("kindergarten", "{c}幼儿园", 40.0, 22.0, (2, 3)),
    ),
    MARKET: (
        ("market", "{c}农贸市场", 60.0, 35.0, (1, 2)),
        ("office", "{r}商务楼", 36.0, 16.0, (8, 16)),
    ),
    PARK: (),
}
