"""Snapshot store: explicit schemas, Hive partitions, atomic replace, identical bytes on rewrite,
manifests, schema versions, the latest view; every published dataset read by DuckDB and pyarrow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from egov_index import __version__, pipeline, schemas
from egov_index.store import (
    DATA_FILE,
    MANIFEST_FILE,
    SCHEMA_FILE,
    DataStore,
    SchemaChangeError,
    dataset_version,
    to_table,
    versioned,
)

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


def synthetic_frame(schema: pa.Schema, n: int, **constants: str) -> pd.DataFrame:
    """``n`` rows for any published schema (distinct keys per row), ``constants`` fixing some columns."""
    start = datetime(2026, 9, 1, tzinfo=UTC)
    columns = {}
    for field in schema:
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if field.name in constants:
            values: list = [constants[field.name]] * n
        elif pa.types.is_string(kind):
            values = [f"{field.name[:4]}-{i:05d}" for i in range(n)]
        elif pa.types.is_timestamp(kind):
            values = [start + timedelta(minutes=i) for i in range(n)]
        elif pa.types.is_integer(kind):
            values = list(range(n))
        elif pa.types.is_floating(kind):
            values = [i / 8 for i in range(n)]
        else:
            values = [i % 2 == 0 for i in range(n)]
        columns[field.name] = values
    return pd.DataFrame(columns)


def scalar(sql: str) -> object:
    return duckdb.connect().execute(sql).fetchall()[0][0]


def with_partition_columns(schema: pa.Schema, *names: str) -> pa.Schema:
    for name in names:
        if name not in schema.names:
            schema = schema.append(pa.field(name, pa.string(), nullable=False))
    return schema


# dataset path -> (published schema, partitions written, the DuckDB glob of its data files)
PUBLISHED: dict[str, tuple[pa.Schema, list[dict[str, str]], str]] = {
    pipeline.RANKING: (schemas.RANKING_SCHEMA, [{"period": "2026-Q2"}, {"period": "2026-Q3"}], "*/*.parquet"),
    pipeline.INDICATOR_VALUES: (
        schemas.INDICATOR_VALUE_SCHEMA,
        [{"period": "2026-Q2"}, {"period": "2026-Q3"}],
        "*/*.parquet",
    ),
    pipeline.SNAPSHOT_DATASETS["commune_reports"]: (
        schemas.COMMUNE_REPORT_SCHEMA,
        [{"period": "2026-Q2"}, {"period": "2026-Q3"}],
        "*/*.parquet",
    ),
    pipeline.SNAPSHOT_DATASETS["dossiers"]: (
        with_partition_columns(schemas.DOSSIER_SCHEMA, "received_month"),
        [{"received_month": "2026-08"}, {"received_month": "2026-09"}],
        "*/*.parquet",
    ),
    pipeline.SNAPSHOT_DATASETS["procedures"]: (
        with_partition_columns(schemas.PROCEDURE_SCHEMA, "snapshot_date"),
        [{"snapshot_date": "2026-09-29"}, {"snapshot_date": "2026-09-30"}],
        "*/*.parquet",
    ),
    pipeline.QUARANTINE: (
        schemas.QUARANTINE_SCHEMA,
        [{"dataset": "dossiers", "partition": "2026-09-30"}, {"dataset": "commune_reports", "partition": "2026-Q3"}],
        "*/*/*.parquet",
    ),
    pipeline.VALIDATION_RESULTS: (
        schemas.VALIDATION_RESULT_SCHEMA,
        [{"dataset": "dossiers", "partition": "2026-09-30"}, {"dataset": "procedures", "partition": "2026-09-30"}],
        "*/*/*.parquet",
    ),
}


def populate(store: DataStore, rows: int = 5) -> None:
    """Every published dataset, two partitions each, rows = ``rows`` x (position of the partition + 1)."""
    for path, (schema, partitions, _) in PUBLISHED.items():
        for i, partition in enumerate(partitions):
            table = to_table(synthetic_frame(schema, rows * (i + 1), **partition), schema)
            store.publish(path, partition, table, {"source_sha256": "0" * 64})


def test_to_table_uses_the_explicit_schema():
    table = to_table(frame("2026-Q3"), SCHEMA)
    assert table.schema.equals(SCHEMA)
    assert table.schema.metadata is None


@pytest.mark.parametrize("path", list(PUBLISHED))
def test_every_dataset_reads_with_duckdb_and_pyarrow_using_partition_filters(tmp_path, path):
    store = DataStore(tmp_path)
    populate(store)
    schema, partitions, glob = PUBLISHED[path]
    last = partitions[-1]  # published with 10 rows, the first with 5
    where_sql = " AND ".join(f'"{k}" = \'{v}\'' for k, v in last.items())
    count = scalar(
        f"SELECT count(*) FROM read_parquet('{tmp_path}/{path}/{glob}', hive_partitioning = true) WHERE {where_sql}"
    )
    assert count == 10
    expr = None
    for k, v in last.items():
        expr = (ds.field(k) == v) if expr is None else expr & (ds.field(k) == v)
    direct = ds.dataset(tmp_path / path, format="parquet", partitioning="hive").to_table(filter=expr)
    through_store = store.read(path, expr)
    assert direct.num_rows == through_store.num_rows == 10
    assert set(through_store.column_names) == set(schema.names)
    for name in set(schema.names) - set(last):  # data columns keep their explicit Arrow types
        assert through_store.schema.field(name).type == schema.field(name).type, name
    assert store.partitions(path) == sorted(partitions, key=lambda p: tuple(p.values()))
    files = pq.ParquetFile(tmp_path / path / "/".join(f"{k}={v}" for k, v in last.items()) / DATA_FILE)
    assert files.metadata.row_group(0).column(0).compression == "ZSTD"
    assert not set(last) & set(files.schema_arrow.names)  # partition keys live in the path


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


def test_a_year_partition_reads_as_a_string(tmp_path):
    store = DataStore(tmp_path)
    store.publish("ranking", {"period": "2026"}, to_table(frame("2026"), SCHEMA))
    assert store.read("ranking", ds.field("period") == "2026").num_rows == 3


def test_manifest_records_rows_schema_hash_versions_and_caller_fields(tmp_path):
    store = DataStore(tmp_path)
    published = store.publish(
        "ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3"), SCHEMA), {"data_quality": {"failed": 0}}
    )
    manifest = store.manifest("ranking", {"period": "2026-Q3"})
    assert manifest["rows"] == 3 and manifest["sha256"] == published.sha256
    assert manifest["bytes"] == published.path.stat().st_size
    assert manifest["data_file"] == f"_objects/data-{published.sha256[:16]}.parquet"
    assert os.path.samefile(published.path.parent / manifest["data_file"], published.path)  # one file, two names
    assert published.path.name == DATA_FILE and manifest["partition"] == {"period": "2026-Q3"}
    assert manifest["code_version"] == __version__ and manifest["version"] == 1
    assert manifest["data_quality"] == {"failed": 0}
    assert [f["name"] for f in manifest["schema"]] == SCHEMA.names
    assert store.verify("ranking", {"period": "2026-Q3"})


def test_same_day_twice_gives_identical_manifests_and_no_duplicate_rows(tmp_path):
    store = DataStore(tmp_path)
    day = {"snapshot_date": "2026-09-30"}
    schema = PUBLISHED[pipeline.SNAPSHOT_DATASETS["procedures"]][0]
    table = to_table(synthetic_frame(schema, 50, **day), schema)
    manifest_file = store.partition_dir("snapshots/procedures", day) / MANIFEST_FILE
    first = store.publish("snapshots/procedures", day, table, {"accounting": {"rows_pulled": 50}})
    first_manifest = manifest_file.read_bytes()
    second = store.publish("snapshots/procedures", day, table, {"accounting": {"rows_pulled": 50}})
    assert first.sha256 == second.sha256
    assert manifest_file.read_bytes() == first_manifest
    read = store.read("snapshots/procedures").to_pandas()
    assert len(read) == 50 and not read["procedure_code"].duplicated().any()


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


def test_a_crash_between_data_and_manifest_is_detected_and_repaired_by_the_rerun(tmp_path, monkeypatch):
    store = DataStore(tmp_path)
    where = {"period": "2026-Q3"}
    store.publish("ranking", where, to_table(frame("2026-Q3"), SCHEMA))
    real_write_json = DataStore._write_json

    def crash_on_manifest(self, path, doc):
        if path.name == MANIFEST_FILE:
            raise OSError("killed")
        real_write_json(self, path, doc)

    monkeypatch.setattr(DataStore, "_write_json", crash_on_manifest)
    with pytest.raises(OSError):
        store.publish("ranking", where, to_table(frame("2026-Q3", 5), SCHEMA))
    monkeypatch.undo()
    assert store.read("ranking").num_rows == 5  # whole new data, never half of it
    assert not store.verify("ranking", where)  # ... but the manifest still describes the old file
    store.publish("ranking", where, to_table(frame("2026-Q3", 5), SCHEMA))
    assert store.verify("ranking", where)


def test_clean_staging_removes_only_old_leftovers(tmp_path):
    store = DataStore(tmp_path)
    staging = tmp_path / "_staging"
    staging.mkdir()
    old, new = staging / "old.parquet", staging / "new.parquet"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (1, 1))
    assert store.clean_staging() == 1
    assert not old.exists() and new.exists()


def test_clean_staging_removes_leftovers_of_dead_writers_at_once_and_keeps_live_ones(tmp_path):
    from egov_index.store import _HOST

    store = DataStore(tmp_path)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    staging = tmp_path / "_staging"
    staging.mkdir()
    dead = staging / f"{_HOST}-{finished.stdout.strip()}-{'a' * 32}.parquet"
    live = staging / f"{_HOST}-{os.getpid()}-{'b' * 32}.parquet"
    other_host = staging / f"elsewhere-1-{'c' * 32}.parquet"
    for path in (dead, live, other_host):
        path.write_bytes(b"x")
    store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3"), SCHEMA))  # cleans first
    assert sorted(p.name for p in staging.iterdir()) == sorted([live.name, other_host.name])


def test_unsafe_partition_values_are_refused(tmp_path):
    store = DataStore(tmp_path)
    for bad in ("../x", "a/b", "", ".."):
        with pytest.raises(ValueError):
            store.publish("ranking", {"period": bad}, to_table(frame("2026-Q3"), SCHEMA))


def test_additive_change_is_accepted_and_older_partitions_read_it_as_null(tmp_path):
    store = DataStore(tmp_path)
    store.publish("ranking", {"period": "2026-Q2"}, to_table(frame("2026-Q2"), SCHEMA))
    wider = SCHEMA.append(pa.field("note", pa.string(), nullable=True))
    store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3").assign(note="new"), wider))
    table = store.read("ranking").to_pandas().sort_values("period")
    assert table["note"].isna().sum() == 3 and (table["note"] == "new").sum() == 3
    assert json.loads((tmp_path / "ranking" / SCHEMA_FILE).read_text())["fields"][-1]["name"] == "note"


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.remove(s.get_field_index("count")),  # dropped
        lambda s: s.set(s.get_field_index("count"), pa.field("total", pa.int64())),  # renamed
        lambda s: s.set(s.get_field_index("count"), pa.field("count", pa.float64())),  # retyped
        lambda s: s.append(pa.field("extra", pa.int64(), nullable=False)),  # added as non-null
    ],
    ids=["dropped", "renamed", "retyped", "added-non-null"],
)
def test_a_breaking_change_within_a_version_is_refused(tmp_path, change):
    store = DataStore(tmp_path)
    store.publish("ranking", {"period": "2026-Q2"}, to_table(frame("2026-Q2"), SCHEMA))
    changed = change(SCHEMA)
    data = frame("2026-Q3").assign(total=1, extra=1)
    with pytest.raises(SchemaChangeError, match="ranking_v2"):
        store.publish("ranking", {"period": "2026-Q3"}, to_table(data, changed))
    assert store.partitions("ranking") == [{"period": "2026-Q2"}]


def test_a_new_version_is_a_sibling_path_that_v1_readers_never_see(tmp_path):
    store = DataStore(tmp_path)
    assert versioned("ranking", 1) == "ranking" and versioned("ranking", 2) == "ranking_v2"
    assert dataset_version("ranking") == 1 and dataset_version("ranking_v2") == 2
    store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3"), SCHEMA))
    retyped = SCHEMA.set(SCHEMA.get_field_index("count"), pa.field("count", pa.float64()))
    store.publish(versioned("ranking", 2), {"period": "2026-Q3"}, to_table(frame("2026-Q3", 4), retyped))
    assert store.read("ranking").num_rows == 3 and store.read("ranking_v2").num_rows == 4
    assert store.manifest("ranking_v2", {"period": "2026-Q3"})["version"] == 2
    glob = f"{tmp_path}/ranking/*/*.parquet"
    assert scalar(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)") == 3


def test_latest_view_is_a_self_contained_copy_of_the_newest_period(tmp_path):
    store = DataStore(tmp_path)
    schema = schemas.RANKING_SCHEMA
    for period, n in (("2026-Q2", 4), ("2026-Q3", 6)):
        store.publish(pipeline.RANKING, {"period": period}, to_table(synthetic_frame(schema, n, period=period), schema))
    view = store.publish_latest(pipeline.RANKING, {"period": "2026-Q3"})
    assert view.path == tmp_path / "latest" / pipeline.RANKING / DATA_FILE
    latest = store.read_latest(pipeline.RANKING)
    assert latest.schema.equals(schema)  # the partition column is a real column, with its published type
    assert latest.num_rows == 6 and set(latest.column("period").to_pylist()) == {"2026-Q3"}
    assert scalar(f"SELECT DISTINCT period FROM read_parquet('{view.path}')") == "2026-Q3"
    again = store.publish_latest(pipeline.RANKING, {"period": "2026-Q3"})
    assert again.sha256 == view.sha256  # idempotent
    older = store.publish_latest(pipeline.RANKING, {"period": "2026-Q2"})
    assert older.partition == {"period": "2026-Q3"} and store.read_latest(pipeline.RANKING).num_rows == 6
    store.publish_latest(pipeline.RANKING, {"period": "2026-Q2"}, force=True)
    assert store.read_latest(pipeline.RANKING).num_rows == 4
    manifest = json.loads((tmp_path / "latest" / pipeline.RANKING / MANIFEST_FILE).read_text())
    assert manifest["partition"] == {"period": "2026-Q2"}
    assert manifest["source_sha256"] == store.manifest(pipeline.RANKING, {"period": "2026-Q2"})["sha256"]


def test_latest_view_refuses_an_incomplete_partition(tmp_path):
    store = DataStore(tmp_path)
    store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3"), SCHEMA))
    with pytest.raises(FileNotFoundError):
        store.publish_latest("ranking", {"period": "2026-Q4"})
    pq.write_table(to_table(frame("2026-Q3", 7), SCHEMA).drop_columns(["period"]),
                   store.partition_dir("ranking", {"period": "2026-Q3"}) / DATA_FILE)
    with pytest.raises(RuntimeError, match="does not match its manifest"):
        store.publish_latest("ranking", {"period": "2026-Q3"})


def test_delete_partition_unpublishes_it_in_one_step(tmp_path):
    store = DataStore(tmp_path)
    for period in ("2026-Q2", "2026-Q3"):
        store.publish("ranking", {"period": period}, to_table(frame(period), SCHEMA))
    store.delete_partition("ranking", {"period": "2026-Q2"})
    assert store.partitions("ranking") == [{"period": "2026-Q3"}]
    assert not store.partition_dir("ranking", {"period": "2026-Q2"}).exists()
    assert list((tmp_path / "_staging").iterdir()) == []


def test_manifests_of_a_dataset_read_with_duckdb_as_in_the_data_dictionary(tmp_path):
    store = DataStore(tmp_path)
    populate(store)
    con = duckdb.connect()
    rows = con.execute(
        f"""
        SET VARIABLE ranking_files = (
          SELECT list(replace(filename, '{MANIFEST_FILE}', data_file))
          FROM read_json('{tmp_path}/{pipeline.RANKING}/*/{MANIFEST_FILE}', filename = true));
        SELECT period, count(*) FROM read_parquet(getvariable('ranking_files'), hive_partitioning = true,
                                                  union_by_name = true)
        GROUP BY period ORDER BY period
        """
    ).fetchall()
    assert rows == [("2026-Q2", 5), ("2026-Q3", 10)]


# --- retention ---------------------------------------------------------------------------------


def populate_daily(store: DataStore, first: str, last: str) -> list[str]:
    days = [d.date().isoformat() for d in pd.date_range(first, last, freq="D")]
    procedures = PUBLISHED[pipeline.SNAPSHOT_DATASETS["procedures"]][0]
    for day in days:
        where = {"snapshot_date": day}
        store.publish(pipeline.SNAPSHOT_DATASETS["procedures"], where, to_table(synthetic_frame(procedures, 2, **where), procedures))
    for batch in (*days[-13:], "2026-Q2", "2026-Q3", "file-0123456789ab"):
        where = {"dataset": "dossiers" if batch[:4] != "file" else "commune_reports", "partition": batch}
        for path in (pipeline.QUARANTINE, pipeline.VALIDATION_RESULTS):
            schema = PUBLISHED[path][0]
            store.publish(path, where, to_table(synthetic_frame(schema, 2, **where), schema))
    return days


def raw_attempt(root, batch: str, started: datetime, complete: bool) -> str:
    from egov_index.raw_archive import ATTEMPT_PREFIX, COMPLETE_FILE

    name = f"{ATTEMPT_PREFIX}{started:%Y%m%dT%H%M%S%fZ}-{started.microsecond:08x}"
    directory = root / "raw" / "dossiers" / batch / name
    directory.mkdir(parents=True)
    (directory / "page-00001.json.gz").write_bytes(b"x")
    if complete:
        (directory / COMPLETE_FILE).write_text("{}")
    return f"raw/dossiers/{batch}/{name}"


def test_retention_keeps_recent_days_and_period_ends_and_the_newest_complete_raw_attempt(tmp_path):
    from egov_index.retention import RetentionPolicy, apply_retention

    store = DataStore(tmp_path)
    days = populate_daily(store, "2026-05-25", "2026-07-10")
    now = datetime(2026, 7, 11, tzinfo=UTC)
    old_complete = raw_attempt(tmp_path, "2026-06-01", now - timedelta(days=40), complete=True)
    old_incomplete = raw_attempt(tmp_path, "2026-06-01", now - timedelta(days=39), complete=False)
    newest_complete = raw_attempt(tmp_path, "2026-06-01", now - timedelta(days=38), complete=True)
    recent_incomplete = raw_attempt(tmp_path, "2026-06-01", now - timedelta(days=1), complete=False)
    (tmp_path / "raw" / "dossiers" / "2026-06-01" / "files").mkdir()
    policy = RetentionPolicy(keep_daily=7, raw_keep_days=35)

    dry = apply_retention(store, policy, dry_run=True, now=now)
    kept_days = set(days[-7:]) | {"2026-06-30"}  # newest 7 + the last day of Q2 (Q3's is among the newest)
    expected = {f"snapshots/procedures/snapshot_date={d}" for d in days if d not in kept_days}
    expected |= {
        f"{path}/dataset=dossiers/partition={d}"
        for path in (pipeline.QUARANTINE, pipeline.VALIDATION_RESULTS)
        for d in days[-13:]
        if d not in kept_days
    }
    expected |= {old_complete, old_incomplete}
    assert {d.target for d in dry.deletions} == expected
    assert dry.as_dict()["count"] == len(expected) == len(days) - 8 + 2 * 5 + 2
    assert len(store.partitions(pipeline.SNAPSHOT_DATASETS["procedures"])) == len(days)  # nothing deleted

    real = apply_retention(store, policy, now=now)
    assert real.deletions == dry.deletions and not real.dry_run
    assert {p["snapshot_date"] for p in store.partitions(pipeline.SNAPSHOT_DATASETS["procedures"])} == kept_days
    quarantined = {p["partition"] for p in store.partitions(pipeline.QUARANTINE)}
    assert quarantined == (kept_days & set(days[-13:])) | {"2026-Q2", "2026-Q3", "file-0123456789ab"}
    raw = {p.name for p in (tmp_path / "raw" / "dossiers" / "2026-06-01").iterdir()}
    assert raw == {newest_complete.rsplit("/", 1)[1], recent_incomplete.rsplit("/", 1)[1], "files"}
    assert apply_retention(store, policy, dry_run=True, now=now).deletions == []


def test_retention_never_deletes_the_newest_partition(tmp_path):
    from egov_index.retention import RetentionPolicy, apply_retention

    store = DataStore(tmp_path)
    days = populate_daily(store, "2026-07-01", "2026-07-05")
    apply_retention(store, RetentionPolicy(keep_daily=1, keep_period_ends=False))
    assert store.partitions(pipeline.SNAPSHOT_DATASETS["procedures"]) == [{"snapshot_date": days[-1]}]
    with pytest.raises(ValueError):
        RetentionPolicy(keep_daily=0)
