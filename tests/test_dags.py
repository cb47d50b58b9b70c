"""DAG integrity: imports, required attributes, no heavy imports (parse times: scripts/bench_parse.py)."""

from __future__ import annotations

import subprocess

import pytest

from egov_index.config import PROJECT_ROOT

DAGS = PROJECT_ROOT / "dags"
EXPECTED = {"egov_nightly_ingest", "egov_ranking", "egov_maintenance", "egov_bulk_backfill"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors_and_expected_dags(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED


def test_every_dag_has_tags_owner_retries_and_docs(dagbag):
    for dag_id in dagbag.dag_ids:
        dag = dagbag.dags[dag_id]
        assert dag.tags, dag_id
        assert dag.doc_md and "When it fails" in dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", (dag_id, task.task_id)
            assert task.retries >= 2, (dag_id, task.task_id)


def test_nightly_schedule_is_0130_local_and_ranking_is_asset_driven(dagbag):
    nightly = dagbag.dags["egov_nightly_ingest"]
    assert nightly.timetable.expression == "30 1 * * *"
    assert str(nightly.timetable.timezone) == "Asia/Ho_Chi_Minh"
    assert nightly.timetable.interval.days == 1
    ranking = dagbag.dags["egov_ranking"]
    assert "Asset" in type(ranking.timetable).__name__


def test_no_task_unrolls_its_result_into_one_xcom_per_key(dagbag):
    """A ``-> dict`` annotation makes @task infer ``multiple_outputs``: every key of every summary would
    also be pushed as an XCom of its own (one more write per key, per task and map index)."""
    unrolled = [
        (dag_id, task.task_id)
        for dag_id, dag in dagbag.dags.items()
        for task in dag.tasks
        if task.multiple_outputs  # mapped tasks (DecoratedMappedOperator) carry it too
    ]
    assert unrolled == []


def test_dag_files_import_no_heavy_modules():
    """Parsing the DAG folder must not import pandas, pyarrow, GX or requests."""
    code = (
        "import sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "heavy = [m for m in ('pandas', 'pyarrow', 'great_expectations', 'requests', 'fastapi') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    marker = [line for line in out.stdout.splitlines() if line.startswith("HEAVY=")]
    assert marker == ["HEAVY="], out.stdout


def test_dossiers_are_pulled_per_province_under_the_sources_pool(dagbag):
    import json

    from egov_index.dag_defaults import REPORTING_API_POOL, SERVICE_PORTAL_POOL
    from egov_index.local_airflow import POOLS_FILE

    nightly = dagbag.dags["egov_nightly_ingest"]
    pull = nightly.get_task("pull_dossiers")
    assert type(pull).__name__.endswith("MappedOperator")
    assert pull.map_index_template == "{{ province_name }}"  # the province name, not an index, in the UI
    assert pull.pool == SERVICE_PORTAL_POOL and nightly.get_task("ingest_procedures").pool == SERVICE_PORTAL_POOL
    assert nightly.get_task("ingest_commune_reports").pool == REPORTING_API_POOL
    assert set(json.loads(POOLS_FILE.read_text())) == {SERVICE_PORTAL_POOL, REPORTING_API_POOL}
    assert {t.task_id for t in pull.downstream_list} == {"ingest_dossiers"}


def test_ranking_ranks_the_resolved_periods_in_one_unmapped_task(dagbag):
    """resolve_period -> rank_period (one task, every period in order: not mapped) -> build_data_docs."""
    from egov_index.dag_defaults import RANKING

    ranking = dagbag.dags["egov_ranking"]
    assert {t.task_id for t in ranking.tasks} == {"resolve_period", "rank_period", "build_data_docs"}
    rank = ranking.get_task("rank_period")
    assert not type(rank).__name__.endswith("MappedOperator")
    assert {t.task_id for t in rank.upstream_list} == {"resolve_period"}
    assert {t.task_id for t in rank.downstream_list} == {"build_data_docs"}
    assert [outlet.name for outlet in rank.outlets] == [RANKING.name]


def test_only_a_source_outage_is_retried():
    """Every failure type of egov_index.errors fails at once under the DAGs' retry policy, except a
    source that did not answer (SourceError itself); anything else takes Airflow's normal retries."""
    import inspect

    from airflow.sdk.definitions.retry_policy import RetryAction

    from egov_index import errors
    from egov_index.dag_defaults import FAIL_FAST

    decided = {
        name: FAIL_FAST.evaluate(cls("x"), try_number=1, max_tries=4).action
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == errors.__name__
    }
    assert decided.pop("SourceError") == RetryAction.DEFAULT
    assert decided and set(decided.values()) == {RetryAction.FAIL}, decided
    assert "MissingInputError" in decided
    assert FAIL_FAST.evaluate(ConnectionError("reset"), try_number=1, max_tries=4).action == RetryAction.DEFAULT
