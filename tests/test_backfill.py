"""Backfill: `airflow backfill create` over three days, executed by the scheduler on the Celery workers,
publishes exactly what three nightly runs of those days (one by one, `airflow dags test`) publish.

The recipe (docs/operations.md "Backfill"): the nightly run that ingests local day D is the one
triggered at 01:30 Asia/Ho_Chi_Minh on D+1 (data interval D 01:30 -> D+1 01:30; Airflow shows the
interval's start, D 01:30, as its logical date). `--from-date` / `--to-date` select runs by that
trigger time, both ends inclusive. To ingest D1..D2: from D1+1 01:30 to D2+1 01:30, local time.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from egov_index.cli import nightly_logical_date
from egov_index.periods import LOCAL_TZ

# the shared fixtures (one native deployment per session); the module is imported as a plugin first,
# so its names are imported inside the tests
pytest_plugins = ["native_airflow"]
pytestmark = [pytest.mark.e2e, pytest.mark.distributed]

if TYPE_CHECKING:
    from native_airflow import Cluster, Reference

# D1..D2: three local days (in Q4, apart from test_distributed's day)
DAYS = ["2026-10-01", "2026-10-02", "2026-10-03"]
FROM_DATE = "2026-10-02T01:30:00+07:00"  # the run that ingests 2026-10-01
TO_DATE = "2026-10-04T01:30:00+07:00"  # the run that ingests 2026-10-03 (inclusive)
BACKFILL_TIMEOUT_S = 600  # the three runs, one after the other (about 210 s on 2 CPUs)


def test_recipe_dates_are_the_trigger_times_of_the_nightly_runs_of_the_days():
    triggers = [datetime.fromisoformat(nightly_logical_date(date.fromisoformat(d))) for d in DAYS]
    assert (triggers[0], triggers[-1]) == (datetime.fromisoformat(FROM_DATE), datetime.fromisoformat(TO_DATE))
    assert all(b - a == timedelta(days=1) for a, b in zip(triggers, triggers[1:], strict=False))
    assert all(dt.astimezone(LOCAL_TZ).date() - timedelta(days=1) == date.fromisoformat(d)
               for dt, d in zip(triggers, DAYS, strict=True))  # fmt: skip


def test_backfill_of_three_days_publishes_what_three_nightly_runs_publish(
    cluster: Cluster, reference: Reference
):
    from native_airflow import NIGHTLY, WORKERS, manifest_digests

    t0 = time.monotonic()
    with cluster.diagnostics():
        cluster.airflow(
            "backfill", "create", "--dag-id", NIGHTLY, "--from-date", FROM_DATE, "--to-date", TO_DATE,
            "--max-active-runs", "1",
        )  # fmt: skip
    created_s = time.monotonic() - t0
    runs = cluster.call(
        "GET", f"/api/v2/dags/{NIGHTLY}/dagRuns", run_type="backfill", order_by="logical_date"
    )
    runs = runs["dag_runs"]
    run_ids = [r["dag_run_id"] for r in runs]
    # the same days one by one through the embedded deployment (`airflow dags test`), meanwhile
    meanwhile = reference.nightlies_meanwhile(
        [{"logical_date": nightly_logical_date(date.fromisoformat(day))} for day in DAYS]
    )
    with cluster.diagnostics(NIGHTLY, run_ids), meanwhile as embedded_done:
        # --from-date/--to-date select runs by their trigger time (run_after = data interval end, 01:30 on
        # D+1); a run's logical date is its data interval's start (01:30 on D itself)
        triggers = [datetime.fromisoformat(nightly_logical_date(date.fromisoformat(d))) for d in DAYS]
        assert [datetime.fromisoformat(r["run_after"]) for r in runs] == triggers
        assert [datetime.fromisoformat(r["data_interval_end"]) for r in runs] == triggers
        assert [datetime.fromisoformat(r["logical_date"]) for r in runs] == [
            t - timedelta(days=1) for t in triggers
        ]
        # the CLI only created the runs (max 1 active): the scheduler executes them afterwards
        assert [r["state"] for r in runs][1:] == ["queued", "queued"]
        [backfill] = cluster.call("GET", "/api/v2/backfills", dag_id=NIGHTLY)["backfills"]
        assert backfill["max_active_runs"] == 1

        states = cluster.wait_runs(NIGHTLY, run_ids, timeout=BACKFILL_TIMEOUT_S)
        backfill_s = time.monotonic() - t0
        assert set(states.values()) == {"success"}
        ingested, hosts = [], set()
        for run_id in run_ids:
            ingested.append(cluster.xcom(NIGHTLY, run_id, "resolve_day")["day"])
            tis = cluster.task_instances(NIGHTLY, run_id)
            assert {ti["state"] for ti in tis} == {"success"}
            hosts |= {ti["hostname"] for ti in tis}
        assert ingested == DAYS
        assert hosts == set(WORKERS)  # run by the Celery workers, i.e. scheduled by the scheduler
        embedded_s = embedded_done()
    native, embedded = manifest_digests(cluster.data_root), manifest_digests(reference.data_root)
    for day in DAYS:  # each day was ingested (its catalogue snapshot, its dossier batch's accounting)
        assert f"snapshots/procedures/snapshot_date={day}/_manifest.json" in native
        assert f"quarantine/dataset=dossiers/partition={day}/_manifest.json" in native
    assert native == embedded
    print(
        f"\nbackfill: created in {created_s:.1f} s, 3 runs done after {backfill_s:.1f} s; "
        f"3 embedded runs {embedded_s:.1f} s"
    )
