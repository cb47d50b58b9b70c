"""The pipeline's stages as plain functions: what each Airflow task calls.

Nothing here imports Airflow; the DAGs pass in plain values (endpoints, days,
periods, settings). Each ingest stage goes pull -> conform -> validate (GX) ->
publish snapshot + quarantine + validation results, and checks the accounting
invariant: rows pulled = rows in snapshot + rows in quarantine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from egov_index import __version__, pull, schemas
from egov_index.config import Settings
from egov_index.conform import Conformed, conform, quarantine_rows
from egov_index.errors import AccountingError, InboxFilesFailed, MissingInputError
from egov_index.header_mapping import UNIT_FIELDS
from egov_index.periods import (
    LOCAL_TZ,
    local_day_window,
    parse_period,
    previous_period,
    quarters_of,
    year_ago_period,
)
from egov_index.rank_changes import Baseline
from egov_index.registry import current_units
from egov_index.stages import StageClock, no_stages
from egov_index.store import DataStore, to_table, versioned

if TYPE_CHECKING:
    from egov_index.ranking import DossierTally

log = logging.getLogger(__name__)
T = TypeVar("T")

SNAPSHOT_DATASETS: dict[str, str] = {
    "commune_reports": "snapshots/commune_reports",
    "dossiers": "snapshots/dossiers",
    "procedures": "snapshots/procedures",
}
QUARANTINE = "quarantine"
VALIDATION_RESULTS = "quality/validation_results"
# Snapshot merge: within a partition one row per merge key, the latest version column winning
# (one report per commune per period, whichever channel it came through; one row per dossier).
# Procedures are a full daily copy (no merge).
SNAPSHOT_MERGE_KEY: dict[str, str] = {
    "commune_reports": "commune_code",
    "dossiers": "dossier_id",
    "procedures": "procedure_code",
}
SNAPSHOT_VERSION_COLUMN: dict[str, str | None] = {
    "commune_reports": "submitted_at",
    "dossiers": "updated_at",
    "procedures": None,
}
INDICATOR_VALUES = "indicator_values"
RANKING = versioned("ranking", 2)  # v2: nullable indices/ranks (excluded communes), rank changes
RANKING_EARLIER_VERSIONS = ("ranking",)  # read (never written) as baselines of rank changes
EXPLANATIONS = "explanations"
RANK_UNCERTAINTY = "rank_uncertainty"
REPORTS_DIR = "reports"  # the HTML report of each period: reports/period=<period>/<file>


@dataclass(frozen=True)
class BatchSummary:
    dataset: str
    partition: str
    rows_pulled: int
    rows_snapshot: int
    rows_quarantined: int
    warnings: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest_batch(
    store: DataStore,
    settings: Settings,
    dataset: str,
    records: list[dict[str, Any]],
    batch: str,
    parameters: dict[str, Any],
    pre_rejected: pd.DataFrame | None = None,
    run_id: str = "manual",
) -> BatchSummary:
    """Conform, validate and publish one batch of a source dataset.

    ``batch`` names the batch (the day or the period pulled); ``pre_rejected`` are rows an earlier
    step (unit resolution) already sent to quarantine, counted as pulled.
    """
    rows_pulled = len(records) + (0 if pre_rejected is None else len(pre_rejected))
    conformed = conform(dataset, records, batch)
    return ingest_conformed(
        store, settings, dataset, conformed, batch, parameters, rows_pulled, pre_rejected, run_id
    )


def ingest_conformed(
    store: DataStore,
    settings: Settings,
    dataset: str,
    conformed: Conformed,
    batch: str,
    parameters: dict[str, Any],
    rows_pulled: int,
    pre_rejected: pd.DataFrame | None = None,
    run_id: str = "manual",
    stage: StageClock | None = None,
) -> BatchSummary:
    """Validate and publish a conformed batch (``rows_pulled`` counts every row the source gave).

    ``stage`` (optional) times the two steps as "validate" and "snapshot" (see :mod:`egov_index.stages`).
    """
    stage = stage or no_stages
    rejected = pd.concat([r for r in (pre_rejected, conformed.rejected) if r is not None], ignore_index=True)
    with stage("validate"):
        outcome = validate_recorded(
            settings,
            run_id,
            dataset,
            conformed.frame,
            partition=batch,
            parameters=parameters,
            suite_dir=settings.expectations_dir,
            max_quarantine_share=settings.max_quarantine_share,
            rows_already_rejected=len(rejected),
        )
    quarantine = pd.concat([rejected, outcome.quarantine], ignore_index=True)
    summary = BatchSummary(
        dataset=dataset,
        partition=batch,
        rows_pulled=rows_pulled,
        rows_snapshot=len(outcome.valid),
        rows_quarantined=len(quarantine),
        warnings=[
            f"{r.expectation} on {r.column}: {r.unexpected_count} unexpected"
            for r in outcome.results
            if r.severity == "warning" and not r.success
        ],
        extra_columns=list(conformed.extra_columns),
    )
    if summary.rows_pulled != summary.rows_snapshot + summary.rows_quarantined:
        raise AccountingError(
            f"{dataset} ({batch}): pulled {summary.rows_pulled} rows but snapshot has "
            f"{summary.rows_snapshot} and quarantine {summary.rows_quarantined}; nothing was published."
        )
    with stage("snapshot"):
        publish_snapshot(store, dataset, batch, outcome.valid)
        manifest = {"code_version": __version__, "accounting": summary.as_dict()}
        publish_quality(store, dataset, batch, quarantine, outcome, manifest)
    for warning in summary.warnings:
        log.warning("data-quality warning: %s (%s): %s", dataset, batch, warning)
    log.info("published %s", summary)
    return summary


def data_docs_dir(settings: Settings) -> Path:
    return settings.data_root / "quality" / "data_docs"


def validate_recorded(
    settings: Settings, run_id: str, dataset: str, frame: pd.DataFrame, **kwargs: Any
) -> Any:
    """Validate a batch with GX and record the outcome (SQL history, Data Docs), blocked or not."""
    from egov_index.data_docs import save_result
    from egov_index.quality import BatchBlocked, validate_batch
    from egov_index.validation_history import record_validation

    try:
        outcome = validate_batch(dataset, frame, **kwargs)
    except BatchBlocked as exc:
        record_validation(settings.sql_url, run_id, [exc.outcome])
        save_result(exc.outcome, data_docs_dir(settings), run_id)
        raise
    record_validation(settings.sql_url, run_id, [outcome])
    save_result(outcome, data_docs_dir(settings), run_id)
    return outcome


def _partitions(dataset: str, batch: str, valid: pd.DataFrame) -> dict[str, pd.Series]:
    """Which snapshot partition each valid row belongs to (see SNAPSHOT_PARTITIONING)."""
    if dataset == "procedures":
        return {"snapshot_date": pd.Series(batch, index=valid.index)}
    if dataset == "commune_reports":
        return {"period": valid["period"].astype(str)}
    received_local = valid["received_at"].dt.tz_convert(LOCAL_TZ)
    months = (received_local.dt.year * 100 + received_local.dt.month).to_numpy(dtype="int64")
    unique, position = np.unique(months, return_inverse=True)  # 'YYYY-MM' per distinct month, not per row
    labels = np.array([f"{m // 100}-{m % 100:02d}" for m in unique], dtype=object)
    return {"received_month": pd.Series(labels[position], index=valid.index)}


def publish_snapshot(store: DataStore, dataset: str, batch: str, valid: pd.DataFrame) -> list[str]:
    """Merge the batch's valid rows into their snapshot partitions (latest version per key wins)."""
    key, version = SNAPSHOT_MERGE_KEY[dataset], SNAPSHOT_VERSION_COLUMN[dataset]
    [(column, values)] = _partitions(dataset, batch, valid).items()
    schema = _with_partition_columns(schemas.arrow_schema(schemas.SOURCE_FIELDS[dataset]), {column: ""})
    published = []
    distinct = sorted(values.unique())
    for value in distinct:
        rows = (valid if len(distinct) == 1 else valid[values == value]).assign(**{column: value})
        where = {column: value}
        if version is not None and store.exists(SNAPSHOT_DATASETS[dataset], where):
            existing = store.read_partition(SNAPSHOT_DATASETS[dataset], where).to_pandas()
            rows = merge_latest(existing.assign(**{column: value}), rows, key, version)
        # rows in key order (keys are unique here: one row per key after the merge), sorted by Arrow
        table = to_table(rows, schema)
        keys = table[key]
        if pa.types.is_dictionary(keys.type):  # Arrow sorts text, not dictionaries
            keys = keys.cast(keys.type.value_type)
        table = _dictionaries_in_row_order(table.take(pc.sort_indices(keys)))
        store.publish(SNAPSHOT_DATASETS[dataset], where, table, {"code_version": __version__})
        published.append(value)
    return published


def _dictionaries_in_row_order(table: pa.Table) -> pa.Table:
    """Rebuild each dictionary column's dictionary in order of first appearance in the (sorted) rows.

    The dictionary ``to_table`` built follows the rows' order before sorting, which differs between a
    first run and a rerun that merged; rebuilt, the same rows give the same bytes.
    """
    for index, column_field in enumerate(table.schema):
        if pa.types.is_dictionary(column_field.type):
            text = table.column(index).cast(column_field.type.value_type).combine_chunks()
            table = table.set_column(index, column_field, text.dictionary_encode().cast(column_field.type))
    return table


def merge_latest(existing: pd.DataFrame, incoming: pd.DataFrame, key: str, version: str) -> pd.DataFrame:
    """Union of two versions of a snapshot, keeping the latest ``version`` per ``key`` (incoming wins ties)."""
    frames = [
        existing.astype(
            {c: object for c in existing.columns if isinstance(existing[c].dtype, pd.CategoricalDtype)}
        ),
        incoming,
    ]
    both = pd.concat(frames, ignore_index=True)
    both["_order"] = range(len(both))
    both = both.sort_values([key, version, "_order"], kind="stable")
    return both.drop_duplicates(key, keep="last").drop(columns="_order")


def _with_partition_columns(schema: pa.Schema, partition: dict[str, str]) -> pa.Schema:
    for column in partition:
        if column not in schema.names:
            schema = schema.append(pa.field(column, pa.string(), nullable=False))
    return schema


def publish_quality(
    store: DataStore, dataset: str, batch: str, quarantine: pd.DataFrame, outcome: Any, manifest: dict
) -> None:
    """Publish the batch's quarantine rows (with the batch's accounting) and validation results."""
    from egov_index.quality import summarize

    where = {"dataset": dataset, "partition": batch}
    quarantine = (
        quarantine.assign(dataset=dataset, partition=batch)
        .sort_values(["record_key", "expectations"], kind="stable")
        .reset_index(drop=True)
    )
    results = pd.DataFrame(summarize([outcome]), columns=schemas.VALIDATION_RESULT_SCHEMA.names)
    store.publish(VALIDATION_RESULTS, where, to_table(results, schemas.VALIDATION_RESULT_SCHEMA))
    store.publish(QUARANTINE, where, to_table(quarantine, schemas.QUARANTINE_SCHEMA), manifest)


# --- the nightly ingest's three API sources -------------------------------------------------

SOURCE_OF: dict[str, str] = {
    "procedures": "service_portal",
    "dossiers": "service_portal",
    "commune_reports": "reporting_api",
}


def batch_parameters(store: DataStore, dataset: str, batch: str) -> dict[str, Any]:
    """Run-time suite parameters a batch needs beyond the registry (the day's catalogue for dossiers)."""
    if dataset != "dossiers":
        return {}
    catalogue = store.read_partition(SNAPSHOT_DATASETS["procedures"], {"snapshot_date": batch})
    return {"procedure_codes": catalogue.column("procedure_code").to_pylist()}


def prepare_records(
    dataset: str, records: list[dict[str, Any]], batch: str
) -> tuple[list[dict], pd.DataFrame]:
    """Resolve commune reports' units (legacy codes, names) to current ones; unresolvable -> quarantine.

    A record without a ``report_id`` (a row of a file) gets ``<commune_code>-<period>`` once resolved.
    """
    key = schemas.RECORD_KEYS[dataset]
    if dataset != "commune_reports":
        return records, quarantine_rows(dataset, batch, key, [])
    from egov_index.unit_resolution import resolve_frame

    unit_only = [f for f in UNIT_FIELDS if f not in schemas.field_names(schemas.COMMUNE_REPORT_FIELDS)]
    by_period: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_period.setdefault(str(record.get("period") or batch), []).append(record)
    prepared: list[dict[str, Any]] = []
    rows: list[tuple[dict[str, Any], str, str, str]] = []
    for period, group in by_period.items():
        try:
            parse_period(period)
        except ValueError as exc:
            rows += [(record, "unit_resolution", "period", str(exc)) for record in group]
            continue
        resolved, rejected = resolve_frame(group, period)
        rows += [(record, "unit_resolution", "commune_code", reason) for record, reason in rejected]
        for record in resolved:
            clean = {k: v for k, v in record.items() if k not in unit_only}
            if clean.get("report_id") is None:
                clean["report_id"] = f"{clean['commune_code']}-{period}"
            prepared.append(clean)
    return prepared, quarantine_rows(dataset, batch, key, rows)


def ingest_from_api(
    store: DataStore,
    settings: Settings,
    dataset: str,
    batch: str,
    run_id: str,
    fetch: Callable[[pull.PageHook], list[dict[str, Any]]],
    window: tuple[datetime, datetime] | None = None,
) -> dict:
    """Pull one batch (every page archived as received), ingest it, and record it in the ledger."""
    from egov_index.raw_archive import RawArchive

    archive = RawArchive(settings.data_root)

    def pulled() -> tuple[list[dict[str, Any]], str | None]:
        with archive.recorder(dataset, batch, endpoint=SOURCE_OF[dataset], run_id=run_id) as recorder:
            records = fetch(recorder.on_page)
        return records, recorder.batch.payload_sha256 if recorder.batch else None

    return _ingest_ledgered(store, settings, dataset, batch, run_id, pulled, window)


def _ingest_ledgered(
    store: DataStore,
    settings: Settings,
    dataset: str,
    batch: str,
    run_id: str,
    records_of: Callable[[], tuple[list[dict[str, Any]], str | None]],
    window: tuple[datetime, datetime] | None = None,
) -> dict:
    """Ingest the records ``records_of()`` returns (with their payload digest) as one ledgered batch."""

    def work(band: dict[str, Any]) -> tuple[BatchSummary, str | None]:
        records, payload_sha256 = records_of()
        return ingest_records(store, settings, dataset, records, batch, run_id, band), payload_sha256

    return ledgered(settings, dataset, batch, run_id, work, window)


def ledgered(
    settings: Settings,
    dataset: str,
    batch: str,
    run_id: str,
    work: Callable[[dict[str, Any]], tuple[BatchSummary, str | None]],
    window: tuple[datetime, datetime] | None = None,
) -> dict:
    """Run ``work(row_count_band)`` (ingest one batch; returns its summary and payload digest) as one
    ledger entry: ``running``, then ``succeeded`` with its accounting or ``failed`` with the error."""
    from egov_index.ledger import Ledger
    from egov_index.validation_history import row_count_band

    with Ledger.open(settings.sql_url) as ledger:
        entry = ledger.start(
            run_id=run_id,
            source=SOURCE_OF[dataset],
            dataset=dataset,
            partition=batch,
            window_start=window[0] if window else None,
            window_end=window[1] if window else None,
        )
        try:
            summary, payload_sha256 = work(row_count_band(ledger, dataset, batch))
        except Exception as exc:
            ledger.finish(entry, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finish_succeeded(ledger, entry, summary, payload_sha256)
    return summary.as_dict()


def province_batch(day: date, province_code: str) -> str:
    """The raw-archive partition of one province's dossier pull for ``day``."""
    return f"{day.isoformat()}_province-{province_code}"


def pull_province_dossiers(
    settings: Settings, endpoint: pull.SourceEndpoint, day: date, province_code: str, run_id: str = "manual"
) -> dict:
    """Pull one province's dossiers updated on ``day`` into the raw archive, nothing else: the nightly
    run maps this over the provinces, then ``ingest_province_dossiers`` publishes the day as one batch."""
    from egov_index.raw_archive import RawArchive

    window = local_day_window(day)
    archive = RawArchive(settings.data_root)
    batch = province_batch(day, province_code)
    with archive.recorder("dossiers", batch, endpoint=SOURCE_OF["dossiers"], run_id=run_id) as recorder:
        records = pull.fetch_dossiers(
            endpoint,
            window.start,
            window.end,
            limit=settings.dossier_page_limit,
            on_page=recorder.on_page,
            province_code=province_code,
        )
    return {"province_code": province_code, "batch": batch, "rows_pulled": len(records)}


def ingest_province_dossiers(
    store: DataStore, settings: Settings, day: date, province_codes: list[str], run_id: str = "manual"
) -> dict:
    """Validate and publish the dossiers of ``day`` as one batch, from the provinces' archived pulls."""
    from egov_index.raw_archive import RawArchive

    window = local_day_window(day)
    archive = RawArchive(settings.data_root)
    parts = [province_batch(day, code) for code in sorted(province_codes)]
    return _ingest_ledgered(
        store,
        settings,
        "dossiers",
        day.isoformat(),
        run_id,
        lambda: archived_records(archive, "dossiers", parts),
        (window.start, window.end),
    )


def archived_records(archive: Any, dataset: str, parts: list[str]) -> tuple[list[dict[str, Any]], str]:
    """The records of the newest complete pull of every part, in the source's order (updated_at, key),
    and one digest over the parts' payloads."""
    from egov_index.raw_archive import iter_records, payload_digest

    batches = [archive.latest_complete(dataset, part) for part in parts]
    records = [record for batch in batches for record in iter_records(batch)]
    if dataset == "dossiers":
        records.sort(key=lambda r: (str(r.get("updated_at")), str(r.get("dossier_id"))))
    return records, payload_digest([b.payload_sha256 for b in batches])


def finish_succeeded(
    ledger: Any, entry: int, summary: BatchSummary, payload_sha256: str | None = None
) -> None:
    """Close a ledger entry with the batch's accounting."""
    ledger.finish(
        entry,
        "succeeded",
        rows_pulled=summary.rows_pulled,
        rows_snapshot=summary.rows_snapshot,
        rows_quarantined=summary.rows_quarantined,
        payload_sha256=payload_sha256,
    )


def ingest_records(
    store: DataStore,
    settings: Settings,
    dataset: str,
    records: list[dict[str, Any]],
    batch: str,
    run_id: str = "manual",
    band: dict[str, Any] | None = None,
) -> BatchSummary:
    """The offline part of an ingest (shared by the live pull and the replay)."""
    prepared, rejected = prepare_records(dataset, records, batch)
    parameters = {**batch_parameters(store, dataset, batch), **(band or {})}
    return ingest_batch(
        store, settings, dataset, prepared, batch, parameters, pre_rejected=rejected, run_id=run_id
    )


def ingest_procedures(
    store: DataStore, settings: Settings, endpoint: pull.SourceEndpoint, day: date, run_id: str = "manual"
) -> dict:
    return ingest_from_api(
        store,
        settings,
        "procedures",
        day.isoformat(),
        run_id,
        lambda hook: pull.fetch_procedures(endpoint, page_size=settings.report_page_size, on_page=hook),
    )


def ingest_commune_reports(
    store: DataStore, settings: Settings, endpoint: pull.SourceEndpoint, period: str, run_id: str = "manual"
) -> dict:
    parse_period(period)
    return ingest_from_api(
        store,
        settings,
        "commune_reports",
        period,
        run_id,
        lambda hook: pull.fetch_commune_reports(
            endpoint, period, page_size=settings.report_page_size, on_page=hook
        ),
    )


def ingest_inbox(store: DataStore, settings: Settings, run_id: str = "manual") -> dict:
    """Ingest the commune-report files waiting in the inbox, each once (see docs/sources.md).

    A re-delivered identical file is a no-op; a changed file is a new version (its rows supersede the
    old ones through the snapshot merge). A file that cannot be read or is blocked by the data-quality
    gate moves to ``inbox/failed/`` with the error beside it; the others still go through, then the
    task fails naming the failed files.
    """
    from egov_index.inbox import claim, mark_failed, mark_processed, scan_inbox
    from egov_index.ledger import Ledger
    from egov_index.raw_archive import RawArchive

    archive = RawArchive(settings.data_root)
    outcome: dict[str, list] = {"ingested": [], "duplicates": [], "failed": []}
    with Ledger.open(settings.sql_url) as ledger:
        for file in scan_inbox(settings.inbox_dir):
            batch = f"file-{file.sha256[:12]}"
            entry = None
            try:
                status = claim(file, ledger, archive).status
                entry = ledger.start(
                    run_id=run_id,
                    source="inbox",
                    dataset="commune_reports",
                    partition=batch,
                    file_name=file.name,
                    file_sha256=file.sha256,
                )
                if status == "identical":
                    ledger.finish(entry, "skipped_duplicate")
                    outcome["duplicates"].append(file.name)
                    mark_processed(file)
                    continue
                records = file_records(file.path, file.name, file.mtime.isoformat())
                summary = ingest_records(store, settings, "commune_reports", records, batch, run_id)
                finish_succeeded(ledger, entry, summary)
                ledger.record_file_version(file.key, file.sha256, entry_id=entry)
                mark_processed(file)
                outcome["ingested"].append(summary.as_dict())
            except Exception as exc:  # one bad file must not stop the others; it is failed loudly below
                if entry is not None:
                    ledger.finish(entry, "failed", error=f"{type(exc).__name__}: {exc}")
                mark_failed(file, exc)
                outcome["failed"].append(f"{file.name}: {type(exc).__name__}: {exc}")
    if outcome["failed"]:
        raise InboxFilesFailed(
            f"{len(outcome['failed'])} inbox file(s) failed and were moved to {settings.inbox_dir / 'failed'} "
            "(reason beside each file); the other files were ingested. Correct and re-deliver them, "
            "then clear this task:\n" + "\n".join(outcome["failed"])
        )
    return outcome


def file_records(path: Path, name: str, arrived_at: str) -> list[dict[str, Any]]:
    """Records of a commune-report file; a row without a submission time takes the file's arrival."""
    from egov_index.report_files import read_report_file

    parsed = read_report_file(path)
    return [
        {**record, "submitted_at": record.get("submitted_at") or arrived_at, "_source_ref": f"{name}:{ref}"}
        for record, ref in zip(parsed.records, parsed.row_refs, strict=True)
    ]


def replay_files(source_root: Path, store: DataStore, settings: Settings) -> list[dict]:
    """Replay every archived inbox file, in arrival order, as the inbox task ingested it."""
    import gzip
    import json
    import tempfile

    from egov_index.inbox import ARCHIVE_DATASET

    metas = [
        json.loads(p.read_text()) | {"_gz": p.with_name(p.name.replace(".meta.json", ".gz"))}
        for p in (source_root / "raw" / ARCHIVE_DATASET).glob("*/files/*.meta.json")
    ]
    results: list[dict] = []
    for meta in sorted(metas, key=lambda m: (m["arrived_at"], m["name"], m["sha256"])):
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "file"
            copy.write_bytes(gzip.decompress(meta["_gz"].read_bytes()))
            try:
                records = file_records(copy, meta["name"], meta["arrived_at"])
                batch = f"file-{meta['sha256'][:12]}"
                results.append(ingest_records(store, settings, "commune_reports", records, batch).as_dict())
            except Exception as exc:  # as in the live inbox task: a bad file does not stop the others
                results.append({"file": meta["name"], "failed": f"{type(exc).__name__}: {exc}"})
    return results


def replay(source_root: Path, store: DataStore, settings: Settings, dataset: str, batch: str) -> dict:
    """Rebuild a batch's snapshot offline from the raw archive under ``source_root`` (a batch pulled
    per province is put together from its provinces' pulls, as the nightly run did)."""
    from egov_index.raw_archive import RawArchive

    archive = RawArchive(source_root)
    whole = archive.partition_dir(dataset, batch)
    parts = sorted(p.name for p in whole.parent.glob(f"{batch}_province-*")) if not whole.is_dir() else []
    records, _ = archived_records(archive, dataset, parts or [batch])
    return ingest_records(store, settings, dataset, records, batch).as_dict()


def check_accounting(summaries: list[dict]) -> dict:
    """The run-level invariant over every batch; returns totals for the run log."""
    totals = {"rows_pulled": 0, "rows_snapshot": 0, "rows_quarantined": 0}
    for s in summaries:
        if s["rows_pulled"] != s["rows_snapshot"] + s["rows_quarantined"]:
            raise AccountingError(f"accounting broken for {s['dataset']} ({s['partition']}): {s}")
        for k in totals:
            totals[k] += s[k]
    return totals


# --- the period ranking ----------------------------------------------------------------------


def load_period_inputs(store: DataStore, period: str) -> tuple[pd.DataFrame, DossierTally, pd.DataFrame]:
    """Commune reports, the tally of the dossiers received in the period and the catalogue.

    Dossiers are read one snapshot partition (received month) at a time and reduced to counts per
    commune (:func:`egov_index.ranking.tally_dossiers`): memory stays that of one month's partition
    whatever the length of the period.
    """
    from egov_index.ranking import DOSSIER_TALLY_COLUMNS, period_window, tally_dossiers

    p = parse_period(period)
    # the period's quarters and the previous period's (a methodology may carry a missing report forward)
    quarters = quarters_of(p) + quarters_of(parse_period(previous_period(period)))
    reports = store.read(SNAPSHOT_DATASETS["commune_reports"], ds.field("period").isin(quarters)).to_pandas()
    if not reports["period"].astype(str).isin(quarters_of(p)).any():
        raise MissingInputError(
            f"no commune-report snapshot for {period}: run the nightly ingest for a day in {period} first"
        )
    months = sorted({f"{d.year}-{d.month:02d}" for d in pd.date_range(p.start, p.end, freq="MS")})
    partitions = [
        part for part in store.partitions(SNAPSHOT_DATASETS["dossiers"]) if part["received_month"] in months
    ]
    procedures = catalogue_on(store, p.end)
    needed = [c for c in DOSSIER_TALLY_COLUMNS if c not in ("dossier_id", "updated_at")]  # ids are distinct
    reads = [partial(store.read_partition, SNAPSHOT_DATASETS["dossiers"], part, needed) for part in partitions]
    chunks = read_ahead(reads)
    return reports, tally_dossiers(chunks, procedures, period_window(p), distinct_ids=True), procedures


def catalogue_on(store: DataStore, day: date) -> pd.DataFrame:
    """The procedure catalogue as of ``day``: its newest snapshot taken on or before it, else the newest."""
    dataset = SNAPSHOT_DATASETS["procedures"]
    dates = sorted(part["snapshot_date"] for part in store.partitions(dataset))
    if not dates:
        raise MissingInputError(f"no procedure catalogue snapshot under {store.root}: ingest the catalogue first")
    chosen = max((d for d in dates if d <= day.isoformat()), default=dates[-1])
    catalogue = store.read_partition(dataset, {"snapshot_date": chosen}).to_pandas()
    return catalogue.assign(snapshot_date=chosen)


def read_ahead(reads: list[Callable[[], T]]) -> Iterator[T]:
    """Yield ``read()`` of each in order, reading the next one in a thread while the caller works on
    the current one (Parquet decoding releases the GIL): one chunk ahead, so memory stays two chunks."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(reads[0]) if reads else None
        for index in range(len(reads)):
            current = pending.result()
            pending = pool.submit(reads[index + 1]) if index + 1 < len(reads) else None
            yield current


def rank_period(
    store: DataStore, settings: Settings, period: str, run_id: str = "manual", stage: StageClock | None = None
) -> dict:
    """Compute indicators, ranking, rank changes, explanations and rank bands of a period; gate the
    ranking with GX; publish them (Parquet, SQL) and the HTML report.

    ``stage`` (optional) times "indicators" (reading the snapshots, counting), "ranking" (scores,
    ranks, gate, explanations), "robustness" (the rank bands) and "publish".
    """
    from egov_index.explain import explain
    from egov_index.methodology import load_methodology
    from egov_index.rank_changes import attach_rank_changes
    from egov_index.ranking import compute
    from egov_index.robustness import rank_bands

    stage = stage or no_stages
    with stage("indicators"):
        reports, dossiers, procedures = load_period_inputs(store, period)
    with stage("ranking"):
        methodology = load_methodology(settings.methodology)
        result = compute(reports, dossiers, procedures, current_units(), period, methodology)
        baselines = {
            "previous": find_baseline(store, previous_period(period), methodology.id),
            "year_ago": find_baseline(store, year_ago_period(period), methodology.id),
        }
        ranking = attach_rank_changes(result.ranking, baselines)
        # every ranking rule blocks: a failure raises and the previous ranking stays published
        validate_recorded(
            settings, run_id, "ranking", ranking, partition=period, suite_dir=settings.expectations_dir
        )
        levels = [result.levels[name] for name in ("province", "commune")]
        explanations = pd.concat([explain(level, methodology, period) for level in levels], ignore_index=True)
    with stage("robustness"):
        bands = pd.concat([rank_bands(level, methodology, period) for level in levels], ignore_index=True)
    with stage("publish"):
        return _publish_period(store, settings, period, methodology, result, ranking, explanations, bands)


def _publish_period(
    store: DataStore,
    settings: Settings,
    period: str,
    methodology: Any,
    result: Any,
    ranking: pd.DataFrame,
    explanations: pd.DataFrame,
    bands: pd.DataFrame,
) -> dict:
    """Publish a period's outputs: Parquet (ranking last), the HTML report, the files for people, SQL."""
    from egov_index.html_report import render_ranking_report, report_file_name

    manifest = {"code_version": __version__, "methodology": methodology.id}
    outputs = (
        (INDICATOR_VALUES, result.indicator_values, schemas.INDICATOR_VALUE_SCHEMA),
        (EXPLANATIONS, explanations, schemas.EXPLANATION_SCHEMA),
        (RANK_UNCERTAINTY, bands, schemas.RANK_UNCERTAINTY_SCHEMA),
        (RANKING, ranking, schemas.RANKING_SCHEMA),  # last: the ranking appears when the rest is there
    )
    for dataset, frame, schema in outputs:
        store.publish(dataset, {"period": period}, to_table(frame, schema), manifest)
    if parse_period(period).is_quarter:  # the latest view shows the newest quarter
        for dataset, _, _ in outputs:
            store.publish_latest(dataset, {"period": period})
    html = render_ranking_report(period, ranking, explanations, bands, methodology)
    report = store.write_document(
        f"{REPORTS_DIR}/period={period}/{report_file_name(period)}", html.encode("utf-8")
    )
    log.info("HTML ranking report of %s: %s", period, report)
    from egov_index.exports import people_exports

    for name, data in people_exports(ranking, result.indicator_values, period).items():  # CSV / Excel
        store.write_document(f"{REPORTS_DIR}/period={period}/{name}", data)
    from egov_index.sql_publish import publish_period

    sql = publish_period(settings.sql_url, period, ranking, result.indicator_values)
    levels_count = ranking["level"].value_counts().to_dict()
    changes = {name: int(ranking[f"{name}_rank_change"].notna().sum()) for name in schemas.RANK_BASELINES}
    return {
        "period": period,
        "rows": len(ranking),
        "units_per_level": levels_count,
        "rank_changes": changes,
        "wide_bands": int(bands["wide_band"].sum()),
        "report": str(report),
        "sql": sql,
    }


def find_baseline(store: DataStore, period: str, methodology_id: str) -> Baseline | None:
    """The ranks of an earlier period: our own ranking of it (same methodology), else, for a year, a
    published table imported with ``cli import-ranking`` (crosswalked to current provinces if needed)."""
    from egov_index.published_rankings import baseline_on_current_units, load_published

    for path in (RANKING, *RANKING_EARLIER_VERSIONS):  # a period published before v2 still counts
        if store.exists(path, {"period": period}):
            ranks = store.read_partition(path, {"period": period}).to_pandas()
            ranks = ranks[ranks["methodology"].astype(str) == methodology_id]
            if not ranks.empty:
                return Baseline(period, "computed", ranks[["level", "unit_code", "overall_rank"]])
    if parse_period(period).is_quarter:
        return None
    published = load_published(store, period)
    if published is None or published.empty:
        return None
    current = baseline_on_current_units(published)
    ranks = current.assign(level="province")[["level", "unit_code", "overall_rank"]]
    return Baseline(period, str(current["basis"].iloc[0]), ranks)
