"""Shared helpers of the bench scripts (``scripts/bench_*.py``): progress on stderr, target records and the
one JSON object on stdout, and running a child command while measuring its wall time, CPU time and peak RSS.

The scripts are run as ``python scripts/bench_x.py``, so the script directory is on ``sys.path`` and they
import this module as ``bench_common``. Standard library only (psutil is used when installed; it is, as a
dependency of Airflow).

A figure with a target is one record::

    {"figure": "nightly_wall_s", "measured": 41.2, "unit": "s", "target": "<= 30", "limit": 30, "pass": false}

and :func:`emit` adds ``"passed"`` (all targets pass) to the benchmark's object before printing it.
"""

from __future__ import annotations

import json
import operator
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:  # a dependency of Airflow, so present in .venv; optional here
    import psutil
except ImportError:  # pragma: no cover - only without Airflow's dependencies
    psutil = None

MB = 1024 * 1024

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}


def log(message: str) -> None:
    """Progress line on stderr (stdout carries only the JSON object)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def target(figure: str, measured: float | None, unit: str, limit: float, op: str = "<=") -> dict[str, Any]:
    """One figure with its target; ``measured`` None (not measured) never passes."""
    compare = _COMPARISONS[op]
    return {
        "figure": figure,
        "measured": measured,
        "unit": unit,
        "target": f"{op} {limit:g}",
        "limit": limit,
        "pass": measured is not None and bool(compare(measured, limit)),
    }


def emit(result: dict[str, Any]) -> None:
    """Print the benchmark's one JSON object on stdout, with ``passed`` = every target passes."""
    targets = result.get("targets", [])
    result = {**result, "passed": bool(targets) and all(t["pass"] for t in targets)}
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str), flush=True)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "processor": platform.machine(),
    }
    info["loadavg"] = load_average()
    # without bytecode (PYTHONDONTWRITEBYTECODE and no .pyc installed) every process compiles what it imports
    info["python_bytecode"] = {
        "PYTHONDONTWRITEBYTECODE": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "PYTHONPYCACHEPREFIX": os.environ.get("PYTHONPYCACHEPREFIX"),
    }
    if psutil is not None:
        info["memory_gb"] = round(psutil.virtual_memory().total / 1024**3, 1)
    return info


def load_average() -> list[float] | None:
    """1, 5 and 15 min load averages (other work on the machine skews timings; report it)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally``/``with`` blocks stop children and remove temp dirs."""

    def _handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _handler)


def clean_env(base: Mapping[str, str] | None = None, drop_prefixes: Iterable[str] = ()) -> dict[str, str]:
    """A copy of the environment without the variables whose names start with one of ``drop_prefixes``
    (a benchmark should not pick up the caller's Airflow or project settings)."""
    prefixes = tuple(drop_prefixes)
    source = os.environ if base is None else base
    return {k: v for k, v in source.items() if not (prefixes and k.startswith(prefixes))}


def _maxrss_bytes(ru_maxrss: int) -> int:
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024  # Linux: kilobytes


@dataclass
class Measured:
    """What :func:`run_measured` saw of one child command."""

    returncode: int
    wall_s: float
    started_epoch: float  # time.time() just before the child was started
    ended_epoch: float  # time.time() when it was reaped
    cpu_user_s: float  # the child and every descendant it waited for (getrusage semantics)
    cpu_system_s: float
    max_rss_bytes: int  # largest single process of the tree (kernel ru_maxrss: child + reaped descendants)
    tree_rss_peak_bytes: int | None  # largest sampled sum of RSS over the tree (psutil; None without it)
    tree_processes_max: int | None  # most processes seen at once in the tree
    samples: int
    load_before: list[float] | None = None  # load averages just before the start and after the reap
    load_after: list[float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 3),
            "cpu_user_s": round(self.cpu_user_s, 2),
            "cpu_system_s": round(self.cpu_system_s, 2),
            "peak_rss_mb_largest_process": round(self.max_rss_bytes / MB, 1),
            "peak_rss_mb_tree_sampled": (
                None if self.tree_rss_peak_bytes is None else round(self.tree_rss_peak_bytes / MB, 1)
            ),
            "tree_processes_max": self.tree_processes_max,
            "rss_samples": self.samples,
            "loadavg_before": self.load_before,
            "loadavg_after": self.load_after,
        }


def _tree_rss(root: Any) -> tuple[int, int]:
    """(sum of RSS, number of processes) of ``root`` and its descendants, skipping those that vanish."""
    total, count = 0, 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
            count += 1
        except psutil.Error:
            continue
    return total, count


def _kill_group(pgid: int) -> None:
    """SIGTERM then SIGKILL the process group we created for the child (leftover grandchildren too)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.5)


def run_measured(
    cmd: Sequence[str],
    env: Mapping[str, str],
    output: Path,
    cwd: Path | None = None,
    sample_interval_s: float = 0.1,
) -> Measured:
    """Run ``cmd`` (stdout and stderr to the file ``output``) and measure it.

    Wall time is from just before the start to the reap (``os.wait4``, which also gives the CPU time and the
    kernel's peak RSS of the largest process in the tree). With psutil, a thread samples the sum of RSS of
    the process tree every ``sample_interval_s`` (shared pages count once per process, so it is an upper
    bound of the memory the tree needed). The child gets its own process group; whatever of that group is
    still alive afterwards (or when the caller is interrupted) is terminated.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    peak = {"rss": 0, "procs": 0, "samples": 0}
    stop = threading.Event()
    load_before = load_average()
    with output.open("wb") as out:
        started_epoch = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    sampler = None
    if psutil is not None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            root = None

        def _sample() -> None:
            while root is not None:
                rss, count = _tree_rss(root)
                peak["samples"] += 1
                if rss > peak["rss"]:
                    peak["rss"] = rss
                peak["procs"] = max(peak["procs"], count)
                if stop.wait(sample_interval_s):
                    return

        sampler = threading.Thread(target=_sample, name="rss-sampler", daemon=True)
        sampler.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
        wall_s = time.perf_counter() - started
        ended_epoch = time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    finally:
        stop.set()
        if sampler is not None:
            sampler.join(timeout=5)
        _kill_group(proc.pid)  # interrupted: the child itself; else leftovers of its group, if any
        if proc.returncode is None:
            proc.wait(timeout=10)
    return Measured(
        returncode=proc.returncode,
        wall_s=wall_s,
        started_epoch=started_epoch,
        ended_epoch=ended_epoch,
        cpu_user_s=usage.ru_utime,
        cpu_system_s=usage.ru_stime,
        max_rss_bytes=_maxrss_bytes(usage.ru_maxrss),
        tree_rss_peak_bytes=peak["rss"] if psutil is not None else None,
        tree_processes_max=peak["procs"] if psutil is not None else None,
        samples=peak["samples"],
        load_before=load_before,
        load_after=load_average(),
    )


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(fn(), wall seconds)."""
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started
