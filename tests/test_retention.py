"""Retention of the bulk export files (raw/dossier_exports): by set (one month of one as_of), by age,
the newest complete set of each month always kept, stale .partial files, nothing else touched."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from egov_index import bulk, pull
from egov_index.config import Settings
from egov_index.errors import MissingInputError
from egov_index.periods import LOCAL_TZ
from egov_index.retention import RetentionPolicy, apply_retention
from egov_index.source_server.generator import dossier_export
from egov_index.store import DataStore

CODES = ["12", "31"]  # two provinces (Lai Châu, Hải Phòng)
ENDPOINT = pull.SourceEndpoint("service_portal", "http://source.invalid", "unused")
NOW = datetime(2026, 9, 15, 4, 0, tzinfo=LOCAL_TZ)  # the maintenance run
AS_OF_JUN, AS_OF_JUL, AS_OF_AUG, AS_OF_SEP = (datetime(2026, m, 1, tzinfo=LOCAL_TZ) for m in (6, 7, 8, 9))


@pytest.fixture(autouse=True)
def export_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """The source's export, served by the generator instead of over HTTP (bulk.pull_month writes the rest)."""

    def fetch(endpoint, month, as_of, dest: Path, province_code=None, fmt="parquet") -> pull.ExportFile:
        table = dossier_export(month, as_of, province_code=province_code, dossiers_per_day=50)
        dest.parent.mkdir(parents=True, exist_ok=True)  # as the real download does
        pq.write_table(table, dest)
        sha = hashlib.sha256(dest.read_bytes()).hexdigest()
        return pull.ExportFile(dest, month, province_code, fmt, table.num_rows, sha, as_of.isoformat())

    monkeypatch.setattr(pull, "fetch_dossier_export", fetch)


def settings_for(root: Path) -> Settings:
    return Settings(**{**Settings.from_env().__dict__, "data_root": root})


def ago(days: float = 0, **more: float) -> datetime:
    return NOW - timedelta(days=days, **more)


def touch(path: Path, written: datetime) -> None:
    seconds = int(written.timestamp())  # whole seconds: the boundaries are exact
    os.utime(path, ns=(seconds * 10**9, seconds * 10**9))


def downloaded(root: Path, month: str, as_of: datetime, written: datetime, codes: list[str] = CODES) -> Path:
    """One month's export set as ``bulk.pull_month`` leaves it, its files (and folder) last written at
    ``written``."""
    bulk.pull_month(settings_for(root), ENDPOINT, month, as_of, codes)
    directory = bulk.export_dir(root, month, as_of)
    for path in directory.iterdir():
        touch(path, written)
    touch(directory, written)
    return directory


def killed_download(directory: Path, code: str, written: datetime) -> Path:
    """What a download killed mid-transfer leaves: ``province=<code>.parquet.partial``; the folder's time
    becomes the partial's if that is newer."""
    existed = directory.exists()
    folder_time = datetime.fromtimestamp(directory.stat().st_mtime, UTC) if existed else written
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"province={code}.parquet{pull.PARTIAL_SUFFIX}"
    partial.write_bytes(b"PAR1 half a file")
    touch(partial, written)
    touch(directory, max(folder_time, written))
    return partial


def retention(root: Path, policy: RetentionPolicy | None = None, **options):
    """apply_retention (at NOW unless told), a complete export set being one of both CODES."""
    options.setdefault("now", NOW)
    return apply_retention(DataStore(root), policy or RetentionPolicy(), export_provinces=CODES, **options)


def relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def tree(root: Path) -> dict[str, int]:
    return {relative(root, p): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_superseded_sets_older_than_the_policy_go_and_the_newest_complete_set_of_each_month_stays(tmp_path):
    may_first = downloaded(tmp_path, "2026-05", AS_OF_JUN, ago(100))  # superseded: goes, with its as_of
    may = downloaded(tmp_path, "2026-05", AS_OF_JUL, ago(70))  # the newest of May: stays, however old
    june_old = downloaded(tmp_path, "2026-06", AS_OF_JUL, ago(70))  # superseded: goes
    june = downloaded(tmp_path, "2026-06", AS_OF_AUG, ago(40))  # the newest of June
    july_old = downloaded(tmp_path, "2026-07", AS_OF_AUG, ago(20))  # superseded, but recent: stays
    july = downloaded(tmp_path, "2026-07", AS_OF_SEP, ago(5))
    # outside the export sets: never touched, however old
    strays = [
        tmp_path / "raw" / "dossier_exports" / "notes.txt",
        tmp_path / "raw" / "dossier_exports" / "manual-copy" / "month=2026-01" / "province=12.parquet",
        tmp_path / "raw" / "dossier_exports" / "as_of=yesterday" / "month=2026-01" / "province=12.parquet",
        tmp_path / "raw" / "inbox" / "file-0123" / "files" / "report.xlsx.partial",
    ]
    for stray in strays:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"x")
        touch(stray, ago(400))
    before = tree(tmp_path)

    dry = retention(tmp_path, dry_run=True)
    assert tree(tmp_path) == before  # a dry run deletes nothing
    assert [d.target for d in dry.deletions] == [relative(tmp_path, may_first), relative(tmp_path, june_old)]
    assert dry.as_dict()["count"] == 2 and dry.as_dict()["dry_run"]
    reasons = {d.target: d.reason for d in dry.deletions}
    assert reasons[relative(tmp_path, june_old)] == (
        "complete, superseded by the complete as_of=20260801T000000+0700; "
        f"last written or used {ago(70).astimezone(UTC):%Y-%m-%d %H:%M} UTC, more than 35 days ago"
    )

    real = retention(tmp_path)
    assert real.deletions == dry.deletions and not real.dry_run
    assert not may_first.parent.exists()  # its as_of directory held nothing else
    assert not june_old.exists() and june_old.parent.exists()  # May of the same as_of stays
    for kept, month, as_of in [
        (may, "2026-05", AS_OF_JUL),
        (june, "2026-06", AS_OF_AUG),
        (july_old, "2026-07", AS_OF_AUG),
        (july, "2026-07", AS_OF_SEP),
    ]:
        files = bulk.downloaded(settings_for(tmp_path), month, as_of, CODES)  # still complete, reusable
        assert kept.is_dir() and bulk.read_month(files).num_rows == sum(f.rows for f in files) > 0
    with pytest.raises(MissingInputError):
        bulk.downloaded(settings_for(tmp_path), "2026-06", AS_OF_JUL, CODES)
    assert all(stray.exists() for stray in strays)
    assert retention(tmp_path, dry_run=True).deletions == []


@pytest.mark.parametrize(
    ("age", "deleted"),
    [
        (timedelta(days=34, hours=23), False),
        (timedelta(days=35), False),  # exactly the policy's age: still kept
        (timedelta(days=35, seconds=1), True),
    ],
)
def test_a_superseded_set_goes_once_last_written_more_than_export_keep_days_ago(tmp_path, age, deleted):
    old = downloaded(tmp_path, "2026-07", AS_OF_AUG, NOW - age)
    newest = downloaded(tmp_path, "2026-07", AS_OF_SEP, ago(5))
    result = retention(tmp_path, RetentionPolicy(export_keep_days=35))
    assert [d.target for d in result.deletions] == ([relative(tmp_path, old)] if deleted else [])
    assert old.exists() is not deleted and newest.exists()


def test_the_set_age_is_its_last_written_file(tmp_path):
    """A set resumed later (one province downloaded again) is as young as that file's metadata."""
    old = downloaded(tmp_path, "2026-07", AS_OF_AUG, ago(60))
    touch(old / "province=31.parquet.meta.json", ago(10))
    downloaded(tmp_path, "2026-07", AS_OF_SEP, ago(5))
    assert retention(tmp_path, dry_run=True).deletions == []
    result = retention(tmp_path, RetentionPolicy(export_keep_days=0), dry_run=True)
    assert [d.target for d in result.deletions] == [relative(tmp_path, old)]  # 0: only the newest set stays


def test_stale_partial_files_go_and_a_running_download_keeps_its_set(tmp_path):
    # August: its newest (only) set, next to which downloads were killed and one is running
    august = downloaded(tmp_path, "2026-08", AS_OF_SEP, ago(10), codes=["12"])
    killed = killed_download(august, "31", ago(2))
    killed_just_over_a_day = killed_download(august, "01", ago(1, seconds=1))
    a_day_old = killed_download(august, "02", ago(1))  # exactly a day: kept until the next run
    running = killed_download(august, "04", ago(hours=1))
    # July: a superseded old set in which a download runs now (a backfill rerun with that as_of)
    july_old = downloaded(tmp_path, "2026-07", AS_OF_AUG, ago(60))
    killed_download(july_old, "01", ago(hours=1))
    downloaded(tmp_path, "2026-07", AS_OF_SEP, ago(5))
    # June: a complete set 80 days old, and a newer as_of whose only download was killed 50 days ago
    june = downloaded(tmp_path, "2026-06", AS_OF_JUL, ago(80))
    june_killed = bulk.export_dir(tmp_path, "2026-06", AS_OF_AUG)
    killed_download(june_killed, "12", ago(50))

    result = retention(tmp_path)
    partial = "partial download left by a killed pull, last written {:%Y-%m-%d %H:%M} UTC"
    assert {d.target: d.reason for d in result.deletions} == {
        relative(tmp_path, killed): partial.format(ago(2).astimezone(UTC)),
        relative(tmp_path, killed_just_over_a_day): partial.format(ago(1, seconds=1).astimezone(UTC)),
        relative(tmp_path, june_killed): "2 of 2 provinces without a complete export file, superseded by the "
        f"complete as_of=20260701T000000+0700; last written or used {ago(50).astimezone(UTC):%Y-%m-%d %H:%M} UTC, "
        "more than 35 days ago",
    }
    assert {p.name for p in august.iterdir()} == {
        "province=12.parquet",
        "province=12.parquet.meta.json",
        a_day_old.name,
        running.name,
    }
    assert len(list(july_old.iterdir())) == 2 * len(CODES) + 1
    assert not june_killed.exists() and june_killed.parent.exists()  # July of that as_of stays
    assert june.exists() and bulk.downloaded(settings_for(tmp_path), "2026-06", AS_OF_JUL, CODES)


def test_a_set_goes_metadata_first_with_its_orphans_and_leaves_no_empty_directory(tmp_path, monkeypatch):
    store = DataStore(tmp_path)
    old = downloaded(tmp_path, "2026-07", AS_OF_AUG, ago(60))
    orphan = old / "province=01.parquet"  # renamed into place, killed before its metadata was written
    orphan.write_bytes(b"PAR1")
    leftover = old / ".province=01.parquet.meta.json.0123abcd.tmp"  # the atomic JSON writer's, killed
    leftover.write_bytes(b"{")
    for path in (orphan, leftover, old):  # the folder too: its last file was added 60 days ago
        touch(path, ago(60))
    killed_download(old, "02", ago(60))
    downloaded(tmp_path, "2026-07", AS_OF_SEP, ago(5))
    removed: list[str] = []
    rm_file = store.fs.rm_file
    monkeypatch.setattr(store.fs, "rm_file", lambda path: (removed.append(Path(path).name), rm_file(path)))

    result = apply_retention(store, RetentionPolicy(), now=NOW, export_provinces=CODES)
    assert [d.target for d in result.deletions] == [relative(tmp_path, old)]
    assert result.deletions[0].reason.startswith("complete, superseded by the complete as_of=20260901T000000+0700;")
    assert len(removed) == 2 * len(CODES) + 3 and not old.parent.exists()
    for code in CODES:  # never an export file without its metadata: the metadata goes first
        name = f"province={code}.parquet"
        assert removed.index(name + bulk.META_SUFFIX) < removed.index(name)


def test_export_keep_days_comes_from_the_environment_and_is_not_negative(monkeypatch):
    monkeypatch.delenv("EGOV_RETENTION_EXPORT_DAYS", raising=False)
    assert Settings.from_env().retention_export_days == RetentionPolicy().export_keep_days == 35
    monkeypatch.setenv("EGOV_RETENTION_EXPORT_DAYS", "90")
    assert Settings.from_env().retention_export_days == 90
    with pytest.raises(ValueError):
        RetentionPolicy(export_keep_days=-1)


def test_no_export_directory_no_export_deletions(tmp_path):
    assert retention(tmp_path).deletions == []


def test_a_newer_set_left_incomplete_never_costs_the_older_complete_one(tmp_path):
    """A backfill with a newer as_of killed after one province: the older set is still the one a
    re-ingest can read (bulk.downloaded needs every province), so it stays however old."""
    complete = downloaded(tmp_path, "2026-07", AS_OF_AUG, ago(60))
    incomplete = downloaded(tmp_path, "2026-07", AS_OF_SEP, ago(50), codes=["12"])
    result = retention(tmp_path)
    assert [d.target for d in result.deletions] == [relative(tmp_path, incomplete)]
    assert result.deletions[0].reason.startswith(
        "1 of 2 provinces without a complete export file, superseded by the complete as_of=20260801T000000+0700;"
    )
    assert bulk.downloaded(settings_for(tmp_path), "2026-07", AS_OF_AUG, CODES) and complete.exists()


def test_a_fresh_folder_and_a_running_download_are_never_deleted_even_at_zero_days(tmp_path):
    """keep 0 days: superseded sets go at once, but not a folder just created for a download, nor a set
    a download is writing into (its .partial younger than a day)."""
    downloaded(tmp_path, "2026-07", AS_OF_SEP, ago(5))
    superseded = downloaded(tmp_path, "2026-07", AS_OF_AUG, ago(3))
    running = downloaded(tmp_path, "2026-06", AS_OF_JUL, ago(3))  # superseded too, but being re-downloaded
    downloaded(tmp_path, "2026-06", AS_OF_AUG, ago(2))
    killed_download(running, "01", ago(minutes=5))
    just_created = bulk.export_dir(tmp_path, "2026-05", AS_OF_SEP)
    just_created.mkdir(parents=True)
    touch(just_created, NOW)

    result = retention(tmp_path, RetentionPolicy(export_keep_days=0))
    assert [d.target for d in result.deletions] == [relative(tmp_path, superseded)]
    assert running.exists() and just_created.exists()


def test_a_rerun_reusing_a_set_makes_it_young_again(tmp_path):
    """bulk.pull_month touches the metadata of a file it reuses: a set in use is not deleted under it."""
    old = downloaded(tmp_path, "2026-07", AS_OF_AUG, ago(60))
    downloaded(tmp_path, "2026-07", AS_OF_SEP, ago(50))
    assert [d.target for d in retention(tmp_path, dry_run=True).deletions] == [relative(tmp_path, old)]
    files = bulk.pull_month(settings_for(tmp_path), ENDPOINT, "2026-07", AS_OF_AUG, CODES)  # all reused
    assert [f.path.parent for f in files] == [old, old]
    assert retention(tmp_path, dry_run=True, now=datetime.now(UTC)).deletions == []
