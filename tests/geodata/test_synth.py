"""Tests for geodata.synth: the deterministic synthetic 街道 generator."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from geodata.synth import SynthConfig, SynthStreet, generate_street, iter_streets

FRAMES = ("communities", "estates", "cells", "buildings")
TABLES = ("households", "persons", "volunteer_teams", "roles", "incidents")


@pytest.fixture(scope="module")
def street() -> SynthStreet:
    """The default street: 3 communities of the 象山社区 report's size."""
    return generate_street()


def _cell_households(s: SynthStreet) -> pd.Series:
    """Households per cell, counting each building in the cell holding its centroid."""
    pts = s.buildings[["households", "geometry"]].copy()
    pts["geometry"] = shapely.centroid(pts.geometry.to_numpy())
    joined = pts.sjoin(s.cells[["cell_key", "geometry"]], predicate="within", how="left")
    assert joined["cell_key"].notna().all(), "a building centroid lies in no cell"
    assert len(joined) == len(pts), "a building centroid lies in two cells"
    return joined.groupby("cell_key")["households"].sum().reindex(s.cells["cell_key"], fill_value=0)


def _person_community(s: SynthStreet) -> pd.Series:
    """Community code of every resident (persons with a household)."""
    hh = s.households.merge(s.buildings[["building_key", "community_code"]], on="building_key")
    res = s.persons.dropna(subset=["household_key"])
    return res.merge(hh[["household_key", "community_code"]], on="household_key")


def _assert_tiles(parts: np.ndarray, whole: shapely.Geometry) -> None:
    """Parts form a valid coverage whose union is the whole."""
    assert shapely.coverage_is_valid(parts), shapely.coverage_invalid_edges(parts)
    union = shapely.coverage_union_all(parts)
    assert abs(union.area - whole.area) <= 1e-6 * whole.area
    assert shapely.symmetric_difference(union, whole).area <= 1e-9 * whole.area


# ------------------------------------------------------------------- determinism ----


def test_same_config_gives_identical_street(street: SynthStreet) -> None:
    """The same config yields identical frames, dicts and geometries."""
    again = generate_street(SynthConfig())
    for name in FRAMES:
        assert_geodataframe_equal(getattr(street, name), getattr(again, name))
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(street, name), getattr(again, name))
    for name in ("district", "street"):
        a, b = getattr(street, name), getattr(again, name)
        assert {k: v for k, v in a.items() if k != "geometry"} == {
            k: v for k, v in b.items() if k != "geometry"
        }
        assert shapely.equals_exact(a["geometry"], b["geometry"], tolerance=0)


def test_other_seed_gives_other_street(street: SynthStreet) -> None:
    """Another seed yields different geometry, people and incidents."""
    other = generate_street(SynthConfig(seed=7))
    assert not street.cells.geometry.geom_equals_exact(other.cells.geometry, 0).all()
    assert street.households["head_name"].tolist() != other.households["head_name"].tolist()
    assert street.incidents["reported_at"].tolist() != other.incidents["reported_at"].tolist()


# ---------------------------------------------------------------------- geometry ----


def test_frames_are_epsg4326_valid_multipolygons_near_origin(street: SynthStreet) -> None:
    """All layers are valid EPSG:4326 MultiPolygons placed at the configured origin."""
    lon0, lat0 = SynthConfig().origin
    for name in FRAMES:
        gdf = getattr(street, name)
        assert gdf.crs.to_epsg() == 4326, name
        assert len(gdf) > 0, name
        assert (gdf.geom_type == "MultiPolygon").all(), name
        assert gdf.is_valid.all(), name
    for d in (street.district, street.street):
        assert d["geometry"].geom_type == "MultiPolygon" and d["geometry"].is_valid
    x0, y0, x1, y1 = street.street["geometry"].bounds
    assert abs(x0 - lon0) < 0.005 and abs(y0 - lat0) < 0.005  # origin is the SW corner
    assert x1 - x0 < 0.1 and y1 - y0 < 0.1
    assert street.district["geometry"].contains(street.street["geometry"])
    assert street.district["code"] == "320102" and street.district["name"] == "玄武区"


def test_communities_tile_the_street(street: SynthStreet) -> None:
    """Communities cover the street with no gaps or overlaps and differ in shape."""
    comms = street.communities
    assert len(comms) == 3
    assert comms["code"].tolist() == ["320102001001", "320102001002", "320102001003"]
    assert (comms["street_code"] == "320102001").all()
    assert comms["name"].is_unique and comms["name"].str.endswith("社区").all()
    _assert_tiles(comms.geometry.to_numpy(), street.street["geometry"])
    # about 1.5 km² each, and not identical rectangles
    areas = comms.to_crs(32650).area / 1e6
    assert areas.between(1.2, 1.8).all(), areas.tolist()
    assert areas.round(3).nunique() == 3
    assert all(len(shapely.get_coordinates(g)) > 5 for g in comms.geometry)


def test_cells_tile_each_community_as_single_polygons(street: SynthStreet) -> None:
    """Cells tile each community exactly; each cell is one contiguous polygon."""
    cells = street.cells
    assert cells["cell_key"].is_unique and cells["code"].is_unique
    assert (cells["kind"] == "general").all() and (cells["level"] == 4).all()
    for comm in street.communities.itertuples():
        parts = cells.loc[cells["community_code"] == comm.code, "geometry"].to_numpy()
        assert 8 <= len(parts) <= 14
        _assert_tiles(parts, comm.geometry)
    assert (cells.geometry.apply(lambda g: len(g.geoms)) == 1).all()
    assert cells["name"].str.match(r"^.+社区第\d{2}网格$").all()


def test_every_cell_holds_200_to_500_households(street: SynthStreet) -> None:
    """Each initial cell holds 200–500 households (by building centroid)."""
    per_cell = _cell_households(street)
    assert per_cell.between(200, 500).all(), per_cell.describe()
    assert per_cell.sum() == len(street.households)


def test_cell_codes_number_west_to_east_then_north_to_south(street: SynthStreet) -> None:
    """Cell codes follow reading order: rows north→south, west→east within a row."""
    for code, group in street.cells.groupby("community_code"):
        group = group.sort_values("code")
        assert group["code"].str.startswith(code).all()
        assert group["code"].str[-3:].astype(int).tolist() == list(range(1, len(group) + 1))
        rows = 1
        for a, b in itertools.pairwise(group.geometry):
            ca, cb = a.centroid, b.centroid
            same_row = a.bounds[1] < cb.y < a.bounds[3]
            if same_row:
                assert cb.x > ca.x, "within a row, codes run west to east"
            else:
                assert cb.y < a.bounds[1], "a new row starts south of the previous one"
                rows += 1
        assert rows >= 2


def test_buildings_do_not_overlap_and_sit_inside_estate_and_community(
    street: SynthStreet,
) -> None:
    """Buildings are disjoint and lie inside their estate and community."""
    b = street.buildings
    assert b["building_key"].is_unique
    geoms = b.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    assert (left == right).all(), "buildings overlap or touch"
    estates = street.estates.set_index("estate_key")
    in_estate = b.dropna(subset=["estate_key"])
    assert shapely.covered_by(
        in_estate.geometry.to_numpy(), estates.loc[in_estate["estate_key"], "geometry"].to_numpy()
    ).all()
    comms = street.communities.set_index("code")
    assert shapely.covered_by(geoms, comms.loc[b["community_code"], "geometry"].to_numpy()).all()
    assert (
        estates.loc[in_estate["estate_key"], "community_code"].values
        == in_estate["community_code"].values
    ).all()
    # estates do not overlap and have unique realistic names
    e = street.estates.geometry.to_numpy()
    left, right = shapely.STRtree(e).query(e, predicate="overlaps")
    assert len(left) == 0
    assert street.estates["name"].is_unique


def test_building_kinds_and_capacity(street: SynthStreet) -> None:
    """Slabs, towers and public buildings have plausible levels, units and households."""
    b = street.buildings
    res = b[b["building"] == "residential"]
    assert set(res["structure"]) == {"slab", "tower"}
    slabs, towers = res[res["structure"] == "slab"], res[res["structure"] == "tower"]
    assert slabs["levels"].between(5, 7).all() and slabs["units"].between(2, 4).all()
    assert towers["levels"].between(18, 33).all() and towers["units"].between(1, 2).all()
    per_floor = np.where(res["structure"] == "tower", 4, 2)
    capacity = res["levels"] * res["units"] * per_floor
    assert (res["households"] <= capacity).all() and (res["households"] > 0).all()
    assert 0.02 < 1 - res["households"].sum() / capacity.sum() < 0.25  # a little vacancy
    assert res["name"].str.match(r"^\d+栋$").all()
    assert res["address"].str.contains("示范街道").all() and res["address"].str.endswith("栋").all()
    other = b[b["building"] != "residential"]
    assert {"school", "clinic", "market", "office", "community_center"} <= set(other["building"])
    assert (other["households"] == 0).all() and other["estate_key"].isna().all()
    assert other["structure"].isna().all()


# -------------------------------------------------------------------- population ----


def test_households_match_buildings_and_rooms_exist(street: SynthStreet) -> None:
    """Households fill real rooms of their building, as many as the building says."""
    hh = street.households
    assert hh["household_key"].is_unique
    b = street.buildings.set_index("building_key")
    counts = hh["building_key"].value_counts().reindex(b.index, fill_value=0)
    assert (counts == b["households"]).all()
    unit = hh["unit"].str.removesuffix("单元").astype(int)
    floor = hh["room"].astype(int) // 100
    assert (unit >= 1).all() and (unit <= b.loc[hh["building_key"], "units"].values).all()
    assert (floor >= 1).all() and (floor <= b.loc[hh["building_key"], "levels"].values).all()
    assert not hh.duplicated(["building_key", "unit", "room"]).any()
    assert hh["phone"].str.fullmatch(r"1[3-9]\d{9}").all()
    assert hh["head_name"].str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    flags = ["low_income", "elderly_alone", "disabled", "extreme_poverty", "floating", "rental"]
    assert all(hh[f].dtype == bool for f in flags)


def test_heads_are_the_first_person_of_their_household(street: SynthStreet) -> None:
    """The household head is its first person and sizes match the persons."""
    heads = street.persons.dropna(subset=["household_key"]).drop_duplicates("household_key")
    merged = street.households.merge(heads, on="household_key", suffixes=("", "_p"))
    assert (merged["head_name"] == merged["name"]).all()
    sizes = street.persons["household_key"].value_counts()
    assert (
        sizes.reindex(street.households["household_key"]).values == street.households["size"]
    ).all()


def test_each_community_follows_the_xiangshan_report(street: SynthStreet) -> None:
    """Per community: households, residents, flags, party members and volunteers as reported."""
    hh = street.households.merge(
        street.buildings[["building_key", "community_code"]], on="building_key"
    )
    people = _person_community(street)
    for code, g in hh.groupby("community_code"):
        n = len(g)
        assert abs(n - 3275) <= 0.03 * 3275
        assert abs(g["size"].sum() - 9325) <= 0.05 * 9325
        assert abs(g["floating"].sum() - 887) <= 0.10 * 887
        assert 0.10 <= g["rental"].mean() <= 0.20
        assert g.loc[g["floating"], "rental"].mean() > 3 * g.loc[~g["floating"], "rental"].mean()
        assert 0.01 <= g["low_income"].mean() <= 0.03
        assert 0.04 <= g["elderly_alone"].mean() <= 0.08
        assert 0.02 <= g["disabled"].mean() <= 0.04
        assert 0.002 <= g["extreme_poverty"].mean() <= 0.01
        assert g.loc[g["elderly_alone"], "size"].le(2).all()
        p = people[people["community_code"] == code]
        assert len(p) == g["size"].sum()
        party = p["party_status"].value_counts()
        assert abs(party["direct"] - 47) <= 2 and abs(party["in_service"] - 81) <= 2
        assert party.get("floating", 0) > 0 and party.get("retired", 0) > 0
    teams = street.volunteer_teams
    assert len(teams) == 15 and teams["team_key"].is_unique
    for code, t in teams.groupby("community_code"):
        assert set(t["kind"]) == {"party", "elderly", "women", "housekeeping", "public_security"}
        assert t["name"].str.endswith("志愿服务队").all()
        vols = people[people["volunteer_team_key"].isin(t["team_key"])]
        assert len(vols) == 296
        assert (vols["community_code"] == code).all()
        party_team = t.loc[t["kind"] == "party", "team_key"].iloc[0]
        assert vols.loc[vols["volunteer_team_key"] == party_team, "party_status"].notna().all()
        assert vols["party_status"].notna().any() and vols["party_status"].isna().any()


def test_persons_look_plausible(street: SynthStreet) -> None:
    """Persons have Chinese names, unique phones (adults), ages and statuses that fit."""
    p = street.persons
    assert p["person_key"].is_unique
    assert set(p["gender"]) == {"male", "female"}
    age = 2026 - p["birth_year"]
    assert age.between(0, 100).all()
    assert p["name"].str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    adults = p[age >= 16]
    assert adults["phone"].str.fullmatch(r"1[3-9]\d{9}").all()
    assert p.loc[age < 16, "phone"].isna().all()
    assert p["phone"].dropna().is_unique
    statuses = set(p["party_status"].dropna())
    assert statuses == {"in_service", "direct", "floating", "retired"}
    assert (age[p["party_status"].notna()] >= 18).all()
    assert (age[p["volunteer_team_key"].notna()] >= 18).all()


def test_roles_one_leader_per_cell_and_workers(street: SynthStreet) -> None:
    """Each cell has one leader and 1–2 grid workers; captains live in their building."""
    roles = street.roles
    leaders = roles[roles["role"] == "leader"]
    assert leaders["cell_key"].value_counts().reindex(street.cells["cell_key"]).eq(1).all()
    workers = roles[roles["role"] == "grid_worker"]
    per_cell = workers["cell_key"].value_counts().reindex(street.cells["cell_key"])
    assert per_cell.between(1, 2).all()
    assert set(workers["employment"]) == {"full_time", "part_time"}
    captains = roles[roles["role"] == "building_captain"]
    assert captains["cell_key"].isna().all() and captains["building_key"].notna().all()
    assert captains["building_key"].is_unique
    assert set(roles["person_key"]) <= set(street.persons["person_key"])
    assert roles["person_key"].is_unique  # nobody holds two roles
    assert all(isinstance(d, date) and d < SynthConfig().as_of for d in roles["starts_on"])
    # a resident leader or captain lives where they serve
    res = street.persons.dropna(subset=["household_key"]).merge(
        street.households[["household_key", "building_key"]], on="household_key"
    )
    cap = captains.merge(res, on="person_key", suffixes=("", "_home"))
    assert len(cap) == len(captains) and (cap["building_key"] == cap["building_key_home"]).all()
    # full-time workers are staff with no household in the street
    staff = workers[workers["employment"] == "full_time"].merge(street.persons, on="person_key")
    assert staff["household_key"].isna().all()


def test_a_year_of_incidents(street: SynthStreet) -> None:
    """Incidents lie in one cell each, within the year before as_of, with a sane workflow."""
    inc = street.incidents
    assert inc["incident_key"].is_unique
    assert abs(len(inc) - 0.1 * len(street.households)) <= 0.05 * len(inc)
    pts = shapely.points(inc["lon"], inc["lat"])
    assert shapely.contains(street.street["geometry"], pts).all()
    # each point falls inside exactly one cell
    tree = shapely.STRtree(street.cells.geometry.to_numpy())
    hit, _ = tree.query(pts, predicate="within")
    assert np.bincount(hit, minlength=len(pts)).tolist() == [1] * len(pts)
    as_of = pd.Timestamp(SynthConfig().as_of).tz_localize("Asia/Shanghai")
    start = pd.Timestamp(date(2025, 11, 1)).tz_localize("Asia/Shanghai")
    assert str(inc["reported_at"].dt.tz) == "Asia/Shanghai"
    assert inc["reported_at"].between(start, as_of, inclusive="left").all()
    assert inc["reported_at"].is_monotonic_increasing
    closed = inc["status"] == "closed"
    assert (inc["closed_at"].notna() == closed).all()
    assert (inc.loc[closed, "closed_at"] > inc.loc[closed, "reported_at"]).all()
    assert (inc.loc[closed, "closed_at"] < as_of).all()
    assert set(inc["status"]) <= {"filed", "dispatched", "handled", "verified", "closed"}
    old = inc["reported_at"] < as_of - timedelta(days=60)
    assert (inc.loc[old, "status"] == "closed").mean() > 0.9
    assert set(inc["category"]) == {
        "dispute", "public_order", "safety", "sanitation", "municipal", "livelihood",
        "floating_population", "other",
    }  # fmt: skip
    assert set(inc["reporter_kind"]) == {"resident", "leader", "grid_worker", "public"}
    assert inc["description"].str.len().gt(4).all()
    # points are mostly close to a building
    near = shapely.dwithin(pts[:, None], street.buildings.geometry.to_numpy()[None, :], 0.0002).any(
        axis=1
    )
    assert near.mean() > 0.7


# -------------------------------------------------------------------- iter_streets ----


def test_iter_streets_side_by_side_with_distinct_codes() -> None:
    """Streamed streets sit side by side, never overlap and have distinct codes and keys."""
    cfg = SynthConfig(communities=2, households_per_community=900)
    streets = list(iter_streets(3, cfg))
    assert [s.street["code"] for s in streets] == ["320102001", "320102002", "320102003"]
    assert len({s.street["name"] for s in streets}) == 3
    geoms = [s.street["geometry"] for s in streets]
    for a, b in itertools.combinations(geoms, 2):
        assert not a.intersects(b)
    for a, b in itertools.pairwise(geoms):
        assert b.bounds[0] > a.bounds[2]  # each east of the last
    district = streets[0].district["geometry"]
    assert all(s.district["geometry"].equals(district) for s in streets)
    assert all(district.contains(g) for g in geoms)
    for col, name in (("cell_key", "cells"), ("code", "cells"), ("household_key", "households")):
        keys = pd.concat([getattr(s, name)[col] for s in streets])
        assert keys.is_unique, col
    # street 0 is the config itself; the others have derived seeds
    first = generate_street(cfg)
    assert_geodataframe_equal(streets[0].cells, first.cells)
    assert streets[1].households["head_name"].tolist() != first.households["head_name"].tolist()


def test_iter_streets_is_lazy() -> None:
    """iter_streets yields one street at a time."""
    it = iter_streets(999, SynthConfig(communities=1, households_per_community=400))
    first = next(it)
    assert first.street["code"] == "320102001"


def test_invalid_config_is_refused() -> None:
    """Impossible configs raise ValueError."""
    with pytest.raises(ValueError):
        generate_street(SynthConfig(communities=0))
    with pytest.raises(ValueError):
        generate_street(SynthConfig(street_code="3201"))


_RNG = np.random.default_rng(2024)
RANDOM_CONFIGS = [
    (int(_RNG.integers(0, 2**32)), int(_RNG.integers(1, 6)), int(_RNG.integers(50, 6001)),
     round(float(_RNG.uniform(0.2, 4.0)), 2))
    for _ in range(10)
]  # fmt: skip


@pytest.mark.parametrize(("seed", "communities", "households", "area"), RANDOM_CONFIGS)
def test_any_config_tiles_and_places_every_household(
    seed: int, communities: int, households: int, area: float
) -> None:
    """Random configs still tile exactly and place every household."""
    s = generate_street(
        SynthConfig(
            seed=seed,
            communities=communities,
            households_per_community=households,
            community_area_km2=area,
        )
    )
    _assert_tiles(s.communities.geometry.to_numpy(), s.street["geometry"])
    for comm in s.communities.itertuples():
        parts = s.cells.loc[s.cells["community_code"] == comm.code, "geometry"].to_numpy()
        _assert_tiles(parts, comm.geometry)
    assert (s.cells.geometry.apply(lambda g: len(g.geoms)) == 1).all()
    per_comm = s.buildings.groupby("community_code")["households"].sum()
    assert (per_comm == households).all()
    geoms = s.buildings.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    assert (left == right).all()
    assert _cell_households(s).gt(0).all()
    assert s.roles.query("role == 'leader'")["cell_key"].value_counts().eq(1).all()


def test_iter_streets_refuses_codes_beyond_999() -> None:
    """A series that would need street sequence > 999 is refused."""
    with pytest.raises(ValueError):
        next(iter_streets(1000))
