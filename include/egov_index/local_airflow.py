"""The embedded default deployment: an Airflow home inside the project (SQLite, LocalExecutor).

Used by ``make run`` / ``make up`` (through ``egov_index.cli``) and by the tests,
so the environment a DAG runs under is declared once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from egov_index.config import PROJECT_ROOT, REPORTING_API_CONN_ID, SERVICE_PORTAL_CONN_ID

# Airflow settings every deployment shares (docker-compose.yml's x-airflow-common sets the same values;
# tests/test_compose.py checks it). ``[workers] execution_api_timeout``: how long a worker waits for the
# api-server's answer. At Airflow's default (5 s) a late answer to a task's start call is retried, the
# server (which already marked the task running) answers 409, and the worker gives the task up unrun:
# the scheduler then fails it ("state attribute is running"), the Celery worker leaves it to the heartbeat
# timeout. A loaded 2-core machine answered in 4.4 s (docs/operations.md, *Slow execution API*).
SHARED_AIRFLOW_SETTINGS: dict[str, str] = {"AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30"}


def airflow_env(
    home: Path,
    data_root: Path,
    project_root: Path = PROJECT_ROOT,
    base: Mapping[str, str] | None = None,
    inbox_dir: Path | None = None,
) -> dict[str, str]:
    """Environment for every Airflow command of the embedded deployment."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(project_root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(project_root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Ho_Chi_Minh",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "GX_ANALYTICS_ENABLED": "False",
            "EGOV_DATA_ROOT": str(data_root),
            "EGOV_INBOX_DIR": str(inbox_dir or project_root / "inbox"),
            "EGOV_EXPECTATIONS_DIR": str(project_root / "expectations"),
            "PYTHONUNBUFFERED": "1",
            **SHARED_AIRFLOW_SETTINGS,
            # Airflow's own sub-commands (standalone, task runners) call `airflow` from PATH
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)]),
        }
    )
    return env


def source_connections(base_url: str, token: str) -> dict[str, str]:
    """AIRFLOW_CONN_* variables pointing both sources at one (reference) server."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    conn = json.dumps(
        {
            "conn_type": "http",
            "host": parts.hostname,
            "port": parts.port,
            "schema": parts.scheme,
            "password": token,
        }
    )
    return {
        f"AIRFLOW_CONN_{REPORTING_API_CONN_ID.upper()}": conn,
        f"AIRFLOW_CONN_{SERVICE_PORTAL_CONN_ID.upper()}": conn,
    }


def airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


POOLS_FILE = Path(__file__).with_name("pools.json")  # one pool per external source


def migrate(env: Mapping[str, str]) -> None:
    """Create or upgrade the metadata DB and create the pools (both idempotent)."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    subprocess.run([airflow_bin(), "db", "migrate"], env=dict(env), check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        [airflow_bin(), "pools", "import", str(POOLS_FILE)], env=dict(env), check=True, stdout=subprocess.DEVNULL
    )


def dags_test(env: Mapping[str, str], dag_id: str, logical_date: str | None = None, conf: dict | None = None) -> None:
    """Run one whole DAG run in-process through Airflow (``airflow dags test``); raise if it fails."""
    cmd = [airflow_bin(), "dags", "test", dag_id]
    if logical_date:
        cmd.append(logical_date)
    if conf:
        cmd += ["--conf", json.dumps(conf)]
    # Airflow 3.3.2's `dags test` crashes on a successful run of a DAG with deadlines (docs/alerts.md)
    completed = subprocess.run(cmd, env={**env, "EGOV_DEADLINES": "off"}, capture_output=True, text=True)
    log_file = Path(env["AIRFLOW_HOME"]) / "logs" / f"dags-test-{dag_id}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(completed.stdout + completed.stderr)
    failed = completed.returncode != 0 or "state=failed" in completed.stdout + completed.stderr
    if failed:
        tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-60:])
        raise RuntimeError(f"airflow dags test {dag_id} failed (full log: {log_file}):\n{tail}")
