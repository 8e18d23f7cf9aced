"""Properties of proposed partitions (hypothesis) on small made-up communities.

A community is a box (or an L-shaped outline) of 120–360 m near 新街口, with up to 24
non-overlapping rectangular buildings of random households (sometimes towers above the
band), up to three straight roads of random kinds running between the buildings, and now and
then a building beyond the outline (it must join the nearest cell, with a warning). Whatever is drawn, a proposal tiles the
outline with one polygon per cell, puts every building in exactly one cell (the one holding most
of it), conserves households and explains every cell outside the band; the same seed gives the
same cells. The checks of test_partition.check_invariants run on every example.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geodata.crs import metric_crs
from geodata.partition import REASONS, Proposal, propose_partition
from tests.geodata.strategies import box_m, examples, to_degrees
from tests.geodata.test_partition import check_invariants

SLOT = 40.0  # buildings are drawn in a grid of 40 m slots, one at most per slot: no overlaps
HIGHWAYS = ["residential", "primary", "tertiary", "footway", "service"]


@dataclass(frozen=True)
class Spec:
    """A made-up community in metres, printable and reusable as an ``@example``.

    ``buildings`` are (x, y, width, height, households); ``roads`` (vertical, slot line,
    highway): a road runs along a line between slots, so it never crosses a building.
    """

    slots: tuple[int, int]
    l_shaped: bool
    buildings: tuple[tuple[float, float, float, float, int], ...]
    roads: tuple[tuple[bool, int, str], ...]
    target: int
    outsider: tuple[float, float] | None = None  # a 10 m building this far outside, south-west

    def outline_m(self) -> shapely.Geometry:
        """The outline in metres."""
        width, height = self.slots[0] * SLOT, self.slots[1] * SLOT
        outline = shapely.box(0, 0, width, height)
        if self.l_shaped:  # the north-east quarter cut away
            outline = outline.difference(shapely.box(width / 2, height / 2, width, height))
        return outline

    def build(
        self,
    ) -> tuple[shapely.Geometry, gpd.GeoDataFrame, gpd.GeoDataFrame | None, int, tuple[int, int]]:
        """Outline, buildings, roads (or None), target and band, in EPSG:4326."""
        drawn = list(self.buildings)
        if self.outsider is not None:
            x, y = self.outsider
            drawn.append((x - 10.0, y - 10.0, 10.0, 10.0, 20))
        buildings = gpd.GeoDataFrame(
            {"households": [b[4] for b in drawn]},
            geometry=[box_m(x, y, x + w, y + h) for x, y, w, h, _ in drawn],
            crs=4326,
            index=pd.Index([f"b{k}" for k in range(len(drawn))]),
        )
        width, height = self.slots[0] * SLOT, self.slots[1] * SLOT
        lines = [
            shapely.LineString([(at * SLOT, -10), (at * SLOT, height + 10)])
            if vertical
            else shapely.LineString([(-10, at * SLOT), (width + 10, at * SLOT)])
            for vertical, at, _ in self.roads
        ]
        roads = None
        if lines:
            roads = gpd.GeoDataFrame(
                {"highway": [r[2] for r in self.roads]},
                geometry=[to_degrees(line) for line in lines],
                crs=4326,
            )
        band = (self.target * 2 // 3, self.target * 5 // 3)
        return to_degrees(self.outline_m()), buildings, roads, self.target, band


@st.composite
def communities(draw: st.DrawFn) -> Spec:
    """A box or L-shaped outline of 120–360 m, 1–24 buildings, 0–3 roads, a target."""
    slots = (draw(st.integers(3, 9)), draw(st.integers(3, 9)))
    l_shaped = draw(st.booleans())
    outline = Spec(slots, l_shaped, (), (), 0).outline_m()
    free = [
        (i, j)
        for i in range(slots[0])
        for j in range(slots[1])
        if outline.contains(shapely.box(i * SLOT, j * SLOT, (i + 1) * SLOT, (j + 1) * SLOT))
    ]
    chosen = draw(st.lists(st.sampled_from(free), min_size=1, max_size=24, unique=True))
    buildings = []
    for i, j in chosen:
        w = draw(st.integers(6, int(SLOT) - 6))
        h = draw(st.integers(6, int(SLOT) - 6))
        x = i * SLOT + draw(st.integers(2, int(SLOT) - 2 - w))
        y = j * SLOT + draw(st.integers(2, int(SLOT) - 2 - h))
        hh = draw(st.one_of(st.integers(0, 120), st.just(0), st.integers(150, 400)))
        buildings.append((x, y, float(w), float(h), hh))
    roads = draw(
        st.lists(st.tuples(st.booleans(), st.integers(1, 8), st.sampled_from(HIGHWAYS)), max_size=3)
    )
    roads = [(v, min(at, slots[0 if v else 1] - 1), kind) for v, at, kind in roads]
    target = draw(st.sampled_from([60, 100, 150, 300]))
    outsider = None
    if draw(st.integers(0, 3)) == 0:  # now and then a building beyond the outline
        along = draw(st.floats(10.0, slots[0] * SLOT))
        outsider = (along, -draw(st.floats(2.0, 60.0)))
        if draw(st.booleans()):  # west of it instead of south
            outsider = (-draw(st.floats(2.0, 60.0)), draw(st.floats(10.0, slots[1] * SLOT / 2)))
    return Spec(slots, l_shaped, tuple(buildings), tuple(roads), target, outsider)


def same_proposal(a: Proposal, b: Proposal) -> bool:
    """Equal cells (geometry and figures) and equal building assignments."""
    return (
        a.building_cell.equals(b.building_cell)
        and len(a.cells) == len(b.cells)
        and bool(shapely.equals(a.cells.geometry.to_numpy(), b.cells.geometry.to_numpy()).all())
        and a.cells["households"].tolist() == b.cells["households"].tolist()
    )


@settings(max_examples=examples(40))
@given(communities(), st.integers(0, 3))
def test_partitions_keep_their_invariants(spec: Spec, seed: int) -> None:
    outline, buildings, roads, target, band = spec.build()
    proposal = propose_partition(outline, buildings, roads, target=target, band=band, seed=seed)
    m = check_invariants(outline, buildings, proposal)
    cells = proposal.cells
    lower, upper = band
    # roads run between buildings, so no building is cut: each lies within its own cell; and
    # the cells together cover every building
    footprint = m.sum(axis=1)
    assert (m.max(axis=1) >= footprint * (1 - 1e-6)).all()
    union = shapely.union_all(cells.geometry.to_numpy())
    inside = buildings.iloc[: len(spec.buildings)].geometry.to_numpy()
    uncovered = shapely.area(shapely.difference(inside, union))
    assert (uncovered <= 1e-9 * shapely.area(inside)).all()
    if spec.outsider is not None:  # it is said, and it joins the nearest cell (in metres)
        assert any("1 buildings lie outside the area" in w for w in proposal.warnings)
        crs = metric_crs(buildings)
        building = buildings.geometry.to_crs(crs).iloc[-1]
        distance = cells.geometry.to_crs(crs).distance(building).to_numpy()
        assert distance[proposal.building_cell.iloc[-1]] <= distance.min() + 0.01
    else:
        assert not any("outside the area" in w for w in proposal.warnings)
    # the reasons for cells outside the band are the true ones
    total = int(buildings["households"].sum())
    biggest = buildings["households"].groupby(proposal.building_cell).max()
    biggest = biggest.reindex(range(len(cells)), fill_value=0).to_numpy()
    for c, row in cells.iterrows():
        reason = row["reason"]
        if row["in_band"]:
            continue
        assert reason in REASONS.values()
        assert (reason == REASONS["total"]) == (total < lower)
        if total >= lower:
            tower = row["households"] > upper and biggest[c] > upper
            assert (reason == REASONS["building"]) == tower
            assert (reason == REASONS["empty"]) <= (row["households"] == 0)
            assert (reason == REASONS["under"]) <= (0 < row["households"] < lower)
            assert (reason == REASONS["over"]) <= (row["households"] > upper)
    # all households in cells in the band when one cell can hold them all and no more
    if lower <= total <= upper and not roads_split(roads):
        assert len(cells) == 1 and bool(cells["in_band"].iloc[0])
    # repeatable: the same inputs and seed give the same cells
    again = propose_partition(outline, buildings, roads, target=target, band=band, seed=seed)
    assert same_proposal(proposal, again)


def roads_split(roads: gpd.GeoDataFrame | None) -> bool:
    """Whether any road could cut the area into blocks (so a single cell is not forced)."""
    return roads is not None and len(roads) > 0
