"""Conform stage: source records (JSON dicts) -> a frame with the canonical columns and types.

A record whose value cannot be read as its column's type (a count written
``"abc"``, a timestamp that is not ISO-8601, a boolean written ``"maybe"``) is
not dropped: it goes to quarantine with the column and the offending value.
A required column missing from the whole batch is schema drift and blocks the
batch; extra columns are reported and left out of the snapshot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from egov_index.errors import SchemaDriftError
from egov_index.schemas import RECORD_KEYS, SOURCE_FIELDS, Field, plain_type


@dataclass(frozen=True)
class Conformed:
    frame: pd.DataFrame  # canonical columns, canonical pandas dtypes, index 0..n-1
    rejected: pd.DataFrame  # quarantine rows (QUARANTINE_SCHEMA columns, partition filled by caller)
    extra_columns: tuple[str, ...]


def record_json(record: dict[str, Any]) -> str:
    """The record as received, as stable JSON (sorted keys, UTF-8 kept)."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)


def quarantine_rows(
    dataset: str, partition: str, key: str, rows: list[tuple[dict[str, Any], str, str, str]]
) -> pd.DataFrame:
    """Quarantine frame from (record, expectations, columns, reason) tuples."""
    return pd.DataFrame(
        {
            "dataset": [dataset] * len(rows),
            "partition": [partition] * len(rows),
            "record_key": [None if r[0].get(key) is None else str(r[0].get(key)) for r in rows],
            "expectations": [r[1] for r in rows],
            "columns": [r[2] for r in rows],
            "reason": [r[3] for r in rows],
            "record_json": [record_json(r[0]) for r in rows],
        },
        columns=["dataset", "partition", "record_key", "expectations", "columns", "reason", "record_json"],
    )


def _convert(raw: pd.Series, f: Field) -> pd.Series:
    t = f.type
    if pa.types.is_timestamp(t):
        return pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
    if pa.types.is_integer(t):
        numbers = pd.to_numeric(raw.where(raw.map(lambda v: not isinstance(v, bool))), errors="coerce")
        whole = numbers.where(numbers.isna() | (numbers == numbers.round()))
        return whole.astype("Int64")
    if pa.types.is_boolean(t):
        return raw.map(lambda v: v if isinstance(v, bool) else None).astype("boolean")
    return raw.map(lambda v: None if v is None else str(v)).astype("string")


def conform(dataset: str, records: list[dict[str, Any]], partition: str) -> Conformed:
    """Map records onto the dataset's canonical schema; unreadable rows go to ``rejected``."""
    fields = SOURCE_FIELDS[dataset]
    key = RECORD_KEYS[dataset]
    names = [f.name for f in fields]
    raw = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=names)
    missing = [f.name for f in fields if f.name not in raw.columns and not f.nullable]
    if missing and records:
        raise SchemaDriftError(
            f"{dataset} ({partition}): required column(s) {missing} missing from the whole batch "
            f"of {len(records)} records (schema drift at the source). Columns received: "
            f"{sorted(map(str, raw.columns))}. Map the new names in the source adapter, then rerun."
        )
    extra = tuple(sorted(str(c) for c in raw.columns if c not in names and not str(c).startswith("_")))
    out: dict[str, pd.Series] = {}
    bad: dict[int, list[str]] = {}
    for f in fields:
        column = raw[f.name] if f.name in raw.columns else pd.Series([None] * len(raw), dtype=object)
        column = column.astype(object).where(column.notna(), None)
        converted = _convert(column, f)
        for i in column.index[column.notna() & converted.isna()]:
            bad.setdefault(int(i), []).append(f.name)
        out[f.name] = converted.reset_index(drop=True)
    frame = pd.DataFrame(out, columns=names)
    bad_idx = sorted(bad)
    rows = [
        (
            records[i],
            "conform_type",
            ",".join(bad[i]),
            "; ".join(f"{c}={records[i].get(c)!r} is not a valid {_type_word(c, fields)}" for c in bad[i]),
        )
        for i in bad_idx
    ]
    rejected = quarantine_rows(dataset, partition, key, rows)
    frame = frame.drop(index=bad_idx).reset_index(drop=True)
    return Conformed(frame=frame, rejected=rejected, extra_columns=extra)


def _type_word(column: str, fields: tuple[Field, ...]) -> str:
    t = next(f.type for f in fields if f.name == column)
    if pa.types.is_timestamp(t):
        return "ISO-8601 timestamp"
    if pa.types.is_integer(t):
        return "whole number"
    if pa.types.is_boolean(t):
        return "true/false"
    return "text"


_PANDAS_TYPES: dict[pa.DataType, Any] = {
    pa.string(): pd.StringDtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _same_kind(have: pa.DataType, want: pa.DataType) -> bool:
    """True if ``have`` casts to ``want`` without reading text (typed files: Parquet, Arrow)."""
    if pa.types.is_dictionary(have):
        have = have.value_type
    if pa.types.is_null(have):
        return True
    if pa.types.is_string(want):
        return pa.types.is_string(have) or pa.types.is_large_string(have)
    if pa.types.is_timestamp(want):
        return pa.types.is_timestamp(have) and have.tz is not None  # a naive time is ambiguous: read as text
    if pa.types.is_integer(want):
        return pa.types.is_integer(have)
    if pa.types.is_boolean(want):
        return pa.types.is_boolean(have)
    return False


def conform_table(dataset: str, table: pa.Table, partition: str) -> Conformed:
    """Map an Arrow table (a bulk export file) onto the dataset's canonical schema.

    Typed columns of the right kind (text, integer, boolean, time zone-aware timestamp) are cast
    column by column without leaving Arrow; if any column needs reading (text in a number or time
    column: CSV, NDJSON), the table goes through :func:`conform` record by record, with the same
    quarantine of unreadable values. Either way the frame equals what :func:`conform` gives for the
    same records.
    """
    fields = SOURCE_FIELDS[dataset]
    names = [f.name for f in fields]
    present = set(table.column_names)
    missing = [f.name for f in fields if f.name not in present and not f.nullable]
    if missing and table.num_rows:
        raise SchemaDriftError(
            f"{dataset} ({partition}): required column(s) {missing} missing from the whole batch "
            f"of {table.num_rows} records (schema drift at the source). Columns received: "
            f"{sorted(table.column_names)}. Map the new names in the source adapter, then rerun."
        )
    extra = tuple(sorted(c for c in table.column_names if c not in names and not c.startswith("_")))
    if not all(_same_kind(table.schema.field(n).type, plain_type(f)) for f, n in zip(fields, names, strict=True) if n in present):
        records = table.to_pylist()
        return conform(dataset, records, partition)
    columns = {}
    for f in fields:
        target = plain_type(f)
        if f.name in present:
            column = table[f.name]
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            columns[f.name] = column.cast(target)
        else:
            columns[f.name] = pa.nulls(table.num_rows, target)
    frame = pa.table(columns).to_pandas(types_mapper=_PANDAS_TYPES.get)
    return Conformed(frame=frame, rejected=quarantine_rows(dataset, partition, RECORD_KEYS[dataset], []), extra_columns=extra)
