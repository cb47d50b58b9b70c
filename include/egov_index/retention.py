"""Retention of the date-partitioned outputs and of the raw archive (run daily by egov_maintenance).

Daily partitions — the procedure catalogue (``snapshot_date=D``), and the quarantine and validation
results of daily batches (``partition=D``, counted per source dataset) — keep the newest
``keep_daily`` days plus, with ``keep_period_ends``, the newest day of every quarter (the catalogue a
past period was ranked with). The newest partition is always kept, and partitions that are not an
ISO day (period batches such as ``2026-Q3``, inbox files) are never touched. Raw archive attempts
started more than ``raw_keep_days`` ago are deleted, except the newest complete attempt of each
batch (the one a replay uses). Inbox file copies (``raw/<dataset>/<batch>/files``) are kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from egov_index.periods import quarter_of
from egov_index.pipeline import QUARANTINE, SNAPSHOT_DATASETS, VALIDATION_RESULTS
from egov_index.raw_archive import ATTEMPT_PREFIX, COMPLETE_FILE, RAW_DIR
from egov_index.store import DataStore, StorePath


@dataclass(frozen=True)
class RetentionPolicy:
    keep_daily: int = 35
    keep_period_ends: bool = True
    raw_keep_days: int = 35

    def __post_init__(self) -> None:
        if self.keep_daily < 1 or self.raw_keep_days < 0:
            raise ValueError(f"retention keeps at least the newest day and a non-negative raw age: {self}")


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
    store: DataStore, policy: RetentionPolicy, *, dry_run: bool = False, now: datetime | None = None
) -> RetentionResult:
    """Delete what the policy lets go (or, with ``dry_run``, only list it)."""
    planned = [*_expired_partitions(store, policy), *_expired_attempts(store, policy, now or datetime.now(UTC))]
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
