"""Test-session environment and the two tiers.

* A private Airflow home and data root, set before Airflow is imported.
* Tiers: every test is either ``integration`` (it starts Airflow commands or components, services, or
  the reference server in other processes: marked ``e2e``, ``browser``, ``distributed`` or
  ``integration``) or ``unit`` (everything else, marked here). ``make check`` runs ``-m unit``;
  ``make test`` runs both.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

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


@pytest.fixture(autouse=True)
def _unit_tests_start_no_airflow(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tier's rule, enforced: a unit-tier test that starts an ``airflow`` command fails, naming the fix."""
    if tier(request.node) != "unit":
        return
    real_init = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen, args: Any, *rest: Any, **kwargs: Any) -> None:
        argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
        if argv and Path(os.fsdecode(argv[0])).name == "airflow":
            pytest.fail(f"a unit-tier test started {argv[:3]}: mark it `integration` (tests/conftest.py)")
        real_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
