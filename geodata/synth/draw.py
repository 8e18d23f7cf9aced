"""Random draws and names: quotas per group, keys, Chinese names and phone numbers."""

from __future__ import annotations

import numpy as np
import shapely

from geodata.synth.reference import (
    CN_DIGITS,
    ESTATE_PREFIXES,
    ESTATE_SUFFIXES,
    FEMALE_CHARS,
    MALE_CHARS,
)


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
    return np.asarray(out, dtype=np.int64)


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
    return np.asarray(shapely.multipolygons(polys, indices=np.arange(len(polys))), dtype=object)


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


def _zipf(n: int) -> np.ndarray:
    """Surname frequencies: a gentle Zipf over the list order (王, 李, 张 … most common)."""
    w = 1.0 / (np.arange(n) + 4.0)
    return np.asarray(w / w.sum(), dtype=np.float64)


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
