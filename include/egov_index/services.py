"""The docker-compose deployment, read as data: its Airflow environment, commands and init steps.

``docker-compose.yml`` is the one description of the distributed deployment (PostgreSQL, Redis,
CeleryExecutor, api-server, scheduler, dag-processor, triggerer, workers). This module turns it into
what a *native* run of the same deployment needs -- the same environment with the compose service
names (``postgres``, ``redis``, ``airflow-apiserver``, ``source-server``) replaced by host:port pairs
and the container paths (``/opt/airflow/...``) replaced by the directories mounted there -- so the
integration test (tests/test_distributed.py) starts the processes with the compose configuration
itself, not with a copy of it that could drift.

Light imports only: ``worker_hostname`` is Airflow's ``[core] hostname_callable`` in that test and is
imported by every Airflow process.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from egov_index.config import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"

# The Airflow services of the compose file (each runs the project image with one `airflow` command).
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
# What the official Airflow image sets (not written in the compose file): its AIRFLOW_HOME and the
# folders Airflow derives from it. The compose volumes mount the project's folders there.
IMAGE_HOME = "/opt/airflow"
IMAGE_DEFAULTS = {
    "AIRFLOW_HOME": IMAGE_HOME,
    "AIRFLOW__CORE__DAGS_FOLDER": f"{IMAGE_HOME}/dags",
    "AIRFLOW__CORE__PLUGINS_FOLDER": f"{IMAGE_HOME}/plugins",
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": f"{IMAGE_HOME}/logs",
}
# The container port each service listens on when a URL does not name one.
DEFAULT_PORTS = {"postgres": 5432, "redis": 6379, "airflow-apiserver": 8080, "source-server": 8000}

WORKER_NAME_ENV = "EGOV_WORKER_NAME"


def worker_hostname() -> str:
    """``[core] hostname_callable`` that lets several workers on one machine report distinct names.

    ``EGOV_WORKER_NAME`` if set, else the fully qualified host name (Airflow's default). In compose each
    worker container has its own host name, so the default callable is kept there.
    """
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())  # safe_load resolves the `<<: *anchor` merge keys


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(KeyError):
    """A ``${VAR:?message}`` of the compose file has no value (compose refuses to start too)."""


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's variable interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        present = name in variables
        current = variables.get(name, "")
        if op in (":-", "-"):
            unset = not current if op == ":-" else not present
            return arg if unset else current
        if op in (":?", "?"):
            unset = not current if op == ":?" else not present
            if unset:
                raise MissingVariable(f"{name}: {arg or 'required variable is missing'}")
            return current
        return current

    return _VARIABLE.sub(replace, value)


def required_variables(compose: Mapping[str, Any]) -> dict[str, str]:
    """Every ``${VAR:?message}`` of the compose file: ``{VAR: message}``."""
    text = json.dumps(compose)
    return {m["braced"]: m["arg"] for m in _VARIABLE.finditer(text) if m["op"] in (":?", "?")}


def env_file_names(path: Path = ENV_EXAMPLE) -> list[str]:
    """The variable names an env file (``.env.example``) sets, in order."""
    names = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            names.append(line.split("=", 1)[0].removeprefix("export ").strip())
    return names


def service_environment(compose: Mapping[str, Any], service: str) -> dict[str, str]:
    """A service's ``environment`` as strings, not interpolated (list or mapping form)."""
    raw = compose["services"][service].get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(k): _as_env_string(v) for k, v in raw.items()}


def _as_env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def service_command(compose: Mapping[str, Any], service: str) -> list[str]:
    """The ``airflow ...`` command line a service runs (the image's entrypoint runs ``airflow <command>``)."""
    spec = compose["services"][service]
    command = spec.get("command") or []
    args = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    if spec.get("entrypoint") not in (None, []) or (args and args[0] == "airflow"):
        return args
    return ["airflow", *args]


def init_airflow_commands(compose: Mapping[str, Any], service: str = "airflow-init") -> list[list[str]]:
    """The ``airflow ...`` lines of the init service's script (``bash -c``), e.g. migrate, pools import."""
    command = compose["services"][service].get("command") or []
    script = command if isinstance(command, str) else "\n".join(str(c) for c in command)
    lines = []
    for line in script.splitlines():
        line = line.strip()
        if line.startswith("airflow "):
            lines.append(shlex.split(interpolate(line, {})))
    return lines


def volume_mounts(compose: Mapping[str, Any], service: str) -> list[tuple[str, str]]:
    """``(source, container_path)`` for each volume of a service (short syntax ``src:dst[:mode]``)."""
    mounts = []
    for volume in compose["services"][service].get("volumes") or []:
        if isinstance(volume, Mapping):
            mounts.append((str(volume["source"]), str(volume["target"])))
        else:
            source, target = str(volume).split(":")[:2]
            mounts.append((source, target))
    return mounts


def local_mounts(
    compose: Mapping[str, Any],
    service: str,
    *,
    project_root: Path,
    named_volumes_root: Path,
    overrides: Mapping[str, Path] | None = None,
) -> dict[str, Path]:
    """Container path -> local directory: bind mounts resolve against the project root, named volumes
    become directories under ``named_volumes_root``; ``overrides`` (keyed by the compose source,
    e.g. ``"./inbox"`` or ``"egov-data"``) redirect either kind."""
    overrides = overrides or {}
    result: dict[str, Path] = {}
    for source, target in volume_mounts(compose, service):
        if source in overrides:
            local = Path(overrides[source])
        elif source.startswith((".", "/", "~")):
            local = (project_root / source).resolve()
        else:
            local = named_volumes_root / source
        result[target] = local
    return result


def rehost(value: str, hosts: Mapping[str, str]) -> str:
    """Replace compose service names in URLs (``scheme://[user[:pw]@]service[:port]/...``) and in
    JSON connections (``{"host": service, "port": ...}``) by the ``host:port`` given for them."""
    stripped = value.strip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except json.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and doc.get("host") in hosts:
            host, _, port = hosts[doc["host"]].rpartition(":")
            return json.dumps({**doc, "host": host, "port": int(port)})
    for service, address in hosts.items():
        pattern = rf"(?P<pre>://(?:[^/@\s]*@)?){re.escape(service)}(?::\d+)?(?=[/?#\s'\"]|$)"
        value = re.sub(pattern, lambda m, a=address: m["pre"] + a, value)
    return value


def relocate(value: str, mounts: Mapping[str, Path]) -> str:
    """Replace container paths (longest first) by their local directories, in paths and path lists."""
    for target in sorted(mounts, key=len, reverse=True):
        pattern = rf"(?<![^\s:=,;]){re.escape(target)}(?=[/\s:,;]|$)"
        value = re.sub(pattern, lambda _m, t=target: str(mounts[t]), value)
    return value


def native_env(
    compose: Mapping[str, Any],
    service: str,
    variables: Mapping[str, str],
    *,
    hosts: Mapping[str, str],
    home: Path,
    project_root: Path = PROJECT_ROOT,
    named_volumes_root: Path,
    volume_overrides: Mapping[str, Path] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a compose service for a process started natively on this machine.

    ``variables`` are the ``.env`` values; ``hosts`` maps compose service names to ``host:port``.
    Everything else is taken from the compose file (the service's ``environment``, which for the
    Airflow services is the shared ``x-airflow-common`` one) and the image defaults, with container
    paths relocated to the local directories mounted there and ``AIRFLOW_HOME`` = ``home``.
    The base environment is stripped of every ``AIRFLOW*`` / ``EGOV_*`` variable first.
    """
    base_env = dict(os.environ if base is None else base)
    env = {k: v for k, v in base_env.items() if not k.startswith(("AIRFLOW", "EGOV_", "_AIRFLOW"))}
    mounts = {
        IMAGE_HOME: home,
        **local_mounts(
            compose,
            service,
            project_root=project_root,
            named_volumes_root=named_volumes_root,
            overrides=volume_overrides,
        ),
    }
    declared = {**IMAGE_DEFAULTS, **service_environment(compose, service)}
    for name, raw in declared.items():
        value = interpolate(raw, variables)
        env[name] = relocate(rehost(value, hosts), mounts)
    env["AIRFLOW_HOME"] = str(home)
    api = hosts.get("airflow-apiserver")
    if api:  # the api-server listens where the other components are told to find it
        host, _, port = api.rpartition(":")
        env.setdefault("AIRFLOW__API__HOST", host)
        env["AIRFLOW__API__PORT"] = port
    return env
