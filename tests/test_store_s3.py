"""The store on an S3-compatible server (moto in server mode on 127.0.0.1): content-addressed data
objects switched by their manifest, reads through the manifests, latest view, idempotence, clean-up."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from test_store import PUBLISHED, SCHEMA, frame, populate, synthetic_frame
from test_store_crash import DATASET, WHERE, read_during_publishes, version_table

from egov_index import pipeline
from egov_index.store import MANIFEST_FILE, DataStore, to_table

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(endpoint: str) -> str:
    import boto3

    name = f"egov-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(endpoint: str, bucket: str) -> DataStore:
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": REGION},
    }
    return DataStore(f"s3://{bucket}/egov", options)


def objects(store: DataStore, prefix: str) -> list[str]:
    base = store.fs_path(store.root / prefix)
    store.fs.invalidate_cache(base)
    return sorted(key.removeprefix(base + "/") for key in store.fs.find(base))


def test_publish_writes_a_content_addressed_object_then_the_manifest(store):
    published = store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3"), SCHEMA))
    name = f"_objects/data-{published.sha256[:16]}.parquet"
    assert objects(store, "ranking") == ["_schema.json", f"period=2026-Q3/{MANIFEST_FILE}", f"period=2026-Q3/{name}"]
    manifest = store.manifest("ranking", {"period": "2026-Q3"})
    assert manifest["data_file"] == name and manifest["rows"] == 3
    assert store.exists("ranking", {"period": "2026-Q3"}) and not store.exists("ranking", {"period": "2026-Q4"})
    assert store.verify("ranking", {"period": "2026-Q3"})
    with store.fs.open(store.fs_path(published.path), "rb") as fh:  # plain fsspec
        assert pq.read_table(fh).num_rows == 3


def test_every_dataset_reads_back_through_its_manifests_with_partition_filters(store):
    populate(store)
    for path, (_, partitions, _) in PUBLISHED.items():
        last = partitions[-1]
        expr = None
        for k, v in last.items():
            expr = (ds.field(k) == v) if expr is None else expr & (ds.field(k) == v)
        assert store.read(path, expr).num_rows == 10, path
        assert store.read(path).num_rows == 15, path
        assert store.partitions(path) == sorted(partitions, key=lambda p: tuple(p.values()))


def test_duckdb_reads_the_files_its_manifests_name(store):
    populate(store)
    con = duckdb.connect()
    con.register_filesystem(store.fs)
    root = f"s3://{store.fs_path(store.root)}"
    rows = con.execute(
        f"""
        SET VARIABLE ranking_files = (
          SELECT list('s3://' || replace(filename, '{MANIFEST_FILE}', data_file))
          FROM read_json('{root}/{pipeline.RANKING}/*/{MANIFEST_FILE}', filename = true));
        SELECT period, count(*) FROM read_parquet(getvariable('ranking_files'), hive_partitioning = true)
        GROUP BY period ORDER BY period
        """
    ).fetchall()
    assert rows == [("2026-Q2", 5), ("2026-Q3", 10)]


def test_republishing_the_same_rows_is_idempotent(store):
    table = to_table(frame("2026-Q3", 50), SCHEMA)
    first = store.publish("ranking", {"period": "2026-Q3"}, table, {"source_sha256": "a" * 64})
    manifest = store.fs.cat_file(store.fs_path(store.root / "ranking/period=2026-Q3" / MANIFEST_FILE))
    second = store.publish("ranking", {"period": "2026-Q3"}, table, {"source_sha256": "a" * 64})
    assert first.sha256 == second.sha256 and first.path == second.path
    assert store.fs.cat_file(store.fs_path(store.root / "ranking/period=2026-Q3" / MANIFEST_FILE)) == manifest
    assert len([o for o in objects(store, "ranking") if o.endswith(".parquet")]) == 1
    assert store.read("ranking").num_rows == 50


def test_a_changed_partition_switches_at_the_manifest_and_the_old_object_goes_after_its_grace(store):
    old = store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3", 3), SCHEMA))
    new = store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3", 4), SCHEMA))
    assert old.path != new.path
    assert store.read("ranking").num_rows == 4  # the manifest decides, never both objects
    assert store.fs.exists(store.fs_path(old.path))  # a reader holding the old manifest can still finish
    assert store.clean_staging() == 0  # younger than the grace period
    assert store.clean_staging(older_than_s=0) == 1
    assert not store.fs.exists(store.fs_path(old.path)) and store.fs.exists(store.fs_path(new.path))


def test_a_reader_during_repeated_publishes_sees_one_whole_version(store):
    versions = {1: version_table(1, 20_000), 2: version_table(2, 30_000)}
    store.publish(DATASET, WHERE, versions[2])
    seen = read_during_publishes(store, lambda: store.read(DATASET), versions, publishes=4)
    assert set(seen) == {1, 2}


def test_latest_view_on_s3(store):
    schema = PUBLISHED[pipeline.RANKING][0]
    populate(store)
    view = store.publish_latest(pipeline.RANKING, {"period": "2026-Q3"})
    assert view.path.name == f"data-{view.sha256[:16]}.parquet"
    latest = store.read_latest(pipeline.RANKING)
    assert latest.schema.equals(schema) and latest.num_rows == 10
    assert store.publish_latest(pipeline.RANKING, {"period": "2026-Q2"}).partition == {"period": "2026-Q3"}
    assert store.publish_latest(pipeline.RANKING, {"period": "2026-Q3"}).sha256 == view.sha256


def test_retention_deletes_the_manifest_first_and_the_objects_with_the_clean_up(store):
    for period in ("2026-Q2", "2026-Q3"):
        store.publish("ranking", {"period": period}, to_table(frame(period), SCHEMA))
    store.delete_partition("ranking", {"period": "2026-Q2"})
    assert store.partitions("ranking") == [{"period": "2026-Q3"}]
    assert store.read("ranking").num_rows == 3
    assert store.clean_staging(older_than_s=0) == 1
    assert [o for o in objects(store, "ranking") if "2026-Q2" in o] == []


def test_credentials_and_endpoint_from_the_standard_aws_environment(endpoint, bucket, monkeypatch):
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL_S3": endpoint}.items():
        monkeypatch.setenv(name, value)
    store = DataStore(f"s3://{bucket}/from-env")
    store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3"), SCHEMA))
    assert store.read("ranking").num_rows == 3


def test_retention_on_s3(store):
    from egov_index.retention import RetentionPolicy, apply_retention

    schema = PUBLISHED[pipeline.SNAPSHOT_DATASETS["procedures"]][0]
    days = [f"2026-07-0{d}" for d in range(1, 6)]
    for day in days:
        where = {"snapshot_date": day}
        store.publish(pipeline.SNAPSHOT_DATASETS["procedures"], where, to_table(synthetic_frame(schema, 3, **where), schema))
    result = apply_retention(store, RetentionPolicy(keep_daily=2, keep_period_ends=False))
    assert [d.target.rsplit("=", 1)[1] for d in result.deletions] == days[:3]
    assert store.partitions(pipeline.SNAPSHOT_DATASETS["procedures"]) == [{"snapshot_date": d} for d in days[3:]]


def test_an_airflow_object_storage_path_as_the_root(endpoint, bucket, monkeypatch):
    from airflow.sdk import ObjectStoragePath

    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL_S3": endpoint}.items():
        monkeypatch.setenv(name, value)
    store = DataStore(ObjectStoragePath(f"s3://{bucket}/airflow"))  # conn_id=... in a deployment
    store.publish("ranking", {"period": "2026-Q3"}, to_table(frame("2026-Q3"), SCHEMA))
    assert store.read("ranking").num_rows == 3 and store.fs_path(store.root) == f"{bucket}/airflow"


def test_the_pipelines_data_root_is_a_folder_and_a_url_is_refused_with_what_to_do(monkeypatch, tmp_path):
    """The store writes s3:// itself, but the pipeline's raw archive and export files are local: an
    EGOV_DATA_ROOT URL must not silently become a local folder named "s3:"."""
    from egov_index.config import Settings

    monkeypatch.setenv("EGOV_DATA_ROOT", "s3://egov-bucket/prefix")
    with pytest.raises(ValueError, match=r"EGOV_DATA_ROOT='s3://egov-bucket/prefix'.*Mount the bucket"):
        Settings.from_env()
    monkeypatch.setenv("EGOV_DATA_ROOT", str(tmp_path / "data"))
    assert Settings.from_env().data_root == tmp_path / "data"
