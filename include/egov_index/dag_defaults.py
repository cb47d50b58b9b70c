"""What the DAG files share: assets, default args, the retry policy, alerts and deadlines.

Light imports only (parsed every 30 s).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from functools import partial

from airflow.sdk import Asset, DeadlineAlert, DeadlineReference, SyncCallback
from airflow.sdk import task as airflow_task
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

from egov_index.alerts import EgovAlertNotifier, deadline_missed

# One asset per published layer; the ranking DAG is scheduled on the snapshots one.
SNAPSHOTS = Asset(name="egov_snapshots", uri="file:///egov-index/snapshots")
RANKING = Asset(name="egov_ranking", uri="file:///egov-index/ranking")

# One pool per external source caps the concurrent calls to it (slots: include/egov_index/pools.json,
# created by `airflow pools import` in local_airflow.migrate and in compose's airflow-init).
SERVICE_PORTAL_POOL = "egov_service_portal"
REPORTING_API_POOL = "egov_reporting_api"

# Bad data and refused requests fail at once; network trouble and 5xx take the normal retries.
FAIL_FAST = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=[
                "egov_index.errors.DataQualityBlocked",
                "egov_index.errors.AccountingError",
                "egov_index.errors.SchemaDriftError",
                "egov_index.errors.SourceRejectedError",
                "egov_index.errors.SourceDataError",
                "egov_index.errors.InboxFilesFailed",
                "egov_index.errors.MissingInputError",
                "builtins.ValueError",
            ],
            action=RetryAction.FAIL,
            reason="bad data, bad configuration, a refused request or a missing input: a retry cannot fix it",
        )
    ]
)

# Airflow's @task with one default changed: TaskFlow infers multiple_outputs=True from a `-> dict`
# annotation and then also pushes every key of the result as an XCom of its own (decision N9). Our tasks
# return their summary as one XCom; the DAG files use this decorator, a test checks every task.
task = partial(airflow_task, multiple_outputs=False)

DEFAULT_ARGS = {
    "owner": "egov-data-engineering",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=15),
    "retry_policy": FAIL_FAST,
    # after the last try: e-mail and/or webhook, per the Connections egov_alerts_smtp / egov_alerts_webhook
    # (a missing Connection skips that channel). See docs/alerts.md.
    "on_failure_callback": [EgovAlertNotifier()],
}


# Deadline Alerts: the scheduler notices a run still unfinished at <reference + interval> and hands
# egov_index.alerts.deadline_missed to the executor (SyncCallback). Change the budget per DAG with the
# environment variable (minutes) of the *dag-processor*, or the defaults here. See docs/alerts.md.
def deadlines_enabled(argv: list[str] | None = None) -> bool:
    """False under ``airflow dags test`` (Airflow 3.3.2 crashes there when a run with deadlines succeeds:
    ``'dict' object has no attribute 'hex'`` in DagRun.update_state; it never evaluates them anyway) or
    when ``EGOV_DEADLINES=off``."""
    if os.environ.get("EGOV_DEADLINES", "on").strip().lower() in {"off", "0", "false", "no"}:
        return False
    args = sys.argv[1:3] if argv is None else argv[1:3]
    return args != ["dags", "test"]


def run_deadline(default: timedelta, env_var: str, what: str) -> list[DeadlineAlert]:
    """[DeadlineAlert]: the run must finish within ``default`` (or ``$env_var`` minutes) of being queued."""
    if not deadlines_enabled():
        return []
    minutes = os.environ.get(env_var, "").strip()
    interval = timedelta(minutes=float(minutes)) if minutes else default
    expected = f"{what} finishes within {_duration(interval)} of being queued"
    return [
        DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=interval,
            callback=SyncCallback(deadline_missed, kwargs={"expected": expected}),
            name=f"finished within {_duration(interval)} of being queued",
        )
    ]


def _duration(interval: timedelta) -> str:
    seconds = interval.total_seconds()
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


# Queued ~01:30 local: done by ~03:30, before maintenance (04:00) and long before the working day.
INGEST_DEADLINE = run_deadline(timedelta(hours=2), "EGOV_DEADLINE_INGEST_MINUTES", "The nightly ingest")
RANKING_DEADLINE = run_deadline(timedelta(hours=1), "EGOV_DEADLINE_RANKING_MINUTES", "The ranking")
MAINTENANCE_DEADLINE = run_deadline(
    timedelta(hours=1), "EGOV_DEADLINE_MAINTENANCE_MINUTES", "The maintenance"
)
