"""The DAG-parse benchmark's own pieces (scripts/bench_parse.py): the figures it prints are only as good as
the parsing of ``dags report`` durations and the profile of a parse."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from egov_index.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))

import bench_parse  # noqa: E402  (a script, imported from its directory)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0:00:00.012345", 0.012345), ("0:00:01", 1.0), ("1:02:03.5", 3723.5), ("2 days, 0:00:00.25", 172800.25)],
)
def test_parse_duration_reads_what_dags_report_prints(text: str, seconds: float) -> None:
    assert bench_parse.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["12 ms", "", "0:00"])
def test_parse_duration_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="unexpected duration"):
        bench_parse.parse_duration(text)


def test_chain_folder_nests_one_file_per_folder_in_parse_order(tmp_path: Path) -> None:
    root = bench_parse.chain_folder(tmp_path / "dags", [("a.py", "A"), ("b.py", "B"), ("c.py", "C")])
    walked = [Path(folder, name) for folder, _, names in os.walk(root) for name in names]
    assert [p.relative_to(root).as_posix() for p in walked] == ["a.py", "p1/b.py", "p1/p2/c.py"]


@pytest.mark.integration
def test_build_profile_counts_tasks_and_shares_the_time(tmp_path: Path) -> None:
    """A real DagBag parse of the trivial file and of a file with three tasks and a validated param."""
    trivial = tmp_path / "trivial" / bench_parse.TRIVIAL
    trivial.parent.mkdir()
    trivial.write_text(bench_parse.TRIVIAL_SOURCE)
    bigger = tmp_path / "bigger" / "three_tasks.py"
    bigger.parent.mkdir()
    bigger.write_text(
        bench_parse.TRIVIAL_SOURCE.replace('"bench_trivial", schedule=None', '"three", schedule="@daily"')
        .replace("start_date=datetime(2026, 1, 1))", 'start_date=datetime(2026, 1, 1), params={"p": Param(1, type="integer")})')
        .replace("import DAG, task", "import DAG, Param, task")
        .replace("    noop()\n", "    noop() >> noop() >> noop()\n")
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}

    small = bench_parse.profile_build(env, trivial, parses=20)
    large = bench_parse.profile_build(env, bigger, parses=20)

    assert "error" not in small and "error" not in large, (small, large)
    assert (small["dags"], small["tasks"], small["params"]) == (1, 1, 0)
    assert (large["dags"], large["tasks"], large["params"]) == (1, 3, 1)
    for profile in (small, large):
        assert sum(profile["share_by_component"].values()) == pytest.approx(1.0, abs=0.01)
        assert 0 <= profile["garbage_collection_ms_per_parse"] <= profile["mean_ms_per_parse"]
    # a scheduled DAG validates its params with jsonschema at every parse; an unscheduled one never does
    validation = "Param schema validation (jsonschema, scheduled DAGs only)"
    assert large["share_by_component"].get(validation, 0) > 0
    assert small["share_by_component"].get(validation, 0) == 0


def test_noop_dag_source_has_the_asked_number_of_tasks_in_a_chain(tmp_path: Path) -> None:
    path = tmp_path / "noop.py"
    path.write_text(bench_parse.noop_dag_source(4))
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    profile = bench_parse.profile_build(env, path, parses=5)
    assert "error" not in profile, profile
    assert (profile["dags"], profile["tasks"], profile["params"]) == (1, 4, 0)
