"""The ranking of a period as files people open in Excel: CSV (UTF-8 with BOM, so Excel shows
Vietnamese) and XLSX, with Vietnamese column labels.

Every text cell is neutralised against formula injection (OWASP "CSV injection"): text starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading single quote, so a unit name such
as ``=HYPERLINK("http://x","y")`` is shown as text and never evaluated. Numbers stay numbers. The bytes
are deterministic (same ranking, same files), so reruns give identical content hashes.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# (column, Vietnamese label); a column missing from the frame is left out
RANKING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("period", "Kỳ"),
    ("overall_rank", "Hạng"),
    ("unit_code", "Mã đơn vị"),
    ("unit_name", "Tên đơn vị"),
    ("parent_code", "Mã tỉnh"),
    ("overall_rank_in_province", "Hạng trong tỉnh"),
    ("overall_index", "Chỉ số tổng hợp"),
    ("overall_points", "Điểm"),
    ("overall_max_points", "Điểm tối đa"),
    *((f"c{i}_index", f"Chỉ số nhóm {i}") for i in range(1, 7)),
    ("previous_rank_change", "Thay đổi hạng so với kỳ trước"),
    ("year_ago_rank_change", "Thay đổi hạng so với cùng kỳ năm trước"),
    ("has_report", "Có báo cáo"),
    ("reported_share", "Tỷ lệ xã có báo cáo"),
    ("methodology", "Phương pháp"),
)
INDICATOR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("period", "Kỳ"),
    ("level", "Cấp"),
    ("unit_code", "Mã đơn vị"),
    ("parent_code", "Mã tỉnh"),
    ("category", "Nhóm"),
    ("indicator_id", "Chỉ tiêu"),
    ("numerator", "Tử số"),
    ("denominator", "Mẫu số"),
    ("value", "Giá trị"),
    ("points", "Điểm"),
    ("max_points", "Điểm tối đa"),
    ("missing_treatment", "Xử lý thiếu số liệu"),
)
LEVELS = (("province", "tinh", "Tỉnh"), ("commune", "xa", "Xã"))
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_FIXED_DOC_TIME = "2000-01-01T00:00:00Z"


def neutralise(value: Any) -> Any:
    """A cell value safe for a spreadsheet: text that could start a formula gets a leading ``'``;
    numbers, booleans and empty cells are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    """A plain Python value (None for missing), booleans as Có/Không, text neutralised."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if isinstance(value, (int, float)):
        return value
    return neutralise(str(value))


def _table(frame: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> tuple[list[str], list[list[Any]]]:
    present = [(name, label) for name, label in columns if name in frame.columns]
    rows = [[_cell(v) for v in record] for record in frame[[n for n, _ in present]].itertuples(index=False)]
    return [label for _, label in present], rows


def _csv_bytes(header: list[str], rows: Iterable[list[Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return text.getvalue().encode("utf-8-sig")


def _xlsx_bytes(sheets: Mapping[str, tuple[list[str], list[list[Any]]]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, (header, rows) in sheets.items():
        sheet = workbook.create_sheet(title)
        sheet.append(header)
        for row in rows:
            sheet.append(row)
        for cells in sheet.iter_rows():
            for cell in cells:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # never a formula, whatever openpyxl inferred
        sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return _deterministic_zip(buffer.getvalue())


def _deterministic_zip(data: bytes) -> bytes:
    """The same workbook with fixed entry times and document timestamps: same content, same bytes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)",
                    rb"\g<1>" + _FIXED_DOC_TIME.encode() + rb"\g<2>",
                    content,
                )
            entry = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, content)
    return out.getvalue()


def _sorted_level(ranking: pd.DataFrame, level: str) -> pd.DataFrame:
    rows = ranking[ranking["level"].astype(str) == level]
    keys = [c for c in ("overall_rank", "unit_code") if c in rows.columns]
    return rows.sort_values(keys, na_position="last", kind="stable")


def people_exports(ranking: pd.DataFrame, indicator_values: pd.DataFrame, period: str) -> dict[str, bytes]:
    """File name -> bytes: ``xep-hang-tinh-<period>.csv``, ``xep-hang-xa-<period>.csv``,
    ``chi-tieu-<period>.csv`` and ``xep-hang-<period>.xlsx`` (sheets Tỉnh, Xã; the indicator values, about
    100 k rows nationally, stay in their CSV: building them into the workbook took ~15 s a run)."""
    files: dict[str, bytes] = {}
    sheets: dict[str, tuple[list[str], list[list[Any]]]] = {}
    for level, slug, title in LEVELS:
        header, rows = _table(_sorted_level(ranking, level), RANKING_COLUMNS)
        files[f"xep-hang-{slug}-{period}.csv"] = _csv_bytes(header, rows)
        sheets[title] = (header, rows)
    keys = [c for c in ("level", "unit_code", "category", "indicator_id") if c in indicator_values.columns]
    values = indicator_values.sort_values(keys, kind="stable") if keys else indicator_values
    header, rows = _table(values, INDICATOR_COLUMNS)
    files[f"chi-tieu-{period}.csv"] = _csv_bytes(header, rows)  # ~100 k rows: CSV only, Excel opens it
    files[f"xep-hang-{period}.xlsx"] = _xlsx_bytes(sheets)
    return files


def write_people_exports(
    ranking: pd.DataFrame, indicator_values: pd.DataFrame, target_dir: Path, period: str
) -> list[Path]:
    """Write ``people_exports`` into ``target_dir`` (each file replaced atomically); the paths written.
    In the pipeline, prefer ``store.write_document`` with the bytes of ``people_exports``."""
    target_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in people_exports(ranking, indicator_values, period).items():
        path = target_dir / name
        staged = target_dir / f".{name}.tmp"
        staged.write_bytes(data)
        staged.replace(path)
        paths.append(path)
    return paths
