"""Inbox: what a scan picks up, new / identical / changed deliveries, processed and failed moves."""

from __future__ import annotations

import os
import unicodedata
from datetime import UTC

import pytest

from egov_index.inbox import (
    FAILED_DIR,
    PROCESSED_DIR,
    Claim,
    InboxError,
    InboxFile,
    claim,
    file_key,
    mark_failed,
    mark_processed,
    scan_inbox,
)
from egov_index.ledger import Ledger
from egov_index.raw_archive import RawArchive, UnsafePathError, sha256_hex

REPORT = "Báo cáo quý 3 - Xã An Bình.xlsx"


@pytest.fixture
def inbox(tmp_path):
    path = tmp_path / "inbox"
    path.mkdir()
    return path


@pytest.fixture
def ledger(tmp_path):
    with Ledger.open(f"sqlite:///{tmp_path / 'data' / 'egov-index.sqlite'}") as opened:
        yield opened


@pytest.fixture
def archive(tmp_path):
    return RawArchive(tmp_path / "data")


def ingest(inbox_file: InboxFile, ledger: Ledger, archive: RawArchive) -> Claim:
    """What the pipeline does with one inbox file (the parse + publish step is left out)."""
    claimed = claim(inbox_file, ledger, archive)
    entry = ledger.start(
        run_id="cli",
        source="inbox",
        dataset="commune_reports",
        partition="2026-Q3",
        file_name=inbox_file.name,
        file_sha256=inbox_file.sha256,
    )
    if claimed.status == "identical":
        ledger.finish(entry, "skipped_duplicate")
    else:
        assert claimed.archived is not None and claimed.archived.read_bytes() == inbox_file.path.read_bytes()
        ledger.finish(entry, "succeeded", rows_pulled=1, rows_snapshot=1, rows_quarantined=0)
        ledger.record_file_version(inbox_file.key, inbox_file.sha256, entry_id=entry)
    mark_processed(inbox_file)
    return claimed


def deliver(inbox, content: bytes, name: str = REPORT) -> InboxFile:
    (inbox / name).write_bytes(content)
    (found,) = [f for f in scan_inbox(inbox) if f.name == name]
    return found


def test_scan_lists_only_regular_finished_files(inbox, tmp_path):
    for name in (REPORT, "b.csv"):
        (inbox / name).write_bytes(name.encode())
    for name in (".hidden.xlsx", "~$" + REPORT, "upload.xlsx.part", "big.xlsx.filepart", "x.xlsx.crdownload"):
        (inbox / name).write_bytes(b"not yet")
    (inbox / "subfolder").mkdir()
    (inbox / "subfolder" / "nested.xlsx").write_bytes(b"nested")
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"outside the inbox")
    (inbox / "link-out.xlsx").symlink_to(outside)
    (inbox / "link-in.xlsx").symlink_to(inbox / "b.csv")
    (inbox / "back\\slash.xlsx").write_bytes(b"unsafe name")
    (inbox / os.fsdecode(b"not-utf8-\xff.xlsx")).write_bytes(b"undecodable name")

    found = scan_inbox(inbox)
    assert [f.name for f in found] == sorted([REPORT, "b.csv"])
    report = next(f for f in found if f.name == REPORT)
    assert report.size == len(REPORT.encode())
    assert report.sha256 == sha256_hex(REPORT.encode())
    assert report.mtime.tzinfo == UTC
    assert report.path == inbox / REPORT


def test_scan_of_a_missing_inbox_is_empty(tmp_path):
    assert scan_inbox(tmp_path / "no-inbox") == []


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a\x00b.xlsx", "..\\..\\x.xlsx", "..", ""])
def test_untrusted_names_are_refused(inbox, name):
    with pytest.raises(UnsafePathError):
        InboxFile(inbox, name, 0, "0" * 64, None)  # type: ignore[arg-type]


def test_the_file_key_ignores_case_spacing_and_unicode_form():
    decomposed = unicodedata.normalize("NFD", REPORT)
    assert decomposed != REPORT
    assert file_key(decomposed) == file_key(REPORT) == file_key("  BÁO CÁO  quý 3 - Xã An Bình.XLSX")
    assert file_key(REPORT) != file_key("Báo cáo quý 2 - Xã An Bình.xlsx")


def test_new_then_identical_then_changed(inbox, ledger, archive):
    first = deliver(inbox, b"version 1")
    assert ingest(first, ledger, archive).status == "new"
    processed = inbox / PROCESSED_DIR / f"{first.sha256[:12]}_{REPORT}"
    assert processed.read_bytes() == b"version 1"
    assert not first.path.exists()
    assert scan_inbox(inbox) == []

    again = deliver(inbox, b"version 1")
    claimed = ingest(again, ledger, archive)
    assert claimed.status == "identical" and claimed.archived is None
    assert not again.path.exists() and processed.read_bytes() == b"version 1"

    changed = deliver(inbox, b"version 2", name=unicodedata.normalize("NFD", REPORT))
    claimed = ingest(changed, ledger, archive)
    assert claimed.status == "changed"
    assert (inbox / PROCESSED_DIR / f"{changed.sha256[:12]}_{changed.name}").read_bytes() == b"version 2"

    outcomes = [row["outcome"] for row in reversed(ledger.history())]
    assert outcomes == ["superseded", "skipped_duplicate", "succeeded"]
    archived = sorted(p.name for p in (archive.root / "inbox" / first.key / "files").glob("*.gz"))
    assert archived == sorted([f"{first.sha256}.gz", f"{changed.sha256}.gz"])


def test_a_failed_file_goes_to_failed_with_its_error(inbox, ledger, archive):
    broken = deliver(inbox, b"not a spreadsheet")
    assert claim(broken, ledger, archive).status == "new"
    target = mark_failed(broken, ValueError("sheet 'Biểu 1' not found"))
    assert target == inbox / FAILED_DIR / f"{broken.sha256[:12]}_{REPORT}"
    assert target.read_bytes() == b"not a spreadsheet" and not broken.path.exists()
    error_text = target.with_name(target.name + ".error.txt").read_text(encoding="utf-8")
    assert "ValueError: sheet 'Biểu 1' not found" in error_text
    assert scan_inbox(inbox) == []
    # the same bytes delivered again are still new: a failed ingest is not a version
    assert claim(deliver(inbox, b"not a spreadsheet"), ledger, archive).status == "new"


def test_a_file_changed_after_the_scan_is_not_claimed(inbox, ledger, archive):
    scanned = deliver(inbox, b"first bytes")
    scanned.path.write_bytes(b"rewritten while we looked")
    with pytest.raises(InboxError, match="changed since the inbox was scanned"):
        claim(scanned, ledger, archive)


def test_moves_never_follow_a_symlinked_folder(inbox, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, inbox / PROCESSED_DIR)
    scanned = deliver(inbox, b"x")
    with pytest.raises(InboxError, match="symlink"):
        mark_processed(scanned)
    assert list(elsewhere.iterdir()) == [] and scanned.path.exists()
