"""Raw archive: pages kept as received, deterministic gzip, complete attempts only, no credentials."""

from __future__ import annotations

import json

import pytest

from egov_index.raw_archive import (
    COMPLETE_FILE,
    ArchiveCorruptError,
    RawArchive,
    UnsafePathError,
    iter_records,
    payload_digest,
    sha256_hex,
)

TOKEN = "s3cr3t-token-value"
PAGES = [
    b'{"page":1,"page_size":2,"total":3,"items":[{"report_id":"00004-2026-Q3"},{"report_id":"00007-2026-Q3"}]}',
    b'{"page":2,"page_size":2,"total":3,"items":[{"report_id":"00010-2026-Q3","note":"Ph\xc6\xb0\xe1\xbb\x9dng"}]}',
]


def record(archive: RawArchive, pages: list[bytes] = PAGES, partition: str = "2026-Q3"):
    with archive.recorder("commune_reports", partition, endpoint="egov_reporting_api", run_id="cli") as rec:
        for number, body in enumerate(pages, start=1):
            rec.on_page(
                "/api/v1/commune-reports",
                {"period": partition, "page": number, "page_size": 2},
                200,
                body,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            )
    assert rec.batch is not None
    return rec.batch


def test_round_trip_gives_the_bytes_as_received(tmp_path):
    archive = RawArchive(tmp_path)
    written = record(archive)
    batch = archive.latest_complete("commune_reports", "2026-Q3")
    assert batch.directory == written.directory
    assert list(batch.pages()) == PAGES
    assert batch.payload_sha256 == payload_digest([sha256_hex(p) for p in PAGES])
    assert [r["report_id"] for r in iter_records(batch)] == ["00004-2026-Q3", "00007-2026-Q3", "00010-2026-Q3"]
    meta = batch.page_metadata()
    assert [m["page"] for m in meta] == [1, 2]
    assert meta[0]["path"] == "/api/v1/commune-reports" and meta[0]["status"] == 200
    assert meta[0]["endpoint"] == "egov_reporting_api"
    assert meta[0]["content_type"] == "application/json"
    assert meta[1]["sha256"] == sha256_hex(PAGES[1])
    assert sorted(p.name for p in batch.directory.iterdir()) == [
        COMPLETE_FILE,
        "page-00001.json.gz",
        "page-00001.meta.json",
        "page-00002.json.gz",
        "page-00002.meta.json",
    ]


def test_gzip_is_deterministic(tmp_path):
    first = record(RawArchive(tmp_path / "a"))
    second = record(RawArchive(tmp_path / "b"))
    for name in ("page-00001.json.gz", "page-00002.json.gz", "page-00001.meta.json"):
        assert (first.directory / name).read_bytes() == (second.directory / name).read_bytes()


def test_a_rerun_writes_a_new_attempt_and_the_newest_complete_one_is_read(tmp_path):
    archive = RawArchive(tmp_path)
    old = record(archive, PAGES[:1])
    new = record(archive)
    assert new.directory != old.directory and old.directory.exists()
    assert archive.latest_complete("commune_reports", "2026-Q3").directory == new.directory


def test_an_attempt_without_complete_json_is_ignored(tmp_path):
    archive = RawArchive(tmp_path)
    good = record(archive)
    with pytest.raises(RuntimeError, match="source went away"):
        with archive.recorder("commune_reports", "2026-Q3") as rec:
            rec.on_page("/api/v1/commune-reports", {"period": "2026-Q3", "page": 1}, 200, PAGES[0])
            raise RuntimeError("source went away")
    assert rec.batch is None
    assert (rec.directory / "page-00001.json.gz").exists()
    assert not (rec.directory / COMPLETE_FILE).exists()
    assert archive.latest_complete("commune_reports", "2026-Q3").directory == good.directory


def test_no_complete_attempt_at_all_is_an_error(tmp_path):
    archive = RawArchive(tmp_path)
    with pytest.raises(FileNotFoundError, match="no complete raw archive"):
        archive.latest_complete("dossiers", "2026-09-30")
    with pytest.raises(ValueError):
        with archive.recorder("dossiers", "2026-09-30") as rec:
            rec.on_page("/api/v1/dossiers", {"limit": 1000}, 200, b'{"items": []}')
            raise ValueError("page check failed")
    with pytest.raises(FileNotFoundError):
        archive.latest_complete("dossiers", "2026-09-30")


def test_the_token_is_never_stored(tmp_path):
    archive = RawArchive(tmp_path)
    with archive.recorder("dossiers", "2026-09-30", endpoint="egov_service_portal") as rec:
        rec.on_page(
            "/api/v1/dossiers",
            {"updated_from": "2026-09-30T00:00:00+07:00", "cursor": "abc", "access_token": TOKEN},
            200,
            b'{"items": [], "next_cursor": null, "total": 0}',
            headers={"Authorization": f"Bearer {TOKEN}", "Cookie": f"session={TOKEN}", "ETag": '"v1"'},
        )
    meta = rec.batch.page_metadata()[0]
    assert meta["cursor"] == "abc"
    assert meta["headers"] == {"etag": '"v1"'}
    assert meta["params"]["access_token"] == "<redacted>"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
            assert b"Bearer" not in path.read_bytes(), path


def test_a_damaged_page_is_detected(tmp_path):
    archive = RawArchive(tmp_path)
    batch = record(archive)
    other = record(RawArchive(tmp_path / "other"), [PAGES[1], PAGES[0]])
    (batch.directory / "page-00001.json.gz").write_bytes((other.directory / "page-00001.json.gz").read_bytes())
    with pytest.raises(ArchiveCorruptError):
        list(archive.latest_complete("commune_reports", "2026-Q3").pages())


def test_pages_without_items_are_refused_by_iter_records(tmp_path):
    archive = RawArchive(tmp_path)
    with archive.recorder("procedures", "2026-09-30") as rec:
        rec.on_page("/api/v1/procedures", {"page": 1}, 200, b'{"detail": "not a page"}')
    with pytest.raises(ValueError, match="no 'items' list"):
        iter_records(rec.batch)


@pytest.mark.parametrize("bad", ["..", ".", "", "../etc", "a/b", "a\\b", "/abs", "nul\x00", "line\nbreak", ".hidden", "bad-\udcff-utf8", "x" * 256])
def test_unsafe_dataset_or_partition_is_refused(tmp_path, bad):
    archive = RawArchive(tmp_path)
    with pytest.raises(UnsafePathError):
        archive.recorder("commune_reports", bad)
    with pytest.raises(UnsafePathError):
        archive.recorder(bad, "2026-Q3")
    with pytest.raises(UnsafePathError):
        archive.latest_complete(bad, "2026-Q3")
    source = tmp_path / "report.xlsx"
    source.write_bytes(b"x")
    with pytest.raises(UnsafePathError):
        archive.archive_file(source, "inbox", bad)
    assert not (tmp_path / "raw").exists() or not any(p.is_file() for p in (tmp_path / "raw").rglob("*"))


def test_archive_file_keeps_the_bytes_under_their_sha256(tmp_path):
    archive = RawArchive(tmp_path / "data")
    source = tmp_path / "Báo cáo quý 3.xlsx"
    content = bytes(range(256)) * 1000
    source.write_bytes(content)
    archived = archive.archive_file(source, "inbox", "báo cáo quý 3.xlsx")
    assert archived.sha256 == sha256_hex(content) and archived.size == len(content)
    assert archived.path.name == f"{archived.sha256}.gz"
    assert archived.read_bytes() == content
    meta = json.loads(archived.path.with_name(f"{archived.sha256}.meta.json").read_text())
    assert meta["name"] == "Báo cáo quý 3.xlsx"

    first_bytes = archived.path.read_bytes()
    again = archive.archive_file(source, "inbox", "báo cáo quý 3.xlsx")
    assert again.path == archived.path and again.path.read_bytes() == first_bytes
    assert sorted(p.name for p in archived.path.parent.iterdir()) == [archived.path.name, f"{archived.sha256}.meta.json"]
