"""Raw archive: every payload pulled, kept as received, so a snapshot can be rebuilt offline.

Layout under ``<data_root>/raw`` (see docs/sources.md)::

    <dataset>/<partition>/attempt-<UTC time>-<hex>/page-00001.json.gz   # body as received, gzip
    <dataset>/<partition>/attempt-<UTC time>-<hex>/page-00001.meta.json # request metadata
    <dataset>/<partition>/attempt-<UTC time>-<hex>/_complete.json       # written last
    <dataset>/<partition>/files/<sha256>.gz + <sha256>.meta.json        # inbox files

Every pull writes a new attempt directory; ``_complete.json`` (page list, sha256 of each
body and of the whole payload) is written only when the pull succeeded, so readers never
see a half-written attempt, and the newest complete attempt is the one to replay. Gzip is
written with mtime 0 and no file name: the same body always gives the same bytes. Request
metadata keeps the path, query parameters (credential-like ones redacted), status and a
short allow-list of response headers: never the Authorization header or a token.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from egov_index.errors import MissingInputError

RAW_DIR = "raw"
FILES_DIR = "files"
ATTEMPT_PREFIX = "attempt-"
COMPLETE_FILE = "_complete.json"
ARCHIVE_FORMAT = 1

KEPT_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "etag", "last-modified", "date"})
SECRET_PARAM = re.compile(r"token|secret|passw|api[-_]?key|auth|signature|credential", re.IGNORECASE)
REDACTED = "<redacted>"
_UNSAFE_COMPONENT = re.compile(r"[/\\\x00-\x1f\x7f]")


class UnsafePathError(ValueError):
    """A dataset, partition or file name that could escape its directory."""


class ArchiveCorruptError(ValueError):
    """An archived body does not match the sha256 recorded when it was written."""


def safe_component(value: str, what: str = "path component") -> str:
    """Return ``value`` if it is one plain path component; raise UnsafePathError otherwise."""
    try:
        size = len(value.encode("utf-8"))  # a name that is not valid UTF-8 cannot be recorded either
    except UnicodeEncodeError:
        size = -1
    if not 0 < size <= 255 or value.startswith(".") or _UNSAFE_COMPONENT.search(value):
        raise UnsafePathError(f"unsafe {what} {value!r}: one UTF-8 name, no separators, no leading dot")
    return value


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload_digest(page_sha256s: list[str]) -> str:
    """sha256 over the pages of one pull: of each page's sha256 hex digest plus a newline, in order."""
    return sha256_hex("".join(f"{digest}\n" for digest in page_sha256s).encode("ascii"))


def _redact(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: REDACTED if SECRET_PARAM.search(k) else v for k, v in params.items()}


def _write_new(path: Path, data: bytes) -> None:
    """Write a file that must not exist yet, durably (flushed to disk before the next step)."""
    with path.open("xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _write_atomic(path: Path, data: bytes) -> None:
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        _write_new(staged, data)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def _json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


def write_json_atomic(path: Path, doc: Any) -> None:
    """Write a metadata document of the raw archive as the archive does: whole or not at all, durably."""
    _write_atomic(path, _json_bytes(doc))


@dataclass(frozen=True)
class ArchivedBatch:
    """One complete attempt: its directory and its ``_complete.json`` document."""

    dataset: str
    partition: str
    directory: Path
    complete: dict[str, Any]

    @property
    def attempt(self) -> str:
        return self.directory.name

    @property
    def payload_sha256(self) -> str:
        return str(self.complete["payload_sha256"])

    def page_metadata(self) -> list[dict[str, Any]]:
        """The request metadata of each page, in order."""
        return [json.loads((self.directory / page["meta"]).read_text()) for page in self.complete["pages"]]

    def pages(self) -> Iterator[bytes]:
        """The bodies as received, in order; each is checked against its recorded sha256."""
        for page in self.complete["pages"]:
            body = gzip.decompress((self.directory / page["body"]).read_bytes())
            if sha256_hex(body) != page["sha256"]:
                raise ArchiveCorruptError(f"{self.directory / page['body']}: sha256 differs from _complete.json")
            yield body


@dataclass(frozen=True)
class ArchivedFile:
    """An inbox file kept compressed under its content hash."""

    dataset: str
    partition: str
    name: str
    sha256: str
    size: int
    path: Path

    def read_bytes(self) -> bytes:
        """The file as received (checked against its sha256)."""
        data = gzip.decompress(self.path.read_bytes())
        if sha256_hex(data) != self.sha256:
            raise ArchiveCorruptError(f"{self.path}: content differs from its sha256")
        return data


class PageRecorder:
    """Context manager writing one pull's pages as they arrive; see ``RawArchive.recorder``."""

    def __init__(self, directory: Path, dataset: str, partition: str, endpoint: str | None, run_id: str | None):
        self.directory = directory
        self.dataset = dataset
        self.partition = partition
        self.endpoint = endpoint
        self.run_id = run_id
        self.started_at = datetime.now(UTC)
        self._pages: list[dict[str, Any]] = []
        self.batch: ArchivedBatch | None = None

    def __enter__(self) -> PageRecorder:
        return self

    def on_page(
        self,
        path: str,
        params: Mapping[str, Any],
        status: int,
        body: bytes,
        *,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Archive one response body as received, with its request metadata (no credentials)."""
        if self.batch is not None:
            raise RuntimeError("this recorder is closed; start a new one for another pull")
        number = len(self._pages) + 1
        stem = f"page-{number:05d}"
        digest = sha256_hex(body)
        kept_headers = {k.lower(): v for k, v in (headers or {}).items() if k.lower() in KEPT_HEADERS}
        meta = {
            "sequence": number,
            "endpoint": self.endpoint,
            "path": path,
            "params": _redact(params),
            "page": params.get("page"),
            "cursor": params.get("cursor"),
            "status": status,
            "content_type": content_type or kept_headers.get("content-type"),
            "headers": kept_headers,
            "sha256": digest,
            "bytes": len(body),
        }
        _write_new(self.directory / f"{stem}.json.gz", gzip.compress(body, mtime=0))
        _write_new(self.directory / f"{stem}.meta.json", _json_bytes(meta))
        self._pages.append(
            {"body": f"{stem}.json.gz", "meta": f"{stem}.meta.json", "sha256": digest, "bytes": len(body)}
        )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            return  # no _complete.json: readers ignore this attempt, the pages stay for diagnosis
        complete = {
            "format": ARCHIVE_FORMAT,
            "dataset": self.dataset,
            "partition": self.partition,
            "endpoint": self.endpoint,
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "completed_at": datetime.now(UTC).isoformat(),
            "pages": self._pages,
            "payload_sha256": payload_digest([p["sha256"] for p in self._pages]),
        }
        _write_atomic(self.directory / COMPLETE_FILE, _json_bytes(complete))
        self.batch = ArchivedBatch(self.dataset, self.partition, self.directory, complete)


class RawArchive:
    """The raw archive under ``<data_root>/raw``."""

    def __init__(self, data_root: Path | str) -> None:
        self.root = Path(data_root) / RAW_DIR

    def partition_dir(self, dataset: str, partition: str) -> Path:
        return self.root / safe_component(dataset, "dataset") / safe_component(partition, "partition")

    def recorder(
        self, dataset: str, partition: str, *, endpoint: str | None = None, run_id: str | None = None
    ) -> PageRecorder:
        """A new attempt directory for one pull; use as ``with archive.recorder(...) as rec``."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        directory = self.partition_dir(dataset, partition) / f"{ATTEMPT_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"
        directory.mkdir(parents=True)
        return PageRecorder(directory, dataset, partition, endpoint, run_id)

    def latest_complete(self, dataset: str, partition: str) -> ArchivedBatch:
        """The newest attempt with a ``_complete.json``; MissingInputError (a FileNotFoundError) if there is none."""
        base = self.partition_dir(dataset, partition)
        attempts = sorted(base.glob(f"{ATTEMPT_PREFIX}*/{COMPLETE_FILE}"), reverse=True) if base.is_dir() else []
        if not attempts:
            raise MissingInputError(f"no complete raw archive of {dataset} partition {partition} under {base}")
        complete_file = attempts[0]
        return ArchivedBatch(dataset, partition, complete_file.parent, json.loads(complete_file.read_text()))

    def archive_file(self, path: Path | str, dataset: str, partition: str) -> ArchivedFile:
        """Keep a copy of a file, gzip-compressed under its sha256 (archiving the same bytes again is a no-op)."""
        source = Path(path)
        directory = self.partition_dir(dataset, partition) / FILES_DIR
        directory.mkdir(parents=True, exist_ok=True)
        staged = directory / f".{uuid.uuid4().hex}.tmp"
        digest = hashlib.sha256()
        size = 0
        try:
            with source.open("rb") as src, staged.open("xb") as raw_out:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw_out, mtime=0) as out:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                raw_out.flush()
                os.fsync(raw_out.fileno())
            sha256 = digest.hexdigest()
            target = directory / f"{sha256}.gz"
            os.replace(staged, target)
        finally:
            staged.unlink(missing_ok=True)
        arrived_at = datetime.fromtimestamp(source.stat().st_mtime, UTC).isoformat()
        meta = {
            "name": source.name,
            "sha256": sha256,
            "size": size,
            "dataset": dataset,
            "partition": partition,
            "arrived_at": arrived_at,
        }
        _write_atomic(directory / f"{sha256}.meta.json", _json_bytes(meta))
        return ArchivedFile(dataset, partition, source.name, sha256, size, target)


def iter_records(batch: ArchivedBatch) -> list[dict[str, Any]]:
    """The ``items`` of every JSON page of a batch, in order (what the pull returned)."""
    records: list[dict[str, Any]] = []
    for number, body in enumerate(batch.pages(), start=1):
        doc = json.loads(body)
        items = doc.get("items") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise ValueError(f"{batch.directory} page {number} has no 'items' list")
        records.extend(items)
    return records
