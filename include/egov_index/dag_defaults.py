"""What the DAG files share: assets, default args, the retry policy. Light imports only (parsed every 30 s)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

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
                "builtins.ValueError",
            ],
            action=RetryAction.FAIL,
            reason="bad data, bad configuration or a refused request: a retry cannot fix it",
        )
    ]
)

DEFAULT_ARGS = {
    "owner": "egov-data-engineering",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=15),
    "retry_policy": FAIL_FAST,
}
