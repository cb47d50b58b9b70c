"""Ingest ledger on SQLite: Alembic migrations, concurrent opens, attempts, file versions, row counts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import egov_index.sql_publish  # noqa: F401  (registers its tables on Base.metadata)
import egov_index.validation_history  # noqa: F401
from egov_index.ledger import VERSION_TABLE, Base, Ledger, alembic_config

ICT = timezone(timedelta(hours=7))
SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'data' / 'egov-index.sqlite'}"


@pytest.fixture
def ledger(url):
    with Ledger.open(url) as opened:
        yield opened


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_open_migrates_to_head_and_the_schema_matches_the_model(ledger):
    with ledger.engine.connect() as connection:
        assert "ingest_ledger" in sa.inspect(connection).get_table_names()
        assert connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one() == head_revision()
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, Base.metadata) == []
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


def test_open_is_idempotent(url):
    with Ledger.open(url) as first:
        entry = first.start(run_id="cli", source="reporting_api", dataset="commune_reports", partition="2026-Q3")
    with Ledger.open(url) as second:
        assert [row["id"] for row in second.history()] == [entry]
        with second.engine.connect() as connection:
            versions = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    assert versions == [head_revision()]


def test_migrations_downgrade_to_base(ledger):
    config = alembic_config()
    with ledger.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    with ledger.engine.connect() as connection:
        assert "ingest_ledger" not in sa.inspect(connection).get_table_names()


def test_concurrent_opens_and_writes_on_one_sqlite_file(url):
    workers = 8
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            with Ledger.open(url) as ledger:
                for k in range(5):
                    entry = ledger.start(run_id=f"run-{i}", source="service_portal", dataset="dossiers", partition=f"p{k}")
                    ledger.finish(entry, "succeeded", rows_pulled=k, rows_snapshot=k, rows_quarantined=0)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Ledger.open(url) as ledger:
        assert len(ledger.history(limit=1000)) == workers * 5


def test_start_finish_history(ledger):
    window_start = datetime(2026, 9, 30, tzinfo=ICT)
    first = ledger.start(
        run_id="scheduled__2026-09-30T18:30:00+00:00",
        source="service_portal",
        dataset="dossiers",
        partition="2026-09-30",
        window_start=window_start,
        window_end=window_start + timedelta(days=1),
    )
    running = ledger.history()[0]
    assert running["outcome"] == "running"
    assert running["finished_at"] is None and running["rows_pulled"] is None
    ledger.finish(first, "succeeded", rows_pulled=10, rows_snapshot=9, rows_quarantined=1, payload_sha256=SHA_A)
    second = ledger.start(run_id="cli", source="reporting_api", dataset="commune_reports", partition="2026-Q3")
    ledger.finish(second, "failed", error="SourceError: reporting_api: GET /api/v1/commune-reports answered 503")

    newest_first = ledger.history()
    assert [row["id"] for row in newest_first] == [second, first]
    done = newest_first[1]
    assert done["outcome"] == "succeeded"
    assert (done["rows_pulled"], done["rows_snapshot"], done["rows_quarantined"]) == (10, 9, 1)
    assert done["payload_sha256"] == SHA_A
    assert done["window_start"] == window_start and done["window_start"].tzinfo == UTC
    assert done["started_at"].tzinfo == UTC and done["finished_at"] >= done["started_at"]
    assert newest_first[0]["error"].startswith("SourceError")
    assert [row["id"] for row in ledger.history(dataset="dossiers")] == [first]
    assert len(ledger.history(limit=1)) == 1


def test_misuse_is_refused(ledger):
    with pytest.raises(ValueError, match="unknown source"):
        ledger.start(run_id="cli", source="ftp", dataset="d", partition="p")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window bounds must be timezone-aware"):
        ledger.start(run_id="cli", source="inbox", dataset="d", partition="p", window_start=datetime(2026, 9, 30))
    entry = ledger.start(run_id="cli", source="inbox", dataset="d", partition="p")
    with pytest.raises(ValueError, match="finishes as one of"):
        ledger.finish(entry, "superseded")  # type: ignore[arg-type]
    ledger.finish(entry, "failed", error="boom")
    with pytest.raises(ValueError, match="already finished"):
        ledger.finish(entry, "succeeded")
    with pytest.raises(KeyError):
        ledger.finish(entry + 1, "succeeded")


def test_the_database_rejects_an_unknown_outcome(ledger):
    entry = ledger.start(run_id="cli", source="inbox", dataset="d", partition="p")
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as connection:
        connection.execute(sa.text("UPDATE ingest_ledger SET outcome = 'done' WHERE id = :id"), {"id": entry})


def ingest_file(ledger: Ledger, key: str, sha256: str, outcome: str = "succeeded") -> int:
    entry = ledger.start(
        run_id="cli", source="inbox", dataset="commune_reports", partition="2026-Q3", file_name=key, file_sha256=sha256
    )
    ledger.finish(entry, outcome, rows_pulled=3, rows_snapshot=3, rows_quarantined=0)  # type: ignore[arg-type]
    return entry


def test_file_versions_new_identical_changed_with_supersede(ledger):
    key = "bao cao quy 3 - xa a.xlsx"
    assert ledger.file_status(key, SHA_A) == "new"
    first = ingest_file(ledger, key, SHA_A)
    assert ledger.file_status(key, SHA_A) == "new"  # not a version until recorded
    ledger.record_file_version(key, SHA_A, entry_id=first)
    assert ledger.file_status(key, SHA_A) == "identical"
    assert ledger.file_status(key, SHA_B) == "changed"
    assert ledger.file_status("another report.xlsx", SHA_A) == "new"

    second = ingest_file(ledger, key, SHA_B)
    ledger.record_file_version(key, SHA_B, entry_id=second)
    assert ledger.file_status(key, SHA_B) == "identical"
    assert ledger.file_status(key, SHA_A) == "changed"  # going back to old bytes is a new version again
    outcomes = {row["id"]: row["outcome"] for row in ledger.history()}
    assert outcomes == {first: "superseded", second: "succeeded"}
    current = ledger.current_file_version(key)
    assert current is not None and current["id"] == second and current["file_key"] == key

    ledger.record_file_version(key, SHA_B, entry_id=second)  # recording again changes nothing
    assert {row["id"]: row["outcome"] for row in ledger.history()} == outcomes


def test_only_a_succeeded_ingest_of_those_bytes_becomes_a_version(ledger):
    failed = ingest_file(ledger, "x.xlsx", SHA_A, outcome="failed")
    with pytest.raises(ValueError, match="only a succeeded ingest"):
        ledger.record_file_version("x.xlsx", SHA_A, entry_id=failed)
    ok = ingest_file(ledger, "x.xlsx", SHA_A)
    with pytest.raises(ValueError, match="ingested content"):
        ledger.record_file_version("x.xlsx", SHA_B, entry_id=ok)
    assert ledger.file_status("x.xlsx", SHA_A) == "new"


def test_at_most_one_current_version_per_file_in_the_database(ledger):
    first = ingest_file(ledger, "x.xlsx", SHA_A)
    second = ingest_file(ledger, "x.xlsx", SHA_B)
    ledger.record_file_version("x.xlsx", SHA_A, entry_id=first)
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as connection:
        connection.execute(sa.text("UPDATE ingest_ledger SET file_key = 'x.xlsx' WHERE id = :id"), {"id": second})


def test_recent_row_counts_take_the_latest_success_per_partition(ledger):
    def run(partition: str, rows: int, outcome: str = "succeeded") -> None:
        entry = ledger.start(run_id="cli", source="service_portal", dataset="dossiers", partition=partition)
        ledger.finish(entry, outcome, rows_pulled=rows, rows_snapshot=rows, rows_quarantined=0)  # type: ignore[arg-type]

    run("2026-09-27", 100)
    run("2026-09-28", 110)
    run("2026-09-28", 120)  # a rerun replaces the day's count
    run("2026-09-29", 5, outcome="failed")
    run("2026-09-29", 130)
    run("2026-09-30", 140)
    other = ledger.start(run_id="cli", source="service_portal", dataset="procedures", partition="2026-09-30")
    ledger.finish(other, "succeeded", rows_pulled=300, rows_snapshot=300, rows_quarantined=0)

    assert ledger.recent_row_counts("dossiers", 3) == [140, 130, 120]
    assert ledger.recent_row_counts("dossiers", 7, before_partition="2026-09-30") == [130, 120, 100]
    assert ledger.recent_row_counts("commune_reports", 3) == []


def test_a_new_attempt_closes_an_older_running_attempt_of_the_same_batch_as_interrupted(ledger):
    batch = {"source": "service_portal", "dataset": "dossiers", "partition": "2026-09-30"}
    done = ledger.start(run_id="scheduled__1", **batch)
    ledger.finish(done, "succeeded", rows_pulled=3, rows_snapshot=3, rows_quarantined=0)
    killed = ledger.start(run_id="scheduled__2", **batch)  # its worker is SIGKILLed: never finished
    other_day = ledger.start(run_id="scheduled__2", **{**batch, "partition": "2026-10-01"})
    other_dataset = ledger.start(run_id="scheduled__2", **{**batch, "dataset": "procedures"})
    other_source = ledger.start(run_id="scheduled__2", **{**batch, "source": "reporting_api"})

    rerun = ledger.start(run_id="scheduled__2", **batch)  # the task's retry
    entries = {row["id"]: row for row in ledger.history()}
    interrupted = entries[killed]
    assert interrupted["outcome"] == "interrupted"
    expected = f"interrupted: still running when entry {rerun} (run scheduled__2) started the same batch"
    assert interrupted["error"].startswith(expected)
    assert "worker most likely died" in interrupted["error"]
    assert interrupted["finished_at"] == entries[rerun]["started_at"]
    assert interrupted["rows_pulled"] is None  # nothing of it is counted
    assert {entries[e]["outcome"] for e in (other_day, other_dataset, other_source, rerun)} == {"running"}
    assert entries[done]["outcome"] == "succeeded"  # finished attempts are history, left alone

    ledger.finish(rerun, "succeeded", rows_pulled=4, rows_snapshot=3, rows_quarantined=1)
    assert ledger.recent_row_counts("dossiers", 1) == [4]
    before = {row["id"]: row for row in ledger.history()}
    again = ledger.start(run_id="manual", **batch)  # nothing of the batch is running: nothing changes
    assert {row["id"]: row for row in ledger.history() if row["id"] != again} == before


def test_an_attempt_presumed_dead_that_finishes_after_all_records_its_real_outcome(ledger):
    batch = {"source": "reporting_api", "dataset": "commune_reports", "partition": "2026-Q3"}
    slow = ledger.start(run_id="manual__a", **batch)
    newer = ledger.start(run_id="manual__b", **batch)  # two attempts of one batch at once
    assert ledger.history()[1]["outcome"] == "interrupted"
    ledger.finish(slow, "succeeded", rows_pulled=5, rows_snapshot=5, rows_quarantined=0)
    ledger.finish(newer, "failed", error="SourceError: 503")
    entries = {row["id"]: row for row in ledger.history()}
    assert entries[slow]["outcome"] == "succeeded" and entries[slow]["error"] is None
    assert entries[newer]["outcome"] == "failed"
    with pytest.raises(ValueError, match="already finished"):
        ledger.finish(slow, "failed", error="twice")


def test_the_interrupted_outcome_migration_keeps_the_rows_and_downgrades_to_failed(url):
    from egov_index.ledger import _engine

    config = alembic_config()
    engine = _engine(url)
    try:
        with engine.begin() as connection:  # a database of the previous release, with an entry left running
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
            connection.execute(
                sa.text(
                    "INSERT INTO ingest_ledger (run_id, source, dataset, partition, started_at, outcome, "
                    "file_key) VALUES "
                    "('old', 'inbox', 'commune_reports', 'f-1', "
                    "'2026-09-30 18:00:00', 'succeeded', 'a.xlsx'), "
                    "('old', 'service_portal', 'dossiers', '2026-09-30', "
                    "'2026-09-30 18:30:00', 'running', NULL)"
                )
            )
    finally:
        engine.dispose()
    with Ledger.open(url) as ledger:  # upgrades to head
        ledger.start(run_id="new", source="service_portal", dataset="dossiers", partition="2026-09-30")
        assert [row["outcome"] for row in ledger.history()] == ["running", "interrupted", "succeeded"]
        assert ledger.file_status("a.xlsx", SHA_A) == "changed"  # the file versions survived the table copy
        with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as connection:  # still one per key
            connection.execute(sa.text("UPDATE ingest_ledger SET file_key = 'a.xlsx', outcome = 'succeeded'"))
        with ledger.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")
        assert [row["outcome"] for row in ledger.history()] == ["running", "failed", "succeeded"]
        with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as connection:
            connection.execute(sa.text("UPDATE ingest_ledger SET outcome = 'interrupted' WHERE id = 3"))
