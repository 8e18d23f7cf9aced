"""Fixtures for the rendering package (builders in tests/maps/fixtures.py, shared with e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.maps.fixtures import (
    CellLayers,
    RealLayers,
    ensure_assets,
    nanjing_grid_layers,
    synthetic_layers,
)


@pytest.fixture(scope="session")
def asset_root() -> Path:
    """The asset folder with every pinned Leaflet asset."""
    return ensure_assets()


@pytest.fixture(scope="session")
def street() -> CellLayers:
    """One synthetic cell with everything around it, and its whole street."""
    return synthetic_layers()


@pytest.fixture(scope="session")
def nanjing_layers(nanjing: Path) -> RealLayers:
    """Real Nanjing 新街口 buildings and roads with a 4 × 3 grid of cells."""
    return nanjing_grid_layers(nanjing)
