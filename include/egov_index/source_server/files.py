"""Commune reports as the files communes really send: Excel tables and forms, CSV in many encodings.

``write_report_files`` writes the same reports the API serves (``generator.commune_reports``
with the same seed and rates) into an inbox directory, each commune in one of ``FILE_STYLES``
chosen deterministically from the seed, the commune and the period. Labels are the first label
of each field in ``header_mapping.HEADER_LABELS``. The contract (layouts, value formats, file
names) is in docs/sources.md, "Report files written by the reference server".
"""

from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from egov_index.header_mapping import HEADER_LABELS
from egov_index.periods import LOCAL_TZ, parse_period
from egov_index.registry import current_units
from egov_index.schemas import COMMUNE_REPORT_FIELDS
from egov_index.source_server.generator import DEFAULT_SEED, Record, _rng, commune_reports
from egov_index.source_server.legacy import strip_diacritics


@dataclass(frozen=True)
class FileStyle:
    """How a file is written: layout, and for CSV the encoding, delimiter and Unicode form."""

    layout: str  # table (one commune), form (label | value), province-table (its communes), csv
    encoding: str = ""
    delimiter: str = ""
    normal_form: str = "NFC"


FILE_STYLES: dict[str, FileStyle] = {
    "xlsx-table": FileStyle("table"),
    "xlsx-form": FileStyle("form"),
    "xlsx-province-table": FileStyle("province-table"),
    "csv-utf8-comma": FileStyle("csv", "utf-8", ","),
    "csv-utf8-bom-semicolon": FileStyle("csv", "utf-8-sig", ";"),
    "csv-utf8-nfd-comma": FileStyle("csv", "utf-8", ",", "NFD"),
    "csv-utf16-semicolon": FileStyle("csv", "utf-16", ";"),
    "csv-cp1258-semicolon": FileStyle("csv", "cp1258", ";"),
    "csv-cp1258-comma": FileStyle("csv", "cp1258", ","),
}
TEXT_NUMBER_SHARE = 0.25  # share of count cells an Excel file holds as Vietnamese text, e.g. '1.326'
TIMESTAMP_FORMAT = "%d/%m/%Y %H:%M:%S"  # local time (UTC+7), no offset

_CATEGORY_TITLES = {
    "c1": "I. Hạ tầng kỹ thuật công nghệ thông tin",
    "c2": "II. Ứng dụng công nghệ thông tin trong nội bộ cơ quan",
    "c3": "III. Trang thông tin điện tử",
    "c5": "IV. Cơ chế, chính sách",
    "c6": "V. Nguồn nhân lực công nghệ thông tin",
}
_CATEGORY = {f.name: f.category for f in COMMUNE_REPORT_FIELDS}
_COUNTS = tuple(f.name for f in COMMUNE_REPORT_FIELDS if f.category != "key" and str(f.type) == "int64")
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")  # the combining marks cp1258 has
_ROMAN = ("I", "II", "III", "IV")
_BOLD = Font(bold=True)
_CENTRED = Alignment(horizontal="center", vertical="center", wrap_text=True)


def quarter_label(period: str) -> str:
    """'2026-Q3' -> 'Quý III/2026'."""
    quarter = parse_period(period)
    return f"Quý {_ROMAN[(quarter.start.month - 1) // 3]}/{quarter.start.year}"


def vietnamese_number(value: int) -> str:
    """1326 -> '1.326' (thousands grouped with dots)."""
    return f"{value:,}".replace(",", ".")


def encode_cp1258(text: str) -> bytes:
    """Windows-1258: letters it lacks precomposed are written as base letter + combining tone mark."""
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            base = unicodedata.normalize("NFC", "".join(p for p in parts if p not in _TONE_MARKS))
            out += (base + "".join(p for p in parts if p in _TONE_MARKS)).encode("cp1258")
    return bytes(out)


def _columns(records: list[Record]) -> list[str]:
    """The fields written, in record order: report_id is the system's, never in a file."""
    names = [name for name in records[0] if name != "report_id"]
    if any("district_name" in r for r in records) and "district_name" not in names:
        at = names.index("commune_name") + 1
        names[at:at] = ["district_name", "province_name"]
    return names


def _label(name: str) -> str:
    return HEADER_LABELS[name][0]


def _text(name: str, value: Any, vietnamese_numbers: bool) -> str:
    """A value as text: 'Có'/'Không', 'Quý III/2026', local 'dd/mm/yyyy HH:MM:SS', '' for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if name == "period":
        return quarter_label(value)
    if name == "submitted_at":
        return datetime.fromisoformat(value).astimezone(LOCAL_TZ).strftime(TIMESTAMP_FORMAT)
    if isinstance(value, int):
        return vietnamese_number(value) if vietnamese_numbers else str(value)
    return str(value)


def _cell(name: str, value: Any, text_fields: frozenset[str]) -> Any:
    """A value as an Excel cell: numbers (those in text_fields as text), local datetimes, None = empty."""
    if name == "submitted_at" and value is not None:
        return datetime.fromisoformat(value).astimezone(LOCAL_TZ).replace(tzinfo=None)
    if isinstance(value, bool) or name == "period":
        return _text(name, value, True)
    if isinstance(value, int) and name in text_fields:
        return vietnamese_number(value)
    return value


def _text_fields(seed: int, period: str, commune: str) -> frozenset[str]:
    """The count fields a commune's Excel file holds as text (a deterministic TEXT_NUMBER_SHARE)."""
    u = _rng(seed, "report-file-cells", commune, period).random(len(_COUNTS))
    return frozenset(name for name, x in zip(_COUNTS, u, strict=True) if x < TEXT_NUMBER_SHARE)


def _title(sheet: Worksheet, issuer: str, period: str, width: int) -> int:
    """The title block; returns the next free row."""
    half = max(2, width // 2)
    sheet.cell(1, 1, f"ỦY BAN NHÂN DÂN {issuer.upper()}").font = _BOLD
    sheet.cell(1, half + 1, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM").font = _BOLD
    sheet.cell(2, half + 1, "Độc lập - Tự do - Hạnh phúc")
    title = sheet.cell(
        4, 1, f"BÁO CÁO ỨNG DỤNG CÔNG NGHỆ THÔNG TIN, CHUYỂN ĐỔI SỐ {quarter_label(period).upper()}"
    )
    title.font, title.alignment = _BOLD, _CENTRED
    sheet.merge_cells(start_row=4, start_column=1, end_row=4, end_column=max(width, 2))
    return 6


def _notes(sheet: Worksheet, row: int, period: str, width: int) -> None:
    end = parse_period(period).end.strftime("%d/%m/%Y")
    sheet.cell(row + 1, 1, f"Ghi chú: Số liệu tính đến hết ngày {end}; ô để trống là không có số liệu.")
    sheet.cell(row + 3, 1, "Người lập biểu").font = _BOLD
    sheet.cell(row + 3, max(3, width - 2), "CHỦ TỊCH").font = _BOLD
    sheet.cell(row + 4, 1, "(Ký, ghi rõ họ tên)")
    sheet.cell(row + 4, max(3, width - 2), "(Ký tên, đóng dấu)")


def _table(
    sheet: Worksheet, issuer: str, period: str, records: list[Record], text_fields: list[frozenset[str]]
) -> None:
    """Title, two merged header rows (categories over their fields), a column-number row, data, notes."""
    names = _columns(records)
    width = len(names) + 1
    top = _title(sheet, issuer, period, width)
    headers = [("STT", None), *((_label(n), _CATEGORY.get(n, "key")) for n in names)]
    column = 1
    while column <= width:
        label, category = headers[column - 1]
        if category == "key" or category is None:
            sheet.cell(top, column, label)
            sheet.merge_cells(start_row=top, start_column=column, end_row=top + 1, end_column=column)
            column += 1
            continue
        span = 1
        while column + span <= width and headers[column + span - 1][1] == category:
            span += 1
        sheet.cell(top, column, _CATEGORY_TITLES[category])
        if span > 1:
            sheet.merge_cells(start_row=top, start_column=column, end_row=top, end_column=column + span - 1)
        for offset in range(span):
            sheet.cell(top + 1, column + offset, headers[column - 1 + offset][0])
        column += span
    for r in (top, top + 1):
        for c in range(1, width + 1):
            sheet.cell(r, c).font, sheet.cell(r, c).alignment = _BOLD, _CENTRED
    for c in range(1, width + 1):
        sheet.cell(top + 2, c, f"({c})").alignment = _CENTRED
    row = top + 3
    for i, record in enumerate(records):
        sheet.cell(row, 1, i + 1)
        for c, name in enumerate(names, start=2):
            sheet.cell(row, c, _cell(name, record.get(name), text_fields[i]))
        row += 1
    if len(records) > 1:
        sheet.cell(row, 1, "Tổng cộng").font = _BOLD
        for c, name in enumerate(names, start=2):
            values = [r.get(name) for r in records]
            if name in _COUNTS and all(isinstance(v, int) for v in values):
                sheet.cell(row, c, sum(values)).font = _BOLD
        row += 1
    for c in range(1, width + 1):
        sheet.column_dimensions[get_column_letter(c)].width = 14
    _notes(sheet, row, period, width)


def _form(sheet: Worksheet, issuer: str, period: str, record: Record, text_fields: frozenset[str]) -> None:
    """Title (the only place with the period), then 'Chỉ tiêu | Số liệu' rows, categories as section rows."""
    row = _title(sheet, issuer, period, 3)
    sheet.cell(row, 1, "Chỉ tiêu").font = _BOLD
    sheet.cell(row, 2, "Số liệu").font = _BOLD
    category = "key"
    for name in _columns([record]):
        if name == "period":
            continue
        if _CATEGORY.get(name, "key") != category:
            category = _CATEGORY[name]
            row += 1
            sheet.cell(row, 1, _CATEGORY_TITLES[category]).font = _BOLD
        row += 1
        sheet.cell(row, 1, _label(name))
        sheet.cell(row, 2, _cell(name, record.get(name), text_fields))
    sheet.column_dimensions["A"].width = 48
    sheet.column_dimensions["B"].width = 22
    _notes(sheet, row + 1, period, 3)


def _csv(records: list[Record], encoding: str, delimiter: str, normal_form: str) -> bytes:
    """Header row of labels, one row per report; ';' files write numbers the Vietnamese way."""
    names = _columns(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([_label(n) for n in names])
    for record in records:
        writer.writerow([_text(n, record.get(n), delimiter == ";") for n in names])
    text = unicodedata.normalize(normal_form, buffer.getvalue())
    return encode_cp1258(text) if encoding == "cp1258" else text.encode(encoding)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "-", strip_diacritics(text).lower()).strip("-")


def _file_stem(record: Record) -> str:
    """'<province_code>_<commune_code>_<period>', or the slugged names when the report has no codes."""
    if record["commune_code"] is None:
        names = (record["province_name"], record["district_name"], record["commune_name"])
        return "_".join([*map(_slug, names), record["period"]])
    return f"{record['province_code']}_{record['commune_code']}_{record['period']}"


def _write(path: Path, data: bytes) -> Path:
    """Write via a hidden temporary file and rename, so a watcher never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def _workbook_bytes(book: Workbook, records: list[Record]) -> bytes:
    """The .xlsx bytes, reproducible: document and zip-entry times are the latest submission."""
    stamp = max(datetime.fromisoformat(r["submitted_at"]) for r in records).astimezone(UTC)
    saved, out = io.BytesIO(), io.BytesIO()
    book.save(saved)
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for entry in src.infolist():
            data = src.read(entry)
            if entry.filename == "docProps/core.xml":
                moment = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + moment, data)
            dst.writestr(zipfile.ZipInfo(entry.filename, stamp.timetuple()[:6]), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def write_report_files(
    inbox: Path,
    period: str,
    seed: int = DEFAULT_SEED,
    communes: list[str] | None = None,
    styles: Sequence[str] = tuple(FILE_STYLES),
    *,
    defect_rate: float = 0.0,
    legacy_rate: float = 0.0,
) -> list[Path]:
    """Write the period's reports of `communes` (current codes; default all) into `inbox`.

    Each commune gets one of `styles` (deterministic); communes of style ``xlsx-province-table``
    share one file per (current) province. Returns the paths written, sorted.
    """
    unknown = sorted(set(styles) - set(FILE_STYLES))
    if unknown:
        raise ValueError(f"unknown file styles {unknown}: expected some of {list(FILE_STYLES)}")
    registry = current_units()
    codes = registry.commune_codes()
    wanted = set(codes if communes is None else communes)
    if missing := sorted(wanted - set(codes)):
        raise ValueError(f"not current commune codes: {missing[:10]}")
    reports = commune_reports(period, seed, defect_rate, legacy_rate)
    provinces = registry.communes["province_code"].tolist()
    province_names = dict(registry.provinces[["province_code", "province_name"]].itertuples(index=False))
    choice = _rng(seed, "report-file-style", period).random(len(codes))
    inbox.mkdir(parents=True, exist_ok=True)

    written: list[Path] = []
    province_tables: dict[str, list[tuple[str, Record]]] = {}
    for i, (code, record) in enumerate(zip(codes, reports, strict=True)):
        if code not in wanted:
            continue
        style = FILE_STYLES[styles[int(choice[i] * len(styles))]]
        if style.layout == "province-table":
            province_tables.setdefault(provinces[i], []).append((code, record))
            continue
        stem = _file_stem(record)
        if style.layout == "csv":
            data = _csv([record], style.encoding, style.delimiter, style.normal_form)
            written.append(_write(inbox / f"{stem}.csv", data))
            continue
        book = Workbook()
        sheet = book.active
        if style.layout == "table":
            sheet.title = "Báo cáo"
            _table(sheet, record["commune_name"], period, [record], [_text_fields(seed, period, code)])
        else:
            sheet.title = "Biểu mẫu"
            _form(sheet, record["commune_name"], period, record, _text_fields(seed, period, code))
        written.append(_write(inbox / f"{stem}.xlsx", _workbook_bytes(book, [record])))
    for province, rows in province_tables.items():
        book = Workbook()
        book.active.title = "Tổng hợp"
        text_fields = [_text_fields(seed, period, code) for code, _ in rows]
        records = [record for _, record in rows]
        _table(book.active, province_names[province], period, records, text_fields)
        written.append(_write(inbox / f"{province}_tong-hop_{period}.xlsx", _workbook_bytes(book, records)))
    return sorted(written)
