"""Inbox: report files dropped into a folder, ingested once per version.

``scan_inbox`` lists the files ready to read (regular files directly in the inbox; no
symlinks, no hidden or partial uploads). ``claim`` decides from the ledger whether a file
is ``new``, ``identical`` to the version already ingested (nothing to do) or ``changed``
(a new version that supersedes the old one) and, unless identical, archives it first.
After ingesting, the caller moves the file to ``processed/<sha256[:12]>_<name>``, or to
``failed/`` with a ``.error.txt`` beside it. File names are untrusted: a name that is not
one plain path component is never used to build a path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from egov_index.ledger import FileStatus, Ledger
from egov_index.raw_archive import ArchivedFile, RawArchive, UnsafePathError, safe_component

log = logging.getLogger(__name__)

PROCESSED_DIR = "processed"
FAILED_DIR = "failed"
# the raw archive keeps inbox files under raw/inbox/<file key>/files/
ARCHIVE_DATASET = "inbox"
# names of files still being written or of editors' lock files: never read
PARTIAL_PREFIXES = (".", "~$")
PARTIAL_SUFFIXES = (".part", ".partial", ".filepart", ".crdownload", ".tmp")
SHA_PREFIX_LEN = 12


class InboxError(RuntimeError):
    """A file could not be claimed (it changed while being read, or a folder is not what it should be)."""


def file_key(name: str) -> str:
    """What identifies "the same report" across deliveries: the name, NFC, case-folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


@dataclass(frozen=True)
class InboxFile:
    inbox: Path
    name: str
    size: int
    sha256: str
    mtime: datetime

    def __post_init__(self) -> None:
        safe_component(self.name, "inbox file name")

    @property
    def path(self) -> Path:
        return self.inbox / self.name

    @property
    def key(self) -> str:
        return file_key(self.name)


@dataclass(frozen=True)
class Claim:
    file: InboxFile
    status: FileStatus
    archived: ArchivedFile | None  # None when identical (nothing to ingest)


def _is_partial(name: str) -> bool:
    return name.startswith(PARTIAL_PREFIXES) or name.lower().endswith(PARTIAL_SUFFIXES)


def _hash_regular_file(path: Path) -> tuple[str, int]:
    """sha256 and size, refusing to follow a symlink swapped in since the directory was listed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise InboxError(f"{path} is not a regular file")
        digest = hashlib.sha256()
        size = 0
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def scan_inbox(inbox_dir: Path) -> list[InboxFile]:
    """The files ready to ingest, by name. Subfolders, symlinks, hidden and partial files are skipped."""
    if not inbox_dir.is_dir():
        return []
    found: list[InboxFile] = []
    with os.scandir(inbox_dir) as entries:
        for entry in entries:
            if _is_partial(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                safe_component(entry.name, "inbox file name")
                mtime = datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, UTC)
                sha256, size = _hash_regular_file(Path(entry.path))
            except (UnsafePathError, InboxError, OSError) as exc:  # unsafe name, gone, swapped, unreadable
                log.warning("inbox: skipping %r: %s", entry.name, exc)
                continue
            found.append(InboxFile(inbox_dir, entry.name, size, sha256, mtime))
    return sorted(found, key=lambda f: f.name)


def claim(file: InboxFile, ledger: Ledger, archive: RawArchive) -> Claim:
    """Decide new / identical / changed from the ledger; archive the file unless identical."""
    status = ledger.file_status(file.key, file.sha256)
    if status == "identical":
        return Claim(file, status, None)
    archived = archive.archive_file(file.path, ARCHIVE_DATASET, file.key)
    if archived.sha256 != file.sha256:
        raise InboxError(f"{file.name} changed since the inbox was scanned; it will be read on the next run")
    return Claim(file, status, archived)


def _subdir(file: InboxFile, name: str) -> Path:
    directory = file.inbox / name
    if directory.is_symlink():
        raise InboxError(f"{directory} is a symlink; the inbox's {name}/ folder must be a real folder")
    directory.mkdir(exist_ok=True)
    return directory


def _target(file: InboxFile, folder: str) -> Path:
    return _subdir(file, folder) / safe_component(f"{file.sha256[:SHA_PREFIX_LEN]}_{file.name}", "file name")


def mark_processed(file: InboxFile) -> Path:
    """Move an ingested (or identical) file to ``processed/<sha256 prefix>_<name>``."""
    target = _target(file, PROCESSED_DIR)
    os.replace(file.path, target)
    return target


def mark_failed(file: InboxFile, error: BaseException | str) -> Path:
    """Move a file that could not be ingested to ``failed/`` with ``<name>.error.txt`` beside it."""
    target = _target(file, FAILED_DIR)
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    report = target.with_name(target.name + ".error.txt")
    report.write_text(f"{file.name} (sha256 {file.sha256})\n{message}\n", encoding="utf-8")
    os.replace(file.path, target)
    return target
