"""Benchmark: the ranking engine on the whole country (a figure, not a test; issue 6 asks the robustness
run for 34 provinces and 3,321 communes with 1,000 draws to take under 60 s).

Builds one quarter the way the pipeline sees it (reference generator -> conform: a report per commune,
``--dossiers-per-day`` dossiers a day over the quarter), then, for each shipped methodology, times
``ranking.compute``, ``explain.explain`` and ``robustness.rank_bands`` (``--draws`` draws, both levels)
and prints one JSON object with the figures, the target and pass/fail.

    python scripts/bench_ranking.py [--draws 1000] [--dossiers-per-day 2000] [--period 2026-Q3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from datetime import timedelta

import pandas as pd

from egov_index.conform import conform
from egov_index.explain import explain
from egov_index.methodology import available_methodologies, load_methodology
from egov_index.periods import local_day_window, parse_period
from egov_index.ranking import compute
from egov_index.registry import current_units
from egov_index.robustness import rank_bands
from egov_index.source_server.generator import commune_reports, dossiers_updated_between, procedure_catalogue

TARGET_ROBUSTNESS_S = 60.0


def quarter_inputs(period: str, dossiers_per_day: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    quarter = parse_period(period)
    reports = conform("commune_reports", commune_reports(period), period).frame
    start = local_day_window(quarter.start).start
    end = local_day_window(quarter.end).end
    days = []
    day = start
    while day < end:  # day by day, as the nightly runs pull them
        days.append(dossiers_updated_between(day, day + timedelta(days=1), dossiers_per_day=dossiers_per_day))
        day += timedelta(days=1)
    dossiers = conform("dossiers", [d for batch in days for d in batch], period).frame
    procedures = conform("procedures", procedure_catalogue(), period).frame
    return reports, dossiers, procedures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--dossiers-per-day", type=int, default=2000)
    parser.add_argument("--period", default="2026-Q3")
    args = parser.parse_args()

    started = time.perf_counter()
    reports, dossiers, procedures = quarter_inputs(args.period, args.dossiers_per_day)
    registry = current_units()
    setup_s = time.perf_counter() - started
    results = {}
    for name in available_methodologies():
        method = load_methodology(name)
        method = replace(method, robustness=replace(method.robustness, draws=args.draws))
        t0 = time.perf_counter()
        result = compute(reports, dossiers, procedures, registry, args.period, method)
        t1 = time.perf_counter()
        for level in result.levels.values():
            explain(level, method, args.period)
        t2 = time.perf_counter()
        wide = sum(int(rank_bands(level, method, args.period)["wide_band"].sum()) for level in result.levels.values())
        t3 = time.perf_counter()
        results[name] = {
            "compute_s": round(t1 - t0, 3),
            "explain_s": round(t2 - t1, 3),
            "robustness_s": round(t3 - t2, 3),
            "robustness_target_s": TARGET_ROBUSTNESS_S,
            "robustness_pass": (t3 - t2) < TARGET_ROBUSTNESS_S,
            "wide_bands": wide,
        }
    print(
        json.dumps(
            {
                "benchmark": "ranking",
                "period": args.period,
                "units": {"province": len(registry.provinces), "commune": len(registry.communes)},
                "reports": len(reports),
                "dossiers": len(dossiers),
                "draws": args.draws,
                "setup_s": round(setup_s, 3),
                "methodologies": results,
                "machine": {"python": platform.python_version(), "processor": platform.machine()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
