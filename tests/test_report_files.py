"""Commune report files as communes send them: Excel tables and forms, CSV in four encodings.

Every fixture file is built here (openpyxl or bytes); the same three reports written in every
layout and encoding must give the same records, and the same canonical frame after conform.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import unicodedata
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest

from egov_index.conform import conform
from egov_index.header_mapping import HEADER_LABELS
from egov_index.report_files import (
    ReportFileError,
    find_quarter,
    parse_bool,
    parse_number,
    read_report_file,
)
from egov_index.source_server.files import encode_cp1258

SOURCES_DOC = Path(__file__).parents[1] / "docs" / "sources.md"

EXPECTED: list[dict[str, Any]] = [
    {
        "commune_code": "00004",
        "commune_name": "Phường Ba Đình",
        "province_code": "01",
        "period": "2026-Q3",
        "submitted_at": "2026-09-20T08:15:00+07:00",
        "officials_total": 25,
        "officials_with_computer": 24,
        "has_lan": True,
        "leaders_total": 3,
        "leaders_with_signature_cert": 2,
        "residents_adult": 1326500,
        "residents_vneid_level2": 1326,
        "has_it_plan": True,
    },
    {
        "commune_code": "01234",
        "commune_name": "Xã Tân Hòa",
        "province_code": "08",
        "period": "2026-Q3",
        "submitted_at": "2026-09-22T14:30:00+07:00",
        "officials_total": 18,
        "officials_with_computer": 18,
        "has_lan": False,
        "leaders_total": 2,
        "leaders_with_signature_cert": 2,
        "residents_adult": 12000,
        "residents_vneid_level2": 9350,
        "has_it_plan": False,
    },
    {
        "commune_code": "22345",
        "commune_name": "Đặc khu Côn Đảo",
        "province_code": "22",
        "period": "2026-Q3",
        "submitted_at": "2026-09-25T09:00:00+07:00",
        "officials_total": 30,
        "officials_with_computer": None,
        "has_lan": None,
        "leaders_total": 4,
        "leaders_with_signature_cert": 3,
        "residents_adult": 5000,
        "residents_vneid_level2": 3120,
        "has_it_plan": True,
    },
]


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def conformed(records: list[dict[str, Any]]) -> pd.DataFrame:
    """What the pipeline does after unit resolution: report_id from the code and period, then conform."""
    ready = [{**r, "report_id": f"{r['commune_code']}-{r['period']}"} for r in records]
    result = conform("commune_reports", ready, "2026-Q3")
    assert result.rejected.empty and result.extra_columns == ()
    return result.frame


# --- Excel, table layout ---------------------------------------------------------------------------


def write_table_xlsx(path: Path) -> Path:
    """A province's compilation: title block, merged two-row header, NFD text, numbering, total and notes rows."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Tổng hợp"
    ws["A1"] = nfd("ỦY BAN NHÂN DÂN TỈNH NINH BÌNH")
    ws["J1"] = nfd("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
    ws["A2"] = nfd("BÁO CÁO ỨNG DỤNG CÔNG NGHỆ THÔNG TIN QUÝ III/2026")
    ws.merge_cells("A2:O2")
    one_row = {
        "A": "STT",
        "B": "Mã xã",
        "C": "Tên xã",
        "D": "Mã tỉnh",
        "E": "Ngày báo cáo",
        "K": "Số dân từ đủ 14 tuổi",
        "L": "Số người có tài khoản VNeID\nmức 2",
        "M": "Có kế hoạch ứng dụng CNTT",
        "N": "Ghi chú",
        "O": "Số điện thoại liên hệ",
    }
    for col, label in one_row.items():
        ws[f"{col}4"] = nfd(label)
        ws.merge_cells(f"{col}4:{col}5")
    ws["F4"] = nfd("Hạ tầng kỹ thuật")
    ws.merge_cells("F4:H4")
    for col, label in zip(
        "FGH", ["Tổng số cán bộ, công chức", "Số CBCC có máy tính", "Có mạng LAN"], strict=True
    ):
        ws[f"{col}5"] = nfd(label)
    ws["I4"] = nfd("Số lãnh đạo")  # parent + child = "Số lãnh đạo UBND", "Số lãnh đạo có chứng thư số"
    ws.merge_cells("I4:J4")
    ws["I5"], ws["J5"] = "UBND", nfd("có chứng thư số")
    ws.append([f"({i})" for i in range(1, 16)])
    ws.append(
        [1, 4, nfd("Phường Ba Đình"), 1, datetime(2026, 9, 20, 8, 15), 25, "24", "x", 3, 2]
        + ["1.326.500", "1.326", nfd("Đã ban hành"), nfd("đủ số liệu"), "0912345678"]
    )
    ws.append(
        [2, "01234", nfd("Xã Tân Hòa"), "08", datetime(2026, 9, 22, 14, 30), 18, 18.0, nfd("Không"), 2, 2]
        + [12000, "9.350", nfd("Chưa"), None, None]
    )
    ws.append(
        [3, "22345", nfd("Đặc khu Côn Đảo"), 22, datetime(2026, 9, 25, 9), 30, None, None, 4, 3]
        + ["5.000", 3120.0, nfd("Có"), None, None]
    )
    ws.append([None, None, nfd("Tổng cộng"), None, None, 73, 42, None, 9, 7, 1343500, 13796])
    ws.append([nfd("Ghi chú: số liệu tính đến ngày 25/9/2026")])
    ws.merge_cells("A11:O11")
    ws["B13"], ws["M13"] = nfd("NGƯỜI LẬP BIỂU"), nfd("CHỦ TỊCH")
    ws["M16"] = nfd("Nguyễn Văn An")
    wb.save(path)
    return path


def test_excel_table_with_title_block_merged_header_and_notes(tmp_path):
    parsed = read_report_file(write_table_xlsx(tmp_path / "tong-hop.xlsx"))
    assert parsed.format == "xlsx" and parsed.encoding is None and parsed.delimiter is None
    assert parsed.records == EXPECTED  # NFC text, Vietnamese numbers, period from the title, empty -> None
    assert parsed.row_refs == ["Tổng hợp!row 7", "Tổng hợp!row 8", "Tổng hợp!row 9"]
    assert parsed.unmapped_headers == ["Số điện thoại liên hệ"]  # "STT" and "Ghi chú" are layout words
    reasons = dict(parsed.skipped_rows)
    assert reasons["Tổng hợp!row 6"] == "column numbering row"
    assert reasons["Tổng hợp!row 10"].startswith("total row")
    assert reasons["Tổng hợp!row 11"].startswith("notes row: 'Ghi chú: số liệu")
    assert reasons["Tổng hợp!row 13"].startswith("after the end of the table: 'NGƯỜI LẬP BIỂU")
    assert "Tổng hợp!row 16" in reasons


# --- Excel, form layout ------------------------------------------------------------------------------

FORM_LABELS = [  # (label, key of EXPECTED) in the order of the form, variants of HEADER_LABELS
    ("Mã đơn vị hành chính", "commune_code"),
    ("Tên đơn vị", "commune_name"),
    ("Mã tỉnh", "province_code"),
    ("Ngày gửi báo cáo", "submitted_at"),
    ("1. Tổng số CBCC", "officials_total"),
    ("2. Số cán bộ, công chức được trang bị máy tính", "officials_with_computer"),
    ("3. Mạng nội bộ (LAN)", "has_lan"),
    ("4. Số lãnh đạo UBND", "leaders_total"),
    ("5. Lãnh đạo có chữ ký số", "leaders_with_signature_cert"),
    ("6. Số người trưởng thành", "residents_adult"),
    ("7. Tài khoản định danh mức 2", "residents_vneid_level2"),
    ("8. Kế hoạch chuyển đổi số (Có/Không)", "has_it_plan"),
]


def form_value(key: str, value: Any) -> Any:
    """How a commune types a value into the form."""
    if value is None:
        return None
    if key == "submitted_at":
        return datetime.fromisoformat(value).strftime("%d/%m/%Y %H:%M")
    if isinstance(value, bool):
        return nfd("Có") if value else nfd("Không")
    if key == "residents_adult":
        return f"{value:,}".replace(",", ".")
    return nfd(value) if isinstance(value, str) else value


def write_form_sheet(wb: openpyxl.Workbook, report: dict[str, Any], *, with_unit_rows: bool = True) -> None:
    ws = wb.create_sheet(report["commune_name"])
    ws["A1"] = nfd(f"ỦY BAN NHÂN DÂN {report['commune_name'].upper()}")
    ws["D1"] = nfd("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
    ws["A3"] = nfd("BÁO CÁO TÌNH HÌNH ỨNG DỤNG CNTT")
    ws["A4"] = nfd("Quý 3 năm 2026")
    for cells in ("A3:D3", "A4:D4"):
        ws.merge_cells(cells)
    ws.append([])
    ws.append(["STT", nfd("Chỉ tiêu"), nfd("Số liệu"), nfd("Ghi chú")])
    ws.append(["I", nfd("Thông tin chung")])
    for label, key in FORM_LABELS:
        if with_unit_rows or key not in ("commune_code", "commune_name"):
            ws.append([None, nfd(label), form_value(key, report[key])])
    ws.append([None, nfd("9. Số điểm phát sóng wifi công cộng"), 5])
    ws.append([])
    ws.append([nfd("Ghi chú: số liệu ước tính")])
    ws.append([None, nfd("Người lập biểu"), nfd("Chủ tịch")])


def write_form_xlsx(path: Path) -> Path:
    """One sheet per report (period only in the title), an instructions sheet and unit lists around them."""
    wb = openpyxl.Workbook()
    wb.active.title = "Hướng dẫn"
    wb.active["A1"] = nfd("Mỗi xã điền một trang tính; không sửa tên chỉ tiêu.")
    for report in EXPECTED:
        write_form_sheet(wb, report)
    for title, state in (("Danh mục", "visible"), ("DM", "hidden")):
        ws = wb.create_sheet(title)
        ws.append(["Mã xã", "Tên xã"])
        ws.append(["00004", "Phường Ba Đình"])
        ws.sheet_state = state
    wb.save(path)
    return path


def test_excel_form_one_sheet_per_report_period_from_title(tmp_path):
    parsed = read_report_file(write_form_xlsx(tmp_path / "bao-cao.xlsx"))
    assert parsed.records == EXPECTED
    assert parsed.row_refs == [
        "Phường Ba Đình!rows 8-19",
        "Xã Tân Hòa!rows 8-19",
        "Đặc khu Côn Đảo!rows 8-19",
    ]
    assert parsed.unmapped_headers == ["9. Số điểm phát sóng wifi công cộng"]
    reasons = dict(parsed.skipped_rows)
    assert reasons["Hướng dẫn"].startswith("no header row")
    assert reasons["Danh mục"].startswith("only unit columns")
    assert reasons["DM"] == "hidden sheet"


def test_form_without_unit_rows_takes_the_commune_from_the_title(tmp_path):
    wb = openpyxl.Workbook()
    write_form_sheet(wb, EXPECTED[1], with_unit_rows=False)
    wb.save(tmp_path / "tan-hoa.xlsx")
    (record,) = read_report_file(tmp_path / "tan-hoa.xlsx").records
    assert record["commune_name"] == "XÃ TÂN HÒA" and "commune_code" not in record
    assert record["period"] == "2026-Q3" and record["officials_total"] == 18


# --- CSV ---------------------------------------------------------------------------------------------

CSV_FIELDS = list(EXPECTED[0])
CSV_PERIODS = ["Quý III/2026", "2026-Q3", "Q3/2026"]


def csv_text(delimiter: str, rows: list[list[str]] | None = None) -> str:
    """The reports as a commune's CSV export: first labels, Vietnamese formats, blank lines, a notes line."""
    header = [HEADER_LABELS[f][0] for f in CSV_FIELDS] + ["Người liên hệ"]
    if rows is None:
        rows = []
        for report, period, contact in zip(
            EXPECTED, CSV_PERIODS, ["Nguyễn Văn An", "Trần Thị Bình", ""], strict=True
        ):
            cells = [period if f == "period" else form_value(f, report[f]) for f in CSV_FIELDS]
            rows.append(
                [unicodedata.normalize("NFC", str(v)) if v is not None else "" for v in cells] + [contact]
            )
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerow([])
    writer.writerows(rows[:2])
    writer.writerow([])
    writer.writerows(rows[2:])
    writer.writerow(["Ghi chú: số liệu do xã tự khai"])
    return buffer.getvalue()




CSV_VARIANTS = {  # name: (encoder, delimiter, detected encoding)
    "utf8-nfd-semicolon": (lambda t: nfd(t).encode("utf-8"), ";", "utf-8"),
    "utf8-bom-comma": (lambda t: codecs.BOM_UTF8 + t.encode("utf-8"), ",", "utf-8-sig"),
    "utf16le-semicolon": (lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le"), ";", "utf-16-le"),
    "utf16be-comma": (lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"), ",", "utf-16-be"),
    "cp1258-semicolon": (encode_cp1258, ";", "cp1258"),
    "cp1258-comma": (encode_cp1258, ",", "cp1258"),
}


def write_csv(path: Path, variant: str) -> Path:
    encode, delimiter, _ = CSV_VARIANTS[variant]
    path.write_bytes(encode(csv_text(delimiter)))
    return path


@pytest.mark.parametrize("variant", CSV_VARIANTS)
def test_csv_encodings_and_delimiters(tmp_path, variant):
    parsed = read_report_file(write_csv(tmp_path / "bao-cao.xls", variant))  # the extension is not trusted
    _, delimiter, encoding = CSV_VARIANTS[variant]
    assert (parsed.format, parsed.encoding, parsed.delimiter) == ("csv", encoding, delimiter)
    assert parsed.records == EXPECTED
    assert parsed.row_refs == ["line 3", "line 4", "line 6"]
    assert parsed.unmapped_headers == ["Người liên hệ"]
    assert parsed.skipped_rows == [("line 7", "notes row: 'Ghi chú: số liệu do xã tự khai'")]


def test_every_layout_and_encoding_gives_the_same_canonical_frame(tmp_path):
    files = [write_table_xlsx(tmp_path / "table.xlsx"), write_form_xlsx(tmp_path / "form.xlsx")]
    files += [write_csv(tmp_path / f"{variant}.csv", variant) for variant in CSV_VARIANTS]
    parsed = [read_report_file(f) for f in files]
    assert all(p.records == EXPECTED for p in parsed)
    reference = conformed(parsed[0].records)
    assert len(reference) == 3 and reference["residents_adult"].tolist() == [1326500, 12000, 5000]
    for p in parsed[1:]:
        pd.testing.assert_frame_equal(conformed(p.records), reference)


def test_a_bad_number_stays_as_written_and_conform_quarantines_its_row(tmp_path):
    rows = [[r[f] if isinstance(r[f], str) else str(r[f] or "") for f in CSV_FIELDS] + [""] for r in EXPECTED]
    rows[1][CSV_FIELDS.index("officials_total")] = "18 người"
    rows[2][CSV_FIELDS.index("residents_adult")] = "93,5%"  # a percentage is no count
    path = tmp_path / "bad.csv"
    path.write_text(csv_text(";", rows), encoding="utf-8")
    parsed = read_report_file(path)
    assert parsed.records[1]["officials_total"] == "18 người"
    assert parsed.records[2]["residents_adult"] == "93,5%"
    ready = [{**r, "report_id": f"{r['commune_code']}-{r['period']}"} for r in parsed.records]
    result = conform("commune_reports", ready, "2026-Q3")
    assert len(result.frame) == 1 and len(result.rejected) == 2
    reasons = result.rejected.set_index("record_key")["reason"]
    assert "officials_total='18 người' is not a valid whole number" in reasons["01234-2026-Q3"]
    assert "residents_adult='93,5%'" in reasons["22345-2026-Q3"]
    assert parsed.row_refs[1:] == ["line 4", "line 6"]  # where to point the commune


# --- values -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("12", 12),
        ("1.326", 1326),
        ("1.326.500", 1326500),
        ("1 326 500", 1326500),
        ("93,88", 93.88),
        ("93,88%", 0.9388),
        ("100%", 1.0),
        ("-5", -5),
        ("12.0", 12),
        ("0.25", 0.25),
        ("1,326,500", None),
        ("12a", None),
        ("", None),
    ],
)
def test_parse_number(text, number):
    parsed = parse_number(text)
    assert parsed == number and type(parsed) is type(number)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Có", True),
        (nfd("có"), True),
        ("x", True),
        ("X", True),
        ("Đã ban hành", True),
        ("Yes", True),
        ("1", True),
        ("TRUE", True),
        ("Không", False),
        ("Chưa", False),
        ("No", False),
        ("0", False),
        ("false", False),
        ("có lẽ", None),
    ],
)
def test_parse_bool(text, value):
    assert parse_bool(text) is value


@pytest.mark.parametrize(
    "text",
    [
        "QUÝ III/2026",
        "Quý 3 năm 2026",
        "Q3/2026",
        "2026-Q3",
        "BÁO CÁO ỨNG DỤNG CNTT QUÝ III NĂM 2026",
        nfd("quý III/2026"),
    ],
)
def test_find_quarter(text):
    assert find_quarter(text) == "2026-Q3"


def test_find_quarter_ignores_text_without_a_quarter():
    assert find_quarter("Báo cáo năm 2026") is None and find_quarter("Số liệu 6 tháng") is None


# --- refused files -------------------------------------------------------------------------------------


@pytest.fixture
def openpyxl_must_not_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("openpyxl was asked to load a file that should have been refused")

    monkeypatch.setattr(openpyxl, "load_workbook", refuse)


def test_zip_bomb_is_refused_before_openpyxl_loads_it(tmp_path, openpyxl_must_not_load):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (32 * 2**20))
    with pytest.raises(ReportFileError, match=r"bomb\.xlsx: entry xl/worksheets/sheet1\.xml is compressed"):
        read_report_file(path)


def test_workbook_unpacking_past_the_limit_is_refused(tmp_path, openpyxl_must_not_load):
    path = tmp_path / "big.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/image1.png", os.urandom(2 * 2**20))
    with pytest.raises(ReportFileError, match=r"big\.xlsx: the workbook unpacks to 2,097,152 bytes"):
        read_report_file(path, max_uncompressed_bytes=2**20)


def test_oversize_file_is_refused_before_reading(tmp_path, openpyxl_must_not_load):
    path = tmp_path / "huge.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 5000)
    with pytest.raises(ReportFileError, match=r"huge\.xlsx: 5,004 bytes, over the 4,096-byte limit"):
        read_report_file(path, max_bytes=4096)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"T\x81n x\x8d;\x90\n", "tried UTF-8, UTF-16 with byte-order mark, Windows-1258"),
        ("Tæng sè c¸n bé;M· x·\n".encode("latin-1"), "tried UTF-8"),  # TCVN3 font bytes: not cp1258
        ("Mã xã;Tên xã\n".encode("utf-16-le"), "NUL bytes"),  # UTF-16 without byte-order mark
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "old-format .xls"),
        (b"a;b;c\n1;2;3\n", "no header row found"),
        (b"<html><table><tr><td>1</td></tr></table></html>", "HTML/XML saved with an Excel extension"),
        (b"PK\x03\x04 not really a zip", "zip is damaged"),
        (b"", "the file is empty"),
    ],
)
def test_unreadable_files_are_refused_with_what_to_do(tmp_path, content, message):
    path = tmp_path / "bao-cao.csv"
    path.write_bytes(content)
    with pytest.raises(ReportFileError, match="bao-cao.csv") as error:
        read_report_file(path)
    assert message in str(error.value)


# --- docs ----------------------------------------------------------------------------------------------


def test_every_header_label_is_in_the_sources_doc():
    doc = SOURCES_DOC.read_text()
    missing = [
        (f, lbl)
        for f, labels in HEADER_LABELS.items()
        for lbl in labels
        if f"`{f}`" not in doc or lbl not in doc
    ]
    assert missing == []
