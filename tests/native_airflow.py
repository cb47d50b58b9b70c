"""The docker-compose deployment started natively (no Docker), shared by the distributed tests.

pytest plugin (``pytest_plugins = ["native_airflow"]`` in the test modules), so its session-scoped
fixtures are built once for test_distributed.py and test_backfill.py together:

* ``source_server``: the reference source server (one seed, used by both sides of every comparison);
* ``cluster``: a throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``) and a Redis server, then -- with
  the environment of docker-compose.yml's ``x-airflow-common`` (``egov_index.services.native_env``:
  the compose service names replaced by loopback host:ports, container paths by local directories) --
  what ``airflow-init`` does (``airflow db migrate``, ``airflow pools import``, the UI password file),
  then ``airflow api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and two
  ``airflow celery worker`` processes with distinct host names;
* ``reference``: the embedded deployment (SQLite, ``airflow dags test``) in another Airflow home and
  data root, against the same source server.

Native-only settings, on top of the compose environment (``NATIVE_OVERRIDES`` and ``_worker_env``):
free ports for everything that listens; ``[core] hostname_callable`` reading ``EGOV_WORKER_NAME`` (two
workers on one host would otherwise both report its FQDN); ``[scheduler] use_job_schedule = False`` so
the clock cannot add a scheduled "latest" run when the DAG is unpaused (``catchup=False`` creates one
for the last 01:30, which would ingest another day into the data root being compared); and
``--concurrency 2`` per worker (2 workers x 2 = the 4 slots of the ``egov_service_portal`` pool, so
the mapped pulls must spread over both workers).

Logs of every component stay in the session's directory (printed at the end); when a test or the
start-up fails, the tail of each is printed too. Teardown terminates every process group (and stray
descendants), stops PostgreSQL with ``pg_ctl stop -m fast`` and Redis, also after failures.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import outputs
import pytest
import requests
from airflow_home import migrate_home

from egov_index import services
from egov_index.config import PROJECT_ROOT
from egov_index.local_airflow import (
    POOLS_FILE,
    airflow_bin,
    airflow_env,
    dags_test,
    source_connections,
)

NIGHTLY = "egov_nightly_ingest"
SEED = 7
DOSSIERS_PER_DAY = 1000
DEFECT_RATE = 0.004
WORKERS = ("worker-1", "worker-2")
WORKER_CONCURRENCY = 2
STARTUP_TIMEOUT_S = 240
RUN_TIMEOUT_S = 360  # one nightly run (about 70-140 s on 2 CPUs)
NATIVE_OVERRIDES = {
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "egov_index.services.worker_hostname",
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    "PYTHONUNBUFFERED": "1",
}


# ---------------------------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no {path.name})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns a truthy value; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout:g} s")
        time.sleep(interval)


def manifest_digests(data_root: Path) -> dict[str, str]:
    """sha256 of every snapshot and quarantine partition (its manifest), by relative path."""
    return outputs.manifest_digests(data_root, ("snapshots", "quarantine"))


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    started: float
    ready_s: float | None = None


def _terminate(procs: list[Proc], timeout: float = 30.0) -> None:
    """SIGTERM every process group (and descendants that left it), SIGKILL what is left after ``timeout``."""
    import psutil

    family: list[psutil.Process] = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(proc.popen.pid)
            family += [parent, *parent.children(recursive=True)]
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGTERM)
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    _gone, alive = psutil.wait_procs(family, timeout=timeout)
    for proc in procs:
        if proc.popen.poll() is None:  # only groups whose leader (our child) still runs
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=10)


# ----------------------------------------------------------------------------------- PostgreSQL, Redis


def _pg_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    pytest.fail("PostgreSQL server binaries not found: run `make system-deps` (Debian package postgresql)")


class Postgres:
    """A throwaway cluster: ``initdb`` into a tmp dir, ``pg_ctl start`` on a free port, role + database."""

    def __init__(self, root: Path, port: int, log: Path) -> None:
        self.root, self.port, self.log = root, port, log
        self.bindir = _pg_bindir()
        self.data = root / "pgdata"
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.started = False

    def _run(self, *args: str) -> None:
        completed = subprocess.run([*self.as_pg, *args], capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}")

    def start(self, user: str, password: str, database: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        if self.as_pg:  # the server runs as postgres: its directory and log file are its own
            shutil.chown(self.root, "postgres")
            shutil.chown(self.log, "postgres")
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8", "--no-sync",
            "--auth-local=trust", "--auth-host=scram-sha-256",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"  # throwaway: speed over safety
        )
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")  # fmt: skip
        self.started = True
        psql = [str(self.bindir / "psql"), "-h", str(self.root), "-p", str(self.port), "-U", "postgres",
                "-v", "ON_ERROR_STOP=1", "-q"]  # fmt: skip
        self._run(*psql, "-c", f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        self._run(*psql, "-c", f"CREATE DATABASE {database} OWNER {user}")

    def stop(self) -> None:
        if self.started:
            subprocess.run([*self.as_pg, str(self.bindir / "pg_ctl"), "-D", str(self.data), "stop", "-m", "fast",
                            "-w", "-t", "60"], capture_output=True)  # fmt: skip
            self.started = False


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# --------------------------------------------------------------------------------------------- cluster


@dataclass
class Cluster:
    root: Path
    compose: dict[str, Any]
    variables: dict[str, str]
    env: dict[str, str]
    api_url: str
    data_root: Path
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    token: str | None = None
    postgres: Postgres | None = None

    # ---- REST API v2
    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = requests.request(
            method, f"{self.api_url}{path}", json=body, params=params or None, headers=headers, timeout=30
        )
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    def login(self) -> None:
        self.token = None
        password = self.variables["AIRFLOW_ADMIN_PASSWORD"]
        self.token = self.call("POST", "/auth/token", {"username": "admin", "password": password})[
            "access_token"
        ]

    def trigger(self, dag_id: str, conf: dict) -> str:
        run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return run["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}")["state"]

    def wait_runs(self, dag_id: str, run_ids: list[str], timeout: float = RUN_TIMEOUT_S) -> dict[str, str]:
        """Poll until every run is finished; return their states."""
        states: dict[str, str] = {}

        def finished() -> bool:
            for run_id in run_ids:
                if states.get(run_id) not in ("success", "failed"):
                    states[run_id] = self.run_state(dag_id, run_id)
            return all(s in ("success", "failed") for s in states.values())

        wait_for(f"runs {run_ids} of {dag_id}", finished, timeout, interval=1.0)
        return states

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        items: list[dict] = []
        while True:
            page = self.call(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances",
                limit=100,
                offset=len(items),
            )
            items += page["task_instances"]
            if not page["task_instances"] or len(items) >= page["total_entries"]:
                return items

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances/{task_id}/xcomEntries/return_value"
        )
        return self.call("GET", path, deserialize="true")["value"]

    def airflow(self, *args: str, timeout: float = 120) -> str:
        """An ``airflow`` CLI command against the cluster's metadata DB (like `docker compose run airflow-cli`)."""
        completed = subprocess.run(
            [airflow_bin(), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if completed.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}")
        return completed.stdout

    # ---- diagnostics
    def task_logs(self, dag_id: str, run_id: str) -> list[Path]:
        base = Path(self.env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]) / f"dag_id={dag_id}" / f"run_id={run_id}"
        return sorted(base.rglob("*.log")) if base.exists() else []

    def tails(self, lines: int = 40) -> str:
        parts = [f"--- {p.name} ({p.log}) ---\n{tail(p.log, lines)}" for p in self.procs]
        parts.append(f"--- postgres ---\n{tail(self.log_dir / 'postgres.log', 15)}")
        return "\n".join(parts)

    @contextlib.contextmanager
    def diagnostics(self, dag_id: str | None = None, run_ids: list[str] | None = None) -> Iterator[None]:
        """On failure, print the tail of every component's log (and of failed tasks' logs)."""
        try:
            yield
        except BaseException:
            report = [f"==== native Airflow logs under {self.log_dir} ====", self.tails()]
            for run_id in run_ids or []:
                with contextlib.suppress(Exception):
                    for ti in self.task_instances(dag_id, run_id):
                        if ti["state"] not in ("success", "skipped"):
                            report.append(
                                f"task {ti['task_id']}[{ti['map_index']}] {ti['state']} {ti['hostname']}"
                            )
                for log in self.task_logs(dag_id, run_id)[-5:]:
                    report.append(f"--- task log {log} ---\n{tail(log, 30)}")
            print("\n".join(report), file=sys.stderr)
            raise


def _quote(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="")


def _spawn(name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=log_dir,
        )  # fmt: skip
    return Proc(name, popen, log, time.monotonic())


def _job_alive(env: dict[str, str], job_type: str) -> bool:
    """What `airflow jobs check --job-type X` checks (the compose healthcheck), straight from the DB."""
    import sqlalchemy as sa

    engine = sa.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as con:
            return bool(
                con.execute(
                    sa.text(
                        "select count(*) from job where job_type = :t and state = 'running' "
                        "and latest_heartbeat > now() - interval '60 seconds'"
                    ),
                    {"t": job_type},
                ).scalar_one()
            )
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def _celery_ping(broker_url: str, node: str) -> bool:
    """What compose's worker healthcheck does (`celery inspect ping -d <node>`), in-process."""
    from celery import Celery

    app = Celery(broker=broker_url)
    try:
        replies = app.control.ping(destination=[node], timeout=1.0)
    except Exception:
        return False
    finally:
        app.close()
    return any(node in reply for reply in replies)


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def compose_variables(compose: dict, source_token: str) -> dict[str, str]:
    """A value for every ``${VAR:?...}`` of the compose file (what an operator puts into .env)."""
    from cryptography.fernet import Fernet

    values = {}
    for name in services.required_variables(compose):
        if name == "AIRFLOW_FERNET_KEY":
            values[name] = Fernet.generate_key().decode()
        elif name == "EGOV_SOURCE_TOKEN":
            values[name] = source_token
        else:
            values[name] = secrets.token_hex(24)  # URL-safe (goes into the DB URLs)
    return values


def start_cluster(root: Path, source_url: str, source_token: str) -> Cluster:
    """Start the whole compose deployment natively under ``root``; the caller must call ``stop_cluster``."""
    from urllib.parse import urlsplit

    t0 = time.monotonic()
    log_dir = root / "logs"
    log_dir.mkdir(parents=True)
    compose = services.load_compose()
    variables = compose_variables(compose, source_token)
    pg_port, redis_port, api_port = free_port(), free_port(), free_port()
    source = urlsplit(source_url)
    hosts = {
        "postgres": f"127.0.0.1:{pg_port}",
        "redis": f"127.0.0.1:{redis_port}",
        "airflow-apiserver": f"127.0.0.1:{api_port}",
        "source-server": f"{source.hostname}:{source.port}",
    }
    env = services.native_env(
        compose,
        "airflow-scheduler",
        variables,
        hosts=hosts,
        home=root / "airflow-home",
        named_volumes_root=root / "volumes",
        volume_overrides={"./inbox": root / "inbox"},  # never the repository's own inbox
    )
    env.update(NATIVE_OVERRIDES)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"] = str(free_port())
    env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
    cluster = Cluster(
        root=root,
        compose=compose,
        variables=variables,
        env=env,
        api_url=f"http://127.0.0.1:{api_port}",
        data_root=Path(env["EGOV_DATA_ROOT"]),
        log_dir=log_dir,
    )
    cluster.postgres = Postgres(root / "pg", pg_port, log_dir / "postgres.log")
    try:
        _start(cluster, redis_port)
    except BaseException:
        print(f"==== start-up failed; logs under {log_dir} ====\n{cluster.tails()}", file=sys.stderr)
        stop_cluster(cluster)
        raise
    cluster.timings["total start-up"] = time.monotonic() - t0
    return cluster


def _start(cluster: Cluster, redis_port: int) -> None:
    env, log_dir = cluster.env, cluster.log_dir
    timings = cluster.timings

    t = time.monotonic()
    # the role and database the postgres image creates from its environment
    postgres_env = services.service_environment(cluster.compose, "postgres")
    pg = {k: services.interpolate(v, cluster.variables) for k, v in postgres_env.items()}
    cluster.postgres.start(pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
    timings["postgres (initdb + start + role/db)"] = time.monotonic() - t

    t = time.monotonic()
    redis = _spawn(
        "redis",
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "no", "--dir", str(log_dir)],
        env, log_dir,
    )  # fmt: skip
    cluster.procs.append(redis)
    wait_for("redis", lambda: _redis_ping(redis_port) or _exited(redis), 30, 0.1)
    _check_alive(redis)
    timings["redis"] = time.monotonic() - t

    # airflow-init: the UI password file, then the `airflow ...` lines of its script
    for directory in (
        "AIRFLOW_HOME",
        "EGOV_DATA_ROOT",
        "EGOV_INBOX_DIR",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
    ):
        Path(env[directory]).mkdir(parents=True, exist_ok=True)
    passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    passwords.parent.mkdir(parents=True, exist_ok=True)
    passwords.write_text(json.dumps({"admin": cluster.variables["AIRFLOW_ADMIN_PASSWORD"]}))
    mounts = {
        services.IMAGE_HOME: Path(env["AIRFLOW_HOME"]),
        **services.local_mounts(
            cluster.compose, "airflow-init", project_root=PROJECT_ROOT,
            named_volumes_root=cluster.root / "volumes", overrides={"./inbox": cluster.root / "inbox"},
        ),
    }  # fmt: skip
    for command in services.init_airflow_commands(cluster.compose):
        if command[1:] == ["version"]:  # informational only
            continue
        t = time.monotonic()
        args = [services.relocate(a, mounts) for a in command[1:]]
        cluster.airflow(*args, timeout=300)
        timings[f"init: airflow {' '.join(command[1:3])}"] = time.monotonic() - t

    # the long-running services, all at once (compose starts them once airflow-init has completed)
    t_start = time.monotonic()
    checks: dict[str, Callable[[], bool]] = {}
    for service in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        command = services.service_command(cluster.compose, service)
        cluster.procs.append(_spawn(service, [airflow_bin(), *command[1:]], env, log_dir))
    health_port = env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"]
    checks["airflow-apiserver"] = lambda: _http_ok(f"{cluster.api_url}/api/v2/version")
    checks["airflow-scheduler"] = lambda: _http_ok(f"http://127.0.0.1:{health_port}/health")
    checks["airflow-dag-processor"] = lambda: _job_alive(env, "DagProcessorJob")
    checks["airflow-triggerer"] = lambda: _job_alive(env, "TriggererJob")
    worker_command = services.service_command(cluster.compose, "airflow-worker")
    broker = env["AIRFLOW__CELERY__BROKER_URL"]
    for name in WORKERS:
        worker_env = {
            **env,
            services.WORKER_NAME_ENV: name,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
        cmd = [airflow_bin(), *worker_command[1:], "--celery-hostname", f"{name}@%h",
               "--concurrency", str(WORKER_CONCURRENCY)]  # fmt: skip
        cluster.procs.append(_spawn(name, cmd, worker_env, log_dir))
        node = f"{name}@{socket.gethostname()}"
        checks[name] = lambda node=node: _celery_ping(broker, node)

    pending = dict(checks)
    by_name = {p.name: p for p in cluster.procs}

    def all_ready() -> bool:
        for name in list(pending):
            _check_alive(by_name[name])
            if pending[name]():
                by_name[name].ready_s = time.monotonic() - by_name[name].started
                timings[f"{name} ready"] = by_name[name].ready_s
                del pending[name]
        for proc in cluster.procs:
            _check_alive(proc)
        return not pending

    wait_for(f"components {sorted(pending)}", all_ready, STARTUP_TIMEOUT_S, 0.5)
    timings["all components ready (after init)"] = time.monotonic() - t_start

    # operator steps: log in, wait for the DAG to be parsed, unpause it (paused at creation in compose)
    t = time.monotonic()
    cluster.login()

    def dag_parsed() -> bool:
        errors = cluster.call("GET", "/api/v2/importErrors")
        if errors["total_entries"]:
            raise RuntimeError(f"DAG import errors: {json.dumps(errors)[:3000]}")
        dags = {d["dag_id"] for d in cluster.call("GET", "/api/v2/dags", limit=100)["dags"]}
        return NIGHTLY in dags

    wait_for("DAG parsed", dag_parsed, STARTUP_TIMEOUT_S, 1.0)
    # tasks of a missing pool would wait forever: fail here instead
    pools = {p["name"]: p["slots"] for p in cluster.call("GET", "/api/v2/pools", limit=100)["pools"]}
    wanted = {name: spec["slots"] for name, spec in json.loads(POOLS_FILE.read_text()).items()}
    if {name: pools.get(name) for name in wanted} != wanted:
        raise RuntimeError(f"pools after airflow-init's commands: {pools}; expected {wanted}")
    cluster.call("PATCH", f"/api/v2/dags/{NIGHTLY}", {"is_paused": False})
    timings["DAG parsed + unpaused"] = time.monotonic() - t


def _exited(proc: Proc) -> bool:
    return proc.popen.poll() is not None


def _check_alive(proc: Proc) -> None:
    if proc.popen.poll() is not None:
        raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{tail(proc.log, 60)}")


def stop_cluster(cluster: Cluster) -> None:
    try:
        _terminate([p for p in cluster.procs if p.name != "redis"])
        _terminate([p for p in cluster.procs if p.name == "redis"], timeout=10)
    finally:
        if cluster.postgres is not None:
            cluster.postgres.stop()


# ------------------------------------------------------------------------------------------ reference


@dataclass
class Reference:
    """The embedded deployment (SQLite, `airflow dags test`), run day by day like the cluster."""

    env: dict[str, str]
    data_root: Path
    durations: list[float] = field(default_factory=list)

    def nightly(self, *, logical_date: str | None = None, conf: dict | None = None) -> None:
        t = time.monotonic()
        dags_test(self.env, NIGHTLY, logical_date, conf)
        self.durations.append(time.monotonic() - t)

    @contextlib.contextmanager
    def nightlies_meanwhile(self, runs: list[dict[str, Any]]) -> Iterator[Callable[[], float]]:
        """Run ``nightly(**run)`` for each run, in order, in a background thread while the body runs
        (the cluster's runs leave CPU idle between tasks). Yields ``wait()``: blocks until they are
        done, re-raises their error, returns their total duration."""
        from concurrent.futures import ThreadPoolExecutor

        def all_runs() -> float:
            t = time.monotonic()
            for run in runs:
                self.nightly(**run)
            return time.monotonic() - t

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference") as pool:
            future = pool.submit(all_runs)
            yield lambda: future.result()


# ------------------------------------------------------------------------------------------- fixtures


@dataclass
class SourceServer:
    url: str
    token: str


@pytest.fixture(scope="session")
def native_root(request: pytest.FixtureRequest) -> Iterator[Path]:
    # not pytest's tmp dir: that is private to root (0700) and the postgres user must reach its cluster
    root = Path(tempfile.mkdtemp(prefix="egov-native-"))
    root.chmod(0o755)
    yield root
    if request.session.testsfailed:  # keep the component logs (logs/) for the diagnosis; the cluster goes
        print(f"\nnative Airflow session directory (component logs under logs/): {root}")
        shutil.rmtree(root / "cluster" / "pg", ignore_errors=True)
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def source_server(native_root: Path) -> Iterator[SourceServer]:
    from egov_index.source_server.process import running_server

    token = secrets.token_urlsafe(24)
    with running_server(
        native_root / "source-server", token=token, seed=SEED, dossiers_per_day=DOSSIERS_PER_DAY,
        defect_rate=DEFECT_RATE,
    ) as url:  # fmt: skip
        yield SourceServer(url, token)


@pytest.fixture(scope="session")
def cluster(native_root: Path, source_server: SourceServer) -> Iterator[Cluster]:
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.fail("running as root needs `runuser` to start PostgreSQL as the postgres user")
    for tool in ("redis-server",):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: run `make system-deps` (Debian package redis-server)")
    _require_working_celery()
    cluster = start_cluster(native_root / "cluster", source_server.url, source_server.token)
    print(
        "\nnative start-up timings (s): " + json.dumps({k: round(v, 1) for k, v in cluster.timings.items()})
    )
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def _require_working_celery() -> None:
    try:
        import airflow.providers.celery.executors.celery_executor_utils  # noqa: F401
    except ImportError as exc:
        pytest.fail(
            f"the CeleryExecutor cannot start with the installed celery ({exc}); "
            "apache-airflow-providers-celery 3.26 needs celery<5.7 (requirements.in: celery[redis]>=5.5,<5.7)"
        )


@pytest.fixture(scope="session")
def reference(native_root: Path, source_server: SourceServer) -> Reference:
    base = native_root / "reference"
    env = airflow_env(base / "airflow", base / "data", inbox_dir=base / "inbox")
    env.update(source_connections(source_server.url, source_server.token))
    migrate_home(env)
    return Reference(env, base / "data")
