"""Nightly ingest: yesterday's dossiers, the current quarter's commune reports, the catalogue."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, teardown

from egov_index.dag_defaults import (
    DEFAULT_ARGS,
    INGEST_DEADLINE,
    REPORTING_API_POOL,
    SERVICE_PORTAL_POOL,
    SNAPSHOTS,
    task,
)

DOC = """
### Nightly ingest (egov_nightly_ingest)

**What it does.** Every night at 01:30 (Asia/Ho_Chi_Minh) it pulls, for the previous local day:
the public-service portal's procedure catalogue and the dossiers updated that day (one mapped task per
province, named after the province; at most as many at once as the `egov_service_portal` pool has
slots), then validates and publishes the day's dossiers as one batch; the commune
reports of the current quarter from the reporting API (communes may revise them), and the Excel/CSV
report files waiting in the inbox folder (each file once; a changed file is a new version). Each batch is validated with Great
Expectations (`expectations/*.json`); rows that break a rule go to `quarantine/` with the reason, the
rest is published as a Parquet snapshot under the data root (`snapshots/...`). The last task checks that
every row pulled is either in a snapshot or in quarantine, then signals the ranking DAG. A final
teardown task builds the run's Great Expectations Data Docs (path in its log; also on failure) under
`quality/data_docs/runs/<run>/index.html` of the data root.

**When it fails.**
- *DataQualityBlocked*: the log names the dataset, rule, column and examples. Ask the source's owner to
  correct the data, then clear the task. Nothing was published from that batch.
- *SourceRejectedError (401/403/4xx)*: the token or URL in the Airflow Connection
  `egov_reporting_api` / `egov_service_portal` is wrong or expired: fix the Connection, clear the task.
- *SourceError after retries*: the source was down; clear the task when it is back.
- *InboxFilesFailed*: the named files could not be read or were blocked; they are in `inbox/failed/`
  with the reason beside each. The other files were ingested. Ask the commune to correct and re-send,
  then clear the task.
- Rerunning a day gives the same snapshots (latest version per record wins; no duplicates).
"""


@dag(
    dag_id="egov_nightly_ingest",
    schedule=CronTriggerTimetable("30 1 * * *", timezone="Asia/Ho_Chi_Minh", interval=timedelta(days=1)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    deadline=INGEST_DEADLINE,
    tags=["egov-index", "ingest"],
    doc_md=DOC,
    params={"day": Param(None, type=["null", "string"], format="date", description="Override: local day to ingest")},
)
def egov_nightly_ingest():
    @task
    def resolve_day(**context) -> dict:
        from egov_index.periods import quarter_of
        from egov_index.runtime import data_day

        day = data_day(context)
        return {"day": day.isoformat(), "period": quarter_of(day)}

    @task(pool=SERVICE_PORTAL_POOL)
    def ingest_procedures(window: dict, **context) -> dict:
        from datetime import date

        from egov_index import pipeline
        from egov_index.config import SERVICE_PORTAL_CONN_ID, Settings
        from egov_index.runtime import endpoint_from_connection
        from egov_index.store import DataStore

        settings = Settings.from_env()
        endpoint = endpoint_from_connection(SERVICE_PORTAL_CONN_ID)
        return pipeline.ingest_procedures(
            DataStore(settings.data_root), settings, endpoint, date.fromisoformat(window["day"]), context["run_id"]
        )

    @task
    def list_provinces() -> list[dict]:
        from egov_index.registry import current_units

        provinces = current_units().provinces
        return [
            {"code": code, "name": name}
            for code, name in zip(provinces["province_code"], provinces["province_name"], strict=True)
        ]

    @task(pool=SERVICE_PORTAL_POOL, map_index_template="{{ province_name }}")
    def pull_dossiers(window: dict, province: dict, **context) -> dict:
        from datetime import date

        from airflow.sdk import get_current_context

        from egov_index import pipeline
        from egov_index.config import SERVICE_PORTAL_CONN_ID, Settings
        from egov_index.runtime import endpoint_from_connection

        get_current_context()["province_name"] = province["name"]  # the map index shown in the UI
        settings = Settings.from_env()
        endpoint = endpoint_from_connection(SERVICE_PORTAL_CONN_ID)
        day = date.fromisoformat(window["day"])
        return pipeline.pull_province_dossiers(settings, endpoint, day, province["code"], context["run_id"])

    @task
    def ingest_dossiers(window: dict, catalogue: dict, pulled: list[dict], **context) -> dict:
        from datetime import date

        from egov_index import pipeline
        from egov_index.config import Settings
        from egov_index.store import DataStore

        settings = Settings.from_env()
        day = date.fromisoformat(window["day"])
        provinces = [p["province_code"] for p in pulled]
        return pipeline.ingest_province_dossiers(
            DataStore(settings.data_root), settings, day, provinces, context["run_id"]
        )

    @task(pool=REPORTING_API_POOL)
    def ingest_commune_reports(window: dict, **context) -> dict:
        from egov_index import pipeline
        from egov_index.config import REPORTING_API_CONN_ID, Settings
        from egov_index.runtime import endpoint_from_connection
        from egov_index.store import DataStore

        settings = Settings.from_env()
        endpoint = endpoint_from_connection(REPORTING_API_CONN_ID)
        return pipeline.ingest_commune_reports(
            DataStore(settings.data_root), settings, endpoint, window["period"], context["run_id"]
        )

    @task
    def ingest_inbox_files(**context) -> dict:
        from egov_index import pipeline
        from egov_index.config import Settings
        from egov_index.store import DataStore

        settings = Settings.from_env()
        return pipeline.ingest_inbox(DataStore(settings.data_root), settings, context["run_id"])

    @task(outlets=[SNAPSHOTS])
    def check_accounting(window: dict, summaries: list[dict], files: dict, *, outlet_events) -> dict:
        from egov_index.pipeline import check_accounting

        totals = check_accounting(summaries + files["ingested"])
        outlet_events[SNAPSHOTS].extra = {"day": window["day"], "period": window["period"]}
        return {**window, **totals}

    @teardown
    def build_data_docs(**context) -> str:
        from egov_index.config import Settings
        from egov_index.data_docs import build_data_docs
        from egov_index.pipeline import data_docs_dir

        return str(build_data_docs([], data_docs_dir(Settings.from_env()), context["run_id"]))

    window = resolve_day()
    catalogue = ingest_procedures(window)
    pulled = pull_dossiers.partial(window=window).expand(province=list_provinces())
    dossiers = ingest_dossiers(window, catalogue, pulled)
    reports = ingest_commune_reports(window)
    files = ingest_inbox_files()
    reports >> files  # never concurrently: both merge into the same commune-report partition
    check_accounting(window, [catalogue, dossiers, reports], files) >> build_data_docs()


egov_nightly_ingest()
