"""Rank changes: each ranking row against the period before and the same period a year earlier.

``<baseline>_rank_change`` = baseline rank - current rank, so a positive number means the unit moved up
("up 30 places"). A baseline is our own ranking of that period (basis ``computed``), or, for a year we
never computed, a published table imported with ``cli import-ranking`` (basis ``published``, or
``published_crosswalk`` when the table is on the 63 pre-2025 provinces: a merged province's baseline is
the mean of its predecessors' indices, ranked again among the 34; see docs/published-rankings.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from egov_index.schemas import RANK_BASELINES


@dataclass(frozen=True)
class Baseline:
    """The ranks of one earlier period: ``ranks`` has columns level, unit_code, overall_rank."""

    period: str
    basis: str  # computed | published | published_crosswalk
    ranks: pd.DataFrame


def attach_rank_changes(ranking: pd.DataFrame, baselines: Mapping[str, Baseline | None]) -> pd.DataFrame:
    """The ranking with ``<baseline>_period/_basis/_rank/_rank_change`` filled where a baseline rank exists.

    ``baselines`` maps each of RANK_BASELINES ("previous", "year_ago") to a Baseline or None.
    """
    unknown = sorted(set(baselines) - set(RANK_BASELINES))
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; expected {', '.join(RANK_BASELINES)}")
    frame = ranking.copy()
    key = pd.MultiIndex.from_arrays([frame["level"].astype(str), frame["unit_code"].astype(str)])
    for name in RANK_BASELINES:
        baseline = baselines.get(name)
        if baseline is None:
            continue
        ranks = baseline.ranks.dropna(subset=["overall_rank"])
        by_unit = pd.Series(
            ranks["overall_rank"].astype("int64").to_numpy(),
            index=pd.MultiIndex.from_arrays([ranks["level"].astype(str), ranks["unit_code"].astype(str)]),
        )
        if by_unit.index.has_duplicates:
            raise ValueError(f"baseline {baseline.period} ({baseline.basis}) ranks a unit twice")
        previous = pd.array(by_unit.reindex(key).to_numpy(), dtype="Int32")
        found = ~pd.isna(previous)
        frame[f"{name}_period"] = pd.array([baseline.period if f else None for f in found], dtype="str")
        frame[f"{name}_basis"] = pd.array([baseline.basis if f else None for f in found], dtype="str")
        frame[f"{name}_rank"] = previous
        frame[f"{name}_rank_change"] = (previous - frame["overall_rank"].astype("Int32")).astype("Int32")
    return frame
