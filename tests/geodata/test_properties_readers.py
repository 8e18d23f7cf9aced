"""Malformed input is refused with a GeodataError, never another exception, and nothing is written.

Fuzzed with hypothesis from the real extracts in ../shared/data: GeoJSON truncated or with bytes
overwritten, random JSON shaped like GeoJSON, broken WKT in CSV and XLSX, shapefile zips with
parts missing or damaged, XLSX workbooks with damaged bytes or XML, OSM XML truncated. Every
read either succeeds (then every feature is kept or rejected with a reason, all valid) or
raises GeodataError naming the file; the folder holds the same files before and after.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geodata.errors import GeodataError
from geodata.readers import ReadResult, read_features, read_table
from tests.geodata.strategies import examples

KINDS = ["polygon", "point", "line"]
# GDAL warns about each unusable geometry it nulls; the reader reports those as rejected.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@contextmanager
def folder() -> Iterator[Path]:
    """A fresh temporary folder (hypothesis runs many examples per test function)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as name:
        yield Path(name)


def attempt(path: Path, **options: object) -> ReadResult | GeodataError:
    """Read a file; a GeodataError is returned, any other exception fails the test.

    Also checks that reading wrote nothing beside the file (no sidecar, index or lock file).
    """
    before = sorted(p.name for p in path.parent.iterdir())
    try:
        result: ReadResult | GeodataError = read_features(path, **options)
    except GeodataError as exc:
        assert str(exc).strip(), "an empty message"
        result = exc
    assert sorted(p.name for p in path.parent.iterdir()) == before
    if isinstance(result, ReadResult):
        gdf = result.gdf
        assert len(gdf) + len(result.rejected) == result.feature_count_read
        assert gdf.geometry.is_valid.all() and not gdf.geometry.is_empty.any()
        assert all(note.reason for note in result.rejected)
    return result


@pytest.fixture(scope="module")
def small_geojson(shared_data: Path) -> bytes:
    """Eight real Nanjing buildings as a GeoJSON FeatureCollection (about 4 kB)."""
    collection = json.loads((shared_data / "nanjing_xinjiekou" / "buildings.geojson").read_bytes())
    collection["features"] = collection["features"][:8]
    return json.dumps(collection, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def osm_xml(shared_data: Path) -> bytes:
    """The Nanjing OSM XML extract (1.5 MB)."""
    return (shared_data / "nanjing_xinjiekou" / "raw" / "osm_bbox.osm.xml").read_bytes()


@pytest.fixture(scope="module")
def shapefile_parts(shared_data: Path) -> dict[str, bytes]:
    """The parts (.shp, .shx, .dbf, .prj, .cpg) of a shapefile of eight real buildings."""
    gdf = gpd.read_file(shared_data / "nanjing_xinjiekou" / "buildings.geojson", rows=8)
    with folder() as tmp:
        gdf[["building", "name", "geometry"]].to_file(tmp / "b.shp", encoding="UTF-8")
        return {p.suffix: p.read_bytes() for p in tmp.iterdir()}


@pytest.fixture(scope="module")
def workbook(shared_data: Path) -> bytes:
    """An XLSX of six real buildings: 名称 and WKT columns."""
    gdf = gpd.read_file(shared_data / "nanjing_xinjiekou" / "buildings.geojson", rows=6)
    frame = pd.DataFrame({"名称": gdf["name"].fillna("楼").tolist(), "wkt": gdf.geometry.to_wkt()})
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ GeoJSON -----


@settings(max_examples=examples(40))
@given(st.floats(0.0, 1.0), st.sampled_from(KINDS))
def test_truncated_geojson_is_refused(small_geojson: bytes, fraction: float, kind: str) -> None:
    cut = int(len(small_geojson) * fraction)
    with folder() as tmp:
        path = tmp / "buildings.geojson"
        path.write_bytes(small_geojson[:cut])
        result = attempt(path, kind=kind)
    if cut < len(small_geojson):
        assert isinstance(result, GeodataError)
        assert str(result).startswith("buildings.geojson")


@settings(max_examples=examples(60))
@given(st.data())
def test_geojson_with_overwritten_bytes_is_read_or_refused(
    small_geojson: bytes, data: st.DataObject
) -> None:
    blob = bytearray(small_geojson)
    for _ in range(data.draw(st.integers(1, 6))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    with folder() as tmp:
        path = tmp / "buildings.geojson"
        path.write_bytes(bytes(blob))
        attempt(path, kind=data.draw(st.sampled_from(KINDS)))


numbers = st.one_of(
    st.floats(-200, 200), st.integers(-1000, 1000), st.just(float("nan")), st.just(1e308)
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=5))
coordinates = st.recursive(
    st.lists(numbers, max_size=4), lambda inner: st.lists(inner, max_size=5), max_leaves=40
)
GEOMETRY_TYPES = [
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
    "Circle",
]
geometries = st.recursive(
    st.fixed_dictionaries(
        {"type": st.sampled_from(GEOMETRY_TYPES)}, optional={"coordinates": coordinates}
    ),
    lambda inner: st.fixed_dictionaries(
        {"type": st.just("GeometryCollection"), "geometries": st.lists(inner, max_size=3)}
    ),
    max_leaves=4,
)
features = st.fixed_dictionaries(
    {"type": st.sampled_from(["Feature", "Feature", "feature", "Thing"])},
    optional={
        "geometry": st.one_of(st.none(), geometries, scalars),
        "properties": st.one_of(
            st.none(),
            st.dictionaries(st.sampled_from(["id", "name", "households", "@id"]), scalars),
            scalars,
        ),
        "id": scalars,
    },
)
collections = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["FeatureCollection", "FeatureCollection", "Feature", "Topology"]),
        "features": st.one_of(st.lists(features, max_size=5), scalars),
    },
    optional={"crs": st.sampled_from([{"type": "name", "properties": {"name": "EPSG:3857"}}, 1])},
)


@settings(max_examples=examples(150))
@given(collections, st.sampled_from(KINDS), st.sampled_from(["wgs84", "gcj02", "bd09"]))
@example(  # a feature id and an "id" property: pandas got two "id" columns (ValueError)
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "a7",
                "properties": {"id": 1},
                "geometry": {"type": "Point", "coordinates": [118.78, 32.04]},
            }
        ],
    },
    "point",
    "wgs84",
)
def test_random_geojson_is_read_or_refused(collection: dict, kind: str, datum: str) -> None:
    with folder() as tmp:
        path = tmp / "random.geojson"
        path.write_text(json.dumps(collection))
        result = attempt(path, kind=kind, datum=datum)
    if isinstance(result, ReadResult) and "properties" in json.dumps(collection):
        assert result.gdf["source_id"].notna().all()


def test_feature_ids_and_id_properties_together_are_read() -> None:
    """The regression above, with the id the user will see: the property's."""
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": f"f{k}",
                "properties": {"id": 100 + k, "name": f"楼{k}"},
                "geometry": {"type": "Point", "coordinates": [118.78 + k / 1000, 32.04]},
            }
            for k in range(3)
        ],
    }
    with folder() as tmp:
        path = tmp / "ids.geojson"
        path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
        result = read_features(path, kind="point")
    assert result.gdf["source_id"].tolist() == ["100", "101", "102"]
    assert result.gdf["name"].tolist() == ["楼0", "楼1", "楼2"]


# ------------------------------------------------------------------------- WKT in tables -----

WKT_PIECES = [
    "POLYGON ((118.78 32.04, 118.79 32.04, 118.79 32.05, 118.78 32.04))",
    "POLYGON ((118.78 32.04, 118.79 32.05, 118.79 32.04, 118.78 32.05, 118.78 32.04))",
    "POINT (118.78 32.04)",
    "LINESTRING (118.78 32.04, 118.79 32.05)",
    "POLYGON EMPTY",
    "POINT (nan nan)",
    "POLYGON Z ((0 0 1, 1 0 1, 1 1 1, 0 0 1))",
    "CIRCULARSTRING (0 0, 1 1, 2 0)",
    "CURVEPOLYGON (CIRCULARSTRING (0 0, 1 1, 2 0, 1 -1, 0 0))",
    "GEOMETRYCOLLECTION (POINT (1 1), POLYGON ((0 0, 1 0, 1 1, 0 0)))",
    "TIN (((0 0 0, 0 1 0, 1 1 0, 0 0 0)))",
    "SRID=4326;POINT (1 1)",
    "POINT (1e400 1)",
]
wkt_text = st.one_of(
    st.sampled_from(WKT_PIECES),
    st.tuples(st.sampled_from(WKT_PIECES), st.integers(0, 80)).map(lambda t: t[0][: t[1]]),
    st.text(alphabet="POLYGNT()0123456789 .,-EMPYZ", max_size=40),
)


@settings(max_examples=examples(60))
@given(st.lists(wkt_text, min_size=1, max_size=4), st.sampled_from(KINDS), st.booleans())
@example(["CIRCULARSTRING (0 0, 1 1, 2 0)"], "line", False)  # was NotImplementedError
@example(["CURVEPOLYGON (CIRCULARSTRING (0 0, 1 1, 2 0, 1 -1, 0 0))"], "polygon", True)
def test_broken_wkt_in_csv_and_xlsx_is_refused_by_row(
    wkts: list[str], kind: str, as_xlsx: bool
) -> None:
    frame = pd.DataFrame({"名称": [f"楼{k}" for k in range(len(wkts))], "wkt": wkts})
    with folder() as tmp:
        path = tmp / ("cells.xlsx" if as_xlsx else "cells.csv")
        if as_xlsx:
            frame.to_excel(path, index=False)
        else:
            frame.to_csv(path, index=False)
        result = attempt(path, kind=kind)
    if isinstance(result, GeodataError) and ("WKT" in str(result) or "curved" in str(result)):
        assert "row " in str(result)  # the spreadsheet row is named


# ----------------------------------------------------------------------------- shapefile -----

PARTS = [".shp", ".shx", ".dbf", ".prj", ".cpg"]


@settings(max_examples=examples(60))
@given(
    st.sets(st.sampled_from(PARTS), min_size=1),
    st.dictionaries(
        st.sampled_from(PARTS),
        st.tuples(st.sampled_from(["cut", "overwrite"]), st.floats(0, 1), st.integers(0, 255)),
        max_size=2,
    ),
)
@example({".shp", ".shx", ".dbf", ".prj"}, {".prj": ("overwrite", 0.1, 0xC7)})  # was a crash
@example({".shp", ".dbf"}, {})
def test_shapefile_zips_with_missing_or_damaged_parts_are_refused(
    shapefile_parts: dict[str, bytes], present: set[str], damage: dict
) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for suffix in sorted(present):
            blob = bytearray(shapefile_parts[suffix])
            if suffix in damage:
                how, where, value = damage[suffix]
                at = int(where * (len(blob) - 1))
                blob = blob[:at] if how == "cut" else blob[:at] + bytes([value]) + blob[at + 1 :]
            zf.writestr("b" + suffix, bytes(blob))
    with folder() as tmp:
        path = tmp / "buildings.zip"
        path.write_bytes(archive.getvalue())
        result = attempt(path)
    missing = [s for s in (".shx", ".dbf") if s not in present]
    if ".shp" not in present:
        assert isinstance(result, GeodataError) and "no shapefile" in str(result)
    elif missing:
        assert isinstance(result, GeodataError)
        assert all(f"b{s}" in str(result) for s in missing)


@settings(max_examples=examples(20))
@given(st.sets(st.sampled_from([".shx", ".dbf", ".prj", ".cpg"])))
def test_loose_shapefile_without_its_index_or_table_is_refused(
    shapefile_parts: dict[str, bytes], beside: set[str]
) -> None:
    with folder() as tmp:
        for suffix in {".shp", *beside}:
            (tmp / f"b{suffix}").write_bytes(shapefile_parts[suffix])
        result = attempt(tmp / "b.shp")
    if {".shx", ".dbf"} <= beside:
        assert isinstance(result, ReadResult) and len(result.gdf) == 8
    else:
        assert isinstance(result, GeodataError) and "incomplete" in str(result)


# ---------------------------------------------------------------------------------- XLSX -----


@settings(max_examples=examples(60))
@given(st.data())
def test_damaged_workbooks_are_refused(workbook: bytes, data: st.DataObject) -> None:
    members = {}
    with zipfile.ZipFile(io.BytesIO(workbook)) as zf:
        for name in zf.namelist():
            members[name] = zf.read(name)
    how = data.draw(st.sampled_from(["bytes", "cut-bytes", "xml", "drop-member"]))
    if how in ("bytes", "cut-bytes"):
        blob = bytearray(workbook)
        if how == "cut-bytes":
            blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
        else:
            for _ in range(data.draw(st.integers(1, 8))):
                blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        raw = bytes(blob)
    else:
        target = data.draw(st.sampled_from(sorted(members)))
        if how == "drop-member":
            del members[target]
        else:
            text = members[target]
            at = data.draw(st.integers(0, max(len(text) - 1, 0)))
            if data.draw(st.booleans()):
                members[target] = text[:at]
            else:
                members[target] = (
                    text[:at]
                    + data.draw(st.sampled_from([b"<", b'"', b"&", b"x"]))
                    + text[at + 1 :]
                )
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, blob in members.items():
                zf.writestr(name, blob)
        raw = out.getvalue()
    with folder() as tmp:
        path = tmp / "buildings.xlsx"
        path.write_bytes(raw)
        attempt(path)
        try:
            read_table(path)
        except GeodataError as exc:
            assert str(exc).startswith("buildings.xlsx")


def test_a_workbook_with_a_broken_sheet_names_the_file(workbook: bytes) -> None:
    """Regression: an XML ParseError from openpyxl escaped as is."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            blob = src.read(name)
            dst.writestr(name, blob[: len(blob) // 2] if name.endswith("sheet1.xml") else blob)
    with folder() as tmp:
        path = tmp / "楼栋.xlsx"
        path.write_bytes(out.getvalue())
        with pytest.raises(GeodataError, match=r"^楼栋\.xlsx is not a readable XLSX workbook"):
            read_features(path)
        with pytest.raises(GeodataError, match=r"^楼栋\.xlsx is not a readable XLSX workbook"):
            read_table(path)


# ------------------------------------------------------------------------------- OSM XML -----


@settings(max_examples=examples(25))
@given(st.floats(0.0, 1.0), st.sampled_from(KINDS))
def test_truncated_osm_xml_is_read_or_refused(osm_xml: bytes, fraction: float, kind: str) -> None:
    with folder() as tmp:
        path = tmp / "map.osm"
        path.write_bytes(osm_xml[: int(len(osm_xml) * fraction)])
        result = attempt(path, kind=kind)
    if isinstance(result, GeodataError):
        assert str(result).startswith("map.osm")
    else:  # GDAL reads what it could; each feature it returns is usable
        assert result.source_format == "OSM"
        assert shapely.is_valid(result.gdf.geometry.to_numpy()).all()
