"""Crash and concurrency: a writer killed with SIGKILL mid-publish leaves the previous partition
intact and the next publish cleans up; a reader looping during publishes sees one whole version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from egov_index.store import MANIFEST_FILE, STAGING, DataStore

WHERE = {"snapshot_date": "2026-09-30"}
DATASET = "snapshots/big"
BIG_ROWS = 3_000_000  # about a second to write: the kill lands mid-write

WRITER = """
import sys
import numpy as np
import pyarrow as pa
from egov_index.store import DataStore

store, dataset, rows = DataStore(sys.argv[1]), sys.argv[2], int(sys.argv[3])
version = 0
while True:
    version += 1
    rng = np.random.default_rng(version)
    table = pa.table({"id": np.arange(rows), "version": np.full(rows, version), "x": rng.random(rows)})
    store.publish(dataset, {"snapshot_date": "2026-09-30"}, table)
"""


def version_table(version: int, rows: int) -> pa.Table:
    rng = np.random.default_rng(version)
    return pa.table({"id": np.arange(rows), "version": np.full(rows, version), "x": rng.random(rows)})


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout_s`` (a bound, not a wait)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.001)


def staged_parquet(root: Path) -> bool:
    staging = root / STAGING
    return staging.is_dir() and any(p.suffix == ".parquet" for p in staging.iterdir())


@pytest.mark.integration
def test_sigkill_mid_publish_leaves_the_previous_partition_and_the_next_publish_cleans_up(tmp_path):
    store = DataStore(tmp_path)
    previous = version_table(0, 1_000)
    store.publish(DATASET, WHERE, previous)
    manifest_before = store.manifest(DATASET, WHERE)

    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), DATASET, str(BIG_ROWS)])
    try:
        wait_for(lambda: staged_parquet(tmp_path) or writer.poll() is not None, "the writer's staging file")
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert staged_parquet(tmp_path)  # the killed write's leftover

    # readers see the previous state, whole
    assert store.read_partition(DATASET, WHERE).equals(previous)
    assert store.manifest(DATASET, WHERE) == manifest_before and store.verify(DATASET, WHERE)
    assert store.read(DATASET, ds.field("snapshot_date") == "2026-09-30").num_rows == 1_000
    glob = f"{tmp_path}/{DATASET}/*/*.parquet"
    assert duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall() == [(1_000,)]

    # the next publish completes and removes the dead writer's leftover
    following = version_table(1, 2_000)
    store.publish(DATASET, WHERE, following)
    assert list((tmp_path / STAGING).iterdir()) == []
    assert store.read_partition(DATASET, WHERE).equals(following) and store.verify(DATASET, WHERE)


def read_during_publishes(
    store: DataStore, read: Callable[[], pa.Table], versions: dict[int, pa.Table], publishes: int
) -> list[int]:
    """Publish the versions in turn while a thread reads in a loop; returns the version each read saw.

    Each read must hold exactly one version, whole. After each publish the writer waits until a read
    that started after it has finished, so the reader sees every version.
    """
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    progress = threading.Condition()

    def reader() -> None:
        while not stop.is_set():
            try:
                table = read()
                found = set(table.column("version").to_pylist())
                assert len(found) == 1, f"a mix of versions {found}"
                [version] = found
                assert table.num_rows == versions[version].num_rows, "a partial version"
            except BaseException as exc:  # handed to the main thread
                errors.append(exc)
                stop.set()
            with progress:
                seen.append(-1 if errors else version)
                progress.notify_all()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    order = sorted(versions)
    try:
        for i in range(publishes):
            store.publish(DATASET, WHERE, versions[order[i % len(order)]])
            with progress:
                target = len(seen) + 2
                assert progress.wait_for(lambda target=target: len(seen) >= target or errors, timeout=60), "reader stalled"
    finally:
        stop.set()
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return seen


def test_a_reader_looping_during_publishes_sees_the_old_or_the_new_partition_never_a_mix(tmp_path):
    store = DataStore(tmp_path)
    versions = {1: version_table(1, 200_000), 2: version_table(2, 300_000)}
    store.publish(DATASET, WHERE, versions[2])
    con = duckdb.connect()
    manifests = f"{tmp_path}/{DATASET}/*/{MANIFEST_FILE}"
    turn = iter(range(1_000_000))

    def read() -> pa.Table:  # in turn: pyarrow.dataset through the store, DuckDB through the manifests
        if next(turn) % 2 == 0:
            return store.read(DATASET, ds.field("snapshot_date") == WHERE["snapshot_date"])
        return con.sql(
            f"""
            SET VARIABLE files = (SELECT list(replace(filename, '{MANIFEST_FILE}', data_file))
                                  FROM read_json('{manifests}', filename = true));
            SELECT version FROM read_parquet(getvariable('files'), hive_partitioning = true)
            """
        ).to_arrow_table()

    seen = read_during_publishes(store, read, versions, publishes=8)
    assert set(seen) == {1, 2}
