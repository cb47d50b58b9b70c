"""Wall time and peak memory of named stages (what ``make bench`` reports), and a no-op default.

Library functions that do heavy work accept an optional ``stage`` clock and wrap their steps in
``with stage("validate"): ...``; the benchmark passes a :class:`Stages` that adds up the wall time of
every entry of a name and keeps its peak resident memory. Peak RSS per stage comes from the kernel's
high-water mark (``VmHWM`` in ``/proc/self/status``), reset at the start of each stage by writing
``5`` to ``/proc/self/clear_refs``; where that is not possible (not Linux), the process's peak so far
(``ru_maxrss``) is reported and ``peak_rss_exact`` is false.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

StageClock = Callable[[str], AbstractContextManager[None]]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@contextmanager
def no_stages(name: str) -> Iterator[None]:  # noqa: ARG001 - the name is what a real clock records
    """The default clock: records nothing."""
    yield


def _high_water_mark_kib() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_high_water_mark() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (or since the last reset), in MiB."""
    kib = _high_water_mark_kib()
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024


@dataclass
class StageFigure:
    wall_s: float = 0.0
    peak_rss_mib: float = 0.0
    entries: int = 0


class Stages:
    """A stage clock that records wall time (summed over entries) and peak RSS (max) per stage name."""

    def __init__(self) -> None:
        self.figures: dict[str, StageFigure] = {}
        self.peak_rss_exact = True

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        figure = self.figures.setdefault(name, StageFigure())
        self.peak_rss_exact &= _reset_high_water_mark()
        started = time.perf_counter()
        try:
            yield
        finally:
            figure.wall_s += time.perf_counter() - started
            figure.peak_rss_mib = max(figure.peak_rss_mib, peak_rss_mib())
            figure.entries += 1
