"""Sizing a street before drawing it: block grid, cells per community, seeds, metres→degrees."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import shapely

from geodata.synth.config import SynthConfig
from geodata.synth.reference import (
    BLOCK_SIDE,
    EDGE_MARGIN,
    ESTATE_SETBACK,
    JITTER,
    MAX_VACANCY,
    PLACE_NAMES,
    ROAD_HALF_WIDTH,
    SLANT_ALLOWANCE,
    SMALLEST_BLOCK,
    TOWER_DEPTH,
    TOWER_MAX_CAPACITY,
    TOWER_MAX_LENGTH,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _SizePlan:
    """Block grid and cell count of every community in a street."""

    ncx: int  # communities west-east
    ncy: int  # communities south-north
    nb: int  # blocks per community side
    side: float  # community side (m)
    jitter: float  # max vertex jitter (m)
    cells: int  # cells per community


def _check_config(config: SynthConfig) -> None:
    """Refuse configs the generator cannot honour."""
    if config.communities < 1:
        raise ValueError("communities must be >= 1")
    if config.households_per_community < 1 or config.cell_target_households < 1:
        raise ValueError("households_per_community and cell_target_households must be >= 1")
    if config.community_area_km2 <= 0:
        raise ValueError("community_area_km2 must be > 0")
    if not (config.street_code.isdigit() and len(config.street_code) == 9):
        raise ValueError("street_code must be 9 digits")
    if not (config.district_code.isdigit() and len(config.district_code) == 6):
        raise ValueError("district_code must be 6 digits")


def _derive_seed(seed: int, i: int) -> int:
    """Independent 63-bit seed for street ``i`` of a series (street 0 keeps ``seed``)."""
    state = np.random.SeedSequence([seed, i]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def _street_names(config: SynthConfig, n: int) -> list[str]:
    """Names for ``n`` streets: the config's own, then distinct generated ones."""
    rng = np.random.default_rng([config.seed, 7919])
    pool = [f"{p}街道" for p in rng.permutation(np.array(PLACE_NAMES))]
    pool = [p for p in pool if p != config.street_name]
    names = [config.street_name]
    for i in range(1, n):
        names.append(pool[i - 1] if i - 1 < len(pool) else f"示范{i + 1}街道")
    return names


def _degrees_per_metre(lat0: float) -> tuple[float, float]:
    """Degrees of longitude and latitude per metre at ``lat0`` (WGS84 radii of curvature)."""
    a, e2 = 6378137.0, 6.69437999014e-3
    phi = math.radians(lat0)
    w = math.sqrt(1.0 - e2 * math.sin(phi) ** 2)
    n_radius = a / w
    m_radius = a * (1.0 - e2) / w**3
    return math.degrees(1.0 / (n_radius * math.cos(phi))), math.degrees(1.0 / m_radius)


def _cell_rows(k: int, nb: int) -> int:
    """Rows (bands) of cells for ``k`` cells on ``nb``×``nb`` blocks: ≥2 blocks a cell, compact."""
    options = []
    for rows in range(1, nb + 1):
        per_row = math.ceil(k / rows)
        if per_row <= nb:
            min_blocks = (nb // rows) * (nb // per_row)
            options.append((rows, min_blocks, abs(math.log(k / rows**2))))
    floor_blocks = min(2, max(o[1] for o in options))
    return min((o for o in options if o[1] >= floor_blocks), key=lambda o: o[2])[0]


def _min_blocks(k: int, nb: int) -> int:
    """Fewest blocks any cell gets for ``k`` cells on ``nb``×``nb`` blocks."""
    rows = _cell_rows(k, nb)
    return (nb // rows) * (nb // math.ceil(k / rows))


def _tower_slots(width: np.ndarray | float, height: np.ndarray | float) -> np.ndarray:
    """How many full-size towers fit a packing rectangle, at the tightest row spacing."""
    w = np.asarray(width, dtype=float) - 2 * EDGE_MARGIN
    h = np.asarray(height, dtype=float) - 2 * EDGE_MARGIN
    per_row = np.floor((w + 8.0) / (TOWER_MAX_LENGTH + 8.0))
    rows = np.floor((h + 18.0) / (TOWER_DEPTH + 18.0))
    return np.asarray(np.clip(per_row, 0, None) * np.clip(rows, 0, None), dtype=np.int64)


def _plan_sizes(config: SynthConfig) -> _SizePlan:
    """Choose the block grid and, if density demands it, grow the community area."""
    h = config.households_per_community
    k = max(1, round(h / config.cell_target_households))
    area = config.community_area_km2 * 1e6
    inset = 2 * (ROAD_HALF_WIDTH + ESTATE_SETBACK + SLANT_ALLOWANCE)
    for _ in range(400):
        side = math.sqrt(area)
        nb_pref = max(2, round(side / BLOCK_SIDE), math.ceil(math.sqrt(2.5 * k)))
        nb_min = max(2, math.ceil(math.sqrt(k)))
        # prefer ~2.5 blocks a cell; when dense, fewer and larger blocks (down to one a cell)
        for nb in range(nb_pref, min(nb_pref, nb_min) - 1, -1):
            b = side / nb
            inner = SMALLEST_BLOCK * b - inset  # smallest block after width variation, jitter
            min_blocks = _min_blocks(k, nb)
            res_blocks = min_blocks - 1 if min_blocks >= 2 else 1  # one may be a school, park…
            capacity = res_blocks * int(_tower_slots(inner, inner)) * TOWER_MAX_CAPACITY
            if inner > 40 and 1.25 * (h / k) <= (1 - MAX_VACANCY) * capacity:
                break
        else:
            area *= 1.1
            continue
        break
    if area > config.community_area_km2 * 1e6 * 1.0001:
        logger.info("community area grown to %.2f km² to fit %d households", area / 1e6, h)
    ncx = math.ceil(math.sqrt(config.communities))
    ncy = math.ceil(config.communities / ncx)
    return _SizePlan(ncx=ncx, ncy=ncy, nb=nb, side=side, jitter=JITTER * b, cells=k)


@dataclass(frozen=True)
class _Randoms:
    """One random generator per stage, spawned from the config's seed."""

    lattice: np.random.Generator
    cells: np.random.Generator
    build: np.random.Generator
    hh: np.random.Generator
    people: np.random.Generator
    roles: np.random.Generator
    inc: np.random.Generator
    names: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> _Randoms:
        return cls(*(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)))


@dataclass(frozen=True)
class _Frame:
    """The local metric frame: metres east/north of the street's south-west corner."""

    lon0: float
    lat0: float
    kx: float  # degrees of longitude per metre
    ky: float  # degrees of latitude per metre

    def to_lonlat(self, geoms: np.ndarray) -> np.ndarray:
        """Local metres → lon/lat (affine, so shared vertices stay identical)."""
        scale, shift = np.array([self.kx, self.ky]), np.array([self.lon0, self.lat0])
        return shapely.transform(geoms, lambda c: c * scale + shift)
