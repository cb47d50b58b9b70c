"""`make bench`: every benchmark of the project, one after the other, and one JSON summary of all figures.

Runs each ``scripts/bench_*.py`` in its own process (so one's memory does not count in another's peak),
keeps each one's JSON object whole under ``benchmarks``, and lists every figure that has a target under
``targets`` with the benchmark it comes from, its measured value, its target and pass/fail:

* ``national``: a national year end to end through the bulk export (wall, peak RSS, per stage, rows/s)
  and the DuckDB baseline of the dossier indicators on the same Parquet files (scripts/bench_national.py);
* ``nightly``: one nightly run through ``airflow dags test``: a Wednesday whose batch holds about 40,000
  dossiers (the server's default profile), the quarter's 3,321 commune reports and eight inbox files
  (scripts/bench_nightly.py);
* ``gx``: Great Expectations on 1 M dossier rows (scripts/bench_gx.py);
* ``parse``: every DAG file's parse time against a trivial DAG file in the same ``airflow dags report``
  (scripts/bench_parse.py);
* ``ranking``: the ranking engine and its robustness run on the whole country (scripts/bench_ranking.py).

A benchmark that crashes is reported with its exit code and the tail of its output, and its figures fail.
``--only national,gx`` runs a subset. Progress on stderr, the summary on stdout; the exit code is 0 even
when a target is missed (the figures are the result; CI does not run this).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import log, machine, now_utc, target  # noqa: E402

SCRIPTS = Path(__file__).resolve().parent
BENCHMARKS: dict[str, list[str]] = {
    "national": ["bench_national.py"],
    "nightly": ["bench_nightly.py"],  # the default profile: a working day's batch holds ~40,000 dossiers
    "gx": ["bench_gx.py"],
    "parse": ["bench_parse.py"],
    "ranking": ["bench_ranking.py"],
}


def legacy_targets(name: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Targets of the benchmarks written before the common format (bench_gx, bench_ranking)."""
    if name == "gx" and "gx_s_per_million_rows" in result:
        return [target("gx_s_per_million_dossier_rows", result["gx_s_per_million_rows"], "s", 1.0)]
    if name == "ranking":
        found = []
        for methodology, figures in (result.get("methodologies") or {}).items():
            if isinstance(figures, dict) and "robustness_s" in figures:
                found.append(target(f"robustness_s[{methodology}]", figures["robustness_s"], "s", 60.0))
        return found
    return []


def run(name: str, argv: list[str]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, str(SCRIPTS / argv[0]), *argv[1:]], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    sys.stderr.write(completed.stderr[-4000:])
    try:
        result = json.loads(completed.stdout)
    except json.JSONDecodeError:
        result = {"error": f"exit code {completed.returncode}", "output_tail": (completed.stdout + completed.stderr)[-2000:]}
    if completed.returncode != 0:
        result.setdefault("error", f"exit code {completed.returncode}")
    return result, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated subset of " + ",".join(BENCHMARKS))
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    summary: dict[str, Any] = {"started_at": now_utc(), "machine": machine(), "benchmarks": {}, "targets": []}
    for name in names:
        log(f"== {name}: {' '.join(BENCHMARKS[name])}")
        result, elapsed = run(name, BENCHMARKS[name])
        result["bench_wall_s"] = round(elapsed, 1)
        summary["benchmarks"][name] = result
        figures = result.get("targets") or legacy_targets(name, result)
        if "error" in result and not figures:
            figures = [target(f"{name}_ran", None, "", 0, ">=")]
        summary["targets"] += [{"benchmark": name, **figure} for figure in figures]
    summary["passed"] = all(t["pass"] for t in summary["targets"])
    print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    log("targets:")
    for t in summary["targets"]:
        log(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['benchmark']}: {t['figure']} = {t['measured']} {t['unit']} (target {t['target']})")


if __name__ == "__main__":
    main()
