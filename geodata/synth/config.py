"""What the generator is asked for (SynthConfig) and what it returns (SynthStreet)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import geopandas as gpd
import pandas as pd


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

    district: dict[str, Any]
    street: dict[str, Any]
    communities: gpd.GeoDataFrame
    estates: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    households: pd.DataFrame
    persons: pd.DataFrame
    volunteer_teams: pd.DataFrame
    roles: pd.DataFrame
    incidents: pd.DataFrame
