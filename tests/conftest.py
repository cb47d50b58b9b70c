"""Test-session environment and the two tiers.

* A private Airflow home and data root, set before Airflow is imported.
* Tiers: every test is either ``integration`` (it starts Airflow commands or components, services, or
  the reference server in other processes: marked ``e2e``, ``browser``, ``distributed`` or
  ``integration``) or ``unit`` (everything else, marked here). ``make check`` runs ``-m unit``;
  ``make test`` runs both.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from egov_index.config import PROJECT_ROOT
from egov_index.local_airflow import airflow_env

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="egov-tests-"))
os.environ.update(
    airflow_env(_SESSION_DIR / "airflow", _SESSION_DIR / "data", PROJECT_ROOT, inbox_dir=_SESSION_DIR / "inbox")
)

INTEGRATION_MARKERS = frozenset({"integration", "e2e", "browser", "distributed"})


def tier(item: pytest.Item) -> str:
    """``integration`` when the test carries one of INTEGRATION_MARKERS, else ``unit``."""
    return "integration" if INTEGRATION_MARKERS & {m.name for m in item.iter_markers()} else "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(tier(item))
