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
number may exist — never dial them); none of it describes real people. This package is pure (no
database, no HTTP) and never imports ``gridsvc``.

Modules: ``config`` (what is asked for and returned), ``reference`` (the report's figures, layout
constants, name pools), ``plan`` (sizing), ``draw`` (quotas, keys, names), ``layout`` (buildings in
a block), ``incidents`` and ``generator`` (the stages, in order).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from geodata.synth.config import SynthConfig, SynthStreet
from geodata.synth.generator import generate
from geodata.synth.plan import (
    _check_config,
    _degrees_per_metre,
    _derive_seed,
    _plan_sizes,
    _street_names,
)

__all__ = ["SynthConfig", "SynthStreet", "generate_street", "iter_streets"]


def generate_street(config: SynthConfig = SynthConfig()) -> SynthStreet:
    """Generate one synthetic street (EPSG:4326) from ``config``, deterministically."""
    _check_config(config)
    return generate(config, district_box=None)


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
        yield generate(cfg, district_box=district_box)
