"""End to end: both DAGs run through Airflow (`airflow dags test`) against the reference server."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest
from airflow_home import migrate_home
from outputs import manifest_digests

from egov_index import pipeline, pull
from egov_index.cli import nightly_logical_date
from egov_index.local_airflow import airflow_env, dags_test, source_connections
from egov_index.periods import local_day_window
from egov_index.registry import current_units
from egov_index.source_server.process import running_server
from egov_index.store import MANIFEST_FILE, DataStore

pytestmark = pytest.mark.e2e

DAY = "2026-09-30"
PERIOD = "2026-Q3"
PUBLISHED_2018 = Path(__file__).parent / "fixtures" / "published" / "ict_index_2018_full.csv"
FILE_STYLES = ("xlsx-table", "xlsx-form", "csv-cp1258-semicolon", "csv-utf16-semicolon")


@dataclass
class Run:
    env: dict[str, str]
    data: Path
    home: Path
    url: str
    token: str
    files: list[str]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    from datetime import date

    from egov_index.source_server.files import write_report_files

    base = tmp_path_factory.mktemp("e2e")
    home, data, inbox = base / "airflow", base / "data", base / "inbox"
    env = airflow_env(home, data, inbox_dir=inbox)
    migrate_home(env)
    # some communes also (or only) send their report as a file: the same reports, other channels
    communes = current_units().communes_of("52")["commune_code"].tolist()[:12]
    files = write_report_files(
        inbox, PERIOD, seed=7, communes=communes, styles=FILE_STYLES, defect_rate=0.004
    )
    token = secrets.token_urlsafe(24)
    with running_server(base, token=token, seed=7, dossiers_per_day=3000, defect_rate=0.004) as url:
        env.update(source_connections(url, token))
        dags_test(env, "egov_nightly_ingest", nightly_logical_date(date.fromisoformat(DAY)))
        # the ministry's 2018 table as a baseline (the data dictionary queries every dataset)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "egov_index.cli",
                "--data-root",
                str(data),
                "import-ranking",
                str(PUBLISHED_2018),
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        dags_test(env, "egov_ranking", conf={"period": PERIOD})
        yield Run(env=env, data=data, home=home, url=url, token=token, files=[f.name for f in files])


def served_keys(run: Run) -> dict[str, list[str]]:
    """Every record key the server serves for the run's day/period, pulled independently."""
    from datetime import date

    endpoint = pull.SourceEndpoint("check", run.url, run.token)
    window = local_day_window(date.fromisoformat(DAY))
    return {
        "commune_reports": [r["report_id"] for r in pull.fetch_commune_reports(endpoint, PERIOD)],
        "dossiers": [d["dossier_id"] for d in pull.fetch_dossiers(endpoint, window.start, window.end)],
        "procedures": [p["procedure_code"] for p in pull.fetch_procedures(endpoint)],
    }


SNAPSHOT = {
    "commune_reports": ("snapshots/commune_reports", "report_id"),
    "dossiers": ("snapshots/dossiers", "dossier_id"),
    "procedures": ("snapshots/procedures", "procedure_code"),
}


def test_every_served_row_is_in_a_snapshot_or_in_quarantine(run: Run):
    store = DataStore(run.data)
    quarantine = store.read("quarantine").to_pandas()
    for dataset, keys in served_keys(run).items():
        path, key = SNAPSHOT[dataset]
        snapshot_keys = store.read(path).column(key).to_pylist()
        batch = PERIOD if dataset == "commune_reports" else DAY
        api_batch = (quarantine["dataset"] == dataset) & (quarantine["partition"] == batch)
        quarantined = quarantine.loc[api_batch, "record_key"].tolist()
        assert len(keys) == len(snapshot_keys) + len(quarantined), dataset
        # name-only reports carry no key at the source; resolved ones get <commune_code>-<period>
        landed = set(snapshot_keys) | set(quarantined)
        assert [k for k in keys if k is not None and k not in landed] == [], dataset
        batch = PERIOD if dataset == "commune_reports" else DAY
        manifest = run.data / "quarantine" / f"dataset={dataset}" / f"partition={batch}" / MANIFEST_FILE
        accounting = json.loads(manifest.read_text())["accounting"]
        assert accounting["rows_pulled"] == len(keys)
    # the reference server's deliberate defects were caught, each with a reason
    assert len(quarantine) > 0
    assert quarantine["reason"].str.len().min() > 0


def test_inbox_files_went_through_and_were_accounted(run: Run):
    store = DataStore(run.data)
    inbox = Path(run.env["EGOV_INBOX_DIR"])
    assert [p.name for p in inbox.iterdir() if p.is_file()] == []  # every file was taken
    processed = list((inbox / "processed").iterdir())
    assert len(processed) == len(run.files) and {p.suffix for p in processed} == {".xlsx", ".csv"}
    file_batches = [
        m
        for m in (run.data / "quarantine" / "dataset=commune_reports").glob("partition=file-*/_manifest.json")
    ]
    assert len(file_batches) == len(processed)
    for manifest in file_batches:
        acc = json.loads(manifest.read_text())["accounting"]
        assert acc["rows_pulled"] == acc["rows_snapshot"] + acc["rows_quarantined"] >= 1
    reports = store.read("snapshots/commune_reports", ds.field("period") == PERIOD).to_pandas()
    assert not reports.duplicated("commune_code").any()  # one report per commune, whatever the channel


def test_ranking_covers_every_unit_exactly_once_per_level(run: Run):
    units = current_units()
    ranking = DataStore(run.data).read(pipeline.RANKING, ds.field("period") == PERIOD).to_pandas()
    communes = ranking[ranking["level"] == "commune"]
    provinces = ranking[ranking["level"] == "province"]
    assert sorted(communes["unit_code"].astype(str)) == sorted(units.commune_codes())
    assert sorted(provinces["unit_code"].astype(str)) == sorted(units.province_codes())
    assert len(provinces) == 34 and len(communes) == 3321
    assert provinces["overall_rank"].min() == 1
    for c in ("c1", "c2", "c3", "c4", "c5", "c6", "overall"):
        assert provinces[f"{c}_index"].between(0, 1).all()
    assert provinces["overall_index"].nunique() > 10  # the ranking is not uniform


def test_explanations_bands_and_the_html_report_are_published(run: Run):
    store = DataStore(run.data)
    ranking = store.read(pipeline.RANKING, ds.field("period") == PERIOD).to_pandas()
    explanations = store.read(pipeline.EXPLANATIONS, ds.field("period") == PERIOD).to_pandas()
    bands = store.read(pipeline.RANK_UNCERTAINTY, ds.field("period") == PERIOD).to_pandas()
    assert len(bands) == len(ranking) == 3321 + 34
    assert explanations.groupby("level", observed=True)["unit_code"].nunique().to_dict() == {
        "commune": 3321,
        "province": 34,
    }
    provinces = ranking[ranking["level"] == "province"]
    below_top = provinces[provinces["overall_rank"] > 1]
    moves = explanations[(explanations["level"] == "province") & explanations["best_move_up"]]
    assert set(moves["unit_code"].astype(str)) == set(below_top["unit_code"].astype(str))
    [report] = (run.data / "reports" / f"period={PERIOD}").glob("*.html")
    exports = {p.suffix for p in (run.data / "reports" / f"period={PERIOD}").iterdir()}
    assert {".csv", ".xlsx"} <= exports  # the same ranking for Excel users, formula-safe
    html = report.read_text(encoding="utf-8")
    top = provinces.sort_values(["overall_rank", "unit_code"]).iloc[0]["unit_name"]
    assert top in html and "http://" not in html and "https://" not in html
    log = (run.home / "logs" / "dags-test-egov_ranking.log").read_text(errors="replace")
    assert f"HTML ranking report of {PERIOD}: {report}" in log  # the task log links the report


def test_outputs_are_readable_by_duckdb(run: Run):
    con = duckdb.connect()
    rows = con.execute(
        f"select level, count(*) from read_parquet('{run.data}/{pipeline.RANKING}/*/*.parquet', hive_partitioning=true) "
        f"where period = '{PERIOD}' group by level order by level"
    ).fetchall()
    assert rows == [("commune", 3321), ("province", 34)]
    n = con.execute(
        f"select count(*) from read_parquet('{run.data}/snapshots/dossiers/*/*.parquet', hive_partitioning=true)"
    ).fetchone()[0]
    assert n > 0


def test_rerun_of_the_same_day_gives_identical_outputs(run: Run):
    from datetime import date

    before = manifest_digests(run.data)
    dags_test(run.env, "egov_nightly_ingest", nightly_logical_date(date.fromisoformat(DAY)))
    dags_test(run.env, "egov_ranking", conf={"period": PERIOD})
    assert manifest_digests(run.data) == before


GOLDEN_DIGESTS = Path(__file__).parent / "golden" / "e2e_digests.json"


def test_the_published_outputs_equal_the_golden_file(run: Run):
    """Every partition the e2e run publishes (snapshots, quarantine, validation results, indicators,
    ranking, explanations, rank bands, published rankings) has the content digest of the golden file:
    what a change that moves code without changing behaviour must leave exactly as it was. The digests
    depend on the pinned libraries (Parquet writer); after a deliberate change of outputs or pins,
    regenerate with ``EGOV_WRITE_GOLDEN=1`` and say why in the commit."""
    digests = manifest_digests(run.data)
    if os.environ.get("EGOV_WRITE_GOLDEN"):
        GOLDEN_DIGESTS.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN_DIGESTS.read_text())
    changed = sorted(k for k in golden.keys() & digests.keys() if golden[k] != digests[k])
    assert (sorted(golden.keys() - digests.keys()), sorted(digests.keys() - golden.keys()), changed) == (
        [],
        [],
        [],
    ), "missing, new, changed partitions"


def test_token_never_written_to_logs_xcom_or_outputs(run: Run):
    needle = run.token.encode()
    for root in (run.home, run.data):
        for path in root.rglob("*"):
            if path.is_file():
                assert needle not in path.read_bytes(), path


def test_every_query_of_the_data_dictionary_runs_on_the_outputs(run: Run):
    import re

    doc = (Path(__file__).parents[1] / "docs" / "data-dictionary.md").read_text()
    queries = re.findall(r"```sql\n(.*?)```", doc, flags=re.S)
    assert len(queries) >= 7
    con = duckdb.connect()
    for query in queries:
        rows = con.execute(query.replace("'data/", f"'{run.data}/")).fetchall()
        assert rows, query


def test_replaying_the_raw_archive_reproduces_the_snapshots(run: Run, tmp_path: Path):
    from datetime import date

    from egov_index.cli import replay_days

    replay_days(run.data, tmp_path, date.fromisoformat(DAY), date.fromisoformat(DAY))

    original = manifest_digests(run.data, ("snapshots", "quarantine"))
    assert original and manifest_digests(tmp_path, ("snapshots", "quarantine")) == original


def test_each_run_built_its_data_docs_and_recorded_its_validation_history(run: Run):
    import sqlalchemy as sa

    sites = sorted((run.data / "quality" / "data_docs" / "runs").glob("*/index.html"))
    assert len(sites) >= 2  # the nightly run and the ranking run
    pages = " ".join(p.read_text() for p in sites)
    assert "commune_reports" in pages and "dossiers" in pages and "ranking" in pages
    engine = sa.create_engine(run.env.get("EGOV_SQL_URL") or f"sqlite:///{run.data / 'egov-index.sqlite'}")
    with engine.connect() as con:
        datasets = {r[0] for r in con.execute(sa.text("select distinct dataset from validation_results"))}
        ranked = con.execute(sa.text("select count(*) from ranking_v2")).scalar_one()
    assert {"commune_reports", "dossiers", "procedures", "ranking"} <= datasets
    assert ranked == 3321 + 34
