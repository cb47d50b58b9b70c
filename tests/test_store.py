"""Snapshot store: explicit schemas, Hive partitions, atomic replace, identical bytes on rewrite."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from egov_index.store import DATA_FILE, MANIFEST_FILE, DataStore, to_table

SCHEMA = pa.schema(
    [
        pa.field("period", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("unit_code", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("count", pa.int64()),
    ]
)


def frame(period: str, n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {"period": [period] * n, "unit_code": [f"{i:05d}" for i in range(n)], "value": [0.5] * n, "count": range(n)}
    )


def test_to_table_uses_the_explicit_schema():
    table = to_table(frame("2026-Q3"), SCHEMA)
    assert table.schema.equals(SCHEMA)
    assert table.schema.metadata is None


def test_publish_is_hive_partitioned_and_readable_by_pyarrow_and_duckdb(tmp_path):
    store = DataStore(tmp_path)
    store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3"), SCHEMA))
    store.publish("ranking", {"period": "2026-Q2"}, to_table(frame("2026-Q2", 2), SCHEMA))
    part = tmp_path / "ranking" / "period=2026-Q3"
    assert (part / DATA_FILE).exists() and (part / MANIFEST_FILE).exists()
    assert "period" not in pa.parquet.read_schema(part / DATA_FILE).names  # partition key lives in the path
    q3 = store.read("ranking", ds.field("period") == "2026-Q3")
    assert q3.num_rows == 3
    con = duckdb.connect()
    rows = con.execute(
        f"select period, count(*) from read_parquet('{tmp_path}/ranking/*/*.parquet', hive_partitioning=true) "
        "group by period order by period"
    ).fetchall()
    assert rows == [("2026-Q2", 2), ("2026-Q3", 3)]


def test_republish_replaces_partition_with_identical_bytes(tmp_path):
    store = DataStore(tmp_path)
    first = store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3"), SCHEMA))
    second = store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3"), SCHEMA))
    assert first.sha256 == second.sha256
    assert store.read("ranking").num_rows == 3  # replaced, not appended
    manifest = json.loads((first.path.parent / MANIFEST_FILE).read_text())
    assert manifest["rows"] == 3 and manifest["sha256"] == first.sha256


def test_failed_write_leaves_previous_partition_and_no_staging_file(tmp_path, monkeypatch):
    store = DataStore(tmp_path)
    store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3"), SCHEMA))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("egov_index.store.pq.write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3", 1), SCHEMA))
    assert store.read("ranking").num_rows == 3
    assert list((tmp_path / "_staging").iterdir()) == []


def test_clean_staging_removes_only_old_leftovers(tmp_path):
    import os

    store = DataStore(tmp_path)
    staging = tmp_path / "_staging"
    staging.mkdir()
    old, new = staging / "old.parquet", staging / "new.parquet"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (1, 1))
    assert store.clean_staging() == 1
    assert not old.exists() and new.exists()
