"""Bulk backfill: months of dossiers from the portal's bulk export, one file per province and month."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag

from egov_index.dag_defaults import DEFAULT_ARGS, REPORTING_API_POOL, SERVICE_PORTAL_POOL, SNAPSHOTS, task

DOC = """
### Bulk backfill (egov_bulk_backfill)

**What it does.** Triggered by hand for a range of months (`first_month`..`last_month`, e.g. a whole
year): it ingests the procedure catalogue and the commune reports of the quarters covered, then, for
each month, downloads the portal's **bulk export** of every province (`GET /api/v1/exports/dossiers`:
every dossier received in the month, as of `as_of`; one Parquet file per province, checked against the
declared row count and digest) and publishes the month as one batch `month-YYYY-MM` through the same
Great Expectations gate, snapshot merge and quarantine as the nightly run. A month of the whole country
is about 0.9 M dossiers; months are ingested one at a time (memory: one month). The last task checks the
accounting and signals the ranking DAG with every period the months touch: `egov_ranking` then ranks
each quarter of the range in order, then each year the range covers from its January on (year to date
if the range ends within it), e.g. `2026-Q1` … `2026-Q4`, `2026` for a whole year; a year entered
mid-way is ranked by hand once complete (`{"period": "2025"}`).

**Params.** `as_of` (ISO-8601 with offset) is the cut-off: each dossier as of its last change before it.
Leave it empty for "now". The same months and `as_of` give the same snapshots (a rerun reuses the files
already downloaded; the snapshot merge keeps the latest version of each dossier, so a nightly run after
the backfill only adds newer versions).

**When it fails.** *SourceError / SourceDataError*: the export could not be downloaded or did not match
its declared row count or digest; nothing of that month was published: clear the `pull_month` task.
*DataQualityBlocked*: see the nightly DAG's docs. Recipe: docs/operations.md, "Backfill a year".
"""


@dag(
    dag_id="egov_bulk_backfill",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["egov-index", "ingest", "backfill"],
    doc_md=DOC,
    params={
        "first_month": Param("2026-01", type="string", pattern=r"^\d{4}-\d{2}$", description="first month, YYYY-MM"),
        "last_month": Param("2026-12", type="string", pattern=r"^\d{4}-\d{2}$", description="last month, YYYY-MM"),
        "as_of": Param(None, type=["null", "string"], description="cut-off, ISO-8601 with offset; empty: now"),
    },
)
def egov_bulk_backfill():
    @task
    def plan(**context) -> dict:
        from egov_index.bulk import plan as backfill_plan
        from egov_index.runtime import backfill_plan_inputs

        return backfill_plan(*backfill_plan_inputs(context))

    @task(pool=SERVICE_PORTAL_POOL)
    def ingest_catalogue(covered: dict, **context) -> dict:
        from datetime import date

        from egov_index import pipeline
        from egov_index.config import SERVICE_PORTAL_CONN_ID, Settings
        from egov_index.runtime import endpoint_from_connection
        from egov_index.store import DataStore

        settings = Settings.from_env()
        endpoint = endpoint_from_connection(SERVICE_PORTAL_CONN_ID)
        day = date.fromisoformat(covered["catalogue_day"])
        return pipeline.ingest_procedures(DataStore(settings.data_root), settings, endpoint, day, context["run_id"])

    @task(pool=REPORTING_API_POOL)
    def ingest_reports(covered: dict, **context) -> list[dict]:
        from egov_index import pipeline
        from egov_index.config import REPORTING_API_CONN_ID, Settings
        from egov_index.runtime import endpoint_from_connection
        from egov_index.store import DataStore

        settings = Settings.from_env()
        endpoint = endpoint_from_connection(REPORTING_API_CONN_ID)
        store = DataStore(settings.data_root)
        return [
            pipeline.ingest_commune_reports(store, settings, endpoint, quarter, context["run_id"])
            for quarter in covered["quarters"]
        ]

    @task
    def months(covered: dict) -> list[dict]:
        return [{"month": month, "as_of": covered["as_of"]} for month in covered["months"]]

    @task(pool=SERVICE_PORTAL_POOL, map_index_template="{{ month }}")
    def pull_month(job: dict) -> dict:
        from datetime import datetime

        from airflow.sdk import get_current_context

        from egov_index import bulk
        from egov_index.config import SERVICE_PORTAL_CONN_ID, Settings
        from egov_index.registry import current_units
        from egov_index.runtime import endpoint_from_connection

        get_current_context()["month"] = job["month"]
        settings = Settings.from_env()
        endpoint = endpoint_from_connection(SERVICE_PORTAL_CONN_ID)
        files = bulk.pull_month(
            settings, endpoint, job["month"], datetime.fromisoformat(job["as_of"]), current_units().province_codes()
        )
        return {**job, "files": len(files), "rows": sum(f.rows for f in files)}

    # one month in memory at a time
    @task(max_active_tis_per_dagrun=1, map_index_template="{{ month }}")
    def ingest_month(job: dict, catalogue: dict, reports: list[dict], **context) -> dict:
        from datetime import datetime

        from airflow.sdk import get_current_context

        from egov_index import bulk
        from egov_index.config import Settings
        from egov_index.registry import current_units
        from egov_index.store import DataStore

        get_current_context()["month"] = job["month"]
        settings = Settings.from_env()
        as_of = datetime.fromisoformat(job["as_of"])
        files = bulk.downloaded(settings, job["month"], as_of, current_units().province_codes())
        return bulk.ingest_month(DataStore(settings.data_root), settings, job["month"], files, context["run_id"])

    @task(outlets=[SNAPSHOTS])
    def check_accounting(covered: dict, catalogue: dict, reports: list[dict], summaries: list[dict], *, outlet_events) -> dict:
        from egov_index.pipeline import check_accounting
        from egov_index.runtime import backfill_snapshot_event

        totals = check_accounting([catalogue, *reports, *summaries])
        outlet_events[SNAPSHOTS].extra = backfill_snapshot_event(covered)  # the periods for the ranking DAG
        return {**covered, **totals}

    covered = plan()
    catalogue = ingest_catalogue(covered)
    reports = ingest_reports(covered)
    pulled = pull_month.expand(job=months(covered))
    summaries = ingest_month.partial(catalogue=catalogue, reports=reports).expand(job=pulled)
    check_accounting(covered, catalogue, reports, summaries)


egov_bulk_backfill()
