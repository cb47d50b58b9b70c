"""SQL copy of the results, for BI tools that prefer SQL: ranking and indicator values per period.

Tables ``ranking_v2`` and ``indicator_values`` live in the database at ``Settings.sql_url`` (SQLite by
default, PostgreSQL in compose) beside the ingest ledger; migrations 0002 and 0004 create them (migrations
run on open, see ``egov_index.ledger``). Columns and meanings are those of the Parquet datasets of
the same names (docs/data-dictionary.md). A period is replaced as a whole in one transaction, so a
rerun gives the same rows and SQL readers see the old period or the new one, never a mix.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import Boolean, Column, Double, Integer, String, Table, delete, insert

from egov_index import schemas
from egov_index.ledger import Base, Ledger
from egov_index.store import to_table


def _code(name: str, *, key: bool = False, nullable: bool = False) -> Column[Any]:
    return Column(name, String(16), primary_key=key, nullable=nullable)


def _nullable_code(name: str, length: int = 16) -> Column[Any]:
    return Column(name, String(length), nullable=True)


RANKING_TABLE = Table(
    "ranking_v2",  # contract version 2, like the Parquet path (migration 0004); ``ranking`` is version 1
    Base.metadata,
    _code("period", key=True),
    _code("level", key=True),
    _code("unit_code", key=True),
    Column("unit_name", String(255), nullable=False),
    _code("parent_code", nullable=True),
    Column("methodology", String(64), nullable=False),
    Column("report_treatment", String(32), nullable=False),
    _code("carried_from_period", nullable=True),
    Column("reported_share", Double, nullable=False),
    Column("overall_points", Double, nullable=True),
    Column("overall_max_points", Double, nullable=False),
    Column("overall_index", Double, nullable=True),
    Column("overall_rank", Integer, nullable=True),
    Column("overall_rank_in_province", Integer, nullable=True),
    *(
        column
        for category in schemas.CATEGORIES
        for column in (
            Column(f"{category}_index", Double, nullable=True),
            Column(f"{category}_rank", Integer, nullable=True),
            Column(f"{category}_rank_in_province", Integer, nullable=True),
        )
    ),
    *(
        column
        for baseline in schemas.RANK_BASELINES
        for column in (
            _nullable_code(f"{baseline}_period"),
            _nullable_code(f"{baseline}_basis", 32),
            Column(f"{baseline}_rank", Integer, nullable=True),
            Column(f"{baseline}_rank_change", Integer, nullable=True),
        )
    ),
    Column("has_report", Boolean, nullable=False),
)

# Version 1 of the ranking table (migration 0002): kept as published, no longer written.
RANKING_V1_TABLE = Table(
    "ranking",
    Base.metadata,
    _code("period", key=True),
    _code("level", key=True),
    _code("unit_code", key=True),
    Column("unit_name", String(255), nullable=False),
    _code("parent_code", nullable=True),
    Column("methodology", String(64), nullable=False),
    Column("overall_points", Double, nullable=False),
    Column("overall_max_points", Double, nullable=False),
    Column("overall_index", Double, nullable=False),
    Column("overall_rank", Integer, nullable=False),
    Column("overall_rank_in_province", Integer, nullable=True),
    *(
        column
        for category in schemas.CATEGORIES
        for column in (
            Column(f"{category}_index", Double, nullable=False),
            Column(f"{category}_rank", Integer, nullable=False),
        )
    ),
    Column("has_report", Boolean, nullable=False),
)

INDICATOR_VALUES_TABLE = Table(
    "indicator_values",
    Base.metadata,
    _code("period", key=True),
    _code("level", key=True),
    _code("unit_code", key=True),
    _code("parent_code", nullable=True),
    Column("methodology", String(64), nullable=False),
    _code("category"),
    Column("indicator_id", String(64), primary_key=True),
    Column("numerator", Double, nullable=True),
    Column("denominator", Double, nullable=True),
    Column("value", Double, nullable=True),
    Column("points", Double, nullable=False),
    Column("max_points", Double, nullable=False),
    Column("missing_treatment", String(32), nullable=True),
)


def _rows(frame: pd.DataFrame, schema: pa.Schema, period: str) -> list[dict[str, Any]]:
    """The frame as plain rows of the published schema (nulls as None); every row must be of ``period``."""
    rows = to_table(frame, schema).to_pylist()
    other = sorted({str(row["period"]) for row in rows} - {period})
    if other:
        raise ValueError(f"rows of period(s) {other} passed to publish period {period}")
    return rows


def publish_period(
    sql_url: str, period: str, ranking: pd.DataFrame, indicator_values: pd.DataFrame
) -> dict[str, Any]:
    """Replace the period's rows of ``ranking`` and ``indicator_values`` in one transaction."""
    batches = [
        (RANKING_TABLE, _rows(ranking, schemas.RANKING_SCHEMA, period)),
        (INDICATOR_VALUES_TABLE, _rows(indicator_values, schemas.INDICATOR_VALUE_SCHEMA, period)),
    ]
    with Ledger.open(sql_url) as database, database.engine.begin() as connection:
        for table, rows in batches:
            connection.execute(delete(table).where(table.c.period == period))
            if rows:
                connection.execute(insert(table), rows)
    return {"period": period, "ranking_rows": len(batches[0][1]), "indicator_value_rows": len(batches[1][1])}
