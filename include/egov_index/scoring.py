"""Scoring rules, rounding and ranking: the arithmetic every ranking output shares (pure numpy).

A scoring rule turns one indicator's values for the units of one level into the *share* of the
indicator's max points each unit earns, in [0, 1]. Absolute rules look at the unit's own value;
relative rules (relative_to_best, min_max, z_score, rank) at its place among the units of its level
that are ranked and have a value. A unit without a value earns 0. The rules are written out for
people in docs/methodology.md ("Scoring rules").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from egov_index.methodology import Indicator

# The share every unit gets from a relative rule when all units have the same value (no unit is
# ahead of another): the middle, which is also what `rank` gives for a complete tie.
TIED_SHARE = 0.5
# z_score: a unit Z_SPAN standard deviations below the mean earns 0, at the mean 0.5, Z_SPAN above 1.
Z_SPAN = 3.0


def score_fraction(
    values: np.ndarray, indicator: Indicator, ranked: np.ndarray | None = None, rule: str | None = None
) -> np.ndarray:
    """The share of max points each value earns under ``rule`` (default: the indicator's own).

    ``ranked`` marks the units a relative rule compares against (default: all); NaN values earn 0
    and are left out of the comparison.
    """
    rule = rule or indicator.scoring
    lower = indicator.direction == "lower_is_better"
    values = np.asarray(values, dtype=float)
    pool = np.isfinite(values) & (np.ones(len(values), bool) if ranked is None else ranked)
    if rule in ("ratio", "yes_no"):
        fraction = 1.0 - values if lower else values
    elif rule == "goalposts":
        assert indicator.goalposts is not None
        lo, hi = indicator.goalposts.lo, indicator.goalposts.hi
        fraction = (hi - values) / (hi - lo) if lower else (values - lo) / (hi - lo)
    elif rule == "step":
        assert indicator.steps is not None
        fraction = _step_share(values, indicator)
    elif rule == "relative_to_best":
        fraction = _relative_to_best(values, pool, lower)
    elif rule == "min_max":
        fraction = _min_max(values, pool, lower)
    elif rule == "z_score":
        fraction = _z_score(values, pool, lower)
    elif rule == "rank":
        fraction = _percentile_rank(values, pool, lower)
    else:
        raise ValueError(f"unknown scoring rule {rule!r}")
    return np.nan_to_num(np.clip(fraction, 0.0, 1.0), nan=0.0)


def _step_share(values: np.ndarray, indicator: Indicator) -> np.ndarray:
    """The share of the highest step whose threshold the value reaches; below the first step, 0."""
    assert indicator.steps is not None
    thresholds = np.array([s.threshold for s in indicator.steps])
    shares = np.array([0.0] + [s.share for s in indicator.steps])
    position = np.searchsorted(thresholds, np.nan_to_num(values, nan=-np.inf), side="right")
    return np.where(np.isfinite(values), shares[position], np.nan)


def _relative_to_best(values: np.ndarray, pool: np.ndarray, lower: bool) -> np.ndarray:
    """value / best value (higher is better), or best / value (lower is better; a value of 0 is best)."""
    if not pool.any():
        return np.full_like(values, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        if lower:
            best = values[pool].min()
            return np.where(values > 0, best / values, np.where(values == 0, 1.0, np.nan))
        best = values[pool].max()
        return values / best if best > 0 else np.where(np.isfinite(values), 0.0, np.nan)  # nobody has any


def _min_max(values: np.ndarray, pool: np.ndarray, lower: bool) -> np.ndarray:
    if not pool.any():
        return np.full_like(values, np.nan)
    lo, hi = values[pool].min(), values[pool].max()
    if hi == lo:
        return np.where(np.isfinite(values), TIED_SHARE, np.nan)
    return (hi - values) / (hi - lo) if lower else (values - lo) / (hi - lo)


def _z_score(values: np.ndarray, pool: np.ndarray, lower: bool) -> np.ndarray:
    if not pool.any():
        return np.full_like(values, np.nan)
    mean, std = values[pool].mean(), values[pool].std()  # population standard deviation
    if std <= 1e-12 * max(1.0, abs(mean)):  # all equal, up to binary noise
        return np.where(np.isfinite(values), TIED_SHARE, np.nan)
    z = (values - mean) / std
    return 0.5 + (-z if lower else z) / (2 * Z_SPAN)


def _percentile_rank(values: np.ndarray, pool: np.ndarray, lower: bool) -> np.ndarray:
    """(average rank among the pool - 1) / (pool size - 1), worst = 0, best = 1; ties share the average."""
    n = int(pool.sum())
    if n == 0:
        return np.full_like(values, np.nan)
    if n == 1:
        return np.where(np.isfinite(values), TIED_SHARE, np.nan)
    keyed = -values if lower else values
    reference = np.sort(keyed[pool])
    below = np.searchsorted(reference, keyed, side="left")  # pool values strictly worse
    equal = np.searchsorted(reference, keyed, side="right") - below
    average_rank = below + (equal + 1) / 2  # 1-based average rank from the worst
    return np.where(np.isfinite(values), (average_rank - 1) / (n - 1), np.nan)


def round_half_up(values: np.ndarray, digits: int) -> np.ndarray:
    """Round to the published precision, halves up (0.7575 -> 0.758), immune to binary noise."""
    scale = 10.0**digits
    return np.floor(np.round(np.asarray(values, dtype=float) * scale, 6) + 0.5) / scale


def competition_rank(values: np.ndarray) -> np.ndarray:
    """Standard competition ranking ("1224"): 1 + the number of strictly higher values; NaN -> 0 (unranked)."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    reference = np.sort(values[finite])
    higher = len(reference) - np.searchsorted(reference, values, side="right")
    return np.where(finite, higher + 1, 0).astype(np.int64)


def nullable_ranks(ranks: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Ranks as nullable Int32 for the published tables: 0 (not ranked) becomes null."""
    ranks = np.asarray(ranks)
    return pd.Series(ranks).where(ranks > 0).astype("Int32").array


def competition_rank_within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Competition ranks computed separately inside each group (e.g. communes within their province)."""
    frame = pd.DataFrame({"value": values, "group": groups})
    ranks = frame.groupby("group", sort=False)["value"].rank(method="min", ascending=False)
    return ranks.fillna(0).to_numpy(dtype=np.int64)


def value_for_share(
    values: np.ndarray, indicator: Indicator, ranked: np.ndarray | None, share: np.ndarray
) -> np.ndarray:
    """The value that earns ``share`` of max points under the indicator's rule: the inverse of
    ``score_fraction``, holding the other units where they are (for relative rules). NaN where the rule
    has no single such value (``rank``, which depends on the other units' order)."""
    values = np.asarray(values, dtype=float)
    share = np.asarray(share, dtype=float)
    lower = indicator.direction == "lower_is_better"
    pool = np.isfinite(values) & (np.ones(len(values), bool) if ranked is None else ranked)
    rule = indicator.scoring
    if rule in ("ratio", "yes_no"):
        return 1.0 - share if lower else share
    if rule == "goalposts":
        assert indicator.goalposts is not None
        lo, hi = indicator.goalposts.lo, indicator.goalposts.hi
        return hi - share * (hi - lo) if lower else lo + share * (hi - lo)
    if rule == "step":
        assert indicator.steps is not None
        return _step_threshold(indicator, share)
    if not pool.any():
        return np.full_like(share, np.nan)
    reference = values[pool]
    if rule == "relative_to_best":
        if lower:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(share > 0, reference.min() / share, np.nan)
        return share * reference.max()
    if rule == "min_max":
        lo, hi = reference.min(), reference.max()
        return hi - share * (hi - lo) if lower else lo + share * (hi - lo)
    if rule == "z_score":
        mean, std = reference.mean(), reference.std()
        z = (share - 0.5) * 2 * Z_SPAN
        return mean - z * std if lower else mean + z * std
    return np.full_like(share, np.nan)


def _step_threshold(indicator: Indicator, share: np.ndarray) -> np.ndarray:
    """The threshold of the step with the smallest share >= ``share`` (NaN if none reaches it)."""
    assert indicator.steps is not None
    steps = sorted(indicator.steps, key=lambda s: (s.share, s.threshold))
    shares = np.array([s.share for s in steps])
    thresholds = np.array([s.threshold for s in steps] + [np.nan])
    position = np.searchsorted(shares, share - 1e-12, side="left")
    return thresholds[np.minimum(position, len(steps))]


def step_share_reaching(indicator: Indicator, share: np.ndarray) -> np.ndarray:
    """The smallest step share >= ``share`` (NaN if no step reaches it)."""
    assert indicator.steps is not None
    shares = np.array(sorted({s.share for s in indicator.steps}) + [np.nan])
    position = np.searchsorted(shares[:-1], share - 1e-12, side="left")
    return shares[np.minimum(position, len(shares) - 1)]
