"""Benchmark: one nightly run through ``airflow dags test`` (a figure, not a test; issue 8 asks one day,
about 40 k dossiers plus the commune reports, in <= 30 s wall).

Prepares everything the way ``make run`` (``egov_index.cli sample-run``) does, but in a temporary directory
(Airflow home, data root, inbox; never the project's ``./.airflow``, ``./data`` or ``./inbox``):
``airflow db migrate`` and the pools, the reference source server on a free loopback port with a random
token (Connections through ``AIRFLOW_CONN_*``), the eight sample report files in the inbox (unless
``--no-inbox-files``). Then it times only ``airflow dags test egov_nightly_ingest <logical date>``, the first
and only run on a fresh home and data root (no warm-up: a nightly run meets cold caches too), and prints one
JSON object:

* ``setup``: what was not timed (migrate + pools, sample files, server start with its data generation);
* ``dags_test``: wall time, CPU time and peak RSS of the ``dags test`` process tree (kernel peak of the largest
  process from ``os.wait4``, and the sampled sum over the tree with psutil);
* ``rows``: rows pulled per dataset (= snapshot + quarantine, from the batches' accounting manifests, as
  ``make report`` prints them) and rows per second of wall time;
* ``timeline`` and ``tasks``: where the time goes, from the ``[DAG TEST] starting/end task`` lines of the log:
  process start to the first task (CLI imports, DAG parsing, DB), in tasks, between tasks, after the last
  task; per task id (mapped tasks grouped: count, sum, max, median) and the slowest task instances.

The environment of the Airflow commands is the embedded deployment's (``egov_index.local_airflow``) built
from the caller's environment without its ``AIRFLOW_*`` / ``EGOV_*`` variables, with ``TMPDIR`` inside the
temporary directory, which is removed afterwards with everything in it (``--keep`` keeps it and prints
its path); the server and any leftover process of the ``dags test`` process group are stopped.

    python scripts/bench_nightly.py [--day 2026-09-30] [--dossiers-per-day N] [--seed 2026] [--no-inbox-files]
                                    [--keep]
"""

from __future__ import annotations

import argparse
import ast
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (  # noqa: E402  (script directory first, then the helpers)
    clean_env,
    emit,
    exit_on_sigterm,
    log,
    machine,
    now_utc,
    psutil,
    rounded,
    run_measured,
    target,
    timed,
)

from egov_index.cli import SAMPLE_DAY, SAMPLE_FILE_STYLES, nightly_logical_date  # noqa: E402
from egov_index.local_airflow import airflow_bin, airflow_env, migrate, source_connections  # noqa: E402
from egov_index.periods import quarter_of  # noqa: E402
from egov_index.source_server.generator import DEFAULT_DOSSIERS_PER_DAY  # noqa: E402

DAG_ID = "egov_nightly_ingest"
TARGET_WALL_S = 30.0
SLOWEST_INSTANCES = 8
TASK_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT[\d:.]+Z) .*?\[DAG TEST\] (?P<kind>starting|end task) "
    r"task_id=(?P<task_id>\S+) map_index=(?P<map_index>-?\d+)"
)
TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+Z) ")
GX_LINE = re.compile(
    r"data quality (?P<dataset>[^/\s]+)/\S+: (?P<rows>\d+) rows in, .*?; GX (?P<gx>[\d.]+) s"
)
RESULT_LINE = re.compile(r"Done\. Returned value was: (\{.*'rows_pulled'.*\})")


def _epoch(line: str) -> float | None:
    match = TIMESTAMP.match(line)
    return datetime.fromisoformat(match[1]).timestamp() if match else None


def parse_task_spans(log_text: str) -> list[dict[str, Any]]:
    """Every task instance of the run, in the order they started: start/end (epoch s), duration ``s`` and
    ``execute_s``, the part inside the operator's execute (from the end of the task runner's start-up group
    to its "Post Execute" group; the rest is Airflow's per-task work: state updates, rendering, XCom).

    ``dags test`` runs one task instance at a time, so the lines between an instance's ``starting`` and
    ``end task`` lines are its own."""
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in log_text.splitlines():
        match = TASK_LINE.match(line)
        if match:
            ts = datetime.fromisoformat(match["ts"]).timestamp()
            key = (match["task_id"], int(match["map_index"]))
            if match["kind"] == "starting":
                current = {"task_id": key[0], "map_index": key[1], "start": ts, "end": None, "s": None,
                           "execute_start": None, "execute_end": None}  # fmt: skip
                spans.append(current)
            elif current is not None and (current["task_id"], current["map_index"]) == key:
                current["end"], current["s"] = ts, ts - current["start"]
                current = None
            continue
        if current is None:
            continue
        if current["execute_start"] is None and "::endgroup::" in line:
            current["execute_start"] = _epoch(line)
        elif current["execute_end"] is None and "::group::Post Execute" in line:
            current["execute_end"] = _epoch(line)
    for span in spans:
        begin, finish = span.pop("execute_start"), span.pop("execute_end")
        span["execute_s"] = finish - begin if begin is not None and finish is not None else None
    return spans


def gx_seconds(log_text: str) -> dict[str, Any]:
    """GX time per dataset from the quality gate's log lines (``data quality d/p: ... GX 0.42 s``)."""
    per: dict[str, dict[str, float]] = defaultdict(lambda: {"batches": 0, "rows_in": 0, "gx_s": 0.0})
    for match in GX_LINE.finditer(log_text):
        entry = per[match["dataset"]]
        entry["batches"] += 1
        entry["rows_in"] += int(match["rows"])
        entry["gx_s"] += float(match["gx"])
    return {k: {**v, "gx_s": round(v["gx_s"], 2)} for k, v in sorted(per.items())}


def task_breakdown(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per task id, in order of first start: instances, sum / max / median of their durations (s), the
    part in execute and Airflow's per-task overhead (sum - execute)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        groups[span["task_id"]].append(span)
    total = sum(s["s"] for s in spans if s["s"] is not None) or 1.0
    rows = []
    for task_id, instances in groups.items():
        done = [i["s"] for i in instances if i["s"] is not None]
        executes = [i["execute_s"] for i in instances if i["s"] is not None and i["execute_s"] is not None]
        row: dict[str, Any] = {
            "task_id": task_id,
            "instances": len(instances),
            "sum_s": round(sum(done), 3),
            "share_of_task_time": round(sum(done) / total, 3),
            "max_s": round(max(done), 3) if done else None,
            "median_s": round(statistics.median(done), 3) if done else None,
            "execute_sum_s": round(sum(executes), 3) if executes else None,
            "airflow_overhead_sum_s": round(sum(done) - sum(executes), 3) if executes else None,
        }
        if len(done) < len(instances):
            row["unfinished"] = len(instances) - len(done)
        rows.append(row)
    return rows


def timeline(spans: list[dict[str, Any]], started_epoch: float, ended_epoch: float) -> dict[str, Any]:
    finished = [s for s in spans if s["end"] is not None]
    if not finished:
        return {"tasks_seen": len(spans)}
    first_start = min(s["start"] for s in spans)
    last_end = max(s["end"] for s in finished)
    in_tasks = sum(s["s"] for s in finished)
    executes = [s["execute_s"] for s in finished if s["execute_s"] is not None]
    return {
        "process_start_to_first_task_s": round(first_start - started_epoch, 3),
        "in_tasks_s": round(in_tasks, 3),
        "in_tasks_execute_s": round(sum(executes), 3),
        "in_tasks_airflow_overhead_s": round(in_tasks - sum(executes), 3),
        "between_tasks_s": round(last_end - first_start - in_tasks, 3),
        "after_last_task_s": round(ended_epoch - last_end, 3),
        "task_instances": len(spans),
        "note": "dags test runs the task instances one at a time in its own process (no executor); "
        "the first task instance also pays the start of Airflow's in-process execution API",
    }


def rows_pulled(data_root: Path) -> dict[str, Any]:
    """Rows pulled / snapshot / quarantined per dataset and source, from the batches' accounting."""
    from egov_index.report import accounting_rows
    from egov_index.store import DataStore

    acc = accounting_rows(DataStore(data_root))
    if acc.empty:
        return {"per_dataset": {}, "total_rows_pulled": 0, "batches": 0}
    acc["source"] = acc["partition"].map(lambda p: "inbox_files" if str(p).startswith("file-") else "api")
    columns = ["rows_pulled", "rows_snapshot", "rows_quarantined"]
    per_dataset: dict[str, Any] = {}
    for (dataset, source), group in acc.groupby(["dataset", "source"], sort=True):
        sums = {c: int(group[c].sum()) for c in columns}
        per_dataset[f"{dataset}" if source == "api" else f"{dataset} ({source})"] = {"batches": len(group), **sums}
    return {"per_dataset": per_dataset, "total_rows_pulled": int(acc["rows_pulled"].sum()), "batches": len(acc)}


def accounting_from_log(log_text: str) -> dict[str, Any] | None:
    """The totals check_accounting returned (the run's own count), to cross-check the manifests."""
    for line in reversed(log_text.splitlines()):
        match = RESULT_LINE.search(line)
        if match:
            try:
                return ast.literal_eval(match.group(1))
            except (ValueError, SyntaxError):
                return None
    return None


def _server_process() -> Any:
    """The reference server: at that point our only child process (for its CPU time during the run)."""
    if psutil is None:
        return None
    children = psutil.Process().children()
    return children[0] if len(children) == 1 else None


def _cpu_s(proc: Any) -> float | None:
    if proc is None:
        return None
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from egov_index.registry import current_units
    from egov_index.source_server.files import write_report_files
    from egov_index.source_server.process import running_server

    home, data_root, inbox, tmp = work / "airflow", work / "data", work / "inbox", work / "tmp"
    tmp.mkdir(parents=True)
    base = clean_env(drop_prefixes=("AIRFLOW_", "AIRFLOW__", "EGOV_"))
    base["TMPDIR"] = str(tmp)
    env = airflow_env(home, data_root, base=base, inbox_dir=inbox)
    env["EGOV_SQL_URL"] = f"sqlite:///{data_root / 'egov-index.sqlite'}"
    env["EGOV_DEADLINES"] = "off"  # as local_airflow.dags_test: 3.3.2's dags test crashes on deadlines
    logical_date = nightly_logical_date(args.day)
    if args.day.weekday() >= 5:
        log(f"warning: {args.day} is a {args.day.strftime('%A')}; the target is about a weekday")
    setup: dict[str, Any] = {}

    log(f"work dir {work}; airflow db migrate + pools")
    _, setup["migrate_s"] = timed(lambda: migrate(env))
    if args.inbox_files:
        communes = current_units().communes_of("52")["commune_code"].tolist()[:8]
        files, setup["inbox_files_s"] = timed(
            lambda: write_report_files(
                inbox, quarter_of(args.day), seed=args.seed, communes=communes, styles=SAMPLE_FILE_STYLES
            )
        )
        setup["inbox_files"] = len(files)
        log(f"{len(files)} sample report files in the inbox")
    else:
        inbox.mkdir(parents=True)
        setup["inbox_files"] = 0
    token = secrets.token_urlsafe(24)
    started = time.perf_counter()
    with running_server(
        work / "server", token=token, seed=args.seed, dossiers_per_day=args.dossiers_per_day
    ) as url:
        setup["server_start_s"] = time.perf_counter() - started
        env.update(source_connections(url, token))
        server = _server_process()
        server_cpu_before = _cpu_s(server)
        log(f"reference server on {url} ({args.dossiers_per_day} dossiers/day); timing airflow dags test "
            f"{DAG_ID} {logical_date}")
        log_file = work / "dags-test.log"
        measured = run_measured([airflow_bin(), "dags", "test", DAG_ID, logical_date], env, log_file)
        server_cpu_after = _cpu_s(server)
    log_text = log_file.read_text(errors="replace")
    failed = measured.returncode != 0 or "state=failed" in log_text
    log(f"dags test {'FAILED' if failed else 'succeeded'} in {measured.wall_s:.1f} s")

    spans = parse_task_spans(log_text)
    rows = rows_pulled(data_root)
    total_rows = rows["total_rows_pulled"]
    slowest = sorted((s for s in spans if s["s"] is not None), key=lambda s: s["s"], reverse=True)
    result: dict[str, Any] = {
        "benchmark": "nightly",
        "dag_id": DAG_ID,
        "day": args.day.isoformat(),
        "weekday": args.day.strftime("%A"),
        "logical_date": logical_date,
        "dossiers_per_day": args.dossiers_per_day,
        "seed": args.seed,
        "run_state": "failed" if failed else "success",
        "setup": {k: rounded(v) if isinstance(v, float) else v for k, v in setup.items()},
        "dags_test": {
            **measured.as_dict(),
            "returncode": measured.returncode,
            "note": "one mostly single-threaded process runs every task (no executor): a wall time far above "
            "its CPU time means waiting (I/O, the server) or a busy machine (see loadavg_*)",
            "server_cpu_s_during_run": (
                None if server_cpu_before is None or server_cpu_after is None
                else round(server_cpu_after - server_cpu_before, 2)
            ),
        },
        "rows": {
            **rows,
            "rows_per_s": round(total_rows / measured.wall_s) if measured.wall_s else None,
            "check_accounting": accounting_from_log(log_text),
        },
        "timeline": timeline(spans, measured.started_epoch, measured.ended_epoch),
        "gx_per_dataset": gx_seconds(log_text),
        "tasks": task_breakdown(spans),
        "slowest_task_instances": [
            {"task_id": s["task_id"], "map_index": s["map_index"], "s": round(s["s"], 3),
             "execute_s": rounded(s["execute_s"])}  # fmt: skip
            for s in slowest[:SLOWEST_INSTANCES]
        ],
        "targets": [target("nightly_dags_test_wall_s", round(measured.wall_s, 2), "s", TARGET_WALL_S)],
        "machine": machine(),
        "measured_at": now_utc(),
    }
    if failed:
        result["log_tail"] = log_text.splitlines()[-40:]
        result["targets"][0]["pass"] = False  # a failed run is not a fast run
    if args.keep:
        result["work_dir"] = str(work)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", type=date.fromisoformat, default=SAMPLE_DAY, help="local day the run ingests")
    parser.add_argument(
        "--dossiers-per-day",
        type=int,
        default=DEFAULT_DOSSIERS_PER_DAY,
        help=f"passed to the reference server (default: its default, {DEFAULT_DOSSIERS_PER_DAY})",
    )
    parser.add_argument("--seed", type=int, default=2026, help="seed of the server and sample files (as make run)")
    parser.add_argument("--no-inbox-files", dest="inbox_files", action="store_false")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (path in the JSON)")
    args = parser.parse_args()
    exit_on_sigterm()

    work = Path(tempfile.mkdtemp(prefix="egov-bench-nightly-"))
    try:
        result = bench(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    emit(result)
    return 0 if result["run_state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
