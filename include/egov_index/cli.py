"""Command line of the embedded deployment: ``python -m egov_index.cli {sample-run,standalone,report}``.

- ``sample-run``: what ``make run`` does: migrate the local Airflow home, start the
  reference source server on a free loopback port, run the nightly ingest for a
  fixed sample day and the ranking of its quarter through ``airflow dags test``,
  stop the server and print where the outputs are, the data-quality summary and
  the province ranking.
- ``standalone``: what ``make up`` does: the same home under ``airflow standalone``,
  with the reference server running so the DAGs can be triggered from the UI.
- ``report``: print the data-quality summary and ranking already under the data root.
- ``replay``: rebuild the snapshots of one or more days offline, from the raw archive alone.
- ``import-ranking``: import a ministry-published provincial ranking table (CSV) as a rank baseline
  (docs/published-rankings.md) and print the import report.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path

from egov_index.config import PROJECT_ROOT
from egov_index.local_airflow import airflow_bin, airflow_env, dags_test, migrate, source_connections
from egov_index.periods import LOCAL_TZ, quarter_of

SAMPLE_DAY = date(2026, 9, 30)
DEFAULT_HOME = PROJECT_ROOT / ".airflow"
DEFAULT_DATA = PROJECT_ROOT / "data"


def nightly_logical_date(day: date) -> str:
    """The logical date of the nightly run that ingests ``day`` (01:30 local the next morning)."""
    return datetime.combine(day + timedelta(days=1), time(1, 30), tzinfo=LOCAL_TZ).isoformat()


SAMPLE_FILE_STYLES = ("xlsx-table", "xlsx-form", "csv-utf8-bom-semicolon", "csv-cp1258-semicolon")


def run_sample(home: Path, data_root: Path, day: date, dossiers_per_day: int, seed: int) -> None:
    from egov_index.registry import current_units
    from egov_index.source_server.files import write_report_files
    from egov_index.source_server.process import running_server

    env = airflow_env(home, data_root)
    print(f"[1/4] Airflow metadata DB: {home / 'airflow.db'} (airflow db migrate)", flush=True)
    migrate(env)
    inbox = Path(env["EGOV_INBOX_DIR"])
    communes = current_units().communes_of("52")["commune_code"].tolist()[:8]
    files = write_report_files(inbox, quarter_of(day), seed=seed, communes=communes, styles=SAMPLE_FILE_STYLES)
    print(f"      {len(files)} sample report files (Excel/CSV) delivered to {inbox}", flush=True)
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="egov-source-") as tmp:
        with running_server(Path(tmp), token=token, seed=seed, dossiers_per_day=dossiers_per_day) as url:
            print(f"[2/4] Reference source server on {url}", flush=True)
            env.update(source_connections(url, token))
            print(f"[3/4] airflow dags test egov_nightly_ingest (day {day})", flush=True)
            dags_test(env, "egov_nightly_ingest", nightly_logical_date(day))
            period = quarter_of(day)
            print(f"[4/4] airflow dags test egov_ranking (period {period})", flush=True)
            dags_test(env, "egov_ranking", conf={"period": period})
    print(report_text(data_root, period))


def report_text(data_root: Path, period: str) -> str:
    from egov_index.report import render_report

    return render_report(data_root, period)


def standalone(home: Path, data_root: Path, seed: int, dossiers_per_day: int) -> int:
    from egov_index.source_server.process import running_server

    env = airflow_env(home, data_root)
    migrate(env)
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="egov-source-") as tmp:
        with running_server(Path(tmp), token=token, seed=seed, dossiers_per_day=dossiers_per_day) as url:
            env.update(source_connections(url, token))
            port = env.get("AIRFLOW__API__PORT", "8080")
            print(
                f"Airflow UI: http://localhost:{port}  (user 'admin'; password in "
                f"{home / 'simple_auth_manager_passwords.json.generated'})\n"
                f"Reference source server: {url}. Ctrl-C stops both.",
                flush=True,
            )
            try:
                return subprocess.call([airflow_bin(), "standalone"], env=env)
            except KeyboardInterrupt:
                return 0


def replay_days(source_root: Path, data_root: Path, first: date, last: date) -> list[dict]:
    """Replay the archived API batches of every day in [first, last] into ``data_root``, in order,
    then every archived inbox file in arrival order."""
    import dataclasses

    from egov_index.config import Settings
    from egov_index.pipeline import replay
    from egov_index.store import DataStore

    settings = dataclasses.replace(Settings.from_env(), data_root=data_root)
    store = DataStore(data_root)
    summaries = []
    day = first
    while day <= last:
        for dataset, batch in (
            ("procedures", day.isoformat()),
            ("dossiers", day.isoformat()),
            ("commune_reports", quarter_of(day)),
        ):
            summaries.append(replay(source_root, store, settings, dataset, batch))
        day += timedelta(days=1)
    from egov_index.pipeline import replay_files

    return summaries + replay_files(source_root, store, settings)


def import_ranking(path: Path, data_root: Path, year: str | None, source: str | None) -> int:
    """Import a published ranking table into ``data_root``; print the report, or the error (exit 1)."""
    from egov_index.published_rankings import PublishedRankingError, import_published_ranking
    from egov_index.store import DataStore

    try:
        result = import_published_ranking(DataStore(data_root), path, year=year, source=source)
    except PublishedRankingError as exc:
        print(f"import-ranking: {exc}", file=sys.stderr)
        return 1
    print(result.report_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="egov_index.cli", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("AIRFLOW_HOME", DEFAULT_HOME)))
    parser.add_argument(
        "--data-root", type=Path, default=Path(os.environ.get("EGOV_DATA_ROOT", DEFAULT_DATA))
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample-run", help="run the nightly pipeline for a sample day through Airflow")
    sample.add_argument("--day", type=date.fromisoformat, default=SAMPLE_DAY)
    sample.add_argument("--dossiers-per-day", type=int, default=20_000)
    sample.add_argument("--seed", type=int, default=2026)
    up = sub.add_parser(
        "standalone", help="airflow standalone on the project home, with the reference server"
    )
    up.add_argument("--dossiers-per-day", type=int, default=20_000)
    up.add_argument("--seed", type=int, default=2026)
    rep = sub.add_parser("report", help="print the data-quality summary and ranking of a period")
    rep.add_argument("--period", default=quarter_of(SAMPLE_DAY))
    rp = sub.add_parser("replay", help="rebuild snapshots offline from the raw archive")
    rp.add_argument("--source-root", type=Path, required=True, help="data root whose raw/ archive to replay")
    rp.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    rp.add_argument("--to", dest="last", type=date.fromisoformat)
    imp = sub.add_parser(
        "import-ranking", help="import a published provincial ranking table (CSV) as a baseline"
    )
    imp.add_argument("path", type=Path, help="the CSV file, as the ministry prints the table")
    imp.add_argument("--year", help="the table's year, when the file has no year column")
    imp.add_argument("--source", help="where the table comes from (default: the file name)")
    imp.add_argument(
        "--data-root",
        dest="import_data_root",
        type=Path,
        help="data root to store it under (default: the global --data-root, i.e. EGOV_DATA_ROOT or ./data)",
    )
    args = parser.parse_args(argv)
    home, data_root = args.home.resolve(), args.data_root.resolve()
    if args.command == "sample-run":
        run_sample(home, data_root, args.day, args.dossiers_per_day, args.seed)
        return 0
    if args.command == "standalone":
        return standalone(home, data_root, args.seed, args.dossiers_per_day)
    if args.command == "import-ranking":
        root = args.import_data_root.resolve() if args.import_data_root else data_root
        return import_ranking(args.path, root, args.year, args.source)
    if args.command == "replay":
        for summary in replay_days(
            args.source_root.resolve(), data_root, args.first, args.last or args.first
        ):
            print(summary)
        return 0
    print(report_text(data_root, args.period))
    return 0


if __name__ == "__main__":
    sys.exit(main())
