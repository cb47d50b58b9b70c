"""Where the pipeline meets Airflow: connections -> endpoints, run context -> day and period.

The nightly run fires at 01:30 Asia/Ho_Chi_Minh with a one-day data interval
ending at the run time; the data it pulls is the previous *local civil day*
(00:00-24:00 +07:00), computed explicitly here. Manual and asset-triggered runs
may carry no data interval: then ``params['day']`` / ``params['period']`` decide,
else the day before the run's local date.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from egov_index.periods import LOCAL_TZ, parse_period, quarter_of
from egov_index.pull import SourceEndpoint


def endpoint_from_connection(conn_id: str) -> SourceEndpoint:
    """Build a SourceEndpoint from an Airflow Connection (type http; password = bearer token)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return endpoint_from_parts(conn_id, conn.host, conn.port, conn.schema, conn.password, conn.extra_dejson)


def endpoint_from_parts(
    name: str,
    host: str | None,
    port: int | None,
    schema: str | None,
    token: str | None,
    extra: Mapping[str, Any] | None = None,
) -> SourceEndpoint:
    if not host:
        raise ValueError(f"connection {name!r} has no host: set it to the source's host name or URL")
    if not token:
        raise ValueError(f"connection {name!r} has no password: put the source's bearer token there")
    if "://" in host:
        parts = urlsplit(host)
        scheme, netloc, base_path = parts.scheme, parts.netloc, parts.path
    else:
        scheme, netloc, base_path = (schema or "http"), host, ""
    if port and ":" not in netloc:
        netloc = f"{netloc}:{port}"
    extra = extra or {}
    return SourceEndpoint(
        name=name,
        base_url=f"{scheme}://{netloc}{extra.get('base_path', base_path)}".rstrip("/"),
        token=token,
        connect_timeout_s=float(extra.get("connect_timeout_s", 5.0)),
        read_timeout_s=float(extra.get("read_timeout_s", 60.0)),
        retries=int(extra.get("retries", 5)),
        headers=tuple(sorted((str(k), str(v)) for k, v in dict(extra.get("headers") or {}).items())),
    )


def _local_date(moment: datetime) -> date:
    return moment.astimezone(LOCAL_TZ).date()


def data_day(context: Mapping[str, Any]) -> date:
    """The local day a nightly run ingests."""
    params = context.get("params") or {}
    if params.get("day"):
        return date.fromisoformat(str(params["day"]))
    end = context.get("data_interval_end")
    if end is not None:
        return _local_date(end) - timedelta(days=1)
    return _local_date(context["dag_run"].run_after) - timedelta(days=1)


def ranking_period(context: Mapping[str, Any]) -> str:
    """The period a ranking run computes: params, else the triggering snapshot's, else last day's quarter."""
    params = context.get("params") or {}
    if params.get("period"):
        return parse_period(str(params["period"])).label
    events = context.get("triggering_asset_events") or {}
    periods = sorted(
        str(event.extra["period"])
        for asset_events in events.values()
        for event in asset_events
        if (event.extra or {}).get("period")
    )
    if periods:
        return periods[-1]
    return quarter_of(_local_date(context["dag_run"].run_after) - timedelta(days=1))


def backfill_plan_inputs(context: Mapping[str, Any]) -> tuple[str, str, datetime | None, datetime]:
    """(first_month, last_month, as_of or None, now) of a bulk-backfill run from its params."""
    params = context.get("params") or {}
    as_of = params.get("as_of")
    cut = None
    if as_of:
        cut = datetime.fromisoformat(str(as_of))
    now = context["dag_run"].run_after
    return str(params["first_month"]), str(params["last_month"]), cut, now
