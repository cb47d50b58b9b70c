"""docker-compose.yml, .env.example and the Dockerfile, checked as data (no Docker needed).

tests/test_distributed.py runs this configuration natively; here: its shape (services, shared
secrets, health checks, mounts, pinned images, init steps) and egov_index.services' translation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from egov_index import services
from egov_index.config import PROJECT_ROOT

COMPOSE = services.load_compose()
SERVICES = COMPOSE["services"]
AIRFLOW = services.AIRFLOW_SERVICES
LONG_RUNNING = [s for s in AIRFLOW if s != "airflow-init"]
SHARED = (*AIRFLOW, "airflow-cli")  # every container running Airflow, incl. the one-off CLI (profile debug)
REQUIRED_SECRETS = {
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "EGOV_SOURCE_TOKEN",
}
API_PORT = 8080


def env(service: str) -> dict[str, str]:
    return services.service_environment(COMPOSE, service)


def test_services_of_the_deployment():
    assert set(SERVICES) >= {
        "postgres",
        "redis",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "source-server",
    }
    for name in AIRFLOW:
        assert services.service_command(COMPOSE, name)[0] == "airflow" or name == "airflow-init", name
    assert services.service_command(COMPOSE, "airflow-apiserver") == ["airflow", "api-server"]
    assert services.service_command(COMPOSE, "airflow-worker") == ["airflow", "celery", "worker"]


def test_worker_is_scalable():
    worker = SERVICES["airflow-worker"]
    # `docker compose up --scale airflow-worker=N` needs no fixed name, host name or host port
    assert "container_name" not in worker and "hostname" not in worker
    assert not worker.get("ports")
    for name, spec in SERVICES.items():
        for port in spec.get("ports") or []:  # only the UI / REST API is published on the host
            assert name == "airflow-apiserver", (name, port)


@pytest.mark.parametrize("service", SHARED)
def test_airflow_services_share_one_configuration(service: str):
    common = env("airflow-scheduler")
    mine = env(service)
    for key in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__CORE__AUTH_MANAGER",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "PYTHONPATH",
        "EGOV_DATA_ROOT",
        "EGOV_SQL_URL",
    ):
        assert mine.get(key) == common[key], (service, key)
    assert mine["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert mine["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    assert mine["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert mine["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    assert re.fullmatch(r"db\+postgresql://airflow:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres/airflow",
                        mine["AIRFLOW__CELERY__RESULT_BACKEND"])  # fmt: skip
    assert re.fullmatch(r"postgresql\+psycopg2://airflow:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres/airflow",
                        mine["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])  # fmt: skip
    # the tasks on the workers reach the Execution API of the api-server service, on its port
    assert (
        mine["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-apiserver:{API_PORT}/execution/"
    )


@pytest.mark.parametrize("service", SHARED)
def test_every_airflow_service_has_the_settings_the_embedded_deployment_has(service: str):
    """The settings both deployments need (local_airflow.SHARED_AIRFLOW_SETTINGS: e.g. the workers'
    execution API timeout, without which a late start answer fails a task unrun) are in compose too."""
    from egov_index.local_airflow import SHARED_AIRFLOW_SETTINGS

    assert SHARED_AIRFLOW_SETTINGS
    for key, value in SHARED_AIRFLOW_SETTINGS.items():
        assert env(service).get(key) == value, (service, key)


def test_secrets_are_required_and_listed_in_env_example():
    common = env("airflow-scheduler")
    assert common["AIRFLOW__CORE__FERNET_KEY"].startswith("${AIRFLOW_FERNET_KEY:?")
    assert common["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET:?")
    assert common["AIRFLOW__API__SECRET_KEY"].startswith("${AIRFLOW_API_SECRET_KEY:?")
    assert env("postgres")["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert env("airflow-init")["AIRFLOW_ADMIN_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    required = services.required_variables(COMPOSE)
    assert set(required) == REQUIRED_SECRETS
    assert all(message.strip() for message in required.values())  # compose prints it when unset
    listed = services.env_file_names()
    assert set(listed) >= REQUIRED_SECRETS
    # the example carries no values (secrets are generated per deployment)
    for line in services.ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert line.strip().endswith("="), line
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().split()


def test_missing_secret_is_refused_like_compose_does():
    value = env("airflow-scheduler")["AIRFLOW__API_AUTH__JWT_SECRET"]
    with pytest.raises(services.MissingVariable, match="AIRFLOW_JWT_SECRET"):
        services.interpolate(value, {})
    assert services.interpolate(value, {"AIRFLOW_JWT_SECRET": "s3cret"}) == "s3cret"
    assert services.interpolate("a $$HOSTNAME ${X:-d} ${Y-e}", {"Y": ""}) == "a $HOSTNAME d "


@pytest.mark.parametrize(
    "service",
    ["postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
     "airflow-triggerer", "airflow-worker"],
)  # fmt: skip
def test_healthchecks(service: str):
    test = SERVICES[service]["healthcheck"]["test"]
    command = " ".join(test) if isinstance(test, list) else test
    assert command and "NONE" not in command
    expected = {
        "postgres": "pg_isready",
        "redis": "redis-cli ping",
        "airflow-apiserver": f"http://localhost:{API_PORT}/api/v2/version",
        "airflow-scheduler": "http://localhost:8974/health",
        "airflow-dag-processor": "--job-type DagProcessorJob",
        "airflow-triggerer": "--job-type TriggererJob",
        "airflow-worker": "inspect ping",
    }[service]
    assert expected in command
    if service == "airflow-scheduler":  # the health server the check calls is switched on
        assert env(service)["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"].lower() == "true"


def test_start_order():
    for service in LONG_RUNNING:
        depends = SERVICES[service]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", service
    assert SERVICES["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", SHARED)
def test_mounts(service: str):
    mounts = dict((target, source) for source, target in services.volume_mounts(COMPOSE, service))
    for folder in ("dags", "include", "expectations", "plugins"):
        assert mounts[f"/opt/airflow/{folder}"] == f"./{folder}", (service, folder)
        assert (PROJECT_ROOT / folder).is_dir()
    data_root = env(service)["EGOV_DATA_ROOT"]
    assert not mounts[data_root].startswith(".")  # a named volume, declared at the top level
    assert mounts[data_root] in COMPOSE["volumes"]
    assert env(service)["PYTHONPATH"] == "/opt/airflow/include"  # the import rule: egov_index from include/
    assert env(service)["EGOV_EXPECTATIONS_DIR"] == "/opt/airflow/expectations"


def test_images_are_pinned():
    images = {name: spec["image"] for name, spec in SERVICES.items() if "image" in spec}
    images["x-airflow-common"] = COMPOSE["x-airflow-common"]["image"]
    for name, image in images.items():
        assert ":" in image and not image.endswith(":latest"), (name, image)
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    [base] = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.M)
    airflow_pin = re.search(r"^apache-airflow==(\S+)$", (PROJECT_ROOT / "requirements.txt").read_text(), re.M)
    assert base == f"apache/airflow:{airflow_pin[1]}-python3.11"  # the image's Airflow = the pinned one
    assert "requirements.txt" in dockerfile


def test_init_migrates_and_imports_the_pools():
    commands = services.init_airflow_commands(COMPOSE)
    assert ["airflow", "db", "migrate"] in commands
    [pools] = [c for c in commands if c[1:3] == ["pools", "import"]]
    assert commands.index(["airflow", "db", "migrate"]) < commands.index(pools)
    mounts = services.local_mounts(
        COMPOSE, "airflow-init", project_root=PROJECT_ROOT, named_volumes_root=Path("/nonexistent")
    )
    local = Path(services.relocate(pools[3], mounts))
    assert local == PROJECT_ROOT / "include" / "egov_index" / "pools.json"
    assert set(json.loads(local.read_text())) == {"egov_service_portal", "egov_reporting_api"}
    # the UI password file the auth manager reads is written by init
    script = "\n".join(SERVICES["airflow-init"]["command"])
    assert env("airflow-init")["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] in script


def test_native_env_replaces_service_names_and_container_paths(tmp_path: Path):
    variables = {name: f"value-of-{name.lower()}" for name in REQUIRED_SECRETS}
    hosts = {
        "postgres": "127.0.0.1:15432",
        "redis": "127.0.0.1:16379",
        "airflow-apiserver": "127.0.0.1:18080",
        "source-server": "127.0.0.1:18000",
    }
    native = services.native_env(
        COMPOSE, "airflow-worker", variables, hosts=hosts, home=tmp_path / "home",
        named_volumes_root=tmp_path / "volumes", volume_overrides={"./inbox": tmp_path / "inbox"},
        base={"PATH": "/usr/bin", "AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "EGOV_DATA_ROOT": "/elsewhere"},
    )  # fmt: skip
    password = variables["POSTGRES_PASSWORD"]
    assert native["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert native["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"postgresql+psycopg2://airflow:{password}@127.0.0.1:15432/airflow"
    )
    assert (
        native["AIRFLOW__CELERY__RESULT_BACKEND"]
        == f"db+postgresql://airflow:{password}@127.0.0.1:15432/airflow"
    )
    assert native["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:16379/0"
    assert native["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert native["AIRFLOW__API__PORT"] == "18080"
    assert native["AIRFLOW__API_AUTH__JWT_SECRET"] == variables["AIRFLOW_JWT_SECRET"]
    assert native["AIRFLOW_HOME"] == str(tmp_path / "home")
    assert native["AIRFLOW__CORE__DAGS_FOLDER"] == str(PROJECT_ROOT / "dags")
    assert native["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(PROJECT_ROOT / "plugins")
    assert native["PYTHONPATH"] == str(PROJECT_ROOT / "include")
    assert native["EGOV_EXPECTATIONS_DIR"] == str(PROJECT_ROOT / "expectations")
    assert native["EGOV_DATA_ROOT"] == str(tmp_path / "volumes" / "egov-data")
    assert native["EGOV_INBOX_DIR"] == str(tmp_path / "inbox")
    assert native["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith(str(tmp_path / "volumes"))
    assert native["PATH"] == "/usr/bin"
    for name in ("AIRFLOW_CONN_EGOV_REPORTING_API", "AIRFLOW_CONN_EGOV_SERVICE_PORTAL"):
        conn = json.loads(native[name])
        assert (conn["host"], conn["port"], conn["password"]) == (
            "127.0.0.1",
            18000,
            variables["EGOV_SOURCE_TOKEN"],
        )
    assert not any(
        "/opt/airflow" in v for k, v in native.items() if k.startswith(("AIRFLOW", "EGOV", "PYTHON"))
    )


def test_rehost_touches_only_url_hosts():
    hosts = {"postgres": "127.0.0.1:1", "redis": "127.0.0.1:2"}
    assert services.rehost("postgresql://postgres:pw@postgres:5432/postgres", hosts) == (
        "postgresql://postgres:pw@127.0.0.1:1/postgres"
    )
    assert services.rehost("redis://:secret@redis/0", hosts) == "redis://:secret@127.0.0.1:2/0"
    assert services.rehost("postgres and redis", hosts) == "postgres and redis"
