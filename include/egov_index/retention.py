"""Retention of the date-partitioned outputs and of the raw archive (run daily by egov_maintenance).

Daily partitions — the procedure catalogue (``snapshot_date=D``), and the quarantine and validation
results of daily batches (``partition=D``, counted per source dataset) — keep the newest
``keep_daily`` days plus, with ``keep_period_ends``, the newest day of every quarter (the catalogue a
past period was ranked with). The newest partition is always kept, and partitions that are not an
ISO day (period batches such as ``2026-Q3``, inbox files) are never touched. Raw archive attempts
started more than ``raw_keep_days`` ago are deleted, except the newest complete attempt of each
batch (the one a replay uses). Inbox file copies (``raw/<dataset>/<batch>/files``) are kept.

Bulk export files (``raw/dossier_exports/as_of=<stamp>/month=<YYYY-MM>/``, see :mod:`egov_index.bulk`)
are kept and deleted by set: one month of one cut-off (``as_of``). A set last written or used more than
``export_keep_days`` ago is deleted, except the newest complete set of its month and a set a download is
running into. *Complete* is what ``bulk.downloaded`` needs to ingest the month: a checked export file
(its ``.meta.json``, written last, beside it: ``bulk.complete_provinces``) for every province of the
registry. A set's time is the newest modification time of its files and of its folder: bulk writes a
file's ``.meta.json`` last and touches it again when a rerun reuses the file, and records no time in it
(its ``as_of`` is the source's cut-off, not when the file was fetched). A ``.partial`` younger than a day
means a download is running: the set is kept whatever its age.

The newest complete set of each month is kept rather than the one its snapshot was ingested from.
That one is knowable only indirectly: ``ingest_month`` ledgers the batch ``month-YYYY-MM`` with a
digest over its files' sha256 (``payload_sha256``), not their ``as_of`` or path, so finding it means
opening the SQL ledger and matching every set's metadata against it. The newest complete set is the
latest cut-off downloaded, the one a re-ingest without re-download would take (as the newest complete
raw attempt is the one a replay takes); the published snapshots do not depend on the files. A newer set
left incomplete by a killed backfill never costs the older complete one.

Leftover ``*.partial`` files (a killed download; ``pull.fetch_dossier_export`` restarts them from
zero) go once untouched for a day. A set is deleted file by file, each ``.meta.json`` before its
export file (a half-deleted set is never taken for complete: bulk downloads a file without metadata
again), and a directory left empty is removed. Nothing outside ``raw/dossier_exports/as_of=*/month=*``
is touched. The export files are local (``bulk.export_dir`` writes under the data root's local path).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from egov_index.bulk import AS_OF_STAMP, EXPORTS_DIR, META_SUFFIX, complete_provinces
from egov_index.periods import quarter_of
from egov_index.pipeline import QUARANTINE, SNAPSHOT_DATASETS, VALIDATION_RESULTS
from egov_index.pull import PARTIAL_SUFFIX
from egov_index.raw_archive import ATTEMPT_PREFIX, COMPLETE_FILE, RAW_DIR
from egov_index.store import DataStore, StorePath


@dataclass(frozen=True)
class RetentionPolicy:
    keep_daily: int = 35
    keep_period_ends: bool = True
    raw_keep_days: int = 35
    export_keep_days: int = 35

    def __post_init__(self) -> None:
        if self.keep_daily < 1 or self.raw_keep_days < 0 or self.export_keep_days < 0:
            raise ValueError(f"retention keeps the newest day, raw and export ages are not negative: {self}")


# a .partial export file untouched this long is a killed download's leftover, not one running
PARTIAL_KEEP = timedelta(days=1)


@dataclass(frozen=True)
class DailyDataset:
    """A dataset partitioned by day: the key holding the ISO day, and the keys days are counted within."""

    path: str
    day_key: str
    group_keys: tuple[str, ...] = ()


DAILY_DATASETS: tuple[DailyDataset, ...] = (
    DailyDataset(SNAPSHOT_DATASETS["procedures"], "snapshot_date"),
    DailyDataset(QUARANTINE, "partition", ("dataset",)),
    DailyDataset(VALIDATION_RESULTS, "partition", ("dataset",)),
)


@dataclass(frozen=True)
class Deletion:
    target: str  # path under the data root
    reason: str


@dataclass(frozen=True)
class RetentionResult:
    dry_run: bool
    deletions: list[Deletion]

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "count": len(self.deletions), "deletions": [asdict(d) for d in self.deletions]}


def apply_retention(
    store: DataStore,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    export_provinces: Collection[str] | None = None,
) -> RetentionResult:
    """Delete what the policy lets go (or, with ``dry_run``, only list it). ``export_provinces``: the
    provinces a complete export set holds (default: the registry's current provinces)."""
    now = now or datetime.now(UTC)
    planned = [
        *_expired_partitions(store, policy),
        *_expired_attempts(store, policy, now),
        *_expired_exports(store, policy, now, export_provinces),
    ]
    if not dry_run:
        for _, delete in planned:
            delete()
    return RetentionResult(dry_run, [deletion for deletion, _ in planned])


def _iso_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value and len(value) == 10 else None
    except ValueError:
        return None


def _expired_partitions(store: DataStore, policy: RetentionPolicy) -> list[tuple[Deletion, Callable[[], None]]]:
    planned = []
    for spec in DAILY_DATASETS:
        if not (store.root / spec.path).exists():
            continue
        groups: dict[tuple[str, ...], list[tuple[date, dict[str, str]]]] = defaultdict(list)
        for partition in store.partitions(spec.path):
            day = _iso_day(partition.get(spec.day_key))
            if day is not None:
                groups[tuple(partition[k] for k in spec.group_keys)].append((day, partition))
        for members in groups.values():
            members.sort(key=lambda member: member[0])
            keep = {day for day, _ in members[-policy.keep_daily :]}
            if policy.keep_period_ends:
                period_ends: dict[str, date] = {}
                for day, _ in members:
                    period_ends[quarter_of(day)] = max(day, period_ends.get(quarter_of(day), day))
                keep |= set(period_ends.values())
            for day, partition in members:
                if day in keep:
                    continue
                target = "/".join([spec.path, *(f"{k}={v}" for k, v in partition.items())])
                reason = f"older than the newest {policy.keep_daily} days and not the last day of {quarter_of(day)}"
                planned.append((Deletion(target, reason), _deleter(store, spec.path, partition)))
    return planned


def _deleter(store: DataStore, dataset: str, partition: dict[str, str]) -> Callable[[], None]:
    return lambda: store.delete_partition(dataset, partition)


def _attempt_started(name: str) -> datetime | None:
    """Start time of a raw attempt directory ``attempt-<%Y%m%dT%H%M%S%fZ>-<hex>``."""
    stamp = name.removeprefix(ATTEMPT_PREFIX).split("-", 1)[0]
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _expired_attempts(
    store: DataStore, policy: RetentionPolicy, now: datetime
) -> list[tuple[Deletion, Callable[[], None]]]:
    raw = store.root / RAW_DIR
    if not raw.exists():
        return []
    cutoff = now - timedelta(days=policy.raw_keep_days)
    planned = []
    for batch in sorted(b for dataset in raw.iterdir() if dataset.is_dir() for b in dataset.iterdir() if b.is_dir()):
        attempts = sorted(a for a in batch.iterdir() if a.name.startswith(ATTEMPT_PREFIX))
        complete = [a for a in attempts if (a / COMPLETE_FILE).exists()]
        for attempt in attempts:
            started = _attempt_started(attempt.name)
            if (complete and attempt == complete[-1]) or started is None or started >= cutoff:
                continue
            state = "complete, superseded by a newer complete attempt" if attempt in complete else "incomplete"
            reason = f"{state}; started {started:%Y-%m-%d}, more than {policy.raw_keep_days} days ago"
            target = "/".join([RAW_DIR, batch.parent.name, batch.name, attempt.name])
            planned.append((Deletion(target, reason), _attempt_deleter(store, attempt)))
    return planned


def _attempt_deleter(store: DataStore, attempt: StorePath) -> Callable[[], None]:
    marker = attempt / COMPLETE_FILE

    def delete() -> None:
        if marker.exists():  # the marker first: a half-deleted attempt is never taken for a complete one
            store.fs.rm_file(store.fs_path(marker))
        store.fs.rm(store.fs_path(attempt), recursive=True)

    return delete


@dataclass(frozen=True)
class ExportSet:
    """The export files of one month and one cut-off: ``raw/dossier_exports/as_of=<stamp>/month=<M>``."""

    directory: Path
    as_of: datetime
    written: dict[str, datetime]  # file name -> modification time
    folder_written: datetime | None  # the folder's own modification time (a file added, renamed or removed)

    @property
    def target(self) -> str:
        return "/".join([EXPORTS_DIR, self.directory.parent.name, self.directory.name])

    def missing(self, provinces: Collection[str]) -> list[str]:
        """The provinces without a complete export file (``bulk.complete_provinces``)."""
        return sorted(set(provinces) - complete_provinces(self.written))

    def partials(self) -> dict[str, datetime]:
        return {n: t for n, t in self.written.items() if n.endswith(PARTIAL_SUFFIX)}

    def stale_partials(self, cutoff: datetime) -> list[str]:
        return sorted(n for n, t in self.partials().items() if t < cutoff)

    def downloading(self, cutoff: datetime) -> bool:
        """A partial file written since ``cutoff``: a download is running into the set."""
        return any(t >= cutoff for t in self.partials().values())

    def last_written(self, partial_cutoff: datetime) -> datetime | None:
        """When the set was last written or used (bulk touches a reused file's metadata), leaving out the
        partial files of killed downloads."""
        stale = set(self.stale_partials(partial_cutoff))
        times = [t for n, t in self.written.items() if n not in stale]
        if self.folder_written is not None:  # conservative: a file added, renamed or removed keeps it young
            times.append(self.folder_written)
        return max(times, default=None)


def _export_as_of(name: str) -> datetime | None:
    """The cut-off of an export directory ``as_of=<%Y%m%dT%H%M%S%z>``."""
    if not name.startswith("as_of="):
        return None
    try:
        return datetime.strptime(name.removeprefix("as_of="), AS_OF_STAMP)
    except ValueError:
        return None


def _modified(path: Path) -> datetime | None:
    """``path``'s modification time; None if it vanished meanwhile."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except FileNotFoundError:
        return None


def _written(directory: Path) -> dict[str, datetime]:
    """The files of a directory and their modification times (a file renamed meanwhile is left out)."""
    written = {}
    for entry in directory.iterdir():
        try:
            is_file = entry.is_file()
        except FileNotFoundError:  # a running download renamed its .partial into place
            continue
        if is_file and (modified := _modified(entry)) is not None:
            written[entry.name] = modified
    return written


def _export_sets(store: DataStore) -> dict[str, list[ExportSet]]:
    """The export sets under the data root by month (``month=YYYY-MM``), oldest cut-off first. Export
    files are local (``bulk.export_dir``): a store on an object store root has none."""
    exports = store.root / EXPORTS_DIR
    if not isinstance(exports, Path) or not exports.exists():
        return {}
    by_month: dict[str, list[ExportSet]] = defaultdict(list)
    for as_of_dir in sorted(d for d in exports.iterdir() if d.is_dir()):
        as_of = _export_as_of(as_of_dir.name)
        if as_of is None:
            continue  # not a directory bulk writes: never touched
        for month_dir in sorted(d for d in as_of_dir.iterdir() if d.is_dir() and d.name.startswith("month=")):
            by_month[month_dir.name].append(ExportSet(month_dir, as_of, _written(month_dir), _modified(month_dir)))
    return {month: sorted(sets, key=lambda s: s.as_of) for month, sets in by_month.items()}


def _expired_exports(
    store: DataStore, policy: RetentionPolicy, now: datetime, provinces: Collection[str] | None
) -> list[tuple[Deletion, Callable[[], None]]]:
    cutoff, partial_cutoff = now - timedelta(days=policy.export_keep_days), now - PARTIAL_KEEP
    by_month = _export_sets(store)
    if not by_month:
        return []
    if provinces is None:
        from egov_index.registry import current_units  # what bulk.downloaded asks of a month: every province

        provinces = current_units().province_codes()
    planned = []
    for sets in by_month.values():
        newest = next((s for s in reversed(sets) if not s.missing(provinces)), None)
        for export in sets:
            written = export.last_written(partial_cutoff)
            stale = export.stale_partials(partial_cutoff)
            if export is newest or export.downloading(partial_cutoff) or (written is not None and written >= cutoff):
                planned += [_partial_deletion(store, export, name) for name in stale]
                continue
            missing = export.missing(provinces)
            state = (
                f"{len(missing)} of {len(provinces)} provinces without a complete export file"
                if missing
                else "complete"
            )
            if newest is not None:
                state += f", superseded by the complete {newest.directory.parent.name}"
            age = (
                f"last written or used {written:%Y-%m-%d %H:%M} UTC, more than {policy.export_keep_days} days ago"
                if written
                else "nothing in it but stale partial files"
            )
            planned.append((Deletion(export.target, f"{state}; {age}"), _export_set_deleter(store, export)))
    return planned


def _partial_deletion(store: DataStore, export: ExportSet, name: str) -> tuple[Deletion, Callable[[], None]]:
    reason = f"partial download left by a killed pull, last written {export.written[name]:%Y-%m-%d %H:%M} UTC"

    def delete() -> None:
        _remove_file(store, export.directory / name)
        _remove_empty(export.directory, export.directory.parent)

    return Deletion(f"{export.target}/{name}", reason), delete


def _export_set_deleter(store: DataStore, export: ExportSet) -> Callable[[], None]:
    metadata_first = sorted(export.written, key=lambda name: not name.endswith(META_SUFFIX))

    def delete() -> None:
        for name in metadata_first:  # a file without metadata is never taken for a complete one
            _remove_file(store, export.directory / name)
        _remove_empty(export.directory, export.directory.parent)

    return delete


def _remove_file(store: DataStore, path: Path) -> None:
    try:
        store.fs.rm_file(store.fs_path(path))
    except FileNotFoundError:  # gone since it was listed: nothing left to delete
        pass


def _remove_empty(*directories: Path) -> None:
    """Remove ``directories``, innermost first, while they are empty."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:  # not empty (e.g. a download started meanwhile) or already gone
            return
