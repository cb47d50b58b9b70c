"""The ministry's published provincial rankings, imported as rank baselines (see docs/published-rankings.md).

The ministry published a yearly ranking of the 63 provinces (2016-2019). When the period a rank change
(Δrank) compares against is only known from such a table, the table is imported here: read as printed
(a CSV with Vietnamese or English headers, decimal comma or point), every province name resolved
through the unit registry of the table's year (the 63 legacy provinces up to 2024, the 34 current
ones from 2025; nothing guessed), the ranks recomputed from the indices and every disagreement with a
printed rank reported, then stored under ``published_rankings/year=<year>``.

``baseline_on_current_units`` turns an imported table into baselines on the 34 current provinces: a
pre-2025 table is crosswalked (the index of a merged province is the plain mean of its predecessors'
indices, rounded half up at the table's precision) and the ranks are recomputed among the current
provinces that have a baseline.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import io
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from egov_index.header_mapping import label_key
from egov_index.registry import current_units, legacy_province_crosswalk, legacy_units
from egov_index.schemas import CATEGORIES, PUBLISHED_RANKING_SCHEMA
from egov_index.scoring import competition_rank
from egov_index.store import DataStore, Published, to_table
from egov_index.unit_resolution import Vintage, resolve_province_name

PUBLISHED_RANKINGS = "published_rankings"  # store dataset, partitioned by ``year``

# Tables for years up to this one name the 63 legacy provinces; later years the 34 current ones.
LAST_LEGACY_YEAR = 2024

UNIT_SET_LABELS: dict[str, str] = {
    "legacy": "the 63 provinces before 1 July 2025",
    "current": "the 34 provinces since 1 July 2025",
}

# Accepted column headers: the canonical name (any case, "_" or space) or one of these labels, matched
# after folding (``header_mapping.label_key``: case, diacritics and punctuation ignored).
COLUMN_LABELS: dict[str, tuple[str, ...]] = {
    "year": ("Năm", "Năm đánh giá", "Năm xếp hạng"),
    "province": (
        "Tỉnh/Thành phố",
        "Tỉnh, thành phố",
        "Tỉnh/TP",
        "Tỉnh",
        "Địa phương",
        "Đơn vị",
        "province_name",
    ),
    "overall_index": ("Chỉ số", "Chỉ số tổng hợp", "Chỉ số chung", "Giá trị chỉ số", "index"),
    "overall_rank": ("Xếp hạng", "Xếp hạng chung", "Thứ hạng", "Hạng", "rank"),
    **{
        f"{c}_{kind}": tuple(f"{label} {c}" for label in labels)
        for c in CATEGORIES
        for kind, labels in (
            ("index", ("Chỉ số",)),
            ("rank", ("Xếp hạng", "Thứ hạng", "Hạng")),
        )
    },
}
# Row-numbering columns of printed tables: read past, never imported.
IGNORED_LABELS: tuple[str, ...] = ("STT", "TT", "Số TT", "Số thứ tự")

_CANONICAL: dict[str, str] = {label_key(name): name for name in COLUMN_LABELS}
_LABELS: dict[str, str] = {
    label_key(label): name for name, labels in COLUMN_LABELS.items() for label in labels
} | _CANONICAL
_IGNORED = frozenset(label_key(label) for label in IGNORED_LABELS)
_INDEX = re.compile(r"(\d+)(?:[.,](\d+))?")
_RANK = re.compile(r"(\d+)(?:\s*/\s*(\d+))?")
_YEAR = re.compile(r"\d{4}")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_MAX_LISTED_PROBLEMS = 50


class PublishedRankingError(ValueError):
    """A published table cannot be imported; the message names the file, rows and reasons."""


@dataclass
class ImportResult:
    """What an import read: one table per year, the rank disagreements and the missing provinces.

    ``tables``: year -> rows in ``PUBLISHED_RANKING_SCHEMA.names`` order (sorted by recomputed rank,
    then code); ``disagreements``: one row per printed rank that differs from the recomputed one
    (``year``, ``row``, ``province_code``, ``province_name``, ``name_as_printed``, ``column``,
    ``printed``, ``recomputed``); ``missing``: year -> (code, registry name) of the provinces of the
    year's unit set the table lacks; ``published``: year -> the store partition written (import only).
    """

    tables: dict[str, pd.DataFrame]
    disagreements: pd.DataFrame
    missing: dict[str, list[tuple[str, str]]]
    source: str = ""
    published: dict[str, Published] = field(default_factory=dict)

    def report_text(self) -> str:
        """The import as a person reads it: per year, rows, unit set, precision, disagreements, gaps."""
        lines = [f"Published ranking: {self.source}"]
        for year, table in sorted(self.tables.items()):
            unit_set = str(table["unit_set"].iloc[0])
            size = len(_province_names(unit_set))
            precision = int(table["precision"].iloc[0])
            categories = [c for c in CATEGORIES if table[f"{c}_index"].notna().any()]
            lines += [
                "",
                f"{year}: {len(table)} of {size} provinces imported; unit set {unit_set} "
                f"({UNIT_SET_LABELS[unit_set]}); precision {precision} decimal{'s' if precision != 1 else ''}; "
                f"categories: {', '.join(categories) if categories else 'none (overall index only)'}",
                "  Ranks recomputed from the indices (standard competition ranking: equal indices share "
                "a rank, the next rank is skipped).",
            ]
            wrong = self.disagreements[self.disagreements["year"] == year]
            if wrong.empty:
                lines.append("  Printed ranks: every printed rank agrees with the recomputed one.")
            else:
                verb = "disagrees" if len(wrong) == 1 else "disagree"
                lines.append(
                    f"  Printed ranks: {len(wrong)} printed rank{'s' if len(wrong) > 1 else ''} {verb} "
                    "with the recomputed ones:"
                )
                for row in wrong.itertuples(index=False):
                    printed = "-" if pd.isna(row.printed) else int(row.printed)
                    recomputed = "- (no index)" if pd.isna(row.recomputed) else int(row.recomputed)
                    lines.append(
                        f"    row {row.row}, {row.province_name} ({row.province_code}, printed "
                        f"'{row.name_as_printed}'): {row.column} printed {printed}, recomputed {recomputed}"
                    )
            missing = self.missing.get(year, [])
            if not missing:
                lines.append(f"  Missing provinces: none (all {size} present).")
            else:
                lines.append(f"  Missing provinces: {len(missing)} of {size}:")
                lines += [f"    {code} {name}" for code, name in missing]
                lines.append(
                    f"  Partial table: ranks were recomputed among the {len(table)} rows present, not among "
                    f"all {size} provinces; a printed rank from the full ranking can differ for that reason "
                    "alone."
                )
            if year in self.published:
                done = self.published[year]
                lines.append(f"  Stored: {done.path} ({done.rows} rows, sha256 {done.sha256[:16]})")
        return "\n".join(lines)


# --- ranks -----------------------------------------------------------------------------------------


def competition_ranks(values: Sequence[Any]) -> list[int | None]:
    """Standard competition ranking ("1224") of printed indices, by ``scoring.competition_rank`` (the one
    definition the engine uses too); None (or NaN) stays None."""
    ranks = competition_rank(np.array([np.nan if _missing(v) else float(v) for v in values], dtype=float))
    return [None if r == 0 else int(r) for r in ranks]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


# --- reading a file --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """One data row of the file, read and resolved."""

    row: int  # as a spreadsheet numbers it: the header is row 1
    year: str
    unit_set: Vintage
    code: str
    name: str  # registry name
    printed: str  # the name as printed (NFC, spaces collapsed)
    indices: dict[str, Decimal | None]  # overall, c1..c6
    decimals: int  # of the overall index as printed
    ranks: dict[str, int | None]  # printed ranks: overall, c1..c6


def _decode(data: bytes, name: str) -> str:
    """UTF-8 text, with or without a byte-order mark; anything else is refused with a clear message."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise PublishedRankingError(
            f"{name}: UTF-16 text; save the table as 'CSV UTF-8' and import it again."
        )
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PublishedRankingError(
            f"{name}: not UTF-8 text (byte {exc.start} is invalid); only UTF-8, with or without a byte-order "
            "mark, is read. Save the table as 'CSV UTF-8' and import it again."
        ) from exc


def _cell(value: str) -> str:
    """A cell as text: NFC, invisible characters removed, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFC", value).translate(_INVISIBLE).split())


def _delimiter(text: str) -> str:
    """';', tab or ',': the first of these the header line contains (',' when none)."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    return next((d for d in (";", "\t") if d in header), ",")


def _column(label: str) -> str | None:
    """The column a header label names (``""`` for a numbering column), or None when unknown."""
    key = label_key(label)
    if key in _IGNORED:
        return ""
    return _LABELS.get(key)


def _parse_index(text: str) -> tuple[Decimal, int] | None:
    """("0,485" | "0.485") -> (Decimal("0.485"), 3); None when not a plain decimal number."""
    match = _INDEX.fullmatch(text)
    if match is None:
        return None
    decimals = match.group(2) or ""
    return Decimal(f"{match.group(1)}.{decimals}" if decimals else match.group(1)), len(decimals)


def _year_of(text: str | None, given: str | None) -> tuple[str | None, str | None]:
    """(year, problem) of a row from its year cell and the ``year`` argument."""
    if text:
        if not _YEAR.fullmatch(text):
            return None, f"year '{text}' is not a year (4 digits)"
        if given is not None and text != given:
            return None, f"year '{text}' disagrees with the year given ({given})"
        return text, None
    if given is not None:
        return given, None
    return None, "no year: the table has no year column value here and no year was given"


def _unit_set(year: str) -> Vintage:
    return "legacy" if int(year) <= LAST_LEGACY_YEAR else "current"


@lru_cache(maxsize=2)
def _province_names(unit_set: str) -> dict[str, str]:
    """Code -> registry name of the provinces of a unit set, sorted by code."""
    provinces = (legacy_units() if unit_set == "legacy" else current_units()).provinces
    return dict(sorted(zip(provinces["province_code"], provinces["province_name"], strict=True)))


def _resolve(printed: str, year: str) -> tuple[str | None, str]:
    """(code, registry name) of the province a printed name names in the year's unit set, or
    (None, why not) naming the candidates."""
    vintage = _unit_set(year)
    match = resolve_province_name(printed, vintage)
    if match.code is not None:
        return match.code, match.candidates[0][1]
    if match.candidates:
        listed = "; ".join(f"{code} {name}" for code, name in match.candidates)
        return None, f"'{printed}' is ambiguous among {UNIT_SET_LABELS[vintage]}: {listed}"
    other: Vintage = "current" if vintage == "legacy" else "legacy"
    elsewhere = resolve_province_name(printed, other)
    if elsewhere.candidates:
        listed = "; ".join(f"{code} {name}" for code, name in elsewhere.candidates)
        if vintage == "legacy":
            return None, (
                f"'{printed}' is not one of {UNIT_SET_LABELS['legacy']}, which a {year} table names; "
                f"it is the current province {listed} (since 1 July 2025)"
            )
        successor = dict(legacy_province_crosswalk().itertuples(index=False))
        current = _province_names("current")
        became = "; ".join(
            f"{code} {name}, merged into {successor[code]} {current[successor[code]]}"
            for code, name in elsewhere.candidates
        )
        return None, (
            f"'{printed}' was a province before 1 July 2025 ({became}); a {year} table names "
            f"{UNIT_SET_LABELS['current']}"
        )
    names = _province_names(vintage)
    keys = {label_key(n).replace(" ", ""): n for n in names.values()}
    close = difflib.get_close_matches(label_key(printed).replace(" ", ""), list(keys), n=3, cutoff=0.6)
    hint = f"; closest registry names: {', '.join(keys[k] for k in close)}" if close else ""
    return None, f"'{printed}' matches none of {UNIT_SET_LABELS[vintage]}{hint}"


def _read_rows(text: str, name: str, year: str | None) -> tuple[list[_Row], set[str]]:
    """The resolved rows of a CSV text and the columns it has; PublishedRankingError listing every problem."""
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text)))
    except csv.Error as exc:
        raise PublishedRankingError(f"{name}: malformed CSV ({exc}).") from exc
    numbered = [(n, [_cell(v) for v in cells]) for n, cells in enumerate(records, start=1)]
    numbered = [(n, cells) for n, cells in numbered if any(cells)]
    if not numbered:
        raise PublishedRankingError(f"{name}: the file is empty.")
    header_row, header = numbered[0]
    body = numbered[1:]
    columns: dict[str, int] = {}
    unknown, problems = [], []
    for position, label in enumerate(header):
        if not label:
            if any(position < len(cells) and cells[position] for _, cells in body):
                problems.append(f"column {position + 1} has values but no header")
            continue
        column = _column(label)
        if column is None:
            unknown.append(f"'{label}'")
        elif column and column in columns:
            problems.append(f"two columns are {column}: '{header[columns[column]]}' and '{label}'")
        elif column:
            columns[column] = position
    if unknown:
        known = "; ".join(f"{n} ({', '.join(labels)})" for n, labels in COLUMN_LABELS.items())
        raise PublishedRankingError(
            f"{name}: unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in the header "
            f"(row {header_row}). Known columns: {known}; numbering columns {', '.join(IGNORED_LABELS)} "
            "are read past."
        )
    for needed in ("province", "overall_index"):
        if needed not in columns:
            problems.append(f"no {needed} column ({', '.join(COLUMN_LABELS[needed])})")
    for c in CATEGORIES:
        if f"{c}_rank" in columns and f"{c}_index" not in columns:
            problems.append(
                f"a {c}_rank column without a {c}_index column: ranks are checked against indices"
            )
    if "year" not in columns and year is None:
        problems.append("no year column (Năm) and no year given")
    if problems:
        raise PublishedRankingError(f"{name}: " + "; ".join(problems) + ".")
    if not body:
        raise PublishedRankingError(f"{name}: a header but no data rows.")

    rows: list[_Row] = []
    for n, cells in body:
        if len(cells) > len(header) and any(cells[len(header) :]):
            problems.append(
                f"row {n}: {len(cells)} cells for {len(header)} columns (a decimal comma in a comma-"
                "separated file must be quoted, or use ';' as the separator)"
            )
            continue

        def value(column: str, cells: list[str] = cells) -> str:
            position = columns.get(column)
            return cells[position] if position is not None and position < len(cells) else ""

        row_year, problem = _year_of(value("year") or None, year)
        if problem:
            problems.append(f"row {n}: {problem}")
            continue
        assert row_year is not None
        unit_set = _unit_set(row_year)
        size = len(_province_names(unit_set))
        indices: dict[str, Decimal | None] = {}
        ranks: dict[str, int | None] = {}
        decimals = 0
        row_problems = []
        printed = value("province")
        if not printed:
            row_problems.append("no province name")
        for part in ("overall", *CATEGORIES):
            text = value(f"{part}_index")
            parsed = _parse_index(text) if text else None
            if text and parsed is None:
                row_problems.append(f"{part}_index '{text}' is not a number like 0,485 or 0.485")
            elif part == "overall" and parsed is None:
                row_problems.append("no overall index")
            indices[part] = parsed[0] if parsed else None
            if part == "overall" and parsed:
                decimals = parsed[1]
            text = value(f"{part}_rank")
            match = _RANK.fullmatch(text) if text else None
            ranks[part] = int(match.group(1)) if match else None
            if text and (match is None or ranks[part] == 0):
                row_problems.append(f"{part}_rank '{text}' is not a rank (a whole number from 1)")
            elif match and match.group(2) and int(match.group(2)) != size:
                row_problems.append(
                    f"{part}_rank '{text}' is out of {match.group(2)}, but a {row_year} table ranks {size} provinces"
                )
        code, resolved = _resolve(printed, row_year) if printed else (None, "")
        if printed and code is None:
            row_problems.append(resolved)
        if row_problems:
            problems += [f"row {n}: {p}" for p in row_problems]
            continue
        assert code is not None
        rows.append(_Row(n, row_year, unit_set, code, resolved, printed, indices, decimals, ranks))

    seen: dict[tuple[str, str], _Row] = {}
    for row in rows:
        earlier = seen.setdefault((row.year, row.code), row)
        if earlier is not row:
            problems.append(
                f"rows {earlier.row} and {row.row} both name {row.code} {row.name} in {row.year} "
                f"('{earlier.printed}', '{row.printed}')"
            )
    if problems:
        listed = problems[:_MAX_LISTED_PROBLEMS]
        more = len(problems) - len(listed)
        raise PublishedRankingError(
            f"{name}: {len(problems)} problem{'s' if len(problems) > 1 else ''}, nothing imported "
            "(row numbers count the header as row 1, as a spreadsheet does):\n  "
            + "\n  ".join(listed)
            + (f"\n  ... and {more} more" if more else "")
        )
    return rows, set(columns)


def _year_table(
    rows: list[_Row], columns: set[str], source: str
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[tuple[str, str]]]:
    """One year's table (schema columns and types), its disagreements and its missing provinces."""
    year, unit_set = rows[0].year, rows[0].unit_set
    precision = max(row.decimals for row in rows)
    recomputed = {
        part: competition_ranks([r.indices[part] for r in rows]) for part in ("overall", *CATEGORIES)
    }
    records, disagreements = [], []
    for i, row in enumerate(rows):
        record: dict[str, Any] = {
            "year": year,
            "unit_set": unit_set,
            "province_code": row.code,
            "province_name": row.name,
            "name_as_printed": row.printed,
            "source": source,
            "precision": precision,
        }
        for part in ("overall", *CATEGORIES):
            index = row.indices[part]
            record[f"{part}_index"] = None if index is None else float(index)
            record[f"{part}_rank_printed"] = row.ranks[part]
            record[f"{part}_rank"] = recomputed[part][i]
            if (
                f"{part}_rank" in columns
                and row.ranks[part] is not None
                and row.ranks[part] != recomputed[part][i]
            ):
                disagreements.append(
                    {
                        "year": year,
                        "row": row.row,
                        "province_code": row.code,
                        "province_name": row.name,
                        "name_as_printed": row.printed,
                        "column": f"{part}_rank",
                        "printed": row.ranks[part],
                        "recomputed": recomputed[part][i],
                    }
                )
        records.append(record)
    frame = pd.DataFrame(records).sort_values(["overall_rank", "province_code"], kind="stable")
    table = _frame(to_table(frame.reset_index(drop=True), PUBLISHED_RANKING_SCHEMA))
    present = {row.code for row in rows}
    missing = [(code, name) for code, name in _province_names(unit_set).items() if code not in present]
    return table, disagreements, missing


def _frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table of ``PUBLISHED_RANKING_SCHEMA`` as the frame ``ImportResult`` and ``load_published``
    give: codes as plain strings, indices float64 (NaN when absent), ranks and precision nullable Int32."""
    for name in table.column_names:
        if pa.types.is_dictionary(table.schema.field(name).type):
            table = table.set_column(
                table.schema.get_field_index(name), name, table.column(name).cast(pa.string())
            )
    frame = table.to_pandas(types_mapper={pa.int32(): pd.Int32Dtype()}.get)
    return frame[PUBLISHED_RANKING_SCHEMA.names]


_DISAGREEMENT_COLUMNS = (
    "year",
    "row",
    "province_code",
    "province_name",
    "name_as_printed",
    "column",
    "printed",
    "recomputed",
)


def read_published_csv(
    path: str | os.PathLike[str], *, year: str | None = None, source: str | None = None
) -> ImportResult:
    """Read a published ranking table (CSV, as the ministry prints it; see docs/published-rankings.md).

    ``year``: the table's year when it has no year column (must agree with the column when both are
    given); ``source``: stored with every row, the file name by default. Raises PublishedRankingError
    naming every problem (unknown column, unreadable number, unresolved or repeated province) with its
    row; nothing is imported then.
    """
    return _read_published(Path(path), _file_bytes(Path(path)), year=year, source=source)


def _file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PublishedRankingError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def _read_published(path: Path, data: bytes, *, year: str | None, source: str | None) -> ImportResult:
    """``read_published_csv`` on the file's bytes."""
    if year is not None:
        year = str(year).strip()
        if not _YEAR.fullmatch(year):
            raise PublishedRankingError(f"year '{year}' is not a year (4 digits)")
    rows, columns = _read_rows(_decode(data, path.name), path.name, year)
    source = source if source is not None else path.name
    tables: dict[str, pd.DataFrame] = {}
    missing: dict[str, list[tuple[str, str]]] = {}
    disagreements: list[dict[str, Any]] = []
    for row_year in sorted({row.year for row in rows}):
        table, wrong, absent = _year_table([r for r in rows if r.year == row_year], columns, source)
        tables[row_year], missing[row_year] = table, absent
        disagreements += wrong
    frame = pd.DataFrame(disagreements, columns=list(_DISAGREEMENT_COLUMNS))
    frame = frame.astype({"row": "int64", "printed": "Int32", "recomputed": "Int32"})
    return ImportResult(tables=tables, disagreements=frame, missing=missing, source=source)


# --- the store -------------------------------------------------------------------------------------


def import_published_ranking(
    store: DataStore, path: str | os.PathLike[str], *, year: str | None = None, source: str | None = None
) -> ImportResult:
    """Read a published table and publish each of its years to ``published_rankings/year=<year>``.

    A year's partition is replaced as a whole (a corrected file replaces the year); the same file gives
    the same rows in the same order, hence the same content hash. The manifest records the source, its
    sha256, the unit set, the precision, the missing provinces and the number of disagreements.
    """
    data = _file_bytes(Path(path))
    result = _read_published(Path(path), data, year=year, source=source)
    file_sha256 = hashlib.sha256(data).hexdigest()
    for table_year, frame in result.tables.items():
        manifest = {
            "source": result.source,
            "source_sha256": file_sha256,
            "unit_set": str(frame["unit_set"].iloc[0]),
            "precision": int(frame["precision"].iloc[0]),
            "missing_provinces": [code for code, _ in result.missing[table_year]],
            "rank_disagreements": int((result.disagreements["year"] == table_year).sum()),
        }
        result.published[table_year] = store.publish(
            PUBLISHED_RANKINGS,
            {"year": table_year},
            to_table(frame, PUBLISHED_RANKING_SCHEMA),
            manifest,
        )
    return result


def load_published(store: DataStore, year: str) -> pd.DataFrame | None:
    """The imported table of a year (as ``ImportResult.tables[year]``), or None if never imported."""
    partition = {"year": str(year)}
    if not store.exists(PUBLISHED_RANKINGS, partition):
        return None
    table = store.read_partition(PUBLISHED_RANKINGS, partition)
    table = table.append_column("year", pa.array([str(year)] * table.num_rows, pa.string()))
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in PUBLISHED_RANKING_SCHEMA
    ]
    return _frame(pa.Table.from_arrays(columns, schema=PUBLISHED_RANKING_SCHEMA))


# --- baselines on the current provinces ------------------------------------------------------------

BASELINE_COLUMNS: tuple[str, ...] = (
    "unit_code",
    "overall_index",
    "overall_rank",
    *(f"{c}_index" for c in CATEGORIES),
    *(f"{c}_rank" for c in CATEGORIES),
    "basis",
    "predecessors",
    "predecessors_missing",
)


def _decimal(value: Any) -> Decimal | None:
    """A stored index as the decimal it was printed as (the float's shortest repr), None when absent."""
    return None if value is None or pd.isna(value) else Decimal(repr(float(value)))


def baseline_on_current_units(published: pd.DataFrame) -> pd.DataFrame:
    """Baselines on the 34 current provinces from one imported year (``load_published`` / ``tables``).

    One row per current province that has a baseline (``BASELINE_COLUMNS``), sorted by code. A table on
    current units keeps its indices (``basis`` "published"). A table on legacy units is crosswalked
    (``basis`` "published_crosswalk"): a current province's index is the plain mean of the indices of
    its predecessors present in the table, rounded half up at the table's precision; a category index
    only when every predecessor used has it. ``predecessors`` / ``predecessors_missing``: the legacy
    codes used / absent, comma-joined (empty for a current table). Ranks are recomputed by standard
    competition ranking among the current provinces that have a baseline.
    """
    for column in ("year", "unit_set", "province_code", "precision", "overall_index"):
        if column not in published.columns:
            raise ValueError(f"not a published ranking table: no {column!r} column")
    if published.empty:
        return pd.DataFrame(columns=list(BASELINE_COLUMNS))
    years, unit_sets = set(published["year"].astype(str)), set(published["unit_set"].astype(str))
    if len(years) != 1 or len(unit_sets) != 1:
        raise ValueError(
            f"one year on one unit set at a time, got years {sorted(years)} on {sorted(unit_sets)}"
        )
    unit_set = unit_sets.pop()
    precision = int(published["precision"].max())
    parts = ("overall", *CATEGORIES)
    by_code = {
        str(row["province_code"]): {p: _decimal(row.get(f"{p}_index")) for p in parts}
        for _, row in published.iterrows()
    }
    records: list[dict[str, Any]] = []
    if unit_set == "current":
        for code in sorted(by_code):
            records.append(
                {"unit_code": code, **{p: by_code[code][p] for p in parts}, "basis": "published"}
                | {"predecessors": "", "predecessors_missing": ""}
            )
    elif unit_set == "legacy":
        step = Decimal(1).scaleb(-precision)
        groups: dict[str, list[str]] = {}
        for old, new in legacy_province_crosswalk().itertuples(index=False):
            groups.setdefault(new, []).append(old)
        for code in sorted(groups):
            olds = sorted(groups[code])
            used = [old for old in olds if old in by_code]
            if not used:
                continue
            record: dict[str, Any] = {"unit_code": code, "basis": "published_crosswalk"}
            for p in parts:
                values = [by_code[old][p] for old in used]
                if any(v is None for v in values):
                    record[p] = None
                    continue
                mean = sum(values, Decimal(0)) / len(values)  # type: ignore[arg-type]
                record[p] = mean.quantize(step, rounding=ROUND_HALF_UP)
            record["predecessors"] = ",".join(used)
            record["predecessors_missing"] = ",".join(old for old in olds if old not in by_code)
            records.append(record)
    else:
        raise ValueError(f"unknown unit set {unit_set!r} (legacy or current)")
    out: dict[str, list[Any]] = {"unit_code": [r["unit_code"] for r in records]}
    for p in parts:
        values = [r[p] for r in records]
        out[f"{p}_index"] = [None if v is None else float(v) for v in values]
        out[f"{p}_rank"] = competition_ranks(values)
    for column in ("basis", "predecessors", "predecessors_missing"):
        out[column] = [r[column] for r in records]
    frame = pd.DataFrame(out)
    dtypes = {f"{p}_index": "float64" for p in parts} | {f"{p}_rank": "Int32" for p in parts}
    return frame.astype(dtypes)[list(BASELINE_COLUMNS)]
