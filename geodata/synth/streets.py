"""Stages 1–4 of the generator: road lattice, blocks and cells, estates and buildings, area
polygons — all in the local metric frame."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import shapely

from geodata.synth.config import SynthConfig
from geodata.synth.draw import (
    _cell_targets,
    _fill,
    _largest_remainder,
    _split_even,
    _unique_estate_names,
    _unique_names,
)
from geodata.synth.layout import PUBLIC_BUILDINGS, _layout, _plan_residential
from geodata.synth.plan import (
    _cell_rows,
    _Randoms,
    _SizePlan,
    _tower_slots,
)
from geodata.synth.reference import (
    CITY_NAMES,
    DISTRICT_NAMES,
    ESTATE_SETBACK,
    MAX_VACANCY,
    PARK,
    PLACE_NAMES,
    RESIDENTIAL,
    ROAD_HALF_WIDTH,
    ROAD_NAMES,
    SLANT_ALLOWANCE,
    SPECIAL_BLOCKS,
    TOWER_MAX_CAPACITY,
    WIDTH_VARIATION,
)

logger = logging.getLogger(__name__)


# ---- stage 1: lattice of road centre-line vertices ------------------------------------------


@dataclass(frozen=True)
class _Lattice:
    vx: np.ndarray  # (nx + 1, ny + 1) vertex x (m)
    vy: np.ndarray  # (nx + 1, ny + 1) vertex y (m)
    road_ns: list[str]  # names of the north-south roads, west to east (…路)
    road_ew: list[str]  # names of the east-west roads, south to north (…街)


def _lattice(rnd: _Randoms, plan: _SizePlan) -> _Lattice:
    """Road centre lines: a grid whose spacing varies and whose vertices are jittered."""
    nb = plan.nb
    nx, ny = plan.ncx * nb, plan.ncy * nb
    b = plan.side / nb
    wx = rnd.lattice.uniform(1 - WIDTH_VARIATION, 1 + WIDTH_VARIATION, nx)
    wy = rnd.lattice.uniform(1 - WIDTH_VARIATION, 1 + WIDTH_VARIATION, ny)
    xs = np.concatenate([[0.0], np.cumsum(wx * (nx * b / wx.sum()))])
    ys = np.concatenate([[0.0], np.cumsum(wy * (ny * b / wy.sum()))])
    xs[-1], ys[-1] = nx * b, ny * b
    vx = xs[:, None] + rnd.lattice.uniform(-plan.jitter, plan.jitter, (nx + 1, ny + 1))
    vy = ys[None, :] + rnd.lattice.uniform(-plan.jitter, plan.jitter, (nx + 1, ny + 1))
    vx[0, 0] = vy[0, 0] = 0.0  # the origin is the street's south-west corner
    road_ns = _unique_names(rnd.names, list(ROAD_NAMES), nx + 1, "{}路")
    road_ew = _unique_names(rnd.names, list(ROAD_NAMES), ny + 1, "{}街")
    return _Lattice(vx, vy, road_ns, road_ew)


# ---- stage 2: communities, blocks and cells (index space) ----------------------------------


@dataclass
class _Blocks:
    """Every road block of the street, with its community, cell, kind and household target."""

    comm_names: list[str]
    comm_codes: list[str]
    bi_all: np.ndarray  # block column (west → east)
    bj_all: np.ndarray  # block row (south → north)
    b_comm: np.ndarray  # community index of each block
    b_cell: np.ndarray  # cell index of each block
    b_kind: np.ndarray  # RESIDENTIAL, CIVIC, … (vacant blocks become PARK)
    cell_comm_arr: np.ndarray  # community index of each cell
    cell_t: np.ndarray  # household target of each cell
    corners: np.ndarray  # (n_blocks, 4, 2): SW, SE, NE, NW
    block_polys: np.ndarray
    rects: np.ndarray  # (n_blocks, 4) building packing rectangle x0, y0, x1, y1
    cell_order: np.ndarray  # blocks sorted by cell
    cell_bounds: np.ndarray  # cell c's blocks are cell_order[cell_bounds[c]:cell_bounds[c + 1]]
    b_target: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_blocks(self) -> int:
        return len(self.bi_all)

    @property
    def n_cells(self) -> int:
        return len(self.cell_comm_arr)


def _community_cells(rnd: _Randoms, nb: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One community's nb × nb blocks cut into k cells in rows, and the kind of each block."""
    rows = _cell_rows(k, nb)
    band_h = _split_even(rnd.cells, nb, rows)
    per_row = _split_even(rnd.cells, k, rows)
    local = np.empty((nb, nb), dtype=np.int64)  # [i (west→east), j (south→north)]
    top = nb
    first = 0
    for band, ncell in zip(band_h, per_row, strict=True):
        widths = _split_even(rnd.cells, nb, int(ncell))
        left = 0
        for w_i, w in enumerate(widths):
            local[left : left + w, top - band : top] = first + w_i
            left += w
        first += int(ncell)
        top -= int(band)
    kinds = np.full((nb, nb), RESIDENTIAL)
    blocks_per_cell = np.bincount(local.ravel(), minlength=k)
    res_left = blocks_per_cell.copy()
    specials = list(SPECIAL_BLOCKS) + ([PARK] if nb >= 8 else [])
    for flat in rnd.cells.permutation(nb * nb):
        if not specials:
            break
        bi, bj = divmod(int(flat), nb)
        cl = local[bi, bj]
        if res_left[cl] >= 2:
            kinds[bi, bj] = specials.pop(0)
            res_left[cl] -= 1
    return local, kinds


def _blocks(rnd: _Randoms, config: SynthConfig, plan: _SizePlan, lattice: _Lattice) -> _Blocks:
    """Communities in reading order from the north-west, each cut into cells of road blocks."""
    nb, n_comm = plan.nb, config.communities
    comm_names = _unique_names(rnd.names, list(PLACE_NAMES), n_comm, "{}社区")
    comm_codes = [config.street_code + f"{i + 1:03d}" for i in range(n_comm)]
    k = plan.cells

    blk_i, blk_j, blk_comm, blk_cell, blk_kind = [], [], [], [], []
    cell_comm: list[int] = []
    cell_targets: list[np.ndarray] = []
    for c in range(n_comm):
        crow, ccol = divmod(c, plan.ncx)  # reading order from the north-west
        i0, j0 = ccol * nb, (plan.ncy - 1 - crow) * nb
        local, kinds = _community_cells(rnd, nb, k)
        cell_targets.append(
            _cell_targets(
                rnd.cells, config.households_per_community, k, config.cell_target_households
            )
        )
        ii, jj = np.meshgrid(np.arange(nb), np.arange(nb), indexing="ij")
        blk_i.append((i0 + ii).ravel())
        blk_j.append((j0 + jj).ravel())
        blk_comm.append(np.full(nb * nb, c))
        blk_cell.append((local + len(cell_comm)).ravel())
        blk_kind.append(kinds.ravel())
        cell_comm.extend([c] * k)
    bi_all = np.concatenate(blk_i)
    bj_all = np.concatenate(blk_j)
    b_cell = np.concatenate(blk_cell)
    vx, vy = lattice.vx, lattice.vy
    corners = np.stack(
        [
            np.stack([vx[bi_all, bj_all], vy[bi_all, bj_all]], -1),
            np.stack([vx[bi_all + 1, bj_all], vy[bi_all + 1, bj_all]], -1),
            np.stack([vx[bi_all + 1, bj_all + 1], vy[bi_all + 1, bj_all + 1]], -1),
            np.stack([vx[bi_all, bj_all + 1], vy[bi_all, bj_all + 1]], -1),
        ],
        axis=1,
    )  # (n_blocks, 4, 2): SW, SE, NE, NW
    inset = ROAD_HALF_WIDTH + ESTATE_SETBACK + SLANT_ALLOWANCE
    rects = np.stack(
        [
            np.maximum(corners[:, 0, 0], corners[:, 3, 0]) + inset,
            np.maximum(corners[:, 0, 1], corners[:, 1, 1]) + inset,
            np.minimum(corners[:, 1, 0], corners[:, 2, 0]) - inset,
            np.minimum(corners[:, 2, 1], corners[:, 3, 1]) - inset,
        ],
        axis=1,
    )
    cell_comm_arr = np.asarray(cell_comm)
    cell_order = np.argsort(b_cell, kind="stable")
    blocks = _Blocks(
        comm_names=comm_names,
        comm_codes=comm_codes,
        bi_all=bi_all,
        bj_all=bj_all,
        b_comm=np.concatenate(blk_comm),
        b_cell=b_cell,
        b_kind=np.concatenate(blk_kind),
        cell_comm_arr=cell_comm_arr,
        cell_t=np.concatenate(cell_targets),
        corners=corners,
        block_polys=np.asarray(shapely.polygons(corners), dtype=object),
        rects=rects,
        cell_order=cell_order,
        cell_bounds=np.searchsorted(b_cell[cell_order], np.arange(len(cell_comm_arr) + 1)),
    )
    _block_targets(rnd, blocks)
    return blocks


def _block_targets(rnd: _Randoms, blocks: _Blocks) -> None:
    """Household targets: each cell's total spread over some of its residential blocks, by
    usable area; a sparse cell leaves blocks vacant (open land) rather than scatter houses."""
    rects, b_kind = blocks.rects, blocks.b_kind
    rect_area = np.clip(rects[:, 2] - rects[:, 0], 0, None) * np.clip(
        rects[:, 3] - rects[:, 1], 0, None
    )
    block_cap = np.floor(
        (1 - MAX_VACANCY)
        * TOWER_MAX_CAPACITY
        * _tower_slots(rects[:, 2] - rects[:, 0], rects[:, 3] - rects[:, 1])
    ).astype(np.int64)
    b_target = np.zeros(blocks.n_blocks, dtype=np.int64)
    for cl in range(blocks.n_cells):
        members = blocks.cell_order[blocks.cell_bounds[cl] : blocks.cell_bounds[cl + 1]]
        res = members[b_kind[members] == RESIDENTIAL]
        n_used = max(1, min(len(res), round(blocks.cell_t[cl] / 40)))
        if n_used < len(res):
            vacant = rnd.cells.choice(res, len(res) - n_used, replace=False)
            b_kind[vacant] = PARK
            res = np.setdiff1d(res, vacant)
        weights = rect_area[res] * rnd.cells.uniform(0.6, 1.4, len(res))
        b_target[res] = _fill(int(blocks.cell_t[cl]), weights + 1e-9, block_cap[res])
        b_kind[res[b_target[res] == 0]] = PARK
    blocks.b_target = b_target


# ---- stage 3: estates and buildings ----------------------------------------------------------


@dataclass
class _BuildingRows:
    """Buildings as they are placed, one list entry per building."""

    cx: list[float] = field(default_factory=list)
    cy: list[float] = field(default_factory=list)
    length: list[float] = field(default_factory=list)
    depth: list[float] = field(default_factory=list)
    angle: list[float] = field(default_factory=list)
    block: list[int] = field(default_factory=list)
    estate: list[int] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    addr: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    struct: list[str | None] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)
    units: list[int] = field(default_factory=list)
    cap: list[int] = field(default_factory=list)
    hh: list[int] = field(default_factory=list)

    def add(self, **values: object) -> None:
        for key, value in values.items():
            getattr(self, key).append(value)


@dataclass(frozen=True)
class _Estates:
    res_blocks: np.ndarray  # the residential blocks; estate e is block res_blocks[e]
    names: list[str]
    of_block: np.ndarray  # estate index of each block, -1 for none
    addr: list[str]  # road and number of each estate


def _estates(rnd: _Randoms, lattice: _Lattice, blocks: _Blocks) -> _Estates:
    """One estate (小区) per residential block, named, with a road address."""
    res_blocks = np.flatnonzero(blocks.b_kind == RESIDENTIAL)
    estate_names = _unique_estate_names(rnd.names, len(res_blocks))
    estate_of_block = np.full(blocks.n_blocks, -1)
    estate_of_block[res_blocks] = np.arange(len(res_blocks))
    estate_addr = []
    for e, blk in enumerate(res_blocks):
        if rnd.build.random() < 0.5:
            road = lattice.road_ew[blocks.bj_all[blk]]
        else:
            road = lattice.road_ns[blocks.bi_all[blk]]
        estate_addr.append(f"{road}{2 * int(rnd.build.integers(1, 150)) + 1}号{estate_names[e]}")
    return _Estates(res_blocks, estate_names, estate_of_block, estate_addr)


def _residential_style(rng: np.random.Generator, target: int) -> list[str]:
    """Building styles to try for a block of ``target`` households, the likeliest first."""
    if target < 120:
        style = "slab" if rng.random() < 0.85 else "mixed"
    elif target < 400:
        style = str(rng.choice(["slab", "mixed", "tower"], p=[0.5, 0.35, 0.15]))
    else:
        style = "mixed" if rng.random() < 0.5 else "tower"
    return [style] + [s for s in ("mixed", "tower", "dense") if s != style]


def _place_residential(
    rng: np.random.Generator,
    rows: _BuildingRows,
    blk: int,
    target: int,
    rect: tuple[float, float, float, float],
    estate: int,
    address: str,
) -> int:
    """Residential buildings for ``target`` households in one block; returns the households
    that did not fit (carried to the cell's next block)."""
    placed = None
    for st in _residential_style(rng, target):
        bplan = _plan_residential(rng, target, st)
        bplan.sort(key=lambda t: t[0] != "tower")
        sizes = [(t[3], t[4]) for t in bplan]
        placed = _layout(rng, sizes, rect, [t[0] == "tower" for t in bplan])
        if placed is not None:
            break
    if placed is None:  # very dense: keep the buildings that fit, row by row
        while bplan and placed is None:
            bplan.pop()
            sizes = [(t[3], t[4]) for t in bplan]
            placed = _layout(rng, sizes, rect, [t[0] == "tower" for t in bplan])
        placed = placed or []
    caps = np.array([(4 if t[0] == "tower" else 2) * t[1] * t[2] for t in bplan])
    if len(caps):
        hh = _largest_remainder(min(target, int(caps.sum())), caps)
    else:
        hh = np.zeros(0, dtype=np.int64)
    for n_b, (t, (cx, cy, ang)) in enumerate(zip(bplan, placed, strict=True)):
        rows.add(
            cx=cx,
            cy=cy,
            length=t[3],
            depth=t[4],
            angle=ang,
            block=blk,
            estate=estate,
            name=f"{n_b + 1}栋",
            addr=f"{address}{n_b + 1}栋",
            kind="residential",
            struct=t[0],
            levels=t[1],
            units=t[2],
            cap=int(caps[n_b]),
            hh=int(hh[n_b]),
        )
    return target - int(hh.sum())


def _place_public(
    rng: np.random.Generator,
    rows: _BuildingRows,
    blk: int,
    kind: int,
    rect: tuple[float, float, float, float],
    community: str,
    road: str,
    addr_prefix: str,
) -> None:
    """The public buildings of a civic, school or market block (shrunk until they fit)."""
    specs = PUBLIC_BUILDINGS[kind]
    placed = None
    for scale in (1.0, 0.75, 0.5):
        sizes = [(s[2] * scale, s[3] * scale) for s in specs]
        placed = _layout(rng, sizes, rect, [False] * len(specs), rotate=False)
        if placed is not None:
            break
    if placed is None:
        return
    cname = community.removesuffix("社区")
    number = 2 * int(rng.integers(1, 150))
    for s_i, (spec, (cx, cy, ang)) in enumerate(zip(specs, placed, strict=True)):
        lo, hi = spec[4]
        rows.add(
            cx=cx,
            cy=cy,
            length=sizes[s_i][0],
            depth=sizes[s_i][1],
            angle=ang,
            block=blk,
            estate=-1,
            name=spec[1].format(c=cname, r=road.removesuffix("路")),
            addr=f"{addr_prefix}{road}{number + 2 * s_i}号",
            kind=spec[0],
            struct=None,
            levels=int(rng.integers(lo, hi + 1)),
            units=0,
            cap=0,
            hh=0,
        )


@dataclass(frozen=True)
class _Buildings:
    """Every building of the street as arrays (local metres), and the estates they stand in."""

    estates: _Estates
    district_name: str
    rows: _BuildingRows
    cx: np.ndarray
    cy: np.ndarray
    half_l: np.ndarray
    half_d: np.ndarray
    ang: np.ndarray  # radians
    polys: np.ndarray
    comm: np.ndarray
    cell: np.ndarray
    estate: np.ndarray
    levels: np.ndarray
    units: np.ndarray
    cap: np.ndarray  # dwellings
    hh: np.ndarray  # households living there
    per_floor: np.ndarray  # dwellings per unit and floor

    @property
    def n(self) -> int:
        return len(self.cx)


def _buildings(
    rnd: _Randoms, config: SynthConfig, lattice: _Lattice, blocks: _Blocks
) -> _Buildings:
    """Estates and buildings, block by block in cell order; households that do not fit a
    block are carried to the next block of the same cell."""
    estates = _estates(rnd, lattice, blocks)
    city = CITY_NAMES.get(config.district_code[:4], "")
    district_name = DISTRICT_NAMES.get(config.district_code, "示范区")
    addr_prefix = f"{city}{district_name}{config.street_name}"

    rows = _BuildingRows()
    shortfall = 0
    carry, carry_cell = 0, -1
    for blk in blocks.cell_order:
        kind = int(blocks.b_kind[blk])
        x0, y0, x1, y1 = (float(v) for v in blocks.rects[blk])
        rect = (x0, y0, x1, y1)
        if carry and blocks.b_cell[blk] != carry_cell:
            shortfall += carry
            carry = 0
        if kind == RESIDENTIAL:
            target = int(blocks.b_target[blk]) + carry
            carry = 0
            if target <= 0:
                continue
            e = int(estates.of_block[blk])
            address = f"{addr_prefix}{estates.addr[e]}"
            carry = _place_residential(rnd.build, rows, blk, target, rect, e, address)
            carry_cell = int(blocks.b_cell[blk])
        elif PUBLIC_BUILDINGS[kind]:
            community = blocks.comm_names[blocks.b_comm[blk]]
            road = lattice.road_ns[blocks.bi_all[blk]]
            _place_public(rnd.build, rows, blk, kind, rect, community, road, addr_prefix)
    shortfall += carry
    if shortfall:
        logger.warning("%d households did not fit their blocks and were dropped", shortfall)
    return _footprints(estates, district_name, rows, blocks)


def _footprints(
    estates: _Estates, district_name: str, rows: _BuildingRows, blocks: _Blocks
) -> _Buildings:
    """Rotated rectangles from the placed rows, and the rows as arrays."""
    cx, cy = np.asarray(rows.cx), np.asarray(rows.cy)
    half_l, half_d = np.asarray(rows.length) / 2, np.asarray(rows.depth) / 2
    ang = np.radians(np.asarray(rows.angle))
    ca, sa = np.cos(ang), np.sin(ang)
    ux = np.array([-1, 1, 1, -1])[None, :] * half_l[:, None]
    uy = np.array([-1, -1, 1, 1])[None, :] * half_d[:, None]
    bcoords = np.stack(
        [
            cx[:, None] + ux * ca[:, None] - uy * sa[:, None],
            cy[:, None] + ux * sa[:, None] + uy * ca[:, None],
        ],
        axis=-1,
    )
    n_bld = len(cx)
    bld_block = np.asarray(rows.block, dtype=np.int64)
    return _Buildings(
        estates=estates,
        district_name=district_name,
        rows=rows,
        cx=cx,
        cy=cy,
        half_l=half_l,
        half_d=half_d,
        ang=ang,
        polys=np.asarray(shapely.polygons(bcoords), dtype=object)
        if n_bld
        else np.empty(0, dtype=object),
        comm=blocks.b_comm[bld_block] if n_bld else np.empty(0, dtype=np.int64),
        cell=blocks.b_cell[bld_block] if n_bld else np.empty(0, dtype=np.int64),
        estate=np.asarray(rows.estate, dtype=np.int64),
        levels=np.asarray(rows.levels, dtype=np.int64),
        units=np.asarray(rows.units, dtype=np.int64),
        cap=np.asarray(rows.cap, dtype=np.int64),
        hh=np.asarray(rows.hh, dtype=np.int64),
        per_floor=np.where(np.asarray(rows.struct, dtype=object) == "tower", 4, 2),
    )


# ---- stage 4: polygons: blocks → cells → communities → street ---------------------------------


@dataclass(frozen=True)
class _Areas:
    cell_polys: np.ndarray
    comm_polys: np.ndarray
    street_poly: shapely.Geometry
    estate_polys: np.ndarray


def _areas(blocks: _Blocks, estates: _Estates, n_comm: int) -> _Areas:
    """Cells, communities and the street as exact unions of blocks; estates inset by a road."""
    cell_polys = np.array(
        [
            shapely.coverage_union_all(
                blocks.block_polys[
                    blocks.cell_order[blocks.cell_bounds[c] : blocks.cell_bounds[c + 1]]
                ]
            )
            for c in range(blocks.n_cells)
        ],
        dtype=object,
    )
    comm_polys = np.array(
        [shapely.coverage_union_all(cell_polys[blocks.cell_comm_arr == c]) for c in range(n_comm)],
        dtype=object,
    )
    estate_polys = shapely.buffer(
        blocks.block_polys[estates.res_blocks],
        -ROAD_HALF_WIDTH,
        join_style="mitre",
        mitre_limit=10.0,
    )
    return _Areas(cell_polys, comm_polys, shapely.coverage_union_all(comm_polys), estate_polys)
