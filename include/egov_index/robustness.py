"""How much a rank depends on the methodology's choices: Monte Carlo over weights and normalisations.

Each draw scales every category weight by a factor drawn uniformly from [1 - s, 1 + s]
(``robustness.weight_share``), renormalises them to sum to 1, picks one normalisation of the family
(``robustness.normalisations``: the file's own rules, min-max, z-score or rank) for every indicator,
recomputes every ranked unit's overall index at the published precision and ranks it (standard
competition ranking). A unit's band is the 5th-95th percentile of its ranks over the draws; a band wider
than ``wide_band_share`` of the ranked units is flagged. The draws are seeded: reruns give the same bands.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from egov_index.methodology import Methodology
from egov_index.ranking import LevelScores
from egov_index.schemas import CATEGORIES, RANK_UNCERTAINTY_SCHEMA
from egov_index.scoring import nullable_ranks, round_half_up, score_fraction

_LEVEL_STREAM = {"province": 1, "commune": 2}


def rank_bands(scores: LevelScores, methodology: Methodology, period: str) -> pd.DataFrame:
    """Median rank and 5-95 % rank band of every unit of the level (RANK_UNCERTAINTY_SCHEMA columns)."""
    settings = methodology.robustness
    ranks = simulate_ranks(scores, methodology)  # ranked units x draws
    n_units = len(scores.codes)
    median = np.full(n_units, np.nan)
    low = np.zeros(n_units, dtype=np.int64)
    high = np.zeros(n_units, dtype=np.int64)
    if ranks.size:
        median[scores.ranked] = np.median(ranks, axis=1)
        low[scores.ranked] = np.quantile(ranks, 0.05, axis=1, method="inverted_cdf")
        high[scores.ranked] = np.quantile(ranks, 0.95, axis=1, method="inverted_cdf")
    width = high - low
    n_ranked = int(scores.ranked.sum())
    frame = pd.DataFrame(
        {
            "period": period,
            "level": scores.name,
            "unit_code": scores.codes,
            "methodology": methodology.id,
            "draws": np.int32(settings.draws),
            "overall_rank": nullable_ranks(scores.rank),
            "median_rank": median,
            "rank_p05": nullable_ranks(low),
            "rank_p95": nullable_ranks(high),
            "band_width": pd.Series(width).where(scores.ranked).astype("Int32").array,  # 0 is a width
            "wide_band": scores.ranked & (width > settings.wide_band_share * n_ranked),
        }
    )
    return frame[RANK_UNCERTAINTY_SCHEMA.names]


def simulate_ranks(scores: LevelScores, methodology: Methodology) -> np.ndarray:
    """Ranks of the ranked units under every draw: an int32 matrix of ranked units x draws."""
    settings = methodology.robustness
    ranked = scores.ranked
    indicators = scores.indicators
    rng = np.random.default_rng([settings.seed, _LEVEL_STREAM.get(scores.name, 0)])
    base = methodology.category_weights(scores.name)
    category_weight = np.array([base[c] for c in CATEGORIES])
    category_of = np.array([CATEGORIES.index(i.category) for i in indicators])
    within = np.array(
        [i.max_points / methodology.category(i.category).max_points_at(scores.name) for i in indicators]
    )
    factors = rng.uniform(
        1 - settings.weight_share, 1 + settings.weight_share, (settings.draws, len(CATEGORIES))
    )
    weights = factors * category_weight
    weights /= weights.sum(axis=1, keepdims=True)
    effective = weights[:, category_of] * within  # draws x indicators
    family = rng.integers(0, len(settings.normalisations), settings.draws)

    ranks = np.zeros((int(ranked.sum()), settings.draws), dtype=np.int32)
    for k, normalisation in enumerate(settings.normalisations):
        draws = np.flatnonzero(family == k)
        if not len(draws):
            continue
        shares = _shares(scores, normalisation)[ranked]  # ranked units x indicators, factor applied
        overall = round_half_up(shares @ effective[draws].T, methodology.published_precision)
        for column, draw in enumerate(draws):
            ordered = np.sort(overall[:, column])
            ranks[:, draw] = len(ordered) - np.searchsorted(ordered, overall[:, column], side="right") + 1
    return ranks


def _shares(scores: LevelScores, normalisation: str) -> np.ndarray:
    """Share of max points per unit x indicator under one normalisation, times the coverage factor."""
    if normalisation == "as_configured":
        fractions = scores.fractions
    else:
        fractions = np.column_stack(
            [
                score_fraction(scores.values[:, j], ind, scores.ranked, rule=normalisation)
                for j, ind in enumerate(scores.indicators)
            ]
        )
    return fractions * scores.factor
