"""Benchmark: a national year end to end through the bulk export path (issue 8), with a DuckDB baseline.

In a temporary data root, against the reference source server started with the national profile
(``NATIONAL_DOSSIERS_PER_DAY``: 34 provinces, 3,321 communes, about 10 million dossiers received in the
year with weekday, month and public-holiday seasonality):

1. the catalogue and the four quarterly reports of every commune through the API (stage ``reference``);
2. month by month: the bulk export of every province (``pull``: the server builds the files, the client
   streams and checks them), then the month as one batch (``read``, ``conform``, ``validate`` = Great
   Expectations, ``snapshot`` = Parquet snapshot + quarantine) — :mod:`egov_index.bulk`;
3. the year's ranking (:func:`egov_index.pipeline.rank_period` on the year): ``indicators`` (reading the
   dossier snapshot partition by partition into counts per commune), ``ranking``, ``robustness`` (rank bands,
   1,000 draws), ``publish``.

Wall time and peak RSS are per stage (peak RSS: the kernel's high-water mark, reset at each stage's start,
see :mod:`egov_index.stages`); rows per second over the dossiers. In the same run, on the same Parquet
snapshot files, DuckDB computes the same dossier counts per commune (and the province facts) in one SQL
query; the figure ``indicators_vs_duckdb`` is our indicators stage (``pipeline.load_period_inputs``: the
reports, the catalogue and the dossier tally, partition by partition) over that query's wall time, both
the best of three runs after the pipeline run, and the two results are compared value by value (the
bench fails if they differ).

    python scripts/bench_national.py [--year 2026] [--dossiers-per-day N] [--months 1-12] [--keep DIR]

Prints one JSON object (progress on stderr). ``--months 1-3`` runs a part of the year (quicker look).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import emit, log, machine, now_utc, target  # noqa: E402

from egov_index import bulk, pipeline  # noqa: E402
from egov_index.config import Settings  # noqa: E402
from egov_index.methodology import DOSSIER_MEASURES  # noqa: E402
from egov_index.periods import LOCAL_TZ, parse_period  # noqa: E402
from egov_index.pull import SourceEndpoint  # noqa: E402
from egov_index.ranking import period_window, tally_dossiers  # noqa: E402
from egov_index.registry import current_units  # noqa: E402
from egov_index.source_server.generator import NATIONAL_DOSSIERS_PER_DAY  # noqa: E402
from egov_index.source_server.process import running_server  # noqa: E402
from egov_index.stages import Stages, peak_rss_mib  # noqa: E402
from egov_index.store import DataStore  # noqa: E402

TARGET_YEAR_S = 120.0
TARGET_RSS_MIB = 4096.0
TARGET_VS_DUCKDB = 1.5
REPEATS = 3
DOSSIER_STAGES = ("pull", "read", "conform", "validate", "snapshot")


def duckdb_baseline(files: list[str], full_online: list[str], window: tuple[datetime, datetime]) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """The same dossier counts per commune and (commune, procedure) pairs, one SQL query each; wall time."""
    import duckdb

    flags = {
        "received": "true",
        "online": "channel = 'online'",
        "postal": "channel = 'postal'",
        "resolved": "status = 'resolved'",
        "resolved_on_time": "status = 'resolved' AND coalesce(resolved_at <= due_at, false)",
        "resolved_late": "status = 'resolved' AND NOT coalesce(resolved_at <= due_at, false)",
        "with_fee": "coalesce(fee_vnd, 0) > 0",
        "paid_online": "coalesce(fee_vnd, 0) > 0 AND coalesce(paid_online, false)",
        "digitised": "coalesce(digitised, false)",
        "full_online_procedure": "procedure_code IN (SELECT code FROM full_online)",
        "full_online_procedure_online": "channel = 'online' AND procedure_code IN (SELECT code FROM full_online)",
    }
    assert set(flags) == set(DOSSIER_MEASURES), "the baseline must compute every dossier measure"
    counts_sql = ", ".join(f"count(*) FILTER (WHERE {flags[name]})::BIGINT AS {name}" for name in DOSSIER_MEASURES)
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE full_online AS SELECT unnest(?::VARCHAR[]) AS code", [full_online])
    source = "read_parquet(?) WHERE received_at >= ? AND received_at < ?"
    params = [files, window[0], window[1]]
    counts = con.execute(
        f"SELECT commune_code::VARCHAR AS commune_code, {counts_sql} FROM {source} GROUP BY 1 ORDER BY 1", params
    ).df()
    pairs = con.execute(
        "SELECT DISTINCT commune_code::VARCHAR AS commune_code, procedure_code::VARCHAR AS procedure_code "
        f"FROM {source} AND channel = 'online' AND procedure_code IN (SELECT code FROM full_online) ORDER BY 1, 2",
        params,
    ).df()
    elapsed = time.perf_counter() - started
    con.close()
    return counts, pairs, elapsed


def snapshot_files(store: DataStore, months: list[str]) -> list[str]:
    """The current data file of each dossier snapshot partition of the months (from their manifests)."""
    dataset = pipeline.SNAPSHOT_DATASETS["dossiers"]
    files = []
    for month in months:
        where = {"received_month": month}
        if store.exists(dataset, where):
            files.append(str(store.partition_dir(dataset, where) / store.manifest(dataset, where)["data_file"]))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2026)
    parser.add_argument("--months", default="1-12", help="months of the year, e.g. 1-12 or 7-9")
    parser.add_argument("--dossiers-per-day", type=int, default=NATIONAL_DOSSIERS_PER_DAY)
    parser.add_argument("--keep", type=Path, help="keep the data root here instead of a temporary directory")
    args = parser.parse_args()
    first, _, last = args.months.partition("-")
    months = [f"{args.year}-{m:02d}" for m in range(int(first), int(last or first) + 1)]
    as_of = datetime(args.year + 1, 1, 1, tzinfo=LOCAL_TZ)  # the year closed: every dossier as of 1 January

    work = Path(tempfile.mkdtemp(prefix="egov-bench-national-"))
    root = args.keep or work / "data"
    settings = replace(
        Settings.from_env(),
        data_root=root,
        inbox_dir=work / "inbox",
        sql_url=f"sqlite:///{root / 'egov-index.sqlite'}",
    )
    root.mkdir(parents=True, exist_ok=True)
    store = DataStore(root)
    provinces = current_units().province_codes()
    stages = Stages()
    token = secrets.token_urlsafe(24)
    result: dict[str, Any] = {"benchmark": "national_year", "started_at": now_utc(), "machine": machine()}
    try:
        with running_server(work, token, dossiers_per_day=args.dossiers_per_day) as url:
            portal = SourceEndpoint("service_portal", url, token, read_timeout_s=300.0)
            reporting = SourceEndpoint("reporting_api", url, token)
            log(f"server {url}; {len(months)} months x {len(provinces)} provinces, as of {as_of.isoformat()}")
            started = time.perf_counter()
            with stages("reference"):  # catalogue + quarterly reports (small, through the paged API)
                pipeline.ingest_procedures(store, settings, portal, date(args.year, 12, 31))
                for quarter in sorted({f"{args.year}-Q{(int(m[5:]) - 1) // 3 + 1}" for m in months}):
                    pipeline.ingest_commune_reports(store, settings, reporting, quarter)
            summaries = bulk.backfill(store, settings, portal, months, as_of, provinces, stage=stages)
            log(f"{len(months)} months backfilled ({time.perf_counter() - started:.1f} s)")
            period = str(args.year) if len(months) == 12 else f"{args.year}-Q{(int(months[-1][5:]) - 1) // 3 + 1}"
            ranked = pipeline.rank_period(store, settings, period, stage=stages)
            end_to_end_s = time.perf_counter() - started
        log(f"year done in {end_to_end_s:.1f} s; DuckDB baseline")

        window = period_window(parse_period(period))
        files = snapshot_files(store, months)
        catalogue = store.read(pipeline.SNAPSHOT_DATASETS["procedures"]).to_pandas()
        catalogue = catalogue[catalogue["snapshot_date"] == catalogue["snapshot_date"].max()]
        full_online = sorted(catalogue.loc[catalogue["service_level"] == "full_online", "procedure_code"].astype(str))
        # best of REPEATS for both, on the same files and the same (now warm) page cache: DuckDB's one-shot
        # query, and our indicators stage alone (pipeline.load_period_inputs: reports, catalogue, dossier tally)
        duckdb_runs = [duckdb_baseline(files, full_online, window) for _ in range(REPEATS)]
        duck_counts, duck_pairs, _ = duckdb_runs[0]
        duckdb_s = min(run[2] for run in duckdb_runs)
        ours_runs = []
        for _ in range(REPEATS):
            began = time.perf_counter()
            pipeline.load_period_inputs(store, period)
            ours_runs.append(time.perf_counter() - began)
        indicators_s = min(ours_runs)
        ours = tally_dossiers(
            (store.read_partition(pipeline.SNAPSHOT_DATASETS["dossiers"], {"received_month": m}) for m in months),
            catalogue,
            window,
        )
        same_counts = ours.counts.reset_index(drop=True).equals(duck_counts[ours.counts.columns].reset_index(drop=True))
        used = ours.online_procedures  # communes x procedures, True where used online
        rows, cols = used.to_numpy().nonzero()
        our_pairs = pd.DataFrame({"commune_code": used.index[rows], "procedure_code": used.columns[cols]})
        our_pairs = our_pairs.astype(str).sort_values(["commune_code", "procedure_code"]).reset_index(drop=True)
        same_pairs = our_pairs.equals(duck_pairs.astype(str).reset_index(drop=True))

        rows = sum(s["rows_pulled"] for s in summaries)
        figures = {
            name: {
                "wall_s": round(f.wall_s, 2),
                "peak_rss_mib": round(f.peak_rss_mib, 1),
                "entries": f.entries,
                **({"rows_per_s": round(rows / f.wall_s)} if name in DOSSIER_STAGES + ("indicators",) and f.wall_s else {}),
            }
            for name, f in stages.figures.items()
        }
        peak = max(f.peak_rss_mib for f in stages.figures.values())
        result.update(
            {
                "year": args.year,
                "period": period,
                "months": len(months),
                "as_of": as_of.isoformat(),
                "dossiers_per_day": args.dossiers_per_day,
                "dossiers_pulled": rows,
                "dossiers_in_snapshot": sum(s["rows_snapshot"] for s in summaries),
                "dossiers_quarantined": sum(s["rows_quarantined"] for s in summaries),
                "end_to_end_s": round(end_to_end_s, 1),
                "rows_per_s": round(rows / end_to_end_s),
                "peak_rss_mib": round(peak, 1),
                "peak_rss_exact": stages.peak_rss_exact,
                "stages": figures,
                "gx_s_per_million_rows": round(stages.figures["validate"].wall_s / rows * 1e6, 3),
                "duckdb": {
                    "wall_s": round(duckdb_s, 3),
                    "runs_s": [round(run[2], 3) for run in duckdb_runs],
                    "ours_runs_s": [round(t, 3) for t in ours_runs],
                    "snapshot_files": len(files),
                    "same_counts_as_ours": bool(same_counts),
                    "same_province_facts_as_ours": bool(same_pairs),
                },
                "indicators_vs_duckdb": round(indicators_s / duckdb_s, 2),
                "ranking_rows": ranked["rows"],
                "process_peak_rss_mib_at_end": round(peak_rss_mib(), 1),
                "targets": [
                    target("national_year_wall_s", round(end_to_end_s, 1), "s", TARGET_YEAR_S),
                    target("national_year_peak_rss_mib", round(peak, 1), "MiB", TARGET_RSS_MIB),
                    target("indicators_vs_duckdb", round(indicators_s / duckdb_s, 2), "ratio", TARGET_VS_DUCKDB),
                    target("indicators_equal_duckdb", 0 if same_counts and same_pairs else 1, "differences", 0),
                ],
            }
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    emit(result)


if __name__ == "__main__":
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    main()
