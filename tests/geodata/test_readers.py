"""read_features on real OSM extracts and on the awkward files users really send."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from geodata.china import Datum, wgs84_to_bd09, wgs84_to_gcj02
from geodata.errors import GeodataError
from geodata.readers import ReadResult, parse_other_tags, read_features
from geodata.writers import write_features

GEOD = pyproj.Geod(ellps="WGS84")
NAMES = [
    "新街口社区",
    "华侨路二十六号小区",
    "五台山体育中心",
    "朝天宫（南京市博物馆）",
    "Deji Plaza",
]
SQUARE = shapely.box(118.775, 32.040, 118.776, 32.041)


def squares(n: int) -> list[shapely.Polygon]:
    """n small squares in 新街口, side by side."""
    return [shapely.affinity.translate(SQUARE, xoff=0.002 * i) for i in range(n)]


def vertex_gap_m(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic distances in metres between corresponding vertices of two geometry arrays."""
    ca, cb = shapely.get_coordinates(a), shapely.get_coordinates(b)
    assert ca.shape == cb.shape
    return np.abs(GEOD.inv(ca[:, 0], ca[:, 1], cb[:, 0], cb[:, 1])[2])


def write_json(path: Path, obj: object) -> Path:
    """Write obj as JSON and return the path."""
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def feature(geometry: dict | None, **properties: object) -> dict:
    """A GeoJSON Feature."""
    return {"type": "Feature", "properties": properties, "geometry": geometry}


# ---------------------------------------------------------------------------------------------
# real data


@pytest.mark.parametrize(
    ("city", "count"), [("nanjing_xinjiekou", 1277), ("beijing_haidian_xueyuanlu", 257)]
)
def test_real_buildings_read_clean(shared_data: Path, city: str, count: int) -> None:
    result = read_features(shared_data / city / "buildings.geojson")
    gdf = result.gdf
    assert result.feature_count_read == count and len(gdf) == count
    assert result.notes == [] and result.rejected == []  # the extracts hold no invalid footprint
    assert result.source_format == "GeoJSON" and result.source_crs == "EPSG:4326"
    assert gdf.crs.to_epsg() == 4326 and gdf.geometry.name == "geometry"
    assert gdf.is_valid.all() and (gdf.geom_type == "MultiPolygon").all()
    assert gdf.columns[0] == "source_id" and gdf.columns[-1] == "geometry"
    assert gdf["source_id"].is_unique
    assert gdf["source_id"].str.match(r"^(way|relation)/\d+$").all()
    assert {"building", "name", "building:levels"} <= set(gdf.columns)
    assert list(gdf.index) == list(range(count))


@pytest.mark.parametrize(
    ("city", "xml", "count"),
    [
        ("nanjing_xinjiekou", "raw/osm_bbox.osm.xml", 1277),
        ("beijing_haidian_xueyuanlu", "raw/map.osm", 257),
    ],
)
def test_osm_xml_buildings_equal_the_geojson_extract(
    shared_data: Path, city: str, xml: str, count: int
) -> None:
    folder = shared_data / city
    osm = read_features(folder / xml, osm_filter={"building": None})
    extract = read_features(folder / "buildings.geojson")
    # Same count: GDAL's multipolygons layer holds the closed building ways and the building
    # multipolygon relations (7 in Nanjing, 2 in Beijing), exactly the extract's features.
    assert osm.feature_count_read == count and len(osm.gdf) == count
    assert osm.source_format == "OSM" and osm.rejected == []
    assert set(osm.gdf["source_id"]) == set(extract.gdf["source_id"])
    relations = osm.gdf["source_id"].str.startswith("relation/").sum()
    assert relations == (extract.gdf["osm_type"] == "relation").sum() > 0
    a = osm.gdf.set_index("source_id")
    b = extract.gdf.set_index("source_id").loc[a.index]
    assert shapely.equals(a.geometry.values, b.geometry.values).all()
    # tags GDAL keeps in other_tags come back as columns, with the same values
    for tag in ("building", "name", "building:levels", "addr:street", "addr:housenumber"):
        mine = a[tag].astype(object).where(a[tag].notna(), None)
        theirs = b[tag].astype(object).where(b[tag].notna(), None)
        assert mine.tolist() == theirs.tolist(), tag
    assert "other_tags" not in a.columns
    assert a["osm_id"].dtype == "Int64"


def test_osm_height_tag_becomes_a_column(nanjing: Path) -> None:
    gdf = read_features(nanjing / "raw/osm_bbox.osm.xml", osm_filter={"building": None}).gdf
    assert gdf["height"].notna().sum() == 54
    assert gdf["building:levels"].notna().sum() == 131


def test_osm_filters(nanjing: Path) -> None:
    xml = nanjing / "raw/osm_bbox.osm.xml"
    residential = read_features(xml, osm_filter={"landuse": "residential"})
    areas = read_features(nanjing / "residential_areas.geojson")
    assert set(residential.gdf["source_id"]) == set(areas.gdf["source_id"])
    homes = read_features(xml, osm_filter={"building": ["residential", "apartments"]})
    assert len(homes.gdf) == 76 + 11
    everything = read_features(xml)
    assert len(everything.gdf) > 1277  # all multipolygons: buildings, landuse, parks …
    with pytest.raises(GeodataError, match=r"osm_bbox\.osm\.xml: no feature .* matches"):
        read_features(xml, osm_filter={"building": "castle"})
    with pytest.raises(GeodataError, match="matches"):
        read_features(xml, osm_filter={"no_such_tag": None})


def test_osm_points_layer(nanjing: Path) -> None:
    points = read_features(nanjing / "raw/osm_bbox.osm.xml", kind="point")
    assert (points.gdf.geom_type == "Point").all()
    assert points.gdf["source_id"].str.match(r"^node/\d+$").all()
    assert points.layer == "points"


def test_osm_max_features(nanjing: Path) -> None:
    with pytest.raises(GeodataError, match="file has 1277 features; the limit is 1000"):
        read_features(
            nanjing / "raw/osm_bbox.osm.xml", osm_filter={"building": None}, max_features=1000
        )


def test_parse_other_tags_unescapes() -> None:
    tags = parse_other_tags(
        ['"building:levels"=>"6","name"=>"say \\"hi\\"","path"=>"a\\\\b"', None, ""]
    )
    assert tags == [{"building:levels": "6", "name": 'say "hi"', "path": "a\\b"}, {}, {}]


# ---------------------------------------------------------------------------------------------
# Chinese datums


@pytest.mark.parametrize(
    ("datum", "shift"), [(Datum.GCJ02, wgs84_to_gcj02), (Datum.BD09, wgs84_to_bd09)]
)
def test_shifted_input_is_brought_back_within_a_metre(
    nanjing: Path, tmp_path: Path, datum: Datum, shift: Callable[..., tuple[Any, Any]]
) -> None:
    original = read_features(nanjing / "buildings.geojson").gdf
    shifted = original.copy()
    shifted["geometry"] = shapely.transform(
        original.geometry.values, lambda c: np.column_stack(shift(c[:, 0], c[:, 1]))
    )
    path = tmp_path / f"{datum}.geojson"
    shifted.to_file(path)

    as_is = read_features(path)  # read without declaring the datum: hundreds of metres off
    assert vertex_gap_m(as_is.gdf.geometry.values, original.geometry.values).min() > 100

    result = read_features(path, datum=datum.value.upper())
    assert result.datum is datum and len(result.gdf) == 1277 and result.rejected == []
    gap = vertex_gap_m(result.gdf.geometry.values, original.geometry.values)
    assert gap.max() < 1.0
    assert gap.max() < 0.01  # in fact: the inverse is iterated to far below a millimetre


# ---------------------------------------------------------------------------------------------
# repairs reported


def test_bowtie_and_empty_features_are_reported(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "cells.geojson",
        {
            "type": "FeatureCollection",
            "features": [
                feature(shapely.geometry.mapping(SQUARE), id="ok"),
                feature(
                    {
                        "type": "Polygon",
                        "coordinates": [
                            [
                                [118.77, 32.04],
                                [118.78, 32.05],
                                [118.78, 32.04],
                                [118.77, 32.05],
                                [118.77, 32.04],
                            ]
                        ],
                    },
                    id="bowtie",
                ),
                feature(None, id="nothing"),
                feature({"type": "Polygon", "coordinates": []}, id="empty"),
            ],
        },
    )
    result = read_features(path)
    assert result.feature_count_read == 4
    assert len(result.gdf) + len(result.rejected) == result.feature_count_read
    assert [(n.source_id, n.action) for n in result.notes] == [("bowtie", "repaired")]
    assert result.notes[0].reason.startswith("Self-intersection")
    assert [(n.index, n.source_id, n.reason) for n in result.rejected] == [
        (2, "nothing", "missing geometry"),
        (3, "empty", "empty geometry"),
    ]
    assert list(result.gdf["source_id"]) == ["ok", "bowtie"]
    assert result.gdf.loc[result.notes[0].index, "source_id"] == "bowtie"
    assert len(result.gdf.geometry.iloc[1].geoms) == 2


def test_all_features_unusable(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "void.geojson",
        {"type": "FeatureCollection", "features": [feature(None), feature(None)]},
    )
    with pytest.raises(GeodataError, match=r"void\.geojson: none of the 2 features"):
        read_features(path)


def test_unclosed_ring_is_closed(tmp_path: Path) -> None:
    ring = [[118.77, 32.04], [118.78, 32.04], [118.78, 32.05], [118.77, 32.05]]
    path = write_json(
        tmp_path / "open.geojson",
        {
            "type": "FeatureCollection",
            "features": [feature({"type": "Polygon", "coordinates": [ring]})],
        },
    )
    with pytest.warns(RuntimeWarning, match="Non closed ring"):
        result = read_features(path)
    assert result.rejected == [] and result.gdf.geometry.iloc[0].area > 0


# ---------------------------------------------------------------------------------------------
# ids


def test_ids_from_properties_feature_ids_or_position(tmp_path: Path) -> None:
    geom = shapely.geometry.mapping(SQUARE)
    with_ids = write_json(
        tmp_path / "a.geojson",
        {
            "type": "FeatureCollection",
            "features": [{**feature(geom), "id": 7}, {**feature(geom), "id": 9}],
        },
    )
    assert read_features(with_ids).gdf["source_id"].tolist() == ["7", "9"]
    at_id = write_json(
        tmp_path / "b.geojson",
        {
            "type": "FeatureCollection",
            "features": [feature(geom, **{"@id": "way/5"}), feature(geom)],
        },
    )
    assert read_features(at_id).gdf["source_id"].tolist() == ["way/5", "1"]
    bare = write_json(
        tmp_path / "c.geojson", {"type": "FeatureCollection", "features": [feature(geom)] * 3}
    )
    assert read_features(bare).gdf["source_id"].tolist() == ["0", "1", "2"]


# ---------------------------------------------------------------------------------------------
# shapefiles and encodings


@pytest.fixture
def gbk_shapefile(tmp_path: Path) -> Path:
    """A GBK-encoded shapefile with Chinese names and a Chinese field name, as ArcGIS writes."""
    gdf = gpd.GeoDataFrame(
        {"name": NAMES, "社区": ["新街口", "华侨路", "五台山", "朝天宫", "新街口"], "n": range(5)},
        geometry=squares(5),
        crs=4326,
    )
    path = tmp_path / "社区.shp"
    gdf.to_file(path, encoding="GBK")
    assert (tmp_path / "社区.cpg").read_text().strip() == "GBK"
    return path


def _check_names(result: ReadResult, encoding: str | None = None) -> None:
    assert result.gdf["name"].tolist() == NAMES
    assert result.gdf["社区"].tolist() == ["新街口", "华侨路", "五台山", "朝天宫", "新街口"]
    if encoding:
        assert result.encoding == encoding


def test_gbk_shapefile_with_cpg(gbk_shapefile: Path) -> None:
    _check_names(read_features(gbk_shapefile))


def test_gbk_shapefile_without_cpg_is_detected(gbk_shapefile: Path) -> None:
    gbk_shapefile.with_suffix(".cpg").unlink()
    dbf = gbk_shapefile.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[29] = 0  # no language driver id either, like most Chinese shapefiles in the wild
    dbf.write_bytes(bytes(data))
    result = read_features(gbk_shapefile)
    _check_names(result, "GB18030")
    assert result.source_format == "ESRI Shapefile"


def test_explicit_encoding_wins(gbk_shapefile: Path) -> None:
    gbk_shapefile.with_suffix(".cpg").unlink()
    _check_names(read_features(gbk_shapefile, encoding="GBK"), "GBK")
    with pytest.raises(GeodataError, match="not valid UTF-8"):
        read_features(gbk_shapefile, encoding="UTF-8")


def test_utf8_shapefile_without_cpg_is_detected(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"name": NAMES}, geometry=squares(5), crs=4326)
    gdf.to_file(tmp_path / "u.shp", encoding="UTF-8")
    (tmp_path / "u.cpg").unlink()
    result = read_features(tmp_path / "u.shp")
    assert result.gdf["name"].tolist() == NAMES and result.encoding == "UTF-8"


def test_latin1_shapefile_is_left_alone(tmp_path: Path) -> None:
    names = ["Café Müller", "Straße", "Ærø"]
    gdf = gpd.GeoDataFrame({"name": names}, geometry=squares(3), crs=4326)
    gdf.to_file(tmp_path / "l.shp", encoding="ISO-8859-1")
    (tmp_path / "l.cpg").unlink()
    assert read_features(tmp_path / "l.shp").gdf["name"].tolist() == names


@pytest.mark.parametrize("with_cpg", [True, False])
def test_zipped_gbk_shapefile(gbk_shapefile: Path, tmp_path: Path, with_cpg: bool) -> None:
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in gbk_shapefile.parent.glob("社区.*"):
            if part.suffix != ".cpg" or with_cpg:
                zf.write(part, f"数据/{part.name}")
    result = read_features(archive)
    _check_names(result)
    assert result.source_format == "ESRI Shapefile"


def test_shapefile_missing_parts(gbk_shapefile: Path) -> None:
    shutil.copy(gbk_shapefile, gbk_shapefile.with_name("b.shp"))
    shutil.copy(gbk_shapefile.with_suffix(".shx"), gbk_shapefile.with_name("b.shx"))
    with pytest.raises(GeodataError, match=r"b\.shp: the shapefile is incomplete, b\.dbf missing"):
        read_features(gbk_shapefile.with_name("b.shp"))
    gbk_shapefile.with_suffix(".shx").unlink()
    with pytest.raises(GeodataError, match=r"社区\.shx missing"):
        read_features(gbk_shapefile)


def test_zip_without_shapefile(tmp_path: Path) -> None:
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "no data here")
        zf.writestr("cells.csv", "lon,lat\n118.7,32.0\n")
    with pytest.raises(
        GeodataError, match=r"photos\.zip: the zip archive holds no shapefile.*readme\.txt"
    ):
        read_features(archive)


def test_zip_with_several_shapefiles(gbk_shapefile: Path, tmp_path: Path) -> None:
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in gbk_shapefile.parent.glob("社区.*"):
            zf.write(part, f"a/{part.name}")
            zf.write(part, f"b/{part.name}")
    with pytest.raises(GeodataError, match=r"holds 2 shapefiles.*layer="):
        read_features(archive)
    _check_names(read_features(archive, layer="b/社区.shp"))


def test_zip_that_is_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_text("hello")
    with pytest.raises(GeodataError, match=r"x\.zip is not a readable zip archive"):
        read_features(tmp_path / "x.zip")


# ---------------------------------------------------------------------------------------------
# GeoPackage and KML


def test_geopackage_layers(tmp_path: Path) -> None:
    path = tmp_path / "grid.gpkg"
    gpd.GeoDataFrame({"name": ["a"]}, geometry=squares(1), crs=4326).to_file(path, layer="cells")
    gpd.GeoDataFrame({"name": ["p"]}, geometry=[shapely.Point(118.7, 32.0)], crs=4326).to_file(
        path, layer="points"
    )
    assert read_features(path).gdf["name"].tolist() == ["a"]
    points = read_features(path, layer="points", kind="point")
    assert points.layer == "points" and points.gdf["name"].tolist() == ["p"]
    assert read_features(path).gdf["source_id"].tolist() == ["1"]  # GeoPackage fid
    with pytest.raises(
        GeodataError, match=r"grid\.gpkg has no layer 'nope'; its layers are: cells, points"
    ):
        read_features(path, layer="nope")


def test_kml_round_trip_drops_z(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"name": NAMES[:3]}, geometry=squares(3), crs=4326)
    path = write_features(gdf, tmp_path / "cells.kml")
    result = read_features(path)
    assert result.gdf["name"].tolist() == NAMES[:3]
    assert not result.gdf.has_z.any()
    gap = shapely.hausdorff_distance(result.gdf.geometry.values, gdf.geometry.values)
    assert gap.max() < 1e-9


# ---------------------------------------------------------------------------------------------
# CSV and XLSX


def test_csv_with_chinese_headers_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "households.csv"
    path.write_text(
        "户主,经度,纬度,户数\n张三,118.7771,32.0441,3\n李四, 118.7772 ,32.0442,\n王五,１１８.７７７３,32.0443,2\n",
        encoding="utf-8-sig",
    )
    result = read_features(path, kind="point")
    gdf = result.gdf
    assert result.source_format == "CSV" and result.encoding == "UTF-8"
    assert gdf["户主"].tolist() == ["张三", "李四", "王五"]
    assert gdf.geometry.x.tolist() == [118.7771, 118.7772, 118.7773]
    assert gdf["source_id"].tolist() == ["2", "3", "4"]  # spreadsheet row numbers
    assert gdf["户数"].tolist()[0] == 3
    assert "经度" in gdf.columns  # coordinate columns are kept as they were


def test_gbk_csv(tmp_path: Path) -> None:
    path = tmp_path / "poi.csv"
    path.write_bytes(
        "name,lng,lat\n新街口社区,118.78,32.04\n华侨路二十六号小区,118.77,32.05\n".encode("gbk")
    )
    result = read_features(path, kind="point")
    assert result.gdf["name"].tolist() == ["新街口社区", "华侨路二十六号小区"]
    assert result.encoding == "GB18030"


def test_csv_bad_coordinate_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "id,lon,lat\na,118.78,32.04\nb,118.79,32.05\nc,118.7x,32.06\n", encoding="utf-8"
    )
    with pytest.raises(
        GeodataError, match=r"bad\.csv: row 4: longitude '118\.7x' in column 'lon' is not a number"
    ):
        read_features(path, kind="point")


def test_csv_out_of_range_row(tmp_path: Path) -> None:
    path = tmp_path / "typo.csv"
    path.write_text("lon,lat\n118.78,32.04\n1187.9,32.05\n118.80,32.06\n", encoding="utf-8")
    with pytest.raises(
        GeodataError, match=r"row 3: \(1187\.9, 32\.05\) is not a longitude/latitude"
    ):
        read_features(path, kind="point")


def test_csv_missing_coordinates_are_rejected_with_row(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("id,lon,lat\na,118.78,32.04\nb,,\nc,118.80,32.06\n", encoding="utf-8")
    result = read_features(path, kind="point")
    assert result.gdf["source_id"].tolist() == ["a", "c"]
    assert [(r.source_id, r.reason) for r in result.rejected] == [("b", "row 3: missing geometry")]


def test_csv_explicit_columns_and_crs(tmp_path: Path) -> None:
    transformer = pyproj.Transformer.from_crs(4326, 32650, always_xy=True)
    east, north = transformer.transform(118.78, 32.04)
    path = tmp_path / "survey.csv"
    path.write_text(f"点号;东;北\nP1;{east};{north}\n", encoding="utf-8")
    with pytest.raises(GeodataError, match="cannot find the coordinate columns"):
        read_features(path, kind="point")
    result = read_features(path, kind="point", x_column="东", y_column="北", crs="EPSG:32650")
    point = result.gdf.geometry.iloc[0]
    assert (point.x, point.y) == pytest.approx((118.78, 32.04), abs=1e-9)
    assert result.source_crs == "EPSG:32650"
    with pytest.raises(GeodataError, match="no column 'E'"):
        read_features(path, kind="point", x_column="E", y_column="北")


def test_csv_wkt_polygons(tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    bowtie = "POLYGON((118.77 32.04, 118.78 32.05, 118.78 32.04, 118.77 32.05, 118.77 32.04))"
    path.write_text(f'code,wkt\nA01,"{SQUARE.wkt}"\nA02,"{bowtie}"\n', encoding="utf-8")
    result = read_features(path)
    assert result.gdf["code"].tolist() == ["A01", "A02"]
    assert result.notes[0].reason.startswith("row 3: Self-intersection")
    path.write_text('code,wkt\nA01,"POLYGON((1 2, 3"\n', encoding="utf-8")
    with pytest.raises(GeodataError, match=r"row 2: .* is not valid WKT"):
        read_features(path)


def test_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "楼栋.xlsx"
    frame = pd.DataFrame(
        {"楼栋": ["1栋", "2栋"], "经度": [118.7771, "118.77o2"], "纬度": [32.0441, 32.0442]}
    )
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"x": [1]}).to_excel(writer, sheet_name="说明", index=False)
        frame.to_excel(writer, sheet_name="数据", index=False)
    with pytest.raises(GeodataError, match=r"row 3: longitude '118\.77o2'"):
        read_features(path, kind="point", layer="数据")
    frame.loc[1, "经度"] = 118.7772
    with pd.ExcelWriter(path) as writer:
        frame.to_excel(writer, sheet_name="数据", index=False)
    result = read_features(path, kind="point")
    assert result.source_format == "XLSX" and result.layer == "数据"
    assert result.gdf["楼栋"].tolist() == ["1栋", "2栋"]
    assert result.gdf.geometry.x.tolist() == [118.7771, 118.7772]
    with pytest.raises(GeodataError, match="has no sheet 'x'"):
        read_features(path, kind="point", layer="x")


# ---------------------------------------------------------------------------------------------
# bad input


def test_malformed_json(nanjing: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.geojson"
    truncated.write_bytes((nanjing / "buildings.geojson").read_bytes()[:5000])
    with pytest.raises(GeodataError, match=r"cut\.geojson: truncated or malformed JSON"):
        read_features(truncated)
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "FeatureCollection", "features": [,]}')
    with pytest.raises(GeodataError, match=r"broken\.json: .*malformed JSON.*line 1"):
        read_features(broken)


def test_json_that_is_not_geojson(tmp_path: Path) -> None:
    with pytest.raises(GeodataError, match=r"valid JSON but not GeoJSON: expected .* found None"):
        read_features(write_json(tmp_path / "a.json", {"foo": 1}))
    with pytest.raises(GeodataError, match="top level is a list"):
        read_features(write_json(tmp_path / "b.json", [1, 2]))


@pytest.mark.parametrize("content", ["", "   \n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.geojson"
    path.write_text(content)
    with pytest.raises(GeodataError, match=r"empty\.geojson is empty"):
        read_features(path)


def test_empty_collection_and_csv(tmp_path: Path) -> None:
    path = write_json(tmp_path / "none.geojson", {"type": "FeatureCollection", "features": []})
    with pytest.raises(GeodataError, match=r"none\.geojson holds no features"):
        read_features(path)
    csv = tmp_path / "header.csv"
    csv.write_text("lon,lat\n")
    with pytest.raises(GeodataError, match="holds no features"):
        read_features(csv, kind="point")


def test_missing_file_folder_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(GeodataError, match=r"nope\.geojson: file not found"):
        read_features(tmp_path / "nope.geojson")
    with pytest.raises(GeodataError, match="is a folder"):
        read_features(tmp_path)
    (tmp_path / "notes.txt").write_text("just some text")
    with pytest.raises(
        GeodataError, match=r"notes\.txt: unsupported file type \.txt; expected one of"
    ):
        read_features(tmp_path / "notes.txt")


def test_unknown_suffix_recognised_by_content(nanjing: Path, tmp_path: Path) -> None:
    copy = tmp_path / "buildings.download"
    shutil.copy(nanjing / "buildings.geojson", copy)
    assert len(read_features(copy).gdf) == 1277


def test_wrong_geometry_kind(nanjing: Path) -> None:
    with pytest.raises(
        GeodataError,
        match=r"pois\.geojson: expected polygon features, but the file holds 448 Point",
    ):
        read_features(nanjing / "pois.geojson")
    with pytest.raises(
        GeodataError, match=r"expected point features, but the file holds 1277 Polygon"
    ):
        read_features(nanjing / "buildings.geojson", kind="point")


def test_max_features(nanjing: Path) -> None:
    with pytest.raises(
        GeodataError, match=r"buildings\.geojson: file has 1277 features; the limit is 100"
    ):
        read_features(nanjing / "buildings.geojson", max_features=100)
    assert len(read_features(nanjing / "buildings.geojson", max_features=1277).gdf) == 1277


def test_bad_arguments(nanjing: Path) -> None:
    with pytest.raises(GeodataError, match="unknown datum"):
        read_features(nanjing / "buildings.geojson", datum="mars")
    with pytest.raises(GeodataError, match="unknown geometry kind"):
        read_features(nanjing / "buildings.geojson", kind="volume")


def test_kml_folders_are_all_read(tmp_path: Path) -> None:
    placemark = (
        "<Placemark><name>{name}</name><Polygon><outerBoundaryIs><LinearRing><coordinates>"
        "{x},32.04,0 {x2},32.04,0 {x2},32.05,0 {x},32.04,0"
        "</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
    )
    path = tmp_path / "grid.kml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2">'
        "<Document><name>网格</name>"
        f"<Folder><name>一网格</name>{placemark.format(name='A01', x=118.77, x2=118.78)}"
        "<Placemark><name>pin</name><Point><coordinates>118.77,32.04,0</coordinates></Point>"
        "</Placemark></Folder>"
        f"<Folder><name>二网格</name>{placemark.format(name='A02', x=118.79, x2=118.80)}</Folder>"
        "</Document></kml>",
        encoding="utf-8",
    )
    result = read_features(path)
    assert result.gdf["name"].tolist() == ["A01", "A02"]
    assert result.gdf["source_layer"].tolist() == ["一网格", "二网格"]
    assert [(r.index, r.reason) for r in result.rejected] == [
        (1, "Point where a polygon was expected")
    ]
    assert not result.gdf.has_z.any()


def test_warnings_report_what_did_not_stop_the_read(gbk_shapefile: Path, tmp_path: Path) -> None:
    gbk_shapefile.with_suffix(".cpg").unlink()
    assert read_features(gbk_shapefile).warnings == [
        "社区.shp: no .cpg file; the text was read as GB18030"
    ]

    gpkg = tmp_path / "two.gpkg"
    gpd.GeoDataFrame(geometry=squares(1), crs=4326).to_file(gpkg, layer="a")
    gpd.GeoDataFrame(geometry=squares(2), crs=4326).to_file(gpkg, layer="b")
    assert "read the first, 'a'" in read_features(gpkg).warnings[0]

    geom = shapely.geometry.mapping(SQUARE)
    paris = shapely.geometry.mapping(shapely.box(2.35, 48.85, 2.36, 48.86))
    path = write_json(
        tmp_path / "dup.geojson",
        {"type": "FeatureCollection", "features": [feature(geom, id="x"), feature(paris, id="x")]},
    )
    result = read_features(path, datum="gcj02")
    assert result.warnings == [
        "dup.geojson: 1 features repeat another feature's id (source_id)",
        "dup.geojson: 1 features lie outside China, where gcj02 equals WGS84; they were not shifted",
    ]
    assert result.gdf.geometry.iloc[1].equals(
        shapely.MultiPolygon([shapely.box(2.35, 48.85, 2.36, 48.86)])
    )
