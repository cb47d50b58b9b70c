"""Docs follow the code: every published column is in the data dictionary, and its queries run."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest

from egov_index import pipeline, schemas
from egov_index.config import Settings
from egov_index.schemas import VALIDATION_RESULT_SCHEMA
from egov_index.store import DataStore

ROOT = Path(__file__).parents[1]
DICTIONARY = (ROOT / "docs" / "data-dictionary.md").read_text()
QUERIES = re.findall(r"```sql\n(.*?)```", DICTIONARY, flags=re.S)  # as tests/test_e2e.py extracts them
PUBLISHED_TABLE = ROOT / "tests" / "fixtures" / "published" / "ict_index_2018_full.csv"
DAY = date(2026, 9, 30)
PERIODS = ("2026-Q2", "2026-Q3")  # two quarters, so the second has rank changes


@pytest.mark.parametrize(
    "names",
    [
        schemas.RANKING_SCHEMA.names,
        schemas.INDICATOR_VALUE_SCHEMA.names,
        schemas.EXPLANATION_SCHEMA.names,
        schemas.RANK_UNCERTAINTY_SCHEMA.names,
        schemas.PUBLISHED_RANKING_SCHEMA.names,
        schemas.QUARANTINE_SCHEMA.names,
        VALIDATION_RESULT_SCHEMA.names,
        [f.name for fields in schemas.SOURCE_FIELDS.values() for f in fields],
    ],
    ids=[
        "ranking_v2",
        "indicator_values",
        "explanations",
        "rank_uncertainty",
        "published_rankings",
        "quarantine",
        "validation_results",
        "sources",
    ],
)
def test_every_published_column_is_documented(names):
    missing = [n for n in names if f"| `{n}` |" not in DICTIONARY]
    assert missing == []


def test_the_dictionary_reads_the_current_ranking_version():
    """Queries and views name the published path of the ranking (version 2), never the frozen version 1."""
    assert pipeline.RANKING == "ranking_v2"
    assert not re.search(r"'data/(latest/)?ranking/", DICTIONARY)
    for dataset in (pipeline.RANKING, "indicator_values", pipeline.EXPLANATIONS, pipeline.RANK_UNCERTAINTY):
        assert f"`latest/{dataset}/`" in DICTIONARY, dataset


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small data root built by the pipeline's own stages, without Airflow: one day of catalogue and
    dossiers, two quarters of commune reports (with defects, so quarantine and failed expectations
    exist), both quarters ranked (rank changes, explanations, rank bands, latest views, HTML report) and
    the 2018 published table imported."""
    from egov_index.periods import local_day_window
    from egov_index.published_rankings import import_published_ranking
    from egov_index.source_server import generator

    root = tmp_path_factory.mktemp("dictionary") / "data"
    settings = dataclasses.replace(
        Settings.from_env(),
        data_root=root,
        inbox_dir=root.parent / "inbox",
        sql_url=f"sqlite:///{root.parent / 'egov.sqlite'}",
    )
    store = DataStore(root)
    seed = 7
    pipeline.ingest_records(
        store, settings, "procedures", generator.procedure_catalogue(seed), DAY.isoformat()
    )
    window = local_day_window(DAY)
    dossiers = generator.dossiers_updated_between(
        window.start, window.end, seed=seed, dossiers_per_day=300, defect_rate=0.004
    )
    pipeline.ingest_records(store, settings, "dossiers", dossiers, DAY.isoformat())
    for period in PERIODS:
        reports = generator.commune_reports(period, seed=seed, defect_rate=0.004)
        pipeline.ingest_records(store, settings, "commune_reports", reports, period)
    for period in PERIODS:
        pipeline.rank_period(store, settings, period)
    import_published_ranking(store, PUBLISHED_TABLE)
    return root


def test_every_query_of_the_data_dictionary_returns_rows(data_root: Path):
    assert len(QUERIES) >= 12
    con = duckdb.connect()
    for query in QUERIES:
        rows = con.execute(query.replace("'data/", f"'{data_root}/")).fetchall()
        assert rows, query


def test_the_html_report_is_where_the_dictionary_says(data_root: Path):
    period = PERIODS[-1]
    documented = f"data/reports/period={period}/ranking-report-{period}.html"
    assert f"`{documented}`" in DICTIONARY
    assert (data_root.parent / documented).is_file()


def test_every_document_the_readme_names_exists():
    root = ROOT
    readme = (root / "README.md").read_text(encoding="utf-8")
    named = sorted(set(re.findall(r"`((?:docs|scripts|plugins|dags|expectations)/[\w./-]+\.(?:md|py|sh|json))`", readme)))
    assert "docs/methodology.md" in named and "docs/operations.md" in named
    missing = [path for path in named if not (root / path).is_file()]
    assert missing == []
