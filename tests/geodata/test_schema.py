"""Declared field roles (geodata.schema): known schemas, user mappings, mapping files, and the
rules that tell a misread file from a commercial centre."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from geodata.errors import GeodataError
from geodata.schema import (
    household_basis_problem,
    parse_field_options,
    read_mapping_file,
    resolve_fields,
    road_class_problem,
)


def test_mapbox_streets_buildings_and_roads() -> None:
    buildings = pd.DataFrame({"type": ["apartments", "school"], "height": [30, 12]})
    fields = resolve_fields(buildings, "buildings")
    assert fields.used == {"building": "type", "levels": "height/3"}
    assert fields.schema == "Mapbox Streets"
    assert fields.get("building").tolist() == ["apartments", "school"]
    assert fields.get("levels").tolist() == [10, 4]
    roads = pd.DataFrame(
        {"class": ["street", "major_rail", "ferry"], "structure": ["bridge", "tunnel", "none"]}
    )
    fields = resolve_fields(roads, "roads")
    assert fields.get("road_class").tolist() == ["residential", "rail", "ferry"]
    assert fields.get("bridge").tolist() == ["yes", None, None]
    assert fields.get("tunnel").tolist() == [None, "yes", None]
    assert fields.used["tunnel"] == "structure=tunnel"


def test_osm_railway_and_ferry_tags_give_the_class() -> None:
    roads = pd.DataFrame(
        {
            "highway": ["primary", None, None],
            "railway": [None, "rail", None],
            "route": [None, None, "ferry"],
        }
    )
    fields = resolve_fields(roads, "roads")
    assert fields.get("road_class").tolist() == ["primary", "rail", "ferry"]
    assert fields.used["road_class"] == "highway + railway + route"


def test_options_and_mapping_files(tmp_path: Path) -> None:
    assert parse_field_options(["building=kind_detail", "levels = height/3"]) == {
        "building": "kind_detail",
        "levels": "height/3",
    }
    with pytest.raises(GeodataError, match="角色=列名"):
        parse_field_options(["building"])
    toml = tmp_path / "m.toml"
    toml.write_text('building = "用途"\nlevels = "高度/3"\n', encoding="utf-8")
    json_file = tmp_path / "m.json"
    json_file.write_text('{"name": "区名"}', encoding="utf-8")
    assert read_mapping_file(toml) == {"building": "用途", "levels": "高度/3"}
    assert read_mapping_file(json_file) == {"name": "区名"}
    frame = pd.DataFrame(
        {"用途": ["住宅", "办公"], "高度": ["18米", "9"], "kind": ["building"] * 2}
    )
    fields = resolve_fields(frame, "buildings", read_mapping_file(toml))
    assert fields.get("building").tolist() == ["residential", "office"]
    assert fields.get("levels").tolist() == [6, 3]
    with pytest.raises(GeodataError, match="未知的字段角色"):
        resolve_fields(frame, "buildings", {"colour": "用途"})
    with pytest.raises(GeodataError, match="不能除以 0"):
        resolve_fields(frame, "buildings", {"levels": "高度/0"})


def test_household_rule_spares_a_commercial_centre_but_not_a_misread_file() -> None:
    # 新街口: most buildings are OSM "yes"/"office" with 0 households — a real answer.
    assert (
        household_basis_problem(["yes"] * 90 + ["residential"] * 10, [0] * 90 + [50] * 10) is None
    )
    # The file: the class column held "building" for everything.
    problem = household_basis_problem(
        ["building"] * 90 + ["residential"] * 10, [0] * 90 + [50] * 10
    )
    assert problem and "90/100" in problem and "building×90" in problem
    assert household_basis_problem(["yes"] * 5, [0] * 5) == "全部 5 栋楼户数为 0"
    assert (
        road_class_problem(["primary", None, None])
        and road_class_problem(["primary", None]) is None
    )
