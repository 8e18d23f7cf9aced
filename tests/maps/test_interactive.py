"""Interactive maps: every page uses only our assets; layers, popups, labels and datums are right."""

from __future__ import annotations

import json
import re
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pytest
import shapely
from folium import plugins

from geodata.china import wgs84_to_gcj02
from gridsvc.domain import HOUSEHOLD_FLAGS as FLAG_LABELS
from maps import assets, basemaps
from maps.interactive import cell_map, overview_map, render_html
from maps.styles import classify
from tests.maps.fixtures import CellLayers, RealLayers, household_flag_counts

PREFIX = "/static/vendor/"


def _geojson_blocks(page: str) -> list[dict]:
    """The GeoJSON FeatureCollections embedded in a folium page."""
    out = []
    for m in re.finditer(r"_add\((\{\"features\".*?\})\);\n", page):
        out.append(json.loads(m.group(1)))
    return out


def _check_offline(page: str, mode: str, root: Path) -> None:
    assert assets.external_assets(page) == []
    if mode == "server":
        urls = re.findall(r'<script src="([^"]+)"', page) + re.findall(
            r'<link rel="stylesheet" href="([^"]+)"', page
        )
        assert urls, "a server page loads Leaflet from the prefix"
        for url in urls:
            assert url.startswith(PREFIX), url
            assert (root / url.removeprefix(PREFIX)).is_file(), url
    else:
        assert "<script src=" not in page and 'rel="stylesheet"' not in page


def _full_cell_map(street: CellLayers, **kwargs) -> folium.Map:  # type: ignore[no-untyped-def]
    return cell_map(
        street.cell,
        neighbours=street.neighbours,
        buildings=street.buildings,
        households=street.households,
        incidents=street.incidents,
        volunteers=street.volunteers,
        **{"flag_labels": FLAG_LABELS, **kwargs},
    )


@pytest.mark.parametrize("mode", ["server", "inline"])
def test_every_map_renders_with_our_assets_only(
    street: CellLayers, nanjing_layers: RealLayers, asset_root: Path, mode: str
) -> None:
    maps_ = [
        _full_cell_map(street),
        cell_map(street.cell),
        overview_map(
            street.cells, metric="households", metric_label="户数", cell_url="/cells/{code}"
        ),
        overview_map(
            nanjing_layers.cells,
            metric="buildings",
            roads=nanjing_layers.roads,
            buildings=nanjing_layers.buildings,
        ),
        cell_map(
            nanjing_layers.cells.iloc[[5]],
            buildings=nanjing_layers.buildings,
            roads=nanjing_layers.roads,
        ),
        _full_cell_map(
            street, basemap=basemaps.local_tiles("/tiles/{z}/{x}/{y}.png", attribution="本地底图")
        ),
    ]
    for m in maps_:
        page = render_html(m, mode, asset_prefix=PREFIX, asset_root=asset_root)
        _check_offline(page, mode, asset_root)
        assert '<meta name="viewport" content="width=device-width' in page


def test_cell_map_layers_controls_and_legend(street: CellLayers, asset_root: Path) -> None:
    page = render_html(_full_cell_map(street), "server", asset_root=asset_root)
    for needed in (
        "L.control.fullscreen",
        "L.control.locate",
        "L.control.layers",
        "L.markerClusterGroup",
        "L.heatLayer",
    ):
        assert needed in page
    for label in ("本网格边界", "相邻网格", "楼栋", "图例", "楼栋户数", "志愿者步行覆盖 (500 米)"):
        assert label in page or json.dumps(label)[1:-1] in page, label
    # Buildings and their popups: each building's 楼栋长 and household count.
    blocks = _geojson_blocks(page)
    building_block = next(
        b
        for b in blocks
        if len(b["features"]) == len(street.buildings) and "style" in b["features"][0]["properties"]
    )
    popups = [f["properties"]["_popup"] for f in building_block["features"]]
    for popup, (_, row) in zip(popups, street.buildings.iterrows(), strict=True):
        captain = row["captain"] if isinstance(row["captain"], str) else "未落实"
        assert f"<th>楼栋长</th><td>{captain}</td>" in popup
        assert f"<th>户数</th><td>{row['households']}</td>" in popup
    # Colours follow the household classes (an independent classification of the same column).
    classes = classify(street.buildings["households"].to_numpy(dtype=float))
    expected = classes.colour_of(street.buildings["households"].to_numpy(dtype=float))
    assert [f["properties"]["style"]["fillColor"] for f in building_block["features"]] == expected


def test_cell_map_household_filter_counts(street: CellLayers, asset_root: Path) -> None:
    page = render_html(_full_cell_map(street), "server", asset_root=asset_root)
    rows = json.loads(re.search(r"var rows = (\[.*?\]);\n", page).group(1))
    assert len(rows) == len(street.households)
    flags = [f for f in FLAG_LABELS if f in street.households.columns]
    counts = household_flag_counts(street.households, flags)
    for i, flag in enumerate(FLAG_LABELS):
        if flag in flags:
            assert sum(1 for r in rows if r[2] >> i & 1) == counts[flag]
            if counts[flag]:
                assert json.dumps(f"{FLAG_LABELS[flag]} ({counts[flag]})")[1:-1] in page


def test_incidents_by_status_open_shown_closed_hidden(street: CellLayers, asset_root: Path) -> None:
    """One layer per status, labelled and switched on as the caller says (``status_label``,
    ``is_open``): closed and 挂账 (parked) cases start hidden, open ones shown."""
    m = _full_cell_map(street)
    layers = {
        c.layer_name: c
        for c in m._children.values()
        if isinstance(c, folium.GeoJson) and c.layer_name and c.layer_name.startswith("事件")
    }
    inc = street.incidents
    assert "parked" in set(inc["status"]) and "closed" in set(inc["status"])
    for (status, label), group in inc.groupby(["status", "status_label"]):
        layer = layers[f"事件·{label} ({len(group)})"]
        assert len(layer.data["features"]) == len(group)
        assert layer.show is bool(group["is_open"].all()), status
    assert layers[f"事件·挂账 ({(inc['status'] == 'parked').sum()})"].show is False
    heat = [c for c in m._children.values() if isinstance(c, plugins.HeatMap)]
    assert len(heat) == 1 and len(heat[0].data) == len(street.incidents) and heat[0].show is False


def test_missing_optional_layers_are_left_out(street: CellLayers, asset_root: Path) -> None:
    bare = street.cell[["code", "geometry"]]
    page = render_html(cell_map(bare), "server", asset_root=asset_root)
    assert "markercluster" not in page and "L.heatLayer" not in page
    assert len(_geojson_blocks(page)) == 1
    with pytest.raises(ValueError, match="exactly one"):
        cell_map(street.cells.iloc[:2])


def test_coordinates_are_rounded_to_1e5(street: CellLayers, asset_root: Path) -> None:
    page = render_html(_full_cell_map(street), "server", asset_root=asset_root)
    coords = []
    for block in _geojson_blocks(page):
        for f in block["features"]:
            coords.extend(
                np.asarray(
                    shapely.get_coordinates(shapely.from_geojson(json.dumps(f["geometry"])))
                ).ravel()
            )
    coords = np.asarray(coords)
    assert coords.size > 100
    assert np.allclose(coords, np.round(coords, 5), atol=1e-9)


def test_popups_are_escaped(street: CellLayers, asset_root: Path) -> None:
    buildings = street.buildings.copy()
    buildings["captain"] = "<script>alert(1)</script>"
    page = render_html(cell_map(street.cell, buildings=buildings), "inline", asset_root=asset_root)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in json.dumps(
        _geojson_blocks(page), ensure_ascii=False
    )


def test_amap_shifts_our_layers_to_gcj02_and_credits_amap(
    street: CellLayers, asset_root: Path
) -> None:
    page = render_html(
        cell_map(street.cell, basemap=basemaps.amap()), "server", asset_root=asset_root
    )
    drawn = shapely.get_coordinates(
        shapely.from_geojson(json.dumps(_geojson_blocks(page)[0]["features"][0]["geometry"]))
    )
    src = shapely.get_coordinates(street.cell.geometry.iloc[0])
    gx, gy = wgs84_to_gcj02(src[:, 0], src[:, 1])
    assert np.allclose(drawn[:, 0], np.round(gx, 5), atol=1.1e-5) and np.allclose(
        drawn[:, 1], np.round(gy, 5), atol=1.1e-5
    )
    assert np.abs(drawn - src).max() > 1e-3  # hundreds of metres, not a rounding
    assert json.dumps(basemaps.AMAP_ATTRIBUTION)[1:-1] in page


def test_no_shift_outside_china(asset_root: Path) -> None:
    cell = gpd.GeoDataFrame(
        {"code": ["x"]}, geometry=[shapely.box(2.35, 48.85, 2.36, 48.86)], crs=4326
    )
    page = render_html(cell_map(cell, basemap=basemaps.amap()), "server", asset_root=asset_root)
    drawn = shapely.get_coordinates(
        shapely.from_geojson(json.dumps(_geojson_blocks(page)[0]["features"][0]["geometry"]))
    )
    assert np.allclose(drawn, shapely.get_coordinates(cell.geometry.iloc[0]))


def test_tianditu_uses_the_key_and_credits_tianditu(street: CellLayers, asset_root: Path) -> None:
    page = render_html(
        cell_map(street.cell, basemap=basemaps.tianditu("KEY123")), "server", asset_root=asset_root
    )
    assert "tk=KEY123" in page and "LAYER=vec" in page and "LAYER=cva" in page
    assert json.dumps(basemaps.TIANDITU_ATTRIBUTION)[1:-1] in page
    with pytest.raises(ValueError):
        basemaps.tianditu("")
    with pytest.raises(ValueError):
        basemaps.local_tiles("/tiles/{z}.png", attribution="x")


def test_osm_layers_carry_their_attribution(nanjing_layers: RealLayers, asset_root: Path) -> None:
    m = cell_map(
        nanjing_layers.cells.iloc[[5]],
        buildings=nanjing_layers.buildings,
        roads=nanjing_layers.roads,
    )
    layers = [
        c
        for c in m._children.values()
        if isinstance(c, folium.GeoJson) and c.layer_name in ("楼栋", "道路")
    ]
    assert {c.layer_name for c in layers} == {"楼栋", "道路"}
    assert all(c.options["attribution"] == "© OpenStreetMap contributors" for c in layers)


def test_overview_choropleth_labels_and_links(street: CellLayers, asset_root: Path) -> None:
    cells = street.cells
    page = render_html(
        overview_map(cells, metric="households", metric_label="户数", cell_url="/cells/{code}"),
        "server",
        asset_root=asset_root,
    )
    block = _geojson_blocks(page)[0]
    assert len(block["features"]) == len(cells)
    hh = cells["households"].to_numpy(dtype=float)
    colours = [f["properties"]["style"]["fillColor"] for f in block["features"]]
    assert colours[int(np.argmax(hh))] == classify(hh).colours[-1]
    assert colours[int(np.argmin(hh))] == classify(hh).colours[0]
    for f, (_, row) in zip(block["features"], cells.iterrows(), strict=True):
        assert (
            row["code"][-4:] in f["properties"]["_label"]
            and row["leader"] in f["properties"]["_label"]
        )
        assert f'href="/cells/{row["code"]}"' in f["properties"]["_popup"]
    with pytest.raises(ValueError, match="metric"):
        overview_map(cells, metric="no_such_column")


def test_unsupported_folium_features_fail_loudly(street: CellLayers, asset_root: Path) -> None:
    m = cell_map(street.cell)
    folium.Marker([32.05, 118.8], icon=folium.Icon(color="red")).add_to(m)
    with pytest.raises(assets.AssetError, match="awesome-markers"):
        render_html(m, "server", asset_root=asset_root)
    m = cell_map(street.cell)
    plugins.MiniMap().add_to(m)
    with pytest.raises(assets.AssetError, match="no offline copy"):
        render_html(m, "inline", asset_root=asset_root)


def test_leaflet_controls_are_chinese_and_the_scale_metric(
    street: CellLayers, asset_root: Path
) -> None:
    page = render_html(_full_cell_map(street), "server", asset_root=asset_root)
    assert "zoomInTitle: '放大', zoomOutTitle: '缩小'" in page
    assert "{metric: true, imperial: false}" in page
    # folium's own (English, imperial) zoom and scale controls are not added.
    assert '"zoomControl": false' in page and "L.control.scale()" not in page
    # The legend and the household filter fold on a phone.
    for label in ("图例", "住户筛选"):
        assert page.count(f"gridsvcFoldable(div, {json.dumps(label)})") == 1, label


def test_overview_draws_buildings_from_vector_tiles(street: CellLayers, asset_root: Path) -> None:
    """With a tile URL the buildings come from Leaflet.VectorGrid (served from our pinned
    copy), none inline; without one they are inline GeoJSON, as before."""
    url = "/api/v1/tiles/buildings/{z}/{x}/{y}.mvt"
    tiled = render_html(
        overview_map(street.cells, buildings=street.buildings, building_tiles=url),
        "server",
        asset_root=asset_root,
    )
    _check_offline(tiled, "server", asset_root)
    assert f"{PREFIX}leaflet.vectorgrid@1.3.0/dist/Leaflet.VectorGrid.bundled.min.js" in tiled
    options = re.search(r"L\.vectorGrid\.protobuf\(\s*(\"[^\"]+\"),\s*(\{.*?\})\s*\)", tiled, re.S)
    assert options and json.loads(options[1]) == url
    assert json.loads(options[2])["minNativeZoom"] == 13
    assert "buildings" in json.loads(options[2])["vectorTileLayerStyles"]
    assert len(_geojson_blocks(tiled)) == 1  # the cells only
    inline = render_html(
        overview_map(street.cells, buildings=street.buildings), "server", asset_root=asset_root
    )
    assert "vectorGrid" not in inline and len(_geojson_blocks(inline)) == 2
