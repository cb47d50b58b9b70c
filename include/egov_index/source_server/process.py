"""Start the reference source server as a subprocess (tests, demo runner)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from egov_index.source_server.__main__ import TOKEN_ENV
from egov_index.source_server.app import DEFAULT_DEFECT_RATE, DEFAULT_LEGACY_RATE
from egov_index.source_server.generator import DEFAULT_DOSSIERS_PER_DAY, DEFAULT_SEED

_POLL_INTERVAL_S = 0.05


def _ready_url(proc: subprocess.Popen[bytes], port_file: Path, log_file: Path, timeout: float) -> str:
    """Poll until the port file exists and /health answers; fail fast if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"source server exited with code {proc.returncode}:\n{log_file.read_text(errors='replace')[-4000:]}"
            )
        if port_file.exists():
            url = f"http://127.0.0.1:{int(port_file.read_text())}"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                    if response.status == 200:
                        return url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
        time.sleep(_POLL_INTERVAL_S)
    raise TimeoutError(f"source server not ready after {timeout:g} s; log: {log_file}")


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


@contextmanager
def running_server(
    tmp_dir: Path,
    token: str,
    seed: int = DEFAULT_SEED,
    dossiers_per_day: int = DEFAULT_DOSSIERS_PER_DAY,
    defect_rate: float = DEFAULT_DEFECT_RATE,
    legacy_rate: float = DEFAULT_LEGACY_RATE,
    startup_timeout: float = 60.0,
    chaos_rate: float = 0.0,
    chaos_seed: int = 0,
) -> Iterator[str]:
    """Run `python -m egov_index.source_server` on a free port; yield its base URL.

    The token goes through the environment (not argv); output goes to a log file in tmp_dir.
    ``chaos_rate`` > 0 switches on seeded random transient faults (see faults.py, chaos mode).
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    name = f"source-server-{uuid.uuid4().hex[:8]}"
    port_file, log_file = tmp_dir / f"{name}.port", tmp_dir / f"{name}.log"
    command = [
        sys.executable, "-m", "egov_index.source_server",
        "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file),
        "--seed", str(seed), "--dossiers-per-day", str(dossiers_per_day), "--defect-rate", str(defect_rate),
        "--legacy-rate", str(legacy_rate), "--chaos-rate", str(chaos_rate), "--chaos-seed", str(chaos_seed),
    ]  # fmt: skip
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, TOKEN_ENV: token}
        )
    try:
        yield _ready_url(proc, port_file, log_file, startup_timeout)
    finally:
        _stop(proc, timeout=10.0)
