"""Chaos through Airflow: the real nightly DAG ``egov_nightly_ingest``, run with ``airflow dags test``
against reference servers answering with seeded random transient faults (429 + Retry-After, 5xx
bursts, connection resets, slow answers), publishes exactly what a fault-free run of the same day
publishes: the same snapshot and quarantine content hashes and the same ledger accounting.

Three whole DAG runs of 30 Sep 2026, each with its own Airflow home, data root and server (same data
seed and size): fault-free, chaos seed 1 and chaos seed 2 (rate 0.3): a bounded number of chaos runs.
They run at once (the chaos runs mostly wait on Retry-After and backoff). The servers' logs prove the
faults were served, and the access and task logs that the client retried each faulted request until
the source answered it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from airflow_home import migrate_home

from egov_index.cli import nightly_logical_date
from egov_index.ledger import Ledger
from egov_index.local_airflow import airflow_env, dags_test, source_connections
from egov_index.source_server.faults import CHAOS_KINDS
from egov_index.source_server.process import running_server
from egov_index.store import MANIFEST_FILE

pytestmark = pytest.mark.e2e

DAY = date(2026, 9, 30)
DOSSIERS_PER_DAY = 300  # every run alike; small, so three DAG runs fit the time budget
CHAOS_RATE = 0.3
CHAOS_SEEDS = (1, 2)
DAG_ID = "egov_nightly_ingest"
FAULT_LINE = re.compile(r"fault chaos:(\S+) on (\S+)")
ACCESS_LINE = re.compile(r'"GET (/api/v1/\S+) HTTP/1\.1" (\d{3})')
RESET_RETRY = re.compile(r"Retrying \(Retry\(.*\)\) after connection broken by 'ConnectionResetError")


@dataclass(frozen=True)
class NightlyRun:
    name: str
    chaos_rate: float
    chaos_seed: int
    base: Path

    @property
    def home(self) -> Path:
        return self.base / "airflow"

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def server_logs(self) -> str:
        return "".join(log.read_text() for log in sorted((self.base / "server").glob("*.log")))

    @property
    def task_log(self) -> str:
        return (self.home / "logs" / f"dags-test-{DAG_ID}.log").read_text(errors="replace")


def run_nightly(run: NightlyRun, token: str) -> None:
    """One whole nightly DAG run through Airflow against its own reference server."""
    env = airflow_env(run.home, run.data, inbox_dir=run.base / "inbox")
    migrate_home(env)  # the session's migrated database, with the pools
    with running_server(
        run.base / "server",
        token=token,
        dossiers_per_day=DOSSIERS_PER_DAY,
        chaos_rate=run.chaos_rate,
        chaos_seed=run.chaos_seed,
    ) as url:
        env.update(source_connections(url, token))
        dags_test(env, DAG_ID, nightly_logical_date(DAY))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, NightlyRun]:
    base = tmp_path_factory.mktemp("chaos-dag")
    runs = {"clean": NightlyRun("clean", 0.0, 0, base / "clean")}
    for seed in CHAOS_SEEDS:
        runs[f"chaos-{seed}"] = NightlyRun(f"chaos-{seed}", CHAOS_RATE, seed, base / f"chaos-{seed}")
    token = secrets.token_urlsafe(16)
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = [pool.submit(run_nightly, run, token) for run in runs.values()]
        for future in futures:
            future.result()  # raises if a DAG run failed (its log tail in the message)
    return runs


def digests(root: Path) -> dict[str, str]:
    return {
        str(m.relative_to(root)): json.loads(m.read_text())["sha256"]
        for sub in ("snapshots", "quarantine")
        for m in sorted((root / sub).rglob(MANIFEST_FILE))
    }


def accounting(run: NightlyRun) -> list[tuple]:
    """The run's ledger: one line per batch with its outcome, counts and raw payload digest."""
    with Ledger.open(f"sqlite:///{run.data / 'egov-index.sqlite'}") as ledger:
        entries = ledger.history(limit=1000)
    fields = ("source", "dataset", "partition", "outcome", "rows_pulled", "rows_snapshot", "rows_quarantined")
    return sorted(tuple(e[f] for f in (*fields, "payload_sha256")) for e in entries)


def test_the_nightly_dag_under_seeded_chaos_publishes_what_a_fault_free_run_publishes(
    runs: dict[str, NightlyRun],
) -> None:
    reference = digests(runs["clean"].data)
    for dataset in ("snapshots/procedures", "snapshots/dossiers", "snapshots/commune_reports", "quarantine"):
        assert any(k.startswith(dataset) for k in reference), dataset
    ledger = accounting(runs["clean"])
    assert {(source, dataset) for source, dataset, *_ in ledger} == {
        ("service_portal", "procedures"),
        ("service_portal", "dossiers"),
        ("reporting_api", "commune_reports"),
    }
    for _, _, _, outcome, pulled, snapshot, quarantined, _ in ledger:
        assert outcome == "succeeded" and pulled == snapshot + quarantined > 0
    for seed in CHAOS_SEEDS:
        run = runs[f"chaos-{seed}"]
        assert digests(run.data) == reference, run.name
        assert accounting(run) == ledger, run.name  # same rows pulled, kept and quarantined, same payloads


def test_the_faults_really_hit_the_dag_runs_and_each_faulted_request_was_retried_until_answered(
    runs: dict[str, NightlyRun],
) -> None:
    assert FAULT_LINE.findall(runs["clean"].server_logs) == []
    kinds: Counter[str] = Counter()
    for seed in CHAOS_SEEDS:
        run = runs[f"chaos-{seed}"]
        served = Counter(kind for kind, _ in FAULT_LINE.findall(run.server_logs))
        assert sum(served.values()) >= 5, f"{run.name}: chaos too quiet to prove anything: {served}"
        kinds.update(served)
        statuses: defaultdict[str, list[str]] = defaultdict(list)
        for request, status in ACCESS_LINE.findall(run.server_logs):
            statuses[request].append(status)
        refused = {request: s for request, s in statuses.items() if set(s) != {"200"}}
        assert sum(s.count("429") for s in refused.values()) == served["429"], run.name
        assert sum(s.count("503") + s.count("500") for s in refused.values()) == served["5xx-burst"], run.name
        for request, answers in refused.items():
            assert answers[-1] == "200", f"{run.name}: {request} never answered: {answers}"
        # a reset leaves no access line: the task log shows the client retrying each one
        assert len(RESET_RETRY.findall(run.task_log)) == served["reset"], run.name
    assert set(kinds) == set(CHAOS_KINDS), kinds  # every transient fault kind was absorbed
