"""Rows of the reliability matrix (docs/reliability.md) not covered elsewhere: disk full mid-publish,
the SQL database restarted during a run, a broken methodology file, schema drift through the pipeline.

Every case checks the outcome rules: accounting (pulled = snapshot + quarantine), the previous
published state intact on failure, a rerun giving identical content hashes, and a failure message
naming what failed and where.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml

from egov_index import pipeline
from egov_index.config import PROJECT_ROOT, Settings
from egov_index.errors import SchemaDriftError
from egov_index.ledger import Ledger
from egov_index.methodology import MethodologyError
from egov_index.periods import local_day_window
from egov_index.source_server import generator
from egov_index.store import MANIFEST_FILE, STAGING, DataStore

DAY = date(2026, 9, 30)
PERIOD = "2026-Q3"
SEED = 7


def settings_for(root: Path, sql_url: str | None = None) -> Settings:
    return dataclasses.replace(
        Settings.from_env(),
        data_root=root,
        inbox_dir=root.parent / "inbox",
        sql_url=sql_url or f"sqlite:///{root.parent / 'egov.sqlite'}",
    )


def digests(root: Path, *subs: str) -> dict[str, str]:
    return {
        str(m.relative_to(root)): json.loads(m.read_text())["sha256"]
        for sub in subs or ("snapshots", "quarantine", "ranking_v2", "indicator_values")
        for m in sorted((root / sub).rglob(MANIFEST_FILE))
    }


def catalogue(renamed: bool = False) -> list[dict]:
    records = generator.procedure_catalogue(SEED)
    if renamed:  # the next day's catalogue: one procedure renamed
        records = [dict(r) for r in records]
        records[0]["procedure_name"] = records[0]["procedure_name"] + " (sửa đổi)"
    return records


def ingest(store: DataStore, settings: Settings, dataset: str, records: list[dict], batch: str) -> dict:
    """One ledgered ingest, as the API tasks run it (``_ingest_ledgered``)."""
    return pipeline._ingest_ledgered(store, settings, dataset, batch, "test", lambda: (records, None))


def staged_leftovers(root: Path) -> list[Path]:
    staging = root / STAGING
    return sorted(staging.iterdir()) if staging.exists() else []


@pytest.fixture(scope="module")
def ranked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with a day of catalogue and dossiers and a quarter of reports, ranked once."""
    root = tmp_path_factory.mktemp("ranked") / "data"
    settings = settings_for(root)
    store = DataStore(root)
    window = local_day_window(DAY)
    dossiers = generator.dossiers_updated_between(window.start, window.end, seed=SEED, dossiers_per_day=200)
    ingest(store, settings, "procedures", catalogue(), DAY.isoformat())
    ingest(store, settings, "dossiers", dossiers, DAY.isoformat())
    ingest(
        store,
        settings,
        "commune_reports",
        generator.commune_reports(PERIOD, seed=SEED, defect_rate=0.004),
        PERIOD,
    )
    pipeline.rank_period(store, settings, PERIOD)
    return root


def copy_root(ranked: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(ranked, root)
    shutil.copy(ranked.parent / "egov.sqlite", tmp_path / "egov.sqlite")
    return root


# ------------------------------------------------------------------------------------ disk full


def test_disk_full_mid_publish_keeps_the_previous_partition_and_the_rerun_publishes_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    settings, store = settings_for(root), DataStore(root)
    batch = DAY.isoformat()
    ingest(store, settings, "procedures", catalogue(), batch)
    before = digests(root, "snapshots", "quarantine")
    data_file = root / "snapshots" / "procedures" / f"snapshot_date={batch}" / "data.parquet"
    before_bytes = data_file.read_bytes()

    import egov_index.store as store_module

    real_write = store_module._write_parquet
    seen: list[str] = []

    def disk_full(table, sink):  # half the file reaches the disk, then the device is full
        real_write(table, sink)
        Path(sink).write_bytes(Path(sink).read_bytes()[: Path(sink).stat().st_size // 2])
        seen.append(str(sink))
        raise OSError(errno.ENOSPC, "No space left on device", str(sink))

    monkeypatch.setattr(store_module, "_write_parquet", disk_full)
    with pytest.raises(OSError) as failure:
        ingest(store, settings, "procedures", catalogue(renamed=True), batch)
    monkeypatch.undo()
    assert failure.value.errno == errno.ENOSPC and seen and seen[0].startswith(str(root / STAGING))
    # the message names the dataset and partition, not the staged file, and says what to do
    message = str(failure.value)
    assert f"snapshots/procedures partition snapshot_date={batch}" in message
    assert "No space left on device" in message and f"Free space on the volume holding {root}" in message
    assert "rerun the task" in message and STAGING not in message
    original = failure.value.__cause__
    assert isinstance(original, OSError) and original.errno == errno.ENOSPC and original.filename == seen[0]
    # the previous partition and its manifest are intact, nothing staged is left for readers
    assert digests(root, "snapshots", "quarantine") == before
    assert data_file.read_bytes() == before_bytes
    assert store.verify("snapshots/procedures", {"snapshot_date": batch})
    assert staged_leftovers(root) == []
    # the ledger says which batch failed and why: free space, then rerun
    with Ledger.open(settings.sql_url) as ledger:
        last = ledger.history(dataset="procedures")[0]
    assert last["outcome"] == "failed" and last["partition"] == batch
    assert "No space left on device" in last["error"] and f"partition snapshot_date={batch}" in last["error"]

    # the rerun (space freed) publishes exactly what an undisturbed run publishes
    summary = ingest(store, settings, "procedures", catalogue(renamed=True), batch)
    assert summary["rows_pulled"] == summary["rows_snapshot"] + summary["rows_quarantined"]
    clean = tmp_path / "clean" / "data"
    ingest(DataStore(clean), settings_for(clean), "procedures", catalogue(), batch)
    ingest(DataStore(clean), settings_for(clean), "procedures", catalogue(renamed=True), batch)
    assert digests(root, "snapshots", "quarantine") == digests(clean, "snapshots", "quarantine") != before


# ------------------------------------------------------------------------------ schema drift


def test_schema_drift_through_the_pipeline(tmp_path: Path) -> None:
    root = tmp_path / "data"
    settings, store = settings_for(root), DataStore(root)
    batch = DAY.isoformat()
    good = catalogue()
    ingest(store, settings, "procedures", good, batch)
    before = digests(root, "snapshots", "quarantine")

    # renamed / missing column: the batch is refused naming the column, nothing published
    renamed = [{("muc_do" if k == "service_level" else k): v for k, v in r.items()} for r in good]
    with pytest.raises(SchemaDriftError, match="service_level"):
        ingest(store, settings, "procedures", renamed, batch)
    missing = [{k: v for k, v in r.items() if k != "service_level"} for r in good]
    with pytest.raises(SchemaDriftError, match="service_level"):
        ingest(store, settings, "procedures", missing, batch)
    assert digests(root, "snapshots", "quarantine") == before
    with Ledger.open(settings.sql_url) as ledger:
        failed = ledger.history(dataset="procedures")[:2]
    assert [e["outcome"] for e in failed] == ["failed", "failed"]
    assert all("service_level" in e["error"] for e in failed)

    # an extra column is reported and left out; the snapshot is the same
    extra = [{**r, "ghi_chu": "x"} for r in good]
    summary = ingest(store, settings, "procedures", extra, batch)
    assert summary["extra_columns"] == ["ghi_chu"]
    assert digests(root, "snapshots") == {k: v for k, v in before.items() if k.startswith("snapshots")}

    # a type change in some rows: those rows go to quarantine naming the column, none lost
    window = local_day_window(DAY)
    dossiers = generator.dossiers_updated_between(window.start, window.end, seed=SEED, dossiers_per_day=200)
    retyped = [dict(d) for d in dossiers]
    for record in retyped[:3]:
        record["fee_vnd"] = "mười nghìn"
    summary = ingest(store, settings, "dossiers", retyped, batch)
    assert summary["rows_pulled"] == len(retyped) == summary["rows_snapshot"] + summary["rows_quarantined"]
    quarantine = store.read("quarantine").to_pandas()
    bad = quarantine[quarantine["record_key"].isin([d["dossier_id"] for d in retyped[:3]])]
    assert len(bad) == 3 and bad.astype(str).apply(lambda row: "fee_vnd" in " ".join(row), axis=1).all()


# ------------------------------------------------------------------------ broken methodology


def test_a_broken_methodology_file_publishes_nothing_and_keeps_the_ranking(
    ranked: Path, tmp_path: Path
) -> None:
    root = copy_root(ranked, tmp_path)
    before = digests(root)
    report_dir = root / pipeline.REPORTS_DIR / f"period={PERIOD}"
    reports_before = {p.name: p.read_bytes() for p in report_dir.iterdir()}
    raw = yaml.safe_load(
        (PROJECT_ROOT / "include" / "egov_index" / "methodology" / "mic-six-category.yaml").read_text(
            encoding="utf-8"
        )
    )
    raw["indicators"][0]["scoring"] = "linear"
    raw["indicators"][1]["numerator"] = "nope"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    settings = dataclasses.replace(settings_for(root), methodology=str(broken))
    with pytest.raises(MethodologyError) as error:
        pipeline.rank_period(DataStore(root), settings, PERIOD)
    message = str(error.value)
    assert (
        "broken.yaml" in message and "'linear'" in message and "'nope'" in message
    )  # every problem, the file
    assert digests(root) == before
    assert {p.name: p.read_bytes() for p in report_dir.iterdir()} == reports_before
    assert staged_leftovers(root) == []


# --------------------------------------------------------------------- SQL database restarted


class Postgres:
    """A throwaway PostgreSQL cluster (Debian's binaries, as user postgres when run as root)."""

    def __init__(self, root: Path) -> None:
        from native_airflow import Postgres as Cluster
        from native_airflow import free_port

        self.cluster = Cluster(root, free_port(), root / "postgres.log")

    def start_first(self) -> str:
        self.cluster.start("egov", "egov-pw", "egov")
        return f"postgresql+psycopg://egov:egov-pw@127.0.0.1:{self.cluster.port}/egov"

    def stop(self) -> None:
        self.cluster.stop()

    def restart(self) -> None:
        c = self.cluster
        options = f"-p {c.port} -k {c.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        c._run(str(c.bindir / "pg_ctl"), "-D", str(c.data), "-l", str(c.log), "-o", options, "-w", "start")
        c.started = True


@pytest.fixture
def postgres() -> Iterator[tuple[Postgres, str]]:
    home = Path(tempfile.mkdtemp(prefix="egov-pg-"))
    home.chmod(0o755)
    pg = Postgres(home)
    try:
        yield pg, pg.start_first()
    finally:
        pg.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.integration
def test_the_sql_database_restarted_during_a_run(
    ranked: Path, tmp_path: Path, postgres: tuple[Postgres, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    pg, url = postgres
    root = copy_root(ranked, tmp_path)
    settings, store = settings_for(root, url), DataStore(root)
    published = digests(root)
    batch = DAY.isoformat()

    # 1. the database goes down between publishing a batch and closing its ledger entry
    real_ingest = pipeline.ingest_records

    def ingest_then_database_down(*args, **kwargs):
        summary = real_ingest(*args, **kwargs)
        pg.stop()
        return summary

    monkeypatch.setattr(pipeline, "ingest_records", ingest_then_database_down)
    with pytest.raises(OperationalError) as failure:
        ingest(store, settings, "procedures", catalogue(), batch)
    monkeypatch.undo()
    assert f"port {pg.cluster.port}" in str(failure.value)  # names the database server it could not reach
    assert digests(root) == published  # Parquet consistent: same content republished, manifests verify
    assert store.verify("snapshots/procedures", {"snapshot_date": batch})
    assert staged_leftovers(root) == []

    # 2. while it is down, the ranking's SQL copy fails; the Parquet outputs stay consistent
    with pytest.raises(OperationalError, match=f"port {pg.cluster.port}"):
        pipeline.rank_period(store, settings, PERIOD)
    assert digests(root) == published
    assert all(store.verify(d, {"period": PERIOD}) for d in (pipeline.RANKING, pipeline.INDICATOR_VALUES))

    # 3. back up: the reruns complete with identical outputs, the ledger and the SQL copy are complete
    pg.restart()
    summary = ingest(store, settings, "procedures", catalogue(), batch)
    assert summary["rows_pulled"] == summary["rows_snapshot"] + summary["rows_quarantined"]
    result = pipeline.rank_period(store, settings, PERIOD)
    assert digests(root) == published
    with Ledger.open(url) as ledger:
        rerun, cut_off = ledger.history(dataset="procedures")
    assert rerun["outcome"] == "succeeded"
    # the entry the database restart left `running` was closed by the rerun, naming it
    assert cut_off["outcome"] == "interrupted" and cut_off["partition"] == batch
    assert cut_off["error"].startswith(f"interrupted: still running when entry {rerun['id']} (run test)")
    from egov_index.sql_publish import RANKING_TABLE

    engine = create_engine(url)
    with engine.connect() as connection:
        query = text(f"SELECT count(*) FROM {RANKING_TABLE.name} WHERE period = :p")
        rows = connection.execute(query, {"p": PERIOD}).scalar_one()
    engine.dispose()
    assert rows == result["rows"]


# ------------------------------------------------------------------------------ the matrix itself


def test_every_row_of_the_matrix_names_tests_that_exist() -> None:
    import re

    doc = (PROJECT_ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    rows = [line for line in doc.splitlines() if line.startswith("| ") and not line.startswith("| Fault")]
    rows = [r for r in rows if not r.startswith(("|---", "| Threat"))]
    assert len(rows) >= 40
    for row in rows:
        named = re.findall(r"`(tests/test_\w+\.py)::(test_\w+)`", row)
        if "no test yet" in row:
            continue
        assert named, f"matrix row without a test: {row[:80]}"
        for file, test in named:
            source = PROJECT_ROOT / file
            assert source.exists() and re.search(rf"def {test}\b", source.read_text()), f"{file}::{test}"
