"""Daily maintenance of the data root: staging clean-up and retention."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronTriggerTimetable, Param, dag

from egov_index.dag_defaults import DEFAULT_ARGS, MAINTENANCE_DEADLINE, task

DOC = """
### Maintenance (egov_maintenance)

**What it does.** Every day at 04:00 (Asia/Ho_Chi_Minh), after the nightly ingest:
1. *clean_staging* removes what crashed or superseded writes left behind: local files in
   `_staging/` whose writer is gone (or older than an hour), and on S3 the data objects no manifest
   points to any more (older than an hour, so a reader holding an old manifest can finish).
2. *apply_retention* deletes daily partitions beyond the newest `EGOV_RETENTION_DAILY_PARTITIONS`
   days (default 35) — procedure catalogue, quarantine and validation results of daily batches —
   keeping the last day of every quarter and never the newest; and raw archive attempts older than
   `EGOV_RETENTION_RAW_DAYS` (default 35) except the newest complete attempt of each batch; and bulk
   export files (`raw/dossier_exports/as_of=…/month=…`) last written more than `EGOV_RETENTION_EXPORT_DAYS`
   (default 35) days ago except the newest complete `as_of` of each month, plus `*.partial` leftovers
   of killed downloads older than a day.
   Rankings, indicator values, commune-report and dossier snapshots are never deleted.
Trigger it with `{"dry_run": true}` to see in the task's return value (XCom) what would be deleted.

**When it fails.**
- *ValueError (retention settings)*: fix `EGOV_RETENTION_*` in the environment, clear the task.
- *OSError / permission errors*: the data root (local volume or S3 bucket) is not writable by the
  worker, or S3 credentials expired; fix access and clear the task. No reader sees a half-deleted
  partition: it disappears in one step (one rename locally, its manifest first on S3). An export set is
  deleted file by file, each file's metadata first: what is left is re-downloaded, never taken for complete.
- Skipping a day is harmless: the next run deletes whatever is due.
"""


@dag(
    dag_id="egov_maintenance",
    schedule=CronTriggerTimetable("0 4 * * *", timezone="Asia/Ho_Chi_Minh"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    deadline=MAINTENANCE_DEADLINE,
    tags=["egov-index", "maintenance"],
    doc_md=DOC,
    params={"dry_run": Param(False, type="boolean", description="Only list what retention would delete")},
)
def egov_maintenance():
    @task
    def clean_staging() -> int:
        from egov_index.config import Settings
        from egov_index.store import DataStore

        return DataStore(Settings.from_env().data_root).clean_staging()

    @task
    def apply_retention(**context) -> dict:
        from egov_index.config import Settings
        from egov_index.retention import RetentionPolicy, apply_retention
        from egov_index.store import DataStore

        settings = Settings.from_env()
        policy = RetentionPolicy(
            keep_daily=settings.retention_daily_partitions,
            raw_keep_days=settings.retention_raw_days,
            export_keep_days=settings.retention_export_days,
        )
        dry_run = bool(context["params"]["dry_run"])
        return apply_retention(DataStore(settings.data_root), policy, dry_run=dry_run).as_dict()

    clean_staging() >> apply_retention()


egov_maintenance()
