"""Deterministic synthetic 街道 (street) generator for demos, tests and benchmarks.

The street is built hierarchically in a local metric frame (metres east/north of the street's
south-west corner) from one shared, jittered vertex lattice of road centre lines:

    street = union of communities = union of cells = union of road blocks (lattice quads)

so communities tile the street and cells tile their community exactly (neighbours share
bit-identical vertices). Estates are blocks inset by a road half-width; buildings are packed in
rows inside the estate's inner rectangle, so they never overlap or cross the estate edge. The
metric frame is mapped to EPSG:4326 with a local affine (equirectangular, WGS84 radii at the
origin) transform, which keeps all of that exact after conversion.

Proportions follow the 象山社区 (绥芬河) community report: per 3,275 households, 9,325 residents,
887 floating households, 47 directly managed and 81 in-service party members and 5 volunteer
teams of 296 people; they scale with ``households_per_community``. Households, persons and
incidents are generated as numpy arrays; only estates and cells are looped over in Python.

Keys are prefixed with the street code (``320102001-b000123``) so that streets from
``iter_streets`` can be loaded side by side. If the households cannot fit the configured area
(very dense configs), the community area is grown and an INFO message is logged.

Everything here is synthetic: names are drawn from common surnames and given-name characters, and
phone numbers are random (unique within a street; China has no reserved fictional range, so a
number may exist — never dial them); none of it describes real people. This module is pure (no
database, no HTTP) and never imports ``gridsvc``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["SynthConfig", "SynthStreet", "generate_street", "iter_streets"]

logger = logging.getLogger(__name__)

# --- reference proportions: 象山社区, 绥芬河 (per community) -------------------------------------
REF_HOUSEHOLDS = 3275
REF_RESIDENTS = 9325
REF_FLOATING_HOUSEHOLDS = 887
REF_PARTY_DIRECT = 47
REF_PARTY_IN_SERVICE = 81
REF_PARTY_FLOATING = 6  # "some": not in the report, plausible
REF_PARTY_RETIRED = 28  # "some": not in the report, plausible
REF_VOLUNTEERS = 296
FLAG_RATES = {  # share of households
    "low_income": 0.02,
    "elderly_alone": 0.06,
    "disabled": 0.03,
    "extreme_poverty": 0.005,
}
RENTAL_GIVEN_FLOATING = 0.45
RENTAL_GIVEN_SETTLED = 0.04  # overall ≈ 0.27·0.45 + 0.73·0.04 ≈ 15 %

VOLUNTEER_TEAMS = (  # kind, name suffix, share of the community's volunteers
    ("party", "党员志愿服务队", 0.27),
    ("elderly", "老年志愿服务队", 0.24),
    ("women", "巾帼志愿服务队", 0.20),
    ("housekeeping", "家政志愿服务队", 0.12),
    ("public_security", "治安志愿服务队", 0.17),
)

INCIDENT_CATEGORIES = (  # code, share, mean days to close, description templates ({loc})
    (
        "dispute",
        0.12,
        6.0,
        (
            "{loc}邻里因噪音发生纠纷",
            "{loc}楼上漏水引发邻里矛盾",
            "{loc}物业费纠纷需调解",
            "{loc}家庭矛盾需上门调解",
            "{loc}停车位归属争议",
        ),
    ),
    (
        "public_order",
        0.08,
        3.0,
        (
            "{loc}发现可疑人员徘徊",
            "{loc}电动车被盗",
            "{loc}夜间聚众喧哗扰民",
            "{loc}单元门禁损坏存在治安隐患",
        ),
    ),
    (
        "safety",
        0.10,
        2.0,
        (
            "{loc}楼道内电动车违规充电",
            "{loc}消防通道被占用",
            "{loc}燃气管道老化有异味",
            "{loc}外墙瓷砖有脱落风险",
            "{loc}楼道堆放杂物",
        ),
    ),
    (
        "sanitation",
        0.25,
        1.5,
        (
            "{loc}垃圾未及时清运",
            "{loc}绿化带积存垃圾",
            "{loc}下水道堵塞有异味",
            "{loc}小广告乱张贴",
            "{loc}宠物粪便未清理",
        ),
    ),
    (
        "municipal",
        0.15,
        5.0,
        (
            "{loc}路灯不亮",
            "{loc}井盖破损",
            "{loc}道路坑洼积水",
            "{loc}健身器材损坏",
            "{loc}雨水管堵塞",
        ),
    ),
    (
        "livelihood",
        0.18,
        8.0,
        (
            "{loc}老人申请居家养老服务",
            "{loc}居民咨询低保申请",
            "{loc}加装电梯意见征集",
            "{loc}居民反映供暖不足",
            "{loc}独居老人需定期探访",
        ),
    ),
    (
        "floating_population",
        0.07,
        4.0,
        ("{loc}新增租户未登记", "{loc}群租房人员信息待核实", "{loc}流动人口居住证办理咨询"),
    ),
    ("other", 0.05, 3.0, ("{loc}居民咨询社区活动", "{loc}流浪动物出没", "{loc}其他需协调事项")),
)
REPORTER_KINDS = (("grid_worker", 0.40), ("resident", 0.35), ("public", 0.15), ("leader", 0.10))
INCIDENT_TZ = "Asia/Shanghai"

# --- layout constants (metres) --------------------------------------------------------------
BLOCK_SIDE = 200.0  # typical road-block side
ROAD_HALF_WIDTH = 10.0  # estate polygon = block inset by this
ESTATE_SETBACK = 6.0  # buildings keep this far inside the estate (plus ~4 m for slant)
EDGE_MARGIN = 2.0  # inside the packing rectangle, room for a slight rotation
SLANT_ALLOWANCE = 4.0  # the packing rectangle also stays this far from the slanted block edge
MAX_ROTATION_DEG = 2.5
WIDTH_VARIATION = 0.15  # road spacing varies ±15 % around BLOCK_SIDE
JITTER = 0.05  # lattice vertices move up to 5 % of a block side
SMALLEST_BLOCK = 1 - WIDTH_VARIATION - 2 * JITTER - 0.02  # smallest block side / mean side
MAX_VACANCY = 0.10
TOWER_MAX_CAPACITY = 4 * 2 * 33  # 33 levels × 2 units × 4 dwellings a floor
TOWER_MAX_LENGTH = 33.0
TOWER_DEPTH = 22.0

# --- names ------------------------------------------------------------------------------------
SURNAMES = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤"
)
MALE_CHARS = tuple(
    "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆旭宁龙林阳建国志文海东峰亮成博晨睿轩泽然嘉"
)
FEMALE_CHARS = tuple(
    "芳娜敏静丽艳娟霞秀英慧巧美玲萍红燕婷雪琳晶洁倩颖欣怡佳雨梦思诗涵萱悦彤瑶婉兰凤梅琴月"
)
PLACE_NAMES = (
    "翠湖",
    "象山",
    "梧桐",
    "玉泉",
    "清溪",
    "锦江",
    "长青",
    "龙蟠",
    "紫荆",
    "丹凤",
    "桃园",
    "柳营",
    "松涛",
    "兰苑",
    "枫林",
    "樱花",
    "银河",
    "金桥",
    "新民",
    "和平",
    "朝阳",
    "东风",
    "红旗",
    "光华",
    "友谊",
    "振兴",
    "幸福",
    "团结",
    "育才",
    "文昌",
    "凤凰",
    "莲花",
    "北园",
    "南湖",
    "东湖",
    "西山",
    "月牙",
    "青石",
    "白鹭",
    "秋实",
    "春晖",
    "杏林",
    "竹园",
    "荷塘",
    "明珠",
    "天河",
    "瑞金",
    "百合",
    "香樟",
    "石榴",
    "云锦",
    "景明",
    "安康",
    "康宁",
    "泰和",
    "永安",
    "新华",
    "建宁",
    "汇文",
    "清凉",
)
ESTATE_PREFIXES = (
    "翠苑",
    "金陵",
    "梧桐",
    "锦绣",
    "银杏",
    "紫金",
    "玉兰",
    "碧水",
    "阳光",
    "幸福",
    "东方",
    "春江",
    "翰林",
    "桂花",
    "香榭",
    "御景",
    "天润",
    "明珠",
    "枫林",
    "丽景",
    "瑞祥",
    "盛世",
    "康乐",
    "福润",
    "嘉和",
    "新城",
    "怡景",
    "龙湾",
    "凤凰",
    "青竹",
    "南湖",
    "北苑",
    "西园",
    "东苑",
    "长江",
    "秦淮",
    "钟山",
    "石城",
    "白鹭",
    "莫愁",
    "朝阳",
    "建宁",
    "清风",
    "明月",
    "海棠",
    "芙蓉",
    "蔷薇",
    "丁香",
    "雅颂",
    "书香",
    "和煦",
    "锦华",
    "华府",
    "润泽",
    "恒盛",
    "万象",
    "世纪",
    "时代",
    "滨江",
    "天成",
)
ESTATE_SUFFIXES = (
    "小区",
    "花园",
    "雅居",
    "家园",
    "新村",
    "苑",
    "公寓",
    "名邸",
    "嘉园",
    "佳苑",
    "山庄",
    "里",
    "公馆",
    "新寓",
    "华庭",
    "府",
)
ROAD_NAMES = (
    "青年",
    "建国",
    "中山",
    "解放",
    "人民",
    "文化",
    "长江",
    "黄河",
    "民生",
    "胜利",
    "光明",
    "学府",
    "科苑",
    "珠江",
    "汉中",
    "龙江",
    "太平",
    "成贤",
    "丹凤",
    "进香",
    "北安",
    "长白",
    "兴华",
    "延龄",
    "同仁",
    "安仁",
    "富贵",
    "吉庆",
    "仁寿",
    "公园",
    "花园",
    "樱驼",
    "清溪",
    "华侨",
)
CITY_NAMES = {
    "1101": "北京市",
    "3101": "上海市",
    "3201": "南京市",
    "3301": "杭州市",
    "4401": "广州市",
    "4403": "深圳市",
    "5101": "成都市",
    "2310": "牡丹江市",
}
DISTRICT_NAMES = {
    "320102": "玄武区",
    "320104": "秦淮区",
    "320105": "建邺区",
    "320106": "鼓楼区",
    "320111": "浦口区",
    "320113": "栖霞区",
    "320114": "雨花台区",
    "320115": "江宁区",
    "110105": "朝阳区",
    "110108": "海淀区",
    "231081": "绥芬河市",
}
CN_DIGITS = "零一二三四五六七八九十"

# block kinds
RESIDENTIAL, CIVIC, SCHOOL, MARKET, PARK = 0, 1, 2, 3, 4
SPECIAL_BLOCKS = (CIVIC, SCHOOL, MARKET, PARK)


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of one synthetic street; the same config always gives the same street."""

    seed: int = 42
    communities: int = 3  # number of 社区 in the street
    households_per_community: int = 3275
    community_area_km2: float = 1.5
    origin: tuple[float, float] = (118.80, 32.05)  # lon, lat of the street's south-west corner
    district_code: str = "320102"  # 6-digit admin code (玄武区)
    street_code: str = "320102001"  # 9 digits
    street_name: str = "示范街道"
    as_of: date = date(2026, 11, 1)
    incidents_per_household_year: float = 0.1
    cell_target_households: int = 300


@dataclass
class SynthStreet:
    """One generated street: admin areas, housing, people, roles and a year of incidents."""

    district: dict
    street: dict
    communities: gpd.GeoDataFrame
    estates: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    households: pd.DataFrame
    persons: pd.DataFrame
    volunteer_teams: pd.DataFrame
    roles: pd.DataFrame
    incidents: pd.DataFrame


# ============================================================================ public API ====


def generate_street(config: SynthConfig = SynthConfig()) -> SynthStreet:
    """Generate one synthetic street (EPSG:4326) from ``config``, deterministically."""
    _check_config(config)
    return _generate(config, district_box=None)


def iter_streets(n: int, config: SynthConfig = SynthConfig()) -> Iterator[SynthStreet]:
    """Streams n streets side by side (each offset east of the last, distinct codes, seeds derived from config.seed), one at a time, for city-scale benchmarks without holding the city in memory."""
    _check_config(config)
    if n < 0:
        raise ValueError("n must be >= 0")
    base_seq = int(config.street_code[-3:])
    if base_seq + n - 1 > 999:
        raise ValueError("street_code sequence would exceed 999; lower the start or n")
    plan = _plan_sizes(config)
    width = plan.ncx * plan.side + 2 * plan.jitter
    pitch = width + 60.0  # a 60 m gap between the streets' jittered outlines
    lon0, lat0 = config.origin
    kx, ky = _degrees_per_metre(lat0)
    margin = 300.0
    district_box = (
        lon0 + (-plan.jitter - margin) * kx,
        lat0 + (-plan.jitter - margin) * ky,
        lon0 + ((n - 1) * pitch + width + margin) * kx,
        lat0 + (plan.ncy * plan.side + plan.jitter + margin) * ky,
    )
    names = _street_names(config, n)
    for i in range(n):
        seed = config.seed if i == 0 else _derive_seed(config.seed, i)
        cfg = replace(
            config,
            seed=seed,
            origin=(lon0 + i * pitch * kx, lat0),
            street_code=config.street_code[:-3] + f"{base_seq + i:03d}",
            street_name=names[i],
        )
        yield _generate(cfg, district_box=district_box)


# ============================================================================ helpers =====


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
    return (np.clip(per_row, 0, None) * np.clip(rows, 0, None)).astype(np.int64)


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


def _cell_targets(rng: np.random.Generator, total: int, k: int, target: int) -> np.ndarray:
    """Household totals of ``k`` cells summing to ``total``: varied, kept near the 200–500 band."""
    mean = total / k
    lo, hi = 0.82 * mean, 1.2 * mean
    if target <= 500 and mean <= 500:  # keep inside the usual 200–500 band where we can
        lo, hi = max(lo, min(200.0, mean)), min(hi, max(500.0, mean))
    t = rng.uniform(lo, hi, k)
    for _ in range(50):
        t = np.clip(t * (total / t.sum()), lo, hi)
        if abs(t.sum() - total) < 0.5:
            break
    return _largest_remainder(total, t)


def _fill(total: int, weights: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Split ``total`` in proportion to ``weights`` without exceeding ``cap`` (water-filling)."""
    out = np.zeros(len(weights), dtype=np.int64)
    left = total
    for _ in range(len(weights) + 1):
        room = cap - out
        open_ = room > 0
        if left <= 0 or not open_.any():
            break
        share = _largest_remainder(left, np.where(open_, weights, 0.0))
        add = np.minimum(share, room)
        out += add
        left -= int(add.sum())
    return out


def _split_even(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    """Split ``total`` into ``parts`` near-equal positive ints, remainder placed at random."""
    sizes = np.full(parts, total // parts, dtype=np.int64)
    sizes[rng.choice(parts, total - int(sizes.sum()), replace=False)] += 1
    return sizes


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weights`` summing exactly to ``total``."""
    w = np.asarray(weights, dtype=float)
    share = total * w / w.sum()
    out = np.floor(share).astype(np.int64)
    short = total - int(out.sum())
    if short:
        out[np.argsort(-(share - out), kind="stable")[:short]] += 1
    return out


def _pick(
    rng: np.random.Generator,
    group: np.ndarray,
    quota: np.ndarray,
    weights: np.ndarray | None = None,
    eligible: np.ndarray | None = None,
) -> np.ndarray:
    """Mask choosing ``quota[g]`` items of each group g, weighted, without replacement."""
    n = len(group)
    key = rng.exponential(size=n)
    if weights is not None:
        with np.errstate(divide="ignore"):
            key = np.where(weights > 0, key / np.where(weights > 0, weights, 1.0), np.inf)
    if eligible is not None:
        key = np.where(eligible, key, np.inf)
    order = np.lexsort((key, group))
    g_sorted = group[order]
    starts = np.searchsorted(g_sorted, g_sorted, side="left")
    rank = np.arange(n) - starts
    chosen = (rank < np.asarray(quota)[g_sorted]) & np.isfinite(key[order])
    out = np.zeros(n, dtype=bool)
    out[order[chosen]] = True
    return out


def _keys(prefix: str, n: int, width: int) -> np.ndarray:
    """Keys ``prefix`` + 1…n, zero-padded to ``width``."""
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _to_multi(polys: np.ndarray) -> np.ndarray:
    """Wrap each polygon in a single-part MultiPolygon."""
    polys = np.asarray(polys, dtype=object)
    if len(polys) == 0:
        return polys
    return shapely.multipolygons(polys, indices=np.arange(len(polys)))


def _cn_number(i: int) -> str:
    """Chinese numeral for small ``i`` (二, 十一, 二十三), digits beyond 99."""
    if i <= 10:
        return CN_DIGITS[i]
    if i < 20:
        return "十" + CN_DIGITS[i - 10]
    if i < 100:
        return CN_DIGITS[i // 10] + "十" + ("" if i % 10 == 0 else CN_DIGITS[i % 10])
    return str(i)


def _unique_names(rng: np.random.Generator, bases: list[str], n: int, fmt: str) -> list[str]:
    """``n`` distinct names from shuffled ``bases``; if exhausted, numbered variants follow."""
    order = [bases[i] for i in rng.permutation(len(bases))]
    out = []
    for i in range(n):
        base = order[i % len(order)]
        rnd = i // len(order)
        out.append(fmt.format(base) if rnd == 0 else fmt.format(base + _cn_number(rnd + 1)))
    return out


def _unique_estate_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct estate names (prefix + 小区/花园/雅居 …), then 二期, 三期 … variants."""
    combos = [p + s for p in ESTATE_PREFIXES for s in ESTATE_SUFFIXES]
    order = rng.permutation(len(combos))
    out = []
    for i in range(n):
        name = combos[order[i % len(combos)]]
        rnd = i // len(combos)
        out.append(name if rnd == 0 else f"{name}{_cn_number(rnd + 1)}期")
    return out


# ------------------------------------------------------------------ building planning ----


def _plan_residential(
    rng: np.random.Generator, target: int, style: str
) -> list[tuple[str, int, int, float, float]]:
    """Buildings (structure, levels, units, length, depth) whose capacity covers ``target``."""
    vacancy = rng.uniform(0.03, MAX_VACANCY)
    need = math.ceil(target / (1.0 - vacancy))
    out: list[tuple[str, int, int, float, float]] = []
    if style != "slab":
        tower_need = need if style in ("tower", "dense") else need * rng.uniform(0.4, 0.75)
        while tower_need >= 72 or (style == "dense" and tower_need > 0):
            units = 2 if tower_need >= 144 and (style == "dense" or rng.random() < 0.7) else 1
            tallest = 33 if style == "dense" else int(rng.integers(18, 34))
            levels = max(18, min(tallest, math.ceil(tower_need / (4 * units))))
            cap = 4 * units * levels
            length = TOWER_MAX_LENGTH - 4 * (2 - units) - rng.uniform(0, 2)
            out.append(("tower", levels, units, length, TOWER_DEPTH))
            tower_need -= cap
            need -= cap
    while need > 0:
        levels = int(rng.choice((5, 6, 7), p=(0.15, 0.6, 0.25)))
        if need >= 2 * levels * 4:
            units = int(rng.choice((2, 3, 4), p=(0.3, 0.45, 0.25)))
        else:
            units = max(2, min(4, math.ceil(need / (2 * levels))))
        out.append(("slab", levels, units, 14.0 * units + 8.0, 12.0 + (units == 4)))
        need -= 2 * units * levels
    return out


def _layout(
    rng: np.random.Generator,
    sizes: list[tuple[float, float]],
    rect: tuple[float, float, float, float],
    tall: list[bool],
    rotate: bool = True,
) -> list[tuple[float, float, float]] | None:
    """Pack rectangles (length, depth) in rows inside ``rect``; centres and angles, or None."""
    x0, y0, x1, y1 = rect
    x0, y0, x1, y1 = x0 + EDGE_MARGIN, y0 + EDGE_MARGIN, x1 - EDGE_MARGIN, y1 - EDGE_MARGIN
    width, height = x1 - x0, y1 - y0
    if width <= 0 or height <= 0:
        return None
    for gap_x, gap_tall, gap_low in ((14.0, 26.0, 16.0), (8.0, 18.0, 12.0)):
        rows: list[list[int]] = []
        row_w = 0.0
        for i, (length, _depth) in enumerate(sizes):
            if length > width:
                return None
            if rows and tall[i] == tall[rows[-1][0]] and row_w + gap_x + length <= width:
                rows[-1].append(i)
                row_w += gap_x + length
            else:
                rows.append([i])
                row_w = length
        row_h = [max(sizes[i][1] for i in r) for r in rows]
        row_gap = [gap_tall if any(tall[i] for i in r) else gap_low for r in rows]
        used = sum(row_h) + sum(row_gap[:-1])
        if used <= height:
            break
    else:
        return None
    spare = height - used
    extra = min(spare / (len(rows) + 1), 20.0)
    top_pad = (spare - extra * (len(rows) - 1)) * rng.uniform(0.3, 0.7)
    out: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * len(sizes)
    y = y1 - top_pad
    for r, (row, h) in enumerate(zip(rows, row_h, strict=True)):
        cy = y - h / 2
        lengths = [sizes[i][0] for i in row]
        free = width - sum(lengths) - gap_x * (len(row) - 1)
        gap = gap_x + min(free / (len(row) + 1), 25.0)
        left = x0 + (free - (gap - gap_x) * (len(row) - 1)) * rng.uniform(0.3, 0.7)
        for i, length in zip(row, lengths, strict=True):
            angle = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG) if rotate else 0.0
            if rng.random() < 0.6:
                angle = 0.0
            out[i] = (left + length / 2, cy, angle)
            left += length + gap
        y -= h + row_gap[r] + extra
    return out


PUBLIC_BUILDINGS = {  # block kind → (building, name pattern, length, depth, (min, max) levels)
    CIVIC: (
        ("community_center", "{c}社区服务中心", 40.0, 20.0, (3, 4)),
        ("clinic", "{c}社区卫生服务站", 28.0, 15.0, (2, 3)),
        ("office", "{r}大厦", 40.0, 18.0, (12, 20)),
    ),
    SCHOOL: (
        ("school", "{c}小学", 80.0, 18.0, (4, 5)),
        ("kindergarten", "{c}幼儿园", 40.0, 22.0, (2, 3)),
    ),
    MARKET: (
        ("market", "{c}农贸市场", 60.0, 35.0, (1, 2)),
        ("office", "{r}商务楼", 36.0, 16.0, (8, 16)),
    ),
    PARK: (),
}


# ================================================================== the generator ========


def _generate(
    config: SynthConfig, district_box: tuple[float, float, float, float] | None
) -> SynthStreet:
    """Build one street; ``district_box`` (lon/lat bounds) is shared by iter_streets."""
    seq = np.random.SeedSequence(config.seed)
    r_lattice, r_cells, r_build, r_hh, r_people, r_roles, r_inc, r_names = (
        np.random.default_rng(s) for s in seq.spawn(8)
    )
    plan = _plan_sizes(config)
    nb, n_comm = plan.nb, config.communities
    lon0, lat0 = config.origin
    kx, ky = _degrees_per_metre(lat0)

    def to_lonlat(geoms: np.ndarray) -> np.ndarray:
        """Local metres → lon/lat (affine, so shared vertices stay identical)."""
        scale, shift = np.array([kx, ky]), np.array([lon0, lat0])
        return shapely.transform(geoms, lambda c: c * scale + shift)

    # ---- lattice of road centre-line vertices ----------------------------------------------
    nx, ny = plan.ncx * nb, plan.ncy * nb
    b = plan.side / nb
    wx = r_lattice.uniform(1 - WIDTH_VARIATION, 1 + WIDTH_VARIATION, nx)
    wy = r_lattice.uniform(1 - WIDTH_VARIATION, 1 + WIDTH_VARIATION, ny)
    xs = np.concatenate([[0.0], np.cumsum(wx * (nx * b / wx.sum()))])
    ys = np.concatenate([[0.0], np.cumsum(wy * (ny * b / wy.sum()))])
    xs[-1], ys[-1] = nx * b, ny * b
    vx = xs[:, None] + r_lattice.uniform(-plan.jitter, plan.jitter, (nx + 1, ny + 1))
    vy = ys[None, :] + r_lattice.uniform(-plan.jitter, plan.jitter, (nx + 1, ny + 1))
    vx[0, 0] = vy[0, 0] = 0.0  # the origin is the street's south-west corner
    road_ns = _unique_names(r_names, list(ROAD_NAMES), nx + 1, "{}路")
    road_ew = _unique_names(r_names, list(ROAD_NAMES), ny + 1, "{}街")

    # ---- communities, blocks and cells (index space) ---------------------------------------
    comm_names = _unique_names(r_names, list(PLACE_NAMES), n_comm, "{}社区")
    comm_codes = [config.street_code + f"{i + 1:03d}" for i in range(n_comm)]
    k = plan.cells
    h_target = config.households_per_community

    blk_i, blk_j, blk_comm, blk_cell, blk_kind = [], [], [], [], []
    cell_comm: list[int] = []
    cell_targets: list[np.ndarray] = []
    for c in range(n_comm):
        crow, ccol = divmod(c, plan.ncx)  # reading order from the north-west
        i0, j0 = ccol * nb, (plan.ncy - 1 - crow) * nb
        rows = _cell_rows(k, nb)
        band_h = _split_even(r_cells, nb, rows)
        per_row = _split_even(r_cells, k, rows)
        local = np.empty((nb, nb), dtype=np.int64)  # [i (west→east), j (south→north)]
        top = nb
        first = 0
        for band, ncell in zip(band_h, per_row, strict=True):
            widths = _split_even(r_cells, nb, int(ncell))
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
        for flat in r_cells.permutation(nb * nb):
            if not specials:
                break
            bi, bj = divmod(int(flat), nb)
            cl = local[bi, bj]
            if res_left[cl] >= 2:
                kinds[bi, bj] = specials.pop(0)
                res_left[cl] -= 1
        cell_targets.append(_cell_targets(r_cells, h_target, k, config.cell_target_households))
        ii, jj = np.meshgrid(np.arange(nb), np.arange(nb), indexing="ij")
        blk_i.append((i0 + ii).ravel())
        blk_j.append((j0 + jj).ravel())
        blk_comm.append(np.full(nb * nb, c))
        blk_cell.append((local + len(cell_comm)).ravel())
        blk_kind.append(kinds.ravel())
        cell_comm.extend([c] * k)
    bi_all = np.concatenate(blk_i)
    bj_all = np.concatenate(blk_j)
    b_comm = np.concatenate(blk_comm)
    b_cell = np.concatenate(blk_cell)
    b_kind = np.concatenate(blk_kind)
    n_blocks = len(bi_all)
    cell_comm_arr = np.asarray(cell_comm)

    corners = np.stack(
        [
            np.stack([vx[bi_all, bj_all], vy[bi_all, bj_all]], -1),
            np.stack([vx[bi_all + 1, bj_all], vy[bi_all + 1, bj_all]], -1),
            np.stack([vx[bi_all + 1, bj_all + 1], vy[bi_all + 1, bj_all + 1]], -1),
            np.stack([vx[bi_all, bj_all + 1], vy[bi_all, bj_all + 1]], -1),
        ],
        axis=1,
    )  # (n_blocks, 4, 2): SW, SE, NE, NW
    block_polys = shapely.polygons(corners)
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
    # household targets: each cell's total spread over some of its residential blocks, by
    # usable area; a sparse cell leaves blocks vacant (open land) rather than scatter houses
    rect_area = np.clip(rects[:, 2] - rects[:, 0], 0, None) * np.clip(
        rects[:, 3] - rects[:, 1], 0, None
    )
    cell_t = np.concatenate(cell_targets)
    block_cap = np.floor(
        (1 - MAX_VACANCY)
        * TOWER_MAX_CAPACITY
        * _tower_slots(rects[:, 2] - rects[:, 0], rects[:, 3] - rects[:, 1])
    ).astype(np.int64)
    b_target = np.zeros(n_blocks, dtype=np.int64)
    cell_order = np.argsort(b_cell, kind="stable")
    cell_bounds = np.searchsorted(b_cell[cell_order], np.arange(len(cell_comm_arr) + 1))
    for cl in range(len(cell_comm_arr)):
        members = cell_order[cell_bounds[cl] : cell_bounds[cl + 1]]
        res = members[b_kind[members] == RESIDENTIAL]
        n_used = max(1, min(len(res), round(cell_t[cl] / 40)))
        if n_used < len(res):
            vacant = r_cells.choice(res, len(res) - n_used, replace=False)
            b_kind[vacant] = PARK
            res = np.setdiff1d(res, vacant)
        weights = rect_area[res] * r_cells.uniform(0.6, 1.4, len(res))
        b_target[res] = _fill(int(cell_t[cl]), weights + 1e-9, block_cap[res])
        b_kind[res[b_target[res] == 0]] = PARK

    # ---- estates and buildings ---------------------------------------------------------
    res_blocks = np.flatnonzero(b_kind == RESIDENTIAL)
    estate_names = _unique_estate_names(r_names, len(res_blocks))
    estate_of_block = np.full(n_blocks, -1)
    estate_of_block[res_blocks] = np.arange(len(res_blocks))
    estate_addr = []
    for e, blk in enumerate(res_blocks):
        road = road_ew[bj_all[blk]] if r_build.random() < 0.5 else road_ns[bi_all[blk]]
        estate_addr.append(f"{road}{2 * int(r_build.integers(1, 150)) + 1}号{estate_names[e]}")

    city = CITY_NAMES.get(config.district_code[:4], "")
    district_name = DISTRICT_NAMES.get(config.district_code, "示范区")
    addr_prefix = f"{city}{district_name}{config.street_name}"

    bl_cx, bl_cy, bl_len, bl_dep, bl_ang = [], [], [], [], []
    bl_block, bl_estate, bl_name, bl_addr, bl_kind, bl_struct = [], [], [], [], [], []
    bl_levels, bl_units, bl_cap, bl_hh = [], [], [], []
    shortfall = 0
    carry, carry_cell = 0, -1
    for blk in cell_order:
        kind = int(b_kind[blk])
        rect = tuple(rects[blk])
        if carry and b_cell[blk] != carry_cell:
            shortfall += carry
            carry = 0
        if kind == RESIDENTIAL:
            target = int(b_target[blk]) + carry
            carry = 0
            if target <= 0:
                continue
            if target < 120:
                style = "slab" if r_build.random() < 0.85 else "mixed"
            elif target < 400:
                style = str(r_build.choice(["slab", "mixed", "tower"], p=[0.5, 0.35, 0.15]))
            else:
                style = "mixed" if r_build.random() < 0.5 else "tower"
            styles = [style] + [s for s in ("mixed", "tower", "dense") if s != style]
            placed = None
            for st in styles:
                bplan = _plan_residential(r_build, target, st)
                bplan.sort(key=lambda t: t[0] != "tower")
                sizes = [(t[3], t[4]) for t in bplan]
                placed = _layout(r_build, sizes, rect, [t[0] == "tower" for t in bplan])
                if placed is not None:
                    break
            if placed is None:  # very dense: keep the buildings that fit, row by row
                while bplan and placed is None:
                    bplan.pop()
                    sizes = [(t[3], t[4]) for t in bplan]
                    placed = _layout(r_build, sizes, rect, [t[0] == "tower" for t in bplan])
                placed = placed or []
            caps = np.array([(4 if t[0] == "tower" else 2) * t[1] * t[2] for t in bplan])
            if len(caps):
                hh = _largest_remainder(min(target, int(caps.sum())), caps)
            else:
                hh = np.zeros(0, dtype=np.int64)
            carry, carry_cell = target - int(hh.sum()), int(b_cell[blk])
            e = int(estate_of_block[blk])
            for n_b, (t, (cx, cy, ang)) in enumerate(zip(bplan, placed, strict=True)):
                bl_cx.append(cx)
                bl_cy.append(cy)
                bl_len.append(t[3])
                bl_dep.append(t[4])
                bl_ang.append(ang)
                bl_block.append(blk)
                bl_estate.append(e)
                bl_name.append(f"{n_b + 1}栋")
                bl_addr.append(f"{addr_prefix}{estate_addr[e]}{n_b + 1}栋")
                bl_kind.append("residential")
                bl_struct.append(t[0])
                bl_levels.append(t[1])
                bl_units.append(t[2])
                bl_cap.append(int(caps[n_b]))
                bl_hh.append(int(hh[n_b]))
        elif PUBLIC_BUILDINGS[kind]:
            specs = PUBLIC_BUILDINGS[kind]
            placed = None
            for scale in (1.0, 0.75, 0.5):
                sizes = [(s[2] * scale, s[3] * scale) for s in specs]
                placed = _layout(r_build, sizes, rect, [False] * len(specs), rotate=False)
                if placed is not None:
                    break
            if placed is None:
                continue
            cname = comm_names[b_comm[blk]].removesuffix("社区")
            road = road_ns[bi_all[blk]]
            number = 2 * int(r_build.integers(1, 150))
            for s_i, (spec, (cx, cy, ang)) in enumerate(zip(specs, placed, strict=True)):
                bl_cx.append(cx)
                bl_cy.append(cy)
                bl_len.append(sizes[s_i][0])
                bl_dep.append(sizes[s_i][1])
                bl_ang.append(ang)
                bl_block.append(blk)
                bl_estate.append(-1)
                bl_name.append(spec[1].format(c=cname, r=road.removesuffix("路")))
                bl_addr.append(f"{addr_prefix}{road}{number + 2 * s_i}号")
                bl_kind.append(spec[0])
                bl_struct.append(None)
                lo, hi = spec[4]
                bl_levels.append(int(r_build.integers(lo, hi + 1)))
                bl_units.append(0)
                bl_cap.append(0)
                bl_hh.append(0)
    shortfall += carry
    if shortfall:
        logger.warning("%d households did not fit their blocks and were dropped", shortfall)

    cx, cy = np.asarray(bl_cx), np.asarray(bl_cy)
    half_l, half_d = np.asarray(bl_len) / 2, np.asarray(bl_dep) / 2
    ang = np.radians(np.asarray(bl_ang))
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
    bld_polys = shapely.polygons(bcoords) if n_bld else np.empty(0, dtype=object)
    bld_block = np.asarray(bl_block, dtype=np.int64)
    bld_comm = b_comm[bld_block] if n_bld else np.empty(0, dtype=np.int64)
    bld_cell = b_cell[bld_block] if n_bld else np.empty(0, dtype=np.int64)
    bld_estate = np.asarray(bl_estate, dtype=np.int64)
    bld_levels = np.asarray(bl_levels, dtype=np.int64)
    bld_units = np.asarray(bl_units, dtype=np.int64)
    bld_cap = np.asarray(bl_cap, dtype=np.int64)
    bld_hh = np.asarray(bl_hh, dtype=np.int64)
    bld_pf = np.where(np.asarray(bl_struct, dtype=object) == "tower", 4, 2)

    # ---- polygons: blocks → cells → communities → street ------------------------------------
    cell_polys = np.array(
        [
            shapely.coverage_union_all(block_polys[cell_order[cell_bounds[c] : cell_bounds[c + 1]]])
            for c in range(len(cell_comm_arr))
        ],
        dtype=object,
    )
    comm_polys = np.array(
        [shapely.coverage_union_all(cell_polys[cell_comm_arr == c]) for c in range(n_comm)],
        dtype=object,
    )
    street_poly = shapely.coverage_union_all(comm_polys)
    estate_polys = shapely.buffer(
        block_polys[res_blocks], -ROAD_HALF_WIDTH, join_style="mitre", mitre_limit=10.0
    )

    # ---- households (vectorised over dwellings) ------------------------------------------
    starts = np.concatenate([[0], np.cumsum(bld_cap)])
    n_dw = int(starts[-1])
    dw_b = np.repeat(np.arange(n_bld), bld_cap)
    dw_d = np.arange(n_dw) - starts[dw_b]
    key = r_hh.random(n_dw)
    o = np.lexsort((key, dw_b))
    occupied = np.zeros(n_dw, dtype=bool)
    occupied[o[(np.arange(n_dw) - starts[dw_b[o]]) < bld_hh[dw_b[o]]]] = True
    h_b = dw_b[occupied]  # already sorted by building, then dwelling
    h_d = dw_d[occupied]
    per_unit = bld_levels[h_b] * bld_pf[h_b]
    unit_no = h_d // per_unit + 1
    floor_no = (h_d % per_unit) // bld_pf[h_b] + 1
    door_no = h_d % bld_pf[h_b] + 1
    n_hh = len(h_b)
    h_comm = bld_comm[h_b]
    h_cell = bld_cell[h_b]
    comm_hh = np.bincount(h_comm, minlength=n_comm)

    def per_comm(ref: float) -> np.ndarray:
        """Per-community count scaled from a 象山社区 figure."""
        return np.array([round(ref * h / REF_HOUSEHOLDS) for h in comm_hh], dtype=np.int64)

    floating = _pick(r_hh, h_comm, per_comm(REF_FLOATING_HOUSEHOLDS))
    elderly = _pick(
        r_hh, h_comm, per_comm(FLAG_RATES["elderly_alone"] * REF_HOUSEHOLDS), eligible=~floating
    )
    disabled = _pick(r_hh, h_comm, per_comm(FLAG_RATES["disabled"] * REF_HOUSEHOLDS))
    low_income = _pick(
        r_hh,
        h_comm,
        per_comm(FLAG_RATES["low_income"] * REF_HOUSEHOLDS),
        weights=1.0 + 2.0 * (elderly | disabled),
    )
    extreme = _pick(
        r_hh,
        h_comm,
        per_comm(FLAG_RATES["extreme_poverty"] * REF_HOUSEHOLDS),
        weights=1.0 + 4.0 * (elderly | disabled),
        eligible=~floating,
    )
    rental = r_hh.random(n_hh) < np.where(floating, RENTAL_GIVEN_FLOATING, RENTAL_GIVEN_SETTLED)

    sizes = np.empty(n_hh, dtype=np.int64)
    sizes[elderly] = np.where(r_hh.random(int(elderly.sum())) < 0.6, 1, 2)
    sizes[floating] = r_hh.choice(
        [1, 2, 3, 4, 5], int(floating.sum()), p=[0.3, 0.3, 0.25, 0.12, 0.03]
    )
    settled = ~(elderly | floating)
    sizes[settled] = r_hh.choice(
        [1, 2, 3, 4, 5, 6], int(settled.sum()), p=[0.08, 0.22, 0.30, 0.24, 0.11, 0.05]
    )
    res_target = per_comm(REF_RESIDENTS)
    adjustable = settled | floating
    for _ in range(20):  # nudge sizes by ±1 so each community hits its resident total
        diff = res_target - np.bincount(h_comm, weights=sizes, minlength=n_comm).astype(np.int64)
        if not diff.any():
            break
        up = _pick(r_hh, h_comm, np.maximum(diff, 0), eligible=adjustable & (sizes < 7))
        down = _pick(r_hh, h_comm, np.maximum(-diff, 0), eligible=adjustable & (sizes > 1))
        sizes += up.astype(np.int64) - down.astype(np.int64)

    # ---- persons (vectorised over residents) ---------------------------------------------
    year = config.as_of.year
    n_res = int(sizes.sum())
    p_h = np.repeat(np.arange(n_hh), sizes)
    h_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    member = np.arange(n_res) - h_start[p_h]
    rp = r_people
    head_age = np.where(
        elderly,
        rp.integers(66, 93, n_hh),
        np.where(
            floating,
            np.clip(rp.normal(35, 8, n_hh), 20, 62),
            np.clip(rp.normal(50, 13, n_hh), 25, 88),
        ),
    ).astype(np.int64)
    head_male = rp.random(n_hh) < np.where(elderly, 0.4, 0.6)
    head_surname = rp.choice(len(SURNAMES), n_hh, p=_zipf(len(SURNAMES)))
    is_child = rp.random(n_res) < 0.8
    age = head_age[p_h].copy()
    spouse = member == 1
    age[spouse] += np.round(rp.normal(0, 3, int(spouse.sum()))).astype(np.int64)
    age[spouse] = np.maximum(age[spouse], 20)
    other = member >= 2
    child = other & is_child
    parent = other & ~is_child
    age[child] = np.maximum(0, age[child] - rp.integers(22, 37, int(child.sum())))
    age[parent] = np.minimum(99, age[parent] + rp.integers(22, 33, int(parent.sum())))
    male = np.where(member == 0, head_male[p_h], rp.random(n_res) < 0.5)
    male[spouse] = ~head_male[p_h[spouse]]
    male[parent] = rp.random(int(parent.sum())) < 0.4
    surname = np.where(
        (member == 0) | child | (parent & head_male[p_h]),
        head_surname[p_h],
        rp.choice(len(SURNAMES), n_res, p=_zipf(len(SURNAMES))),
    )
    names = _person_names(rp, np.asarray(SURNAMES)[surname], male)
    birth_year = year - age
    p_comm = h_comm[p_h]
    p_cell = h_cell[p_h]
    p_bld = h_b[p_h]

    party = np.full(n_res, None, dtype=object)
    is_party = np.zeros(n_res, dtype=bool)
    for status, ref, elig, wts in (
        ("in_service", REF_PARTY_IN_SERVICE, (age >= 23) & (age <= 59), None),
        ("retired", REF_PARTY_RETIRED, age >= 60, None),
        ("floating", REF_PARTY_FLOATING, floating[p_h] & (age >= 20) & (age <= 55), None),
        ("direct", REF_PARTY_DIRECT, age >= 18, 1.0 + (age >= 55)),
    ):
        got = _pick(rp, p_comm, per_comm(ref), weights=wts, eligible=elig & ~is_party)
        party[got] = status
        is_party |= got

    team_comm = np.repeat(np.arange(n_comm), len(VOLUNTEER_TEAMS))
    team_kind = np.tile([t[0] for t in VOLUNTEER_TEAMS], n_comm)
    team_name = [comm_names[c] + t[1] for c in range(n_comm) for t in VOLUNTEER_TEAMS]
    team_keys = _keys(f"{config.street_code}-t", len(team_comm), 4)
    p_team = np.full(n_res, None, dtype=object)
    is_volunteer = np.zeros(n_res, dtype=bool)
    vol_total = per_comm(REF_VOLUNTEERS)
    team_sizes = np.stack(
        [_largest_remainder(int(v), np.array([t[2] for t in VOLUNTEER_TEAMS])) for v in vol_total]
    )  # (n_comm, n_teams)
    adult = (age >= 18) & (age <= 75)
    female = ~male
    team_rules = {
        "party": (adult, 1.0 + 1e6 * is_party),
        "elderly": ((age >= 55) & (age <= 78), 1.0 + ((age >= 60) & (age <= 72))),
        "women": (female & (age >= 20) & (age <= 65), None),
        "housekeeping": ((age >= 25) & (age <= 65), 1.0 + 2.0 * female),
        "public_security": ((age >= 25) & (age <= 70), 1.0 + 3.0 * male),
    }
    for t_i, (kind, _name, _share) in enumerate(VOLUNTEER_TEAMS):
        elig, wts = team_rules[kind]
        got = _pick(rp, p_comm, team_sizes[:, t_i], weights=wts, eligible=elig & ~is_volunteer)
        p_team[got] = team_keys[p_comm[got] * len(VOLUNTEER_TEAMS) + t_i]
        is_volunteer |= got

    # ---- roles ----------------------------------------------------------------------
    n_cells = len(cell_comm_arr)
    leader = _pick(
        r_roles,
        p_cell,
        np.ones(n_cells, dtype=np.int64),
        weights=1.0 + 20.0 * is_party,
        eligible=(age >= 30) & (age <= 65),
    )
    part_quota = (r_roles.random(n_cells) < 0.5).astype(np.int64)
    part_time = _pick(
        r_roles,
        p_cell,
        part_quota,
        weights=1.0 + 3.0 * (is_volunteer | is_party),
        eligible=(age >= 25) & (age <= 65) & ~leader,
    )
    res_bld = np.flatnonzero(bld_hh > 0)
    cap_quota = np.zeros(n_bld, dtype=np.int64)
    cap_quota[res_bld] = r_roles.random(len(res_bld)) < 0.6
    captain = _pick(
        r_roles,
        p_bld,
        cap_quota,
        weights=1.0 + 4.0 * is_party + 2.0 * (age >= 55),
        eligible=(age >= 35) & (age <= 78) & ~leader & ~part_time,
    )
    # full-time grid workers are community staff, not residents: one per cell
    staff_male = r_roles.random(n_cells) < 0.45
    staff_names = _person_names(
        r_roles,
        np.asarray(SURNAMES)[r_roles.choice(len(SURNAMES), n_cells, p=_zipf(len(SURNAMES)))],
        staff_male,
    )
    staff_birth = year - r_roles.integers(24, 46, n_cells)
    # a cell with no eligible resident still gets exactly one leader: a second staff member
    led = np.zeros(n_cells, dtype=bool)
    led[p_cell[leader]] = True
    lack = np.flatnonzero(~led)

    person_keys = _keys(f"{config.street_code}-p", n_res + n_cells + len(lack), 7)
    household_keys = _keys(f"{config.street_code}-h", n_hh, 7)
    building_keys = _keys(f"{config.street_code}-b", n_bld, 6)
    estate_keys = _keys(f"{config.street_code}-e", len(res_blocks), 5)
    cell_keys = _keys(f"{config.street_code}-c", n_cells, 4)

    def start_dates(n: int) -> list[date]:
        """Role start dates 30 days to 5 years before as_of."""
        return [config.as_of - timedelta(days=int(d)) for d in r_roles.integers(30, 5 * 365, n)]

    staff_idx = n_res + np.arange(n_cells)
    extra_idx = n_res + n_cells + np.arange(len(lack))
    leader_idx = np.concatenate([np.flatnonzero(leader), extra_idx])
    leader_cell = np.concatenate([p_cell[leader], lack])
    pt_idx = np.flatnonzero(part_time)
    cap_idx = np.flatnonzero(captain)
    roles = pd.DataFrame(
        {
            "person_key": person_keys[np.concatenate([leader_idx, staff_idx, pt_idx, cap_idx])],
            "role": ["leader"] * len(leader_idx)
            + ["grid_worker"] * (n_cells + len(pt_idx))
            + ["building_captain"] * len(cap_idx),
            "cell_key": np.concatenate(
                [
                    cell_keys[leader_cell],
                    cell_keys,
                    cell_keys[p_cell[pt_idx]],
                    np.full(len(cap_idx), None, dtype=object),
                ]
            ),
            "building_key": np.concatenate(
                [
                    np.full(len(leader_idx) + n_cells + len(pt_idx), None, dtype=object),
                    building_keys[p_bld[cap_idx]],
                ]
            ),
            "employment": [None] * len(leader_idx)
            + ["full_time"] * n_cells
            + ["part_time"] * len(pt_idx)
            + [None] * len(cap_idx),
            "starts_on": start_dates(len(leader_idx) + n_cells + len(pt_idx) + len(cap_idx)),
        }
    )
    rank = roles["role"].map({"leader": 0, "grid_worker": 1, "building_captain": 2})
    roles = roles.assign(_rank=rank).sort_values(["_rank", "cell_key"], kind="stable")
    roles = roles.drop(columns="_rank").reset_index(drop=True)

    n_extra = n_cells + len(lack)
    phones = _phones(r_roles, n_res + n_extra)  # unique within the street
    extra_male = np.concatenate([staff_male, r_roles.random(len(lack)) < 0.5])
    extra_names = np.concatenate(
        [
            staff_names,
            _person_names(
                r_roles,
                np.asarray(SURNAMES)[r_roles.choice(len(SURNAMES), len(lack))],
                extra_male[n_cells:],
            ),
        ]
    )
    persons = pd.DataFrame(
        {
            "person_key": person_keys,
            "household_key": np.concatenate(
                [household_keys[p_h], np.full(n_extra, None, dtype=object)]
            ),
            "name": np.concatenate([names, extra_names]),
            "phone": np.concatenate([np.where(age >= 16, phones[:n_res], None), phones[n_res:]]),
            "gender": np.where(np.concatenate([male, extra_male]), "male", "female"),
            "birth_year": np.concatenate(
                [birth_year, staff_birth, year - r_roles.integers(30, 55, len(lack))]
            ).astype(np.int64),
            "party_status": np.concatenate([party, np.full(n_extra, None, dtype=object)]),
            "volunteer_team_key": np.concatenate([p_team, np.full(n_extra, None, dtype=object)]),
        }
    )

    head_idx = h_start
    households = pd.DataFrame(
        {
            "household_key": household_keys,
            "building_key": building_keys[h_b],
            "unit": np.strings.add(unit_no.astype(str), "单元"),
            "room": (floor_no * 100 + door_no).astype(str),
            "size": sizes,
            "head_name": names[head_idx],
            "phone": phones[head_idx],
            "low_income": low_income,
            "elderly_alone": elderly,
            "disabled": disabled,
            "extreme_poverty": extreme,
            "floating": floating,
            "rental": rental,
        }
    )

    volunteer_teams = pd.DataFrame(
        {
            "team_key": team_keys,
            "community_code": np.asarray(comm_codes, dtype=object)[team_comm],
            "name": team_name,
            "kind": team_kind,
        }
    )

    # ---- incidents --------------------------------------------------------------------
    incidents = _incidents(
        r_inc,
        config,
        comm_hh=comm_hh,
        bld_comm=bld_comm,
        bld_hh=bld_hh,
        bld_center=np.stack([cx, cy], -1) if n_bld else np.zeros((0, 2)),
        bld_half=np.stack([half_l, half_d], -1) if n_bld else np.zeros((0, 2)),
        bld_angle=ang,
        bld_label=[
            (estate_names[e] if e >= 0 else "") + n for e, n in zip(bl_estate, bl_name, strict=True)
        ],
        b_comm=b_comm,
        b_corners=corners,
        b_label=[
            estate_names[estate_of_block[i]] if estate_of_block[i] >= 0 else road_ew[bj_all[i]]
            for i in range(n_blocks)
        ],
        to_lonlat=(kx, ky, lon0, lat0),
    )

    # ---- frames ----------------------------------------------------------------------
    comm_codes_arr = np.asarray(comm_codes, dtype=object)
    communities = gpd.GeoDataFrame(
        {
            "code": comm_codes,
            "name": comm_names,
            "street_code": config.street_code,
        },
        geometry=to_lonlat(_to_multi(comm_polys)),
        crs="EPSG:4326",
    )
    cell_seq = np.arange(n_cells) - np.searchsorted(cell_comm_arr, cell_comm_arr)
    cells = gpd.GeoDataFrame(
        {
            "cell_key": cell_keys,
            "code": [
                f"{comm_codes[c]}{s + 1:03d}" for c, s in zip(cell_comm_arr, cell_seq, strict=True)
            ],
            "name": [
                f"{comm_names[c]}第{s + 1:02d}网格"
                for c, s in zip(cell_comm_arr, cell_seq, strict=True)
            ],
            "community_code": comm_codes_arr[cell_comm_arr],
            "kind": "general",
            "level": 4,
        },
        geometry=to_lonlat(_to_multi(cell_polys)),
        crs="EPSG:4326",
    )
    estates = gpd.GeoDataFrame(
        {
            "estate_key": estate_keys,
            "name": estate_names,
            "community_code": comm_codes_arr[b_comm[res_blocks]],
        },
        geometry=to_lonlat(_to_multi(estate_polys)),
        crs="EPSG:4326",
    )
    buildings = gpd.GeoDataFrame(
        {
            "building_key": building_keys,
            "estate_key": np.where(bld_estate >= 0, estate_keys[np.maximum(bld_estate, 0)], None)
            if n_bld
            else np.empty(0, dtype=object),
            "community_code": comm_codes_arr[bld_comm],
            "name": np.asarray(bl_name, dtype=object),
            "address": np.asarray(bl_addr, dtype=object),
            "building": np.asarray(bl_kind, dtype=object),
            "structure": np.asarray(bl_struct, dtype=object),
            "levels": bld_levels,
            "units": bld_units,
            "households": bld_hh,
        },
        geometry=to_lonlat(_to_multi(bld_polys)),
        crs="EPSG:4326",
    )

    street_geom = to_lonlat(_to_multi(np.array([street_poly], dtype=object)))[0]
    if district_box is None:
        x0, y0, x1, y1 = street_geom.bounds
        pad_x, pad_y = 300 * kx, 300 * ky
        district_box = (x0 - pad_x, y0 - pad_y, x1 + pad_x, y1 + pad_y)
    district_geom = shapely.MultiPolygon([shapely.box(*district_box)])
    return SynthStreet(
        district={
            "code": config.district_code,
            "name": district_name,
            "geometry": district_geom,
        },
        street={
            "code": config.street_code,
            "name": config.street_name,
            "district_code": config.district_code,
            "geometry": street_geom,
        },
        communities=communities,
        estates=estates,
        cells=cells,
        buildings=buildings,
        households=households,
        persons=persons,
        volunteer_teams=volunteer_teams,
        roles=roles,
        incidents=incidents,
    )


def _zipf(n: int) -> np.ndarray:
    """Surname frequencies: a gentle Zipf over the list order (王, 李, 张 … most common)."""
    w = 1.0 / (np.arange(n) + 4.0)
    return w / w.sum()


def _person_names(rng: np.random.Generator, surnames: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Given names of one or two characters after each surname, by gender."""
    n = len(surnames)
    m_chars, f_chars = np.asarray(MALE_CHARS), np.asarray(FEMALE_CHARS)
    first = np.where(
        male, m_chars[rng.integers(0, len(m_chars), n)], f_chars[rng.integers(0, len(f_chars), n)]
    )
    second = np.where(
        male, m_chars[rng.integers(0, len(m_chars), n)], f_chars[rng.integers(0, len(f_chars), n)]
    )
    second = np.where(rng.random(n) < 0.75, second, "")
    return np.strings.add(np.strings.add(surnames.astype(str), first), second).astype(object)


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct random mobile-style numbers 1[3-9]xxxxxxxxx (synthetic, not looked up)."""
    num = 10**10 + rng.integers(3, 10, n) * 10**9 + rng.integers(0, 10**9, n)
    while True:
        _, first = np.unique(num, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            return num.astype(str).astype(object)
        num[dup] = (
            10**10
            + rng.integers(3, 10, int(dup.sum())) * 10**9
            + rng.integers(0, 10**9, int(dup.sum()))
        )


def _incidents(
    rng: np.random.Generator,
    config: SynthConfig,
    *,
    comm_hh: np.ndarray,
    bld_comm: np.ndarray,
    bld_hh: np.ndarray,
    bld_center: np.ndarray,
    bld_half: np.ndarray,
    bld_angle: np.ndarray,
    bld_label: list[str],
    b_comm: np.ndarray,
    b_corners: np.ndarray,
    b_label: list[str],
    to_lonlat: tuple[float, float, float, float],
) -> pd.DataFrame:
    """A year of incidents ending at ``config.as_of``, located in blocks or near buildings."""
    n_per = np.round(comm_hh * config.incidents_per_household_year).astype(np.int64)
    inc_comm = np.repeat(np.arange(len(comm_hh)), n_per)
    n = len(inc_comm)
    near_building = rng.random(n) < 0.8
    # near a building: choose by households (+ a little weight for public buildings)
    bw = bld_hh + 15.0
    x = np.empty(n)
    y = np.empty(n)
    labels = np.empty(n, dtype=object)
    for c in range(len(comm_hh)):
        rows = np.flatnonzero(inc_comm == c)
        nb_rows = rows[near_building[rows]]
        cand = np.flatnonzero(bld_comm == c)
        if len(cand) == 0:
            nb_rows, near_building[rows] = nb_rows[:0], False
        else:
            pick = cand[rng.choice(len(cand), len(nb_rows), p=bw[cand] / bw[cand].sum())]
            u = rng.uniform(-1, 1, (len(nb_rows), 2)) * (bld_half[pick] + 6.0)
            ca, sa = np.cos(bld_angle[pick]), np.sin(bld_angle[pick])
            x[nb_rows] = bld_center[pick, 0] + u[:, 0] * ca - u[:, 1] * sa
            y[nb_rows] = bld_center[pick, 1] + u[:, 0] * sa + u[:, 1] * ca
            labels[nb_rows] = [bld_label[i] for i in pick]
        free = rows[~near_building[rows]]
        blocks = np.flatnonzero(b_comm == c)
        pick = blocks[rng.integers(0, len(blocks), len(free))]
        s, t = rng.uniform(0.03, 0.97, (2, len(free)))
        q = b_corners[pick]  # bilinear point in the (convex) block quad
        pt = (
            q[:, 0] * ((1 - s) * (1 - t))[:, None]
            + q[:, 1] * (s * (1 - t))[:, None]
            + q[:, 2] * (s * t)[:, None]
            + q[:, 3] * ((1 - s) * t)[:, None]
        )
        x[free], y[free] = pt[:, 0], pt[:, 1]
        labels[free] = [
            b_label[i] + "附近" if not b_label[i].endswith(("街", "路")) else b_label[i]
            for i in pick
        ]

    cats = INCIDENT_CATEGORIES
    cat = rng.choice(len(cats), n, p=[c[1] for c in cats])
    tmpl = rng.integers(0, 1000, n)
    description = [
        cats[c][3][t % len(cats[c][3])].format(loc=loc)
        for c, t, loc in zip(cat, tmpl, labels, strict=True)
    ]
    reporter = rng.choice(
        [r[0] for r in REPORTER_KINDS], n, p=[r[1] for r in REPORTER_KINDS]
    ).astype(object)

    end = pd.Timestamp(config.as_of).tz_localize(INCIDENT_TZ)
    try:
        start_day = config.as_of.replace(year=config.as_of.year - 1)
    except ValueError:  # 29 February
        start_day = config.as_of.replace(year=config.as_of.year - 1, day=28)
    start = pd.Timestamp(start_day).tz_localize(INCIDENT_TZ)
    span_days = (end - start).days
    day = rng.integers(0, span_days, n)
    hour = np.clip(rng.normal(13.5, 3.5, n), 0, 23.99)
    offset_s = day * 86400 + (hour * 3600).astype(np.int64)
    reported = start + pd.to_timedelta(offset_s, unit="s")
    mean_days = np.array([c[2] for c in cats])[cat]
    duration_s = (rng.lognormal(0.0, 0.8, n) * mean_days * 86400).astype(np.int64)
    closed = reported + pd.to_timedelta(duration_s, unit="s")
    elapsed = (end - reported).total_seconds().to_numpy()
    progress = elapsed / duration_s
    done = (closed < end) & (rng.random(n) < 0.98)
    status = np.select(
        [done, progress < 0.15, progress < 0.4, progress < 0.75],
        ["closed", "filed", "dispatched", "handled"],
        default="verified",
    ).astype(object)
    closed_at = pd.Series(closed).where(done)

    kx, ky, lon0, lat0 = to_lonlat
    order = np.argsort(offset_s, kind="stable")  # rows in time order
    frame = pd.DataFrame(
        {
            "lon": lon0 + x * kx,
            "lat": lat0 + y * ky,
            "category": np.array([c[0] for c in cats], dtype=object)[cat],
            "description": description,
            "status": status,
            "reporter_kind": reporter,
            "reported_at": pd.Series(reported),
            "closed_at": closed_at,
        }
    ).iloc[order]
    frame.insert(0, "incident_key", _keys(f"{config.street_code}-i", n, 6))
    return frame.reset_index(drop=True)
