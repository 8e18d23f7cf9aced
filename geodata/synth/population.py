"""Stages 5–7 of the generator: households, residents, roles and the people tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from geodata.synth.config import SynthConfig
from geodata.synth.draw import (
    _keys,
    _largest_remainder,
    _person_names,
    _phones,
    _pick,
    _zipf,
)
from geodata.synth.plan import (
    _Randoms,
)
from geodata.synth.reference import (
    FLAG_RATES,
    REF_FLOATING_HOUSEHOLDS,
    REF_HOUSEHOLDS,
    REF_PARTY_DIRECT,
    REF_PARTY_FLOATING,
    REF_PARTY_IN_SERVICE,
    REF_PARTY_RETIRED,
    REF_RESIDENTS,
    REF_VOLUNTEERS,
    RENTAL_GIVEN_FLOATING,
    RENTAL_GIVEN_SETTLED,
    SURNAMES,
    VOLUNTEER_TEAMS,
)
from geodata.synth.streets import _Blocks, _Buildings

# ---- stage 5: households (vectorised over dwellings) -----------------------------------------


@dataclass(frozen=True)
class _Households:
    h_b: np.ndarray  # building of each household
    unit_no: np.ndarray
    floor_no: np.ndarray
    door_no: np.ndarray
    h_comm: np.ndarray
    h_cell: np.ndarray
    comm_hh: np.ndarray  # households per community
    floating: np.ndarray
    elderly: np.ndarray
    disabled: np.ndarray
    low_income: np.ndarray
    extreme: np.ndarray
    rental: np.ndarray
    sizes: np.ndarray  # residents per household

    def per_comm(self, ref: float) -> np.ndarray:
        """Per-community count scaled from a 象山社区 figure."""
        return _scaled(self.comm_hh, ref)


def _scaled(comm_hh: np.ndarray, ref: float) -> np.ndarray:
    """Per-community count scaled from a 象山社区 figure."""
    return np.array([round(ref * h / REF_HOUSEHOLDS) for h in comm_hh], dtype=np.int64)


def _households(rnd: _Randoms, bld: _Buildings, n_comm: int) -> _Households:
    """Households in dwellings (random vacancies), their flags and sizes."""
    r_hh = rnd.hh
    starts = np.concatenate([[0], np.cumsum(bld.cap)])
    n_dw = int(starts[-1])
    dw_b = np.repeat(np.arange(bld.n), bld.cap)
    dw_d = np.arange(n_dw) - starts[dw_b]
    key = r_hh.random(n_dw)
    o = np.lexsort((key, dw_b))
    occupied = np.zeros(n_dw, dtype=bool)
    occupied[o[(np.arange(n_dw) - starts[dw_b[o]]) < bld.hh[dw_b[o]]]] = True
    h_b = dw_b[occupied]  # already sorted by building, then dwelling
    h_d = dw_d[occupied]
    per_unit = bld.levels[h_b] * bld.per_floor[h_b]
    n_hh = len(h_b)
    h_comm = bld.comm[h_b]
    comm_hh = np.bincount(h_comm, minlength=n_comm)

    def per_comm(ref: float) -> np.ndarray:
        return _scaled(comm_hh, ref)

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
    sizes = _household_sizes(r_hh, h_comm, per_comm(REF_RESIDENTS), elderly, floating, n_comm)
    return _Households(
        h_b=h_b,
        unit_no=h_d // per_unit + 1,
        floor_no=(h_d % per_unit) // bld.per_floor[h_b] + 1,
        door_no=h_d % bld.per_floor[h_b] + 1,
        h_comm=h_comm,
        h_cell=bld.cell[h_b],
        comm_hh=comm_hh,
        floating=floating,
        elderly=elderly,
        disabled=disabled,
        low_income=low_income,
        extreme=extreme,
        rental=rental,
        sizes=sizes,
    )


def _household_sizes(
    r_hh: np.random.Generator,
    h_comm: np.ndarray,
    res_target: np.ndarray,
    elderly: np.ndarray,
    floating: np.ndarray,
    n_comm: int,
) -> np.ndarray:
    """Residents per household, nudged so that each community hits its resident total."""
    n_hh = len(h_comm)
    sizes = np.empty(n_hh, dtype=np.int64)
    sizes[elderly] = np.where(r_hh.random(int(elderly.sum())) < 0.6, 1, 2)
    sizes[floating] = r_hh.choice(
        [1, 2, 3, 4, 5], int(floating.sum()), p=[0.3, 0.3, 0.25, 0.12, 0.03]
    )
    settled = ~(elderly | floating)
    sizes[settled] = r_hh.choice(
        [1, 2, 3, 4, 5, 6], int(settled.sum()), p=[0.08, 0.22, 0.30, 0.24, 0.11, 0.05]
    )
    adjustable = settled | floating
    for _ in range(20):  # nudge sizes by ±1 so each community hits its resident total
        diff = res_target - np.bincount(h_comm, weights=sizes, minlength=n_comm).astype(np.int64)
        if not diff.any():
            break
        up = _pick(r_hh, h_comm, np.maximum(diff, 0), eligible=adjustable & (sizes < 7))
        down = _pick(r_hh, h_comm, np.maximum(-diff, 0), eligible=adjustable & (sizes > 1))
        sizes += up.astype(np.int64) - down.astype(np.int64)
    return sizes


# ---- stage 6: persons (vectorised over residents) --------------------------------------------


@dataclass(frozen=True)
class _Persons:
    p_h: np.ndarray  # household of each resident
    h_start: np.ndarray  # first resident (the head) of each household
    age: np.ndarray
    male: np.ndarray
    names: np.ndarray
    birth_year: np.ndarray
    p_comm: np.ndarray
    p_cell: np.ndarray
    p_bld: np.ndarray
    party: np.ndarray  # party status or None
    is_party: np.ndarray
    p_team: np.ndarray  # volunteer team key or None
    is_volunteer: np.ndarray
    team_comm: np.ndarray
    team_kind: np.ndarray
    team_name: list[str]
    team_keys: np.ndarray

    @property
    def n(self) -> int:
        return len(self.p_h)


def _residents(
    rp: np.random.Generator, hh: _Households, year: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each resident's household, age, sex and name: heads, spouses, children and parents."""
    sizes, elderly, floating = hh.sizes, hh.elderly, hh.floating
    n_hh = len(sizes)
    n_res = int(sizes.sum())
    p_h = np.repeat(np.arange(n_hh), sizes)
    h_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    member = np.arange(n_res) - h_start[p_h]
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
    return p_h, h_start, age, male, names


def _persons(rnd: _Randoms, config: SynthConfig, hh: _Households, blocks: _Blocks) -> _Persons:
    """Residents, their party membership and volunteer teams."""
    rp = rnd.people
    n_comm = config.communities
    p_h, h_start, age, male, names = _residents(rp, hh, config.as_of.year)
    n_res = len(p_h)
    p_comm = hh.h_comm[p_h]

    party = np.full(n_res, None, dtype=object)
    is_party = np.zeros(n_res, dtype=bool)
    for status, ref, elig, wts in (
        ("in_service", REF_PARTY_IN_SERVICE, (age >= 23) & (age <= 59), None),
        ("retired", REF_PARTY_RETIRED, age >= 60, None),
        ("floating", REF_PARTY_FLOATING, hh.floating[p_h] & (age >= 20) & (age <= 55), None),
        ("direct", REF_PARTY_DIRECT, age >= 18, 1.0 + (age >= 55)),
    ):
        got = _pick(rp, p_comm, hh.per_comm(ref), weights=wts, eligible=elig & ~is_party)
        party[got] = status
        is_party |= got

    team_comm = np.repeat(np.arange(n_comm), len(VOLUNTEER_TEAMS))
    team_kind = np.tile([t[0] for t in VOLUNTEER_TEAMS], n_comm)
    team_name = [blocks.comm_names[c] + t[1] for c in range(n_comm) for t in VOLUNTEER_TEAMS]
    team_keys = _keys(f"{config.street_code}-t", len(team_comm), 4)
    p_team = np.full(n_res, None, dtype=object)
    is_volunteer = np.zeros(n_res, dtype=bool)
    vol_total = hh.per_comm(REF_VOLUNTEERS)
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
    return _Persons(
        p_h=p_h,
        h_start=h_start,
        age=age,
        male=male,
        names=names,
        birth_year=config.as_of.year - age,
        p_comm=p_comm,
        p_cell=hh.h_cell[p_h],
        p_bld=hh.h_b[p_h],
        party=party,
        is_party=is_party,
        p_team=p_team,
        is_volunteer=is_volunteer,
        team_comm=team_comm,
        team_kind=team_kind,
        team_name=team_name,
        team_keys=team_keys,
    )


# ---- stage 7: roles, and the people tables --------------------------------------------------


@dataclass(frozen=True)
class _Keys:
    person: np.ndarray
    household: np.ndarray
    building: np.ndarray
    estate: np.ndarray
    cell: np.ndarray


@dataclass(frozen=True)
class _Staff:
    """Community staff who are not residents: one full-time grid worker per cell, and a
    leader for each cell with no eligible resident."""

    male: np.ndarray
    names: np.ndarray
    birth: np.ndarray
    lack: np.ndarray  # cells whose leader is staff


def _roles(
    rnd: _Randoms,
    config: SynthConfig,
    blocks: _Blocks,
    bld: _Buildings,
    hh: _Households,
    ppl: _Persons,
) -> tuple[pd.DataFrame, _Keys, _Staff]:
    """格长 (one per cell), part-time grid workers, building captains and full-time staff."""
    r_roles = rnd.roles
    n_cells = blocks.n_cells
    n_res = ppl.n
    age, is_party, p_cell = ppl.age, ppl.is_party, ppl.p_cell
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
        weights=1.0 + 3.0 * (ppl.is_volunteer | is_party),
        eligible=(age >= 25) & (age <= 65) & ~leader,
    )
    res_bld = np.flatnonzero(bld.hh > 0)
    cap_quota = np.zeros(bld.n, dtype=np.int64)
    cap_quota[res_bld] = r_roles.random(len(res_bld)) < 0.6
    captain = _pick(
        r_roles,
        ppl.p_bld,
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
    staff_birth = config.as_of.year - r_roles.integers(24, 46, n_cells)
    # a cell with no eligible resident still gets exactly one leader: a second staff member
    led = np.zeros(n_cells, dtype=bool)
    led[p_cell[leader]] = True
    lack = np.flatnonzero(~led)

    code = config.street_code
    keys = _Keys(
        person=_keys(f"{code}-p", n_res + n_cells + len(lack), 7),
        household=_keys(f"{code}-h", len(hh.h_b), 7),
        building=_keys(f"{code}-b", bld.n, 6),
        estate=_keys(f"{code}-e", len(bld.estates.res_blocks), 5),
        cell=_keys(f"{code}-c", n_cells, 4),
    )

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
            "person_key": keys.person[np.concatenate([leader_idx, staff_idx, pt_idx, cap_idx])],
            "role": ["leader"] * len(leader_idx)
            + ["grid_worker"] * (n_cells + len(pt_idx))
            + ["building_captain"] * len(cap_idx),
            "cell_key": np.concatenate(
                [
                    keys.cell[leader_cell],
                    keys.cell,
                    keys.cell[p_cell[pt_idx]],
                    np.full(len(cap_idx), None, dtype=object),
                ]
            ),
            "building_key": np.concatenate(
                [
                    np.full(len(leader_idx) + n_cells + len(pt_idx), None, dtype=object),
                    keys.building[ppl.p_bld[cap_idx]],
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
    return roles, keys, _Staff(staff_male, staff_names, staff_birth, lack)


def _people_tables(
    rnd: _Randoms,
    config: SynthConfig,
    blocks: _Blocks,
    hh: _Households,
    ppl: _Persons,
    keys: _Keys,
    staff: _Staff,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The persons, households and volunteer-team tables (phones drawn here)."""
    r_roles = rnd.roles
    n_res, n_cells, lack = ppl.n, blocks.n_cells, staff.lack
    n_extra = n_cells + len(lack)
    phones = _phones(r_roles, n_res + n_extra)  # unique within the street
    extra_male = np.concatenate([staff.male, r_roles.random(len(lack)) < 0.5])
    extra_names = np.concatenate(
        [
            staff.names,
            _person_names(
                r_roles,
                np.asarray(SURNAMES)[r_roles.choice(len(SURNAMES), len(lack))],
                extra_male[n_cells:],
            ),
        ]
    )
    year = config.as_of.year
    persons = pd.DataFrame(
        {
            "person_key": keys.person,
            "household_key": np.concatenate(
                [keys.household[ppl.p_h], np.full(n_extra, None, dtype=object)]
            ),
            "name": np.concatenate([ppl.names, extra_names]),
            "phone": np.concatenate(
                [
                    np.where(ppl.age >= 16, phones[:n_res], np.full(n_res, None, dtype=object)),
                    phones[n_res:],
                ]
            ),
            "gender": np.where(np.concatenate([ppl.male, extra_male]), "male", "female"),
            "birth_year": np.concatenate(
                [ppl.birth_year, staff.birth, year - r_roles.integers(30, 55, len(lack))]
            ).astype(np.int64),
            "party_status": np.concatenate([ppl.party, np.full(n_extra, None, dtype=object)]),
            "volunteer_team_key": np.concatenate(
                [ppl.p_team, np.full(n_extra, None, dtype=object)]
            ),
        }
    )
    head_idx = ppl.h_start
    households = pd.DataFrame(
        {
            "household_key": keys.household,
            "building_key": keys.building[hh.h_b],
            "unit": np.strings.add(hh.unit_no.astype(str), "单元"),
            "room": (hh.floor_no * 100 + hh.door_no).astype(str),
            "size": hh.sizes,
            "head_name": ppl.names[head_idx],
            "phone": phones[head_idx],
            "low_income": hh.low_income,
            "elderly_alone": hh.elderly,
            "disabled": hh.disabled,
            "extreme_poverty": hh.extreme,
            "floating": hh.floating,
            "rental": hh.rental,
        }
    )
    volunteer_teams = pd.DataFrame(
        {
            "team_key": ppl.team_keys,
            "community_code": np.asarray(blocks.comm_codes, dtype=object)[ppl.team_comm],
            "name": ppl.team_name,
            "kind": ppl.team_kind,
        }
    )
    return persons, households, volunteer_teams
