"""Fixtures shared by every test package: where the real OSM extracts live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get(
        "GRIDSVC_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


def _require_shared() -> bool:
    return os.environ.get("GRIDSVC_REQUIRE_SHARED_DATA", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real OpenStreetMap extracts (../shared/data).

    Skips the test when it is absent, unless GRIDSVC_REQUIRE_SHARED_DATA=1, where it fails.
    """
    if not (SHARED_DATA / "nanjing_xinjiekou" / "buildings.geojson").is_file():
        message = f"real OSM extracts not found at {SHARED_DATA}"
        if _require_shared():
            pytest.fail(message + " (GRIDSVC_REQUIRE_SHARED_DATA is set)")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def nanjing(shared_data: Path) -> Path:
    """Nanjing 新街口 extract folder."""
    return shared_data / "nanjing_xinjiekou"


@pytest.fixture(scope="session")
def beijing(shared_data: Path) -> Path:
    """Beijing 学院路 extract folder."""
    return shared_data / "beijing_haidian_xueyuanlu"
