"""Commune report files (Excel / CSV) as communes send them -> records keyed by canonical field names.

``read_report_file`` detects the format by content (an ``.xlsx`` is a zip; anything else must be
CSV text), finds the header row (or the label column of a key-value form) through
``header_mapping.field_for_label``, and returns one record per report with the values read the
Vietnamese way (``1.326`` = 1326, ``Có``/``x`` = yes, ``Quý III/2026`` = ``2026-Q3``). It does not
type the records: ``conform.conform("commune_reports", ...)`` does, and quarantines what cannot be
read, so a value this module cannot parse is left as written. The contract is in docs/sources.md,
"Commune report files (Excel / CSV)".
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import openpyxl
import pyarrow as pa
from charset_normalizer import from_bytes

from egov_index.header_mapping import UNIT_FIELDS, field_for_label, label_key
from egov_index.periods import LOCAL_TZ
from egov_index.schemas import COMMUNE_REPORT_FIELDS

MAX_FILE_BYTES = 20 * 2**20
MAX_UNCOMPRESSED_BYTES = 200 * 2**20  # all entries of an .xlsx together, as declared in the zip
MAX_COMPRESSION_RATIO = 100  # of one .xlsx entry larger than 1 MiB
HEADER_SCAN_ROWS = 30  # the header row (or pair of rows) must start within these rows
MIN_MAPPED_LABELS = 2  # a header row / label column needs at least this many known labels
_RATIO_MIN_ENTRY_BYTES = 2**20
_MAX_SHEET_CELLS = 5_000_000
_FORM_SCAN_ROWS = 300
_FORM_LABEL_COLUMNS = 10
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8", "utf-8-sig"),
    (b"\xff\xfe", "utf-16-le", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be", "utf-16-be"),
)

# Fields that identify the unit and the period: a row with none of them filled can be a notes row.
_ID_FIELDS = frozenset({*UNIT_FIELDS, "province_code", "period"})
_CODE_WIDTHS = {"commune_code": 5, "province_code": 2}
_TYPES: dict[str, pa.DataType] = {f.name: f.type for f in COMMUNE_REPORT_FIELDS}

# Folded (label_key) words.
_YES = frozenset({"co", "x", "da ban hanh", "da co", "yes", "y", "1", "true"})
_NO = frozenset({"khong", "chua", "chua ban hanh", "chua co", "no", "n", "0", "false"})
_TOTALS = frozenset({"tong", "tong cong", "cong", "tong so", "toan tinh", "toan xa"})
# Column / form labels of the layout itself, neither mapped nor reported as unmapped.
_LAYOUT_WORDS = frozenset(
    "stt|tt|so tt|so thu tu|ghi chu|chi tieu|noi dung|so lieu|gia tri|don vi tinh|dvt".split("|")
)
_NOTES = re.compile(
    r"^(ghi chu|luu y|chu thich|nguoi lap|thu truong|chu tich|noi nhan|xac nhan)\b"
    r"|\bngay (\d{1,2} )?thang (\d{1,2} )?nam\b"
)
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
_QUARTER = re.compile(r"\b(?:quy|q) ?(iv|i{1,3}|[1-4]) (?:nam )?(\d{4})\b")
_QUARTER_YEAR_FIRST = re.compile(r"\b(\d{4}) q([1-4])\b")
_VN_NUMBER = re.compile(r"([+-]?)(\d{1,3}(?:\.\d{3})+|\d{1,3}(?: \d{3})+|\d+)(?:,(\d+))?")
_DOT_DECIMAL = re.compile(r"([+-]?)(\d+)\.(\d{1,2}|\d{4,})")
_VN_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ ,T]+(\d{1,2})[:hH](\d{2})(?::(\d{2}))?)?")
_NUMBERING = re.compile(r"\(?(\d{1,3}|[A-Za-z])\)?")
_ENUMERATOR = re.compile(r"^(?:[IVX]+[.)]|\d+(?:\.\d+)*[.)]?|[a-zđ][.)])\s*")
_TRAILING_PARENS = re.compile(r"\s*\([^()]*\)$")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_TONES = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
_VIETNAMESE_LETTERS = frozenset(
    unicodedata.normalize("NFC", base + tone)
    for letter in "aăâeêioôơuưy"
    for base in (letter, letter.upper())
    for tone in _TONES
) | {"đ", "Đ"}
_TYPOGRAPHY = frozenset("\u00a0–—‘’“”…•°€×")


class ReportFileError(ValueError):
    """A report file cannot be read at all (too large, not Excel or CSV, no header): tell the sender."""


@dataclass(frozen=True)
class ParsedReportFile:
    """The reports of one file, with where each came from and what was left out."""

    records: list[dict[str, Any]]  # canonical field names (+ unit fields) -> str | int | float | bool | None
    row_refs: list[str]  # one per record: "Sheet1!row 7", "Xã A!rows 4-40" (form) or "line 5"
    unmapped_headers: list[str]  # column labels / form labels that map to no field
    skipped_rows: list[tuple[str, str]]  # (ref, why): numbering, total and notes rows, skipped sheets
    format: Literal["xlsx", "csv"]
    encoding: str | None = None  # CSV only: utf-8, utf-8-sig, utf-16-le, utf-16-be or cp1258
    delimiter: str | None = None  # CSV only: ";" or ","


# --- value parsing ------------------------------------------------------------------------------


def parse_number(text: str) -> int | float | None:
    """A number written the Vietnamese way: ``1.326`` = 1326, ``93,88`` = 93.88, ``93,88%`` = 0.9388.

    Dots group thousands, the comma is the decimal mark, spaces may group thousands too; a single dot
    not followed by exactly three digits is read as a decimal point (``12.0`` = 12). A percentage is
    returned as a fraction (always a float). None when the text is not such a number.
    """
    s = unicodedata.normalize("NFKC", text).strip()
    percent = s.endswith("%")
    if percent:
        s = s[:-1].rstrip()
    if m := _VN_NUMBER.fullmatch(s):
        digits = m.group(1) + re.sub(r"[. ]", "", m.group(2)) + (f".{m.group(3)}" if m.group(3) else "")
    elif m := _DOT_DECIMAL.fullmatch(s):
        digits = f"{m.group(1)}{m.group(2)}.{m.group(3)}"
    else:
        return None
    number = Decimal(digits)
    if percent:
        return float(number / 100)
    return int(number) if number == number.to_integral_value() else float(number)


def parse_bool(text: str) -> bool | None:
    """Có / x / Đã ban hành / Yes / 1 / TRUE -> True; Không / Chưa / No / 0 / FALSE -> False; else None."""
    key = label_key(text)
    return True if key in _YES else False if key in _NO else None


def find_quarter(text: str) -> str | None:
    """The quarter named in a text ("QUÝ III/2026", "Quý 3 năm 2026", "Q3/2026", "2026-Q3") as '2026-Q3'."""
    key = label_key(text)
    if m := _QUARTER.search(key):
        quarter = _ROMAN.get(m.group(1)) or int(m.group(1))
        return f"{m.group(2)}-Q{quarter}"
    if m := _QUARTER_YEAR_FIRST.search(key):
        return f"{m.group(1)}-Q{m.group(2)}"
    return None


def _clean(value: Any) -> Any:
    """A cell as read: text NFC-normalised, whitespace collapsed, empty text -> None."""
    if isinstance(value, str):
        text = re.sub(r"\s+", " ", unicodedata.normalize("NFC", value).translate(_INVISIBLE)).strip()
        return text or None
    return value


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _count(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        number = parse_number(value)
        return number if isinstance(number, int) else value  # a percentage or fraction is no count
    return value if isinstance(value, int | float) else _text(value)


def _flag(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        parsed = parse_bool(value)
        return value if parsed is None else parsed
    return value if isinstance(value, int | float) else _text(value)


def _moment(value: Any) -> Any:
    """Excel date/time or a text date (dd/mm/yyyy [hh:mm[:ss]] or ISO) -> ISO-8601, local time if naive."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            if m := _VN_DATE.fullmatch(value):
                day, month, year, hour, minute, second = (int(g or 0) for g in m.groups())
                moment = datetime(year, month, day, hour, minute, second)
            else:
                moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        return value if isinstance(value, int | float) else _text(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)).isoformat()


def _code(value: Any, width: int) -> str | None:
    """A unit code; Excel and CSV tools drop leading zeros (4 -> '00004')."""
    text = _text(value)
    if text is not None and text.isascii() and text.isdigit() and len(text) < width:
        return text.zfill(width)
    return text


def _convert(name: str, value: Any) -> Any:
    """A cleaned cell -> the value the record carries for field ``name``."""
    if value is None:
        return None
    if name in _CODE_WIDTHS:
        return _code(value, _CODE_WIDTHS[name])
    if name == "period":
        text = str(_text(value))
        return find_quarter(text) or text
    kind = _TYPES.get(name, pa.string())
    if pa.types.is_integer(kind):
        return _count(value)
    if pa.types.is_boolean(kind):
        return _flag(value)
    if pa.types.is_timestamp(kind):
        return _moment(value)
    return _text(value)


def _field(label: str) -> str | None:
    """The field of a label, also without a leading enumerator ("1.", "a)") or a trailing "(...)"."""
    bare = _ENUMERATOR.sub("", label)
    for candidate in (label, bare, _TRAILING_PARENS.sub("", bare)):
        if candidate and (name := field_for_label(candidate)):
            return name
    return None


# --- sheets: Excel worksheets and CSV text as one grid model ---------------------------------------


@dataclass(frozen=True)
class _Sheet:
    name: str
    rows: list[list[Any]]  # cleaned cell values, 0-based
    merges: dict[tuple[int, int], tuple[int, int, bool]]  # cell -> (top row, left column, spans columns)
    line_numbers: list[int] | None = None  # CSV: the file line where each row starts

    def ref(self, r: int) -> str:
        return f"line {self.line_numbers[r]}" if self.line_numbers else f"{self.name}!row {r + 1}"

    def range_ref(self, first: int, last: int) -> str:
        if self.line_numbers:
            return f"lines {self.line_numbers[first]}-{self.line_numbers[last]}"
        return f"{self.name}!rows {first + 1}-{last + 1}"

    @property
    def width(self) -> int:
        return max((len(row) for row in self.rows), default=0)

    def raw(self, r: int, c: int) -> Any:
        row = self.rows[r]
        return row[c] if c < len(row) else None

    def label(self, r: int, c: int) -> str:
        """Header text of a cell; a merged cell reads its range's top-left value."""
        top = self.merges.get((r, c))
        return _text(self.raw(top[0], top[1]) if top else self.raw(r, c)) or ""

    def value(self, r: int, c: int) -> Any:
        """Data value of a cell; a cell merged down a single column reads the range's top value."""
        value = self.raw(r, c)
        top = self.merges.get((r, c))
        if value is None and top and not top[2]:
            return self.raw(top[0], top[1])
        return value

    def spans_columns(self, r: int, c: int) -> bool:
        return (r, c) in self.merges and self.merges[(r, c)][2]

    def is_empty(self, r: int) -> bool:
        return all(v is None for v in self.rows[r])

    def row_text(self, r: int) -> str:
        return " | ".join(_text(v) or "" for v in self.rows[r] if v is not None)[:80]


@dataclass(frozen=True)
class _Header:
    top: int
    bottom: int
    columns: dict[int, str]  # column -> field
    unmapped: list[str]


@dataclass
class _Collector:
    records: list[dict[str, Any]] = field(default_factory=list)
    row_refs: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    found_header: bool = False


def _column_labels(sheet: _Sheet, top: int, bottom: int, c: int) -> list[str]:
    """Labels to try for a column: one header row, or "parent child", child, then an unmerged parent."""
    parent = sheet.label(top, c)
    child = sheet.label(bottom, c) if bottom != top else ""
    if not child or child == parent:
        return [parent] if parent else []
    if not parent:
        return [child]
    return [f"{parent} {child}", child] + ([] if sheet.spans_columns(top, c) else [parent])


def _header_at(sheet: _Sheet, top: int, bottom: int) -> _Header:
    columns: dict[int, str] = {}
    unmapped: list[str] = []
    for c in range(sheet.width):
        labels = _column_labels(sheet, top, bottom, c)
        if not labels:
            continue
        name = next((n for n in map(_field, labels) if n), None)
        if name is None:
            if label_key(labels[0]) not in _LAYOUT_WORDS:
                unmapped.append(labels[0])
        elif name in columns.values():
            unmapped.append(f"{labels[0]} (second column for {name})")
        else:
            columns[c] = name
    return _Header(top, bottom, columns, unmapped)


def _find_header(sheet: _Sheet) -> _Header | None:
    """The row (or pair of rows) in the first rows with the most mapped labels; one row wins a tie."""
    best: _Header | None = None
    best_key = (0, True)
    for top in range(min(HEADER_SCAN_ROWS, len(sheet.rows))):
        for bottom in (top, top + 1):
            if bottom >= len(sheet.rows) or sheet.is_empty(top):
                continue
            header = _header_at(sheet, top, bottom)
            key = (len(header.columns), bottom == top)
            if key > best_key:
                best, best_key = header, key
    return best


def _find_label_column(sheet: _Sheet) -> tuple[int, set[str]]:
    """The column (among the first ones) holding the most mapped labels, for the key-value form layout."""
    best: tuple[int, set[str]] = (0, set())
    for c in range(min(sheet.width, _FORM_LABEL_COLUMNS)):
        labels = (sheet.raw(r, c) for r in range(min(len(sheet.rows), _FORM_SCAN_ROWS)))
        names = {n for v in labels if isinstance(v, str) and (n := _field(v))}
        if len(names) > len(best[1]):
            best = (c, names)
    return best


def _title_period(sheet: _Sheet, stop: int) -> str | None:
    texts = (v for row in sheet.rows[:stop] for v in row if isinstance(v, str))
    return next((q for v in texts if (q := find_quarter(v))), None)


def _title_commune(sheet: _Sheet, stop: int) -> str | None:
    """The issuing commune of a form's title line ("ỦY BAN NHÂN DÂN XÃ TÂN HÒA", "UBND PHƯỜNG ..."), as written."""
    for value in (v for row in sheet.rows[:stop] for v in row if isinstance(v, str)):
        words = value.split(" ")
        key = label_key(value)
        prefix = 4 if key.startswith("uy ban nhan dan ") else 1 if key.startswith("ubnd ") else 0
        if prefix and label_key(" ".join(words[prefix:])).startswith(("xa ", "phuong ", "dac khu ")):
            return " ".join(words[prefix:])
    return None


def _is_numbering_row(row: list[Any]) -> bool:
    """A row of column numbers under the header: (1) (2) (3) ... or A B 1 2 ..."""
    tokens = [_text(v) or "" for v in row if v is not None]
    matches = [_NUMBERING.fullmatch(t) for t in tokens]
    if len(tokens) < 2 or not all(matches):
        return False
    numbers = [int(m.group(1)) for m in matches if m and m.group(1).isdigit()]
    return all(a < b for a, b in zip(numbers, numbers[1:], strict=False))


def _is_notes_row(sheet: _Sheet, r: int, id_columns: list[int], first_data_column: int) -> bool:
    cells = [(c, v) for c, v in enumerate(sheet.rows[r]) if v is not None]
    if isinstance(cells[0][1], str) and _NOTES.search(label_key(cells[0][1])):
        return True
    if any(sheet.value(r, c) is not None for c in id_columns):
        return False
    return all(isinstance(v, str) and c < first_data_column for c, v in cells)


def _is_total_row(sheet: _Sheet, r: int, label_columns: set[int]) -> bool:
    """A "Tổng cộng" row: the word stands where the unit names are (or in the leading columns)."""
    return any(isinstance(v := sheet.raw(r, c), str) and label_key(v) in _TOTALS for c in label_columns)


def _read_table(sheet: _Sheet, header: _Header, out: _Collector) -> None:
    """Layout (a): one row per commune under the header, up to an empty row or a notes row."""
    out.unmapped.extend(header.unmapped)
    id_columns = [c for c, n in header.columns.items() if n in _ID_FIELDS]
    first_data_column = min(c for c, n in header.columns.items() if n not in _ID_FIELDS)
    label_columns = {*id_columns, *range(first_data_column)}
    period = _title_period(sheet, header.top)
    started = ended = False
    for r in range(header.bottom + 1, len(sheet.rows)):
        if sheet.is_empty(r):  # in a worksheet an empty row ends the table; a CSV may have blank lines
            ended = ended or (started and sheet.line_numbers is None)
            continue
        if ended:
            out.skipped.append((sheet.ref(r), f"after the end of the table: {sheet.row_text(r)!r}"))
        elif not started and _is_numbering_row(sheet.rows[r]):
            out.skipped.append((sheet.ref(r), "column numbering row"))
        elif _is_notes_row(sheet, r, id_columns, first_data_column):
            out.skipped.append((sheet.ref(r), f"notes row: {sheet.row_text(r)!r}"))
            ended = True
        elif _is_total_row(sheet, r, label_columns):
            out.skipped.append((sheet.ref(r), f"total row: {sheet.row_text(r)!r}"))
        else:
            record = {n: _convert(n, sheet.value(r, c)) for c, n in header.columns.items()}
            if period and record.get("period") is None:
                record["period"] = period
            out.records.append(record)
            out.row_refs.append(sheet.ref(r))
        started = True


def _read_form(sheet: _Sheet, label_column: int, out: _Collector) -> None:
    """Layout (b): one report per sheet, a label column and the value in the next column."""
    record: dict[str, Any] = {}
    mapped_rows: list[int] = []
    unmapped: list[tuple[int, str]] = []
    for r in range(len(sheet.rows)):
        label = sheet.raw(r, label_column)
        if not isinstance(label, str):
            continue
        span = 1
        while sheet.merges.get((r, label_column + span), (None, None))[:2] == (r, label_column):
            span += 1
        value = sheet.value(r, label_column + span)
        name = _field(label)
        if name is None:
            if value is not None and label_key(label) not in _LAYOUT_WORDS:
                unmapped.append((r, label))
        elif name in record:
            unmapped.append((r, f"{label} (second row for {name})"))
        else:
            record[name] = _convert(name, value)
            mapped_rows.append(r)
    first, last = mapped_rows[0], mapped_rows[-1]
    out.unmapped.extend(label for r, label in unmapped if r > first and not _NOTES.search(label_key(label)))
    if record.get("period") is None and (period := _title_period(sheet, first)):
        record["period"] = period
    if not record.get("commune_name") and not record.get("commune_code"):
        if commune := _title_commune(sheet, first):
            record["commune_name"] = commune
    out.records.append(record)
    out.row_refs.append(sheet.range_ref(first, last))


def _sheet_layout(sheet: _Sheet) -> tuple[_Header | None, int, set[str]]:
    """(header, None, fields) for a table; (None, label column, fields) for a form: the one mapping more."""
    header = _find_header(sheet)
    table_fields = set(header.columns.values()) if header else set()
    label_column, form_fields = _find_label_column(sheet)
    if len(form_fields) > len(table_fields):
        return None, label_column, form_fields
    return header, 0, table_fields


def _read_sheet(sheet: _Sheet, out: _Collector) -> None:
    header, label_column, names = _sheet_layout(sheet)
    where = sheet.name or "file"
    if len(names) < MIN_MAPPED_LABELS:
        out.skipped.append((where, f"no header row with {MIN_MAPPED_LABELS}+ known labels in the first rows"))
        return
    out.found_header = True
    if names <= _ID_FIELDS:
        out.skipped.append((where, "only unit columns, no report figures (a list of units?)"))
    elif header is not None:
        _read_table(sheet, header, out)
    else:
        _read_form(sheet, label_column, out)


# --- formats -------------------------------------------------------------------------------------------


def _check_zip(data: bytes, name: str, max_uncompressed_bytes: int) -> None:
    """Refuse zip bombs from the zip directory, before anything is decompressed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ReportFileError(
            f"{name}: looks like an .xlsx but the zip is damaged ({exc}); save it again."
        ) from exc
    total = sum(e.file_size for e in entries)
    if total > max_uncompressed_bytes:
        raise ReportFileError(
            f"{name}: the workbook unpacks to {total:,} bytes, over the {max_uncompressed_bytes:,}-byte limit; "
            "remove images and unused sheets or split the report, then send it again."
        )
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > _RATIO_MIN_ENTRY_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise ReportFileError(
                f"{name}: entry {entry.filename} is compressed {ratio:,.0f}:1 (limit {MAX_COMPRESSION_RATIO}:1), "
                "which real workbooks never are (zip bomb?); the file was not opened. Ask the sender for a "
                "workbook saved by Excel or LibreOffice."
            )


def _xlsx_sheets(data: bytes, name: str, out: _Collector) -> Iterator[_Sheet]:
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except Exception as exc:  # openpyxl raises many types for a file it cannot read
        raise ReportFileError(
            f"{name}: cannot be opened as an Excel workbook ({type(exc).__name__}: {exc}); "
            "open it in Excel or LibreOffice, save as .xlsx and send it again."
        ) from exc
    for ws in workbook.worksheets:
        if ws.sheet_state != "visible":
            out.skipped.append((ws.title, "hidden sheet"))
            continue
        if ws.max_row * ws.max_column > _MAX_SHEET_CELLS:
            raise ReportFileError(
                f"{name}: sheet {ws.title!r} spans {ws.dimensions} ({ws.max_row * ws.max_column:,} cells, "
                f"limit {_MAX_SHEET_CELLS:,}); delete the empty rows and columns after the table."
            )
        rows = [[_clean(v) for v in row] for row in ws.iter_rows(values_only=True)]
        merges: dict[tuple[int, int], tuple[int, int, bool]] = {}
        for rng in ws.merged_cells.ranges:
            wide = rng.max_col > rng.min_col
            for r in range(rng.min_row, min(rng.max_row, ws.max_row) + 1):
                for c in range(rng.min_col, min(rng.max_col, ws.max_column) + 1):
                    merges[(r - 1, c - 1)] = (rng.min_row - 1, rng.min_col - 1, wide)
        yield _Sheet(ws.title, rows, merges)


def _plausible_cp1258(data: bytes) -> str | None:
    """The text if the bytes read as Vietnamese Windows-1258 (letters and the verdict of charset-normalizer)."""
    try:
        text = unicodedata.normalize("NFC", data.decode("cp1258"))
    except UnicodeDecodeError:
        return None
    if any(ord(ch) > 127 and ch not in _VIETNAMESE_LETTERS and ch not in _TYPOGRAPHY for ch in text):
        return None
    return text if from_bytes(data, cp_isolation=["cp1258"]).best() is not None else None


def _decode(data: bytes, name: str) -> tuple[str, str]:
    """(text, encoding): a byte-order mark first, then strict UTF-8, then a verified Windows-1258."""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec), label
            except UnicodeDecodeError as exc:
                raise ReportFileError(
                    f"{name}: starts with a {label} byte-order mark but is not valid {codec} ({exc}); "
                    "save it again as CSV UTF-8."
                ) from exc
    if b"\x00" in data:
        raise ReportFileError(
            f"{name}: contains NUL bytes (UTF-16 without a byte-order mark, or a binary file); "
            "save it as .xlsx or as 'CSV UTF-8' and send it again."
        )
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    text = _plausible_cp1258(data)
    if text is None:
        raise ReportFileError(
            f"{name}: neither an .xlsx workbook nor CSV text in a known encoding (tried UTF-8, UTF-16 with "
            "byte-order mark, Windows-1258; old TCVN3/VNI fonts are not supported). Save it as .xlsx or as "
            "'CSV UTF-8' and send it again."
        )
    return text, "cp1258"


def _csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, list[Any]]]:
    """(first line number, cleaned cells) of each CSV record; blank lines give empty rows."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 1
    for row in reader:
        yield line, [_clean(v) for v in row]
        line = reader.line_num + 1


def _csv_sheet(text: str, delimiter: str, limit: int | None = None) -> _Sheet:
    lines, rows = [], []
    for line, row in islice(_csv_rows(text, delimiter), limit):
        lines.append(line)
        rows.append(row)
    return _Sheet("", rows, {}, lines)


def _choose_delimiter(text: str) -> str:
    """';' or ',': the one under which the first rows show more known labels, else the more frequent one."""
    first_line = next((line for line in text.splitlines() if line.strip()), "")

    def score(delimiter: str) -> tuple[int, int]:
        sheet = _csv_sheet(text, delimiter, limit=HEADER_SCAN_ROWS + 1)
        return len(_sheet_layout(sheet)[2]), first_line.count(delimiter)

    return max(";,", key=score)


# --- entry point ---------------------------------------------------------------------------------------


def read_report_file(
    path: Path,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES,
) -> ParsedReportFile:
    """Read the commune reports of one Excel (.xlsx) or CSV file; raise ReportFileError if it is unusable."""
    path = Path(path)
    size = path.stat().st_size
    too_big = (
        f"{path.name}: {{size:,}} bytes, over the {max_bytes:,}-byte limit for a report file; "
        "remove images or split the report, then send it again."
    )
    if size > max_bytes:
        raise ReportFileError(too_big.format(size=size))
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ReportFileError(too_big.format(size=len(data)))
    if not data.strip():
        raise ReportFileError(f"{path.name}: the file is empty; send the report again.")
    if data.startswith(_OLE2_MAGIC):
        raise ReportFileError(
            f"{path.name}: an old-format .xls or a password-protected workbook; "
            "remove the password and save it as .xlsx, then send it again."
        )
    out = _Collector()
    encoding = delimiter = None
    if data.startswith(_ZIP_MAGIC):
        _check_zip(data, path.name, max_uncompressed_bytes)
        file_format: Literal["xlsx", "csv"] = "xlsx"
        for sheet in _xlsx_sheets(data, path.name, out):
            _read_sheet(sheet, out)
    else:
        file_format = "csv"
        text, encoding = _decode(data, path.name)
        try:
            delimiter = _choose_delimiter(text)
            _read_sheet(_csv_sheet(text, delimiter), out)
        except csv.Error as exc:
            raise ReportFileError(f"{path.name}: malformed CSV ({exc}); save it again as CSV.") from exc
    if not out.found_header:
        hint = " (it looks like HTML/XML saved with an Excel extension)" if data.lstrip()[:1] == b"<" else ""
        raise ReportFileError(
            f"{path.name}: no header row found{hint}: no row among the first {HEADER_SCAN_ROWS} (and no label "
            f"column) has {MIN_MAPPED_LABELS} or more of the labels of docs/sources.md "
            "(header_mapping.HEADER_LABELS). Use the report template's column labels and send it again."
        )
    return ParsedReportFile(
        records=out.records,
        row_refs=out.row_refs,
        unmapped_headers=list(dict.fromkeys(out.unmapped)),
        skipped_rows=out.skipped,
        format=file_format,
        encoding=encoding,
        delimiter=delimiter,
    )
