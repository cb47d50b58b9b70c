"""Where the pipeline meets Airflow: connections -> endpoints, run context -> day and periods.

The nightly run fires at 01:30 Asia/Ho_Chi_Minh with a one-day data interval
ending at the run time; the data it pulls is the previous *local civil day*
(00:00-24:00 +07:00), computed explicitly here. Manual and asset-triggered runs
may carry no data interval: then ``params['day']`` / ``params['period']`` decide,
else (ranking) the periods the triggering asset events name, else the day before the run's local date.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from egov_index.periods import LOCAL_TZ, parse_period, quarter_of
from egov_index.pull import SourceEndpoint

log = logging.getLogger(__name__)


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


def ranking_order(labels: Iterable[str]) -> list[str]:
    """Period labels checked, de-duplicated and in the order they are ranked: quarters chronologically,
    then years chronologically (a rank change reads the earlier period's published ranking)."""
    periods = {parse_period(str(label)) for label in labels}
    return [p.label for p in sorted(periods, key=lambda p: (not p.is_quarter, p.start))]


def ranking_periods(context: Mapping[str, Any]) -> list[str]:
    """The periods a ranking run computes, in order: ``params['period']`` alone if given; else every
    period the triggering asset events ask for (their ``periods`` lists and ``period`` values, see
    :func:`ranking_order`); else the quarter of the day before the run's local date."""
    params = context.get("params") or {}
    if params.get("period"):
        return [parse_period(str(params["period"])).label]
    events = context.get("triggering_asset_events") or {}
    wanted: list[str] = []
    for asset_events in events.values():
        for event in asset_events:
            extra = event.extra or {}
            periods = extra.get("periods") or ()
            wanted.extend([periods] if isinstance(periods, str) else (str(label) for label in periods))
            if extra.get("period"):
                wanted.append(str(extra["period"]))
    if wanted:
        return ranking_order(wanted)
    return [quarter_of(_local_date(context["dag_run"].run_after) - timedelta(days=1))]


def rank_in_order(periods: Iterable[str], rank: Callable[[str], dict]) -> list[dict]:
    """``rank(period)`` for each period, one after the other; the summaries in the same order.

    A failure re-raises the original exception (its type decides the retry, see dag_defaults.FAIL_FAST)
    with a note naming the period that failed and those already published before it.
    """
    summaries: list[dict] = []
    done: list[str] = []
    for period in periods:
        try:
            summaries.append(rank(period))
        except Exception as exc:
            published = ", ".join(done) or "none"
            message = f"ranking of {period} failed; published before it in this run: {published}"
            log.error("%s", message)
            exc.add_note(message)
            raise
        done.append(period)
    return summaries


def backfill_snapshot_event(covered: Mapping[str, Any]) -> dict[str, Any]:
    """The extra of a bulk backfill's snapshot event (``covered``: :func:`egov_index.bulk.plan`'s result).

    ``periods``: every quarter the months touch, then every year the months cover from its January on
    (the whole year, or year to date when the range ends within it), for :func:`ranking_periods`; a year
    entered mid-way (a range from November) is not ranked: its earlier months may never have been
    ingested, and a ranking of a year's tail would stand as that year's, and as the next year's baseline.
    ``period`` (the last quarter) is kept for older readers.
    """
    quarters = [str(q) for q in covered["quarters"]]
    months = {str(m) for m in covered["months"]}
    years = [year for year in {q[:4] for q in quarters} if _from_january(year, months)]
    return {
        "period": ranking_order(quarters)[-1],
        "periods": ranking_order([*quarters, *years]),
        "backfill": list(covered["months"]),
    }


def _from_january(year: str, months: set[str]) -> bool:
    """``months`` hold every month of ``year`` from January up to the last of them in ``year``."""
    last = max(int(m[5:]) for m in months if m.startswith(f"{year}-"))
    return all(f"{year}-{month:02d}" in months for month in range(1, last + 1))


def backfill_plan_inputs(context: Mapping[str, Any]) -> tuple[str, str, datetime | None, datetime]:
    """(first_month, last_month, as_of or None, now) of a bulk-backfill run from its params."""
    params = context.get("params") or {}
    as_of = params.get("as_of")
    cut = None
    if as_of:
        cut = datetime.fromisoformat(str(as_of))
    now = context["dag_run"].run_after
    return str(params["first_month"]), str(params["last_month"]), cut, now
