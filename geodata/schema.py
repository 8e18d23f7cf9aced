"""Which column of an input file plays which role (building class, levels, road class …).

Files come in many schemas: OSM tags (``building``, ``building:levels``, ``highway``), the
Tilezen vector-tile schema (``kind``/``kind_detail``, ``is_bridge``/``is_tunnel``), Mapbox
Streets (``type``, ``class``, ``structure``), OpenMapTiles (``class``/``subclass``, ``brunnel``)
and Chinese exports from 天地图 / 高德 (名称, 类型, 层数, 楼层, 道路等级). :func:`resolve_fields`
picks one column per role — the caller's mapping first (``--field building=kind_detail``,
``--field levels=height/3``), then the known names — and says which it used, so nothing is
guessed silently. Values are normalised to OSM's vocabulary (``residential``, ``primary``,
``rail``, ``ferry``), which is what the household estimate and the block barriers read.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geodata.errors import GeodataError

__all__ = [
    "AREA_ROLES",
    "BUILDING_ROLES",
    "KNOWN_BUILDING_CLASSES",
    "ROAD_ROLES",
    "Fields",
    "household_basis_problem",
    "parse_field_options",
    "read_mapping_file",
    "resolve_fields",
    "road_class_problem",
]

#: Roles of a buildings file and the column names recognised for each, first match wins.
BUILDING_ROLES: dict[str, tuple[str, ...]] = {
    "building": (
        "building",  # OSM
        "kind_detail",  # Tilezen (kind is "building" for every footprint)
        "type",  # Mapbox Streets
        "subclass",
        "class",
        "kind",
        "building_type",
        "类型",
        "建筑类型",
        "房屋类型",
        "用途",
        "建筑用途",
        "性质",
    ),
    "levels": (
        "building:levels",
        "levels",
        "building_levels",
        "层数",
        "楼层",
        "楼层数",
        "地上层数",
        "floors",
    ),
    "height": ("height", "render_height", "高度", "建筑高度"),
    "households": ("households", "户数", "住户数"),
    "units": ("units", "单元数"),
    "name": ("name", "名称", "name:zh", "name_zh", "NAME", "Name", "建筑名称", "楼栋名称"),
    "address": ("address", "地址", "addr:full", "详细地址"),
}

#: Roles of a roads file.
ROAD_ROLES: dict[str, tuple[str, ...]] = {
    "road_class": (
        "highway",  # OSM
        "kind_detail",  # Tilezen (kind says rail / ferry / major_road …)
        "class",  # Mapbox Streets, OpenMapTiles
        "fclass",  # Geofabrik shapefiles
        "kind",
        "type",
        "道路等级",
        "道路类型",
        "等级",
        "类型",
    ),
    "bridge": ("bridge", "is_bridge", "brunnel", "structure", "桥梁", "是否桥梁"),
    "tunnel": ("tunnel", "is_tunnel", "brunnel", "structure", "隧道", "是否隧道"),
    "name": ("name", "名称", "name:zh", "name_zh", "NAME", "Name", "道路名称", "路名"),
}

#: Roles of an area file (districts, streets, communities, cells, estates).
AREA_ROLES: dict[str, tuple[str, ...]] = {
    "name": (
        "name",
        "名称",
        "name:zh",
        "name_zh",
        "NAME",
        "Name",
        "社区名称",
        "街道名称",
        "网格名称",
        "小区名称",
        "区县名称",
        "district",
        "DISTRICT",
        "community",
        "社区",
        "街道",
        "区县",
    ),
    "code": ("code", "编码", "编号", "CODE", "Code", "adcode", "区划代码", "行政区划代码"),
}

ROLE_LABELS: dict[str, str] = {
    "building": "楼栋类别",
    "levels": "层数",
    "height": "高度",
    "households": "户数",
    "units": "单元数",
    "name": "名称",
    "address": "地址",
    "road_class": "道路等级",
    "bridge": "桥梁",
    "tunnel": "隧道",
    "code": "编码",
}

#: Other names users type for a role in ``--field``.
_ROLE_ALIASES = {"highway": "road_class", "class": "road_class", "road": "road_class"}

#: OSM building=* values (the ones seen in Chinese cities): a class outside these (and not a
#: Chinese label we translate) means the column probably is not a building class at all.
KNOWN_BUILDING_CLASSES: frozenset[str] = frozenset(
    [
        "yes",
        "residential",
        "apartments",
        "house",
        "dormitory",
        "detached",
        "terrace",
        "semidetached_house",
        "bungalow",
        "commercial",
        "retail",
        "office",
        "industrial",
        "warehouse",
        "school",
        "university",
        "college",
        "kindergarten",
        "hospital",
        "hotel",
        "public",
        "civic",
        "government",
        "church",
        "temple",
        "mosque",
        "train_station",
        "transportation",
        "parking",
        "garage",
        "garages",
        "shed",
        "roof",
        "construction",
        "service",
        "hut",
        "cabin",
        "farm",
        "kiosk",
        "stadium",
        "sports_hall",
        "sports_centre",
        "greenhouse",
        "barn",
        "toilets",
        "supermarket",
        "fire_station",
        "police",
        "military",
        "gatehouse",
        "pavilion",
        "ruins",
        "bridge",
        "manufacture",
        "data_center",
    ]
)

#: Chinese building-class labels (天地图 / 高德 exports) → OSM values, matched as substrings.
_CHINESE_BUILDING_CLASSES: tuple[tuple[str, str], ...] = (
    ("公寓", "apartments"),
    ("宿舍", "dormitory"),
    ("别墅", "house"),
    ("平房", "house"),
    ("住宅", "residential"),
    ("居民", "residential"),
    ("住房", "residential"),
    ("商住", "residential"),
    ("写字楼", "office"),
    ("办公", "office"),
    ("商场", "retail"),
    ("商铺", "retail"),
    ("商业", "commercial"),
    ("学校", "school"),
    ("幼儿园", "kindergarten"),
    ("大学", "university"),
    ("医院", "hospital"),
    ("酒店", "hotel"),
    ("宾馆", "hotel"),
    ("厂", "industrial"),
    ("工业", "industrial"),
    ("仓", "warehouse"),
    ("车库", "garage"),
    ("政府", "government"),
    ("机关", "government"),
)

#: Road classes of other schemas → OSM highway values; "rail" and "ferry" are kept as such.
_ROAD_CLASSES: dict[str, str] = {
    # Tilezen kind values (when kind_detail is empty)
    "major_road": "secondary",
    "minor_road": "residential",
    "highway": "motorway",
    "path": "path",
    "rail": "rail",
    "ferry": "ferry",
    # Mapbox Streets / OpenMapTiles
    "street": "residential",
    "street_limited": "living_street",
    "minor": "residential",
    "major_rail": "rail",
    "minor_rail": "rail",
    "service_rail": "rail",
    "transit": "rail",
    "subway": "rail",
    "light_rail": "rail",
    "tram": "rail",
    "narrow_gauge": "rail",
    "monorail": "rail",
    "funicular": "rail",
    "aerialway": "aerialway",
}
_CHINESE_ROAD_CLASSES: tuple[tuple[str, str], ...] = (
    ("高速", "motorway"),
    ("快速", "trunk"),
    ("国道", "trunk"),
    ("省道", "primary"),
    ("主干", "primary"),
    ("次干", "secondary"),
    ("县道", "secondary"),
    ("乡", "tertiary"),
    ("支路", "tertiary"),
    ("铁路", "rail"),
    ("地铁", "rail"),
    ("轻轨", "rail"),
    ("高铁", "rail"),
    ("轮渡", "ferry"),
    ("渡", "ferry"),
    ("航线", "ferry"),
    ("步行", "footway"),
    ("人行", "footway"),
    ("自行车", "cycleway"),
    ("非机动车", "cycleway"),
    ("内部", "service"),
    ("小区", "service"),
    ("街巷", "residential"),
    ("胡同", "residential"),
    ("小路", "residential"),
)
_YES = {"yes", "true", "1", "t", "y", "是", "有"}
_NO = {"no", "false", "0", "f", "n", "否", "无", "none", ""}

#: A field spec: a column, optionally divided or multiplied by a number ("height/3").
_SPEC = re.compile(r"^\s*(?P<column>.+?)\s*(?:(?P<op>[/*])\s*(?P<number>\d+(?:\.\d+)?)\s*)?$")


@dataclass
class Fields:
    """The role columns of a file, normalised, and which column each came from."""

    values: dict[str, pd.Series]
    used: dict[str, str]
    schema: str
    source_columns: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    def get(self, role: str) -> pd.Series | None:
        """The values of a role, or None when no column plays it."""
        return self.values.get(role)


def parse_field_options(options: Iterable[str]) -> dict[str, str]:
    """``["building=kind_detail", "levels=height/3"]`` → ``{"building": …, "levels": …}``."""
    mapping: dict[str, str] = {}
    for option in options:
        role, sep, spec = option.partition("=")
        if not sep or not role.strip() or not spec.strip():
            raise GeodataError(f"字段映射 {option!r} 应写成 角色=列名，例如 building=kind_detail")
        mapping[role.strip()] = spec.strip()
    return mapping


def read_mapping_file(path: Path) -> dict[str, str]:
    """A field mapping from a JSON or TOML file: ``{"building": "kind_detail", …}``."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise GeodataError(f"无法读取字段映射文件 {path.name}：{exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise GeodataError(f"字段映射文件 {path.name} 应是 角色 → 列名 的对象（字符串到字符串）")
    return dict(data)


def _canonical_roles(
    mapping: Mapping[str, str], roles: Mapping[str, tuple[str, ...]]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for role, spec in mapping.items():
        name = role if role in roles else _ROLE_ALIASES.get(role, role)
        if name not in roles:
            known = "、".join(roles)
            raise GeodataError(f"未知的字段角色 {role!r}；可用的角色：{known}")
        out[name] = spec
    return out


def _blank(series: pd.Series) -> np.ndarray:
    return np.array(
        [
            v is None
            or v is pd.NA
            or (isinstance(v, float) and np.isnan(v))
            or str(v).strip() == ""
            for v in series
        ],
        dtype=bool,
    )


def _apply_spec(frame: pd.DataFrame, role: str, spec: str) -> tuple[pd.Series, str]:
    match = _SPEC.match(spec)
    column = match.group("column") if match else spec
    if column not in frame.columns:
        columns = "、".join(str(c) for c in frame.columns if c != "geometry")
        raise GeodataError(
            f"字段映射 {role}={spec}：文件中没有列 {column!r}（文件的列：{columns}）"
        )
    series = frame[column]
    if match and match.group("op"):
        number = float(match.group("number"))
        if number == 0:
            raise GeodataError(f"字段映射 {role}={spec}：不能除以 0")
        numeric = pd.to_numeric(series.map(_first_number), errors="coerce")
        series = numeric / number if match.group("op") == "/" else numeric * number
    return series, spec


def _first_number(value: object) -> float:
    if value is None or value is pd.NA:
        return np.nan
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    found = re.search(r"\d+(?:\.\d+)?", str(value))
    return float(found.group()) if found else np.nan


def _pick(frame: pd.DataFrame, candidates: tuple[str, ...], generic: set[str]) -> str | None:
    """The first candidate column with a value other than blank or a generic one."""
    for name in candidates:
        if name not in frame.columns:
            continue
        values = frame[name]
        present = values[~_blank(values)]
        if len(present) and not present.astype(str).str.strip().str.lower().isin(generic).all():
            return name
    return None


def _normalise_building_class(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text_value = str(value).strip()
    if not text_value:
        return None
    lowered = text_value.lower()
    if lowered in KNOWN_BUILDING_CLASSES:
        return lowered
    for label, osm in _CHINESE_BUILDING_CLASSES:
        if label in text_value:
            return osm
    return lowered


def _normalise_road_class(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text_value = str(value).strip()
    if not text_value:
        return None
    lowered = text_value.lower()
    if lowered in _ROAD_CLASSES:
        return _ROAD_CLASSES[lowered]
    for label, osm in _CHINESE_ROAD_CLASSES:
        if label in text_value:
            return osm
    return lowered


def _flag(series: pd.Series, column: str, role: str) -> pd.Series:
    """A bridge/tunnel column as "yes" or None (OSM's tag values, Tilezen booleans, OMT
    ``brunnel`` / Mapbox ``structure`` naming the kind)."""
    out: list[str | None] = []
    for value in series:
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            out.append(None)
            continue
        text_value = str(value).strip().lower()
        if column in ("brunnel", "structure"):
            out.append("yes" if text_value == role else None)
        elif text_value in _NO:
            out.append(None)
        else:  # OSM uses yes, viaduct, culvert, building_passage …
            out.append("yes")
    return pd.Series(out, index=series.index, dtype=object)


def _schema_name(used: Mapping[str, str], mapped: set[str]) -> str:
    if mapped:
        return "自定义映射"
    columns = set(used.values())
    if columns & {"building", "highway", "building:levels"}:
        return "OSM"
    if columns & {"kind_detail", "is_bridge", "is_tunnel", "kind"}:
        return "Tilezen"
    if columns & {"brunnel", "subclass"}:
        return "OpenMapTiles"
    if columns & {"class", "type", "structure"}:
        return "Mapbox Streets"
    if any(re.search(r"[\u4e00-\u9fff]", c) for c in columns):
        return "天地图 / 高德"
    return "未识别"


def resolve_fields(
    frame: pd.DataFrame,
    kind: str,
    mapping: Mapping[str, str] | None = None,
    *,
    height_per_level_m: float = 3.0,
) -> Fields:
    """The columns of `frame` for each role of `kind` ("buildings", "roads" or "areas").

    The caller's `mapping` (role → column or ``column/number``) wins; otherwise the known
    names are tried in order. Building classes and road classes are normalised to OSM values;
    bridge/tunnel become "yes" or None; levels come from ``height ÷ height_per_level_m`` when
    no levels column exists.
    """
    roles = {"buildings": BUILDING_ROLES, "roads": ROAD_ROLES, "areas": AREA_ROLES}[kind]
    mapped = _canonical_roles(mapping or {}, roles)
    values: dict[str, pd.Series] = {}
    used: dict[str, str] = {}
    source_columns: set[str] = set()
    for role, candidates in roles.items():
        if role in mapped:
            values[role], used[role] = _apply_spec(frame, role, mapped[role])
            match = _SPEC.match(mapped[role])
            source_columns.add(match.group("column") if match else mapped[role])
            continue
        generic = {"building", "building_part"} if role == "building" else set()
        if role in ("bridge", "tunnel"):
            generic = set()
        column = _pick(frame, candidates, generic)
        if column is None:
            continue
        values[role] = frame[column]
        used[role] = column
        source_columns.add(column)

    if kind == "buildings":
        _building_values(frame, values, used, height_per_level_m)
    if kind == "roads":
        _road_values(frame, values, used, mapped, source_columns)
    return Fields(
        values=values,
        used=used,
        schema=_schema_name(used, set(mapped)),
        source_columns=source_columns,
    )


def _building_values(
    frame: pd.DataFrame,
    values: dict[str, pd.Series],
    used: dict[str, str],
    height_per_level_m: float,
) -> None:
    """Levels from the height when there is no levels column; classes in OSM's words."""
    if "levels" not in values and "height" in values:
        height = pd.to_numeric(values["height"].map(_first_number), errors="coerce")
        values["levels"] = height / height_per_level_m
        used["levels"] = f"{used['height']}/{height_per_level_m:g}"
    values.pop("height", None)
    used.pop("height", None)
    if "building" in values:
        values["building"] = values["building"].map(_normalise_building_class).astype(object)
        # Tilezen leaves kind_detail empty for a plain building (OSM building=yes).
        if used["building"] == "kind_detail" and "kind" in frame.columns:
            plain = _blank(values["building"]) & ~_blank(frame["kind"])
            values["building"] = values["building"].where(~plain, "yes")


def _road_values(
    frame: pd.DataFrame,
    values: dict[str, pd.Series],
    used: dict[str, str],
    mapped: Mapping[str, str],
    source_columns: set[str],
) -> None:
    """Road classes in OSM's words (rail and ferry from the tags that name them); bridge and
    tunnel as "yes" or None."""
    if "road_class" in values:
        classes = values["road_class"].map(_normalise_road_class).astype(object)
        # Tilezen's kind and OSM's railway / route tags name rail and ferry lines.
        if used["road_class"] == "kind_detail" and "kind" in frame.columns:
            kinds = frame["kind"].map(_normalise_road_class)
            override = kinds.isin(["rail", "ferry"]) | _blank(classes)
            classes = classes.where(~override, kinds)
        values["road_class"] = classes
    for column, value in (("railway", "rail"), ("route", "ferry")):
        if column in frame.columns and "road_class" not in mapped:
            hits = ~_blank(frame[column])
            if column == "route":
                hits &= frame[column].astype(str).str.lower().eq("ferry").to_numpy()
            if hits.any():
                base = values.get("road_class", pd.Series([None] * len(frame), index=frame.index))
                values["road_class"] = base.astype(object).where(~hits, value)
                used["road_class"] = (used.get("road_class", "") + f" + {column}").lstrip(" +")
                source_columns.add(column)
    for role in ("bridge", "tunnel"):
        if role in values:
            column = used[role]
            values[role] = _flag(values[role], column, role)
            if column in ("brunnel", "structure"):
                used[role] = f"{column}={role}"


def household_basis_problem(
    classes: Iterable[object], households: Iterable[int], *, max_zero_share: float = 0.5
) -> str | None:
    """Why these buildings' households cannot be trusted, or None.

    A problem when every building has 0 households, or when more than `max_zero_share` of them
    have 0 and most of those have no class or one that is not a known building class — the
    sign of a class read from the wrong column. (A commercial centre, where most buildings are
    OSM ``yes``/``office``/``retail`` with 0 households, is not a problem.)
    """
    kinds = [
        None if k is None or (isinstance(k, float) and np.isnan(k)) else str(k) for k in classes
    ]
    counts = np.asarray(list(households), dtype=np.int64)
    n = len(counts)
    if n == 0:
        return None
    zero = counts <= 0
    if zero.all():
        return f"全部 {n} 栋楼户数为 0"
    if zero.mean() <= max_zero_share:
        return None
    zero_kinds = [kinds[i] for i in np.flatnonzero(zero)]
    unknown = sum(1 for k in zero_kinds if k is None or k.lower() not in KNOWN_BUILDING_CLASSES)
    if unknown * 2 > len(zero_kinds):
        examples = pd.Series([k for k in zero_kinds if k is not None]).value_counts().head(3)
        shown = "、".join(f"{v}×{c}" for v, c in examples.items()) or "无类别"
        return (
            f"{int(zero.sum())}/{n} 栋楼（{zero.mean():.0%}）户数为 0，其中多数没有已知的楼栋类别"
            f"（{shown}）"
        )
    return None


def road_class_problem(classes: Iterable[object], *, max_missing_share: float = 0.5) -> str | None:
    """Why these roads' classes cannot be trusted (most have none), or None."""
    values = list(classes)
    n = len(values)
    if n == 0:
        return None
    missing = sum(
        1 for v in values if v is None or (isinstance(v, float) and np.isnan(v)) or str(v) == ""
    )
    if missing / n > max_missing_share:
        return f"{missing}/{n} 条道路（{missing / n:.0%}）没有道路等级，每条线都会被当作街区边界"
    return None
