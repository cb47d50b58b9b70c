"""Parquet snapshot store under the data root (a local path or an ``s3://`` URL): atomic, idempotent,
Hive-partitioned, with manifests, a latest view and versioned dataset paths.

Layout (see docs/data-dictionary.md, "Storage layout")::

    <root>/<dataset>/<key>=<value>/_objects/data-<sha16>.parquet  # immutable, named by content
    <root>/<dataset>/<key>=<value>/_manifest.json   # written last: names the current object
    <root>/<dataset>/<key>=<value>/data.parquet     # local only: the current object, for globs
    <root>/<dataset>/_schema.json                   # the dataset's schema (within its version)
    <root>/latest/<dataset>/...                     # latest view: one self-contained partition
    <root>/_staging/                                # local in-flight writes, never read

A publish writes the data once, under a content-addressed object name, then the manifest
naming it (an ``os.replace`` locally, one PUT on S3: both atomic). Locally the same file is
also hard-linked to ``data.parquet`` by ``os.replace`` before the manifest, so readers
globbing ``*/data.parquet`` see the old file or the new one, never half of one. Object
stores have no rename: readers go by the manifests there. Superseded objects stay for a
grace period (a reader holding the old manifest can finish), then go. Partition columns
live in the path only (Hive style). The same rows give the same bytes, hence the same
sha256 and object name, on both backends.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow.fs import FSSpecHandler, PyFileSystem
from upath import UPath

from egov_index import __version__
from egov_index.errors import MissingInputError

STAGING = "_staging"
DATA_FILE = "data.parquet"
MANIFEST_FILE = "_manifest.json"
SCHEMA_FILE = "_schema.json"
LATEST = "latest"
OBJECTS = "_objects"
MANIFEST_FORMAT = 1
# Age after which a staging leftover of another host (or a superseded object) may be deleted:
# longer than any publish, and the grace a reader holding an old manifest gets on S3.
STALE_STAGING_S = 3600.0
ROW_GROUP_SIZE = 256_000

StorePath = Path | UPath

_HOST = socket.gethostname().replace("-", "_")
_OBJECT_NAME = re.compile(r"^data-[0-9a-f]{16}\.parquet$")
_VERSION_SUFFIX = re.compile(r"_v(\d+)$")
_OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


class SchemaChangeError(ValueError):
    """A publish would drop, rename or retype a column of a dataset version: publish a new version."""


@dataclass(frozen=True)
class Published:
    dataset: str
    partition: dict[str, str]
    path: StorePath
    rows: int
    sha256: str


def to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Frame -> Arrow table with the explicit schema (columns in schema order, no pandas metadata)."""
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)


def schema_fingerprint(schema: pa.Schema) -> str:
    text = "\n".join(f"{f.name}:{f.type}:{f.nullable}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def schema_fields(schema: pa.Schema) -> list[dict[str, Any]]:
    """A schema as JSON-able ``{name, type, nullable}`` records (manifests, ``_schema.json``, goldens)."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def breaking_changes(published: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """What ``new`` breaks for readers of ``published`` (both as ``schema_fields``); [] if additive.

    Within a version, existing columns keep their name, type and nullability; a column may be
    added only as nullable (older partitions read it as null).
    """
    by_name = {f["name"]: f for f in new}
    problems = []
    for old in published:
        now = by_name.get(old["name"])
        if now is None:
            problems.append(f"column {old['name']!r} was dropped or renamed")
        elif now["type"] != old["type"]:
            problems.append(f"column {old['name']!r} changed type {old['type']} -> {now['type']}")
        elif now["nullable"] != old["nullable"]:
            problems.append(f"column {old['name']!r} changed nullable {old['nullable']} -> {now['nullable']}")
    known = {f["name"] for f in published}
    problems += [
        f"column {f['name']!r} was added as non-nullable (older partitions have no value for it)"
        for f in new
        if f["name"] not in known and not f["nullable"]
    ]
    return problems


def dataset_version(dataset: str) -> int:
    """The schema version a dataset path publishes: ``ranking`` is v1, ``ranking_v2`` is v2."""
    match = _VERSION_SUFFIX.search(dataset)
    return int(match.group(1)) if match else 1


def versioned(dataset: str, version: int) -> str:
    """The path of a dataset's version: v1 keeps the plain path, vN >= 2 is the sibling ``<path>_vN``."""
    if version < 1:
        raise ValueError(f"versions start at 1, got {version}")
    return dataset if version == 1 else f"{dataset}_v{version}"


def _partition_parts(partition: Mapping[str, str]) -> list[str]:
    parts = []
    for key, value in partition.items():
        for text in (key, value):
            if not isinstance(text, str) or text in ("", ".", "..") or re.search(r"[/\\\x00]", text):
                raise ValueError(f"unsafe partition {key!r}={value!r}: plain non-empty strings only")
        if "=" in key:
            raise ValueError(f"partition key {key!r} contains '='")
        parts.append(f"{key}={value}")
    return parts


def _json_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=True, default=str).encode()


def _write_parquet(table: pa.Table, sink: str | IO[bytes]) -> None:
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP_SIZE)


def _hash_stream(stream: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _writer_alive(name: str) -> bool:
    """Whether the writer named in a staging entry (``<host>-<pid>-<uuid>``) may still be running."""
    parts = name.split("-", 2)
    if len(parts) != 3 or parts[0] != _HOST or not parts[1].isdigit():
        return True  # another host's (or an unnamed) entry: only its age can tell
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's process
    return True


def _modified(info: Mapping[str, Any]) -> float:
    """Modification time (epoch seconds) from an fsspec ``info`` record, local or S3."""
    value = info.get("mtime", info.get("LastModified"))
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _resolve_root(root: str | os.PathLike[str] | UPath, storage_options: Mapping[str, Any] | None) -> StorePath:
    if isinstance(root, Path):
        return root
    if isinstance(root, UPath):  # e.g. Airflow's ObjectStoragePath, carrying its connection
        return Path(root.path) if root.protocol in ("", "file", "local") else root
    text = os.fspath(root)
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    return UPath(text, **(storage_options or {})) if "://" in text else Path(text)


def publish_error(dataset: str, partition: Mapping[str, str], root: StorePath, exc: OSError) -> OSError:
    """The error of a failed publish: names the dataset, partition and data root, and what to do."""
    where = "/".join(f"{k}={v}" for k, v in partition.items())
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in _OUT_OF_SPACE:
        advice = f"Free space on the volume holding {root} (or raise its quota), then rerun the task."
    elif exc.errno in _NOT_WRITABLE:
        advice = f"Make {root} writable by the worker, then rerun the task."
    else:
        advice = "Fix the cause, then rerun the task: the rerun publishes the whole partition."
    message = (
        f"could not publish {dataset} partition {where} under {root}: {reason}. Nothing half-written is "
        f"visible to readers (the staged file was removed). {advice}"
    )
    return OSError(exc.errno, message) if exc.errno is not None else OSError(message)


class DataStore:
    """The data root. Every dataset path is relative to it, e.g. 'snapshots/dossiers'.

    ``root`` is a local path, a URL such as ``s3://bucket/prefix`` (``storage_options`` go to
    fsspec, e.g. ``{"client_kwargs": {"endpoint_url": ...}}``) or a ``UPath``/``ObjectStoragePath``.
    """

    def __init__(
        self, root: str | os.PathLike[str] | UPath, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        self.root: StorePath = _resolve_root(root, storage_options)
        local = isinstance(self.root, Path)
        self.fs: fsspec.AbstractFileSystem = fsspec.filesystem("file") if local else self.root.fs
        self._arrow_fs = None if local else PyFileSystem(FSSpecHandler(self.fs))

    # --- paths ---------------------------------------------------------------------------------

    def partition_dir(self, dataset: str, partition: Mapping[str, str]) -> StorePath:
        return self.root.joinpath(dataset, *_partition_parts(partition))

    def fs_path(self, path: StorePath) -> str:
        """The filesystem's own path of a store path (``bucket/prefix/...`` on S3)."""
        return str(path) if isinstance(path, Path) else path.path

    # --- publishing ----------------------------------------------------------------------------

    def publish(
        self,
        dataset: str,
        partition: dict[str, str],
        table: pa.Table,
        manifest: dict[str, Any] | None = None,
    ) -> Published:
        """Replace one partition atomically; its manifest is written last.

        The manifest records rows, bytes, sha256 of the data, the schema and its fingerprint,
        the dataset version and the code version, plus whatever the caller passes (source
        checksums, data-quality summary). Raises SchemaChangeError on a non-additive change.
        """
        target = self.partition_dir(dataset, partition)
        schema = table.schema
        for key in partition:  # the published schema always has its partition columns
            if key not in schema.names:
                schema = schema.append(pa.field(key, pa.string(), nullable=False))
        self._guard_schema(dataset, schema, list(partition))
        body = table.drop_columns([c for c in partition if c in table.column_names])
        with self._naming_failures(dataset, partition):
            data_file, digest, size = self._write_data(target, body)
        doc = {
            "format": MANIFEST_FORMAT,
            "dataset": dataset,
            "version": dataset_version(dataset),
            "partition": partition,
            "data_file": data_file,
            "rows": body.num_rows,
            "bytes": size,
            "sha256": digest,
            "schema_fingerprint": schema_fingerprint(schema),
            "schema": schema_fields(schema),
            "code_version": __version__,
            **(manifest or {}),
        }
        with self._naming_failures(dataset, partition):
            self._write_json(target / MANIFEST_FILE, doc)
        self._drop_unreferenced(self.fs_path(target), data_file, STALE_STAGING_S)
        return Published(dataset, partition, self._current_file(target, doc), body.num_rows, digest)

    @contextmanager
    def _naming_failures(self, dataset: str, partition: Mapping[str, str]) -> Iterator[None]:
        """Re-raise an OSError of a publish naming the dataset and partition and saying what to do
        (same errno, hence the same OSError subclass; the original is chained)."""
        try:
            yield
        except OSError as exc:
            raise publish_error(dataset, partition, self.root, exc) from exc

    def _write_data(self, directory: StorePath, table: pa.Table) -> tuple[str, str, int]:
        """Write a partition's data object (and locally ``data.parquet``); returns the object's path
        relative to ``directory``, its sha256 and size."""
        if not isinstance(directory, Path):
            with tempfile.TemporaryFile() as spool:  # unlinked at once: a crash leaves nothing behind
                _write_parquet(table, spool)
                spool.seek(0)
                digest, size = _hash_stream(spool)
                name = f"{OBJECTS}/data-{digest[:16]}.parquet"
                spool.seek(0)
                # Uploaded even when the name exists: the fresh modification time protects it from a
                # concurrent clean-up of superseded objects. An upload is visible only once complete.
                with self.fs.open(self.fs_path(directory / name), "wb") as out:
                    shutil.copyfileobj(spool, out, 1 << 20)
            return name, digest, size
        self._clean_local_staging(STALE_STAGING_S)  # crashed writers' leftovers on this host go at once
        staged, link = self._staging_path(".parquet"), self._staging_path(".link")
        try:
            _write_parquet(table, str(staged))
            with staged.open("rb") as fh:
                digest, size = _hash_stream(fh)
                os.fsync(fh.fileno())
            name = f"{OBJECTS}/data-{digest[:16]}.parquet"
            (directory / OBJECTS).mkdir(parents=True, exist_ok=True)
            os.link(staged, link)
            os.replace(link, directory / name)  # the immutable name (same bytes if it existed)
            os.replace(staged, directory / DATA_FILE)  # what globbing readers see
            _fsync_dir(directory / OBJECTS)
            _fsync_dir(directory)
        finally:
            staged.unlink(missing_ok=True)
            link.unlink(missing_ok=True)
        return name, digest, size

    def _current_file(self, directory: StorePath, doc: Mapping[str, Any]) -> StorePath:
        """The file readers of a partition (or view) get: ``data.parquet`` locally, else the manifest's object."""
        return directory / DATA_FILE if isinstance(directory, Path) else directory / doc["data_file"]

    def _write_json(self, path: StorePath, doc: Mapping[str, Any]) -> None:
        self._write_bytes(path, _json_bytes(doc))

    def write_document(self, relative: str, data: bytes) -> StorePath:
        """Write a file for people (e.g. the HTML report) under the root, replacing it atomically."""
        path = self.root.joinpath(*PurePosixPath(relative).parts)
        self._write_bytes(path, data)
        return path

    def _write_bytes(self, path: StorePath, data: bytes) -> None:
        if not isinstance(path, Path):
            self.fs.pipe_file(self.fs_path(path), data)  # one PUT: atomic
            return
        staged = self._staging_path(path.suffix)
        try:
            with staged.open("xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, path)
            _fsync_dir(path.parent)
        finally:
            staged.unlink(missing_ok=True)

    def _staging_path(self, suffix: str) -> Path:
        assert isinstance(self.root, Path)
        staging = self.root / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        return staging / f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex}{suffix}"

    def _read_json(self, path: StorePath | str) -> dict[str, Any] | None:
        try:
            return json.loads(self.fs.cat_file(path if isinstance(path, str) else self.fs_path(path)))
        except FileNotFoundError:
            return None

    # --- schema versions -----------------------------------------------------------------------

    def _guard_schema(self, dataset: str, schema: pa.Schema, partition_keys: list[str]) -> None:
        """Refuse a non-additive change within the dataset's version; record an additive one."""
        fields = schema_fields(schema)
        record = self._read_json(self.root / dataset / SCHEMA_FILE)
        if record is not None:
            problems = breaking_changes(record["fields"], fields)
            if problems:
                raise SchemaChangeError(
                    f"{dataset} (v{dataset_version(dataset)}): " + "; ".join(problems) + ". Within a version "
                    "only nullable columns may be added; publish the new schema under "
                    f"{versioned(dataset, dataset_version(dataset) + 1)!r} (see docs/data-dictionary.md)."
                )
            if record["fields"] == fields and record["partition_keys"] == partition_keys:
                return
        arrow = base64.b64encode(schema.remove_metadata().serialize().to_pybytes()).decode()
        doc = {
            "dataset": dataset,
            "version": dataset_version(dataset),
            "partition_keys": partition_keys,
            "fields": fields,
            "arrow_schema": arrow,
        }
        self._write_json(self.root / dataset / SCHEMA_FILE, doc)

    def schema(self, dataset: str) -> pa.Schema | None:
        """The dataset's recorded schema (partition columns included), or None before its first publish."""
        record = self._read_json(self.root / dataset / SCHEMA_FILE)
        if record is None:
            return None
        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(record["arrow_schema"])))

    # --- reading -------------------------------------------------------------------------------

    def exists(self, dataset: str, partition: dict[str, str]) -> bool:
        target = self.partition_dir(dataset, partition)
        if isinstance(target, Path):
            return (target / DATA_FILE).exists()
        return self._read_json(target / MANIFEST_FILE) is not None

    def manifest(self, dataset: str, partition: dict[str, str]) -> dict[str, Any]:
        """The partition's manifest; FileNotFoundError if it was never published."""
        doc = self._read_json(self.partition_dir(dataset, partition) / MANIFEST_FILE)
        if doc is None:
            raise FileNotFoundError(f"{dataset} partition {partition} has no manifest under {self.root}")
        return doc

    def read(self, dataset: str, filter_expr: ds.Expression | None = None) -> pa.Table:
        """Read the published partitions of a dataset (Hive partitions become string columns);
        MissingInputError (a FileNotFoundError) if it has none."""
        base = self.root / dataset
        schema = self.schema(dataset)
        if isinstance(base, Path):
            if not base.exists():
                raise MissingInputError(f"dataset {dataset!r} has no published partition under {self.root}")
            source: str | list[str] = str(base)
            keys = _discover_keys(base)
        else:
            manifests = self._manifests(dataset)
            if not manifests:
                raise MissingInputError(f"dataset {dataset!r} has no published partition under {self.root}")
            source = [f"{directory}/{doc['data_file']}" for directory, doc in manifests]
            keys = list(_parse_partition(self.fs_path(base), manifests[0][0]))
        partitioning = ds.partitioning(pa.schema([(k, pa.string()) for k in keys]), flavor="hive")
        if schema is not None:  # the whole version's columns: older partitions read added ones as null
            schema = pa.schema([pa.field(f.name, pa.string()) if f.name in keys else f for f in schema])
        dataset_ = ds.dataset(
            source,
            schema=schema,
            format="parquet",
            partitioning=partitioning,
            filesystem=self._arrow_fs,
            partition_base_dir=None if isinstance(base, Path) else self.fs_path(base),
        )
        return dataset_.to_table(filter=filter_expr)

    def read_partition(
        self, dataset: str, partition: dict[str, str], columns: list[str] | None = None
    ) -> pa.Table:
        """One partition's data file (without the partition columns); only ``columns`` if given."""
        target = self.partition_dir(dataset, partition)
        if isinstance(target, Path):
            path = target / DATA_FILE
            if not path.exists():
                raise FileNotFoundError(f"{dataset} partition {partition} is not published ({path})")
            return pq.read_table(path, columns=columns)
        doc = self.manifest(dataset, partition)
        return pq.read_table(self.fs_path(target / doc["data_file"]), columns=columns, filesystem=self._arrow_fs)

    def verify(self, dataset: str, partition: dict[str, str]) -> bool:
        """Whether the partition's data matches its manifest (False after a crash between the two)."""
        doc = self.manifest(dataset, partition)
        with self.fs.open(self.fs_path(self._current_file(self.partition_dir(dataset, partition), doc)), "rb") as fh:
            return _hash_stream(fh)[0] == doc["sha256"]

    def partitions(self, dataset: str) -> list[dict[str, str]]:
        """The dataset's published partitions, sorted by their values."""
        base = self.root / dataset
        if isinstance(base, Path):
            found = []
            for data in base.rglob(DATA_FILE):
                parts = data.relative_to(base).parts[:-1]
                if parts and all("=" in p and not p.startswith(("_", ".")) for p in parts):
                    found.append(dict(p.split("=", 1) for p in parts))
        else:
            found = [_parse_partition(self.fs_path(base), directory) for directory, _ in self._manifests(dataset)]
        return sorted(found, key=lambda p: tuple(p.values()))

    def _manifests(self, dataset: str) -> list[tuple[str, dict[str, Any]]]:
        """(partition directory key, manifest) of every published partition of a dataset."""
        base = self.fs_path(self.root / dataset)
        self.fs.invalidate_cache(base)
        keys = sorted(k for k in self.fs.find(base) if k.endswith(f"/{MANIFEST_FILE}"))
        contents = self.fs.cat(keys, on_error="omit") if keys else {}
        return [(k.rsplit("/", 1)[0], json.loads(contents[k])) for k in keys if k in contents]

    # --- the latest view -----------------------------------------------------------------------

    def publish_latest(self, dataset: str, partition: dict[str, str], *, force: bool = False) -> Published:
        """Switch ``latest/<dataset>/`` to a published partition, atomically.

        The view is one self-contained file: the partition's rows with its partition columns as
        real columns (e.g. ``period``). It never moves back to an older partition (by partition
        values) unless ``force``; the partition must be completely published (data = manifest).
        """
        source = self.manifest(dataset, partition)
        view = self.root / LATEST / dataset
        current = self._read_json(view / MANIFEST_FILE)
        if current is not None and not force:
            if tuple(current["partition"][k] for k in partition) > tuple(partition.values()):
                shown = self._current_file(view, current)
                return Published(dataset, current["partition"], shown, current["rows"], current["sha256"])
        with self.fs.open(self.fs_path(self._current_file(self.partition_dir(dataset, partition), source)), "rb") as fh:
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != source["sha256"]:
            raise RuntimeError(f"{dataset} partition {partition} does not match its manifest: republish it first")
        table = _with_partition_columns(pq.read_table(pa.BufferReader(data)), partition, self.schema(dataset))
        with self._naming_failures(f"{LATEST}/{dataset}", partition):
            data_file, digest, size = self._write_data(view, table)
        doc = {
            "format": MANIFEST_FORMAT,
            "view": LATEST,
            "dataset": dataset,
            "version": dataset_version(dataset),
            "partition": partition,
            "data_file": data_file,
            "rows": table.num_rows,
            "bytes": size,
            "sha256": digest,
            "source_sha256": source["sha256"],
            "schema_fingerprint": schema_fingerprint(table.schema),
            "code_version": __version__,
        }
        with self._naming_failures(f"{LATEST}/{dataset}", partition):
            self._write_json(view / MANIFEST_FILE, doc)
        self._drop_unreferenced(self.fs_path(view), data_file, STALE_STAGING_S)
        return Published(dataset, partition, self._current_file(view, doc), table.num_rows, digest)

    def read_latest(self, dataset: str) -> pa.Table:
        """The dataset's latest view (partition columns included)."""
        view = self.root / LATEST / dataset
        doc = self._read_json(view / MANIFEST_FILE)
        if doc is None:
            raise FileNotFoundError(f"no latest view of {dataset!r} under {self.root}")
        return pq.read_table(self.fs_path(self._current_file(view, doc)), filesystem=self._arrow_fs)

    # --- deleting and cleaning -----------------------------------------------------------------

    def delete_partition(self, dataset: str, partition: dict[str, str]) -> None:
        """Unpublish a partition (retention): at once for readers, then its files."""
        target = self.partition_dir(dataset, partition)
        if isinstance(target, Path):
            trash = self._staging_path(".deleted")
            os.replace(target, trash)  # one rename: globbing readers lose the whole partition at once
            shutil.rmtree(trash)
            return
        # the manifest goes first; its objects, now named by no manifest, go with the next clean-up
        # once older than the grace period (a reader holding the manifest can still finish)
        self.fs.rm_file(self.fs_path(target / MANIFEST_FILE))

    def clean_staging(self, older_than_s: float = STALE_STAGING_S) -> int:
        """Remove leftovers of crashed or superseded writes; returns how many.

        Local ``_staging`` entries go when their writer process (on this host) is gone, or when older
        than ``older_than_s`` (another host's crash). Data objects no manifest names go when older
        than ``older_than_s`` (the grace a reader holding an old manifest gets).
        """
        removed = self._clean_local_staging(older_than_s) if isinstance(self.root, Path) else 0
        base = self.fs_path(self.root)
        self.fs.invalidate_cache(base)
        if not self.fs.exists(base):
            return removed
        directories = {
            key.rsplit("/", 2)[0]
            for key in self.fs.find(base)
            if key.rsplit("/", 2)[-2:-1] == [OBJECTS] and _OBJECT_NAME.match(key.rsplit("/", 1)[1])
        }
        for directory in sorted(directories):
            doc = self._read_json(f"{directory}/{MANIFEST_FILE}")
            removed += self._drop_unreferenced(directory, doc["data_file"] if doc else None, older_than_s)
        return removed

    def _clean_local_staging(self, older_than_s: float) -> int:
        staging = self.root / STAGING
        if not staging.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in staging.iterdir():
            try:
                stale = not _writer_alive(entry.name) or entry.lstat().st_mtime < cutoff
                if stale and entry.is_dir():
                    shutil.rmtree(entry)
                elif stale:
                    entry.unlink()
            except FileNotFoundError:
                continue
            removed += stale
        return removed

    def _drop_unreferenced(self, directory: str, referenced: str | None, older_than_s: float) -> int:
        """Delete the objects of a partition (or view) ``directory`` other than ``referenced`` (its
        manifest's ``data_file``) older than ``older_than_s``."""
        objects = f"{directory}/{OBJECTS}"
        self.fs.invalidate_cache(objects)
        try:
            listing = self.fs.ls(objects, detail=True)
        except FileNotFoundError:
            return 0
        cutoff = time.time() - older_than_s
        stale = [
            info["name"]
            for info in listing
            if _OBJECT_NAME.match(info["name"].rsplit("/", 1)[1])
            and f"{OBJECTS}/{info['name'].rsplit('/', 1)[1]}" != referenced
            and _modified(info) < cutoff
        ]
        for key in stale:
            self.fs.rm_file(key)
        return len(stale)


def _parse_partition(base: str, directory: str) -> dict[str, str]:
    """The partition values of a partition directory, in path order."""
    return dict(part.split("=", 1) for part in directory.removeprefix(f"{base}/").split("/"))


def _discover_keys(base: Path) -> list[str]:
    """Partition keys of a local dataset, from the first ``key=value`` directory at each level."""
    keys: list[str] = []
    current = base
    while True:
        nested = sorted(p for p in current.iterdir() if p.is_dir() and "=" in p.name and p.name[0] not in "_.")
        if not nested:
            return keys
        keys.append(nested[0].name.split("=", 1)[0])
        current = nested[0]


def _with_partition_columns(table: pa.Table, partition: Mapping[str, str], schema: pa.Schema | None) -> pa.Table:
    """A partition's rows with its partition columns added back, in the dataset schema's order and types."""
    if schema is None:  # a dataset published before schemas were recorded
        schema = table.schema
        for key in partition:
            schema = schema.append(pa.field(key, pa.string(), nullable=False))
    columns = []
    for field in schema:
        if field.name in partition:
            columns.append(pa.array([partition[field.name]] * table.num_rows, pa.string()).cast(field.type))
        elif field.name in table.column_names:
            columns.append(table.column(field.name))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)
