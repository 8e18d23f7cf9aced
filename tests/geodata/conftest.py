"""Hypothesis profiles for the geodata property tests.

``dev`` (default): random examples, failures remembered in ``.hypothesis/``. ``ci`` (loaded when
``CI=true``): the same bounded example counts, derandomized so every CI run tries the same
inputs, no example database. ``thorough``: ten times the examples, for hunting bugs locally.
Choose explicitly with ``HYPOTHESIS_PROFILE=thorough``. Each property states its own example
count (kept small for the slow ones) through ``tests.geodata.strategies.examples``, which
multiplies it for ``thorough``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("dev", deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=_SLOW_OK,
)
settings.register_profile("thorough", deadline=None, suppress_health_check=_SLOW_OK)


def _profile() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes") else "dev"


PROFILE = _profile()
settings.load_profile(PROFILE)
