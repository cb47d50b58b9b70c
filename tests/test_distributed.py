"""The docker-compose deployment, proven without Docker: PostgreSQL + Redis + CeleryExecutor.

The nightly DAG is triggered through the REST API v2 of a natively started api-server, runs on two
Celery workers, and publishes exactly what the embedded deployment (SQLite, `airflow dags test`)
publishes for the same day from the same source server. The processes, their configuration (taken
from docker-compose.yml) and the teardown are in tests/native_airflow.py.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

# the shared fixtures (one native deployment per session); the module is imported as a plugin first,
# so its names are imported inside the tests
pytest_plugins = ["native_airflow"]
pytestmark = [pytest.mark.e2e, pytest.mark.distributed]

if TYPE_CHECKING:
    from native_airflow import Cluster, Reference

DAY = "2026-09-30"
PROVINCES = 34


def test_nightly_run_on_two_celery_workers_publishes_what_the_embedded_run_publishes(
    cluster: Cluster, reference: Reference
):
    from native_airflow import NIGHTLY, WORKERS, manifest_digests

    t0 = time.monotonic()
    run_id = cluster.trigger(NIGHTLY, {"day": DAY})
    # the same day through the embedded deployment, meanwhile
    meanwhile = reference.nightlies_meanwhile([{"conf": {"day": DAY}}])
    with cluster.diagnostics(NIGHTLY, [run_id]), meanwhile as embedded_done:
        states = cluster.wait_runs(NIGHTLY, [run_id])
        distributed_s = time.monotonic() - t0
        assert states == {run_id: "success"}

        tis = cluster.task_instances(NIGHTLY, run_id)
        assert {ti["state"] for ti in tis} == {"success"}
        pulls = [ti for ti in tis if ti["task_id"] == "pull_dossiers"]
        assert sorted(ti["map_index"] for ti in pulls) == list(range(PROVINCES))
        # every task ran on a Celery worker, and both workers took a share (mapped pulls included)
        assert {ti["hostname"] for ti in tis} == set(WORKERS)
        assert {ti["hostname"] for ti in pulls} == set(WORKERS)
        assert cluster.xcom(NIGHTLY, run_id, "resolve_day")["day"] == DAY

        embedded_s = embedded_done()
    native, embedded = manifest_digests(cluster.data_root), manifest_digests(reference.data_root)
    assert any(k.startswith("snapshots/dossiers/") for k in native)
    assert any(k.startswith("quarantine/") for k in native)
    assert native == embedded
    print(
        f"\ndistributed run {distributed_s:.1f} s ({len(tis)} task instances: "
        f"{ {w: sum(ti['hostname'] == w for ti in tis) for w in WORKERS} }), embedded run {embedded_s:.1f} s"
    )
