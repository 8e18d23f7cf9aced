"""A year of incidents for the generated street, in blocks or next to buildings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from geodata.synth.config import SynthConfig
from geodata.synth.draw import _keys
from geodata.synth.reference import (
    INCIDENT_CATEGORIES,
    INCIDENT_TZ,
    REPORTER_KINDS,
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
