"""Validation history in SQL, and the row-count band a batch is checked against.

Table ``validation_results`` (migration 0003) in the database at ``Settings.sql_url``, beside the
ingest ledger: one row per expectation per validated batch, the same facts as the Parquet dataset
``quality/validation_results`` plus the run and the time, so the ICT department can follow data
quality per source and run in SQL. Recording a batch again in the same run replaces its rows.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any, get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    String,
    Table,
    and_,
    delete,
    insert,
    or_,
)

from egov_index.ledger import Base, Ledger, UTCDateTime
from egov_index.quality import SEVERITIES, Action, ValidationOutcome, default_row_count_band

ACTIONS: tuple[str, ...] = get_args(Action)
# Row-count band from history: the median of the newest HISTORY_POINTS partitions, +/- BAND_SHARE,
# once there are MIN_HISTORY_POINTS of them.
HISTORY_POINTS = 14
MIN_HISTORY_POINTS = 3
BAND_SHARE = 0.5


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


VALIDATION_RESULTS_TABLE = Table(
    "validation_results",
    Base.metadata,
    Column("run_id", String(250), primary_key=True),
    Column("dataset", String(64), primary_key=True),
    Column("partition", String(64), primary_key=True),
    Column("expectation_index", Integer, primary_key=True),  # position in the suite
    Column("expectation", String(128), nullable=False),
    Column("column", String(512), nullable=True),
    Column("severity", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("element_count", BigInteger, nullable=True),
    Column("unexpected_count", BigInteger, nullable=True),
    Column("validated_at", UTCDateTime, nullable=False),
    CheckConstraint(f"severity IN ({_in_list(SEVERITIES)})", name="severity"),
    CheckConstraint(f"action IN ({_in_list(ACTIONS)})", name="action"),
    Index("ix_validation_results_dataset_validated_at", "dataset", "validated_at"),
)


def _rows(run_id: str, outcome: ValidationOutcome) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "dataset": outcome.dataset,
            "partition": outcome.partition,
            "expectation_index": index,
            "expectation": r.expectation,
            "column": r.column,
            "severity": r.severity,
            "action": r.action,
            "success": r.success,
            "element_count": r.element_count,
            "unexpected_count": r.unexpected_count,
            "validated_at": outcome.validated_at,
        }
        for index, r in enumerate(outcome.results)
    ]


def record_validation(sql_url: str, run_id: str, outcomes: Iterable[ValidationOutcome]) -> int:
    """Write the outcomes' expectation results, replacing each batch's rows of this run; rows written.

    A blocked batch is passed as ``BatchBlocked.outcome``. One transaction for all outcomes.
    """
    outcomes = list(outcomes)
    rows = [row for outcome in outcomes for row in _rows(run_id, outcome)]
    table = VALIDATION_RESULTS_TABLE
    batches = {(o.dataset, o.partition) for o in outcomes}
    with Ledger.open(sql_url) as database, database.engine.begin() as connection:
        if batches:
            connection.execute(
                delete(table).where(
                    table.c.run_id == run_id,
                    or_(*(and_(table.c.dataset == d, table.c.partition == p) for d, p in sorted(batches))),
                )
            )
        if rows:
            connection.execute(insert(table), rows)
    return len(rows)


def row_count_band(ledger: Ledger, dataset: str, batch: str) -> dict[str, int]:
    """``row_count_min`` / ``row_count_max`` for a batch, from the rows pulled in recent partitions.

    Median of the newest 14 earlier partitions (``batch`` and later ones left out) +/- 50 %, once
    there are 3 of them; before that the wide defaults. Commune reports are pulled quarter to date
    (a new quarter starts near zero), so for them history sets only the upper bound. Inbox file
    batches (``file-...``) are not comparable with each other, nor a backfilled month (``month-...``,
    egov_index.bulk) with the nightly days: always the defaults.
    """
    defaults = default_row_count_band(dataset)
    if batch.startswith(("file-", "month-")):
        return defaults
    counts = ledger.recent_row_counts(dataset, HISTORY_POINTS, before_partition=batch)
    if len(counts) < MIN_HISTORY_POINTS:
        return defaults
    median = statistics.median(counts)
    upper = math.ceil(median * (1 + BAND_SHARE))
    if dataset == "commune_reports":
        return {**defaults, "row_count_max": min(upper, defaults["row_count_max"])}
    return {"row_count_min": math.floor(median * (1 - BAND_SHARE)), "row_count_max": upper}

