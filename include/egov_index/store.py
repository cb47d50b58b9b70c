"""Parquet snapshot store under the data root: atomic, idempotent, Hive-partitioned.

Layout (see docs/data-dictionary.md)::

    <root>/<dataset path>/<key>=<value>/data.parquet   # one file per partition
    <root>/<dataset path>/<key>=<value>/_manifest.json # written last
    <root>/_staging/                                    # in-flight writes, never read

A partition is written to ``_staging`` and published with ``os.replace`` (an
atomic rename on one filesystem), so a reader sees the old file or the new one,
never half of one. Partition columns live in the path only (Hive style), so
pyarrow.dataset and DuckDB (``hive_partitioning=true``) read them back.
Rewriting a partition with the same rows gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

STAGING = "_staging"
DATA_FILE = "data.parquet"
MANIFEST_FILE = "_manifest.json"
STALE_STAGING_S = 3600.0


@dataclass(frozen=True)
class Published:
    dataset: str
    partition: dict[str, str]
    path: Path
    rows: int
    sha256: str


def to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Frame -> Arrow table with the explicit schema (columns in schema order, no pandas metadata)."""
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)


def schema_fingerprint(schema: pa.Schema) -> str:
    text = "\n".join(f"{f.name}:{f.type}:{f.nullable}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class DataStore:
    """The data root. Every dataset path is relative to it, e.g. 'snapshots/dossiers'."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def partition_dir(self, dataset: str, partition: dict[str, str]) -> Path:
        parts = [f"{k}={v}" for k, v in partition.items()]
        return self.root.joinpath(dataset, *parts)

    def _staging_file(self, suffix: str) -> Path:
        staging = self.root / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        return staging / f"{uuid.uuid4().hex}{suffix}"

    def publish(
        self,
        dataset: str,
        partition: dict[str, str],
        table: pa.Table,
        manifest: dict[str, Any] | None = None,
    ) -> Published:
        """Replace one partition atomically; the manifest is written after the data."""
        body = table.drop_columns([c for c in partition if c in table.column_names])
        target_dir = self.partition_dir(dataset, partition)
        target_dir.mkdir(parents=True, exist_ok=True)
        staged = self._staging_file(".parquet")
        try:
            pq.write_table(body, staged, compression="zstd", row_group_size=256_000)
            digest = _sha256(staged)
            os.replace(staged, target_dir / DATA_FILE)
        finally:
            staged.unlink(missing_ok=True)
        doc = {
            "dataset": dataset,
            "partition": partition,
            "rows": body.num_rows,
            "schema_fingerprint": schema_fingerprint(table.schema),
            "sha256": digest,
            **(manifest or {}),
        }
        staged_manifest = self._staging_file(".json")
        try:
            staged_manifest.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))
            os.replace(staged_manifest, target_dir / MANIFEST_FILE)
        finally:
            staged_manifest.unlink(missing_ok=True)
        return Published(dataset, partition, target_dir / DATA_FILE, body.num_rows, digest)

    def exists(self, dataset: str, partition: dict[str, str]) -> bool:
        return (self.partition_dir(dataset, partition) / DATA_FILE).exists()

    def read(self, dataset: str, filter_expr: ds.Expression | None = None) -> pa.Table:
        """Read the published partitions of a dataset (Hive partitions become columns)."""
        path = self.root / dataset
        if not path.exists():
            raise FileNotFoundError(f"dataset {dataset!r} has no published partition under {self.root}")
        dataset_ = ds.dataset(path, format="parquet", partitioning="hive")
        return dataset_.to_table(filter=filter_expr)

    def read_partition(self, dataset: str, partition: dict[str, str]) -> pa.Table:
        path = self.partition_dir(dataset, partition) / DATA_FILE
        if not path.exists():
            raise FileNotFoundError(f"{dataset} partition {partition} is not published ({path})")
        return pq.read_table(path)

    def clean_staging(self, older_than_s: float = STALE_STAGING_S) -> int:
        """Remove staging leftovers of crashed writes (only old ones: a live write may be in flight)."""
        staging = self.root / STAGING
        if not staging.exists():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for leftover in staging.iterdir():
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink(missing_ok=True)
                removed += 1
        return removed
