"""Properties of the Chinese datum shifts (hypothesis): round trips, and nothing outside China moves.

Complements test_china.py (round trips of single points in 73–135°E, 18–53.5°N): here whole
geometries in every datum pair across the full China box, mixed arrays with NaN and infinity,
and the band along the box's edges where no inverse can exist.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geodata.china import (
    Datum,
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert_geometries,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    parse_datum,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geodata.errors import GeodataError
from tests.geodata.strategies import examples, metres

# The box every GCJ-02 implementation uses (as in geodata.china), and the band inside its edges
# where no inverse can undo the shifts (see geodata.china's docstring and the edge property).
BOX_LON, BOX_LAT = (72.004, 137.8347), (0.8293, 55.8271)
EDGE_BAND = 0.05  # degrees; the largest shift is under 0.03° of longitude at 56°N
FUNCTIONS = (
    wgs84_to_gcj02,
    gcj02_to_wgs84,
    gcj02_to_bd09,
    bd09_to_gcj02,
    bd09_to_wgs84,
    wgs84_to_bd09,
)
FORWARD = {Datum.GCJ02: wgs84_to_gcj02, Datum.BD09: wgs84_to_bd09}
DATUMS = list(Datum)

in_box = st.tuples(
    st.floats(BOX_LON[0] + EDGE_BAND, BOX_LON[1] - EDGE_BAND),
    st.floats(BOX_LAT[0] + EDGE_BAND, BOX_LAT[1] - EDGE_BAND),
)
anywhere = st.tuples(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
)
lon_lat = st.tuples(st.floats(-180, 180), st.floats(-90, 90))


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise-equal float arrays, NaN equal to NaN."""
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))


@st.composite
def shapes_in_china(draw: st.DrawFn) -> shapely.Geometry:
    """A polygon (maybe with a hole), line or point of up to ~2 km somewhere in the China box."""
    lon, lat = draw(in_box)
    size = draw(st.floats(1e-4, 0.02))
    kind = draw(st.sampled_from(["polygon", "holed", "line", "point"]))
    if kind == "point":
        return shapely.Point(lon, lat)
    if kind == "line":
        return shapely.LineString([(lon, lat), (lon + size, lat + size / 2), (lon + size, lat)])
    shell = shapely.box(lon, lat, lon + size, lat + size)
    if kind == "holed":
        return shell.difference(shapely.box(*(shell.centroid.buffer(size / 4).bounds)))
    return shell


@settings(max_examples=examples(60))
@given(shapes_in_china(), st.sampled_from(DATUMS), st.sampled_from(DATUMS))
@example(shapely.Point(137.78, 30.0), Datum.WGS84, Datum.BD09)  # east edge, just outside the band
@example(shapely.Point(72.054, 0.8793), Datum.BD09, Datum.GCJ02)  # south-west, just inside
@example(shapely.box(73.0, 1.0, 73.016, 1.016), Datum.GCJ02, Datum.GCJ02)  # was moved 7e-11 m
def test_every_datum_pair_round_trips_whole_geometries(
    geom: shapely.Geometry, source: Datum, target: Datum
) -> None:
    there = convert_geometries(geom, source, target)
    back = convert_geometries(there, target, source)
    before, after = shapely.get_coordinates(geom), shapely.get_coordinates(back)
    assert after.shape == before.shape
    assert metres(*before.T, *after.T).max() < 0.01
    assert shapely.get_type_id(back) == shapely.get_type_id(geom)
    # the shift is a few hundred metres exactly when the datums differ (CGCS2000 is WGS84)
    moved = metres(*before.T, *shapely.get_coordinates(there).T)
    plain = {Datum.WGS84, Datum.CGCS2000}
    if source == target or {source, target} <= plain:
        assert moved.max() == 0.0
    else:
        assert (moved > 1.0).all() and (moved < 2000.0).all()


@settings(max_examples=examples(60))
@given(st.lists(st.one_of(anywhere, lon_lat, in_box), min_size=1, max_size=12))
@example([(float("nan"), 32.0), (118.78, float("inf")), (72.0039, 30.0), (137.8348, 30.0)])
def test_outside_china_nothing_moves_and_arrays_match_scalars(
    points: list[tuple[float, float]],
) -> None:
    lon, lat = np.array(points, dtype=np.float64).T
    outside = np.asarray(out_of_china(lon, lat))
    for func in FUNCTIONS:
        out_lon, out_lat = func(lon, lat)
        assert same(out_lon[outside], lon[outside]) and same(out_lat[outside], lat[outside])
        inside = ~outside
        assert np.isfinite(out_lon[inside]).all() and np.isfinite(out_lat[inside]).all()
        for k in range(len(points)):  # one point at a time gives the same answer
            alone = np.array(func(lon[k], lat[k]))
            if outside[k]:
                assert same(alone, np.array([lon[k], lat[k]]))
            else:  # the inverses iterate until the whole batch converges: equal to a micrometre
                assert metres(*alone, out_lon[k], out_lat[k]) < 1e-6


@settings(max_examples=examples(40))
@given(st.lists(st.one_of(anywhere, lon_lat), min_size=1, max_size=6), st.sampled_from(DATUMS))
def test_geometries_outside_china_are_returned_unchanged(
    points: list[tuple[float, float]], datum: Datum
) -> None:
    lon, lat = np.array(points, dtype=np.float64).T
    keep = np.asarray(out_of_china(lon, lat))
    geoms = shapely.points(lon[keep], lat[keep])
    for target in DATUMS:
        out = convert_geometries(geoms, datum, target)
        assert same(shapely.get_coordinates(out), shapely.get_coordinates(geoms))


edge_band = st.one_of(
    st.tuples(st.floats(BOX_LON[1] - EDGE_BAND, BOX_LON[1]), st.floats(*BOX_LAT)),
    st.tuples(st.floats(*BOX_LON), st.floats(BOX_LAT[1] - EDGE_BAND, BOX_LAT[1])),
    st.tuples(st.floats(BOX_LON[0], BOX_LON[0] + EDGE_BAND), st.floats(*BOX_LAT)),
    st.tuples(st.floats(*BOX_LON), st.floats(BOX_LAT[0], BOX_LAT[0] + EDGE_BAND)),
)
INVERSE = {Datum.GCJ02: gcj02_to_wgs84, Datum.BD09: bd09_to_wgs84}


@settings(max_examples=examples(60))
@given(edge_band, st.sampled_from([Datum.GCJ02, Datum.BD09]))
@example((137.83, 40.0), Datum.GCJ02)  # shifted to 137.8375°E, outside the box
@example((72.004, 0.8293), Datum.BD09)  # the corner: no WGS84 point maps onto it
def test_in_the_edge_band_a_failed_round_trip_is_a_point_no_inverse_can_serve(
    point: tuple[float, float], datum: Datum
) -> None:
    """Why round trips are promised only away from the box's edges.

    From WGS84: the trip fails only when the image left the box, and then the image is also its
    own image (two points share it), so the inverse, deciding from its input like every public
    implementation, returns it unchanged: nothing outside China moves. From GCJ-02/BD-09: the
    trip fails only when the point has no preimage (its inverse lies outside the box, where
    nothing is shifted).
    """
    lon, lat = point
    forward, inverse = FORWARD[datum], INVERSE[datum]
    image = forward(lon, lat)
    if out_of_china(*image):
        assert forward(*image) == image and metres(lon, lat, *image) > 1.0
        assert inverse(*image) == image
    else:
        assert metres(lon, lat, *inverse(*image)) < 0.01
    preimage = inverse(lon, lat)
    if out_of_china(*preimage):
        assert forward(*preimage) == preimage and metres(lon, lat, *preimage) > 1.0
    else:
        assert metres(lon, lat, *forward(*preimage)) < 0.01


@settings(max_examples=examples(200))
@given(st.one_of(st.text(max_size=30), st.sampled_from([d.value for d in Datum] + ["EPSG:4490"])))
@example("bd09mc")
@example("\x00")
@example("ＧＣＪ－０２")  # full-width, as typed with a Chinese input method
def test_any_text_is_a_datum_or_a_clear_error(text: str) -> None:
    try:
        datum = parse_datum(text)
    except GeodataError as exc:
        assert "datum" in str(exc).lower()
    else:
        assert isinstance(datum, Datum)
        assert parse_datum(datum.value) is datum


@pytest.mark.parametrize(("source", "target"), list(itertools.permutations(DATUMS, 2)))
def test_round_trip_holds_up_to_the_edge_band(source: Datum, target: Datum) -> None:
    """The corners of the region the property above promises (inside the edge band)."""
    corners = np.array(
        list(
            itertools.product(
                (BOX_LON[0] + EDGE_BAND, BOX_LON[1] - EDGE_BAND),
                (BOX_LAT[0] + EDGE_BAND, BOX_LAT[1] - EDGE_BAND),
            )
        )
    )
    geoms = shapely.points(corners)
    back = convert_geometries(convert_geometries(geoms, source, target), target, source)
    assert metres(*corners.T, *shapely.get_coordinates(back).T).max() < 0.01
