"""Bulk backfill of dossiers: one export file per province and month instead of JSON pages.

A year of the whole country is about ten million dossiers; through the paged API that is ten
thousand pages a month. For backfills the portal's bulk export (``GET /api/v1/exports/dossiers``,
docs/sources.md) sends every dossier received in a month, as of a cut-off time, as one file per
province (Parquet by default; NDJSON and CSV are read as well):

1. :func:`pull_month` streams the month's files into ``<data_root>/raw/dossier_exports/`` (checked
   against the declared row count and digest, written atomically; a file already there is reused,
   so an interrupted backfill resumes where it stopped);
2. :func:`ingest_month` reads the month's files as one batch ``month-YYYY-MM`` and sends it through
   the same conform -> Great Expectations -> snapshot + quarantine path as the nightly run (one ledger
   entry, the accounting invariant), so a backfilled month equals the nightly runs of that month.

Memory is bounded by one month of the country (about 0.9 M dossiers), never by the year.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Iterable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from egov_index import pull
from egov_index.config import Settings
from egov_index.conform import conform_table
from egov_index.errors import MissingInputError
from egov_index.periods import LOCAL_TZ, local_day_window
from egov_index.stages import StageClock, no_stages
from egov_index.store import DataStore

log = logging.getLogger(__name__)

EXPORTS_DIR = "raw/dossier_exports"
AS_OF_STAMP = "%Y%m%dT%H%M%S%z"  # as_of=<stamp> directory names, in local time
META_SUFFIX = ".meta.json"  # beside each export file, written last: the file is complete
BATCH_PREFIX = "month-"


def month_batch(month: str) -> str:
    """The batch (ledger and quarantine partition) of a backfilled month: ``month-YYYY-MM``."""
    return f"{BATCH_PREFIX}{month}"


def months_of(first: str, last: str) -> list[str]:
    """``YYYY-MM`` months from ``first`` to ``last`` inclusive."""
    start, end = (datetime.strptime(m, "%Y-%m").date() for m in (first, last))
    if end < start:
        raise ValueError(f"last month {last} is before first month {first}")
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def month_window(month: str) -> tuple[datetime, datetime]:
    """The month's local (Asia/Ho_Chi_Minh) days as a half-open interval of instants."""
    first = datetime.strptime(month, "%Y-%m").date()
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return local_day_window(first).start, local_day_window(following).start


def export_dir(data_root: Path, month: str, as_of: datetime) -> Path:
    stamp = as_of.astimezone(LOCAL_TZ).strftime(AS_OF_STAMP)
    return Path(data_root) / EXPORTS_DIR / f"as_of={stamp}" / f"month={month}"


def pull_month(
    settings: Settings,
    endpoint: pull.SourceEndpoint,
    month: str,
    as_of: datetime,
    province_codes: Iterable[str],
    fmt: str = "parquet",
) -> list[pull.ExportFile]:
    """Download the month's export of every province (each file once: a complete file is reused)."""
    from egov_index.raw_archive import write_json_atomic

    directory = export_dir(settings.data_root, month, as_of)
    files = []
    for code in sorted(province_codes):
        kept = _complete_export(directory, code, fmt)
        if kept is None:
            kept = pull.fetch_dossier_export(endpoint, month, as_of, _export_path(directory, code, fmt), code, fmt)
            meta = {k: v for k, v in asdict(kept).items() if k != "path"}
            write_json_atomic(_meta_path(kept.path), meta)  # last: it marks the file complete
        else:
            os.utime(_meta_path(kept.path))  # reused: retention counts a set's age from its last use
        files.append(kept)
    log.info("%s: %d export files, %d dossiers", month, len(files), sum(f.rows for f in files))
    return files


def read_month(files: list[pull.ExportFile]) -> pa.Table:
    """The month's files as one table, provinces in code order (each file's own order kept)."""
    tables = [pull.read_export(f.path, f.format) for f in sorted(files, key=lambda f: str(f.province_code))]
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def ingest_month(
    store: DataStore,
    settings: Settings,
    month: str,
    files: list[pull.ExportFile],
    run_id: str = "manual",
    stage: StageClock | None = None,
) -> dict[str, Any]:
    """Validate and publish a backfilled month from its export files as one ledgered batch."""
    from egov_index.pipeline import BatchSummary, catalogue_on, ingest_conformed, ledgered
    from egov_index.raw_archive import payload_digest

    stage = stage or no_stages
    batch = month_batch(month)
    start, end = month_window(month)

    def work(band: dict[str, Any]) -> tuple[BatchSummary, str | None]:
        # band: the wide default one (validation_history.row_count_band: a month is not comparable with a day)
        with stage("read"):
            table = read_month(files)
        with stage("conform"):
            conformed = conform_table("dossiers", table, batch)
            last_day = (end - timedelta(seconds=1)).astimezone(LOCAL_TZ).date()
            parameters = {"procedure_codes": catalogue_on(store, last_day)["procedure_code"].astype(str).tolist(), **band}
        rows = table.num_rows
        del table
        summary = ingest_conformed(
            store, settings, "dossiers", conformed, batch, parameters, rows, run_id=run_id, stage=stage
        )
        return summary, payload_digest([f.sha256 for f in sorted(files, key=lambda f: str(f.province_code))])

    return ledgered(settings, "dossiers", batch, run_id, work, (start, end))


def backfill(
    store: DataStore,
    settings: Settings,
    endpoint: pull.SourceEndpoint,
    months: list[str],
    as_of: datetime,
    province_codes: Iterable[str],
    run_id: str = "manual",
    stage: StageClock | None = None,
    fmt: str = "parquet",
) -> list[dict[str, Any]]:
    """Pull and ingest ``months`` in order; the next month's files download while a month is ingested.

    Downloading waits on the source (another process) while ingesting works here, so the two overlap
    on two cores. ``stage("pull")`` times only the wait for a month's files that were not there yet.
    """
    from egov_index.pipeline import read_ahead

    stage = stage or no_stages
    codes = sorted(province_codes)
    downloads = read_ahead([partial(pull_month, settings, endpoint, m, as_of, codes, fmt) for m in months])
    summaries: list[dict[str, Any]] = []
    for month in months:
        with stage("pull"):
            files = next(downloads)
        summaries.append(ingest_month(store, settings, month, files, run_id=run_id, stage=stage))
        log.info("backfilled %s: %s", month, summaries[-1])
    return summaries


def downloaded(
    settings: Settings, month: str, as_of: datetime, province_codes: Iterable[str], fmt: str = "parquet"
) -> list[pull.ExportFile]:
    """The month's files a ``pull_month`` left (for a task that ingests what another task pulled)."""
    directory = export_dir(settings.data_root, month, as_of)
    files = []
    for code in sorted(province_codes):
        kept = _complete_export(directory, code, fmt)
        if kept is None:
            raise MissingInputError(
                f"{month}: no complete export of province {code} under {directory}; rerun the pull of this month"
            )
        files.append(kept)
    return files


def _export_path(directory: Path, province_code: str, fmt: str) -> Path:
    return directory / f"province={province_code}.{fmt}"


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + META_SUFFIX)


def complete_provinces(file_names: Collection[str]) -> set[str]:
    """The provinces whose export file is complete among a month folder's ``file_names``: its metadata,
    written last once the file is checked, beside it (``province=<code>.<format>`` + ``.meta.json``)."""
    names = set(file_names)
    return {
        stem.removeprefix("province=")
        for name in names
        for stem, _, fmt in [name.rpartition(".")]
        if stem.startswith("province=") and fmt in pull.EXPORT_FORMATS and name + META_SUFFIX in names
    }


def _complete_export(directory: Path, province_code: str, fmt: str) -> pull.ExportFile | None:
    """A province's export file already downloaded and checked (its metadata written last), else None."""
    path = _export_path(directory, province_code, fmt)
    if not (path.exists() and _meta_path(path).exists()):
        return None
    return pull.ExportFile(path=path, **json.loads(_meta_path(path).read_text()))


def plan(first_month: str, last_month: str, as_of: datetime | None, now: datetime) -> dict[str, Any]:
    """What a backfill run covers: months, the quarters whose reports to pull, the catalogue day, as_of.

    ``as_of`` defaults to ``now``; months that start after it are refused (nothing received yet).
    """
    months = months_of(first_month, last_month)
    cut = as_of or now
    if cut.tzinfo is None:
        raise ValueError("as_of must be timezone-aware, e.g. 2027-01-01T00:00:00+07:00")
    if month_window(months[-1])[0] >= cut:
        raise ValueError(f"{months[-1]} starts after as_of {cut.isoformat()}: nothing to backfill in it")
    quarters = sorted({f"{m[:4]}-Q{(int(m[5:]) - 1) // 3 + 1}" for m in months})
    last_day = min(month_window(months[-1])[1], cut).astimezone(LOCAL_TZ).date()
    if month_window(months[-1])[1] <= cut:
        last_day = date.fromordinal(last_day.toordinal() - 1)
    return {"months": months, "quarters": quarters, "catalogue_day": last_day.isoformat(), "as_of": cut.isoformat()}
