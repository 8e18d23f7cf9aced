"""Properties of cell codes (hypothesis): reading order and sequence codes.

Codes are handed out in reading order (rows north→south, west→east within a row), so the same
cells must get the same codes however they arrive (database order, a re-import, a redraw that
lists them differently), and no two cells may share a code.
"""

from __future__ import annotations

import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geodata.codes import reading_order, sequence_codes
from tests.geodata.strategies import examples, guillotine_m


@st.composite
def tiled_cells(draw: st.DrawFn) -> list[shapely.Polygon]:
    """Cells of a random tiling (boxes of random straight cuts), in metres."""
    boxes = draw(guillotine_m(draw(st.integers(60, 400)), draw(st.integers(60, 400))))
    return [shapely.box(*b) for b in boxes]


STACKED = [  # three tall cells and a column split in two: both halves fall in one row band
    shapely.box(0, 0, 40, 200),
    shapely.box(80, 0, 120, 200),
    shapely.box(120, 0, 160, 200),
    shapely.box(40, 100, 80, 200),
    shapely.box(40, 0, 80, 100),
]


@settings(max_examples=examples(150))
@given(tiled_cells(), st.permutations(range(64)))
@example(STACKED, [4, 3, 2, 1, 0, *range(5, 64)])  # the two halves tied, order from the input
def test_reading_order_is_the_same_for_any_input_order(
    cells: list[shapely.Polygon], permutation: list[int]
) -> None:
    order = reading_order(cells)
    assert sorted(order.tolist()) == list(range(len(cells)))  # a permutation
    shuffled = [k for k in permutation if k < len(cells)]
    again = reading_order([cells[k] for k in shuffled])
    assert [cells[k].wkt for k in order] == [cells[shuffled[k]].wkt for k in again]


@settings(max_examples=examples(60))
@given(st.integers(1, 8), st.integers(1, 8), st.permutations(range(64)))
def test_a_regular_grid_is_read_row_by_row_from_the_north_west(
    nx: int, ny: int, permutation: list[int]
) -> None:
    cells = {
        (i, j): shapely.box(50 * i, 40 * j, 50 * (i + 1), 40 * (j + 1))
        for i in range(nx)
        for j in range(ny)
    }
    expected = [cells[i, j].wkt for j in reversed(range(ny)) for i in range(nx)]
    given_order = [list(cells)[k] for k in permutation if k < len(cells)]
    geoms = [cells[key] for key in given_order]
    assert [geoms[k].wkt for k in reading_order(geoms)] == expected


@settings(max_examples=examples(100))
@given(
    st.text(alphabet="0123456789", min_size=0, max_size=12),
    st.integers(0, 1200),
    st.integers(1, 50),
    st.integers(1, 4),
)
def test_sequence_codes_are_unique_ordered_and_keep_the_prefix(
    prefix: str, count: int, start: int, width: int
) -> None:
    codes = sequence_codes(prefix, count, start=start, width=width)
    assert len(codes) == count and len(set(codes)) == count
    assert all(code.startswith(prefix) for code in codes)
    numbers = [int(code[len(prefix) :]) for code in codes]
    assert numbers == list(range(start, start + count))
    if start + count - 1 < 10**width:  # within the width: fixed length, so text order is order
        assert all(len(code) == len(prefix) + width for code in codes)
        assert codes == sorted(codes)
