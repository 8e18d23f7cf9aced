"""Colours, labels and classes shared by the interactive and the static maps.

``maps`` never imports ``gridsvc``: the Chinese labels below mirror ``gridsvc.domain`` and every
function that uses them takes an override, so the service can pass its own vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "CELL_STYLE",
    "INCIDENT_STATE_PALETTE",
    "NEIGHBOUR_STYLE",
    "OSM_ATTRIBUTION",
    "Classes",
    "classify",
    "sequential_colours",
    "short_codes",
]

#: Attribution of layers derived from OpenStreetMap (buildings, roads).
OSM_ATTRIBUTION = "© OpenStreetMap contributors"

#: Colours for incident states, in the order the caller ranks the states (``status_rank``):
#: the workflow's steps from red to blue, then the set-aside states in greys. gridsvc says
#: which state is which; the map only colours them in turn.
INCIDENT_STATE_PALETTE: tuple[str, ...] = (
    "#d7301f",
    "#fc8d59",
    "#fdbb84",
    "#4575b4",
    "#969696",
    "#7a0177",
    "#e7298a",
    "#525252",
)

CELL_STYLE = {"color": "#c51b7d", "weight": 3, "fillOpacity": 0.0, "fill": False}
NEIGHBOUR_STYLE = {
    "color": "#7f7f7f",
    "weight": 1.5,
    "dashArray": "4 4",
    "fillColor": "#bdbdbd",
    "fillOpacity": 0.25,
}
BUILDING_NO_DATA = "#d9d9d9"
ROAD_COLOUR = "#9e9e9e"
HOUSEHOLD_COLOUR = "#2c7fb8"
FLAGGED_HOUSEHOLD_COLOUR = "#e6550d"
VOLUNTEER_COLOUR = "#31a354"

# ColorBrewer YlOrRd and Blues (5 classes): print-safe sequential palettes.
_PALETTES: dict[str, list[str]] = {
    "YlOrRd": ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"],
    "Blues": ["#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c"],
    "Greens": ["#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c"],
}


def sequential_colours(n: int, palette: str = "YlOrRd") -> list[str]:
    """``n`` (1–5) colours of a ColorBrewer sequential palette, light to dark."""
    colours = _PALETTES[palette]
    if not 1 <= n <= len(colours):
        raise ValueError(f"n must be between 1 and {len(colours)}")
    idx = np.round(np.linspace(0, len(colours) - 1, n)).astype(int)
    return [colours[i] for i in idx]


@dataclass(frozen=True)
class Classes:
    """Class breaks of a numeric column and one colour per class (values → colours, legend)."""

    breaks: tuple[float, ...]  # k + 1 ascending edges
    colours: tuple[str, ...]  # k colours
    no_data: str = BUILDING_NO_DATA

    def colour_of(self, values: npt.ArrayLike) -> list[str]:
        """The colour of each value (missing values get ``no_data``)."""
        v = np.asarray(values, dtype=float)
        inner = np.asarray(self.breaks[1:-1], dtype=float)
        idx = np.searchsorted(inner, v, side="right")
        return [
            self.no_data if np.isnan(x) else self.colours[i] for x, i in zip(v, idx, strict=True)
        ]

    def labels(self, fmt: str = "{:.0f}") -> list[str]:
        """Legend labels "a – b" per class."""
        b = self.breaks
        return [f"{fmt.format(b[i])} – {fmt.format(b[i + 1])}" for i in range(len(self.colours))]


def classify(
    values: Sequence[float] | npt.ArrayLike, k: int = 5, palette: str = "YlOrRd"
) -> Classes:
    """Quantile classes (at most ``k``, fewer when values repeat) of the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Classes((0.0, 0.0), (sequential_colours(1, palette)[0],))
    edges = np.unique(np.quantile(v, np.linspace(0, 1, k + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    n = edges.size - 1
    return Classes(tuple(float(e) for e in edges), tuple(sequential_colours(n, palette)))


def short_codes(codes: Sequence[Any], minimum: int = 3) -> list[str]:
    """The shortest code suffixes (at least ``minimum`` characters) that tell the cells apart."""
    texts = ["" if c is None else str(c) for c in codes]
    longest = max((len(t) for t in texts), default=0)
    for n in range(minimum, longest + 1):
        tails = [t[-n:] for t in texts]
        if len(set(tails)) == len(set(texts)):
            return tails
    return texts
