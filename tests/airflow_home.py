"""One migrated Airflow metadata database per test process, copied into every test's Airflow home.

``airflow db migrate`` and the pool import (``egov_index.local_airflow.migrate``) take 13-30 s on a
2-core machine, and the suite needs a fresh SQLite home in seven places. Each now copies the file that
one ``migrate`` produced in this process (the migration is the same; only the file's location differs).
Thread-safe: the UI tests' api-server starts in a background thread.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from egov_index.local_airflow import airflow_env, migrate

_lock = threading.Lock()
_template: list[Path] = []


def migrated_db() -> Path:
    """The process's migrated metadata database (SQLite, pools imported), made on first use."""
    with _lock:
        if not _template:
            home = Path(tempfile.mkdtemp(prefix="egov-airflow-template-"))
            atexit.register(shutil.rmtree, home, ignore_errors=True)
            migrate(airflow_env(home / "airflow", home / "data"))
            _template.append(home / "airflow" / "airflow.db")
    return _template[0]


def migrate_home(env: Mapping[str, str]) -> None:
    """What ``local_airflow.migrate(env)`` leaves, by copying the template into ``env``'s Airflow home.

    ``env`` must use the embedded default's SQLite file (``<AIRFLOW_HOME>/airflow.db``)."""
    home = Path(env["AIRFLOW_HOME"])
    target = home / "airflow.db"
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") != f"sqlite:///{target}":
        raise ValueError(f"migrate_home copies a SQLite home only, not {env.get('AIRFLOW__DATABASE__SQL_ALCHEMY_CONN')}")
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_db(), target)
