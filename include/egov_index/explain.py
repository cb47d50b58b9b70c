"""Explanations of a ranking: the points each unit loses per indicator, and what would move it up.

For every unit and scored indicator: the points lost (max points - points) and their order, largest
first. For every ranked unit below rank 1, and every indicator, the smallest improvement of that one
indicator (all else equal) that lifts the unit's published overall index to the next higher published
index, hence at least one rank up: the points needed, the value to reach and the rank it would give.
``best_move_up`` marks, per unit, the indicator needing the smallest improvement as a share of its own
range (share of max points); ties go to the indicator with the larger weight, then file order.

For relative rules the target value holds the other units where they are (a first-order answer: moving
one unit also moves the minimum, mean or best it is compared with).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from egov_index.methodology import Methodology
from egov_index.ranking import LevelScores
from egov_index.schemas import EXPLANATION_SCHEMA
from egov_index.scoring import nullable_ranks, round_half_up, step_share_reaching, value_for_share

_EPSILON = 1e-9


def explain(scores: LevelScores, methodology: Methodology, period: str) -> pd.DataFrame:
    """One row per unit x indicator of the level (EXPLANATION_SCHEMA columns), units in level order."""
    n_units, n_ind = scores.points.shape
    indicators = scores.indicators
    max_points = np.array([i.max_points for i in indicators])
    lost = max_points - scores.points
    order = np.argsort(-np.round(lost, 9), axis=1, kind="stable")
    loss_order = np.empty_like(order)
    np.put_along_axis(loss_order, order, np.arange(1, n_ind + 1)[None, :].repeat(n_units, 0), axis=1)

    needed_share, target, new_rank = _move_up(scores, methodology)
    feasible = np.isfinite(needed_share)
    gain = np.where(feasible, needed_share * scores.factor * max_points, np.nan)
    # best move-up: smallest share of the indicator's range, then the larger weight, then file order
    key = np.where(feasible, needed_share, np.inf)
    weight_key = np.broadcast_to(-scores.weights, key.shape)
    best = np.zeros_like(feasible)
    for u in np.flatnonzero(feasible.any(axis=1)):
        best[u, np.lexsort((np.arange(n_ind), weight_key[u], key[u]))[0]] = True

    frame = pd.DataFrame(
        {
            "period": period,
            "level": scores.name,
            "unit_code": np.repeat(scores.codes, n_ind),
            "methodology": methodology.id,
            "category": np.tile([i.category for i in indicators], n_units),
            "indicator_id": np.tile([i.id for i in indicators], n_units),
            "value": scores.values.ravel(),
            "points": scores.points.ravel(),
            "max_points": np.tile(max_points, n_units),
            "points_lost": lost.ravel(),
            "loss_order": loss_order.ravel().astype("int32"),
            "points_needed": gain.ravel(),
            "target_value": target.ravel(),
            "rank_if_improved": nullable_ranks(new_rank.ravel()),
            "best_move_up": best.ravel(),
        }
    )
    return frame[EXPLANATION_SCHEMA.names]


def _move_up(scores: LevelScores, methodology: Methodology) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(share of max points to add, value to reach, rank reached) per unit x indicator; NaN / 0 if none."""
    n_units, n_ind = scores.points.shape
    scale = 10.0**methodology.published_precision
    published = np.sort(scores.index[scores.ranked])
    distinct = np.unique(published)
    above = np.searchsorted(distinct, scores.index, side="right")
    has_next = scores.ranked & (above < len(distinct))
    next_index = np.where(has_next, distinct[np.minimum(above, len(distinct) - 1)], np.nan)
    # the unrounded overall index that publishes as next_index (round half up)
    gap = np.maximum(next_index - 0.5 / scale - scores.overall, 0.0) + _EPSILON

    needed = np.full((n_units, n_ind), np.nan)
    target = np.full((n_units, n_ind), np.nan)
    new_rank = np.zeros((n_units, n_ind), dtype=np.int64)
    for j, ind in enumerate(scores.indicators):
        per_share = scores.weights[j] * scores.factor[:, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(has_next & (per_share > 0), gap / per_share, np.nan)
        current = scores.fractions[:, j]
        wanted = current + share
        if ind.scoring == "step":
            wanted = step_share_reaching(ind, wanted)
        elif ind.scoring == "yes_no" and scores.name == "commune":
            wanted = np.where(wanted <= 1.0 + 1e-12, 1.0, np.nan)  # a commune answers yes or no
        ok = np.isfinite(wanted) & (wanted <= 1.0 + 1e-12)
        wanted = np.where(ok, np.minimum(wanted, 1.0), np.nan)
        needed[:, j] = wanted - current
        target[:, j] = np.where(ok, value_for_share(scores.values[:, j], ind, scores.ranked, wanted), np.nan)
        raised = scores.overall + needed[:, j] * per_share
        reached = round_half_up(raised, methodology.published_precision)
        higher = len(published) - np.searchsorted(published, reached, side="right")
        new_rank[:, j] = np.where(ok, higher + 1, 0)
    return needed, target, new_rank
