"""Test-session environment: a private Airflow home and data root, set before Airflow is imported."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from egov_index.config import PROJECT_ROOT
from egov_index.local_airflow import airflow_env

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="egov-tests-"))
os.environ.update(
    airflow_env(_SESSION_DIR / "airflow", _SESSION_DIR / "data", PROJECT_ROOT, inbox_dir=_SESSION_DIR / "inbox")
)
