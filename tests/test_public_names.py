"""The names other code relies on, pinned in tests/golden/public_names.json.

Deployments, BI, operators and Airflow's own database hold these names: DAG and task ids (run history,
alerts, the UI), the DAGs' params (trigger forms, backfill recipes), CLI commands (README, Makefile,
Dockerfile), Connection ids, dataset paths under the data root (BI's public contract), and dotted paths
that Airflow serialises or that configuration names (deadline callbacks, notifiers, the plugin's app,
``hostname_callable``). A move of the package must keep every one working (shims where needed); this test
fails on any change, which is then either reverted or made deliberately, with the golden file, the docs
and a migration note.

Regenerate after a deliberate change: ``EGOV_WRITE_GOLDEN=1 .venv/bin/python -m pytest tests/test_public_names.py``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest

from egov_index.config import PROJECT_ROOT

GOLDEN = Path(__file__).parent / "golden" / "public_names.json"

# module.attribute -> the value it must keep (dataset paths and Connection ids)
CONSTANTS = (
    "egov_index.config.REPORTING_API_CONN_ID",
    "egov_index.config.SERVICE_PORTAL_CONN_ID",
    "egov_index.alerts.SMTP_CONN_ID",
    "egov_index.alerts.WEBHOOK_CONN_ID",
    "egov_index.pipeline.SNAPSHOT_DATASETS",
    "egov_index.pipeline.QUARANTINE",
    "egov_index.pipeline.VALIDATION_RESULTS",
    "egov_index.pipeline.INDICATOR_VALUES",
    "egov_index.pipeline.RANKING",
    "egov_index.pipeline.RANKING_EARLIER_VERSIONS",
    "egov_index.pipeline.EXPLANATIONS",
    "egov_index.pipeline.RANK_UNCERTAINTY",
    "egov_index.pipeline.REPORTS_DIR",
    "egov_index.published_rankings.PUBLISHED_RANKINGS",
    "egov_index.bulk.EXPORTS_DIR",
    "egov_index.raw_archive.RAW_DIR",
    "egov_index.store.DATA_FILE",
    "egov_index.store.MANIFEST_FILE",
)

# dotted paths named outside Python imports: configuration, compose, the Dockerfile, docs, Airflow's
# serialised DAGs; each must still resolve to something callable (or, for modules run with -m, import)
CONFIGURED_CALLABLES = (
    "egov_index.ui_page.create_app",  # plugins/egov_ranking_plugin.py
    "egov_index.services.worker_hostname",  # [core] hostname_callable (docs/operations.md)
)
MODULES_RUN_WITH_DASH_M = ("egov_index.cli", "egov_index.source_server")


def resolve(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def cli_commands() -> list[str]:
    """The sub-commands of ``python -m egov_index.cli``, read from its parser (``--help`` of each)."""
    from egov_index import cli

    seen: list[str] = []
    real_parse = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                seen.extend(action.choices)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign]
    try:
        with pytest.raises(SystemExit):
            cli.main([])
    finally:
        argparse.ArgumentParser.parse_args = real_parse  # type: ignore[method-assign]
    return sorted(seen)


def current_names() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert bag.import_errors == {}
    dags: dict[str, Any] = {}
    serialised: set[str] = set()
    for dag_id in sorted(bag.dag_ids):
        dag = bag.dags[dag_id]
        dags[dag_id] = {
            "tasks": sorted(dag.task_ids),
            "params": sorted(dag.params),
        }
        for deadline in dag.deadline or []:
            serialised.add(deadline.callback.path)
        for task in dag.tasks:
            for callback in task.on_failure_callback or []:
                serialised.add(f"{type(callback).__module__}.{type(callback).__qualname__}")
    return {
        "dags": dags,
        "cli_commands": cli_commands(),
        "constants": {name: resolve(name) for name in CONSTANTS},
        "serialised_callables": sorted(serialised),
        "configured_callables": list(CONFIGURED_CALLABLES),
        "modules_run_with_dash_m": list(MODULES_RUN_WITH_DASH_M),
    }


def test_public_names_are_the_golden_ones() -> None:
    names = json.loads(json.dumps(current_names()))  # tuples as lists, as in the file
    if os.environ.get("EGOV_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps(names, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    for section in golden:
        assert names.get(section) == golden[section], section
    assert set(names) == set(golden)


def test_every_dotted_path_still_resolves() -> None:
    golden = json.loads(GOLDEN.read_text())
    for dotted in (*golden["serialised_callables"], *golden["configured_callables"]):
        assert callable(resolve(dotted)), dotted
    for module in golden["modules_run_with_dash_m"]:
        spec = importlib.util.find_spec(module)
        assert spec is not None, module
        if spec.submodule_search_locations:  # a package runs its __main__
            assert importlib.util.find_spec(f"{module}.__main__") is not None, module
