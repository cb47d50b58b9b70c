"""Shared by tests/test_ui_page.py and tests/test_browser.py: a small published data root and one real
``airflow api-server`` (the project's plugin folder, SimpleAuthManager) serving it.

Loaded as a pytest plugin (``pytest_plugins = ["airflow_server"]`` in both modules), so its session
fixtures exist once per test session: one data root, one api-server for both modules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from airflow_home import migrate_home

from egov_index.config import Settings
from egov_index.local_airflow import airflow_bin, airflow_env

DAY = date(2026, 9, 30)
PERIODS = ("2026-Q2", "2026-Q3")  # two quarters, so the newest has rank changes
RUN_ID = "manual__ui_page_tests"
ADMIN = "admin"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"  # where SimpleAuthManager keeps them
STARTUP_DEADLINE_S = 240.0  # a loaded 2-core machine: 5-20 s measured; the same bound as the native cluster
STOP_GRACE_S = 15.0
PLUGIN_PREFIX = "/egov-ranking"


# --- a data root, built by the pipeline's own stages (no Airflow) --------------------------------------


def build_data_root(root: Path) -> Settings:
    """What the nightly ingest and the ranking DAG publish, for one day and two quarters, in a few
    seconds: snapshots with defects (quarantine, failed expectations), every batch in the ingest ledger,
    both quarters ranked (latest view, rank changes, HTML report) and the run's Data Docs.

    The same stages as tests/test_docs.py's ``data_root`` fixture, plus the ledger and the Data Docs.
    The SQL database is the default one (``<root>/egov-index.sqlite``), so ``Settings.from_env`` with
    only ``EGOV_DATA_ROOT`` finds it.
    """
    from egov_index import pipeline
    from egov_index.data_docs import build_data_docs
    from egov_index.ledger import Ledger
    from egov_index.periods import local_day_window
    from egov_index.source_server import generator
    from egov_index.store import DataStore

    settings = dataclasses.replace(
        Settings.from_env(),
        data_root=root,
        inbox_dir=root.parent / "inbox",
        sql_url=f"sqlite:///{root / 'egov-index.sqlite'}",
    )
    store = DataStore(root)
    seed = 7
    window = local_day_window(DAY)
    batches: list[tuple[str, str, list[dict]]] = [
        ("procedures", DAY.isoformat(), generator.procedure_catalogue(seed)),
        (
            "dossiers",
            DAY.isoformat(),
            generator.dossiers_updated_between(
                window.start, window.end, seed=seed, dossiers_per_day=300, defect_rate=0.004
            ),
        ),
        *(
            ("commune_reports", period, generator.commune_reports(period, seed=seed, defect_rate=0.004))
            for period in PERIODS
        ),
    ]
    with Ledger.open(settings.sql_url) as ledger:
        for dataset, batch, records in batches:
            entry = ledger.start(
                run_id=RUN_ID,
                source=pipeline.SOURCE_OF[dataset],
                dataset=dataset,
                partition=batch,  # type: ignore[arg-type]
            )
            summary = pipeline.ingest_records(store, settings, dataset, records, batch, RUN_ID)
            pipeline.finish_succeeded(ledger, entry, summary)
    for period in PERIODS:
        pipeline.rank_period(store, settings, period, RUN_ID)
    build_data_docs([], pipeline.data_docs_dir(settings), RUN_ID)
    return settings


@pytest.fixture(scope="session")
def top(published: Settings) -> dict[str, str]:
    """The rank-1 province of the session's published ranking."""
    return top_province(published)


def top_province(settings: Settings) -> dict[str, str]:
    """The rank-1 province of the latest published ranking (code, name, index), read independently of
    the page code."""
    from egov_index.pipeline import RANKING
    from egov_index.store import DataStore

    frame = DataStore(settings.data_root).read_latest(RANKING).to_pandas()
    provinces = frame[frame["level"] == "province"].sort_values(["overall_rank", "unit_code"])
    top = provinces.iloc[0]
    return {"code": str(top["unit_code"]), "name": str(top["unit_name"]), "period": str(top["period"])}


@pytest.fixture(scope="session")
def data_root_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's data root is (known before it is built, so the api-server can start meanwhile)."""
    return tmp_path_factory.mktemp("ui-data") / "data"


@pytest.fixture(scope="session")
def published(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data_root_path: Path
) -> Settings:
    """One published data root for the whole session (both test modules and the api-server).

    When a collected test uses ``api_server``, the server is migrated and started in a thread meanwhile
    (it reads the data root per request, so it may start before the data is there).
    """
    if any("api_server" in getattr(item, "fixturenames", ()) for item in request.session.items):
        starting = _start_in_background(request.config, tmp_path_factory, data_root_path)
        request.addfinalizer(lambda: _stop_started(starting))  # also when api_server is never reached
    start = time.perf_counter()
    settings = build_data_root(data_root_path)
    print(f"\n[airflow_server] data root built in {time.perf_counter() - start:.1f} s: {settings.data_root}")
    return settings


# --- a real api-server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ApiServer:
    base_url: str
    home: Path
    passwords_file: Path
    log: Path
    migrate_s: float
    startup_s: float
    process: subprocess.Popen[bytes]
    started_at: float

    @property
    def admin_password(self) -> str:
        """The admin's password, generated by SimpleAuthManager when the server started (the file
        ``make up`` points people to)."""
        return str(json.loads(self.passwords_file.read_text())[ADMIN])

    def token(self, username: str = ADMIN, password: str | None = None) -> str:
        body = json.dumps({"username": username, "password": password or self.admin_password}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/auth/token", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["access_token"])

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def wait_until_healthy(server: ApiServer, deadline_s: float = STARTUP_DEADLINE_S) -> None:
    """Poll /api/v2/monitor/health until it answers 200; fail (with the log) if the process exits or
    the deadline passes."""
    deadline = time.monotonic() + deadline_s
    url = f"{server.base_url}/api/v2/monitor/health"
    delay = 0.1
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"airflow api-server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        if _healthy(url):
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    raise TimeoutError(f"airflow api-server not healthy after {deadline_s:.0f} s:\n{server.log_tail()}")


def stop(process: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the server's process group (uvicorn and anything it started), wait, then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_s)


def start_api_server(home: Path, data_root: Path, sql_url: str) -> ApiServer:
    """``airflow db migrate`` (+ pools), then ``airflow api-server`` on a free loopback port with the repo's
    environment (``egov_index.local_airflow.airflow_env``: plugins from <repo>/plugins, the default
    SimpleAuthManager with its ``admin`` user). Returns at once; ``wait_until_healthy`` waits."""
    env = airflow_env(home, data_root)
    env["EGOV_SQL_URL"] = sql_url
    start = time.perf_counter()
    migrate_home(env)
    migrate_s = time.perf_counter() - start
    port = free_port()
    log = home / "api-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [airflow_bin(), "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends exactly what it started
        )
    passwords = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE") or str(home / PASSWORDS_FILE)
    return ApiServer(
        f"http://127.0.0.1:{port}", home, Path(passwords), log, migrate_s, 0.0, process, time.perf_counter()
    )


_STARTING = pytest.StashKey["Future[ApiServer]"]()


def _start_in_background(
    config: pytest.Config, tmp_path_factory: pytest.TempPathFactory, data_root: Path
) -> Future[ApiServer]:
    home = tmp_path_factory.mktemp("ui-airflow") / "home"
    sql_url = f"sqlite:///{data_root / 'egov-index.sqlite'}"  # what build_data_root uses
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="api-server-start")
    starting = pool.submit(start_api_server, home, data_root, sql_url)
    pool.shutdown(wait=False)
    config.stash[_STARTING] = starting
    return starting


def _stop_started(starting: Future[ApiServer]) -> None:
    with contextlib.suppress(Exception):
        stop(starting.result().process)


@pytest.fixture(scope="session")
def api_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    data_root_path: Path,
    published: Settings,
) -> Iterator[ApiServer]:
    """A real api-server serving the session's data root (started by ``published`` when it saw this
    fixture among the collected tests, else here); waits until its health endpoint answers."""
    starting = request.config.stash.get(_STARTING, None) or _start_in_background(
        request.config, tmp_path_factory, data_root_path
    )
    server = starting.result()  # re-raises a failed migrate or start
    assert published.sql_url == f"sqlite:///{data_root_path / 'egov-index.sqlite'}"
    try:
        wait_until_healthy(server)
        server.startup_s = time.perf_counter() - server.started_at
        print(
            f"\n[airflow_server] db migrate {server.migrate_s:.1f} s; api-server healthy "
            f"{server.startup_s:.1f} s after its start on {server.base_url} (log {server.log})"
        )
        yield server
    finally:
        stop(server.process)
