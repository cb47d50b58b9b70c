"""Period ranking: indicators, six category indices, overall index and ranks for quarters and years."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, teardown

from egov_index.dag_defaults import DEFAULT_ARGS, RANKING, RANKING_DEADLINE, SNAPSHOTS, task

DOC = """
### Period ranking (egov_ranking)

**What it does.** Runs whenever new snapshots are published (data-aware schedule on the `egov_snapshots`
asset) and recomputes the ranking of every period the triggering events name: the nightly ingest names
its day's quarter (quarter to date); a bulk backfill names every quarter its months touch, then every
year (year to date if partial). `resolve_period` lists them (quarters in order, then years; each once);
`rank_period` ranks them **one after the other** (the rank changes of a period read the rankings
published before it; one ranking in memory at a time) and returns a summary per period. For each period
it reads the commune-report, dossier and catalogue snapshots, computes every indicator of the
methodology (`include/egov_index/methodology/*.yaml`, chosen by `EGOV_METHODOLOGY`), the six category
indices, the overall index, the ranks (standard competition ranking) of 3,321 communes and 34 provinces
and the rank changes against the period before and a year earlier; checks the result with the `ranking`
expectation suite and publishes `ranking_v2/`, `indicator_values/`, `explanations/` and
`rank_uncertainty/` (`period=…`), the SQL tables, and a self-contained HTML report whose path is in the
log of `rank_period` (`reports/period=…/ranking-report-….html` under the data root). The `egov_ranking`
asset event lists the periods ranked (extra `periods`).
Trigger it by hand with `{"period": "2026-Q3"}` (or `"2026"` for a year): that period alone.

**When it fails.**
- Several periods: the task log (`ranking of … failed; published before it in this run: …`, also a note
  on the error) names the period that failed and those published before it. They stay published; the
  failed period and the ones after it are not ranked. Clearing `rank_period` ranks them all again (a
  rerun gives identical outputs); or trigger `{"period": …}` for each remaining one.
- *no commune-report snapshot for …*: run the nightly ingest for a day of that period first.
- *DataQualityBlocked on ranking*: a bug or a methodology error; the previous ranking stays published.
  Check the methodology file named in the log.
- *MethodologyError*: the methodology file is invalid; the message lists every problem (entry and allowed
  values). Fix the file and clear the task; nothing was published.
"""


@dag(
    dag_id="egov_ranking",
    schedule=[SNAPSHOTS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    deadline=RANKING_DEADLINE,
    tags=["egov-index", "ranking"],
    doc_md=DOC,
    params={
        "period": Param(
            None, type=["null", "string"], pattern=r"^\d{4}(-Q[1-4])?$", description="e.g. 2026-Q3 or 2026"
        )
    },
)
def egov_ranking():
    @task
    def resolve_period(**context) -> list[str]:
        """The periods to rank, in order (egov_index.runtime.ranking_periods)."""
        from egov_index.runtime import ranking_periods

        return ranking_periods(context)

    @task(outlets=[RANKING])
    def rank_period(periods: list[str], **context) -> list[dict]:
        """Rank each period in turn (not mapped: order matters, one ranking in memory at a time)."""
        from egov_index import pipeline
        from egov_index.config import Settings
        from egov_index.runtime import rank_in_order
        from egov_index.store import DataStore

        settings = Settings.from_env()
        store = DataStore(settings.data_root)
        summaries = rank_in_order(
            periods, lambda period: pipeline.rank_period(store, settings, period, context["run_id"])
        )
        context["outlet_events"][RANKING].extra = {"periods": list(periods)}
        return summaries

    @teardown
    def build_data_docs(**context) -> str:
        from egov_index.config import Settings
        from egov_index.data_docs import build_data_docs
        from egov_index.pipeline import data_docs_dir

        return str(build_data_docs([], data_docs_dir(Settings.from_env()), context["run_id"]))

    rank_period(resolve_period()) >> build_data_docs()


egov_ranking()
